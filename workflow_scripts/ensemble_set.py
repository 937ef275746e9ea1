"""Snakemake adapter: one run of an ensemble on one evaluation set, from its members' set evaluations."""

from dfdetect.evaluation.ensemble import EnsembleSettings, evaluate_ensemble_set
from dfdetect.evaluation.evaluate import SetEvaluationPaths
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_ensemble_set(
        snakemake.wildcards.ensemble,
        EnsembleSettings.from_mapping(snakemake.params.settings),
        snakemake.wildcards.set,
        predictions=snakemake.params.predictions,  # member -> the path the rule's matching input holds
        validation_predictions_path=snakemake.input.validation_predictions,
        paths=SetEvaluationPaths.from_mapping(dict(snakemake.output.items())),
        n_resamples=evaluation["bootstrap"],
        seed=evaluation["seed"],
        calibration_bins=snakemake.params.calibration["calibration_bins"],
    )
