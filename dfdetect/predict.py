"""``dfdetect predict``: score new videos with a saved model, the way evaluation scores test videos.

    dfdetect predict --model results/models/NAME/model.keras INPUT... [--out scores.csv]
                     [--config config.yaml] [--aggregate mean|median|confident_mean]
                     [--frames-step 10 --frames-count 30] [--backend tensorflow|jax|torch]

An INPUT is an mp4 (faces are extracted with MTCNN exactly as ``extract_faces`` does), a folder
of face crops (``{n}.png``, ``{n}_k.png``: one video, named by the folder), or a face-batch zip
(every video of its ``metadata.csv``). Per video the workflow's frame selection picks one
single-face frame per slot (``dfdetect.reduce.select_frames``), crops are resized to the model's
input size as packing does, and the video score is the evaluation's: single-frame models score
every selected frame and aggregate (``dfdetect.aggregate.aggregate_frame_scores``), ``td_lstm``
models score the clip with its filled slots first (``dfdetect.loader.left_pack_clips``).

Output: CSV ``filename,label,status`` (label = probability of FAKE, the DFDC submission format;
status ``ok`` or ``code: reason``). A video that cannot be scored gets 0.5 and its reason; the
exit code is 1 only when no video could be scored.

Keras is imported after ``dfdetect.backend.select_backend``; MTCNN (TensorFlow) is loaded only
when an mp4 is scored.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from dfdetect import faces
from dfdetect.facebatch import FaceBatchError, face_member_name, parse_face_member
from dfdetect.faces import FaceDetector, FaceSettings
from dfdetect.ingest import ingest_archive, open_batch_zip
from dfdetect.aggregate import AGGREGATIONS, aggregate_frame_scores
from dfdetect.reduce import select_frames
from dfdetect.store import DECODE_ERRORS, decode_face, fit_face

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["filename", "label", "status"]
STATUS_OK = "ok"
FAILED_SCORE = 0.5  # the uninformative guess: log loss ln 2 whatever the truth
# Failure codes: the status is "code: reason".
NOT_FOUND = "not_found"
UNSUPPORTED = "unsupported"
UNREADABLE = "unreadable"
NO_FACES = "no_faces"
NO_USABLE_FRAMES = "no_usable_frames"

DEFAULT_STEP, DEFAULT_COUNT = 10, 30  # the workflow's frames.step / frames.count defaults
FRAMES_INPUT, MASK_INPUT = "frames", "mask"  # the models' input names (dfdetect.models)
VIDEO_CHUNK = 32  # videos scored per model call: fewer calls, bounded memory
_BATCH_LABEL = "predict"  # select_frames keeps a batch column; inputs here have no batch id


class VideoFailure(Exception):
    """One video (or input) that cannot be scored; ``status`` is what the CSV says."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.status = f"{code}: {reason}"


@dataclass(frozen=True)
class PredictSettings:
    faces: FaceSettings = field(default_factory=FaceSettings)
    step: int = DEFAULT_STEP  # one slot per `step` frame indices
    count: int = DEFAULT_COUNT  # slots per video
    aggregation: str = "mean"
    batch_size: int = 64  # frames (or clips) per model batch

    def __post_init__(self) -> None:
        if self.step < 1 or self.count < 1:
            raise ValueError(f"frames step and count must be >= 1, got step {self.step}, count {self.count}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")

    @property
    def frame_limit(self) -> int:
        """Frames at or after this index fall outside every slot and are never looked at."""
        return self.step * self.count


@dataclass(frozen=True)
class ModelSpec:
    """What scoring needs to know about a loaded model's inputs."""

    image_size: int
    n_slots: int | None  # clip models (td_lstm): slots per clip; None for single-frame models
    named_inputs: bool  # inputs are a dict keyed by name (every dfdetect model)

    @property
    def is_clip_model(self) -> bool:
        return self.n_slots is not None


@dataclass
class VideoClip:
    """The selected faces of one video, ready for the model."""

    filename: str
    frames: np.ndarray  # (count, size, size, 3) uint8; zeros where the mask is False
    mask: np.ndarray  # (count,) bool, True where a slot holds a frame


@dataclass
class VideoResult:
    filename: str
    label: float = FAILED_SCORE
    status: str = STATUS_OK


@dataclass(frozen=True)
class FaceSource:
    """Face images of one or more videos: a frame table like ingest's (video_id, frame_index,
    face_index, member) and how to read one member as a (size, size, 3) uint8 face."""

    frames: pd.DataFrame
    read_face: Callable[[str, int], np.ndarray]  # (member, image_size) -> face


