"""``dfdetect predict``: score new videos with a saved model, the way evaluation scores test videos.

    dfdetect predict --model results/models/NAME/model.keras INPUT... [--out scores.csv]
                     [--config config.yaml] [--aggregate mean|median|confident_mean]
                     [--frames-step 10 --frames-count 30] [--backend tensorflow|jax|torch] [--raw]
    dfdetect predict --model A/model.keras --model B/model.keras [--combine mean|logit_mean] INPUT...

An INPUT is an mp4 (faces are extracted with MTCNN exactly as ``extract_faces`` does), a folder
of face crops (``{n}.png``, ``{n}_k.png``: one video, named by the folder), a face-batch zip
(every video of its ``metadata.csv``), or one face crop image (a video of one frame);
``dfdetect.evaluation.predict_inputs`` reads them. The scores come from the one scoring path that
evaluation uses (``dfdetect.evaluation.scoring.score_clips``).

Settings: the command line over the model's own ``scoring.json`` (written beside ``model.keras``
by the workflow: the frames, aggregation, batch size, face settings and backend its evaluation
used) over ``--config`` (validated and completed like the workflow's, with
``dfdetect.config.load_config``) over the schema's defaults. So a model scores exactly as it was
evaluated with no option given. A clip model (``td_lstm``) always scores clips of the length it
was built for: that length comes from the model itself, and a ``--frames-count`` that differs is
an error. ``dfdetect.evaluation.predict_settings`` resolves them.

Calibration: each model's scores are calibrated with the ``calibration.json`` next to it (written by
the workflow's evaluate job, ``dfdetect.evaluation.calibration``); ``--raw`` scores without it. Several
``--model`` make an ensemble: each model's calibrated video scores combined per video (``--combine``,
``dfdetect.evaluation.ensemble.combine_scores``), as the workflow's ensembles are evaluated.

Output: CSV ``filename,label,status,n_frames_scored,n_faces_found,note,calibration`` (label =
probability of FAKE, the DFDC submission format's two columns first; status ``ok`` or ``code:
reason``; the frames the score comes from; the face images found in the frames searched; a note,
for instance that an mp4 decoded only partly; calibration: what was applied). A video that cannot
be scored gets 0.5 and its reason; the exit code is 1 only when no video could be scored. The
output path is checked before scoring: it must be writable and must not be an input, a model, its
calibration, the config or a file inside an input folder.

Keras is imported after ``dfdetect.training.backend.select_backend``; MTCNN (TensorFlow) is loaded only
when an mp4 is scored.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TextIO

import numpy as np
import pandas as pd
from tqdm import tqdm

from dfdetect.atomic import atomic_path, temporary_name
from dfdetect.corrupt import CorruptFileError, check_model_archive
from dfdetect.data.faces import detect
from dfdetect.data.faces.detect import FaceDetector
from dfdetect.evaluation.aggregate import AGGREGATIONS
from dfdetect.evaluation.calibration import Calibration
from dfdetect.evaluation.calibration import load as load_calibration
from dfdetect.evaluation.ensemble import COMBINE_METHODS, combine_scores
from dfdetect.evaluation.predict_inputs import (
    FAILED_SCORE,
    STATUS_OK,
    LazyDetector,
    VideoClip,
    VideoFailure,
    VideoResult,
    failed,
    folder_face_source,
    image_face_source,
    input_filename,
    input_kind,
    mp4_face_source,
    selected_clips,
    zip_videos,
)
from dfdetect.evaluation.predict_settings import (
    PredictSettings,
    choose_backend,
    describe_settings,
    model_scoring_config,
    resolve_settings,
)
from dfdetect.evaluation.scoring import ModelSpec, model_spec, score_clips
from dfdetect.layout import CALIBRATION_FILE
from dfdetect.schema import schema_default

log = logging.getLogger(__name__)

# The DFDC submission's filename,label, then whether the video was scored, from how many frames, the
# face images found in the frames searched, a note (an mp4 that decoded only partly is scored from the
# frames it has, and says so), and the calibration applied.
OUTPUT_COLUMNS = ["filename", "label", "status", "n_frames_scored", "n_faces_found", "note", "calibration"]
RAW = "raw"  # the calibration column when none was applied
VIDEO_CHUNK = 32  # videos scored per model call: fewer calls, bounded memory


@dataclass(frozen=True)
class Member:
    """One model of a Scorer: the loaded model, its input spec and its calibration (None: raw scores)."""

    model: Any
    spec: ModelSpec
    calibration: Calibration | None = None
    name: str = "model"

    def describe(self) -> str:
        return self.calibration.describe() if self.calibration is not None else RAW


class Scorer:
    """Scores inputs in order with one model or an ensemble of several, loading the face detector
    only when an mp4 needs it.

    ``model``: a loaded model, or a sequence of them (an ensemble, ``combine``d per video);
    ``calibrations``: one per model (None: that model's raw scores), or None for raw scores.
    """

    def __init__(
        self,
        model: Any,
        settings: PredictSettings,
        detector_factory: Callable[[], FaceDetector] = detect.load_detector,
        calibrations: Sequence[Calibration | None] | None = None,
        combine: str = "mean",
        names: Sequence[str] | None = None,
    ) -> None:
        models = list(model) if isinstance(model, (list, tuple)) else [model]
        calibrations = list(calibrations) if calibrations is not None else [None] * len(models)
        names = list(names) if names is not None else [f"model {number + 1}" for number in range(len(models))]
        if len(calibrations) != len(models) or len(names) != len(models):
            raise ValueError(f"{len(models)} models, {len(calibrations)} calibrations and {len(names)} names")
        if combine not in COMBINE_METHODS:
            raise ValueError(f"unknown combine {combine!r}; expected one of {', '.join(COMBINE_METHODS)}")
        self.members = [
            Member(item, model_spec(item), calibration, name)
            for item, calibration, name in zip(models, calibrations, names)
        ]
        self.combine = combine
        self.settings = settings
        sizes = {member.spec.image_size for member in self.members}
        if len(sizes) > 1:
            raise ValueError(f"the models take frames of different sizes ({', '.join(map(str, sorted(sizes)))} px)")
        for member in self.members:
            if member.spec.is_clip_model and member.spec.n_slots != settings.count:
                raise ValueError(
                    f"{member.name} scores clips of {member.spec.n_slots} slots, but frames count is "
                    f"{settings.count}: use --frames-count {member.spec.n_slots} (or leave it out)"
                )
        self.spec = self.members[0].spec
        self.detector = LazyDetector(detector_factory)

    @property
    def model(self) -> Any:
        return self.members[0].model

    def describe(self) -> str:
        """What the calibration column says: each model's calibration, and how an ensemble combines them."""
        if len(self.members) == 1:
            return self.members[0].describe()
        return f"{self.combine} of " + "; ".join(f"{member.name}: {member.describe()}" for member in self.members)

    def score(self, inputs: Sequence[str | Path], progress: bool = False) -> pd.DataFrame:
        """``OUTPUT_COLUMNS`` for every video of ``inputs``, in input order."""
        results: list[VideoResult] = []
        pending: list[tuple[int, VideoClip]] = []
        # No total: a zip's video count is known only once it is opened.
        with tqdm(desc="predict", unit="video", disable=not progress, file=sys.stderr) as bar:
            for path in map(Path, inputs):
                bar.set_postfix_str(path.name)
                for item in self.videos(path):
                    if isinstance(item, VideoClip):
                        result = VideoResult(item.filename, n_frames_scored=int(item.mask.sum()), note=item.note)
                        result.n_faces_found = item.faces_found
                        results.append(result)
                        pending.append((len(results) - 1, item))
                    else:
                        results.append(item)
                    if len(pending) == VIDEO_CHUNK:
                        self._flush(pending, results)
                    bar.update(1)
            self._flush(pending, results)
        calibration = self.describe()
        rows = [
            (r.filename, r.label, r.status, r.n_frames_scored, r.n_faces_found, r.note, calibration) for r in results
        ]
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)

    def videos(self, path: Path) -> Iterator[VideoClip | VideoResult]:
        """The clips of one input, or failed results with their reasons."""
        try:
            kind = input_kind(path)
            selection, image_size = self.settings.selection, self.spec.image_size
            searched = None
            if kind == "zip":
                yield from zip_videos(path, selection, image_size)
                return
            if kind == "mp4":
                source, searched = mp4_face_source(path, self.detector, self.settings.faces, selection)
                video_id, filename = path.stem, path.name
            elif kind == "image":
                source, video_id, filename = image_face_source(path), path.stem, path.name
            else:
                source, video_id, filename = folder_face_source(path), path.name, f"{path.name}.mp4"
            yield from selected_clips(source, [(video_id, filename)], selection, image_size, searched)
        except VideoFailure as error:
            yield failed(input_filename(path), error)

    def _flush(self, pending: list[tuple[int, VideoClip]], results: list[VideoResult]) -> None:
        if not pending:
            return
        frames = np.stack([clip.frames for _, clip in pending])
        masks = np.stack([clip.mask for _, clip in pending])
        member_scores = []
        for member in self.members:
            scores = score_clips(
                member.model, member.spec, frames, masks, self.settings.aggregation, self.settings.batch_size
            ).p_fake
            member_scores.append(member.calibration.apply(scores) if member.calibration is not None else scores)
        video_scores = member_scores[0] if len(self.members) == 1 else combine_scores(member_scores, self.combine)
        for (position, _), score in zip(pending, video_scores):
            results[position].label = round(float(score), 6)
        pending.clear()


