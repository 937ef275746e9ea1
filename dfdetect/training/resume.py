"""The trainer's resume state: what an interrupted training job leaves in ``models/{model}/.resume/``.

After each finished epoch the checkpoint callback (``dfdetect.training.callbacks.EpochCheckpoint``) writes,
in this order and each through ``dfdetect.atomic`` (unique temporary name, fsync, rename):

1. ``best-{epoch}.keras``      the whole model, when this epoch's validation loss is the best so far;
2. ``history-{epoch}.csv``     one row per finished epoch, each epoch once;
3. ``weights-{epoch}.weights.h5``  model and optimizer variables, to continue from;
4. ``state-{epoch}.json``      the manifest, written last: the files above with their sizes and
                               SHA-256 digests, and the model's random-number state (the seed
                               generators of its dropout layers, which the weights file lacks).

A state is only as good as its manifest: files a manifest does not name (a kill before it was
written) are ignored, and a manifest whose files are missing or differ is skipped. The last two
states are kept, so a damaged newest state falls back to the one before; with neither, training
starts over. Nothing here imports Keras.

``DFDETECT_FAULT_AT=EPOCH:POINT`` (tests only, ``dfdetect.faults``) SIGKILLs the process at that
point of the writes, as a scheduler or a power cut would; see ``FAULT_POINTS``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dfdetect import faults
from dfdetect.faults import FAULT_ENV as FAULT_ENV  # the training fault points' variable, for tests

log = logging.getLogger("dfdetect.training.train")

STEPS = ("best", "history", "weights", "state")
# Each step has three points: its temporary file created (empty), written (complete, not yet
# renamed) and committed (renamed into place). "epoch_end" comes before all writes, "pruned" after.
FAULT_POINTS = (
    "epoch_end",
    *(f"{step}:{when}" for step in STEPS for when in ("created", "written", "committed")),
    "pruned",
)
KEEP_STATES = 2
_STATE_FILE = re.compile(r"^state-(\d+)\.json$")


def fault_point(epoch: int, point: str) -> None:
    """Test hook: die here, without any clean-up, when ``DFDETECT_FAULT_AT`` names this point."""
    faults.fault_point(f"{epoch}:{point}")


def file_name(kind: str, epoch: int) -> str:
    suffix = {"best": ".keras", "history": ".csv", "weights": ".weights.h5", "state": ".json"}[kind]
    return f"{kind}-{epoch:04d}{suffix}"


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


@dataclass(frozen=True)
class ResumeState:
    """The training state after ``epochs`` finished epochs (epochs 0 .. epochs-1)."""

    epochs: int
    weights: str
    history: str
    best: str | None  # the best checkpoint so far; None while no epoch had a finite validation loss
    best_value: float | None
    stopped: bool  # early stopping ended the training after this epoch
    files: dict[str, dict[str, Any]]  # name -> {"size", "sha256"}
    rng: list[list[Any]] = field(default_factory=list)  # [variable path, its values] of each seed generator

    @classmethod
    def describe(
        cls,
        work: Path,
        *,
        epochs: int,
        weights: str,
        history: str,
        best: str | None,
        best_value: float | None,
        stopped: bool,
        rng: list[list[Any]] | None = None,
    ) -> "ResumeState":
        names = [name for name in (weights, history, best) if name]
        files = {name: {"size": (work / name).stat().st_size, "sha256": digest(work / name)} for name in names}
        return cls(epochs, weights, history, best, best_value, stopped, files, list(rng or []))

    def write_to(self, path: Path) -> None:
        """The manifest's JSON (to a temporary name: the callback renames it into place)."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


def read_state(work: Path, path: Path) -> ResumeState:
    """A manifest and the files it names, checked; ValueError says what is wrong."""
    try:
        content = json.loads(path.read_text())
        state = ResumeState(**content)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path.name} is unreadable ({error})") from error
    for name, expected in state.files.items():
        file = work / name
        if not file.is_file():
            raise ValueError(f"{path.name} names {name}, which is missing")
        if file.stat().st_size != expected["size"] or digest(file) != expected["sha256"]:
            raise ValueError(f"{path.name} names {name}, whose content differs from what was written")
    if (
        state.weights not in state.files
        or state.history not in state.files
        or (state.best is not None and state.best not in state.files)
    ):
        raise ValueError(f"{path.name} does not list all of its files")
    history = read_history(work / state.history)
    if history["epoch"].tolist() != list(range(state.epochs)):
        raise ValueError(
            f"{path.name}: its history holds epochs {history['epoch'].tolist()}, not 0..{state.epochs - 1}"
        )
    return state


def state_files(work: Path) -> list[Path]:
    """The manifests in ``work``, newest first."""
    found = [
        (int(match.group(1)), path) for path in work.glob("state-*.json") if (match := _STATE_FILE.match(path.name))
    ]
    return [path for _, path in sorted(found, reverse=True)]


def latest_state(work: Path) -> ResumeState | None:
    """The newest consistent state in ``work``; a damaged one is logged and the one before is tried."""
    for path in state_files(work):
        try:
            return read_state(work, path)
        except ValueError as error:
            log.warning("resume state in %s is unusable: %s; trying an older one", work, error)
    leftovers = [path.name for path in work.iterdir() if path.name != "fingerprint.txt"] if work.is_dir() else []
    if leftovers:
        log.warning("no consistent resume state in %s (found %s): starting over", work, ", ".join(sorted(leftovers)))
    return None


def prune(work: Path) -> None:
    """Keep the newest ``KEEP_STATES`` manifests and their files; remove everything else but the fingerprint."""
    keep = {"fingerprint.txt"}
    for path in state_files(work)[:KEEP_STATES]:
        keep.add(path.name)
        try:
            keep.update(json.loads(path.read_text())["files"])
        except (OSError, ValueError, KeyError):
            continue
    for path in work.iterdir():
        if path.name not in keep and path.is_file():
            path.unlink(missing_ok=True)


def read_history(path: Path) -> pd.DataFrame:
    """A per-epoch history file; empty when missing."""
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["epoch"])
    return pd.read_csv(path)


def is_better(value: Any, best: float | None) -> bool:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(value) and (best is None or value < best)
