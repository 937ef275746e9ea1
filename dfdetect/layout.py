"""Where everything lives under ``results_dir``: the one layout the rules and the commands share.

The rules declare their outputs with these paths (``rules/common.smk`` makes ``LAYOUT``), passing
Snakemake wildcards such as ``"{batch}"`` for the arguments; the commands that run without
Snakemake (``dfdetect train``, ``report``, ``where``) and batch discovery find the same files
through the same methods. A path typed anywhere else is a bug waiting for a rename.

Every path the layout gives is inside ``results_dir``: names that become path parts (models,
evaluation sets, batch ids) must pass ``check_name`` (the schema's ``$defs.path_name``: no
separator, never ``.`` or ``..``), and ``ResultsLayout.path`` refuses an absolute path or a ``.`` or
``..`` part, so no name can point a writer at the training data or outside the folder.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence, TypeVar

from dfdetect.schema import config_schema

T = TypeVar("T")
B = TypeVar("B", bound="BatchPaths")

# The ``data`` prefix of the training data; an evaluation set's is ``ResultsLayout.set_data(NAME)``.
TRAINING_DATA = ""
# The ``run`` suffix of a model's run 0, the model users deploy; run r >= 1 is ``ResultsLayout.run_part(r)``.
FIRST_RUN = ""

# Raw input names: the DFDC's own file names, which batch discovery, the demo and extract_faces follow.
BATCH_FILE_GLOB = "deepfake-detection-faces-part-*-*.zip"
BATCH_FILE_PATTERN = re.compile(r"^deepfake-detection-faces-part-(\d+)-(\d+)\.zip$")
RAW_VIDEO_GLOB = "dfdc_train_part_*.zip"
RAW_VIDEO_PATTERN = re.compile(r"^dfdc_train_part_(\d+)\.zip$")


def batch_file_name(batch: str) -> str:
    """Batch id ``"3-1"`` -> ``deepfake-detection-faces-part-3-1.zip``."""
    return f"deepfake-detection-faces-part-{batch}.zip"


def batch_id(path: str | Path) -> str:
    """``.../deepfake-detection-faces-part-3-1.zip`` -> ``"3-1"``; ValueError for another name."""
    match = BATCH_FILE_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path}: not a face-batch file name (want deepfake-detection-faces-part-I-J.zip)")
    return f"{int(match.group(1))}-{int(match.group(2))}"


def raw_video_part_number(path: str | Path) -> str:
    """``dfdc_train_part_12.zip`` -> ``"12"``; ValueError for another name."""
    match = RAW_VIDEO_PATTERN.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path}: not a raw DFDC part name (want dfdc_train_part_N.zip)")
    return str(int(match.group(1)))


NAME_RULE = "letters, digits, '_', '.' and '-' only, not starting with '.' (never '.' or '..'), no '/'"
_WILDCARD = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")  # a Snakemake wildcard such as "{model}"


class LayoutError(ValueError):
    """A name or path that would put an output outside results_dir (or over another output)."""


@functools.cache
def name_pattern() -> re.Pattern[str]:
    """The one rule for names that become paths: the schema's ``$defs.path_name`` pattern."""
    return re.compile(config_schema()["$defs"]["path_name"]["pattern"])


def check_name(kind: str, name: Any) -> str:
    """``name`` when it can be one file or folder name under results_dir; LayoutError naming ``kind`` else."""
    if not isinstance(name, str) or name_pattern().match(name) is None:
        raise LayoutError(f"{kind} name {name!r} cannot become a file name under results_dir: use {NAME_RULE}")
    return name


def _part(kind: str, value: str) -> str:
    """A name for a path part, or a Snakemake wildcard standing for one (the rules' patterns)."""
    return value if _WILDCARD.match(value) else check_name(kind, value)


def _run(run: str) -> str:
    """A run suffix: "" (run 0), ``/runs/R`` (R >= 1) or the rules' "{run}" wildcard."""
    if run in (FIRST_RUN, "{run}") or re.fullmatch(r"/runs/[1-9][0-9]*", run):
        return run
    raise LayoutError(f"run suffix {run!r}: want '' (run 0) or '/runs/R' (R >= 1)")


