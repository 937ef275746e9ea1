"""What the trainer feeds the model: the splits' videos, the loaders, the recipe and its landmarks,
and what train.json says about them (recipe, selection, threads, speed).

Apart from ``dfdetect.training.train`` (which runs the training) so that the benchmarks build
the loaders exactly as training does; ``TrainingError`` is here because these raise it too, and
``dfdetect.training.train`` imports it from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from dfdetect.corrupt import read_parquet
from dfdetect.data.landmarks.files import LandmarkPaths

if TYPE_CHECKING:
    from dfdetect.training.train import TrainSettings


class TrainingError(RuntimeError):
    """A model cannot be trained; the message names the model and the cause."""

    def __init__(self, model: str, cause: str) -> None:
        super().__init__(f"model '{model}': {cause}")


def read_split(path: str | Path, model: str, name: str, real_only: bool = False) -> pd.DataFrame:
    """A split's videos; both classes, or (``real_only``: a recipe whose fakes are all self-blended)
    at least one REAL video."""
    table = read_parquet(path)
    labels = set(table["label"].astype(int))
    if real_only and 0 not in labels:
        raise TrainingError(
            model, f"self-blended fakes are made from REAL frames, but the {name} split ({path}) holds no REAL video"
        )
    if labels != {0, 1} and not real_only:
        have = "REAL" if labels == {0} else "FAKE" if labels == {1} else "no"
        raise TrainingError(model, f"the {name} split ({path}) holds only {have} videos; training needs both classes")
    return table


def speed_info(epochs_timed: list[dict[str, float]], images_per_epoch: int) -> dict[str, Any]:
    """train.json's speed: the first epoch of this run (compile included) apart from the rest.

    ``steady_images_per_s``: training images per second of the training parts of the epochs after
    the first (validation excluded); None when this run trained one epoch or none.
    """
    steady = epochs_timed[1:]
    steady_seconds = sum(epoch["train_s"] for epoch in steady)
    return {
        "first_epoch_s": round(epochs_timed[0]["train_s"] + epochs_timed[0]["validation_s"], 2)
        if epochs_timed
        else None,
        "steady_images_per_s": round(len(steady) * images_per_epoch / steady_seconds, 1) if steady_seconds else None,
        "epoch_seconds": epochs_timed,
    }


# ------------------------------------------------------------------------------------------------
# The loaders


def make_loaders(
    settings: TrainSettings,
    recipe,
    store,
    train_videos: pd.DataFrame,
    validation_videos: pd.DataFrame,
    *,
    landmarks,
    batch_size: int,
    batch_multiple: int = 1,
    job_threads: int | None = None,
):
    """(training loader, validation loader) as training uses them (``benchmarks/augment.py`` too).

    The training loader shuffles, applies the recipe and weighs the classes by the composition of
    its epoch (with SBI, the self-blended fakes count). Its workers: ``loader_workers``, or the
    job's threads (without them, the cores this process may use); processes as
    ``worker_processes`` says. Validation (``validation_dataset``) is never augmented: Keras's
    threads serve it.
    """
    from dfdetect.training.loader import FrameDataset, class_weights
    from dfdetect.training.workers import default_worker_count

    workers = settings.loader_workers or default_worker_count(job_threads)
    options = dict(mode=settings.loader_mode, batch_size=batch_size, batch_multiple=batch_multiple, workers=workers)
    train_data = FrameDataset(
        store,
        train_videos,
        shuffle=True,
        recipe=recipe,
        landmarks=landmarks,
        class_weight=None if recipe.uses_sbi else class_weights(train_videos["label"]),
        seed=settings.seed,
        processes=worker_processes(settings, workers),
        **options,
    )
    if recipe.uses_sbi:
        train_data.class_weight = class_weights(train_data.labels)
    return train_data, validation_dataset(recipe, store, validation_videos, landmarks, settings.seed, options)


def worker_processes(settings: TrainSettings, workers: int) -> bool:
    """Whether the training loader's workers are processes: unless ``loader_threads`` asks for
    threads, whenever there are two or more. A single worker stays a thread of the training
    process (it overlaps with training as a process would, and costs no start-up): the demo's
    jobs, one thread each so that two share two cores, run as they always have."""
    return not settings.loader_threads and workers > 1


# ------------------------------------------------------------------------------------------------
# Training recipes (dfdetect.training.recipes): settings, landmarks, and what train.json says about them


def recipe_of(name: str, settings: Mapping[str, Any]):
    from dfdetect.training.recipes import Recipe

    try:
        return Recipe.from_settings(settings)
    except ValueError as error:
        raise TrainingError(name, str(error)) from error


def recipe_landmarks(name: str, recipe, landmark_paths: Sequence[LandmarkPaths], store) -> dict | None:
    """The batches' keypoints when the recipe needs them; a missing file fails before training."""
    if not recipe.needs_landmarks:
        return None
    from dfdetect.data.landmarks.files import LandmarksMissing, load_landmarks

    try:
        return load_landmarks(landmark_paths, store.masks)
    except LandmarksMissing as error:
        raise TrainingError(name, f"{recipe.describe()} needs landmarks: {error}") from None


