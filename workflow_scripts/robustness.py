"""Snakemake adapter: one model's test split under the DeeperForensics-1.0 perturbations."""

from dfdetect.data.store import StorePaths
from dfdetect.evaluation.robustness import RobustnessPaths, evaluate_robustness
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_robustness(
        snakemake.wildcards.model,
        model_path=snakemake.input.model,
        store_paths=StorePaths.group(snakemake.input.store),
        test_path=snakemake.input.test,
        paths=RobustnessPaths.from_mapping(dict(snakemake.output.items())),
        backend=snakemake.params.backend,
        aggregation=evaluation["aggregate"],
        batch_size=evaluation["batch_size"],
        seed=evaluation["seed"],
    )
