"""Snakemake adapter: evaluate one run of one model, and calibrate its scores."""

from dfdetect.data.store import StorePaths
from dfdetect.evaluation.evaluate import EvaluationPaths, evaluate_model
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_model(
        snakemake.wildcards.model,
        snakemake.params.settings,
        model_path=snakemake.input.model,
        store_paths=StorePaths.group(snakemake.input.store),
        test_path=snakemake.input.test,
        validation_path=snakemake.input.validation,
        paths=EvaluationPaths.from_mapping(dict(snakemake.output.items())),
        backend=snakemake.params.backend,
        aggregation=evaluation["aggregate"],
        n_resamples=evaluation["bootstrap"],
        seed=evaluation["seed"],
        batch_size=evaluation["batch_size"],
        calibration_path=snakemake.output.calibration,
        calibration_method=snakemake.params.calibration["calibration"],
        calibration_bins=snakemake.params.calibration["calibration_bins"],
    )
