# Helpers shared by the rules: config checks, batch discovery, paths and input functions.
import os
import re
import sys

# Jobs import the dfdetect of this checkout, installed or not.
sys.path.insert(0, workflow.basedir)
# Set through update(): `snakemake --lint` reads an indexed os.environ as a variable the user must set.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p))

from dfdetect.config import ConfigError, check_config, discover_batches
from dfdetect.layout import ResultsLayout

try:
    check_config(config)
    BATCHES = discover_batches(config)  # batch id -> zip path
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None

RESULTS = config["results_dir"].rstrip("/")
# Paths that library code also opens come from the one layout; logs and benchmarks use result().
LAYOUT = ResultsLayout(RESULTS)


MODELS = list(config["models"])


wildcard_constraints:
    batch=r"\d+-\d+",
    model="|".join(map(re.escape, MODELS)) or "(?!)",


def result(path):
    """A path under results_dir."""
    return LAYOUT.path(path)


# The packed frame store that train and evaluate read (the pack rule's outputs, dfdetect.store).
STORE_PREFIXES = [LAYOUT.store_prefix(batch) for batch in BATCHES]


def batch_zip(wildcards):
    return BATCHES[wildcards.batch]


def store_files():
    """Every batch's packed store: the pack rule's outputs (call after rules/prepare.smk)."""
    return expand(rules.pack.output, batch=BATCHES)


def encoder_model(wildcards):
    """A td_lstm with `encoder_from: OTHER` trains after OTHER, from its model.keras."""
    source = config["models"][wildcards.model].get("encoder_from")
    return [LAYOUT.train_file(source, "model")] if source else []


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


def all_targets():
    """What `rule all` asks for (called in the Snakefile, after every rule is defined)."""
    targets = [rules.manifest.output.videos, rules.manifest.output.histogram, rules.reduce.output[0]]
    targets += [rules.split.output.summary, *expand(rules.evaluate.output.metrics, model=MODELS)]
    targets += [rules.report.output.csv]
    return targets
