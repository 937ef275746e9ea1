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

The run's PID is not enough: a killed Snakemake leaves its jobs running (a training job goes on
for hours). So every job holds a lock of its own while it runs (``job_lock``, in each workflow
script): ``{results_dir}/.dfdetect.jobs/{its log's path}.lock``, locked with ``flock`` (the kernel
releases it when the process dies, however it dies) and naming the job's PID. A run takes over a
dead run's lock only when no job lock is held (``live_jobs``), and a second job on the same
outputs fails at once instead of writing beside the first.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from dfdetect.atomic import fsync_dir

log = logging.getLogger(__name__)

LOCK_NAME = ".dfdetect.lock"
JOBS_DIR = ".dfdetect.jobs"  # in results_dir: one flock-ed file per running job
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


def is_alive_here(holder: dict[str, Any]) -> bool:
    """True when the holder runs on this host and its process is alive."""
    return holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) and not is_stale(holder)


def describe(holder: dict[str, Any]) -> str:
    return (
        f"PID {holder.get('pid')} on host {holder.get('host')}, working directory {holder.get('workdir')}, "
        f"since {holder.get('started')}"
    )


def describe_job(holder: dict[str, Any]) -> str:
    return f"{holder.get('job')} (PID {holder.get('pid')} on host {holder.get('host')}, since {holder.get('started')})"


def job_lock_path(results_dir: str | Path, log_path: str | Path) -> Path:
    """The lock file of the job that writes ``log_path``: its log's path under results_dir, in JOBS_DIR."""
    results_dir, log_path = Path(results_dir), Path(log_path)
    try:
        relative = log_path.resolve().relative_to(results_dir.resolve())
    except ValueError:  # a log outside results_dir (scripts run by hand): its name alone
        relative = Path(log_path.name)
    return results_dir / JOBS_DIR / f"{relative}.lock"


# flock on a file system that has no locks (NFS mounted with nolock, Lustre without flock)
_NO_LOCKS = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL)


def _try_flock(descriptor: int) -> bool | None:
    """True when the exclusive lock was taken, False when another process holds it, None when the
    file system has no locks (then a job's PID on this host is all that can be checked)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
            return False
        if error.errno in _NO_LOCKS:
            return None
        raise
    return True


def _same_file(descriptor: int, path: Path) -> bool:
    """The open file is still the one at ``path`` (not unlinked by a holder that finished meanwhile)."""
    try:
        return os.path.samestat(os.fstat(descriptor), os.stat(path))
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def job_lock(results_dir: str | Path, log_path: str | Path) -> Iterator[Path]:
    """Hold the lock of the job that writes ``log_path`` for the duration of the block.

    Raises ResultsLockError naming the other process when a live job holds it already: two jobs
    writing the same outputs (a rerun beside an orphaned job of a killed run) never overlap.
    """
    path = job_lock_path(results_dir, log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        taken = _try_flock(descriptor)
        if taken is None:
            holder = _read_job(path)
            if holder and _job_alive_without_locks(holder):
                taken = False
            else:
                log.warning("%s: the file system has no locks; only job PIDs on this host are checked", path)
        if taken is False:
            os.close(descriptor)
            holder = _read_job(path) or {"job": str(log_path)}
            raise ResultsLockError(
                f"another process is running this job: {describe_job(holder)}. Two writers would corrupt its "
                f"outputs; wait for it to end (or stop it: kill {holder.get('pid')}), then rerun"
            )
        if _same_file(descriptor, path):
            break
        os.close(descriptor)  # its holder finished and removed the file between our open and flock
    else:
        raise ResultsLockError(f"could not take the job lock {path} (it keeps changing hands)")
    record = {
        "job": str(log_path),
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(record).encode(), 0)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still holding it: a waiting opener sees the file is gone
        os.close(descriptor)


def _job_alive_without_locks(holder: dict[str, Any]) -> bool:
    """Where flock is missing: a job on this host is alive while its PID is; one elsewhere counts as
    alive (it cannot be checked from here: its file must be removed by hand once it is gone)."""
    return holder.get("host") != socket.gethostname() or not is_stale(holder)


def _read_job(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def live_jobs(results_dir: str | Path) -> list[dict[str, Any]]:
    """The records of the jobs that hold a job lock under ``results_dir`` now; dead ones' files are removed."""
    folder = Path(results_dir) / JOBS_DIR
    live = []
    for path in sorted(folder.rglob("*.lock")) if folder.is_dir() else []:
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # finished meanwhile
        try:
            taken = _try_flock(descriptor)
            holder = _read_job(path) or {"job": str(path), "pid": None, "host": None}
            if taken is None:
                taken = not _job_alive_without_locks(holder)
            if taken:
                if _same_file(descriptor, path):
                    path.unlink(missing_ok=True)  # left by a job that died: nobody holds it
            else:
                live.append(holder)
        finally:
            os.close(descriptor)
    return live


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
            if is_stale(holder) and (jobs := live_jobs(results_dir)):
                raise ResultsLockError(orphans_message(results_dir, holder, jobs)) from None
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
        jobs = live_jobs(results_dir)
        if jobs:  # the lock file was removed by hand while a killed run's jobs still write
            os.close(descriptor)
            path.unlink(missing_ok=True)
            raise ResultsLockError(orphans_message(results_dir, None, jobs))
        with os.fdopen(descriptor, "w") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fsync_dir(results_dir)
        _HELD[path] = token
        return path
    raise ResultsLockError(f"could not take the lock {path} (it keeps changing hands)")


def orphans_message(results_dir: Path, holder: dict[str, Any] | None, jobs: list[dict[str, Any]]) -> str:
    run = f"the run that held it ({describe(holder)}) is gone, but" if holder else "no run holds it, but"
    pids = " ".join(str(job.get("pid")) for job in jobs)
    return (
        f"results_dir '{results_dir}' is in use: {run} {len(jobs)} of its job(s) still run and write there: "
        + "; ".join(describe_job(job) for job in jobs)
        + f". Wait for them to end, or stop them (kill {pids}), then rerun; a rerun now would start "
        "a second writer on the same outputs"
    )


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


def unlock(results_dir: str | Path, force: bool = False) -> dict[str, Any] | None:
    """Remove the lock (``dfdetect unlock``); returns the holder it removed.

    A holder that is alive on this host, or jobs that still run, make it refuse (ResultsLockError)
    unless ``force``: removing the lock of a live run lets a second run write beside it. A holder
    on another host cannot be checked from here: its lock is removed.
    """
    holder = read_holder(results_dir)
    if not force:
        if holder is not None and is_alive_here(holder):
            raise ResultsLockError(
                f"results_dir '{results_dir}' is locked by a run that is still running ({describe(holder)}); "
                "wait for it to end (or stop it), or remove the lock anyway with --force"
            )
        jobs = live_jobs(results_dir)
        if jobs:
            raise ResultsLockError(orphans_message(Path(results_dir), holder, jobs) + " (or --force)")
    lock_path(results_dir).unlink(missing_ok=True)
    return holder