# ---------------------------------------------------------------- model


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
        raise ValueError(f"model {model.name!r}: unexpected {FRAMES_INPUT!r} input shape {shape} "
                         "(want (batch, [slots,] size, size, 3))")
    return ModelSpec(image_size=int(height), n_slots=int(shape[1]) if is_clip else None, named_inputs=named)


def clip_scores(model: Any, spec: ModelSpec, clips: Sequence[VideoClip], settings: PredictSettings) -> np.ndarray:
    """One P(FAKE) per clip, as evaluation computes it (``dfdetect.evaluate.score_videos``)."""
    frames = np.stack([clip.frames for clip in clips])
    masks = np.stack([clip.mask for clip in clips])
    if spec.is_clip_model:
        from dfdetect.loader import left_pack_clips

        return _predict(model, left_pack_clips(frames, masks), settings.batch_size)  # clip models have named inputs
    filled = frames[masks]
    scores = np.zeros(masks.shape, dtype=np.float64)
    scores[masks] = _predict(model, {FRAMES_INPUT: filled} if spec.named_inputs else filled, settings.batch_size)
    return aggregate_frame_scores(scores, masks, settings.aggregation)


def _predict(model: Any, inputs: Any, batch_size: int) -> np.ndarray:
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------- faces -> clips


def resize_face(face: np.ndarray, image_size: int) -> np.ndarray:
    """An RGB crop at the model's size, resized exactly as ``store.decode_face`` resizes PNG crops."""
    return fit_face(Image.fromarray(np.ascontiguousarray(face)), image_size)


def build_clip(filename: str, selection: pd.DataFrame, source: FaceSource, image_size: int, count: int) -> VideoClip:
    """The selected frames of one video (``select_frames`` rows: slot, member) as a clip."""
    frames = np.zeros((count, image_size, image_size, 3), dtype=np.uint8)
    mask = np.zeros(count, dtype=bool)
    for slot, member in selection[["slot", "member"]].itertuples(index=False):
        try:
            frames[slot] = source.read_face(member, image_size)
        except DECODE_ERRORS as error:
            raise VideoFailure(UNREADABLE, f"face image {member} cannot be decoded ({error})") from error
        mask[slot] = True
    return VideoClip(filename, frames, mask)


def selected_clips(source: FaceSource, videos: Sequence[tuple[str, str]], settings: PredictSettings,
                   image_size: int) -> Iterator[VideoClip | VideoResult]:
    """A clip, or a failed result, per (video_id, filename), in the given order."""
    selection = select_frames(source.frames, [video_id for video_id, _ in videos], settings.step, settings.count)
    per_video = dict(tuple(selection.groupby("video_id", sort=False)))
    has_faces = set(source.frames["video_id"])
    for video_id, filename in videos:
        if video_id not in has_faces:
            yield failed(filename, VideoFailure(NO_FACES, "no face images"))
        elif video_id not in per_video:
            reason = (f"no frame with exactly one face among frames 0-{settings.frame_limit - 1} "
                      f"({settings.count} slots of {settings.step})")
            yield failed(filename, VideoFailure(NO_USABLE_FRAMES, reason))
        else:
            try:
                yield build_clip(filename, per_video[video_id], source, image_size, settings.count)
            except VideoFailure as error:
                yield failed(filename, error)


def failed(filename: str, error: VideoFailure) -> VideoResult:
    return VideoResult(filename, FAILED_SCORE, error.status)


# ---------------------------------------------------------------- input kinds


def input_kind(path: Path) -> str:
    """mp4 | folder | zip; raises VideoFailure for what predict cannot read."""
    if not path.exists():
        raise VideoFailure(NOT_FOUND, f"{path} does not exist")
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix == ".mp4":
        return "mp4"
    if suffix == ".zip":
        return "zip"
    raise VideoFailure(UNSUPPORTED, f"{path}: want an .mp4, a folder of face crops or a face-batch .zip")


def input_filename(path: Path) -> str:
    """How the CSV names an input that fails as a whole: a face folder by its video's .mp4 name."""
    return f"{path.name}.mp4" if path.is_dir() else path.name


def mp4_face_source(path: Path, detector: FaceDetector, settings: PredictSettings) -> FaceSource:
    """MTCNN faces of the frames that can fall into a slot, found by ``faces.extract_video_faces``.

    Decoding stops at ``settings.frame_limit``: later frames are never selected.
    """
    video_id = path.stem
    try:
        found = faces.extract_video_faces(path, detector, settings.faces, name=path.name,
                                          frame_limit=settings.frame_limit)
    except faces.VideoDecodeError as error:
        raise VideoFailure(UNREADABLE, str(error)) from error
    if found.n_faces == 0:
        raise VideoFailure(NO_FACES, f"no face with confidence >= {settings.faces.threshold} and size >= "
                                     f"{settings.faces.min_face_size} px in frames 0-{settings.frame_limit - 1}")
    rows = [(video_id, index, number, face_member_name(video_id, index, number))
            for index, frame_faces in found.faces.items() for number in range(1, len(frame_faces) + 1)]
    # Only a single-face frame is ever selected, so only `{n}.png` is ever read.
    crops = {face_member_name(video_id, index): frame_faces[0].crop for index, frame_faces in found.faces.items()}
    return FaceSource(_frame_table(rows), lambda member, size: resize_face(crops[member], size))


