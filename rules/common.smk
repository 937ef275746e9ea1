# Helpers shared by the rules: config checks, batch discovery, paths and input functions.
import os
import re
import sys

# Jobs import the dfdetect of this checkout, installed or not.
sys.path.insert(0, workflow.basedir)
# Set through update(): `snakemake --lint` reads an indexed os.environ as a variable the user must set.
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p))

from dfdetect.config import ConfigError, check_config, discover_batches

try:
    check_config(config)
    BATCHES = discover_batches(config)  # batch id -> zip path
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None

RESULTS = config["results_dir"].rstrip("/")


MODELS = list(config["models"])


wildcard_constraints:
    batch=r"\d+-\d+",
    model="|".join(map(re.escape, MODELS)) or "(?!)",


def result(path):
    """A path under results_dir."""
    return f"{RESULTS}/{path}"


# The packed frame store that train and evaluate read (dfdetect.store: {prefix}.frames.npy etc.).
STORE_PREFIXES = [result(f"store/{batch}") for batch in BATCHES]
STORE_FILES = [f"{prefix}.{part}" for prefix in STORE_PREFIXES for part in ("frames.npy", "mask.npy", "index.parquet")]


def batch_zip(wildcards):
    return BATCHES[wildcards.batch]


def encoder_model(wildcards):
    """A td_lstm with `encoder_from: OTHER` trains after OTHER, from its model.keras."""
    source = config["models"][wildcards.model].get("encoder_from")
    return [result(f"models/{source}/model.keras")] if source else []


def recipe_landmarks(wildcards):
    """The batches' landmarks, for a model whose recipe needs them (dfdetect.recipes)."""
    from dfdetect.recipes import Recipe

    if not Recipe.from_settings(config["models"][wildcards.model]).needs_landmarks:
        return []
    return [f"{prefix}.landmarks.npy" for prefix in STORE_PREFIXES]


def model_resource(name):
    """A model's scheduler resource (models.NAME.resources in the config)."""
    return lambda wildcards: config["models"][wildcards.model]["resources"][name]


def evaluation_plot(name, caption):
    return report(
        result(f"eval/{{model}}/{name}"),
        caption=f"../report/{caption}.rst",
        category="Evaluation",
        subcategory="{model}",
        labels={"model": "{model}", "figure": caption.replace("_", " ")},
    )


def all_targets():
    targets = [result("manifests/videos.parquet"), result("manifests/n_frames_hist.png")]
    targets += [result("reduced/frames.parquet"), result("splits/summary.json")]
    targets += expand(result("eval/{model}/metrics.json"), model=MODELS)
    targets += [result("report/comparison.csv")]
    return targets
