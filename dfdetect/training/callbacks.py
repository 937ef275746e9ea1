"""Keras callbacks of the trainer (imports Keras: load after ``dfdetect.training.backend.select_backend``)."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_path
from dfdetect.training.resume import ResumeState, fault_point, file_name, is_better, prune, read_history

log = logging.getLogger("dfdetect.training.train")


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch with the metrics and the training speed."""

    def __init__(self, model_name: str, epochs: int, samples: int):
        super().__init__()
        self.model_name, self.epochs, self.samples = model_name, epochs, samples
        self.started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.started
        shown = " ".join(
            f"{key}={float(value):.4f}"
            for key, value in sorted((logs or {}).items())
            if isinstance(value, (int, float, np.floating)) and math.isfinite(float(value))
        )
        log.info(
            "%s epoch %d/%d: %s (%.1f s, %.0f samples/s)",
            self.model_name,
            epoch + 1,
            self.epochs,
            shown,
            seconds,
            self.samples / max(seconds, 1e-9),
        )


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that remembers the best epoch and the patience spent before an interruption."""

    def __init__(self, earlier: pd.DataFrame, **kwargs):
        super().__init__(**kwargs)
        self.earlier = earlier

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if len(self.earlier):
            losses = self.earlier[self.monitor].to_numpy(dtype=float)
            best_index = int(np.nanargmin(losses))
            self.best = float(losses[best_index])
            self.best_epoch = int(self.earlier["epoch"].iloc[best_index])
            self.wait = len(losses) - 1 - best_index


def seed_generator_state(model: keras.Model) -> list[list]:
    """[path, values] of every seed generator's state variable in ``model`` (its dropout layers'
    random streams): ``model.variables`` holds them besides the weights, ``save_weights`` does not."""
    weights = {id(variable) for variable in model.weights}
    return [
        [variable.path, np.asarray(keras.ops.convert_to_numpy(variable)).tolist()]
        for variable in model.variables
        if id(variable) not in weights
    ]


def restore_seed_generator_state(model: keras.Model, saved: list[list]) -> None:
    """Put back what ``seed_generator_state`` saved, variable by variable in the model's order."""
    weights = {id(variable) for variable in model.weights}
    variables = [variable for variable in model.variables if id(variable) not in weights]
    if variables and not saved:  # a state written before the manifest held them: resume, not bit for bit
        log.warning("the resume state holds no seed generator state: dropout draws restart from the seed")
        return
    if len(variables) != len(saved):
        raise ValueError(f"the resume state holds {len(saved)} seed generators, the model has {len(variables)}")
    for variable, (_, values) in zip(variables, saved):
        variable.assign(np.asarray(values, dtype=variable.dtype))


class EpochCheckpoint(keras.callbacks.Callback):
    """The trainer's only writer of resume state: after each epoch, the best model (when it
    improved), the history, the weights with the optimizer state, then the manifest (with the
    seed generators' state), each written atomically (see ``dfdetect.training.resume``). Replaces
    Keras's BackupAndRestore, ModelCheckpoint and CSVLogger, which write in place and leave a
    corrupt file when the job is killed mid-write.

    ``last``: every epoch counts as the best (``selection: last_epoch``). Put it after the
    EarlyStopping callback, so that a manifest records that training stopped.
    """

    def __init__(self, work: str | Path, state: ResumeState | None, monitor: str = "val_loss", last: bool = False):
        super().__init__()
        self.work = Path(work)
        self.state = state
        self.monitor = monitor
        self.last = last
        self.rows: list[dict] = read_history(self.work / state.history).to_dict("records") if state else []

    def on_train_begin(self, logs=None):
        if self.state is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # its variables must exist to be loaded
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.work / self.state.weights)
        restore_seed_generator_state(self.model, self.state.rng)

    def on_epoch_end(self, epoch, logs=None):
        fault_point(epoch, "epoch_end")
        logs = dict(logs or {})
        self.rows.append({"epoch": epoch, **{key: float(value) for key, value in sorted(logs.items())}})
        best, best_value = (self.state.best, self.state.best_value) if self.state else (None, None)
        if self.last or is_better(logs.get(self.monitor), best_value):
            best, best_value = file_name("best", epoch), float(logs.get(self.monitor, math.nan))
            self._write(epoch, "best", best, self.model.save, ".keras")
        history = file_name("history", epoch)
        self._write(epoch, "history", history, lambda path: pd.DataFrame(self.rows).to_csv(path, index=False), ".csv")
        weights = file_name("weights", epoch)
        self._write(epoch, "weights", weights, self.model.save_weights, ".weights.h5")
        state = ResumeState.describe(
            self.work,
            epochs=epoch + 1,
            weights=weights,
            history=history,
            best=best,
            best_value=best_value,
            stopped=bool(self.model.stop_training),
            rng=seed_generator_state(self.model),
        )
        self._write(epoch, "state", file_name("state", epoch), lambda path: state.write_to(path), ".json")
        self.state = state
        prune(self.work)
        fault_point(epoch, "pruned")

    def _write(self, epoch: int, step: str, name: str, writer: Callable[[Path], object], suffix: str) -> None:
        with atomic_path(self.work / name, suffix=suffix) as temporary:
            fault_point(epoch, f"{step}:created")
            writer(temporary)
            fault_point(epoch, f"{step}:written")
        fault_point(epoch, f"{step}:committed")
