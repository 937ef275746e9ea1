"""Snakemake adapter: combine the per-batch selections of the kept videos."""

from dfdetect.atomic import atomic_to_parquet
from dfdetect.corrupt import read_parquet
from dfdetect.data.reduce import combine_selections
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    reduced = combine_selections(map(read_parquet, snakemake.input.selections), read_parquet(snakemake.input.cleaned))
    atomic_to_parquet(reduced, snakemake.output[0])
    log.info("%d frames for %d kept videos", len(reduced), reduced["video_id"].nunique())
