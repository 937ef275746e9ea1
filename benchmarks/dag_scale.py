"""How long `snakemake -n` takes for the whole pipeline as the number of batches grows.

    python benchmarks/dag_scale.py [--batches 10 25 50] [--videos 200] [--frames 3] [--repeat 1]

For each batch count it writes a raw_dir of that many face batches (DFDC layout, `--videos` videos
each, `--frames` tiny placeholder PNGs per video: a dry run reads only the file names, discovered
at parse time), configures one model, and prints the wall time of a dry run of every target and
its job count, then the fixed cost and the per-batch slope of a least-squares line.
Goal: under 10 s at 50 batches, growing linearly. `--profile-run` adds a cProfile of the largest
dry run (top functions by cumulative time) to find where the time goes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import yaml  # noqa: E402

from dfdetect.layout import batch_file_name, demo_batch_id  # noqa: E402
from dfdetect.testkit.batches import Video, face_pixels, png_bytes, write_face_batch  # noqa: E402
from dfdetect.testkit.dryrun import planned_jobs  # noqa: E402


def write_placeholder_batch(path: Path, prefix: str, n_videos: int, n_frames: int, image: bytes) -> None:
    """A face batch whose members all share one tiny PNG (the names are what a dry run sees)."""
    videos = []
    for number in range(n_videos):
        real = number % 5 == 0  # about 80% fakes, each family led by a real video
        original = None if real else f"{prefix}v{number - number % 5}"
        videos.append(Video(f"{prefix}v{number}", "REAL" if real else "FAKE", original, range(n_frames)))
    write_face_batch(path, videos, image=image)


def write_raw_dir(raw_dir: Path, n_batches: int, n_videos: int, n_frames: int) -> None:
    raw_dir.mkdir(parents=True)
    image = png_bytes(face_pixels("placeholder", 0, size=4))
    for index in range(n_batches):
        write_placeholder_batch(raw_dir / batch_file_name(demo_batch_id(index)), f"b{index}", n_videos, n_frames, image)


def dry_run(workdir: Path, config: Path, extra: list[str] | None = None) -> tuple[float, int, str]:
    command = [
        sys.executable,
        *(extra or ["-m", "snakemake"]),
        "-s",
        str(ROOT / "Snakefile"),
        "-d",
        str(workdir),
        "-n",
        "--configfile",
        str(config),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    output = done.stdout + done.stderr
    return seconds, sum(planned_jobs(output).values()), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--videos", type=int, default=200, help="videos per batch")
    parser.add_argument("--frames", type=int, default=3, help="placeholder face files per video")
    parser.add_argument("--repeat", type=int, default=1, help="dry runs per batch count (best is kept)")
    parser.add_argument("--profile-run", action="store_true", help="cProfile the largest dry run")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="dfdetect-dag-scale-"))
    try:
        counts, seconds = [], []
        print(f"{'batches':>8} {'videos':>8} {'jobs':>6} {'dry run s':>10}")
        for n_batches in sorted(args.batches):
            workdir = scratch / f"b{n_batches}"
            write_raw_dir(workdir / "raw", n_batches, args.videos, args.frames)
            config = workdir / "config.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "raw_dir": "raw",
                        "results_dir": "results",
                        "demo": {"enabled": False},
                        "models": {"cnn": {"arch": "cnn"}},
                    }
                )
            )
            runs = [dry_run(workdir, config) for _ in range(args.repeat)]
            best, jobs = min(run[0] for run in runs), runs[0][1]
            counts.append(n_batches)
            seconds.append(best)
            print(f"{n_batches:>8} {n_batches * args.videos:>8} {jobs:>6} {best:>10.2f}", flush=True)
        if len(counts) > 1:
            slope, intercept = np.polyfit(counts, seconds, 1)
            print(
                f"fit: {intercept:.2f} s fixed + {slope * 1000:.1f} ms per batch "
                f"(at 50 batches: {intercept + 50 * slope:.2f} s; goal < 10 s)"
            )
        if args.profile_run:
            stats = scratch / "dry_run.prof"
            workdir = scratch / f"b{max(counts)}"
            dry_run(workdir, workdir / "config.yaml", ["-m", "cProfile", "-o", str(stats), "-m", "snakemake"])
            import pstats

            pstats.Stats(str(stats)).sort_stats("cumulative").print_stats(25)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
