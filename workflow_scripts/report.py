"""Snakemake adapter: the model comparison and the data-cleaning summary."""
import json
from pathlib import Path

from dfdetect.logutil import log_to
from dfdetect.report import ResultFiles, comparison_table, write_report

with log_to(snakemake.log[0]) as log:
    models, sets = list(snakemake.params.models), snakemake.params.sets
    # The report rule's inputs list the models' files in config order (set metrics model-major).
    set_metrics = iter(snakemake.input.set_metrics)
    files = ResultFiles(
        metrics=dict(zip(models, snakemake.input.metrics)),
        train_info=dict(zip(models, snakemake.input.trained)),
        set_metrics={model: {name: next(set_metrics) for name in sets} for model in models},
        robustness=dict(zip(models, snakemake.input.robustness)),
    )
    table, missing = comparison_table(snakemake.params.models, files)
    clean_summary = json.loads(Path(snakemake.input.clean).read_text())
    split_summary = json.loads(Path(snakemake.input.splits).read_text())
    write_report(table, missing, clean_summary, split_summary, snakemake.output.csv, snakemake.output.markdown)
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
