"""Snakemake adapter: one raw DFDC video part -> one face batch (MTCNN crops) and its report."""
from pathlib import Path

from dfdetect.faces import FaceSettings, extract_part
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log:
    summary = extract_part(snakemake.input[0], snakemake.output.batch, FaceSettings.from_mapping(snakemake.params.settings))
    if summary.report_path != Path(snakemake.output.report):
        raise RuntimeError(f"extract_part wrote its report to {summary.report_path}, the rule expects {snakemake.output.report}")
    log.info("%s: %s, %d face crops", snakemake.output.batch, summary.status_counts, summary.n_faces)