# ---------------------------------------------------------------- command line


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="dfdetect predict",
        description="Score videos (mp4, a folder of face crops, a face-batch zip, or one face crop) with a saved "
        "model, as its evaluation scored them (scoring.json beside the model); writes "
        "filename,label,status,n_frames_scored,n_faces_found,note (label = probability of FAKE).",
    )
    command.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="an .mp4, a folder of {n}.png face crops, a face-batch .zip, or one face crop (.png, .jpg)",
    )
    command.add_argument(
        "--model",
        required=True,
        action="append",
        help="a saved model, e.g. results/models/cnn/model.keras; give it several times to score an ensemble",
    )
    command.add_argument(
        "--raw",
        action="store_true",
        help=f"scores without calibration (default: each model's {CALIBRATION_FILE}, beside it, applied)",
    )
    command.add_argument(
        "--combine",
        choices=COMBINE_METHODS,
        default="mean",
        help="with several --model: how their calibrated video scores are combined (default: mean)",
    )
    command.add_argument("--out", help="CSV to write (default: stdout)")
    command.add_argument(
        "--config",
        help="a workflow config: its faces, frames and evaluation settings apply where the model has no "
        "scoring.json beside it",
    )
    command.add_argument(
        "--aggregate",
        choices=AGGREGATIONS,
        help="frame scores -> video score (default: the model's, else the config's evaluation.aggregate)",
    )
    command.add_argument(
        "--frames-step",
        type=int,
        help=f"one frame per STEP frame indices (default: the model's, else the config's, "
        f"{schema_default('frames', 'step')})",
    )
    command.add_argument(
        "--frames-count",
        type=int,
        help=f"frames (slots) per video (default: the model's, else the config's, "
        f"{schema_default('frames', 'count')}; a td_lstm model's own clip length)",
    )
    command.add_argument(
        "--batch-size", type=int, help="frames per model batch (default: the config's evaluation.batch_size)"
    )
    command.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: KERAS_BACKEND, else the one the model was evaluated with, else the "
        "config's keras_backend)",
    )
    return command


