"""Snakemake adapter: write how evaluation scores a model (scoring.json) beside it."""

from dfdetect.evaluation.scoring import write_scoring_settings
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    write_scoring_settings(snakemake.output[0], snakemake.params.settings)