def recipe_info(recipe, train_data) -> dict[str, Any]:
    plan = train_data.plan
    counts = plan.landmark_counts() if plan is not None else {"landmarks": 0, "fallback": 0}
    n_sbi = int(plan.item_sbi.sum()) if plan is not None else 0
    counted = counts["landmarks"] + counts["fallback"]
    return {
        "augment": recipe.augment,
        "fakes": recipe.fakes,
        "needs_landmarks": recipe.needs_landmarks,
        "landmark_points": plan.n_points if plan is not None else None,
        "samples_with_landmarks": counts["landmarks"],
        "samples_with_fallback": counts["fallback"],
        "fallback_share": round(counts["fallback"] / counted, 4) if counted else 0.0,
        "n_items_per_epoch": int(train_data.n_items),
        "n_sbi_fakes_per_epoch": n_sbi,
    }


def validation_dataset(recipe, store, videos: pd.DataFrame, landmarks, seed: int, loader_options: Mapping[str, Any]):
    """The validation loader the recipe's selection needs: the split's labelled videos, or its REAL
    videos each frame paired with a self-blended fake (the same fakes every epoch, never augmented)."""
    from dfdetect.training.loader import FrameDataset
    from dfdetect.training.recipes import Recipe

    if recipe.validation == "labelled":
        return FrameDataset(store, videos, **loader_options)
    reals = videos[videos["label"].astype(int) == 0]
    blended = Recipe(augment="none", fakes="sbi")
    return FrameDataset(store, reals, recipe=blended, landmarks=landmarks, seed=seed, validation=True, **loader_options)


def selection_info(recipe, validation_data) -> dict[str, Any]:
    """How model.keras was chosen, for train.json and the comparison."""
    labels = validation_data.labels
    described = {
        "labelled": "the validation split's labelled videos",
        "self_blended": "the validation split's REAL frames, each with a self-blended fake",
    }
    return {
        "mode": recipe.selection,
        "validation": recipe.validation,
        "description": (
            f"last epoch (validation loss on {described[recipe.validation]} logged only)"
            if recipe.selection == "last_epoch"
            else f"lowest validation loss on {described[recipe.validation]}"
        ),
        "n_validation_items": int(len(labels)),
        "n_validation_fakes": int((labels > 0.5).sum()),
    }


def thread_counts(backend: str, loader_workers: int) -> dict[str, Any]:
    """The threads training ran with: results depend on them (TensorFlow's reductions split work
    by thread, so 1 and 2 intra-op threads give different weights). 0 is TensorFlow's own choice,
    one per core it may use (``cpus``)."""
    import os

    counts: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "loader_workers": int(loader_workers)}
    if backend == "tensorflow":
        import tensorflow as tf

        counts["tensorflow_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        counts["tensorflow_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
    return counts
