"""Snakemake adapter: the model comparison, the data-cleaning summary and the run summary."""

import json
from pathlib import Path

from dfdetect.corrupt import read_parquet
from dfdetect.evaluation.report import ResultFiles, comparison_table, run_summary, write_report, write_run_summary
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
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
    summary = run_summary(
        read_parquet(snakemake.input.videos),
        read_parquet(snakemake.input.cleaned),
        [read_parquet(path) for path in snakemake.input.store_indexes],
        [read_parquet(path) for path in snakemake.input.skipped],
    )
    write_report(
        table,
        missing,
        clean_summary,
        split_summary,
        snakemake.output.csv,
        snakemake.output.markdown,
        run_summary=summary,
    )
    log.info("run summary:\n%s", write_run_summary(summary, snakemake.output.summary))
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
