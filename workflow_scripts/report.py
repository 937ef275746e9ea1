"""Snakemake adapter: the model comparison, the run summary and the pages of the HTML report."""

import json
from pathlib import Path

from dfdetect.corrupt import read_parquet
from dfdetect.evaluation.report import ReportPaths, comparison_table, write_report_pages
from dfdetect.evaluation.run_summary import run_summary
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    # params.files: the model -> result file mapping the rule's `results` input was made from
    files = snakemake.params.files
    table, missing = comparison_table(snakemake.params.models, files)
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
        files,
        json.loads(Path(snakemake.input.clean).read_text()),
        json.loads(Path(snakemake.input.splits).read_text()),
        summary,
        snakemake.params.config,
    )
    log.info("run summary:\n%s", Path(snakemake.output.summary).read_text())
    log.info("compared %d model(s); missing: %s", len(table), missing or "none")
