"""Write a file under a unique temporary name in its own folder, fsync it, then rename it into place.

A kill at any moment leaves either the last good file or none, never a half-written one, and two
jobs writing the same target never share a temporary name (each gets its own from ``tempfile``).

    with atomic_path(target) as temporary:      # write to ``temporary`` by any means
        table.to_parquet(temporary)
    atomic_write_text(target, json.dumps(...))   # the common small case
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

# Outputs are ordinary files (mkstemp alone would leave them 0600 after the rename).
FILE_MODE = 0o644


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
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(handle)
    os.chmod(name, FILE_MODE)
    return Path(name)


def commit(temporary: str | Path, target: str | Path, sync: bool = True) -> None:
    """fsync ``temporary`` and rename it onto ``target``."""
    if sync:
        fsync_file(temporary)
    os.replace(temporary, target)
    if sync:
        fsync_dir(Path(target).parent)


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


def atomic_write_bytes(target: str | Path, data: bytes, sync: bool = True) -> None:
    with atomic_path(target, sync=sync) as temporary:
        temporary.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, sync: bool = True) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), sync)


def atomic_to_parquet(table, target: str | Path, sync: bool = True) -> None:
    """``table.to_parquet(target, index=False)`` through a unique temporary name."""
    with atomic_path(target, suffix=".parquet", sync=sync) as temporary:
        table.to_parquet(temporary, index=False)
