"""Training batches from the frame store, as a backend-neutral ``keras.utils.PyDataset``.

Batches stay uint8 from the store to the model: scaling and each backbone's own preprocessing
are the model's first layers, so the host moves a quarter of the bytes of float32 and a saved
model scores raw face crops. Nothing here uses TensorFlow-only APIs, so the same loader serves
the TensorFlow, JAX and PyTorch backends.

Modes:
- ``middle``: one frame per video, the middle slot (``n_slots // 2``, the study's choice); when
  that slot is empty, the filled slot nearest to it (earlier one first).
- ``all``: every filled slot of every video is its own sample.
- a number N: N filled slots per video, spread evenly over the clip (all of them when fewer):
  most of what ``all`` teaches for a fraction of the epoch time.
- ``clip``: the whole clip, ``{"frames": (slots, H, W, 3) uint8, "mask": (slots,) bool}``, for
  sequence models, packed as ``dfdetect.training.modelinput`` says (filled slots first).

Inputs are always a dict keyed by the models' input names (``dfdetect.training.modelinput``).
"""

from __future__ import annotations

import math
from typing import Mapping

import keras
import numpy as np
import pandas as pd

from dfdetect.data.store import FrameStore
from dfdetect.training.batches import BatchMaker, clip_slots
from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT, nearest_filled_slot
from dfdetect.training.recipes import Recipe, RecipePlan
from dfdetect.training.workers import BatchWorkers

MODES = ("middle", "all", "clip")


def class_weights(labels: np.ndarray | pd.Series) -> dict[int, float]:
    """The study's formula: total / (2 * count) per class, so both classes weigh the same in the loss."""
    labels = np.asarray(labels).astype(int)
    total = len(labels)
    weights = {}
    for label in (0, 1):
        count = int((labels == label).sum())
        if count == 0:
            raise ValueError(f"no {'REAL' if label == 0 else 'FAKE'} sample: class weights need both classes")
        weights[label] = total / (2.0 * count)
    return weights


def spread_slots(filled: np.ndarray, count: int) -> list[int]:
    """``count`` of the filled slots, spread evenly from the first to the last (all when fewer)."""
    if len(filled) <= count:
        return filled.tolist()
    picks = np.unique(np.round(np.linspace(0, len(filled) - 1, count)).astype(int))
    return filled[picks].tolist()


def check_mode(mode: str | int) -> None:
    if mode in MODES or (isinstance(mode, int) and not isinstance(mode, bool) and mode >= 1):
        return
    raise ValueError(
        f"unknown loader mode {mode!r}; expected one of {', '.join(MODES)} or a number of frames per video"
    )


def sample_table(store: FrameStore, videos: pd.DataFrame, mode: str | int) -> pd.DataFrame:
    """One row per sample: video_id, label, batch, row, slot (-1 for a whole clip)."""
    check_mode(mode)
    located = store.locate(videos["video_id"])
    located["label"] = videos["label"].to_numpy().astype("float32")
    if mode == "clip":
        return located.assign(slot=-1)
    middle = store.n_slots // 2
    rows = []
    for sample in located.itertuples(index=False):
        mask_row = store.masks[sample.batch][sample.row]
        if mode == "middle":
            slots = [nearest_filled_slot(mask_row, middle)]
            slots = [slot for slot in slots if slot >= 0]
        elif mode == "all":
            slots = np.flatnonzero(mask_row).tolist()
        else:
            slots = spread_slots(np.flatnonzero(mask_row), mode)
        rows.extend((sample.video_id, sample.label, sample.batch, sample.row, slot) for slot in slots)
    return pd.DataFrame(rows, columns=["video_id", "label", "batch", "row", "slot"])


