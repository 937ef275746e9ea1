"""Training recipes: a model's ``augment`` and ``fakes`` settings, applied to the loader's samples.

- ``augment`` (``dfdetect.training.augment``): none | flip | dfdc_winner, per training sample;
- ``fakes``: ``labelled`` (the split's FAKE videos), ``sbi`` (REAL videos only: every
  batch is half real frames and half self-blended fakes made from those same frames, each pair
  next to each other and post-augmented alike, ``dfdetect.training.sbi``) or ``both`` (the labelled
  samples plus one self-blended fake per REAL sample, all shuffled together). With sbi and both,
  every frame that is not a self-blended fake, REAL or labelled FAKE, is served as SBI's pair real
  (the stored frame or, p 0.5, its source-target augmented copy) and every item gets SBI's
  post-augmentation, so that neither the source-target augmentation nor the JPEG/colour jitter,
  flip and crop alone tells one kind of sample from another.

A plan (``RecipePlan``) turns the loader's sample table into the epoch's *items* (a sample, and
whether it is served as a self-blended fake), orders them per epoch, and augments gathered
frames in place. Every random draw comes from ``augment.sample_rng(seed, epoch, sample, ...)``,
so a batch depends only on the seed, the epoch and which samples it holds. Validation and test
loaders are never augmented; a validation plan (``validation=True``, the ``selection:
self_blended`` of ``fakes: sbi``) serves the validation split's REAL frames each with its
self-blended fake, the same every epoch and without post-augmentation (SBI validates so,
src/utils/sbi.py:77,85).

Recipes that need landmarks (``dfdc_winner``'s cutouts, SBI's face hulls) read
``store/{batch}.landmarks.npy`` (68 or 5 points per face); a sample whose frame has no detected
face uses the fallback geometry (``dfdetect.data.landmarks``), and the plan counts both. The
landmarks follow the frame through SBI's flip and crop, so the winner's cutout after them hits
the face parts it names. Nothing here imports Keras.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from dfdetect.config import complete_section
from dfdetect.data.landmarks import has_face
from dfdetect.training.augment import Augmenter, preset_name, sample_rng

FAKES = ("labelled", "sbi", "both")
# How the saved epoch is chosen: the validation loss on the validation split's labelled videos, or
# on its REAL videos each with a self-blended fake, or the last epoch (what SBI's paper reports).
# auto: self_blended for fakes: sbi, labelled otherwise. SBI validates on self-blended fakes of its
# validation reals (src/train_sbi.py:42,121-143) and keeps the five checkpoints of best validation
# AUC (151-174); here, as for every selection, the one of lowest validation loss, which early
# stopping watches too.
SELECTIONS = ("auto", "labelled", "self_blended", "last_epoch")


@dataclass(frozen=True)
class Recipe:
    """A model's recipe. ``augment`` and ``fakes`` are required here; a config entry that lacks them
    gets the schema's defaults through ``from_settings``. ``selection`` is resolved: ``auto``
    becomes ``self_blended`` for ``fakes: sbi`` and ``labelled`` otherwise."""

    augment: str
    fakes: str
    selection: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "augment", preset_name(self.augment))
        if self.fakes not in FAKES:
            raise ValueError(f"unknown fakes {self.fakes!r}; expected one of {', '.join(FAKES)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; expected one of {', '.join(SELECTIONS)}")
        if self.selection == "auto":
            object.__setattr__(self, "selection", "self_blended" if self.fakes == "sbi" else "labelled")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "Recipe":
        """From a model's config entry; keys it lacks take the schema's defaults."""
        completed = complete_section("model", settings)
        return cls(augment=completed["augment"], fakes=completed["fakes"], selection=completed["selection"])

    @property
    def validation(self) -> str:
        """What the validation loss is computed on: ``labelled`` videos or ``self_blended`` fakes of
        the REAL ones (with last_epoch: self-blended for fakes: sbi, which never sees a labelled fake)."""
        if self.selection == "last_epoch":
            return "self_blended" if self.fakes == "sbi" else "labelled"
        return self.selection

    @property
    def needs_landmarks(self) -> bool:
        return self.augment == "dfdc_winner" or self.fakes != "labelled" or self.validation == "self_blended"

    @property
    def uses_sbi(self) -> bool:
        return self.fakes != "labelled"

    def describe(self) -> str:
        return f"augment {self.augment}, fakes {self.fakes}"


class RecipeError(ValueError):
    """A recipe that cannot work on the given samples (e.g. SBI without REAL videos)."""


class RecipePlan:
    """The epoch's items for one training loader, and the augmentation of their frames."""

    def __init__(
        self,
        recipe: Recipe,
        samples: pd.DataFrame,
        *,
        image_size: int,
        seed: int,
        landmarks: Mapping[str, np.ndarray] | None = None,
        clip_slots: np.ndarray | None = None,
        validation: bool = False,
    ) -> None:
        """``samples``: the loader's table (batch, row, slot, label). ``landmarks``: batch ->
        (videos, slots, P, 2) keypoints (P 68 or 5), needed when ``recipe.needs_landmarks``.
        ``clip_slots``: for clip loaders, (samples, slots) store slot of each packed position
        (-1 = padding). ``validation``: a fixed validation set (epoch 0's items every epoch, no
        post-augmentation; ``recipe.augment`` must be none)."""
        self.recipe = recipe
        self.image_size = int(image_size)
        self.seed = int(seed)
        self.clips = clip_slots is not None
        if validation and recipe.augment != "none":
            raise RecipeError(f"a validation plan is never augmented, not with augment {recipe.augment}")
        self.fixed_epoch = 0 if validation else None
        self.post = not validation
        labels = samples["label"].to_numpy(dtype="float32")
        real = np.flatnonzero(labels < 0.5)
        if recipe.uses_sbi and self.clips:
            raise RecipeError(
                f"fakes: {recipe.fakes} makes single-frame fakes; clip models (td_lstm) take labelled fakes"
            )
        if recipe.uses_sbi and real.size == 0:
            raise RecipeError(
                f"fakes: {recipe.fakes} blends fakes from REAL frames, and the training split has no REAL video"
            )
        if recipe.fakes == "sbi":
            # pairs: real sample, then its self-blended fake
            self.item_sample = np.repeat(real, 2)
            self.item_sbi = np.tile([False, True], real.size)
        elif recipe.fakes == "both":
            self.item_sample = np.concatenate([np.arange(len(samples)), real])
            self.item_sbi = np.concatenate([np.zeros(len(samples), bool), np.ones(real.size, bool)])
        else:
            self.item_sample = np.arange(len(samples))
            self.item_sbi = np.zeros(len(samples), bool)
        self.item_labels = np.where(self.item_sbi, np.float32(1), labels[self.item_sample]).astype("float32")
        self.keypoints = self._keypoints(samples, landmarks, clip_slots) if recipe.needs_landmarks else None
        self.augmenter = Augmenter(recipe.augment, self.image_size)
        self._blender = None
        if recipe.uses_sbi:
            from dfdetect.training.sbi import SelfBlender

            self._blender = SelfBlender(self.image_size)

    # -- items ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.item_sample)

    def order(self, epoch: int, shuffle: bool) -> np.ndarray:
        """The items in serving order for ``epoch``; ``sbi`` keeps each (real, fake) pair together."""
        if not shuffle:
            return np.arange(len(self))
        rng = np.random.default_rng([self.seed, self._epoch(epoch)])
        if self.recipe.fakes == "sbi":
            pairs = rng.permutation(len(self) // 2)
            return np.stack([2 * pairs, 2 * pairs + 1], axis=1).ravel()
        return rng.permutation(len(self))

    def _epoch(self, epoch: int) -> int:
        return int(epoch) if self.fixed_epoch is None else self.fixed_epoch

    @property
    def n_points(self) -> int | None:
        """Landmarks per face (68 or 5); None without landmarks."""
        return None if self.keypoints is None else int(self.keypoints.shape[-2])

    def landmark_counts(self) -> dict[str, int]:
        """Training samples (frames; of the served samples only: with sbi, the REAL ones) whose
        frames have landmarks, and those that use the fallback."""
        if self.keypoints is None:
            return {"landmarks": 0, "fallback": 0}
        served = np.unique(self.item_sample)
        found = has_face(self.keypoints[served])
        if self.clips:
            found = found[self._clip_filled[served]]
        return {"landmarks": int(found.sum()), "fallback": int(found.size - found.sum())}

    def _keypoints(
        self, samples: pd.DataFrame, landmarks: Mapping[str, np.ndarray] | None, clip_slots: np.ndarray | None
    ) -> np.ndarray:
        if landmarks is None:
            raise RecipeError(f"{self.recipe.describe()} needs the batches' landmarks")
        batches, rows = samples["batch"].to_numpy(), samples["row"].to_numpy()
        if clip_slots is None:
            slots = samples["slot"].to_numpy()[:, None]
        else:
            slots = clip_slots
        points = next(iter(landmarks.values())).shape[2] if landmarks else 5
        out = np.full(slots.shape + (points, 2), np.nan, dtype=np.float32)
        for batch in pd.unique(batches):
            where = np.flatnonzero(batches == batch)
            batch_slots = slots[where]
            filled = batch_slots >= 0
            picked = landmarks[batch][rows[where][:, None].repeat(slots.shape[1], 1), np.maximum(batch_slots, 0)]
            picked[~filled] = np.nan
            out[where] = picked
        self._clip_filled = slots >= 0
        return out if clip_slots is not None else out[:, 0]

    # -- augmentation -----------------------------------------------------------------------------

    def keypoints_of(self, sample: int, position: int | None = None) -> np.ndarray | None:
        """A sample's landmarks; None when its frame has none (the fallback) or none are needed."""
        if self.keypoints is None:
            return None
        points = self.keypoints[sample] if position is None else self.keypoints[sample, position]
        return points if has_face(points) else None

    def apply(
        self,
        frames: np.ndarray,
        items: np.ndarray,
        epoch: int,
        masks: np.ndarray | None = None,
        outlines: list | None = None,
    ) -> np.ndarray:
        """Augment gathered frames (one row per item: (n, H, W, 3), or (n, slots, H, W, 3) for
        clips with ``masks``) and turn SBI items into their fakes. Returns the frames (the same
        array when possible). ``outlines``, a list, receives each item's blend mask after
        augmentation (None for non-SBI items), for the training-samples figure."""
        epoch = self._epoch(epoch)
        splits: dict[int, tuple] = {}  # sample -> its real frame's SBI split, reused by its fake
        for position, item in enumerate(items):
            sample, sbi = int(self.item_sample[item]), bool(self.item_sbi[item])
            if self.clips:
                self._apply_clip(frames[position], masks[position] if masks is not None else None, sample, epoch)
                continue
            image, outline, points = frames[position], None, self.keypoints_of(sample)
            if self._blender is not None:
                if sbi:
                    split, rng = splits.pop(sample, (None, sample_rng(self.seed, epoch, sample, 1)))
                    blend = self._blender.blend(image, points, rng, split=split)
                    image, outline = blend.fake, (blend.mask > 0.05).astype(np.uint8)
                else:  # a real frame is exactly what its fake is blended into; a labelled fake gets the same step
                    rng = sample_rng(self.seed, epoch, sample, 1)
                    split = self._blender.split(image, rng)
                    if self.item_labels[item] < 0.5:
                        splits[sample] = (split, rng)  # its fake, next in the batch (sbi), continues from here
                    image = split[0].copy()
                if self.post:  # a pair (real, fake) shares one draw, so it differs only by the blend
                    post = self._blender.post(image, sample_rng(self.seed, epoch, sample, 2), outline, points)
                    image, outline, points = post.image, post.mask, post.keypoints
            if self.augmenter.active:
                image, outline = self.augmenter(
                    np.array(image), sample_rng(self.seed, epoch, sample, 3), points, outline
                )
            frames[position] = image
            if outlines is not None:
                outlines.append(outline if sbi else None)
        return frames

    def _apply_clip(self, clip: np.ndarray, filled: np.ndarray | None, sample: int, epoch: int) -> None:
        """Every frame of a clip gets the same draw (a fresh generator from the same seed)."""
        if not self.augmenter.active:
            return
        count = int(filled.sum()) if filled is not None else len(clip)
        for position in range(count):
            points = self.keypoints_of(sample, position)
            rng = sample_rng(self.seed, epoch, sample, 3)
            clip[position] = self.augmenter(np.array(clip[position]), rng, points)[0]
