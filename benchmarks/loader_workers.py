"""The ways to run the training loader's per-sample work in parallel, side by side, through
Keras's own ``fit``.

    .venv/bin/python benchmarks/loader_workers.py [--workers N] [--videos 40] [--repeat 4] [--size 160]
                                                  [--slots 8] [--batch-size 32] [--epochs 4]
                                                  [--recipes dfdc_winner sbi] [--candidates ...]

Candidates, each with N workers (default: the cores this process may use):

- ``one thread``: ``FrameDataset`` with one Keras worker (the reference);
- ``keras threads``: Keras's ``PyDataset`` workers as threads (``use_multiprocessing=False``);
- ``keras processes``: Keras's ``PyDataset`` with ``use_multiprocessing=True`` (a forked pool per
  epoch; batches are pickled back through pipes);
- ``grain``: a Grain ``MapDataset`` of batches made by the same ``BatchMaker``, with
  ``mp_prefetch`` (spawned processes per epoch; batches through shared memory), if ``grain`` is
  installed (``pip install grain``);
- ``dfdetect processes``: ``FrameDataset(processes=True)`` (``dfdetect.training.workers``: spawned
  once, batches written into a shared-memory ring).

Each candidate trains a trivial model (global average pool + dense, so the loader is what is
measured) for ``--epochs`` epochs in its own fresh process (TensorFlow backend), on a demo batch
at ``--size`` whose table is repeated ``--repeat`` times for longer epochs; the steady rate is
over the epochs after the first. Every candidate's first two batches of epoch 1 are compared with
the reference's. Prints frames/s, the share of ``one thread`` and the cores used (CPU seconds of
the candidate's processes per wall second in the steady epochs: what the machine gave them, and
whether the work spread over the workers) per recipe and candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from dfdetect.training.workers import usable_cores  # noqa: E402

CANDIDATES = ("one thread", "keras threads", "keras processes", "grain", "dfdetect processes")
RECIPES = {"dfdc_winner": {"augment": "dfdc_winner", "fakes": "labelled"}, "sbi": {"augment": "none", "fakes": "sbi"}}


class BatchOfEpoch:
    """Grain's map function: batch ``index`` of the epoch in ``self.epoch`` (set before each epoch;
    Grain pickles it into its workers when an epoch's iteration starts)."""

    def __init__(self, maker, orders: dict, labels: np.ndarray, weights: dict | None, batch_size: int) -> None:
        self.maker, self.orders, self.labels, self.weights = maker, orders, labels, weights
        self.batch_size, self.epoch = batch_size, 0

    def __call__(self, index: int):
        items = self.orders[self.epoch][index * self.batch_size : (index + 1) * self.batch_size]
        inputs = self.maker.make(items, self.epoch)
        labels = self.labels[items]
        weights = np.ones_like(labels) if self.weights is None else np.where(labels > 0.5, *self.weights.values())
        return inputs, labels, weights.astype("float32")


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and its descendants, live or reaped (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = sum(int(value) for value in fields[11:15]) / ticks  # utime, stime, reaped children's
    mine, total = os.getpid(), 0.0
    for pid, seconds in cpu.items():
        ancestor = pid
        while ancestor in parents and ancestor != mine:
            ancestor = parents[ancestor]
        total += seconds if ancestor == mine else 0.0
    return total


# ------------------------------------------------------------------------------------------------
# One candidate, in its own process


def run_candidate(candidate: str, recipe_name: str, args: argparse.Namespace, folder: Path) -> dict:
    import keras
    import pandas as pd

    from dfdetect.data.store import FrameStore
    from dfdetect.training.loader import FrameDataset, class_weights
    from dfdetect.training.recipes import Recipe

    store = FrameStore.from_folder(folder / "store")
    table = pd.read_parquet(folder / "videos.parquet")
    landmarks = {batch: np.load(folder / f"{batch}.keypoints.npy") for batch in store.masks}
    recipe = Recipe(**RECIPES[recipe_name])
    videos = table[table["label"] == 0] if recipe.fakes == "sbi" else table
    # sbi serves each REAL frame twice: as many repeats as make its epoch about as long as the others'
    repeat = args.repeat * max(1, round(len(table) / (2 * len(videos))))
    videos = pd.concat([videos] * repeat, ignore_index=True)
    weights = None if recipe.uses_sbi else class_weights(videos["label"])

    def loader(**kwargs) -> FrameDataset:
        return FrameDataset(
            store,
            videos,
            mode="all",
            batch_size=args.batch_size,
            shuffle=True,
            seed=1,
            recipe=recipe,
            landmarks=landmarks,
            class_weight=weights,
            **kwargs,
        )

    reference = loader()
    if recipe.uses_sbi:
        reference.class_weight = class_weights(reference.labels)
    expected = [reference[index] for index in range(2)]
    data, epoch_setter = None, None
    if candidate == "one thread":
        data = loader(workers=1)
    elif candidate == "keras threads":
        data = loader(workers=args.workers, use_multiprocessing=False)
    elif candidate == "keras processes":
        data = loader(workers=args.workers, use_multiprocessing=True)
    elif candidate == "dfdetect processes":
        data = loader(workers=args.workers, processes=True)
    elif candidate == "grain":
        import grain

        orders = {epoch: reference._order_of(epoch) for epoch in range(args.epochs)}
        batches = BatchOfEpoch(reference.maker, orders, reference._item_labels, reference.class_weight, args.batch_size)
        data = (
            grain.MapDataset.range(len(reference))
            .map(batches)
            .to_iter_dataset()
            .mp_prefetch(grain.MultiprocessingOptions(num_workers=args.workers))
        )

        def epoch_setter(epoch: int) -> None:
            batches.epoch = epoch

    if hasattr(data, "class_weight") and recipe.uses_sbi:
        data.class_weight = reference.class_weight
    same = same_batches(data, expected, epoch_setter)

    inputs = keras.Input((args.size, args.size, 3), dtype="uint8", name="frames")
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model({"frames": inputs}, keras.layers.Dense(1, activation="sigmoid")(pooled))
    model.compile("adam", "binary_crossentropy")

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.cores: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            if epoch_setter is not None:
                epoch_setter(epoch)
            self.started, self.cpu = time.perf_counter(), tree_cpu_seconds()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)
            self.cores.append((tree_cpu_seconds() - self.cpu) / self.seconds[-1])

    timer = Timer()
    model.fit(data, epochs=args.epochs, shuffle=False, callbacks=[timer], verbose=0)
    if hasattr(data, "close"):
        data.close()
    frames_per_epoch = reference.n_items
    return {
        "candidate": candidate,
        "recipe": recipe_name,
        "frames_per_epoch": frames_per_epoch,
        "epoch_seconds": timer.seconds,
        "steady_frames_per_s": frames_per_epoch * (len(timer.seconds) - 1) / sum(timer.seconds[1:]),
        "steady_cores": float(np.mean(timer.cores[1:])),
        "same_batches": same,
    }