def folder_face_source(folder: Path) -> FaceSource:
    """``{n}.png`` / ``{n}_k.png`` crops directly in ``folder`` (one video, named by the folder)."""
    rows = []
    for path in sorted(folder.iterdir()):
        member = parse_face_member(f"{folder.name}/{path.name}")
        if member is not None and path.is_file():
            rows.append((folder.name, member.frame_index, member.face_index, path.name))
    if not rows:
        raise VideoFailure(NO_FACES, f"{folder}: no face images ({{n}}.png or {{n}}_{{k}}.png)")
    return FaceSource(_frame_table(rows), lambda member, size: decode_face((folder / member).read_bytes(), size))


def _frame_table(rows: list[tuple[str, int, int, str]]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["video_id", "frame_index", "face_index", "member"])
    table.insert(0, "batch", _BATCH_LABEL)
    return table.astype({"frame_index": "int32", "face_index": "int16"})


# ---------------------------------------------------------------- inputs -> results


class _LazyDetector:
    """A FaceDetector that loads the real one at the first detection: inputs without an mp4, and
    mp4s that cannot be decoded, load none."""

    def __init__(self, factory: Callable[[], FaceDetector]) -> None:
        self._factory = factory
        self._detector: FaceDetector | None = None

    def detect_faces(self, image: Any, **kwargs: Any) -> Any:
        if self._detector is None:
            self._detector = self._factory()
        return self._detector.detect_faces(image, **kwargs)


class Scorer:
    """Scores inputs in order, loading the face detector only when an mp4 needs it."""

    def __init__(self, model: Any, settings: PredictSettings,
                 detector_factory: Callable[[], FaceDetector] = faces.load_detector) -> None:
        self.model = model
        self.spec = model_spec(model)
        self.settings = settings
        if self.spec.is_clip_model and self.spec.n_slots != settings.count:
            raise ValueError(f"the model scores clips of {self.spec.n_slots} slots, but frames count is "
                             f"{settings.count}: use --frames-count {self.spec.n_slots} (or the model's config)")
        self.detector = _LazyDetector(detector_factory)

    def score(self, inputs: Sequence[str | Path], progress: bool = False) -> pd.DataFrame:
        """``filename,label,status`` for every video of ``inputs``, in input order."""
        results: list[VideoResult] = []
        pending: list[tuple[int, VideoClip]] = []
        # No total: a zip's video count is known only once it is opened.
        with tqdm(desc="predict", unit="video", disable=not progress, file=sys.stderr) as bar:
            for path in map(Path, inputs):
                bar.set_postfix_str(path.name)
                for item in self.videos(path):
                    if isinstance(item, VideoClip):
                        results.append(VideoResult(item.filename))
                        pending.append((len(results) - 1, item))
                    else:
                        results.append(item)
                    if len(pending) == VIDEO_CHUNK:
                        self._flush(pending, results)
                    bar.update(1)
            self._flush(pending, results)
        return pd.DataFrame([(r.filename, r.label, r.status) for r in results], columns=OUTPUT_COLUMNS)

    def videos(self, path: Path) -> Iterator[VideoClip | VideoResult]:
        """The clips of one input, or failed results with their reasons."""
        try:
            kind = input_kind(path)
            if kind == "zip":
                yield from self._zip_videos(path)
                return
            if kind == "mp4":
                source, video_id, filename = mp4_face_source(path, self.detector, self.settings), path.stem, path.name
            else:
                source, video_id, filename = folder_face_source(path), path.name, f"{path.name}.mp4"
            yield from selected_clips(source, [(video_id, filename)], self.settings, self.spec.image_size)
        except VideoFailure as error:
            yield failed(input_filename(path), error)

    def _zip_videos(self, path: Path) -> Iterator[VideoClip | VideoResult]:
        with contextlib.ExitStack() as stack:
            try:
                archive = stack.enter_context(open_batch_zip(path))
                manifest = ingest_archive(archive, path, _BATCH_LABEL)  # one open: one central-directory read
            except FaceBatchError as error:
                raise VideoFailure(UNREADABLE, str(error)) from error
            videos = list(manifest.videos[["video_id", "filename"]].itertuples(index=False, name=None))
            source = FaceSource(manifest.frames, lambda member, size: decode_face(archive.read(member), size))
            yield from selected_clips(source, videos, self.settings, self.spec.image_size)

    def _flush(self, pending: list[tuple[int, VideoClip]], results: list[VideoResult]) -> None:
        if not pending:
            return
        scores = clip_scores(self.model, self.spec, [clip for _, clip in pending], self.settings)
        for (position, _), score in zip(pending, scores):
            results[position].label = round(float(score), 6)
        pending.clear()


