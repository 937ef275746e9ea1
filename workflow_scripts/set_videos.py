"""Snakemake adapter: every kept, packed video of an evaluation set (never split)."""

import pandas as pd

from dfdetect.atomic import atomic_to_parquet
from dfdetect.corrupt import read_parquet
from dfdetect.data.facebatch import class_balance
from dfdetect.data.splits import packable_videos
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    store_index = pd.concat(map(read_parquet, snakemake.input.indexes), ignore_index=True)
    videos = packable_videos(read_parquet(snakemake.input.cleaned), store_index)
    atomic_to_parquet(videos, snakemake.output[0])
    log.info("set %s: %s", snakemake.wildcards.set, class_balance(videos))
