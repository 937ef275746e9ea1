"""Training-loader frames/s per recipe, with the loader exactly as training builds it: 1 worker,
then one worker per core.

    .venv/bin/python benchmarks/augment.py [--videos 40] [--size 160] [--slots 8] [--batch-size 32]
                                           [--seconds 6] [--rounds 2] [--workers N]

Packs one demo face batch at ``--size`` (realistic noisy crops) and finds its landmarks as the
landmarks job does (the default model, dlib68; frames without a face use the fallback), then for
each recipe (augment none, flip and dfdc_winner; fakes sbi; sbi with dfdc_winner) builds the
training loader with
``dfdetect.training.inputs.make_loaders`` (``frames_per_video: all``, the schema's defaults
otherwise: worker processes) with ``loader_workers`` 1 and N (default: the cores this process may
use), and reads its batches in order as Keras's ``fit`` does (``dataset[i]``, then
``on_epoch_end``). One untimed epoch first (the workers' start-up, their pipelines), then the two
loaders alternate in ``--rounds`` slices of ``--seconds / rounds`` each, so that load from other
processes hits both alike. First it measures how much more CPU N busy processes get than one
on this machine now (the ceiling of any scaling: a loaded machine gives less than N). Then it
prints frames/s, the scaling N/1, the cores the loader got (CPU seconds of the trainer's process
and its workers per wall second: on a busy machine fewer than N) and the first epoch (the
workers' start-up) per recipe, and ends with exactly one line
``scaling N workers / 1: dfdc_winner A.AAx, sbi B.BBx``.
"""

from __future__ import annotations

import argparse
import os
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
import pandas as pd  # noqa: E402

from benchmarks.pack import BATCH, machine_load, machine_share, make_batch, store_landmarks  # noqa: E402
from dfdetect.data.store import FrameStore, StorePaths, pack_batch  # noqa: E402
from dfdetect.training.inputs import make_loaders  # noqa: E402
from dfdetect.training.recipes import Recipe  # noqa: E402
from dfdetect.training.train import TrainSettings  # noqa: E402
from dfdetect.training.workers import usable_cores  # noqa: E402

RECIPES = {
    "augment none": {"augment": "none", "fakes": "labelled"},
    "augment flip": {"augment": "flip", "fakes": "labelled"},
    "augment dfdc_winner": {"augment": "dfdc_winner", "fakes": "labelled"},
    "fakes sbi": {"augment": "none", "fakes": "sbi"},
    "fakes sbi + dfdc_winner": {"augment": "dfdc_winner", "fakes": "sbi"},
}
SCALING_LINE = {"dfdc_winner": "augment dfdc_winner", "sbi": "fakes sbi"}


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds (user + system) this process and ``pids`` have used so far (Linux /proc)."""
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Reader:
    """Batches of one training loader in Keras's order, across epochs."""

    def __init__(self, dataset) -> None:
        self.dataset, self.index = dataset, 0

    def next_batch(self) -> int:
        if self.index == len(self.dataset):
            self.dataset.on_epoch_end()
            self.index = 0
        frames = len(self.dataset[self.index][1])
        self.index += 1
        return frames

    def first_epoch(self) -> float:
        """Seconds of one epoch from a cold loader (its workers start with the first batch)."""
        started = time.perf_counter()
        while self.index < len(self.dataset):
            self.next_batch()
        return time.perf_counter() - started

    def read_for(self, seconds: float) -> tuple[int, float, float]:
        """(frames, wall seconds, CPU seconds of the trainer's process and the workers)."""
        pool = self.dataset.pool
        pids = [process.pid for process in pool._processes] if pool is not None else []
        frames, started, cpu = 0, time.perf_counter(), cpu_seconds(pids)
        while time.perf_counter() - started < seconds:
            frames += self.next_batch()
        return frames, time.perf_counter() - started, cpu_seconds(pids) - cpu


