"""Snakemake adapter: the model comparison and the data-cleaning summary."""
import json
from pathlib import Path

from dfdetect.logutil import log_to
from dfdetect.report import comparison_table, write_report

with log_to(snakemake.log[0]) as log:
    table, missing = comparison_table(snakemake.params.models, snakemake.params.eval_dir, snakemake.params.models_dir)
    clean_summary = json.loads(Path(snakemake.input.clean).read_text())
    split_summary = json.loads(Path(snakemake.input.splits).read_text())
    write_report(table, missing, clean_summary, split_summary, snakemake.output.csv, snakemake.output.markdown)
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