def _data(data: str) -> str:
    """A dataset prefix: "" (the training data), ``sets/NAME/`` or the rules' "{data}" wildcard."""
    if data in (TRAINING_DATA, "{data}"):
        return data
    name = data.removeprefix("sets/").removesuffix("/")
    if not (data.startswith("sets/") and data.endswith("/")):
        raise LayoutError(f"dataset prefix {data!r}: want '' or 'sets/NAME/'")
    _part("evaluation set", name)
    return data


@dataclass(frozen=True)
class ResultsLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def path(self, relative: str) -> str:
        """A path under the results folder, as a string (Snakemake patterns are strings).

        An absolute ``relative``, or one with a ``.`` or ``..`` part, raises LayoutError: it
        would name something outside the results folder, or another output than it says.
        """
        parts = relative.split("/")
        if relative.startswith("/") or any(part in (".", "..") for part in parts):
            raise LayoutError(f"{relative!r} is not a path inside results_dir ({self.root})")
        return str(self.root / relative)

    # The data-prep paths take ``data``: "" for the training data, ``set_data(NAME)`` for an
    # evaluation set (``sets/NAME/``), or the rules' "{data}" wildcard. One set of rules serves all.

    # Raw inputs the workflow makes (demo batches, faces extracted from raw video parts)
    def demo_zip(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}demo/raw/{batch_file_name(_part('batch', batch))}")

    def faces_zip(self, part: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}faces/{batch_file_name(_part('raw video part', part) + '-0')}")

    def faces_report(self, part: str, data: str = TRAINING_DATA) -> str:
        """extract_faces' per-video table beside its zip (``dfdetect.data.faces.extract.report_path``)."""
        return self.faces_zip(part, data).removesuffix(".zip") + ".report.csv"

    # Manifests, cleaning, reduction
    def frame_manifest(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}manifests/frames/{_part('batch', batch)}.parquet")

    def video_manifest(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}manifests/videos/{_part('batch', batch)}.parquet")

    def skipped_manifest(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}manifests/skipped/{_part('batch', batch)}.parquet")

    def videos(self, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}manifests/videos.parquet")

    def clean_videos(self, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}clean/videos.parquet")

    def clean_summary(self, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}clean/summary.json")

    def selection(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}reduced/batches/{_part('batch', batch)}.parquet")

    def reduced(self, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}reduced/frames.parquet")

    # The packed frame store: store/{batch} plus a suffix of STORE_FILES (pack) or LANDMARK_FILES (landmarks)
    def store_dir(self, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}store")

    def store_prefix(self, batch: str, data: str = TRAINING_DATA) -> str:
        return self.path(f"{_data(data)}store/{_part('batch', batch)}")

    def store_file(self, batch: str, output: str, data: str = TRAINING_DATA) -> str:
        """The pack or landmarks rule's output ``output`` (a key of STORE_FILES or LANDMARK_FILES)."""
        return self.store_prefix(batch, data) + {**STORE_FILES, **LANDMARK_FILES}[output]

    # Evaluation sets: prepared like the training data under sets/NAME/, never split
    @staticmethod
    def set_data(name: str) -> str:
        return f"sets/{_part('evaluation set', name)}/"

    def set_videos(self, name: str) -> str:
        """Every kept, packed video of set ``name``: what each model is scored on."""
        return self.path(f"{self.set_data(name)}videos.parquet")

    # Splits
    def split(self, name: str) -> str:
        return self.path(f"splits/{name}.parquet")

    def split_summary(self) -> str:
        return self.path("splits/summary.json")

    # Models, evaluations, the comparison. The model paths take ``run``: FIRST_RUN ("") for run 0, the
    # model users deploy, ``run_part(r)`` (``/runs/r``) for the other runs of a model with repeats, or
    # the rules' "{run}" wildcard. Ensembles (no model file) live under eval/ like models.
    @staticmethod
    def run_part(run: int) -> str:
        """Run number -> the ``run`` suffix of its paths: "" for run 0, ``/runs/r`` for run r."""
        if run < 0:
            raise ValueError(f"run must not be negative, got {run}")
        return FIRST_RUN if run == 0 else f"/runs/{run}"

    @staticmethod
    def run_number(run: str) -> int:
        """The inverse of ``run_part``: "" -> 0, ``/runs/2`` -> 2."""
        return 0 if run == FIRST_RUN else int(_run(run).removeprefix("/runs/"))

    def model_dir(self, model: str, run: str = FIRST_RUN) -> str:
        return self.path(f"models/{_part('model', model)}{_run(run)}")

    def train_file(self, model: str, output: str, run: str = FIRST_RUN) -> str:
        """The train rule's output ``output`` (a key of TRAIN_FILES) of ``model``'s run ``run``."""
        return f"{self.model_dir(model, run)}/{TRAIN_FILES[output]}"

    def scoring_file(self, model: str, run: str = FIRST_RUN) -> str:
        """The scoring settings beside a model (scoring rule; ``dfdetect predict`` reads them)."""
        return f"{self.model_dir(model, run)}/{SCORING_FILE}"

    def train_log(self, model: str, run: str = FIRST_RUN) -> str:
        """The train job's log (its job lock is named after it: ``dfdetect.lock.job_lock``)."""
        return self.path(f"logs/train/{_part('model', model)}{_run(run)}.log")

    def calibration_file(self, model: str, run: str = FIRST_RUN) -> str:
        """The calibration of a model's video scores, next to the model (written by the evaluate rule)."""
        return f"{self.model_dir(model, run)}/{CALIBRATION_FILE}"

    def eval_dir(self, model: str, run: str = FIRST_RUN) -> str:
        return self.path(f"eval/{_part('model', model)}{_run(run)}")

    def eval_file(self, model: str, output: str, run: str = FIRST_RUN) -> str:
        """The evaluate (or ensemble) rule's output ``output`` (a key of EVALUATION_FILES) of ``model``."""
        return f"{self.eval_dir(model, run)}/{EVALUATION_FILES[output]}"

    def set_eval_file(self, model: str, name: str, output: str, run: str = FIRST_RUN) -> str:
        """The evaluate_set (or ensemble_set) rule's output ``output`` (a key of SET_EVALUATION_FILES) of
        ``model`` on set ``name``."""
        return f"{self.eval_dir(model, run)}/{self.set_data(name)}{SET_EVALUATION_FILES[output]}"

    def robustness_file(self, model: str, output: str) -> str:
        """The robustness rule's output ``output`` (a key of ROBUSTNESS_FILES) of ``model``."""
        return f"{self.eval_dir(model)}/{ROBUSTNESS_FILES[output]}"

    def report_file(self, name: str) -> str:
        return self.path(f"report/{name}")


