"""A lock on ``results_dir`` itself, held for a whole workflow run.

Snakemake's own lock lives in the working directory's ``.snakemake/``; two runs from two working
directories on one ``results_dir`` would both write the same outputs (and one run's clean-up of a
failed job deletes the other's finished files). The workflow takes this lock when it starts
(``onstart`` in rules/common.smk: the main process only, never in jobs or dry runs) and releases
it when it ends (``onsuccess`` / ``onerror``, and at exit).

The lock is ``{results_dir}/.dfdetect.lock``, a JSON file naming the holder's PID, host, working
directory and start time. A lock whose holder is on this host and no longer running (a killed
run) is taken over with a warning; one held from another host can only be cleared by hand:
``dfdetect unlock --results-dir DIR`` (after checking that no run is using the folder).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from dfdetect.atomic import fsync_dir

log = logging.getLogger(__name__)

LOCK_NAME = ".dfdetect.lock"
_HELD: dict[Path, str] = {}  # lock path -> token of the locks this process holds


class ResultsLockError(RuntimeError):
    """results_dir is in use by another run; the message names it and how to clear a stale lock."""


def lock_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / LOCK_NAME


def read_holder(results_dir: str | Path) -> dict[str, Any] | None:
    """The holder's record, None when unlocked; an unreadable lock file reads as an unknown holder."""
    path = lock_path(results_dir)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": None, "host": None, "note": f"{path} is unreadable"}


def is_stale(holder: dict[str, Any]) -> bool:
    """True only when the holder ran on this host and its process is gone."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def describe(holder: dict[str, Any]) -> str:
    return (
        f"PID {holder.get('pid')} on host {holder.get('host')}, working directory {holder.get('workdir')}, "
        f"since {holder.get('started')}"
    )


def acquire(results_dir: str | Path) -> Path:
    """Take the lock for this process, or raise ResultsLockError naming the holder."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(results_dir)
    token = uuid.uuid4().hex
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "workdir": os.getcwd(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(sys.argv),
        "token": token,
    }
    for _ in range(10):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = read_holder(results_dir)
            if holder is None:
                continue  # released in between: try again
            if holder.get("token") is not None and holder.get("token") == _HELD.get(path):
                return path  # ours already
            if not is_stale(holder):
                raise ResultsLockError(
                    f"results_dir '{results_dir}' is in use by another run ({describe(holder)}); "
                    f"two runs on one results folder would overwrite each other's outputs. Wait for it to end, "
                    f"or, if no run is using the folder (it was killed on another machine), clear the lock "
                    f"with `dfdetect unlock --results-dir {results_dir}` (removes {path})"
                ) from None
            log.warning(
                "taking over the lock on %s from a run that is no longer running (%s)", results_dir, describe(holder)
            )
            with contextlib.suppress(FileNotFoundError):  # only one of two racing runs moves it
                os.replace(path, path.with_name(f"{LOCK_NAME}.stale-{token}"))
                path.with_name(f"{LOCK_NAME}.stale-{token}").unlink()
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(results_dir)
        _HELD[path] = token
        return path
    raise ResultsLockError(f"could not take the lock {path} (it keeps changing hands)")


def release(results_dir: str | Path) -> bool:
    """Remove the lock if this process holds it; True when it did."""
    path = lock_path(results_dir)
    token = _HELD.pop(path, None)
    if token is None:
        return False
    holder = read_holder(results_dir)
    if holder is not None and holder.get("token") == token:
        path.unlink(missing_ok=True)
        return True
    return False


def release_all() -> None:
    for path in list(_HELD):
        release(path.parent)


def unlock(results_dir: str | Path) -> dict[str, Any] | None:
    """Remove the lock whoever holds it (``dfdetect unlock``); returns the holder it removed."""
    holder = read_holder(results_dir)
    lock_path(results_dir).unlink(missing_ok=True)
    return holder
