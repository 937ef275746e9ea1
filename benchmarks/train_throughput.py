"""Training speed through the trainer's own loader, per recipe, against the same model on in-memory arrays.

    python benchmarks/train_throughput.py [--backend jax] [--mixed-precision] [--arch transfer]
                                          [--backbone EfficientNetB0] [--size 160] [--batch-size 128]
                                          [--epoch-batches 48] [--epochs 5] [--workers N] [--budget 150]

Builds a frame store in the pack rule's format from realistic demo face crops (one demo batch at
``--size``, its frames tiled to ``--epoch-batches`` x ``--batch-size`` frames, half of them REAL),
compiles one model (``--arch transfer``: ``--backbone`` with ``weights: null``, every layer
trainable, so the backward pass is real; ``--arch cnn``: the study's CNN, for a quick check), and
trains it with one ``fit`` of ``--epochs`` epochs per arm, in this order:

1. in-memory arrays: the same frames, labels and weights from a contiguous uint8 array;
2. the pipeline with ``augment: none``;
3. with ``augment: dfdc_winner`` (its cutouts on the crops' landmarks, found as the landmarks job
   finds them);
4. with ``fakes: sbi`` (the REAL half, each frame also served as its self-blended fake).

The pipeline arms use the training loader exactly as ``dfdetect.training.train`` builds it
(``make_loaders``: ``loader_workers`` N, default the cores this process may use). Every arm serves
whole batches of the same structure, so the model compiles once (in arm 1's first epoch). The
steady rate is over the epochs after each arm's first; an arm that would overrun its share of
``--budget`` seconds stops early (after at least two epochs). Prints each arm's first epoch and
steady images/s with its share of in-memory and of ``augment: none``, then one verdict line
(the goals: both recipes >= 0.9 of none, none >= 0.9 of in-memory). Run it on the GPU host with
``--backend jax --mixed-precision``; ``JAX_COMPILATION_CACHE_DIR`` shortens the compile of a rerun.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from dfdetect.training.workers import usable_cores  # noqa: E402

STORE_BATCH = "0-0"
ARMS = {
    "augment none": {"augment": "none", "fakes": "labelled"},
    "augment dfdc_winner": {"augment": "dfdc_winner", "fakes": "labelled"},
    "fakes sbi": {"augment": "none", "fakes": "sbi"},
}


def build_store(folder: Path, n_frames: int, size: int, slots: int) -> tuple[Any, pd.DataFrame, dict, str]:
    """A store of ``n_frames`` frames (``slots`` per video, every slot filled) tiled from one demo
    batch's packed crops, with their landmarks (the landmarks job's default model) tiled alike;
    every other video REAL. Returns its StorePaths, the video table, the landmarks and a line
    about them."""
    from benchmarks.pack import BATCH, make_batch, store_landmarks
    from dfdetect.data.store import INDEX_COLUMNS, FrameStore, StorePaths, pack_batch

    source_folder = folder / "source"
    zip_path, _, selection = make_batch(source_folder, 24, size, slots)
    pack_batch(zip_path, selection, BATCH, StorePaths.for_prefix(source_folder / "store" / BATCH), size, slots, False)
    source = FrameStore.from_folder(source_folder / "store")
    crops = np.asarray(source.frames[BATCH])[source.masks[BATCH]]  # every packed crop, (n, size, size, 3)
    keypoints, found = store_landmarks(source_folder / "store" / BATCH)
    keypoints = keypoints[source.masks[BATCH]]  # (n, points, 2), NaN where no face was found

    n_videos = n_frames // slots
    prefix = folder / "store" / STORE_BATCH
    paths = StorePaths.for_prefix(prefix)
    prefix.parent.mkdir(parents=True)
    frames = np.lib.format.open_memmap(paths.frames, mode="w+", dtype=np.uint8, shape=(n_videos, slots, size, size, 3))
    landmarks = np.empty((n_videos, slots, *keypoints.shape[1:]), dtype=np.float32)
    for video in range(n_videos):
        tiled = np.arange(video * slots, (video + 1) * slots) % len(crops)
        frames[video], landmarks[video] = crops[tiled], keypoints[tiled]
    frames.flush()
    del frames
    np.save(paths.mask, np.ones((n_videos, slots), dtype=bool))
    video_ids = [f"v{n:05d}" for n in range(n_videos)]
    index = pd.DataFrame(
        {"row": range(n_videos), "batch": STORE_BATCH, "video_id": video_ids, "n_filled": slots, "status": "ok"}
    ).assign(reason="")
    index[INDEX_COLUMNS].to_parquet(paths.index, index=False)
    videos = pd.DataFrame({"video_id": video_ids, "label": np.arange(n_videos) % 2})
    return paths, videos, {STORE_BATCH: landmarks}, found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--arch", choices=("transfer", "cnn"), default="transfer")
    parser.add_argument("--backbone", default="EfficientNetB0")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epoch-batches", type=int, default=48, help="batches per epoch (an even number)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per arm: the first, then the steady ones")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--workers", type=int, default=usable_cores(), help="loader_workers of the pipeline arms")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds for all arms together, compile included")
    args = parser.parse_args(argv)
    if args.epoch_batches % 2 or args.epochs < 2:
        parser.error("--epoch-batches must be even (the sbi arm serves the REAL half twice) and --epochs >= 2")

    started = time.perf_counter()
    from dfdetect.training.backend import select_backend, set_mixed_precision

    select_backend(args.backend)
    import keras

    from benchmarks.pack import machine_load
    from dfdetect.data.store import FrameStore
    from dfdetect.training.inputs import make_loaders
    from dfdetect.training.models import build_model
    from dfdetect.training.recipes import Recipe
    from dfdetect.training.train import TrainSettings

    policy = set_mixed_precision(args.mixed_precision)
    n_frames = args.epoch_batches * args.batch_size
    with tempfile.TemporaryDirectory(prefix="dfdetect-bench-train-") as folder:
        store_paths, videos, landmarks, found = build_store(Path(folder), n_frames, args.size, args.slots)
        store = FrameStore([store_paths])
        arms = {"in-memory arrays": InMemory(store, videos, args.batch_size, keras)}
        for name, recipe_settings in ARMS.items():
            settings = TrainSettings.from_config(
                {"arch": args.arch, "frames_per_video": "all", "loader_workers": args.workers, **recipe_settings}
            )
            recipe = Recipe.from_settings(settings.model)
            table = videos[videos["label"] == 0] if recipe.uses_sbi else videos
            arms[name], _ = make_loaders(
                settings, recipe, store, table, videos, landmarks=landmarks, batch_size=args.batch_size
            )
        model_settings = {"arch": args.arch, "backbone": args.backbone, "weights": None, "pooling": "avg"}
        model = build_model("bench", model_settings, args.size, args.slots)
        model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
        print(
            f"backend {args.backend}, policy {policy}, {args.arch} {args.backbone if args.arch == 'transfer' else ''} "
            f"at {args.size}px, batch {args.batch_size}, {n_frames} images per epoch, {args.epochs} epochs per arm, "
            f"loader_workers {args.workers}; devices {keras.distribution.list_devices()}; {machine_load()}; "
            f"set-up {time.perf_counter() - started:.0f} s; {found}",
            flush=True,
        )
        results = {}
        for position, (name, data) in enumerate(arms.items()):
            remaining = args.budget - (time.perf_counter() - started)
            timer = EpochTimer(keras, name, deadline=time.perf_counter() + remaining / (len(arms) - position))
            try:
                model.fit(data, epochs=args.epochs, callbacks=[timer], shuffle=False, verbose=0)
            finally:
                if hasattr(data, "close"):
                    data.close()
            results[name] = timer.rates(n_frames)
        print_table(results)
        print(f"{machine_load()}; {time.perf_counter() - started:.0f} s in all")
    return 0


def InMemory(store, videos: pd.DataFrame, batch_size: int, keras):
    """The same frames as one contiguous uint8 array, served in batches of the pipeline's structure
    (inputs, labels, sample weights), so that the compiled step is shared."""
    frames = np.ascontiguousarray(np.asarray(store.frames[STORE_BATCH]).reshape(-1, *store.clip_shape[1:]))
    labels = np.repeat(videos["label"].to_numpy(dtype="float32"), store.n_slots)
    weights = np.ones_like(labels)

    class InMemoryBatches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return len(frames) // batch_size

        def __getitem__(self, index: int):
            chosen = slice(index * batch_size, (index + 1) * batch_size)
            return {"frames": frames[chosen]}, labels[chosen], weights[chosen]

    return InMemoryBatches()


def EpochTimer(keras, name: str, deadline: float):
    class Timer(keras.callbacks.Callback):
        """Each epoch's seconds, printed as it ends; stops the arm at the deadline (after 2 epochs)."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)
            print(f"  {name}: epoch {epoch + 1} {self.seconds[-1]:.1f} s", flush=True)
            if len(self.seconds) >= 2 and time.perf_counter() + self.seconds[-1] > deadline:
                self.model.stop_training = True

        def rates(self, images_per_epoch: int) -> dict:
            steady = self.seconds[1:]
            return {
                "first_epoch_s": self.seconds[0],
                "steady_images_per_s": images_per_epoch * len(steady) / sum(steady),
                "steady_epochs": len(steady),
            }

    return Timer()


def print_table(results: dict) -> None:
    memory = results["in-memory arrays"]["steady_images_per_s"]
    none = results["augment none"]["steady_images_per_s"]
    print(f"{'arm':<22}{'first epoch':>12}{'steady img/s':>14}{'of in-memory':>14}{'of none':>9}")
    for name, result in results.items():
        rate = result["steady_images_per_s"]
        print(
            f"{name:<22}{result['first_epoch_s']:>11.1f}s{rate:>14.0f}{rate / memory:>14.2f}{rate / none:>9.2f}"
            f"   ({result['steady_epochs']} steady epochs)"
        )
    winner = results["augment dfdc_winner"]["steady_images_per_s"] / none
    sbi = results["fakes sbi"]["steady_images_per_s"] / none
    print(
        f"dfdc_winner / none {winner:.2f}, sbi / none {sbi:.2f}, none / in-memory {none / memory:.2f} "
        "(goals: >= 0.90 each)"
    )


if __name__ == "__main__":
    sys.exit(main())