def check_model_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be a saved Keras model, or None (checked before Keras is imported)."""
    try:
        check_model_archive(path)
    except (OSError, CorruptFileError) as error:
        return str(error)
    return None


def check_output_path(out: str | Path) -> None:
    """Fail before any scoring when the CSV could not be written (OSError names the path)."""
    out = Path(out)
    if out.is_dir():
        raise OSError(f"--out {out} is a folder; give a file name")
    try:
        temporary_name(out).unlink()  # creates the folder and a file in it, as writing will
    except OSError as error:
        raise OSError(f"--out {out} cannot be written: {error.strerror or error}") from error


def model_name(path: str | Path) -> str:
    """A model's name in the calibration column: its folder (``models/NAME/model.keras``), else its file."""
    path = Path(path)
    return path.parent.name if path.name == "model.keras" and path.parent.name else path.name


def model_calibration(model_path: str | Path) -> Calibration:
    """The calibration next to a saved model; ValueError naming the file when it is missing or unreadable."""
    path = Path(model_path).parent / CALIBRATION_FILE
    if not path.is_file():
        raise ValueError(
            f"no calibration for {model_path}: {path} does not exist (the workflow's evaluate job writes it; "
            "copy it with the model, or pass --raw to score without calibration)"
        )
    return load_calibration(path)


