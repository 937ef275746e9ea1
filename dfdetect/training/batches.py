"""The per-sample work of the training loader: gather an epoch's items from the frame store and
apply the recipe (augmentation, self-blended fakes), without Keras.

A ``BatchMaker`` is what the loader's worker processes run (``dfdetect.training.workers``): it is
picklable, and a worker reopens the store's memory maps from their files instead of receiving
the frames. Every random draw comes from ``augment.sample_rng(seed, epoch, sample, ...)``, so a
batch is a function of the epoch and the items it holds, whichever process or thread makes it.
"""

from __future__ import annotations

import mmap
from typing import Mapping

import numpy as np

from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT
from dfdetect.training.recipes import RecipePlan


def clip_slots(masks: Mapping[str, np.ndarray], batches: np.ndarray, rows: np.ndarray, n_slots: int) -> np.ndarray:
    """(samples, slots): the store slot at each packed clip position (filled slots first), -1 for padding."""
    slots = np.full((len(batches), n_slots), -1, dtype=np.int64)
    for position, (batch, row) in enumerate(zip(batches, rows)):
        filled = np.flatnonzero(masks[batch][row])
        slots[position, : len(filled)] = filled
    return slots


class BatchMaker:
    """Make the model inputs of a list of items (rows of the epoch's item table).

    ``frames``: batch -> (videos, slots, H, W, 3) uint8, usually the store's memory maps;
    ``batches``/``rows``/``slots``: each sample's place in the store (slot -1 for clips);
    ``item_sample``: the sample each item shows; ``plan``: the training recipe (None: frames as stored).
    """

    def __init__(
        self,
        frames: Mapping[str, np.ndarray],
        masks: Mapping[str, np.ndarray],
        *,
        clips: bool,
        batches: np.ndarray,
        rows: np.ndarray,
        slots: np.ndarray,
        item_sample: np.ndarray,
        plan: RecipePlan | None,
    ) -> None:
        self.clips = clips
        self.batches, self.rows, self.slots = batches, rows, slots
        self.item_sample = item_sample
        self.plan = plan
        self.masks = dict(masks)
        self._sources = dict(frames)
        # Plain ndarray views of the memory maps: np.memmap's Python-level __getitem__ costs
        # microseconds per call, and the gathers index once per frame.
        self._frames = {batch: np.asarray(array) for batch, array in frames.items()}
        shapes = {array.shape[1:] for array in self._frames.values() if array.size}
        self.clip_shape = shapes.pop() if shapes else (0, 0, 0, 3)

    # -- pickling: a worker maps the store's files itself instead of receiving the frames ----------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_sources"] = {batch: _picklable_frames(array) for batch, array in self._sources.items()}
        del state["_frames"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._sources = {batch: _reopened_frames(source) for batch, source in self._sources.items()}
        self._frames = {batch: np.asarray(array) for batch, array in self._sources.items()}

    # -- batches ------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Import and build what the first batch needs (the recipe's pipelines) ahead of it."""
        if self.plan is not None:
            self.plan.warm_up()

    def output_spec(self, batch_size: int) -> dict[str, tuple[tuple[int, ...], str]]:
        """Name -> (shape, dtype) of a full batch's inputs."""
        n_slots, size = self.clip_shape[0], self.clip_shape[1]
        if self.clips:
            return {
                FRAMES_INPUT: ((batch_size, n_slots, size, size, 3), "uint8"),
                MASK_INPUT: ((batch_size, n_slots), "bool"),
            }
        return {FRAMES_INPUT: ((batch_size, size, size, 3), "uint8")}

    def make(self, items: np.ndarray, epoch: int, out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The inputs of ``items`` in ``epoch``, written into ``out`` (arrays of ``len(items)`` rows)
        when given."""
        chosen = self.item_sample[items]
        if self.clips:
            inputs = self.gather_clips(chosen, out)
        else:
            inputs = {FRAMES_INPUT: self.gather_frames(chosen, None if out is None else out[FRAMES_INPUT])}
        if self.plan is not None:  # the recipe's augmentation and self-blended fakes, in place
            frames = self.plan.apply(inputs[FRAMES_INPUT], items, epoch, inputs.get(MASK_INPUT))
            if frames is not inputs[FRAMES_INPUT]:
                inputs[FRAMES_INPUT][...] = frames
        return inputs

    def gather_frames(self, chosen: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        size = self.clip_shape[1]
        if out is None:
            out = np.empty((len(chosen), size, size, 3), dtype=np.uint8)
        batches, rows, slots = self.batches[chosen], self.rows[chosen], self.slots[chosen]
        # Each frame is copied once, straight from the memory map into its place in the batch:
        # a fancy-indexed read would build a temporary batch first and copy it again (and page-
        # fault it in). Store order (batch, row, slot) keeps cold reads moving forward in the file.
        for position in np.lexsort((slots, rows, batches)):
            out[position] = self._frames[batches[position]][rows[position], slots[position]]
        return out

    def gather_clips(self, chosen: np.ndarray, out: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        n_slots, size = self.clip_shape[0], self.clip_shape[1]
        if out is None:
            frames = np.empty((len(chosen), n_slots, size, size, 3), dtype=np.uint8)
            masks = np.zeros((len(chosen), n_slots), dtype=bool)
        else:
            frames, masks = out[FRAMES_INPUT], out[MASK_INPUT]
            masks[...] = False
        batches, rows = self.batches[chosen], self.rows[chosen]
        # Filled slots go straight to the front of each clip (right padding), one copy per frame;
        # only the padding is zeroed.
        for position in np.lexsort((rows, batches)):
            batch, row = batches[position], rows[position]
            filled = np.flatnonzero(self.masks[batch][row])
            for packed_slot, slot in enumerate(filled):
                frames[position, packed_slot] = self._frames[batch][row, slot]
            frames[position, len(filled) :] = 0
            masks[position, : len(filled)] = True
        return {FRAMES_INPUT: frames, MASK_INPUT: masks}


def _picklable_frames(array: np.ndarray) -> np.ndarray | tuple:
    """A whole-file memory map travels as its file, offset and shape; any other array as itself."""
    if isinstance(array, np.memmap) and isinstance(array.base, mmap.mmap) and array.filename is not None:
        return ("memmap", array.filename, array.offset, array.shape, array.dtype.str)
    return np.asarray(array)


def _reopened_frames(source: np.ndarray | tuple) -> np.ndarray:
    if isinstance(source, tuple):
        _, filename, offset, shape, dtype = source
        return np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
    return source