# Output name -> suffix of the batch's store prefix (pack rule; dfdetect.data.store.StorePaths)
STORE_FILES = {"frames": ".frames.npy", "mask": ".mask.npy", "index": ".index.parquet"}
# Output name -> suffix of the batch's store prefix (landmarks rule; dfdetect.data.landmarks.files.LandmarkPaths)
LANDMARK_FILES = {"landmarks": ".landmarks.npy", "boxes": ".landmark_boxes.npy"}
# Output name -> file name in models/{model}/ (train rule; dfdetect.training.train.TrainPaths has these fields)
TRAIN_FILES = {
    "model": "model.keras",
    "history": "history.csv",
    "plot": "history.png",
    "info": "train.json",
    "samples": "training_samples.png",
}
# Beside models/{model}/model.keras: how evaluation scored it (frames, aggregation, image size), so that
# `dfdetect predict` scores the same way without a config (dfdetect.evaluation.scoring.ScoringSettings)
SCORING_FILE = "scoring.json"
# In models/{model}/: the evaluate rule's calibration of the model's video scores (dfdetect.evaluation.calibration)
CALIBRATION_FILE = "calibration.json"
# Output name -> file name in eval/{model}/ (evaluate and ensemble rules; dfdetect.evaluation.evaluate.EvaluationPaths)
EVALUATION_FILES = {
    "predictions": "predictions.parquet",
    "validation_predictions": "validation_predictions.parquet",
    "metrics": "metrics.json",
    "roc": "roc.png",
    "precision_recall": "precision_recall.png",
    "confusion": "confusion_matrix.png",
    "scores": "score_histograms.png",
    "reliability": "reliability.png",
    "submission": "submission.csv",
}
# Output name -> file name in eval/{model}/sets/{set}/ (evaluate_set and ensemble_set rules;
# dfdetect.evaluation.evaluate.SetEvaluationPaths)
SET_EVALUATION_FILES = {
    name: EVALUATION_FILES[name]
    for name in ("predictions", "metrics", "roc", "precision_recall", "confusion", "scores")
}
# Output name -> file name in eval/{model}/ (robustness rule; dfdetect.evaluation.robustness.RobustnessPaths)
ROBUSTNESS_FILES = {"table": "robustness.csv", "plot": "robustness.png"}
# Output name -> file name in report/ (report rule; dfdetect.evaluation.report.ReportPaths)
REPORT_FILES = {
    "csv": "comparison.csv",
    "runs": "comparison_runs.csv",
    "markdown": "comparison.md",
    "html": "comparison.html",
    "roc": "roc_comparison.png",
    "summary": "run_summary.md",
    "summary_html": "run_summary.html",
    "config": "config.html",
}


