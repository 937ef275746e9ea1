"""Snakemake adapter: score one run of one model on one evaluation set."""

from dfdetect.data.store import StorePaths
from dfdetect.evaluation.evaluate import SetEvaluationPaths, evaluate_set
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_set(
        snakemake.wildcards.model,
        snakemake.params.settings,
        snakemake.wildcards.set,
        model_path=snakemake.input.model,
        store_paths=StorePaths.group(snakemake.input.store),
        videos_path=snakemake.input.videos,
        validation_predictions_path=snakemake.input.validation_predictions,
        paths=SetEvaluationPaths.from_mapping(dict(snakemake.output.items())),
        backend=snakemake.params.backend,
        aggregation=evaluation["aggregate"],
        n_resamples=evaluation["bootstrap"],
        seed=evaluation["seed"],
        batch_size=evaluation["batch_size"],
        calibration_path=snakemake.input.calibration,
        calibration_bins=snakemake.params.calibration["calibration_bins"],
    )
