"""Snakemake adapter: write one demo batch."""

from dfdetect.data.demo import DemoSpec, write_demo_batch
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    summary = write_demo_batch(
        snakemake.output[0], snakemake.params.batch_index, DemoSpec.from_mapping(snakemake.params.spec)
    )
    log.info("wrote %s: %s", snakemake.output[0], summary)
