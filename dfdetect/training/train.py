"""Train one configured model on the frame store: class weights, best checkpoint, early stopping,
CSV history, resumable after an interruption.

Runs inside Snakemake (``workflow_scripts/train.py``) or directly::

    python -m dfdetect.training.train --config config.yaml --model cnn
    dfdetect train --config config.yaml --model cnn

The Keras backend is chosen before Keras is imported, so this module imports Keras only inside
``train_model``. What it feeds the model (splits, loaders, recipe, train.json's parts about them)
is ``dfdetect.training.inputs``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pandas as pd

from dfdetect.atomic import atomic_link, atomic_path, atomic_write_text
from dfdetect.config import complete_section, result_settings
from dfdetect.config_errors import ConfigError
from dfdetect.data.landmarks.files import LandmarkPaths
from dfdetect.data.store import StorePaths
from dfdetect.layout import TRAIN_FILES, ResultsLayout, RulePaths
from dfdetect.lock import ResultsLockError, job_lock
from dfdetect.training.backend import select_backend, set_mixed_precision, set_seeds
from dfdetect.training.inputs import (
    TrainingError,
    make_loaders,
    read_split,
    recipe_info,
    recipe_landmarks,
    recipe_of,
    selection_info,
    speed_info,
    thread_counts,
)
from dfdetect.training.resume import ResumeState, latest_state

log = logging.getLogger(__name__)

WORK_DIR_NAME = ".resume"  # inside models/{model}/: checkpoints that survive a killed job
TENSORBOARD_DIR_NAME = "tensorboard"  # inside models/{model}/: event files, a run of train/ and validation/
# Inside models/{model}/: the outputs of the last finished training. Snakemake deletes a job's outputs
# when the job starts, so without it a retrain that fails (or is killed) would leave no model at all.
LAST_GOOD_DIR_NAME = "last_good"
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"]


@dataclass(frozen=True)
class TrainSettings:
    """The trainer's keys of a model's config entry (the builders read arch/backbone/weights...).

    No defaults here: they are the schema's (``dfdetect/config.schema.yaml``), filled in by
    ``from_config``, so a library caller trains exactly as the workflow would.
    """

    arch: str
    epochs: int
    batch_size: int
    learning_rate: float
    frames_per_video: str | int
    patience: int
    augment: bool | str  # a preset of dfdetect.training.augment (true = flip); see dfdetect.training.recipes
    selection: str  # which epoch is saved: dfdetect.training.recipes.SELECTIONS
    mixed_precision: bool
    seed: int
    loader_workers: int | None  # None: the job's threads (dfdetect.training.workers.default_worker_count)
    loader_threads: bool  # workers as threads of the training process (debugging) instead of processes
    distribute: str
    model: dict[str, Any]  # the whole entry, for the builders and train.json

    @classmethod
    def from_config(cls, settings: Mapping[str, Any]) -> "TrainSettings":
        """From a model's config entry; keys it leaves out take the schema's defaults."""
        completed = complete_section("model", settings)
        known = [field.name for field in fields(cls) if field.name != "model"]
        return cls(**{key: completed[key] for key in known}, model=completed)

    @property
    def loader_mode(self) -> str:
        return "clip" if self.arch == "td_lstm" else self.frames_per_video

    def fingerprint(self, image_size: int, backend: str, encoder_path: str | Path | None = None) -> str:
        """Changes whenever resuming from an older run's checkpoint would be wrong."""
        encoder = hashlib.sha256(Path(encoder_path).read_bytes()).hexdigest() if encoder_path else None
        payload = json.dumps(
            {
                "settings": result_settings(self.model, "model"),
                "image_size": image_size,
                "backend": backend,
                "encoder": encoder,
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrainPaths(RulePaths):
    """Every file train writes; the field names are the train rule's output names."""

    model: Path
    history: Path
    plot: Path
    info: Path
    samples: Path  # training_samples.png: 16 inputs as the model receives them

    FILES: ClassVar[Mapping[str, str]] = TRAIN_FILES

    @property
    def work(self) -> Path:
        """Checkpoints that survive a killed job, next to the model."""
        return self.model.parent / WORK_DIR_NAME

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files of the training, next to the model (not an output: a live view)."""
        return self.model.parent / TENSORBOARD_DIR_NAME

    @property
    def last_good(self) -> Path:
        """The outputs of the last finished training, next to the model (``keep_last_good``)."""
        return self.model.parent / LAST_GOOD_DIR_NAME


def keep_last_good(paths: TrainPaths) -> None:
    """Link the finished outputs into ``last_good/`` (hard links: no extra space), train.json last:
    a retrain that fails later still leaves this training's model where the README says."""
    for name in (*(name for name in TrainPaths.FILES if name != "info"), "info"):
        output = getattr(paths, name)
        atomic_link(output, paths.last_good / output.name)


def prepare_work_dir(paths: TrainPaths, fingerprint: str) -> ResumeState | None:
    """Keep an interrupted run's checkpoints only when they belong to the same settings.

    Returns the newest consistent resume state an earlier, interrupted run left (None: start
    over); a damaged or partial state is logged and skipped (``dfdetect.training.resume.latest_state``).
    """
    stamp = paths.work / "fingerprint.txt"
    if paths.work.exists() and (not stamp.exists() or stamp.read_text().strip() != fingerprint):
        log.info("settings changed since the interrupted run (or its state is incomplete): starting over")
        shutil.rmtree(paths.work)
    paths.work.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        atomic_write_text(stamp, fingerprint + "\n")
    state = latest_state(paths.work)
    if state is None:  # files of an older layout, or of a kill before the first manifest
        for path in paths.work.iterdir():
            if path != stamp:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return state


def read_history(path: Path) -> pd.DataFrame:
    """The per-epoch log; an epoch logged twice (killed between the log and the backup) keeps its last row."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    history = pd.read_csv(path)
    return history.drop_duplicates("epoch", keep="last").sort_values("epoch").reset_index(drop=True)


def train_model(
    name: str,
    settings: Mapping[str, Any],
    *,
    store_paths: Sequence[StorePaths],
    landmark_paths: Sequence[LandmarkPaths] = (),
    train_path: str | Path,
    validation_path: str | Path,
    paths: TrainPaths,
    image_size: int,
    backend: str,
    encoder_path: str | Path | None = None,
    job_threads: int | None = None,
) -> dict[str, Any]:
    """Train ``name`` and write its model, history, history plot and train.json to ``paths``.

    ``store_paths``: the training data's packed batches; ``landmark_paths``: their keypoints, needed
    by the recipes that use landmarks (``dfdetect.training.recipes.Recipe.needs_landmarks``).

    ``encoder_path``: the trained frame model named by a td_lstm's ``encoder_from`` setting.
    ``job_threads``: the threads the job was given (Snakemake's ``threads``); the loader's workers
    default to them, or, without them, to the cores this process may use.
    """
    started = time.perf_counter()
    try:
        train_settings = TrainSettings.from_config(settings)
    except ConfigError as error:
        raise TrainingError(name, str(error)) from None
    paths.model.parent.mkdir(parents=True, exist_ok=True)

    select_backend(backend)  # before Keras is imported
    import keras

    from dfdetect.data.store import FrameStore
    from dfdetect.training.callbacks import EpochCheckpoint, EpochLog, ResumableEarlyStopping, StepProgress, tensorboard
    from dfdetect.training.distribute import choose_distribution
    from dfdetect.training.figures import plot_history, plot_training_samples
    from dfdetect.training.models import build_model, encoder_from_trained

    set_seeds(train_settings.seed)
    policy = set_mixed_precision(train_settings.mixed_precision)

    distribution = choose_distribution(backend, train_settings.distribute)
    global_batch = train_settings.batch_size * distribution.replicas  # batch_size is per device
    log.info("%s: training on %s, global batch %d", name, distribution.description, global_batch)

    recipe = recipe_of(name, train_settings.model)
    train_videos = read_split(train_path, name, "train", real_only=recipe.fakes == "sbi")
    # validation: labelled videos, or (selection self_blended) REAL ones with self-blended fakes; never augmented
    validation_videos = read_split(validation_path, name, "validation", real_only=recipe.validation == "self_blended")
    try:
        store = FrameStore(store_paths)
        landmarks = recipe_landmarks(name, recipe, landmark_paths, store)
        train_data, validation_data = make_loaders(
            train_settings,
            recipe,
            store,
            train_videos,
            validation_videos,
            landmarks=landmarks,
            batch_size=global_batch,
            batch_multiple=distribution.batch_multiple,
            job_threads=job_threads,
        )
        weights = train_data.class_weight
    except (KeyError, FileNotFoundError, ValueError) as error:
        raise TrainingError(name, f"cannot load its training data: {error}") from error
    plot_training_samples(train_data.preview(16), paths.samples, f"{name}: training inputs ({recipe.describe()})")
    recipe_summary = recipe_info(recipe, train_data)
    selection = selection_info(recipe, validation_data)
    log.info(
        "%s: %s; %d items per epoch (%d self-blended); landmarks (%s points) for %d samples, "
        "fallback ellipse for %d (%.1f%%); selection %s on %s",
        name,
        recipe.describe(),
        recipe_summary["n_items_per_epoch"],
        recipe_summary["n_sbi_fakes_per_epoch"],
        recipe_summary["landmark_points"],
        recipe_summary["samples_with_landmarks"],
        recipe_summary["samples_with_fallback"],
        100 * recipe_summary["fallback_share"],
        selection["mode"],
        selection["validation"],
    )
    if store.image_size != image_size:
        raise TrainingError(name, f"the frame store holds {store.image_size}px frames but image_size is {image_size}")

    encoder_from = train_settings.model.get("encoder_from")
    if encoder_from and encoder_path is None:
        raise TrainingError(name, f"encoder_from: {encoder_from} needs that model's model.keras (encoder_path)")
    with distribution.scope:  # variables must be created under the strategy
        encoder = (
            encoder_from_trained(
                encoder_path, image_size, bool(train_settings.model.get("encoder_trainable")), model_name=name
            )
            if encoder_from
            else None
        )
        model = build_model(name, train_settings.model, image_size, store.n_slots, encoder=encoder)
        model.compile(
            optimizer=keras.optimizers.Adam(train_settings.learning_rate),
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        )

    state = prepare_work_dir(paths, train_settings.fingerprint(image_size, backend, encoder_path))
    earlier = read_history(paths.work / state.history) if state else pd.DataFrame(columns=HISTORY_COLUMNS)
    finished_before = state.epochs if state else 0
    if finished_before:
        log.info("resuming %s after %d finished epoch(s)", name, finished_before)
    else:
        shutil.rmtree(paths.tensorboard, ignore_errors=True)  # an earlier training's curves would mix in
    last_epoch = recipe.selection == "last_epoch"
    checkpoint = EpochCheckpoint(paths.work, state, monitor="val_loss", last=last_epoch)
    stopping = (
        [] if last_epoch else [ResumableEarlyStopping(earlier, monitor="val_loss", patience=train_settings.patience)]
    )
    epoch_log = EpochLog(name, train_settings.epochs, train_data.n_items)
    callbacks = [
        *stopping,
        checkpoint,  # after early stopping: its manifest records a stop
        epoch_log,
        StepProgress(name, len(train_data), global_batch),
        tensorboard(paths.tensorboard),
    ]
    log.info(
        "%s: TensorBoard event files in %s (tensorboard --logdir %s)",
        name,
        paths.tensorboard,
        paths.model.parent.parent,
    )
    # A resumed run goes on as if never interrupted: the loader serves the next epoch's order,
    # augmentation and fakes (they are drawn per (seed, epoch, sample)), and Keras does not
    # reshuffle the batches with Python's global random (the loader shuffles per (seed, epoch)).
    train_data.set_epoch(finished_before)
    fit_started = time.perf_counter()
    if state is not None and (state.stopped or state.epochs >= train_settings.epochs):
        log.info("%s: the interrupted run had finished training; writing its outputs", name)
    else:
        try:
            model.fit(
                train_data,
                validation_data=validation_data,
                epochs=train_settings.epochs,
                initial_epoch=finished_before,
                callbacks=callbacks,
                verbose=2,
                shuffle=False,  # the loader shuffles (seeded, per epoch); its workers make batches in order
            )
        finally:
            train_data.close()  # the loader's worker processes
    fit_seconds = time.perf_counter() - fit_started

    state = checkpoint.state
    if state is None or state.best is None:
        raise TrainingError(name, "training finished no epoch with a finite validation loss")
    history = read_history(paths.work / state.history)
    with atomic_path(paths.model, suffix=".keras") as temporary:
        shutil.copyfile(paths.work / state.best, temporary)
    with atomic_path(paths.history, suffix=".csv") as temporary:
        history.to_csv(temporary, index=False)
    fake_share = float(validation_videos["label"].mean())
    plot_history(history, fake_share, paths.plot, f"{name} ({train_settings.arch})")
    best = history.iloc[-1] if last_epoch else history.loc[history["val_loss"].idxmin()]
    images_per_epoch = train_data.n_items * (store.n_slots if train_data.mode == "clip" else 1)
    info = {
        "model": name,
        "settings": train_settings.model,
        "trainer": {key: value for key, value in asdict(train_settings).items() if key != "model"},
        "backend": backend,
        "keras_version": keras.__version__,
        "dtype_policy": policy,
        "distribution": {
            "replicas": distribution.replicas,
            "devices": distribution.devices,
            "description": distribution.description,
            "global_batch_size": global_batch,
        },
        "seed": train_settings.seed,
        "image_size": image_size,
        "loader_mode": train_settings.loader_mode,
        "n_train_videos": int(len(train_videos)),
        "n_validation_videos": int(len(validation_videos)),
        "n_train_samples": int(len(train_data.samples)),
        "recipe": recipe_summary,
        "selection": selection,
        "threads": thread_counts(backend, train_data.workers_wanted),
        "class_weight": {str(label): weight for label, weight in weights.items()},
        "validation_fake_share": fake_share,
        "epochs_run": int(len(history)),
        "resumed_after_epochs": int(finished_before),
        "stopped_early": bool(len(history) < train_settings.epochs),
        "best_epoch": int(best["epoch"]) + 1,
        "best_val_loss": float(best["val_loss"]),
        "best_val_auc": float(best.get("val_auc", float("nan"))),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "fit_time_s": round(fit_seconds, 2),
        **speed_info(epoch_log.epochs_timed, images_per_epoch),
        "loader": {
            "workers": train_data.workers_wanted,
            "processes": train_data.processes,
            "workers_start_s": train_data.workers_start_s,
        },
    }
    atomic_write_text(paths.info, json.dumps(info, indent=2, default=str) + "\n")
    keep_last_good(paths)
    shutil.rmtree(paths.work)  # finished: nothing left to resume
    log.info(
        "%s: best epoch %d of %d, val_loss %.4f, val_auc %.3f",
        name,
        info["best_epoch"],
        info["epochs_run"],
        info["best_val_loss"],
        info["best_val_auc"],
    )
    return info


# ------------------------------------------------------------------------------------------------
# Running without Snakemake


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dfdetect train", description="Train one model of config.yaml on the prepared data."
    )
    parser.add_argument(
        "--config", "--configfile", default="config.yaml", help="the workflow's config file (default: config.yaml)"
    )
    parser.add_argument("--model", required=True, help="a model name under `models:` in the config")
    parser.add_argument("--results-dir", help="override results_dir (where splits/ and store/ are)")
    parser.add_argument("--out-dir", help="where to write the model (default: {results_dir}/models/{model})")
    parser.add_argument("--backend", help="override keras_backend (tensorflow | jax | torch)")
    parser.add_argument("--epochs", type=int, help="override the model's epochs")
    parser.add_argument(
        "--run", type=int, default=0, help="run R of a model with repeats: seed + R, in models/{model}/runs/R/"
    )
    args = parser.parse_args(argv)

    from dfdetect.config import encoder_run, load_config, run_settings
    from dfdetect.config_errors import did_you_mean

    config = load_config(args.config)
    models = config["models"]
    if args.model not in models:
        parser.error(
            f"model {args.model!r} is not in {args.config}{did_you_mean(args.model, models)} "
            f"(models: {', '.join(models) or 'none'})"
        )
    try:
        settings = run_settings(models[args.model], args.run)
    except ValueError as error:
        parser.error(f"--run {args.run}: {error}")
    if args.epochs:
        settings["epochs"] = args.epochs
    layout = ResultsLayout(args.results_dir or config["results_dir"])
    run = layout.run_part(args.run)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    store_paths = StorePaths.in_folder(layout.store_dir())
    if not store_paths:
        parser.error(f"no frame store under {layout.store_dir()}: run `snakemake --until split` first")
    encoder_from = settings.get("encoder_from")
    # In the workflow's model folder, hold the workflow's train job lock: never two trainers on one folder.
    lock = job_lock(layout.root, layout.train_log(args.model, run)) if not args.out_dir else contextlib.nullcontext()
    try:
        with lock:
            train_model(
                args.model,
                settings,
                store_paths=store_paths,
                landmark_paths=LandmarkPaths.in_folder(layout.store_dir()),
                train_path=layout.split("train"),
                validation_path=layout.split("validation"),
                paths=TrainPaths.in_folder(args.out_dir or layout.model_dir(args.model, run)),
                image_size=config["image_size"],
                backend=args.backend or config["keras_backend"],
                encoder_path=layout.train_file(
                    encoder_from, "model", layout.run_part(encoder_run(models, encoder_from, args.run))
                )
                if encoder_from
                else None,
            )
    except ResultsLockError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
