"""Snakemake adapter: keep/drop decisions per video."""

from dfdetect.corrupt import read_parquet
from dfdetect.data.clean import clean_videos, write_clean
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    cleaned = clean_videos(read_parquet(snakemake.input[0]), snakemake.params.min_frames, snakemake.params.max_frames)
    summary = write_clean(cleaned, snakemake.output.videos, snakemake.output.summary)
    log.info("before: %s", summary["before"])
    log.info("dropped: %s", summary["dropped"])
    log.info("after: %s", summary["after"])
