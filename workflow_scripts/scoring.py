"""Snakemake adapter: write how evaluation scores a model (scoring.json) beside it."""

from dfdetect.evaluation.scoring import write_scoring_settings
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]):
    write_scoring_settings(snakemake.output[0], snakemake.params.settings)
