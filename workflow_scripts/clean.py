"""Snakemake adapter: keep/drop decisions per video."""

import pandas as pd

from dfdetect.data.clean import clean_videos, write_clean
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log:
    cleaned = clean_videos(
        pd.read_parquet(snakemake.input[0]), snakemake.params.min_frames, snakemake.params.max_frames
    )
    summary = write_clean(cleaned, snakemake.output.videos, snakemake.output.summary)
    log.info("before: %s", summary["before"])
    log.info("dropped: %s", summary["dropped"])
    log.info("after: %s", summary["after"])
