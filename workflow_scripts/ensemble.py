"""Snakemake adapter: one run of an ensemble on the test split, from its members' evaluations."""

from dfdetect.evaluation.ensemble import EnsembleSettings, evaluate_ensemble
from dfdetect.evaluation.evaluate import EvaluationPaths
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_ensemble(
        snakemake.wildcards.ensemble,
        EnsembleSettings.from_mapping(snakemake.params.settings),
        # params: member -> the path the rule's matching input holds
        predictions=snakemake.params.predictions,
        validation_predictions=snakemake.params.validation_predictions,
        paths=EvaluationPaths.from_mapping(dict(snakemake.output.items())),
        n_resamples=evaluation["bootstrap"],
        seed=evaluation["seed"],
        calibration_bins=snakemake.params.calibration["calibration_bins"],
    )
