"""Training speed through the pipeline's own loader against the same model on in-memory arrays.

    python benchmarks/train_throughput.py [--backbone EfficientNetB0] [--size 160] [--batch-size 32]
                                          [--steps 20] [--rounds 3] [--mixed-precision] [--backend jax]

Builds a packed frame store of random uint8 clips (the loader's speed does not depend on what
the pixels show), then trains the same `transfer` model (weights null, all layers trainable, so
the backward pass is real) for --steps batches per round, alternating (a) ``FrameDataset`` over
the memory-mapped store and (b) the same frames as an in-memory uint8 array fed by a trivial
PyDataset, and prints images/s for each and the loader's cost ``1 - a/b`` (goal: at most 10%).
Run it on the GPU machine with ``--backend jax --mixed-precision`` for the README's figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def build_store(folder: Path, n_videos: int, n_slots: int, size: int, seed: int) -> Path:
    """A store in exactly the pack rule's format (frames.npy, mask.npy, index.parquet)."""
    from dfdetect.data.store import INDEX_COLUMNS, StorePaths

    prefix = folder / "0-0"
    paths = StorePaths.for_prefix(prefix)
    frames = np.lib.format.open_memmap(
        paths.frames, mode="w+", dtype=np.uint8, shape=(n_videos, n_slots, size, size, 3)
    )
    rng = np.random.default_rng(seed)
    for video in range(n_videos):
        frames[video] = rng.integers(0, 256, size=frames.shape[1:], dtype=np.uint8)
    frames.flush()
    del frames
    np.save(paths.mask, np.ones((n_videos, n_slots), dtype=bool))
    index = pd.DataFrame(
        {
            "row": range(n_videos),
            "batch": "0-0",
            "video_id": [f"v{n:05d}" for n in range(n_videos)],
            "n_filled": n_slots,
            "status": "ok",
            "reason": "",
        }
    )
    index[INDEX_COLUMNS].to_parquet(paths.index, index=False)
    return prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="EfficientNetB0")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--slots", type=int, default=30)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="loader threads")
    args = parser.parse_args()

    from dfdetect.training.backend import select_backend, set_mixed_precision

    select_backend(args.backend)
    import keras

    from dfdetect.data.store import FrameStore, StorePaths
    from dfdetect.training.loader import FrameDataset
    from dfdetect.training.models import build_model

    policy = set_mixed_precision(args.mixed_precision)
    with tempfile.TemporaryDirectory(prefix="dfdetect-bench-train-") as folder:
        prefix = build_store(Path(folder), args.videos, args.slots, args.size, seed=0)
        store = FrameStore([StorePaths.for_prefix(prefix)])
        videos = pd.DataFrame({"video_id": store.index["video_id"], "label": np.arange(len(store.index)) % 2})
        loader = FrameDataset(
            store,
            videos,
            mode="all",
            batch_size=args.batch_size,
            shuffle=True,
            seed=0,
            workers=args.workers,
            use_multiprocessing=False,
        )
        n_images = args.steps * args.batch_size
        in_memory = np.asarray(store.frames["0-0"]).reshape(-1, args.size, args.size, 3)[:n_images].copy()
        labels = (np.arange(n_images) % 2).astype("float32")

        class InMemory(keras.utils.PyDataset):
            def __len__(self):
                return args.steps

            def __getitem__(self, index):
                chosen = slice(index * args.batch_size, (index + 1) * args.batch_size)
                return {"frames": in_memory[chosen]}, labels[chosen]

        model = build_model(
            "bench", {"arch": "transfer", "backbone": args.backbone, "weights": None, "pooling": "avg"}, args.size
        )
        model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
        in_memory_data = InMemory()
        model.fit(in_memory_data, epochs=1, verbose=0)  # compile/trace outside the timing
        model.fit(loader, epochs=1, steps_per_epoch=args.steps, verbose=0)

        def timed(dataset) -> float:
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0)
            return n_images / (time.perf_counter() - start)

        loader_rates, memory_rates = [], []
        for _ in range(args.rounds):  # alternate so that machine noise hits both alike
            memory_rates.append(timed(in_memory_data))
            loader_rates.append(timed(loader))
        loader_best, memory_best = max(loader_rates), max(memory_rates)
        print(
            f"backend {args.backend}, policy {policy}, {args.backbone} at {args.size}px, batch {args.batch_size}, "
            f"{args.steps} steps x {args.rounds} rounds, devices: {keras.distribution.list_devices()}"
        )
        print(
            f"(a) pipeline loader (memory-mapped store): {loader_best:9.1f} img/s  (rounds: "
            + ", ".join(f"{rate:.1f}" for rate in loader_rates)
            + ")"
        )
        print(
            f"(b) in-memory arrays                     : {memory_best:9.1f} img/s  (rounds: "
            + ", ".join(f"{rate:.1f}" for rate in memory_rates)
            + ")"
        )
        print(f"loader cost 1 - a/b: {1 - loader_best / memory_best:+.1%}  (goal <= 10%)")


if __name__ == "__main__":
    main()
