"""Snakemake adapter: combine the per-batch selections of the kept videos."""

import pandas as pd

from dfdetect.atomic import atomic_to_parquet
from dfdetect.data.reduce import combine_selections
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log:
    reduced = combine_selections(
        map(pd.read_parquet, snakemake.input.selections), pd.read_parquet(snakemake.input.cleaned)
    )
    atomic_to_parquet(reduced, snakemake.output[0])
    log.info("%d frames for %d kept videos", len(reduced), reduced["video_id"].nunique())
