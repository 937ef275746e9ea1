"""Pack speed: ``pack_batch`` against a bare decode loop over the same PNGs, in one process.

    .venv/bin/python benchmarks/pack.py [--videos 60] [--size 160] [--slots 30] [--repeat 5]

Generates one demo face batch (realistic noisy PNG crops), selects each video's single-face
frames as the reduce rule does (step 1 over ``--slots`` frames, so no frame is generated only to
be skipped), then alternates, ``--repeat`` times:

  pack:   ``pack_batch`` of the selection into a fresh store (zip reads, decode, memory-mapped
          writes, flush to disk, index);
  decode: the same zip members read and decoded with ``decode_face``, nothing written;

and prints frames/s of the best round of each, by wall clock and per CPU second of this process
(the machines are shared; CPU time leaves out the time others take, and pack's wait for the
disk), and pack/decode (goal >= 0.8: pack runs one process per batch, so its cost
beyond decoding is what one core loses per frame).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dfdetect.data.demo import DemoSpec, write_demo_batch  # noqa: E402
from dfdetect.data.ingest import ingest_batch  # noqa: E402
from dfdetect.data.reduce import select_frames  # noqa: E402
from dfdetect.data.store import StorePaths, decode_face, pack_batch  # noqa: E402
from dfdetect.layout import batch_file_name  # noqa: E402

BATCH = "0-0"


def make_batch(folder: Path, n_videos: int, size: int, n_slots: int) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """A demo zip, its video table, and the frames the workflow would pack from it (video_id, slot, member).

    Step 1: each of the first n_slots frame indices is its own slot (the workflow takes every 10th
    of 300 frames; only the stored bytes matter here, and generating 30 frames is faster).
    """
    zip_path = folder / batch_file_name(BATCH)
    write_demo_batch(
        zip_path, 0, DemoSpec.of(videos_per_batch=n_videos, image_size=size, n_frame_slots=max(n_slots, 10))
    )
    manifest = ingest_batch(zip_path, BATCH)
    selection = select_frames(manifest.frames, manifest.videos["video_id"], step=1, count=n_slots)
    return zip_path, manifest.videos, selection


def store_landmarks(prefix: Path) -> tuple[np.ndarray, str]:
    """The landmarks job's keypoints of a packed batch (the default model, dlib68) and a line
    saying how many frames have a face and how fast they were found."""
    from dfdetect.data.landmarks.detect import LandmarkSettings, load_landmark_model
    from dfdetect.data.landmarks.files import LandmarkPaths, landmark_store

    started = time.perf_counter()
    out = LandmarkPaths.for_prefix(prefix)
    settings = LandmarkSettings.from_mapping()
    found = landmark_store(StorePaths.for_prefix(prefix), out, load_landmark_model(settings), progress=False)
    seconds = time.perf_counter() - started
    return np.load(out.landmarks), (
        f"landmarks ({settings.model}): {found['found']} of {found['frames']} frames, "
        f"{found['frames'] / seconds:.0f} frames/s (model load included)"
    )


def machine_load() -> str:
    return f"cpus {os.cpu_count()}, loadavg {' '.join(f'{load:.2f}' for load in os.getloadavg())}"


def spin(start_at: float, seconds: float) -> float:
    """Busy-loop from ``start_at`` (time.time()) for ``seconds``; the CPU seconds it got."""
    while time.time() < start_at:
        time.sleep(0.01)
    cpu = time.process_time()
    while time.time() < start_at + seconds:
        pass
    return time.process_time() - cpu


def machine_share(workers: int, seconds: float = 2.0) -> float:
    """CPU that ``workers`` busy processes of this session get together, as a multiple of what one
    gets: the most any loader can scale here (a shared machine, or Linux's autogroup scheduling,
    which shares the CPU between sessions rather than processes, can make it far less than N)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(abs, range(workers)))  # start every process first
        alone = pool.submit(spin, time.time() + 0.5, seconds).result()
        together = sum(pool.map(spin, [time.time() + 0.5] * workers, [seconds] * workers))
        alone = (alone + pool.submit(spin, time.time() + 0.5, seconds).result()) / 2  # before and after
    return together / alone


@dataclass
class Timing:
    wall: float
    cpu: float  # this process's CPU time: what load from other processes does not inflate


def timed(work: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def time_pack(zip_path: Path, selection: pd.DataFrame, store_folder: Path, size: int, n_slots: int) -> Timing:
    shutil.rmtree(store_folder, ignore_errors=True)  # each round writes a new store, as a job does
    return timed(
        lambda: pack_batch(
            zip_path, selection, BATCH, StorePaths.for_prefix(store_folder / BATCH), size, n_slots, progress=False
        )
    )


def decode_all(zip_path: Path, members: list[str], size: int) -> None:
    """What pack cannot avoid: open the zip, read and decode every selected member."""
    with zipfile.ZipFile(zip_path) as archive:
        for member in members:
            decode_face(archive.read(member), size)


def time_decode(zip_path: Path, members: list[str], size: int) -> Timing:
    return timed(lambda: decode_all(zip_path, members, size))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=60, help="videos in the generated batch")
    parser.add_argument("--size", type=int, default=160, help="face crop size, px")
    parser.add_argument("--slots", type=int, default=30, help="frame slots per video")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of each (the best round counts)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="folder for the temporary data (default: the system temp folder)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dfdetect-bench-pack-", dir=args.workdir) as temp:
        folder = Path(temp)
        started = time.perf_counter()
        zip_path, _, selection = make_batch(folder, args.videos, args.size, args.slots)
        members = selection["member"].tolist()
        n_frames = len(members)
        with zipfile.ZipFile(zip_path) as archive:
            png_bytes = sum(archive.getinfo(member).file_size for member in members)
        print(
            f"data: {selection['video_id'].nunique()} videos, {n_frames} selected frames of "
            f"{args.size}x{args.size} ({png_bytes / n_frames / 1e3:.1f} kB PNG each), "
            f"zip {zip_path.stat().st_size / 1e6:.0f} MB; setup {time.perf_counter() - started:.0f} s; {machine_load()}"
        )

        decode_all(zip_path, members, args.size)  # untimed: the zip into the page cache, PIL's codecs loaded
        pack_rounds, decode_rounds = [], []
        for _ in range(args.repeat):  # alternate, so that a burst of load from elsewhere hits both
            pack_rounds.append(time_pack(zip_path, selection, folder / "store", args.size, args.slots))
            decode_rounds.append(time_decode(zip_path, members, args.size))

    rates = {}
    for name, rounds in (("pack_batch", pack_rounds), ("bare decode loop", decode_rounds)):
        wall, cpu = min(t.wall for t in rounds), min(t.cpu for t in rounds)
        rates[name] = (n_frames / wall, n_frames / cpu)
        print(
            f"{name:16s}: {n_frames / wall:5.0f} frames/s wall, {n_frames / cpu:5.0f} frames per CPU second "
            f"(wall rounds: {', '.join(f'{t.wall:.2f}' for t in rounds)} s)"
        )
    (pack_wall, pack_cpu), (decode_wall, decode_cpu) = rates.values()
    print(f"pack/decode     : {pack_wall / decode_wall:.2f} wall, {pack_cpu / decode_cpu:.2f} CPU   (goal >= 0.8)")


if __name__ == "__main__":
    main()
