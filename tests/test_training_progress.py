"""Training you can watch: progress lines within an epoch, and TensorBoard event files on each Keras
backend that is installed (the backend is chosen per process, so each runs in its own)."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from dfdetect.training.backend import select_backend

select_backend("tensorflow")  # before anything imports Keras

from dfdetect.training.callbacks import StepProgress  # noqa: E402


def test_step_progress_logs_at_most_every_interval_and_not_at_the_epochs_end(caplog):
    times = iter([0.0, 10.0, 31.0, 45.0, 70.0, 100.0])
    progress = StepProgress("cnn", steps=5, batch_size=8, every_s=30.0, clock=lambda: next(times))
    caplog.set_level(logging.INFO, logger="dfdetect.training.progress")
    progress.on_epoch_begin(2)  # t=0
    for batch in range(5):  # t=10, 31, 45, 70, 100 (the last step: the epoch line says the rest)
        progress.on_train_batch_end(batch, {"loss": 0.5 + batch})
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "cnn epoch 3: step 2/5 (40%), loss 1.5000, 1 samples/s, about 46 s left in the epoch",
        "cnn epoch 3: step 4/5 (80%), loss 3.5000, 0 samples/s, about 18 s left in the epoch",
    ]


FIT_WITH_TENSORBOARD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import numpy as np
    import keras

    from dfdetect.training.callbacks import StepProgress, tensorboard

    log_dir = Path(sys.argv[1])
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 2
    callbacks = [tensorboard(log_dir), StepProgress("tiny", steps=4, batch_size=8, every_s=0.0)]
    model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=8, callbacks=callbacks, verbose=0)
    print("fitted on", keras.backend.backend())
    """
)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_tensorboard_event_files_on_each_installed_backend(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed here")
    env = {**os.environ, "KERAS_BACKEND": backend, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", FIT_WITH_TENSORBOARD, str(tmp_path / "tb")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"fitted on {backend}" in done.stdout
    for run in ("train", "validation"):
        assert list((tmp_path / "tb" / run).glob("events.out.tfevents.*")), run