def demo_batch_id(batch_index: int) -> str:
    """Batch ids run ``0-0, 0-1, 1-0, 1-1, ...``: index k -> ``f"{k // 2}-{k % 2}"``."""
    if batch_index < 0:
        raise ValueError(f"batch_index must not be negative, got {batch_index}")
    return f"{batch_index // 2}-{batch_index % 2}"


def demo_batch_index(batch: str) -> int:
    """The inverse of ``demo_batch_id``: ``"1-0"`` -> 2 (for rules that only know the batch id)."""
    major, _, minor = batch.partition("-")
    if not (major.isdigit() and minor in ("0", "1")):
        raise ValueError(f"{batch!r} is not a demo batch id (want I-0 or I-1)")
    return int(major) * 2 + int(minor)


def demo_batch_ids(n_batches: int) -> list[str]:
    """The ids of a demo of ``n_batches`` batches, named like the Kaggle parts."""
    return [demo_batch_id(index) for index in range(n_batches)]


class RulePaths:
    """Base of the frozen dataclasses that hold every file one rule writes (TrainPaths,
    EvaluationPaths, ...): the field names are the rule's output names, ``FILES`` their file names."""

    FILES: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_mapping(cls: type[T], paths: Mapping[str, Any]) -> T:
        """From a rule's named outputs (``dict(snakemake.output.items())``).

        Every field must be there: a rule that stops declaring an output fails here, at the start
        of the job, instead of after it with Snakemake's MissingOutputException.
        """
        names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
        missing = [name for name in names if name not in paths]
        if missing:
            raise ValueError(f"{cls.__name__}: no path for {', '.join(missing)} (the rule must declare these outputs)")
        return cls(**{name: Path(paths[name]) for name in names})

    @classmethod
    def in_folder(cls: type[T], folder: str | Path) -> T:
        """The workflow's file names in one folder, for runs without Snakemake."""
        return cls.from_mapping({name: Path(folder) / file for name, file in cls.FILES.items()})


class BatchPaths(RulePaths):
    """RulePaths of one batch's files in the frame store: ``FILES`` holds suffixes of the batch's
    prefix (``store/{batch}``), so the rule declares them with ``multiext(prefix, **FILES)``."""

    @classmethod
    def for_prefix(cls: type[B], prefix: str | Path) -> B:
        return cls.from_mapping({name: f"{prefix}{suffix}" for name, suffix in cls.FILES.items()})

    @classmethod
    def group(cls: type[B], files: Iterable[str | Path]) -> list[B]:
        """One object per batch among a rule's declared input files (a flat list, as
        ``input: store=...`` gives them), in the order the batches first appear."""
        batches: dict[str, dict[str, str]] = {}
        for file in map(str, files):
            name = next((name for name, suffix in cls.FILES.items() if file.endswith(suffix)), None)
            if name is None:
                raise ValueError(f"{cls.__name__}: {file} has none of the suffixes {', '.join(cls.FILES.values())}")
            batches.setdefault(file.removesuffix(cls.FILES[name]), {})[name] = file
        return [cls.from_mapping(found) for found in batches.values()]

    @classmethod
    def in_folder(cls: type[B], folder: str | Path) -> list[B]:  # type: ignore[override]
        """Every batch in a store folder that has the first of ``FILES``, in batch order (runs without Snakemake)."""
        first = next(iter(cls.FILES.values()))
        prefixes = sorted(str(path)[: -len(first)] for path in Path(folder).glob(f"*{first}"))
        return [cls.for_prefix(prefix) for prefix in prefixes]

    @property
    def prefix(self) -> str:
        name, suffix = next(iter(self.FILES.items()))
        return str(getattr(self, name)).removesuffix(suffix)

    @property
    def batch(self) -> str:
        return Path(self.prefix).name


