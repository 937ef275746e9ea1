# Helpers shared by the rules: config checks, batch discovery, paths and input functions.
import os
import re
import sys

# Jobs import the dfdetect of this checkout, installed or not.
sys.path.insert(0, workflow.basedir)
# Set through update(): `snakemake --lint` reads an indexed os.environ as a variable the user must set.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p))

from dfdetect.config import (
    ConfigError,
    check_config,
    data_sources,
    discover_batches,
    evaluation_sets,
    result_settings,
    validate_config,
)
from dfdetect.layout import LANDMARK_FILES, STORE_FILES, TRAINING_DATA, ResultsLayout

try:
    validate_config(config)  # dfdetect/config.schema.yaml, with its defaults filled in
    check_config(config)
    # Each dataset's batches: TRAINING_DATA ("") or "sets/NAME/", an evaluation set (prepared by the
    # same rules through the {data} wildcard, under results/sets/NAME/).
    DATA_BATCHES = {data: discover_batches(config, data) for data in data_sources(config)}  # batch id -> zip
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None
BATCHES = DATA_BATCHES[TRAINING_DATA]
SETS = evaluation_sets(config)

RESULTS = config["results_dir"].rstrip("/")
# Paths that library code also opens come from the one layout; logs and benchmarks use result().
LAYOUT = ResultsLayout(RESULTS)


# A lock on results_dir itself (dfdetect.lock): Snakemake's lock covers only this working
# directory. onstart runs in the main process of a real run only (not in dry runs, not in jobs:
# Snakemake starts those with --no-hooks), after the DAG is built and before any job starts.
import atexit

from dfdetect.atomic import remove_temporaries
from dfdetect.lock import ResultsLockError, acquire, release, release_all


def print_run_summary():
    """Echo report/run_summary.md (written by the report rule) on the console at the end of a run."""
    path = LAYOUT.report_file("run_summary.md")
    if os.path.exists(path):
        with open(path) as handle:
            print(f"\ndfdetect end-of-run summary ({path}):\n\n{handle.read()}", file=sys.stderr)


def remove_leftover_temporaries():
    """Temporary files of writers killed in an earlier run (dfdetect.atomic): safe to remove while this
    run holds the lock, which it takes only when none of the earlier run's jobs is still running."""
    removed = remove_temporaries(RESULTS)
    if removed:
        print(
            f"dfdetect: removed {len(removed)} temporary file(s) left by killed jobs under {RESULTS}/", file=sys.stderr
        )


onstart:
    try:
        acquire(RESULTS)
    except ResultsLockError as error:
        raise WorkflowError(str(error)) from None
    atexit.register(release_all)
    remove_leftover_temporaries()


onsuccess:
    release(RESULTS)
    print_run_summary()


onerror:
    release(RESULTS)
    print(
        "dfdetect: the run failed. Each job's log is under "
        f"{RESULTS}/logs/ (the failed job's log is named above). After a killed run, "
        "`snakemake --unlock` clears Snakemake's lock on this working directory.",
        file=sys.stderr,
    )


MODELS = list(config["models"])


wildcard_constraints:
    batch=r"\d+-\d+",
    model="|".join(map(re.escape, MODELS)) or "(?!)",
    # "" (the training data) or sets/NAME/ (a configured evaluation set)
    data="(sets/(" + ("|".join(map(re.escape, SETS)) or "(?!)") + ")/)?",
    set="|".join(map(re.escape, SETS)) or "(?!)",


def result(path):
    """A path under results_dir."""
    return LAYOUT.path(path)


def dataset_batches(data):
    """The batch ids of dataset ``data`` ("" or sets/NAME/)."""
    return list(DATA_BATCHES[data])


def batch_zip(wildcards):
    return DATA_BATCHES[wildcards.data][wildcards.batch]


def of_data(data, pattern, per_batch=False):
    """A rule's output pattern(s) for dataset ``data`` (every batch of it with ``per_batch``); a
    list of patterns (``rules.pack.output``) gives a list."""
    if per_batch:
        return expand(pattern, data=data, batch=dataset_batches(data))
    expanded = expand(pattern, data=data, allow_missing=True)
    return expanded if isinstance(pattern, list) else expanded[0]


def per_batch_of(pattern):
    """Input function: ``pattern`` for every batch of the job's dataset."""
    return lambda wildcards: of_data(wildcards.data, pattern, per_batch=True)


def store_files(data=TRAINING_DATA):
    """Every batch's packed store of a dataset: the pack rule's outputs (call after rules/prepare.smk)."""
    return of_data(data, rules.pack.output, per_batch=True)


def encoder_model(wildcards):
    """A td_lstm with `encoder_from: OTHER` trains after OTHER, from its model.keras."""
    source = config["models"][wildcards.model].get("encoder_from")
    return [LAYOUT.train_file(source, "model")] if source else []


def model_landmarks(model):
    """Every batch's landmarks files, for a model whose recipe needs them (dfdetect.training.recipes)."""
    from dfdetect.training.recipes import Recipe

    if not Recipe.from_settings(config["models"][model]).needs_landmarks:
        return []
    return of_data(TRAINING_DATA, rules.landmarks.output, per_batch=True)


def model_settings(wildcards):
    """A model's settings that change results: its jobs' params (speed keys, such as resources and
    loader_workers, change no output and rerun nothing; the train job reads them from the config)."""
    return result_settings(config["models"][wildcards.model], "model")


def landmark_inputs(wildcards):
    return model_landmarks(wildcards.model)


def model_resource(name):
    """A model's scheduler resource (models.NAME.resources in the config)."""
    return lambda wildcards: config["models"][wildcards.model]["resources"][name]


def evaluation_plot(output, caption):
    return report(
        LAYOUT.eval_file("{model}", output),
        caption=f"../report/{caption}.rst",
        category="Evaluation",
        subcategory="{model}",
        labels={"model": "{model}", "figure": caption.replace("_", " ")},
    )


def set_plot(output, caption):
    return report(
        LAYOUT.set_eval_file("{model}", "{set}", output),
        caption=f"../report/{caption}.rst",
        category="Evaluation sets",
        subcategory="{set}",
        labels={"model": "{model}", "set": "{set}", "figure": caption.replace("_", " ")},
    )


def all_targets():
    """What `rule all` asks for (called in the Snakefile, after every rule is defined).

    Every finished product a user relies on, not only the comparison at the end: Snakemake rebuilds
    a missing file only when something asks for it, so a deleted model, evaluation or store file
    (or a damaged one, once removed) is rebuilt by the next plain `snakemake`, and with it whatever
    depends on it. Per dataset: manifests, cleaning and the frame store; then the training data's
    frame selection and splits, each model's training outputs (and the landmarks its recipe
    reads), evaluation, robustness and evaluation-set scores, and the comparison.
    """
    targets = []
    for data in DATA_BATCHES:
        targets += expand([*rules.ingest.output, *rules.pack.output], data=data, batch=dataset_batches(data))
        targets += expand([*rules.manifest.output, *rules.clean.output], data=data)
    targets += expand(rules.set_videos.output, set=SETS)
    targets += [of_data(TRAINING_DATA, rules.reduce.output[0]), *rules.split.output]  # a set is never reduced or split
    for model in MODELS:
        targets += expand([*rules.train.output, *rules.evaluate.output], model=model)
        targets += model_landmarks(model)
        targets += expand(rules.evaluate_set.output, model=model, set=SETS)
        targets += expand(rules.robustness.output, model=model) if ROBUSTNESS else []
    targets += [*rules.report.output]
    return targets
