"""Snakemake adapter: evaluate one model."""
from pathlib import Path

from dfdetect.evaluate import evaluate_model
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]):
    evaluation = snakemake.params.evaluation
    evaluate_model(
        snakemake.wildcards.model,
        snakemake.params.settings,
        model_path=snakemake.input.model,
        store_prefixes=snakemake.params.store_prefixes,
        test_path=snakemake.input.test,
        validation_path=snakemake.input.validation,
        out_dir=Path(snakemake.output.metrics).parent,
        backend=snakemake.params.backend,
        aggregation=evaluation["aggregate"],
        n_resamples=evaluation["bootstrap"],
        seed=evaluation["seed"],
        batch_size=evaluation["batch_size"],
    )
