"""One scoring path: clips of face crops -> a P(FAKE) per video, for every caller.

Evaluation (test and validation videos from the frame store), ``dfdetect predict`` (mp4s, face
folders, face-batch zips) and later scorers all hand ``score_clips`` the same thing: per video a
clip of ``n_slots`` uint8 face crops and the mask of its filled slots. Single-frame models score
every filled slot and the scores are aggregated into one video score (``dfdetect.evaluation.aggregate``);
the score of the filled slot nearest the middle (the study's single frame) is kept beside it.
Clip models (``td_lstm``) score the whole clip, filled slots first (``dfdetect.training.modelinput``).

Nothing here imports Keras: the model object is passed in, and only its ``input`` and
``predict`` are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from dfdetect.atomic import atomic_write_text
from dfdetect.config import result_settings
from dfdetect.data.facebatch import MANIPULATION_COLUMN
from dfdetect.evaluation.aggregate import AGGREGATIONS, aggregate_frame_scores
from dfdetect.layout import SCORING_FILE
from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT, left_pack_clips, nearest_filled_slot

PREDICTION_COLUMNS = ["video_id", "family", "label", "p_fake", "p_fake_middle", "n_frames_scored"]
SCORING_NOTE = (
    "How evaluation scored this model, as config sections: dfdetect predict applies them unless its "
    "command line says otherwise (frames: one single-face frame per `step` frame indices, `count` slots; "
    "evaluation.aggregate: frame scores -> video score)."
)
VIDEO_CHUNK = 32  # videos gathered per model call: fewer calls, bounded memory


@dataclass(frozen=True)
class ModelSpec:
    """What scoring needs to know about a loaded model's inputs."""

    image_size: int
    n_slots: int | None  # clip models (td_lstm): slots per clip; None for single-frame models
    named_inputs: bool  # inputs are a dict keyed by name (every dfdetect model)

    @property
    def is_clip_model(self) -> bool:
        return self.n_slots is not None


@dataclass(frozen=True)
class ClipScores:
    """Scores of a run of clips, one entry per clip."""

    p_fake: np.ndarray  # the video score
    p_fake_middle: np.ndarray  # single-frame models: the middle frame's score; NaN for clip models
    n_frames_scored: np.ndarray  # filled slots the score is based on

    @classmethod
    def concatenate(cls, parts: Sequence["ClipScores"]) -> "ClipScores":
        if not parts:
            empty = np.zeros(0)
            return cls(empty, empty, np.zeros(0, dtype=np.int32))
        return cls(
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in ("p_fake", "p_fake_middle", "n_frames_scored")
            )
        )


def model_spec(model: Any) -> ModelSpec:
    """Image size and clip length from the model's input shapes; clip models have a ``mask`` input."""
    named = isinstance(model.input, dict)
    inputs = model.input if named else {FRAMES_INPUT: model.input}
    if FRAMES_INPUT not in inputs:
        raise ValueError(f"model {model.name!r} has no {FRAMES_INPUT!r} input (inputs: {', '.join(inputs)})")
    shape = tuple(inputs[FRAMES_INPUT].shape)
    is_clip = MASK_INPUT in inputs
    height, width, channels = shape[-3:]
    if len(shape) != (5 if is_clip else 4) or height != width or channels != 3 or height is None:
        raise ValueError(
            f"model {model.name!r}: unexpected {FRAMES_INPUT!r} input shape {shape} "
            "(want (batch, [slots,] size, size, 3))"
        )
    return ModelSpec(image_size=int(height), n_slots=int(shape[1]) if is_clip else None, named_inputs=named)


def check_aggregation(aggregation: str) -> None:
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")


