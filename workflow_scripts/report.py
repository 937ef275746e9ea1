"""Snakemake adapter: the model comparison and the data-cleaning summary."""
import json
from pathlib import Path

from dfdetect.logutil import log_to
from dfdetect.report import comparison_table, write_report

with log_to(snakemake.log[0]) as log:
    models = snakemake.params.models
    # The report rule's inputs list the models' files in config order.
    table, missing = comparison_table(models, dict(zip(models, snakemake.input.metrics)),
                                      dict(zip(models, snakemake.input.trained)))
    clean_summary = json.loads(Path(snakemake.input.clean).read_text())
    split_summary = json.loads(Path(snakemake.input.splits).read_text())
    write_report(table, missing, clean_summary, split_summary, snakemake.output.csv, snakemake.output.markdown)
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
