"""Training-loader speed per augmentation recipe, and the loader workers a GPU needs.

    .venv/bin/python benchmarks/augment.py [--videos 40] [--size 160] [--slots 8] [--batch-size 32]
                                           [--seconds 6] [--target 4400]

Packs one demo face batch at ``--size`` (realistic noisy crops), then reads shuffled training
batches through ``FrameDataset`` (mode "all", one thread, ``dataset[i]`` as a Keras worker
calls it) for each recipe: augment none, flip and dfdc_winner (with its cutouts on the 68-point
landmarks the landmarks job finds, dlib68, timed once before), fakes sbi (half of every batch
self-blended from the other half), and sbi with dfdc_winner. For each it prints frames/s by wall
clock and per CPU second of this process (one core: the recipes keep OpenCV to one thread), and how many loader
workers (``models.NAME.loader_workers``) that is for ``--target`` images/s (4,400: EfficientNetB0
training on one H200 with JAX, env-notes). Goal: dfdc_winner >= 700 and SBI >= 400
frames/s per core, so that 12 workers or fewer feed one such GPU.
"""

from __future__ import annotations

import argparse
import math
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

from benchmarks.pack import BATCH, machine_load, make_batch  # noqa: E402
from dfdetect.data.landmarks import (  # noqa: E402
    LandmarkPaths,
    LandmarkSettings,
    landmark_store,
    load_landmark_model,
)
from dfdetect.data.store import FrameStore, StorePaths, pack_batch  # noqa: E402
from dfdetect.training.recipes import Recipe  # noqa: E402

RECIPES = {
    "augment none": Recipe(augment="none", fakes="labelled"),
    "augment flip": Recipe(augment="flip", fakes="labelled"),
    "augment dfdc_winner": Recipe(augment="dfdc_winner", fakes="labelled"),
    "fakes sbi": Recipe(augment="none", fakes="sbi"),
    "fakes sbi + dfdc_winner": Recipe(augment="dfdc_winner", fakes="sbi"),
}
GOALS = {"augment dfdc_winner": 700, "fakes sbi": 400}


def measure(
    store: FrameStore, videos, recipe: Recipe, landmarks, batch_size: int, seconds: float
) -> tuple[float, float]:
    """(frames/s by wall clock, frames/s per CPU second) over shuffled batches for ``seconds``."""
    from dfdetect.training.loader import FrameDataset

    dataset = FrameDataset(
        store, videos, mode="all", batch_size=batch_size, shuffle=True, recipe=recipe, landmarks=landmarks, seed=1
    )
    dataset[0]  # build the thread's pipelines outside the timing
    frames, index = 0, 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        if index == len(dataset):
            dataset.on_epoch_end()
            index = 0
        frames += len(dataset[index][1])
        index += 1
    return frames / (time.perf_counter() - wall), frames / max(time.process_time() - cpu, 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per recipe")
    parser.add_argument("--target", type=float, default=4400.0, help="images/s the GPU trains at")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dfdetect-augment-") as folder:
        zip_path, videos, selection = make_batch(Path(folder), args.videos, args.size, args.slots)
        pack_batch(
            zip_path,
            selection,
            BATCH,
            StorePaths.for_prefix(Path(folder) / "store" / BATCH),
            args.size,
            args.slots,
            progress=False,
        )
        store = FrameStore.from_folder(Path(folder) / "store")
        mask = store.masks[BATCH]
        started = time.perf_counter()
        prefix = Path(folder) / "store" / BATCH
        out = LandmarkPaths.for_prefix(prefix)
        model = load_landmark_model(LandmarkSettings.from_mapping())
        found = landmark_store(StorePaths.for_prefix(prefix), out, model, progress=False)
        landmark_seconds = time.perf_counter() - started
        landmarks = {BATCH: np.load(out.landmarks)}
        packed = set(store.index.loc[store.index["n_filled"] > 0, "video_id"])
        table = videos.loc[videos["video_id"].isin(packed), ["video_id", "label"]]
        print(
            f"{machine_load()}; {int(mask.sum())} frames of {args.size}x{args.size} from {len(table)} videos "
            f"({int((table['label'] == 0).sum())} REAL), batch {args.batch_size}, {args.seconds:g} s per recipe"
        )
        print(
            f"landmarks (dlib68): {found['found']} of {found['frames']} frames, "
            f"{found['frames'] / landmark_seconds:.0f} frames/s (model load included)"
        )
        workers = f"workers for {args.target:,.0f}/s"
        print(f"{'recipe':<26}{'frames/s':>10}{'per core':>10}{workers:>22}{'goal/core':>11}")
        for name, recipe in RECIPES.items():
            wall_rate, core_rate = measure(
                store, table, recipe, landmarks if recipe.needs_landmarks else None, args.batch_size, args.seconds
            )
            goal = GOALS.get(name)
            verdict = f"{goal} {'ok' if core_rate >= goal else 'MISSED'}" if goal else ""
            needed = math.ceil(args.target / core_rate)
            print(f"{name:<26}{wall_rate:>10.0f}{core_rate:>10.0f}{needed:>22d}{verdict:>11}")
    print("sbi rows: frames served (half real, half self-blended); a worker is one loader thread on one core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
