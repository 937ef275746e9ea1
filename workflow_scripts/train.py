"""Snakemake adapter: train one model."""

from dfdetect.logutil import log_to
from dfdetect.training.train import TrainPaths, train_model

with log_to(snakemake.log[0]):
    train_model(
        snakemake.wildcards.model,
        snakemake.params.settings,
        store_prefixes=snakemake.params.store_prefixes,
        train_path=snakemake.input.train,
        validation_path=snakemake.input.validation,
        paths=TrainPaths.from_mapping(dict(snakemake.output.items())),
        image_size=snakemake.params.image_size,
        backend=snakemake.params.backend,
        encoder_path=snakemake.input.encoder[0] if snakemake.input.encoder else None,
        job_threads=snakemake.threads,
    )
