"""Snakemake adapter: the per-slot frame selection of one batch."""

from dfdetect.atomic import atomic_to_parquet
from dfdetect.corrupt import read_parquet
from dfdetect.data.reduce import select_batch_frames
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    params = snakemake.params
    selection = select_batch_frames(
        read_parquet(snakemake.input.frames),
        read_parquet(snakemake.input.videos),
        params.step,
        params.n_slots,
        params.min_frames,
        params.max_frames,
    )
    atomic_to_parquet(selection, snakemake.output[0])
    log.info("%d frames selected for %d videos", len(selection), selection["video_id"].nunique())