@dataclass(frozen=True)
class RunFiles:
    """What the comparison reads of one run of a model or an ensemble."""

    metrics: str | Path  # metrics.json (test split)
    train_info: str | Path | None  # train.json; None for an ensemble (nothing is trained)
    set_metrics: Mapping[str, str | Path] = field(default_factory=dict)  # set -> metrics.json


@dataclass(frozen=True)
class ResultFiles:
    """What the comparison reads: per model or ensemble, the files of each of its runs (run 0 first),
    and run 0's robustness table and predictions (the overlaid ROC curves). The report rule's inputs,
    or the same files found through the layout (``model_result_files``) by ``dfdetect report``."""

    runs: Mapping[str, Sequence[RunFiles]]  # model or ensemble -> its runs
    robustness: Mapping[str, str | Path] = field(default_factory=dict)  # model -> robustness.csv (run 0)
    predictions: Mapping[str, str | Path] = field(default_factory=dict)  # name -> run 0's test predictions.parquet
    set_predictions: Mapping[str, Mapping[str, str | Path]] = field(default_factory=dict)  # name -> set -> ...
    # model -> the model file to deploy (run 0): named in the report, not read (so not among all_files)
    model_files: Mapping[str, str | Path] = field(default_factory=dict)

    def all_files(self) -> list[str]:
        """Every file the report reads, for the report rule's input (the same function gives the
        rule and its script the mapping)."""
        files = []
        for runs in self.runs.values():
            for run in runs:
                files += [
                    run.metrics,
                    *([run.train_info] if run.train_info is not None else []),
                    *run.set_metrics.values(),
                ]
        files += [*self.robustness.values(), *self.predictions.values()]
        files += [path for by_set in self.set_predictions.values() for path in by_set.values()]
        return [str(path) for path in files]


def model_result_files(
    models: Mapping[str, Any],
    layout: ResultsLayout,
    sets: Sequence[str] = (),
    robustness: bool = False,
    ensembles: Mapping[str, int] | None = None,
) -> ResultFiles:
    """Each model's (``models``: name -> complete config entry, whose ``repeats`` say how many runs)
    and each ensemble's (``ensembles``: name -> number of runs) result files in the results layout:
    the report rule's inputs, and what its script and ``dfdetect report`` read."""

    def run_files(name: str, run: int, trained: bool) -> RunFiles:
        part = layout.run_part(run)
        return RunFiles(
            metrics=layout.eval_file(name, "metrics", part),
            train_info=layout.train_file(name, "info", part) if trained else None,
            set_metrics={set_name: layout.set_eval_file(name, set_name, "metrics", part) for set_name in sets},
        )

    runs = {
        name: [run_files(name, run, True) for run in range(entry.get("repeats", 1))] for name, entry in models.items()
    }
    for name, n_runs in (ensembles or {}).items():
        runs[name] = [run_files(name, run, False) for run in range(n_runs)]
    return ResultFiles(
        runs=runs,
        robustness={name: layout.robustness_file(name, "table") for name in models} if robustness else {},
        predictions={name: layout.eval_file(name, "predictions") for name in runs},
        set_predictions={
            name: {set_name: layout.set_eval_file(name, set_name, "predictions") for set_name in sets} for name in runs
        },
        model_files={name: layout.train_file(name, "model") for name in models},
    )
