"""Snakemake adapter: ingest one face batch."""

from dfdetect.data.ingest import ingest_batch, summarize_videos, write_batch_manifest
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    manifest = ingest_batch(snakemake.input[0], snakemake.wildcards.batch)
    write_batch_manifest(manifest, snakemake.output.frames, snakemake.output.videos, snakemake.output.skipped)
    log.info("%s: %d face files, %d skipped members", snakemake.input[0], len(manifest.frames), len(manifest.skipped))
    log.info("%s", summarize_videos(manifest.videos))
