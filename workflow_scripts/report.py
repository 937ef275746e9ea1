"""Snakemake adapter: the model comparison, the data-cleaning summary and the run summary."""

import json
from pathlib import Path

from dfdetect.corrupt import read_parquet
from dfdetect.evaluation.report import baseline_name, comparison_table, run_table, write_report
from dfdetect.evaluation.run_summary import run_summary, write_run_summary
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    # params.files: the model -> result file mapping the rule's `results` input was made from
    params = snakemake.params
    table, missing = comparison_table(params.models, params.files, params.ensembles)
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
        runs=run_table(params.files),
        runs_path=snakemake.output.runs,
        baseline=baseline_name(params.baseline, params.models),
    )
    log.info("run summary:\n%s", write_run_summary(summary, snakemake.output.summary))
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