def loader_for(settings: dict, workers: int, store, table, landmarks, batch_size: int):
    """The training loader of ``settings`` (a recipe) with ``workers`` loader workers, as training builds it."""
    train_settings = TrainSettings.from_config(
        {"arch": "cnn", "frames_per_video": "all", "loader_workers": workers, **settings}
    )
    recipe = Recipe.from_settings(train_settings.model)
    videos = table
    if recipe.fakes == "sbi":  # the REAL videos only, repeated for an epoch about as long as the others'
        reals = table[table["label"] == 0]
        videos = pd.concat([reals] * max(1, round(len(table) / (2 * len(reals)))), ignore_index=True)
    train_data, _ = make_loaders(
        train_settings,
        recipe,
        store,
        videos,
        table,
        landmarks=landmarks if recipe.needs_landmarks else None,
        batch_size=batch_size,
    )
    return train_data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per recipe and worker count")
    parser.add_argument("--rounds", type=int, default=2, help="alternating slices of the timed seconds")
    parser.add_argument("--workers", type=int, default=usable_cores(), help="default: the cores this process may use")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dfdetect-augment-") as folder:
        zip_path, videos, selection = make_batch(Path(folder), args.videos, args.size, args.slots)
        store_paths = StorePaths.for_prefix(Path(folder) / "store" / BATCH)
        pack_batch(zip_path, selection, BATCH, store_paths, args.size, args.slots, progress=False)
        store = FrameStore.from_folder(Path(folder) / "store")
        mask = store.masks[BATCH]
        keypoints, found = store_landmarks(Path(folder) / "store" / BATCH)
        landmarks = {BATCH: keypoints}
        packed = set(store.index.loc[store.index["n_filled"] > 0, "video_id"])
        table = videos.loc[videos["video_id"].isin(packed), ["video_id", "label"]].reset_index(drop=True)
        print(
            f"{machine_load()}; {int(mask.sum())} frames of {args.size}x{args.size} from {len(table)} videos "
            f"({int((table['label'] == 0).sum())} REAL), batch {args.batch_size}; worker processes 1 and "
            f"{args.workers}; {args.seconds:g} s per recipe and count in {args.rounds} alternating slices"
        )
        print(found)
        print(
            f"CPU the machine gives {args.workers} busy processes of this session: "
            f"{machine_share(args.workers):.2f}x one (the most any loader can scale here)"
        )
        print(
            f"{'recipe':<26}{'1 worker':>10}{f'{args.workers} workers':>12}{'scaling':>9}{'cores used 1 / N':>18}"
            f"{'first epoch 1 / N':>20}"
        )
        scaling = {}
        for name, settings in RECIPES.items():
            readers = {
                count: Reader(loader_for(settings, count, store, table, landmarks, args.batch_size))
                for count in (1, args.workers)
            }
            try:
                first = {count: reader.first_epoch() for count, reader in readers.items()}
                totals = {count: np.zeros(3) for count in readers}  # frames, wall seconds, CPU seconds
                for _ in range(args.rounds):
                    for count, reader in readers.items():
                        totals[count] += reader.read_for(args.seconds / args.rounds)
            finally:
                for reader in readers.values():
                    reader.dataset.close()
            rates = {count: frames / seconds for count, (frames, seconds, _) in totals.items()}
            cores = {count: cpu / seconds for count, (_, seconds, cpu) in totals.items()}
            scaling[name] = rates[args.workers] / rates[1]
            print(
                f"{name:<26}{rates[1]:>10.0f}{rates[args.workers]:>12.0f}{scaling[name]:>8.2f}x"
                f"{cores[1]:>11.2f} / {cores[args.workers]:.2f}{first[1]:>13.1f} / {first[args.workers]:.1f} s"
            )
    print(
        "frames/s of the training loader's batches in Keras's order; cores used: CPU seconds of the trainer's "
        f"process and its workers per second (what the machine gave them); {machine_load()} at the end"
    )
    print(
        f"scaling {args.workers} workers / 1: "
        + ", ".join(f"{short} {scaling[name]:.2f}x" for short, name in SCALING_LINE.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
