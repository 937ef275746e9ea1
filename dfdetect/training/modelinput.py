"""The models' input contract, importable without Keras.

Every dfdetect model takes a dict keyed by input name: ``frames`` (uint8, ``(batch, size, size, 3)``
for single-frame models, ``(batch, slots, size, size, 3)`` for clip models) and, for clip models
(``td_lstm``), ``mask`` (bool, ``(batch, slots)``, True where a slot holds a frame). Clip models
get their filled slots first, in slot order, and the padding after them as zeros: right padding
is the only mask cuDNN's LSTM accepts on TensorFlow GPUs.

The builders (``dfdetect.training.models``), the training loader (``dfdetect.training.loader``) and scoring
(``dfdetect.evaluation.scoring``) all take the names and the packing from here.
"""

from __future__ import annotations

import numpy as np

FRAMES_INPUT = "frames"
MASK_INPUT = "mask"


def left_pack_clips(frames: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """Move each clip's filled slots to the front (keeping their order) and zero the rest."""
    order = np.argsort(~masks, axis=1, kind="stable")
    packed_masks = np.take_along_axis(masks, order, axis=1)
    packed = frames[np.arange(len(frames))[:, None], order]
    packed[~packed_masks] = 0  # padding carries no stale pixels
    return {FRAMES_INPUT: packed, MASK_INPUT: packed_masks}


def nearest_filled_slot(mask_row: np.ndarray, target: int) -> int:
    """The filled slot nearest to ``target`` (ties go to the earlier slot), -1 when none is filled."""
    filled = np.flatnonzero(mask_row)
    if filled.size == 0:
        return -1
    return int(filled[np.argmin(np.abs(filled - target) * 2 + (filled > target))])
