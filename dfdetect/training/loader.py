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
from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT, nearest_filled_slot
from dfdetect.training.recipes import Recipe, RecipePlan

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
        validation: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.store = store
        self.mode = mode
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.flip = flip
        self.class_weight = dict(class_weight) if class_weight else None
        self.seed = seed
        self.epoch = 0
        self.samples = sample_table(store, videos, mode)
        # Plain ndarray views of the memory maps: np.memmap's Python-level __getitem__ costs
        # microseconds per call, and the gathers index once per frame.
        self._frames = {batch: np.asarray(frames) for batch, frames in store.frames.items()}
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
        self._order = np.arange(len(self._item_sample))
        self._reorder()

    def __len__(self) -> int:
        return math.ceil(self.n_items / self.batch_size)

    @property
    def n_items(self) -> int:
        """Frames (or clips) per epoch: the samples, plus self-blended fakes when the recipe makes them."""
        return len(self._item_sample)

    @property
    def labels(self) -> np.ndarray:
        """Labels in the order batches serve them (before any shuffle: sample order)."""
        return self._item_labels[self._order]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._reorder()

    def set_epoch(self, epoch: int) -> None:
        """Serve epoch ``epoch`` next (a resumed run starts at its first unfinished epoch)."""
        self.epoch = int(epoch)
        self._reorder()

    def _reorder(self) -> None:
        if self.plan is not None:
            self._order = self.plan.order(self.epoch, self.shuffle)
        elif self.shuffle:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.samples))

    def __getitem__(self, index: int):
        if index < 0 or index >= len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1})")
        items = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        chosen, labels = self._item_sample[items], self._item_labels[items]
        if self.mode == "clip":
            inputs = self._gather_clips(chosen)
        else:
            inputs = {FRAMES_INPUT: self._gather_frames(chosen)}
        if self.plan is not None:  # the recipe's augmentation and self-blended fakes
            inputs[FRAMES_INPUT] = self.plan.apply(inputs[FRAMES_INPUT], items, self.epoch, inputs.get(MASK_INPUT))
        if self.class_weight is None:
            return inputs, labels
        weights = np.where(labels > 0.5, self.class_weight[1], self.class_weight[0]).astype("float32")
        return inputs, labels, weights

    def preview(self, count: int = 16) -> dict[str, object]:
        """The first ``count`` training inputs of the first epoch exactly as batches serve them (for
        clips, each clip's first frame), with labels, SBI flags and the SBI fakes' blend outlines."""
        items = self.plan.order(0, self.shuffle)[:count] if self.plan else np.arange(min(count, self.n_items))
        chosen = self._item_sample[items]
        outlines: list = []
        if self.mode == "clip":
            clips = self._gather_clips(chosen)
            if self.plan is not None:
                self.plan.apply(clips[FRAMES_INPUT], items, 0, clips[MASK_INPUT])
            frames, outlines = clips[FRAMES_INPUT][:, 0], [None] * len(items)
        else:
            frames = self._gather_frames(chosen)
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
        slots = np.full((len(self.samples), self.store.n_slots), -1, dtype=np.int64)
        for position, (batch, row) in enumerate(zip(self._batches, self._rows)):
            filled = np.flatnonzero(self.store.masks[batch][row])
            slots[position, : len(filled)] = filled
        return slots

    def _gather_frames(self, chosen: np.ndarray) -> np.ndarray:
        size = self.store.image_size
        out = np.empty((len(chosen), size, size, 3), dtype=np.uint8)
        batches, rows, slots = self._batches[chosen], self._rows[chosen], self._slots[chosen]
        # Each frame is copied once, straight from the memory map into its place in the batch:
        # a fancy-indexed read would build a temporary batch first and copy it again (and page-
        # fault it in). Store order (batch, row, slot) keeps cold reads moving forward in the file.
        for position in np.lexsort((slots, rows, batches)):
            out[position] = self._frames[batches[position]][rows[position], slots[position]]
        return out

    def _gather_clips(self, chosen: np.ndarray) -> dict[str, np.ndarray]:
        n_slots, size = self.store.n_slots, self.store.image_size
        frames = np.empty((len(chosen), n_slots, size, size, 3), dtype=np.uint8)
        masks = np.zeros((len(chosen), n_slots), dtype=bool)
        batches, rows = self._batches[chosen], self._rows[chosen]
        # Filled slots go straight to the front of each clip (right padding), one copy per frame;
        # only the padding is zeroed.
        for position in np.lexsort((rows, batches)):
            batch, row = batches[position], rows[position]
            filled = np.flatnonzero(self.store.masks[batch][row])
            for packed_slot, slot in enumerate(filled):
                frames[position, packed_slot] = self._frames[batch][row, slot]
            frames[position, len(filled) :] = 0
            masks[position, : len(filled)] = True
        return {FRAMES_INPUT: frames, MASK_INPUT: masks}