class FrameDataset(keras.utils.PyDataset):
    """(inputs, labels[, sample_weights]) batches over a split's videos.

    ``videos`` has video_id and label. ``shuffle`` reorders the samples every epoch (seeded, so a
    run is repeatable); ``flip`` mirrors half the samples horizontally; ``class_weight`` (label ->
    weight) adds per-sample weights, which every backend supports.

    ``recipe`` (training only, ``dfdetect.training.recipes``): the augmentation preset and the fakes the
    epoch serves (``flip=True`` is ``Recipe(augment="flip", fakes="labelled")``); ``landmarks``
    (batch -> keypoints) when the recipe needs them. Without a recipe nothing is augmented
    (validation, test). ``validation``: the recipe's items as a fixed validation set (SBI's
    self-blended validation: the same fakes every epoch, never augmented).

    Workers: ``processes=True`` makes batches in ``workers`` worker processes
    (``dfdetect.training.workers``), ahead of the trainer and into shared memory; Keras then
    reads them one by one. Otherwise ``workers`` (and ``use_multiprocessing``) are Keras's own
    PyDataset workers (threads by default). A batch is the same either way: it depends only on
    the epoch and the batch index.

    ``batch_multiple``: every batch's size is a multiple of it (data parallelism on JAX), so the
    remainder of a short last batch is left out of the epoch.

    The epoch: ``set_epoch(epoch)`` says which epoch the following batches belong to (it sets the
    order and the augmentation draws, and starts the worker processes on that epoch's first
    batches); ``on_epoch_end``, which Keras calls after each epoch, moves to the next one.
    The processes start with the first batch asked for; ``close()`` stops them.
    """

    def __init__(
        self,
        store: FrameStore,
        videos: pd.DataFrame,
        mode: str = "middle",
        batch_size: int = 32,
        shuffle: bool = False,
        flip: bool = False,
        class_weight: Mapping[int, float] | None = None,
        seed: int = 0,
        recipe: Recipe | None = None,
        landmarks: Mapping[str, np.ndarray] | None = None,
        processes: bool = False,
        batch_multiple: int = 1,
        validation: bool = False,
        **kwargs,
    ):
        workers = int(kwargs.get("workers", 1))
        if processes:  # the worker processes prefetch; Keras asks for one batch at a time
            kwargs.update(workers=1, use_multiprocessing=False)
        super().__init__(**kwargs)
        self.store = store
        self.mode = mode
        self.batch_size = int(batch_size)
        self.batch_multiple = int(batch_multiple)
        self.shuffle = shuffle
        self.flip = flip
        self.class_weight = dict(class_weight) if class_weight else None
        self.seed = seed
        self._epoch = 0
        self.samples = sample_table(store, videos, mode)
        if self.samples.empty:
            raise ValueError(f"no samples: none of the {len(videos)} videos has a filled slot")
        self._batches = self.samples["batch"].to_numpy()
        self._rows = self.samples["row"].to_numpy()
        self._slots = self.samples["slot"].to_numpy()
        self._labels = self.samples["label"].to_numpy(dtype="float32")
        # Training recipes: the items an epoch serves (samples, some as self-blended fakes) and
        # their augmentation live in dfdetect.training.recipes; without one, items are the samples.
        if recipe is None and flip:
            recipe = Recipe(augment="flip", fakes="labelled")
        self.plan = (
            None
            if recipe is None
            else RecipePlan(
                recipe,
                self.samples,
                image_size=store.image_size,
                seed=seed,
                landmarks=landmarks,
                clip_slots=self._clip_slots() if mode == "clip" else None,
                validation=validation,
            )
        )
        self._item_sample = self.plan.item_sample if self.plan else np.arange(len(self.samples))
        self._item_labels = self.plan.item_labels if self.plan else self._labels
        self.maker = BatchMaker(
            store.frames,
            store.masks,
            clips=mode == "clip",
            batches=self._batches,
            rows=self._rows,
            slots=self._slots,
            item_sample=self._item_sample,
            plan=self.plan,
        )
        self._order = self._order_of(0)
        self.processes, self.workers_wanted = bool(processes), workers
        self.pool: BatchWorkers | None = None  # started by the first batch asked for
        self._start_seconds: float | None = None
        # (epoch, batch index) -> ticket of the batches in the workers: this epoch's, then the next
        # one's first batches (Keras ends an epoch and starts the next without a pause)
        self._tickets: dict[tuple[int, int], int] = {}
        self._next = (0, 0)  # the next (epoch, batch index) to hand to the workers

    def __len__(self) -> int:
        return math.ceil(self._n_served / self.batch_size)

    @property
    def _n_served(self) -> int:
        """Items served per epoch: all of them, but for the remainder of a short last batch that
        is not a multiple of ``batch_multiple``."""
        return self.n_items - (self.n_items % self.batch_size) % self.batch_multiple

    @property
    def n_items(self) -> int:
        """Frames (or clips) per epoch: the samples, plus self-blended fakes when the recipe makes them."""
        return len(self._item_sample)

    @property
    def epoch(self) -> int:
        """The epoch the batches belong to (their order and augmentation)."""
        return self._epoch

    @property
    def labels(self) -> np.ndarray:
        """Labels in the order batches serve them (before any shuffle: sample order)."""
        return self._item_labels[self._order]

    @property
    def workers_start_s(self) -> float | None:
        """Seconds the worker processes took to start (None: not started, or threads)."""
        return self._start_seconds

    def set_epoch(self, epoch: int) -> None:
        """Serve ``epoch``'s batches from now on; the worker processes drop the batches they were
        making for another epoch and start on this one's."""
        epoch = int(epoch)
        if epoch == self._epoch:
            return
        self._epoch = epoch
        self._order = self._order_of(epoch)
        if self.pool is not None:
            for key in [key for key in self._tickets if key[0] != epoch]:
                self.pool.discard(self._tickets.pop(key))
            ahead = sorted(index for _, index in self._tickets)
            if ahead != list(range(len(ahead))):  # only a run from the epoch's first batch is kept
                self._restart_prefetch(0)
            else:
                self._next = (epoch, len(ahead))
                self._prefetch()

    def on_epoch_end(self) -> None:
        self.set_epoch(self._epoch + 1)

    def close(self) -> None:
        """Stop the worker processes (a no-op without them; a later batch starts them again)."""
        if self.pool is not None:
            self._start_seconds = self.pool.start_seconds
            self.pool.close()
            self.pool = None

    def _order_of(self, epoch: int) -> np.ndarray:
        """The items of ``epoch`` in serving order."""
        if self.plan is not None:
            return self.plan.order(epoch, self.shuffle)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch]).permutation(len(self.samples))
        return np.arange(len(self.samples))

    def _items(self, index: int, order: np.ndarray | None = None) -> np.ndarray:
        order = self._order if order is None else order
        return order[index * self.batch_size : min((index + 1) * self.batch_size, self._n_served)]

    def __getitem__(self, index: int):
        if index < 0 or index >= len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1})")
        items = self._items(index)
        if self.processes:
            inputs = self._from_workers(index)
        else:
            inputs = self.maker.make(items, self._epoch)
        labels = self._item_labels[items]
        if self.class_weight is None:
            return inputs, labels
        weights = np.where(labels > 0.5, self.class_weight[1], self.class_weight[0]).astype("float32")
        return inputs, labels, weights

    # -- worker processes: batches in order, as many ahead as the ring has slots ------------------

    def _from_workers(self, index: int) -> dict[str, np.ndarray]:
        if self.pool is None:
            self.pool = BatchWorkers(self.maker, self.batch_size, self.workers_wanted)
            self._tickets.clear()
        key = (self._epoch, index)
        if key not in self._tickets:  # not the batch expected next (Keras's signature probe, a restart)
            self._restart_prefetch(index)
        if key not in self._tickets:  # every slot still holds a dropped batch: wait for one
            self._tickets[key] = self.pool.submit(self._epoch, self._items(index), wait=True)
            self._next = (self._epoch, index + 1)
        inputs = self.pool.fetch(self._tickets.pop(key))
        self._prefetch()
        return inputs

    def _restart_prefetch(self, index: int) -> None:
        for ticket in self._tickets.values():
            self.pool.discard(ticket)
        self._tickets.clear()
        self._next = (self._epoch, index)
        self._prefetch()

    def _prefetch(self) -> None:
        """Hand the workers the next batches, as many as there are free slots: to the end of this
        epoch, then into the next one."""
        next_order = None
        while self.pool.free_slots:
            epoch, index = self._next
            if index >= len(self):
                if epoch != self._epoch:
                    return  # one epoch ahead at most
                epoch, index = epoch + 1, 0
            if epoch == self._epoch:
                items = self._items(index)
            else:
                next_order = self._order_of(epoch) if next_order is None else next_order
                items = self._items(index, next_order)
            self._tickets[(epoch, index)] = self.pool.submit(epoch, items)
            self._next = (epoch, index + 1)

    def preview(self, count: int = 16) -> dict[str, object]:
        """The first ``count`` training inputs of the first epoch exactly as batches serve them (for
        clips, each clip's first frame), with labels, SBI flags and the SBI fakes' blend outlines."""
        items = self.plan.order(0, self.shuffle)[:count] if self.plan else np.arange(min(count, self.n_items))
        chosen = self._item_sample[items]
        outlines: list = []
        if self.mode == "clip":
            clips = self.maker.gather_clips(chosen)
            if self.plan is not None:
                self.plan.apply(clips[FRAMES_INPUT], items, 0, clips[MASK_INPUT])
            frames, outlines = clips[FRAMES_INPUT][:, 0], [None] * len(items)
        else:
            frames = self.maker.gather_frames(chosen)
            if self.plan is not None:
                frames = self.plan.apply(frames, items, 0, outlines=outlines)
            else:
                outlines = [None] * len(items)
        sbi = self.plan.item_sbi[items] if self.plan else np.zeros(len(items), bool)
        return {
            "frames": frames,
            "labels": self._item_labels[items],
            "sbi": sbi,
            "outlines": outlines,
            "video_ids": self.samples["video_id"].to_numpy()[chosen],
        }

    def _clip_slots(self) -> np.ndarray:
        """(samples, slots): the store slot at each packed clip position, -1 for padding."""
        return clip_slots(self.store.masks, self._batches, self._rows, self.store.n_slots)
