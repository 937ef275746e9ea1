"""Write a file under a unique temporary name in its own folder, fsync it, then rename it into place.

A kill at any moment leaves either the last good file or none, never a half-written one, and two
jobs writing the same target never share a temporary name (each gets its own from ``tempfile``).
What a kill does leave is the temporary file itself: every temporary name has one shape,
``.{target name}.dfdetect-tmp.{random}{suffix}`` (``is_temporary``), so that ``remove_temporaries``
can clear a killed writer's leftovers, and nothing else, from a folder no writer is using (the
workflow does at the start of each run, holding the results lock).

    with atomic_path(target) as temporary:      # write to ``temporary`` by any means
        table.to_parquet(temporary)
    atomic_write_text(target, json.dumps(...))   # the common small case
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from dfdetect.faults import fault_point

# Outputs are ordinary files (mkstemp alone would leave them 0600 after the rename).
FILE_MODE = 0o644
# Every temporary name is `.{target name}` + TEMPORARY_MARK + tempfile's random part + suffix.
TEMPORARY_MARK = ".dfdetect-tmp."
_TEMPORARY_NAME = re.compile(r"^\..+" + re.escape(TEMPORARY_MARK) + r"[A-Za-z0-9_]+")


def fsync_file(path: str | Path) -> None:
    """Flush a finished file's data to disk (before the rename makes it visible)."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def temporary_name(target: str | Path, suffix: str = ".tmp") -> Path:
    """A new, unique, empty file next to ``target`` (same file system, so the rename is atomic).

    ``suffix`` matters to writers that choose a format by extension (``np.save`` appends ``.npy``).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}{TEMPORARY_MARK}", suffix=suffix, dir=target.parent)
    os.close(handle)
    os.chmod(name, FILE_MODE)
    return Path(name)


def commit(temporary: str | Path, target: str | Path, sync: bool = True) -> None:
    """fsync ``temporary`` and rename it onto ``target``."""
    if sync:
        fsync_file(temporary)
    fault_point(f"commit:{Path(target).name}")  # tests: a kill with the finished temporary on disk
    os.replace(temporary, target)
    if sync:
        fsync_dir(Path(target).parent)


def is_temporary(name: str) -> bool:
    """True for a file name ``temporary_name`` makes (and only for those)."""
    return _TEMPORARY_NAME.match(name) is not None


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove every temporary file under ``folder`` that a killed writer left; returns them.

    Only names of ``temporary_name``'s shape are touched. Call it only while no writer uses
    ``folder``: a running writer's temporary file is indistinguishable from a dead one's.
    """
    removed = []
    for parent, _, names in os.walk(folder):
        for name in names:
            if is_temporary(name):
                path = Path(parent) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = ".tmp", sync: bool = True) -> Iterator[Path]:
    """Yield a unique temporary path next to ``target``; on success it becomes ``target``.

    On any exception (or a kill) the temporary file is removed (or left under its hidden name) and
    ``target`` is untouched.
    """
    temporary = temporary_name(target, suffix)
    try:
        yield temporary
        commit(temporary, target, sync)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_link(source: str | Path, target: str | Path) -> None:
    """Make ``target`` the same file as ``source`` (a hard link: no copy; a copy where the file system
    has no hard links), replacing ``target`` in one rename."""
    import shutil

    temporary = temporary_name(target, suffix=Path(target).suffix)
    try:
        temporary.unlink()
        try:
            os.link(source, temporary)
        except OSError:
            shutil.copy2(source, temporary)
        commit(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes, sync: bool = True) -> None:
    with atomic_path(target, sync=sync) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, sync: bool = True) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), sync)


def atomic_to_parquet(table, target: str | Path, sync: bool = True) -> None:
    """``table.to_parquet(target, index=False)`` through a unique temporary name."""
    with atomic_path(target, suffix=".parquet", sync=sync) as temporary:
        table.to_parquet(temporary, index=False)
