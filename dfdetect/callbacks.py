"""Keras callbacks of the trainer (imports Keras: load after ``dfdetect.backend.select_backend``)."""

from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np
import pandas as pd

log = logging.getLogger("dfdetect.train")


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
        shown = " ".join(f"{key}={float(value):.4f}" for key, value in sorted((logs or {}).items())
                         if isinstance(value, (int, float, np.floating)) and math.isfinite(float(value)))
        log.info("%s epoch %d/%d: %s (%.1f s, %.0f samples/s)", self.model_name, epoch + 1, self.epochs,
                 shown, seconds, self.samples / max(seconds, 1e-9))


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
