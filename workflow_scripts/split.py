"""Snakemake adapter: family-grouped, label-stratified train/validation/test tables."""

import pandas as pd

from dfdetect.corrupt import read_parquet
from dfdetect.data.splits import packable_videos, split_videos, write_splits
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    params = snakemake.params
    store_index = pd.concat(map(read_parquet, snakemake.input.indexes), ignore_index=True)
    videos = packable_videos(read_parquet(snakemake.input.cleaned), store_index)
    sets = split_videos(videos, params.test, params.validation, params.seed)
    outputs = {name: snakemake.output[name] for name in sets}
    summary = write_splits(sets, outputs, snakemake.output.summary, params.seed)
    for name in sets:
        log.info("%s: %s", name, summary[name])
