"""Snakemake adapter: combine the per-batch video tables and plot n_frames."""
from dfdetect.ingest import combine_video_tables, summarize_videos
from dfdetect.plots import plot_n_frames_histogram
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log:
    videos = combine_video_tables(snakemake.input)
    videos.to_parquet(snakemake.output.videos, index=False)
    plot_n_frames_histogram(videos, snakemake.output.histogram, tuple(snakemake.params.frame_bounds))
    log.info("%s", summarize_videos(videos))
