# Helpers shared by the rules: config checks, batch discovery, paths and input functions.
import os
import re
import sys

# Jobs import the dfdetect of this checkout, installed or not.
sys.path.insert(0, workflow.basedir)
# Set through update(): `snakemake --lint` reads an indexed os.environ as a variable the user must set.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p))

from dfdetect.config import (
    check_config,
    encoder_run,
    ensemble_runs,
    result_settings,
    run_settings,
    validate_config,
)
from dfdetect.config_errors import ConfigError
from dfdetect.sources import data_sources, discover_batches, evaluation_sets
from snakemake.settings.types import DeploymentMethod

from dfdetect.layout import FIRST_RUN, LANDMARK_FILES, STORE_FILES, TRAINING_DATA, ResultsLayout

# Jobs in their own conda environments (--sdm conda) may have a Keras backend this process lacks.
JOBS_SHARE_THIS_ENVIRONMENT = DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method

try:
    validate_config(config)  # dfdetect/config.schema.yaml, with its defaults filled in
    check_config(config, check_backend=JOBS_SHARE_THIS_ENVIRONMENT)
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
ENSEMBLES = list(config["ensembles"])


wildcard_constraints:
    batch=r"\d+-\d+",
    model="|".join(map(re.escape, MODELS)) or "(?!)",
    ensemble="|".join(map(re.escape, ENSEMBLES)) or "(?!)",
    # "" (run 0, the model users deploy) or /runs/R (the other runs of a model with repeats)
    run=r"(/runs/[1-9][0-9]*)?",
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


def model_runs(name):
    """The ``run`` parts of a model's runs ("" for run 0, then /runs/1 ...), or of an ensemble's."""
    count = ensemble_runs(config, name) if name in config["ensembles"] else config["models"][name]["repeats"]
    return [LAYOUT.run_part(run) for run in range(count)]


def first_run(pattern):
    """A rule's output pattern for run 0 only (robustness measures the model users deploy)."""
    return expand(pattern, run=FIRST_RUN, allow_missing=True)[0]


def encoder_model(wildcards):
    """A td_lstm with `encoder_from: OTHER` trains after OTHER, from its model.keras (the same run
    where OTHER has it, else OTHER's run 0)."""
    source = config["models"][wildcards.model].get("encoder_from")
    if not source:
        return []
    run = encoder_run(config["models"], source, LAYOUT.run_number(wildcards.run))
    return [LAYOUT.train_file(source, "model", LAYOUT.run_part(run))]


def model_landmarks(model):
    """Every batch's landmarks files, for a model whose recipe needs them (dfdetect.training.recipes)."""
    from dfdetect.training.recipes import Recipe

    if not Recipe.from_settings(config["models"][model]).needs_landmarks:
        return []
    return of_data(TRAINING_DATA, rules.landmarks.output, per_batch=True)


def model_run_entry(wildcards):
    """The config entry of the job's run of its model: the model's settings with that run's seed."""
    return run_settings(config["models"][wildcards.model], LAYOUT.run_number(wildcards.run))


def model_settings(wildcards):
    """The settings of a model's run that change results: its jobs' params (speed keys, such as
    resources and loader_workers, change no output and rerun nothing; the train job reads them from
    the config; repeats says how many runs there are, not what one computes)."""
    return result_settings(model_run_entry(wildcards), "model")


def landmark_inputs(wildcards):
    return model_landmarks(wildcards.model)


def model_resource(name):
    """A model's scheduler resource (models.NAME.resources in the config)."""
    return lambda wildcards: config["models"][wildcards.model]["resources"][name]


def data_labels(item):
    """A Data item's labels in the report: its dataset (the training data, or an evaluation set)
    and what it is (``item``, formatted with the job's wildcards)."""

    def labels(wildcards):
        data = f"set {wildcards.data.removeprefix('sets/').rstrip('/')}" if wildcards.data else "training data"
        return {"data": data, "item": item.format(**wildcards)}

    return labels


def run_labels(**labels):
    """A model run's labels in the report: each value formatted with the job's wildcards, the run
    as "run N" (its wildcard is "" for run 0)."""

    def format_labels(wildcards):
        run = f"run {LAYOUT.run_number(wildcards.run)}"
        return {key: run if key == "run" else value.format(**wildcards) for key, value in labels.items()}

    return format_labels


def evaluation_plot(output, caption, name="{model}"):
    """An evaluation figure of a model's (or, with name "{ensemble}", an ensemble's) run."""
    return report(
        LAYOUT.eval_file(name, output, "{run}"),
        caption=f"../report/{caption}.rst",
        category="Evaluation",
        subcategory=name,
        labels=run_labels(model=name, run="{run}", figure=caption.replace("_", " ")),
    )


def set_plot(output, caption, name="{model}"):
    return report(
        LAYOUT.set_eval_file(name, "{set}", output, "{run}"),
        caption=f"../report/{caption}.rst",
        category="Evaluation sets",
        subcategory="{set}",
        labels=run_labels(model=name, run="{run}", set="{set}", figure=caption.replace("_", " ")),
    )


def member_outputs(pattern):
    """Params function: {member: ``pattern``} for an ensemble job's members (``pattern``: an evaluate or
    evaluate_set output), with the job's other wildcards (run, set); ``member_inputs`` lists the paths."""

    def paths(wildcards):
        values = {name: value for name, value in wildcards.items() if name != "ensemble"}
        members = config["ensembles"][wildcards.ensemble]["members"]
        return {member: expand(pattern, model=member, **values)[0] for member in members}

    return paths


def member_inputs(pattern):
    """Input function: the paths of ``member_outputs(pattern)``."""
    return lambda wildcards: list(member_outputs(pattern)(wildcards).values())


def all_targets():
    """What `rule all` asks for (called in the Snakefile, after every rule is defined).

    Every finished product a user relies on, not only the comparison at the end: Snakemake rebuilds
    a missing file only when something asks for it, so a deleted model, evaluation or store file
    (or a damaged one, once removed) is rebuilt by the next plain `snakemake`, and with it whatever
    depends on it. Per dataset: manifests, cleaning and the frame store; then the training data's
    frame selection and splits, each model run's training outputs (and the landmarks its recipe
    reads), evaluation, scoring settings and evaluation-set scores, run 0's robustness, each
    ensemble run's evaluations, and the comparison.
    """
    targets = []
    for data in DATA_BATCHES:
        targets += expand([*rules.ingest.output, *rules.pack.output], data=data, batch=dataset_batches(data))
        targets += expand([*rules.manifest.output, *rules.clean.output], data=data)
    targets += expand(rules.set_videos.output, set=SETS)
    targets += [of_data(TRAINING_DATA, rules.reduce.output[0]), *rules.split.output]  # a set is never reduced or split
    for model in MODELS:
        runs = model_runs(model)
        targets += expand([*rules.train.output, *rules.evaluate.output, *rules.scoring.output], model=model, run=runs)
        targets += model_landmarks(model)
        targets += expand(rules.evaluate_set.output, model=model, set=SETS, run=runs)
        targets += expand(rules.robustness.output, model=model) if ROBUSTNESS else []
    for ensemble in ENSEMBLES:
        runs = model_runs(ensemble)
        targets += expand(rules.ensemble.output, ensemble=ensemble, run=runs)
        targets += expand(rules.ensemble_set.output, ensemble=ensemble, set=SETS, run=runs)
    targets += [*rules.report.output]
    return targets
