"""Training-input speed: the frame-store loader against per-file PNG reading and a plain copy.

    .venv/bin/python benchmarks/loader.py [--videos 80] [--size 160] [--slots 30]
                                          [--batch-size 128] [--seconds 4] [--rounds 4]

Generates one demo face batch (realistic noisy PNG crops, ``--slots`` frames per video), packs
every single-face frame into a frame store, extracts the same frames to a temporary folder as
``{video}/{frame}.png`` files (setup, not timed), then prints frames/s of, on the same frames:

  (a) the store loader: ``FrameDataset`` (mode "all", shuffle) over the memory-mapped store,
      reading batches ``dataset[i]`` in one thread;
  (b) the study's way: ``imageio.v3.imread`` of each PNG file in a shuffled order, stacked into
      batches of the same size;
  (c) a plain copy: the same bytes from an in-RAM array into a batch buffer, batch by batch;

and the ratios a/b and a/c (goal: a/b >= 50 and a/c >= 0.3 on 2 cores).

Page cache: "cold" epochs start with the files dropped from the page cache (``posix_fadvise``
DONTNEED, after a sync) and a fresh memory map, repeated until ``--seconds`` are spent; "warm"
runs follow an untimed pass, so every page is cached (for the store: also mapped, as in the
second and later epochs of training), and (a), (b) and (c) alternate in ``--rounds`` slices so
that load from other processes hits them alike. Each line says how much of its files was in
the page cache when it was timed (util-linux ``fincore``).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks.pack import BATCH, machine_load, make_batch  # noqa: E402
from dfdetect.data.store import FrameStore, StorePaths, pack_batch  # noqa: E402
from dfdetect.training.backend import select_backend  # noqa: E402

SEED = 2006


@dataclass
class BenchData:
    """One packed store and the same frames as extracted PNG files, in the loader's sample order."""

    store_prefix: Path
    videos: pd.DataFrame  # video_id, label: what the loader serves
    png_paths: list[Path]  # one per sample of FrameDataset(mode="all"), in sample order


@dataclass
class Rate:
    frames: int
    seconds: float
    cached: str  # how much of the input was in the page cache when timing began

    @property
    def per_second(self) -> float:
        return self.frames / self.seconds


# --------------------------------------------------------------------------------------------
# Setup (not timed)


def make_data(folder: Path, n_videos: int, size: int, n_slots: int) -> BenchData:
    """Demo zip -> manifest -> every single-face frame of each video -> store + extracted PNGs."""
    from dfdetect.training.loader import sample_table  # imports Keras

    zip_path, all_videos, selection = make_batch(folder, n_videos, size, n_slots)
    prefix = folder / "store" / BATCH
    pack_batch(zip_path, selection, BATCH, StorePaths.for_prefix(prefix), size, n_slots, progress=False)
    packed = all_videos["video_id"].isin(set(selection["video_id"]))
    videos = all_videos.loc[packed, ["video_id", "label"]].reset_index(drop=True)
    store = FrameStore([StorePaths.for_prefix(prefix)])
    samples = sample_table(store, videos, "all")  # the loader's samples, in its unshuffled order
    del store
    png_paths = extract_pngs(zip_path, sample_members(samples, selection), folder / "extracted")
    return BenchData(prefix, videos, png_paths)


def extract_pngs(zip_path: Path, members: Sequence[str], folder: Path) -> list[Path]:
    """The study's layout: each selected face as its own file ``{video}/{frame}.png``."""
    paths = []
    with zipfile.ZipFile(zip_path) as archive:
        for member in members:
            path = folder / member
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(member))
            paths.append(path)
    return paths


def sample_members(samples: pd.DataFrame, selection: pd.DataFrame) -> list[str]:
    """The zip member of each (video_id, slot) sample, in sample order."""
    member_of = selection.set_index(["video_id", "slot"])["member"]
    return [member_of[(video_id, slot)] for video_id, slot in samples[["video_id", "slot"]].itertuples(index=False)]


# --------------------------------------------------------------------------------------------
# Page cache


