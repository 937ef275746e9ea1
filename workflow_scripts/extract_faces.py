"""Snakemake adapter: one raw DFDC video part -> one face batch (MTCNN crops) and its report."""

from dfdetect.data.faces.detect import FaceSettings
from dfdetect.data.faces.extract import extract_part
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

# extract_part logs its summary; Snakemake checks output.report exists
with log_to(snakemake.log[0]), job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    extract_part(snakemake.input[0], snakemake.output.batch, FaceSettings.from_mapping(snakemake.params.settings))
