"""Snakemake adapter: the model comparison, the run summary and the pages of the HTML report."""

import json
from pathlib import Path

from dfdetect.corrupt import read_parquet
from dfdetect.evaluation.comparison import baseline_name, comparison_table, run_table
from dfdetect.evaluation.report import ReportPaths, write_report_pages
from dfdetect.evaluation.run_summary import run_summary
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    # params.files: the model -> result file mapping the rule's `results` input was made from
    params = snakemake.params
    table, missing = comparison_table(params.models, params.files, params.ensembles)
    summary = run_summary(
        read_parquet(snakemake.input.videos),
        read_parquet(snakemake.input.cleaned),
        [read_parquet(path) for path in snakemake.input.store_indexes],
        [read_parquet(path) for path in snakemake.input.skipped],
    )
    write_report_pages(
        ReportPaths.from_mapping(dict(snakemake.output.items())),
        table,
        missing,
        params.files,
        json.loads(Path(snakemake.input.clean).read_text()),
        json.loads(Path(snakemake.input.splits).read_text()),
        summary,
        params.config,
        runs=run_table(params.files),
        baseline=baseline_name(params.baseline, params.models),
    )
    log.info("run summary:\n%s", Path(snakemake.output.summary).read_text())
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
