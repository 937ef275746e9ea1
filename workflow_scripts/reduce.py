"""Snakemake adapter: combine the per-batch selections of the kept videos."""
import pandas as pd

from dfdetect.logutil import log_to
from dfdetect.reduce import combine_selections

with log_to(snakemake.log[0]) as log:
    reduced = combine_selections(map(pd.read_parquet, snakemake.input.selections), pd.read_parquet(snakemake.input.cleaned))
    reduced.to_parquet(snakemake.output[0], index=False)
    log.info("%d frames for %d kept videos", len(reduced), reduced["video_id"].nunique())