def middle_scores(scores: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The score of the frame the study would have used: the filled slot nearest the middle."""
    middle = masks.shape[1] // 2
    slots = np.array([nearest_filled_slot(row, middle) for row in masks], dtype=int).reshape(-1)
    picked = scores[np.arange(len(scores)), np.maximum(slots, 0)]
    return np.where(slots >= 0, picked, np.nan)


def score_clips(
    model: Any, spec: ModelSpec, frames: np.ndarray, masks: np.ndarray, aggregation: str, batch_size: int
) -> ClipScores:
    """Scores of clips ``frames`` (videos, slots, size, size, 3) uint8 with ``masks`` (videos, slots)."""
    check_aggregation(aggregation)
    masks = np.asarray(masks, dtype=bool)
    n_scored = masks.sum(axis=1).astype(np.int32)
    if spec.is_clip_model:
        p_fake = _predict(model, left_pack_clips(frames, masks), batch_size)  # clip models have named inputs
        return ClipScores(p_fake, np.full(len(p_fake), np.nan), n_scored)
    filled = frames[masks]
    scores = np.zeros(masks.shape, dtype=np.float64)
    if len(filled):
        scores[masks] = _predict(model, {FRAMES_INPUT: filled} if spec.named_inputs else filled, batch_size)
    return ClipScores(aggregate_frame_scores(scores, masks, aggregation), middle_scores(scores, masks), n_scored)


def _predict(model: Any, inputs: Any, batch_size: int) -> np.ndarray:
    """P(FAKE) per row of ``inputs`` (an array, or a dict of arrays keyed by input name).

    Batches of exactly ``batch_size`` rows (the last one padded with zeros, its padding dropped)
    through ``predict_on_batch``: one traced step function for every call, without the data
    pipeline that ``model.predict`` builds per call, which dominates scoring many small sets
    (the robustness rule scores the test split 36 times).
    """
    arrays = inputs if isinstance(inputs, dict) else {None: inputs}
    n_rows = len(next(iter(arrays.values())))
    scores = []
    for start in range(0, n_rows, batch_size):
        batch = {name: array[start : start + batch_size] for name, array in arrays.items()}
        size = len(next(iter(batch.values())))
        if size < batch_size:
            batch = {
                name: np.concatenate([array, np.zeros((batch_size - size, *array.shape[1:]), array.dtype)])
                for name, array in batch.items()
            }
        output = model.predict_on_batch(batch if None not in batch else batch[None])
        scores.append(np.asarray(output, dtype=np.float64).reshape(-1)[:size])
    return np.concatenate(scores) if scores else np.zeros(0)


# (video_id, its clip's filled frames (n, size, size, 3) uint8) -> frames of the same shape
FrameTransform = Callable[[str, np.ndarray], np.ndarray]


def score_store_videos(
    model: Any,
    store: Any,
    videos: pd.DataFrame,
    aggregation: str,
    batch_size: int,
    transform: FrameTransform | None = None,
) -> pd.DataFrame:
    """One row per video of ``videos`` (video_id, family, label[, manipulation]) from a ``FrameStore``:
    p_fake, p_fake_middle (single-frame models), n_frames_scored; columns ``PREDICTION_COLUMNS``
    (and ``manipulation`` when ``videos`` has it).

    ``transform`` changes each video's filled frames before scoring (the robustness perturbations);
    everything else (frames, aggregation) is evaluation's.
    """
    spec = model_spec(model)
    if spec.image_size != store.image_size or (spec.is_clip_model and spec.n_slots != store.n_slots):
        raise ValueError(
            f"model {model.name!r} takes {spec.image_size}px frames"
            f"{f' in clips of {spec.n_slots}' if spec.is_clip_model else ''}, but the frame store "
            f"holds {store.image_size}px frames in {store.n_slots} slots"
        )
    located = store.locate(videos["video_id"])
    parts = []
    for start in range(0, len(located), VIDEO_CHUNK):
        chunk = located.iloc[start : start + VIDEO_CHUNK]
        frames = np.stack([store.frames[batch][row] for batch, row in zip(chunk["batch"], chunk["row"])])
        masks = np.stack([store.masks[batch][row] for batch, row in zip(chunk["batch"], chunk["row"])])
        if transform is not None:
            for position, video_id in enumerate(chunk["video_id"]):
                frames[position][masks[position]] = transform(video_id, frames[position][masks[position]])
        parts.append(score_clips(model, spec, frames, masks, aggregation, batch_size))
    scores = ClipScores.concatenate(parts)
    table = videos[["video_id", "family", "label"]].reset_index(drop=True).copy()
    table["p_fake"] = scores.p_fake
    table["p_fake_middle"] = scores.p_fake_middle
    table["n_frames_scored"] = scores.n_frames_scored.astype("int32")
    extra = [MANIPULATION_COLUMN] if MANIPULATION_COLUMN in videos.columns else []
    for column in extra:  # which manipulation made each fake (demo data), for per-manipulation metrics
        table[column] = videos[column].to_numpy()
    return table[PREDICTION_COLUMNS + extra]


# ---------------------------------------------------------------- the settings a model was scored with


def scoring_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a complete config that decide how a video is scored, as config sections:
    written beside a model (``scoring.json``, the scoring rule) and read by ``dfdetect predict``."""
    return {
        "image_size": config["image_size"],
        "keras_backend": config["keras_backend"],
        "frames": {"step": config["frames"]["step"], "count": config["frames"]["count"]},
        "evaluation": {key: config["evaluation"][key] for key in ("aggregate", "batch_size")},
        "faces": result_settings(config["faces"], "faces"),  # mp4 inputs: how faces are found
    }


def write_scoring_settings(path: str | Path, settings: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps({"note": SCORING_NOTE, **settings}, indent=2) + "\n")


def read_scoring_settings(model_path: str | Path) -> tuple[dict[str, Any] | None, Path]:
    """(the scoring settings beside a model file, or None when it has none; their path).
    ValueError names the file when it cannot be read."""
    path = Path(model_path).parent / SCORING_FILE
    if not path.is_file():
        return None, path
    try:
        settings = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} cannot be read: {error}") from error
    if not isinstance(settings, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    settings.pop("note", None)
    return settings, path
