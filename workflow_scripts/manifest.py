"""Snakemake adapter: combine the per-batch video tables and plot n_frames."""

from dfdetect.atomic import atomic_to_parquet
from dfdetect.data.figures import plot_n_frames_histogram
from dfdetect.data.ingest import combine_video_tables, summarize_videos
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    videos = combine_video_tables(snakemake.input)
    atomic_to_parquet(videos, snakemake.output.videos)
    plot_n_frames_histogram(videos, snakemake.output.histogram, tuple(snakemake.params.frame_bounds))
    log.info("%s", summarize_videos(videos))