def check_output_is_not_an_input(out: str | Path, reads: Mapping[str, str | Path | None]) -> None:
    """Fail before any scoring when ``--out`` would replace what predict reads: a file it names in
    ``reads`` (what -> path: the inputs, the model, the config), or a file inside an input folder."""
    target = Path(out).resolve()
    for what, path in reads.items():
        if path is None:
            continue
        source = Path(path).resolve()
        same = target == source or (target.exists() and source.exists() and os.path.samefile(target, source))
        if same:
            raise ValueError(f"--out {out} is {what} ({path}): the scores would replace it; write them elsewhere")
        if source in target.parents:
            raise ValueError(f"--out {out} is inside {what} ({path}): write the scores outside the input folders")


def write_scores(table: pd.DataFrame, out: str | None, stdout: TextIO) -> None:
    if out is None:
        table.to_csv(stdout, index=False, lineterminator="\n")
        return
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False, lineterminator="\n")


def main(argv: Sequence[str] | None = None) -> int:
    from dfdetect.config import default_config, load_config
    from dfdetect.config_errors import ConfigError

    command = parser()
    args = command.parse_args(argv)
    try:
        config = load_config(args.config, check_sources=False) if args.config else default_config()
    except Exception as error:  # a missing file, bad YAML, the schema's or the config checks' errors
        command.error(f"--config {args.config}: {error}")
    if args.out:
        reads = {"the config": args.config}
        for number, path in enumerate(args.model, 1):
            which = "the model" if len(args.model) == 1 else f"model {number} of {len(args.model)}"
            reads[which] = path
            reads[f"the calibration of {which}"] = Path(path).parent / CALIBRATION_FILE
        reads.update({f"input {number} of {len(args.inputs)}": path for number, path in enumerate(args.inputs, 1)})
        try:
            check_output_is_not_an_input(args.out, reads)
            check_output_path(args.out)
        except (OSError, ValueError) as error:
            command.error(str(error))
    for path in args.model:
        problem = check_model_file(path)
        if problem:
            command.error(f"cannot load model: {problem}")
    try:
        calibrations = [None if args.raw else model_calibration(path) for path in args.model]
    except ValueError as error:
        command.error(str(error))
    logging.basicConfig(level=logging.INFO, format="dfdetect predict: %(message)s", stream=sys.stderr)
    try:
        config, source = model_scoring_config(args.model, config, args.config)
    except (ValueError, ConfigError) as error:
        command.error(f"the model's scoring settings: {error}")

    from dfdetect.training.backend import select_backend

    select_backend(choose_backend(args.backend, config))
    from dfdetect.training.models import load_model

    models = []
    for path in args.model:
        try:
            models.append(load_model(path))
        except (OSError, ValueError) as error:
            command.error(f"cannot load model {path}: {error}")
    specs = [model_spec(model) for model in models]
    clip_specs = [spec for spec in specs if spec.is_clip_model]
    try:
        settings = resolve_settings(args, config, clip_specs[0] if clip_specs else specs[0])
        names = [model_name(path) for path in args.model]
        scorer = Scorer(models, settings, calibrations=calibrations, combine=args.combine, names=names)
    except (ValueError, ConfigError) as error:
        command.error(str(error))
    log.info(describe_settings(scorer.settings, source))
    log.info("calibration: %s", scorer.describe())
    table = scorer.score(args.inputs, progress=sys.stderr.isatty())
    write_scores(table, args.out, sys.stdout)
    n_ok = int((table["status"] == STATUS_OK).sum())
    log.info("scored %d of %d video(s)%s", n_ok, len(table), f"; wrote {args.out}" if args.out else "")
    for row in table[table["status"] != STATUS_OK].itertuples(index=False):
        log.warning("%s: %s (scored %.1f)", row.filename, row.status, FAILED_SCORE)
    for row in table[(table["status"] == STATUS_OK) & (table["note"] != "")].itertuples(index=False):
        log.warning("%s: %s; scored from %d frame(s)", row.filename, row.note, row.n_frames_scored)
    return 0 if n_ok else 1


if __name__ == "__main__":
    sys.exit(main())
