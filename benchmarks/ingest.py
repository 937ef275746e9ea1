"""Ingest of one large face batch against reading the zip's directory and against the study's
extract-and-count.

    python benchmarks/ingest.py [--members 100000] [--repeat 3] [--extract-repeat 1]

Writes one face batch with about `--members` face files (DFDC layout: 250 frames per video, every
tenth frame with a second face; all members share one tiny PNG so the zip stays small) and prints
the best of `--repeat` runs (`--extract-repeat` for the extraction) of:
  - zipfile.ZipFile(path).infolist(): the floor, reading the central directory alone;
  - dfdetect.data.ingest.ingest_batch: central directory + metadata.csv -> frame and video tables;
  - the study's way: extract the zip, then count the files in each video's folder.
Goal: ingest at most 3x the bare infolist().
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from dfdetect.data.ingest import ingest_batch  # noqa: E402
from dfdetect.layout import batch_file_name  # noqa: E402
from dfdetect.testkit.batches import Video, face_pixels, png_bytes, write_face_batch  # noqa: E402

FRAMES_PER_VIDEO = 250


def write_batch(path: Path, n_members: int) -> int:
    """A batch of about n_members face files; returns the exact count."""
    n_videos = max(1, round(n_members / (FRAMES_PER_VIDEO * 1.1)))
    second_faces = {frame: 2 for frame in range(0, FRAMES_PER_VIDEO, 10)}  # as in two-actor videos
    videos = [
        Video(
            f"v{number:05d}",
            "REAL" if number % 5 == 0 else "FAKE",
            None if number % 5 == 0 else f"v{number - number % 5:05d}",
            range(FRAMES_PER_VIDEO),
            second_faces,
        )
        for number in range(n_videos)
    ]
    write_face_batch(path, videos, image=png_bytes(face_pixels("placeholder", 0, size=4)))
    return n_videos * (FRAMES_PER_VIDEO + len(second_faces))


def best(function: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, and what the last call returned."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def extract_and_count(path: Path, target: Path) -> dict[str, int]:
    """The study's way: unzip, then count the files of each video folder."""
    with zipfile.ZipFile(path) as archive:
        archive.extractall(target)
    return {entry.name: len(os.listdir(entry.path)) for entry in os.scandir(target) if entry.is_dir()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000, help="face files in the batch (about)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of infolist() and ingest_batch (best is kept)")
    parser.add_argument("--extract-repeat", type=int, default=1, help="runs of extract + count")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="dfdetect-ingest-bench-"))
    try:
        path = scratch / batch_file_name("0-0")
        members = write_batch(path, args.members)
        print(f"batch: {members} face files, {path.stat().st_size / 1e6:.1f} MB")

        def infolist() -> None:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()

        bare, _ = best(infolist, args.repeat)
        ingest, manifest = best(lambda: ingest_batch(path, "0-0"), args.repeat)
        # Extraction takes minutes on these disks: timed once unless asked for more (removal not timed).
        study, counts = best(lambda: extract_and_count(path, Path(tempfile.mkdtemp(dir=scratch))), args.extract_repeat)
        # All three saw the same face files.
        assert len(manifest.frames) == sum(counts.values()) == members
        print(f"zipfile infolist()      : {bare:6.2f} s")
        print(f"ingest_batch            : {ingest:6.2f} s  ({ingest / bare:.1f}x infolist; goal <= 3x)")
        print(f"extract + count folders : {study:6.2f} s  ({study / ingest:.1f}x ingest)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