def drop_from_page_cache(paths: Sequence[Path]) -> None:
    """Evict the files' pages from the page cache (Linux; pages mapped by a process stay)."""
    os.sync()  # DONTNEED skips dirty pages
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_share(paths: Sequence[Path]) -> str:
    """'NN% cached' from util-linux ``fincore`` (mincore), or 'cache unknown' without it."""
    if not shutil.which("fincore"):
        return "cache unknown"
    page = os.sysconf("SC_PAGE_SIZE")
    total = sum(-(-path.stat().st_size // page) * page for path in paths)  # fincore counts whole pages
    resident = 0
    for start in range(0, len(paths), 500):  # keep each command line short
        chunk = [str(path) for path in paths[start : start + 500]]
        result = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", *chunk], capture_output=True, text=True
        )
        if result.returncode != 0:
            return "cache unknown"
        resident += sum(int(line) for line in result.stdout.split())
    return f"{resident / max(total, 1):4.0%} cached"


# --------------------------------------------------------------------------------------------
# The three readers: each serves batches until a deadline or the end of its epoch


class StoreLoaderReader:
    """(a) ``FrameDataset`` batches over a fresh memory map of the store."""

    def __init__(self, data: BenchData, batch_size: int, seed: int):
        from dfdetect.training.loader import FrameDataset  # imports Keras

        self.files = [StorePaths.for_prefix(data.store_prefix).frames]
        self.store = FrameStore([StorePaths.for_prefix(data.store_prefix)])
        self.dataset = FrameDataset(self.store, data.videos, mode="all", batch_size=batch_size, shuffle=True, seed=seed)

    def warm_up(self) -> None:
        self.read(float("inf"))  # fills the page cache and maps every page, as epoch 1 does

    def read(self, deadline: float) -> int:
        served = 0
        for index in range(len(self.dataset)):
            inputs, _ = self.dataset[index]
            served += len(inputs["frames"])
            if time.perf_counter() >= deadline:
                break
        self.dataset.on_epoch_end()  # a new shuffle, as Keras does between epochs
        return served

    def close(self) -> None:
        del self.dataset, self.store
        gc.collect()  # unmap, or DONTNEED cannot evict the pages for the next cold round


class PerFileReader:
    """(b) The study's way: ``imageio.v3.imread`` of each PNG file, in a shuffled order."""

    def __init__(self, data: BenchData, batch_size: int, seed: int):
        self.files = data.png_paths
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.batch = np.empty((batch_size, *iio.imread(self.files[0]).shape), dtype=np.uint8)

    def warm_up(self) -> None:
        for path in self.files:  # caches every file without paying for a decode
            path.read_bytes()

    def read(self, deadline: float) -> int:
        order = self.rng.permutation(len(self.files))
        served = 0
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            for position, sample in enumerate(chosen):
                self.batch[position] = iio.imread(self.files[sample])
            served += len(chosen)
            if time.perf_counter() >= deadline:
                break
        return served

    def close(self) -> None:
        pass


class PlainCopyReader:
    """(c) The same frames, in RAM and contiguous, copied batch by batch into one reused buffer."""

    def __init__(self, data: BenchData, batch_size: int):
        paths = StorePaths.for_prefix(data.store_prefix)
        frames = np.load(paths.frames)  # read, not mapped
        self.source = np.ascontiguousarray(frames[np.load(paths.mask)])  # the filled slots the loader serves
        self.buffer = np.empty((batch_size, *self.source.shape[1:]), dtype=np.uint8)
        self.batch_size = batch_size

    def warm_up(self) -> None:
        self.read(float("inf"))

    def read(self, deadline: float) -> int:
        served = 0
        for start in range(0, len(self.source), self.batch_size):
            chunk = self.source[start : start + self.batch_size]
            np.copyto(self.buffer[: len(chunk)], chunk)
            served += len(chunk)
            if time.perf_counter() >= deadline:
                break
        return served


# --------------------------------------------------------------------------------------------
# Measurements


def measure_cold(open_reader: Callable[[int], StoreLoaderReader | PerFileReader], seconds: float) -> Rate:
    """Epochs from an empty page cache, each through a fresh reader, until ``seconds`` are spent."""
    frames, elapsed, cached = 0, 0.0, ""
    epoch = 0
    while elapsed < seconds:
        reader = open_reader(epoch)
        drop_from_page_cache(reader.files)
        if epoch == 0:
            cached = cached_share(reader.files)
        start = time.perf_counter()
        frames += reader.read(start + seconds - elapsed)  # untimed: opening and dropping
        elapsed += time.perf_counter() - start
        reader.close()
        epoch += 1
    return Rate(frames, elapsed, f"{cached} before each of {epoch} epoch(s)")


def measure_warm(
    readers: dict[str, StoreLoaderReader | PerFileReader | PlainCopyReader], seconds: float, rounds: int
) -> dict[str, Rate]:
    """Round-robin slices of ``seconds / rounds``, so that load from elsewhere hits all alike."""
    cached = {}
    for name, reader in readers.items():
        reader.warm_up()
        cached[name] = cached_share(reader.files) if hasattr(reader, "files") else "in RAM"
    totals = {name: [0, 0.0] for name in readers}
    for _ in range(rounds):
        for name, reader in readers.items():
            start = time.perf_counter()
            deadline = start + seconds / rounds
            while time.perf_counter() < deadline:
                totals[name][0] += reader.read(deadline)
            totals[name][1] += time.perf_counter() - start
    return {name: Rate(frames, elapsed, cached[name]) for name, (frames, elapsed) in totals.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=80, help="videos in the generated batch")
    parser.add_argument("--size", type=int, default=160, help="face crop size, px")
    parser.add_argument("--slots", type=int, default=30, help="frame slots per video")
    parser.add_argument("--batch-size", type=int, default=128, help="frames per batch")
    parser.add_argument("--seconds", type=float, default=4.0, help="time budget of each measurement")
    parser.add_argument("--rounds", type=int, default=4, help="warm measurements alternate in this many slices")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the temporary data (default: the system temp folder; use a real disk for cold reads)",
    )
    args = parser.parse_args(argv)

    select_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))
    import dfdetect.training.loader  # noqa: F401  (imports Keras before any timing)

    with tempfile.TemporaryDirectory(prefix="dfdetect-bench-loader-", dir=args.workdir) as temp:
        folder = Path(temp)
        started = time.perf_counter()
        data = make_data(folder, args.videos, args.size, args.slots)
        gc.collect()  # close the setup's memory map before any cold run
        frames_file = StorePaths.for_prefix(data.store_prefix).frames
        png_bytes = sum(path.stat().st_size for path in data.png_paths)
        print(
            f"data: {len(data.videos)} videos, {len(data.png_paths)} frames of {args.size}x{args.size} "
            f"(store {frames_file.stat().st_size / 1e6:.0f} MB, PNGs {png_bytes / 1e6:.0f} MB, "
            f"{png_bytes / len(data.png_paths) / 1e3:.1f} kB each); batch {args.batch_size}; "
            f"setup {time.perf_counter() - started:.0f} s; {machine_load()}"
        )

        can_drop = hasattr(os, "posix_fadvise")
        loader_cold = files_cold = None
        if can_drop:
            loader_cold = measure_cold(
                lambda epoch: StoreLoaderReader(data, args.batch_size, SEED + epoch), args.seconds
            )
            files_cold = measure_cold(lambda epoch: PerFileReader(data, args.batch_size, SEED + epoch), args.seconds)
        warm = measure_warm(
            {
                "loader": StoreLoaderReader(data, args.batch_size, SEED),
                "files": PerFileReader(data, args.batch_size, SEED),
                "copy": PlainCopyReader(data, args.batch_size),
            },
            args.seconds,
            args.rounds,
        )

    rows = [
        ("(a) store loader, cold", loader_cold),
        ("(a) store loader, warm", warm["loader"]),
        ("(b) imageio per file, cold", files_cold),
        ("(b) imageio per file, warm", warm["files"]),
        ("(c) plain memory copy", warm["copy"]),
    ]
    for name, rate in rows:
        if rate is None:
            print(f"{name:28s}: not measured (no posix_fadvise here)")
        else:
            print(
                f"{name:28s}: {rate.per_second:8.0f} frames/s  "
                f"({rate.frames} frames in {rate.seconds:.2f} s; {rate.cached})"
            )
    print(f"a/b warm: {warm['loader'].per_second / warm['files'].per_second:6.1f}x  (goal >= 50)")
    if loader_cold and files_cold:
        print(f"a/b cold: {loader_cold.per_second / files_cold.per_second:6.1f}x")
    print(f"a/c warm: {warm['loader'].per_second / warm['copy'].per_second:6.2f}   (goal >= 0.3)")
    if loader_cold:
        print(f"a/c cold: {loader_cold.per_second / warm['copy'].per_second:6.2f}")


if __name__ == "__main__":
    main()