def same_batches(data, expected: list, epoch_setter) -> bool:
    """The candidate's first batches of epoch 0 equal the in-process loader's."""
    if epoch_setter is not None:  # grain: iterate a copy of the pipeline's first batches
        epoch_setter(0)
        iterator = iter(data)
        got = [next(iterator) for _ in expected]
        iterator.close() if hasattr(iterator, "close") else None
    else:
        got = [data[index] for index in range(len(expected))]
    return all(
        np.array_equal(one[0]["frames"], other[0]["frames"]) and np.array_equal(one[1], other[1])
        for one, other in zip(got, expected)
    )


# ------------------------------------------------------------------------------------------------
# The comparison


def prepare(folder: Path, args: argparse.Namespace) -> str:
    """The demo batch, packed, with its landmarks (as the landmarks job finds them) and its video
    table, under ``folder``; returns the landmarks line."""
    from benchmarks.pack import BATCH, make_batch, store_landmarks
    from dfdetect.data.store import FrameStore, StorePaths, pack_batch

    zip_path, videos, selection = make_batch(folder, args.videos, args.size, args.slots)
    store_paths = StorePaths.for_prefix(folder / "store" / BATCH)
    pack_batch(zip_path, selection, BATCH, store_paths, args.size, args.slots, progress=False)
    store = FrameStore.from_folder(folder / "store")
    packed = set(store.index.loc[store.index["n_filled"] > 0, "video_id"])
    videos.loc[videos["video_id"].isin(packed), ["video_id", "label"]].to_parquet(folder / "videos.parquet")
    keypoints, found = store_landmarks(folder / "store" / BATCH)
    np.save(folder / f"{BATCH}.keypoints.npy", keypoints)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=4, help="the video table this many times over: longer epochs")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--timeout", type=float, default=600, help="seconds per candidate before it counts as hung")
    parser.add_argument("--run", nargs=3, metavar=("CANDIDATE", "RECIPE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run:
        candidate, recipe, folder = args.run
        print("RESULT " + json.dumps(run_candidate(candidate, recipe, args, Path(folder))), flush=True)
        return 0

    from benchmarks.pack import machine_load, machine_share

    passed = [
        f"--{key.replace('_', '-')}={value}"
        for key, value in vars(args).items()
        if key in ("workers", "repeat", "size", "slots", "batch_size", "epochs")
    ]
    with tempfile.TemporaryDirectory(prefix="dfdetect-loader-workers-") as temp:
        folder = Path(temp)
        found = prepare(folder, args)
        print(f"{machine_load()}; {args.workers} workers; batch {args.batch_size}; {args.epochs} epochs per candidate")
        print(found)
        print(
            f"CPU the machine gives {args.workers} busy processes of this session: "
            f"{machine_share(args.workers):.2f}x one (the most any candidate can scale here)"
        )
        print(
            f"{'recipe':<13}{'candidate':<20}{'frames/s':>10}{'x one thread':>14}{'cores used':>12}{'first epoch':>13}"
            "  same batches"
        )
        for recipe in args.recipes:
            baseline = None
            for candidate in args.candidates:
                command = [sys.executable, __file__, *passed, "--run", candidate, recipe, str(folder)]
                try:
                    done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{recipe:<13}{candidate:<20}  hung (no result within {args.timeout:g} s)")
                    continue
                lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                    print(f"{recipe:<13}{candidate:<20}  failed: {reason}")
                    continue
                result = json.loads(lines[-1][len("RESULT ") :])
                rate = result["steady_frames_per_s"]
                baseline = rate if candidate == "one thread" else baseline
                share = f"{rate / baseline:.2f}" if baseline else "-"
                print(
                    f"{recipe:<13}{candidate:<20}{rate:>10.0f}{share:>14}{result['steady_cores']:>12.2f}"
                    f"{result['epoch_seconds'][0]:>12.1f}s  "
                    f"{'yes' if result['same_batches'] else 'NO'}",
                    flush=True,
                )
        print(f"{machine_load()} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
