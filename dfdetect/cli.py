"""The ``dfdetect`` command line: the parts of the pipeline a user runs by hand.

    dfdetect predict --model results/models/cnn/model.keras VIDEO... [--out scores.csv]
    dfdetect train --config config.yaml --model cnn          # one model, without Snakemake
    dfdetect report --config config.yaml                     # the comparison from whatever exists
    dfdetect where --configfile config.yaml                  # where the results and the report are
    dfdetect raw-part --videos DIR --labels CSV --out parts/dfdc_train_part_0.zip   # another dataset's videos
    dfdetect unlock --config config.yaml                     # clear a killed run's results_dir lock [--force]

Subcommands import their heavy modules (Keras, MTCNN) only when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from dfdetect.config import load_config
from dfdetect.layout import ResultsLayout, model_result_files


def where(argv: Sequence[str]) -> int:
    """Print where the results are, how the models did (the comparison's main table), the model
    to deploy and the commands for the HTML report and for scoring new videos (the end of ``make run``)."""
    parser = argparse.ArgumentParser(prog="dfdetect where", description=where.__doc__.splitlines()[0])
    parser.add_argument("--configfile", "--config", default="config.yaml")
    args = parser.parse_args(argv)
    config = load_config(args.configfile)
    layout = ResultsLayout(config["results_dir"])
    comparison = Path(layout.report_file("comparison.md"))
    print(f"results:     {layout.root.resolve()}/")
    if not comparison.exists():
        print("comparison:  not built yet (run `make run` or `snakemake --cores all`)")
        return 0
    print(f"comparison:  {comparison.resolve()}")
    table_path = Path(layout.report_file("comparison.csv"))
    if table_path.exists():
        import pandas as pd

        from dfdetect.evaluation.report import best_model, predict_command
        from dfdetect.evaluation.report_tables import main_markdown

        table = pd.read_csv(table_path)
        print(f"\n{main_markdown(table)}\n")
        best = best_model(table)
        if best is not None:
            model_files = {name: layout.train_file(name, "model") for name in config["models"]}
            deploy = f"; the model to deploy: {model_files[best['model']]}" if best["model"] in model_files else ""
            print(f"best by mean test log loss: {best['model']}{deploy}")
            command = predict_command(best, model_files)
            if command is not None:
                print(f"score new videos:  .venv/bin/{command}")
    config_arg = "" if args.configfile == "config.yaml" else f" CONFIG={args.configfile}"
    print(f"HTML report:       make report{config_arg}   (then open report.html)")
    return 0


def report(argv: Sequence[str]) -> int:
    """The comparison from whatever metrics exist, listing the models that have none and why.

    The Snakemake `report` rule waits for every configured model; after a run in which one
    model failed (`snakemake --keep-going`), this writes the report of the others. It prints whether
    each model's difference to the baseline exceeds the spread over runs (`comparison.md`'s
    *Spread over runs*).
    """
    from dfdetect.config import ensemble_runs
    from dfdetect.evaluation.comparison import baseline_name, comparison_table, run_table
    from dfdetect.evaluation.report import write_report
    from dfdetect.evaluation.report_tables import spread_markdown

    parser = argparse.ArgumentParser(prog="dfdetect report", description=report.__doc__.splitlines()[0])
    parser.add_argument("--config", "--configfile", default="config.yaml")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    layout = ResultsLayout(config["results_dir"])
    sets = list(config["evaluation"]["sets"])
    ensembles = config["ensembles"]
    files = model_result_files(
        config["models"],
        layout,
        sets,
        config["evaluation"]["robustness"],
        {name: ensemble_runs(config, name) for name in ensembles},
    )
    table, missing = comparison_table(config["models"], files, ensembles)
    summaries = []
    for path in map(Path, (layout.clean_summary(), layout.split_summary())):
        summaries.append(json.loads(path.read_text()) if path.exists() else {})
    markdown = layout.report_file("comparison.md")
    baseline = baseline_name(config["evaluation"]["baseline"], config["models"])
    write_report(
        table,
        missing,
        summaries[0],
        summaries[1],
        layout.report_file("comparison.csv"),
        markdown,
        model_files=files.model_files,
        runs=run_table(files),
        runs_path=layout.report_file("comparison_runs.csv"),
        baseline=baseline,
    )
    print(spread_markdown(table, baseline), end="\n\n")
    print(f"wrote {markdown} ({table['log_loss'].notna().sum()} of {len(table)} with metrics)")
    for entry in missing:
        print(f"missing: {entry}")
    return 0


def unlock(argv: Sequence[str]) -> int:
    """Remove the results_dir lock a killed run left (dfdetect.lock); only when no run uses the folder."""
    from dfdetect.lock import ResultsLockError, describe, lock_path
    from dfdetect.lock import unlock as remove_lock

    parser = argparse.ArgumentParser(prog="dfdetect unlock", description=unlock.__doc__)
    parser.add_argument("--config", "--configfile", default="config.yaml")
    parser.add_argument("--results-dir", help="the locked folder (default: the config's results_dir)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="remove the lock even when its run (or one of its jobs) is still running on this host",
    )
    args = parser.parse_args(argv)
    results = Path(args.results_dir) if args.results_dir else Path(load_config(args.config)["results_dir"])
    try:
        holder = remove_lock(results, force=args.force)
    except ResultsLockError as error:
        print(f"dfdetect unlock: {error}", file=sys.stderr)
        return 1
    if holder is None:
        print(f"{results} is not locked (no {lock_path(results).name})")
    else:
        print(f"removed the lock on {results} held by {describe(holder)}")
    print("for Snakemake's own lock on the working directory after a killed run: snakemake --unlock")
    return 0


def train(argv: Sequence[str]) -> int:
    from dfdetect.training.train import main as train_main

    return train_main(argv)


def predict(argv: Sequence[str]) -> int:
    from dfdetect.evaluation.predict import main as predict_main

    return predict_main(argv)


def raw_part(argv: Sequence[str]) -> int:
    from dfdetect.data.convert import main as convert_main

    return convert_main(argv)


COMMANDS = {
    "predict": predict,
    "train": train,
    "report": report,
    "where": where,
    "raw-part": raw_part,
    "unlock": unlock,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