# ---------------------------------------------------------------- command line


def settings_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The workflow config's faces, frames and evaluation settings as PredictSettings arguments."""
    face_values = {key: value for key, value in (config.get("faces") or {}).items() if key != "resources"}
    frames = config.get("frames") or {}
    evaluation = config.get("evaluation") or {}
    values: dict[str, Any] = {"faces": FaceSettings.from_mapping(face_values)}
    for key, value in (("step", frames.get("step")), ("count", frames.get("count")),
                       ("aggregation", evaluation.get("aggregate")), ("batch_size", evaluation.get("batch_size"))):
        if value is not None:
            values[key] = value
    return values


def resolve_settings(args: argparse.Namespace, config: Mapping[str, Any], spec: ModelSpec) -> PredictSettings:
    """Command-line values over the config's; a clip model's slot count when neither sets it."""
    values = settings_from_config(config)
    if spec.is_clip_model and "count" not in values:
        values["count"] = spec.n_slots
    overrides = {"step": args.frames_step, "count": args.frames_count, "aggregation": args.aggregate,
                 "batch_size": args.batch_size}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return PredictSettings(**values)


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="dfdetect predict",
        description="Score videos (mp4, a folder of face crops, or a face-batch zip) with a saved model; "
                    "writes filename,label,status (label = probability of FAKE).",
    )
    command.add_argument("inputs", nargs="+", metavar="INPUT", help="an .mp4, a folder of {n}.png face crops, or a face-batch .zip")
    command.add_argument("--model", required=True, help="a saved model, e.g. results/models/cnn/model.keras")
    command.add_argument("--out", help="CSV to write (default: stdout)")
    command.add_argument("--config", help="a workflow config: its faces, frames and evaluation settings apply")
    command.add_argument("--aggregate", choices=AGGREGATIONS, help="frame scores -> video score (default: mean, or the config's)")
    command.add_argument("--frames-step", type=int, help=f"one frame per STEP frame indices (default {DEFAULT_STEP})")
    command.add_argument("--frames-count", type=int, help=f"frames (slots) per video (default {DEFAULT_COUNT}, "
                                                          "or a td_lstm model's clip length)")
    command.add_argument("--batch-size", type=int, help="frames per model batch (default 64)")
    command.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                         help="Keras backend (default: KERAS_BACKEND, else the config's keras_backend, else tensorflow)")
    return command


def choose_backend(requested: str | None, config: Mapping[str, Any]) -> str:
    return requested or os.environ.get("KERAS_BACKEND") or config.get("keras_backend") or "tensorflow"


def write_scores(table: pd.DataFrame, out: str | None, stdout: TextIO) -> None:
    if out is None:
        table.to_csv(stdout, index=False, lineterminator="\n")
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, lineterminator="\n")


def main(argv: Sequence[str] | None = None) -> int:
    command = parser()
    args = command.parse_args(argv)
    config: dict[str, Any] = {}
    if args.config:
        import yaml

        config = yaml.safe_load(Path(args.config).read_text()) or {}
    logging.basicConfig(level=logging.INFO, format="dfdetect predict: %(message)s", stream=sys.stderr)

    from dfdetect.backend import select_backend

    select_backend(choose_backend(args.backend, config))
    from dfdetect.models import load_model

    try:
        model = load_model(args.model)
    except (OSError, ValueError) as error:
        command.error(f"cannot load model {args.model}: {error}")
    try:
        scorer = Scorer(model, resolve_settings(args, config, model_spec(model)))
    except ValueError as error:
        command.error(str(error))
    table = scorer.score(args.inputs, progress=sys.stderr.isatty())
    write_scores(table, args.out, sys.stdout)
    n_ok = int((table["status"] == STATUS_OK).sum())
    log.info("scored %d of %d video(s)%s", n_ok, len(table), f"; wrote {args.out}" if args.out else "")
    for row in table[table["status"] != STATUS_OK].itertuples(index=False):
        log.warning("%s: %s (scored %.1f)", row.filename, row.status, FAILED_SCORE)
    return 0 if n_ok else 1


if __name__ == "__main__":
    sys.exit(main())
