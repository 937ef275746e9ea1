"""The training loader's worker processes: the same batches as in the training process for any
number of workers (and with threads), in any order of asking; failures reported; no Keras in them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.training.loader import FrameDataset, class_weights
from dfdetect.training.recipes import Recipe
from dfdetect.training.workers import BatchWorkers, LoaderWorkerError, default_worker_count, usable_cores
from tests.helpers.probe_maker import ProbeMaker, report_of

SIZE = 32
N_SLOTS = 4
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FrameStore:
    """One batch of 4 REAL and 4 FAKE videos, 4 slots each, packed as the workflow packs it."""
    folder = tmp_path_factory.mktemp("workers-store")
    videos = [Video(f"r{k}", frames=range(0, 40, 10)) for k in range(4)]
    videos += [Video(f"f{k}", "FAKE", f"r{k}", range(0, 40, 10)) for k in range(4)]
    zip_path = write_face_batch(folder / "deepfake-detection-faces-part-0-0.zip", videos, size=SIZE)
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, N_SLOTS)
    pack_batch(zip_path, selection, "0-0", StorePaths.for_prefix(folder / "store" / "0-0"), SIZE, N_SLOTS, False)
    return FrameStore.from_folder(folder / "store")


def videos(store: FrameStore, real_only: bool = False) -> pd.DataFrame:
    table = store.index[["video_id"]].copy()
    table["label"] = table["video_id"].str.startswith("f").astype(int)
    return table[table["label"] == 0] if real_only else table


def landmarks(store: FrameStore) -> dict[str, np.ndarray]:
    """No face found anywhere: every frame takes the fallback geometry."""
    return {batch: np.full(mask.shape + (5, 2), np.nan, dtype=np.float32) for batch, mask in store.masks.items()}


def loader(store: FrameStore, recipe: Recipe, mode="all", **kwargs) -> FrameDataset:
    table = videos(store, real_only=recipe.fakes == "sbi")
    return FrameDataset(
        store,
        table,
        mode=mode,
        batch_size=5,  # 32 frames: the last batch is a short one
        shuffle=True,
        seed=11,
        recipe=recipe,
        landmarks=landmarks(store),
        class_weight=class_weights(table["label"]) if recipe.fakes != "sbi" else None,
        **kwargs,
    )


def epochs_of(dataset: FrameDataset, epochs=(0, 1), indices=None) -> list:
    batches = []
    for epoch in epochs:
        dataset.set_epoch(epoch)
        batches += [dataset[index] for index in (indices or range(len(dataset)))]
    return batches


def assert_same_batches(left: list, right: list) -> None:
    assert len(left) == len(right)
    for one, other in zip(left, right):
        assert one[0].keys() == other[0].keys()
        for name in one[0]:
            np.testing.assert_array_equal(one[0][name], other[0][name])
        for part in range(1, len(one)):  # labels, sample weights
            np.testing.assert_array_equal(one[part], other[part])


@pytest.mark.parametrize(
    ("recipe", "mode"),
    [
        (Recipe(augment="dfdc_winner", fakes="labelled"), "all"),
        (Recipe(augment="none", fakes="sbi"), "all"),
        (Recipe(augment="dfdc_winner", fakes="both"), "all"),
        (Recipe(augment="dfdc_winner", fakes="labelled"), "clip"),
    ],
)
def test_same_batches_with_one_or_two_processes_and_with_threads(store, recipe, mode):
    reference = loader(store, recipe, mode)
    expected = epochs_of(reference)
    assert not np.array_equal(expected[0][0]["frames"], reference.maker.make(reference._items(0), 5)["frames"])

    threaded = loader(store, recipe, mode, workers=2)  # Keras's thread workers ask for batches concurrently
    with ThreadPoolExecutor(2) as pool:
        got = []
        for epoch in (0, 1):
            threaded.set_epoch(epoch)
            got += list(pool.map(threaded.__getitem__, range(len(threaded))))
    assert_same_batches(got, expected)

    for workers in (1, 2):
        with_processes = loader(store, recipe, mode, workers=workers, processes=True)
        try:
            assert_same_batches(epochs_of(with_processes), expected)
            assert with_processes.pool.workers == workers
        finally:
            with_processes.close()
        assert with_processes.pool is None


def test_any_order_of_asking_and_a_change_of_epoch_mid_way(store):
    recipe = Recipe(augment="dfdc_winner", fakes="labelled")
    reference, with_processes = loader(store, recipe), loader(store, recipe, workers=2, processes=True)
    try:
        asked = [(0, 3), (0, 0), (0, 1), (2, 1), (2, 6), (2, 0), (1, 2)]  # (epoch, batch)
        for epoch, index in asked:
            reference.set_epoch(epoch)
            with_processes.set_epoch(epoch)
            assert_same_batches([with_processes[index]], [reference[index]])
        with_processes.on_epoch_end()  # Keras's end of epoch: the next one's batches
        reference.on_epoch_end()
        assert with_processes.epoch == reference.epoch == 2
        assert_same_batches(epochs_of(with_processes, [2]), epochs_of(reference, [2]))
    finally:
        with_processes.close()


def test_workers_run_without_keras_even_when_the_trainer_has_it(store):
    import keras  # noqa: F401  (the trainer's process has Keras; a spawned worker starts clean)

    real = loader(store, Recipe(augment="dfdc_winner", fakes="sbi"))
    workers = BatchWorkers(ProbeMaker(inner=real.maker), batch_size=2, workers=1)
    try:
        batch = workers.fetch(workers.submit(0, np.arange(2)))
        assert report_of(batch) == ""
        np.testing.assert_array_equal(batch["items"], [0, 1])
        assert workers.wait_until_started() > 0
    finally:
        workers.close()


def test_a_failing_worker_reports_its_traceback():
    workers = BatchWorkers(ProbeMaker(fail_at_epoch=1), batch_size=2, workers=2)
    try:
        np.testing.assert_array_equal(workers.fetch(workers.submit(0, np.arange(2)))["items"], [0, 1])
        with pytest.raises(LoaderWorkerError, match="(?s)failed making a batch.*ValueError: broken frame in epoch 1"):
            workers.fetch(workers.submit(1, np.arange(2)))
        np.testing.assert_array_equal(workers.fetch(workers.submit(2, np.arange(1)))["items"], [2000])
        with pytest.raises(ValueError, match="3 items do not fit a batch of 2"):
            workers.submit(2, np.arange(3))
    finally:
        workers.close()


def test_a_dead_worker_fails_the_wait_instead_of_hanging():
    workers = BatchWorkers(ProbeMaker(die_at_epoch=1), batch_size=2, workers=1)
    try:
        with pytest.raises(LoaderWorkerError, match="died .*exit code -9"):
            workers.fetch(workers.submit(1, np.arange(2)))
    finally:
        workers.close()


def test_an_unguarded_main_script_runs_once_and_its_workers_leave_when_it_is_killed(tmp_path):
    """Snakemake's script: files have no __name__ guard; a spawned worker must not run them again."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, signal, sys
            sys.path.insert(0, {str(ROOT)!r})
            import numpy as np
            from dfdetect.training.workers import BatchWorkers
            from tests.helpers.probe_maker import ProbeMaker

            workers = BatchWorkers(ProbeMaker(), batch_size=2, workers=2)
            batch = workers.fetch(workers.submit(0, np.arange(2)))
            print("fetched", batch["items"].tolist(), flush=True)
            print("workers", *[process.pid for process in workers._processes], flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up at all
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("fetched")] == ["fetched [0, 1]"], done.stderr
    pids = [int(pid) for pid in next(line for line in lines if line.startswith("workers")).split()[1:]]
    deadline = time.monotonic() + 20
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state and "Z" not in state.split()[1]


def test_default_worker_count_is_the_jobs_threads_within_the_usable_cores():
    cores = usable_cores()
    assert cores == len(os.sched_getaffinity(0))
    assert default_worker_count(None) == cores
    assert default_worker_count(1) == 1
    assert default_worker_count(cores + 5) == cores
