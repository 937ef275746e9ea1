"""Send everything a job says (logging, warnings, tqdm, stray prints) to its ``log:`` file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Iterator, Sequence, TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


CONSOLE_FORMAT = "dfdetect %(message)s"


@contextlib.contextmanager
def log_to(path: str | Path | None, console: Sequence[str] = ()) -> Iterator[logging.Logger]:
    """Route logging, warnings and stdout/stderr into ``path`` for the duration of a job.

    An exception is written to the log with its traceback and re-raised, so Snakemake marks the
    job failed and the log says why. With ``path`` None the job logs to stderr (scripts run by
    hand). The records of the loggers named in ``console`` (and their children) also go to the
    stderr the job started with: the console of a local run (a cluster job's own log).
    """
    handle: TextIO | None = None
    saved = sys.stdout, sys.stderr
    saved_fds: list[int] = []
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a", buffering=1, encoding="utf-8")  # line-buffered: progress shows live
        saved_fds = _redirect_fds(handle.fileno())
        sys.stdout = sys.stderr = handle
    handler = logging.StreamHandler(handle if handle is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.handlers = [handler]
    echo: TextIO | None = None
    if console and saved_fds:
        echo = os.fdopen(os.dup(saved_fds[1]), "w", buffering=1, encoding="utf-8", errors="replace")
        echoed = logging.StreamHandler(echo)
        echoed.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        echoed.addFilter(
            lambda record: any(record.name == name or record.name.startswith(f"{name}.") for name in console)
        )
        root.handlers.append(echoed)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield logging.getLogger("dfdetect")
    except BaseException:
        logging.getLogger("dfdetect").error("job failed:\n%s", traceback.format_exc())
        raise
    finally:
        logging.captureWarnings(False)
        root.handlers, root.level = old_handlers, old_level
        sys.stdout, sys.stderr = saved
        _restore_fds(saved_fds)
        for stream in (echo, handle):
            if stream is not None:
                stream.close()


def _redirect_fds(target: int) -> list[int]:
    """Point file descriptors 1 and 2 at ``target``: native libraries (TensorFlow's C++ logging,
    ffmpeg) write there directly, past ``sys.stderr``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(target, 1)
    os.dup2(target, 2)
    return saved


def _restore_fds(saved: list[int]) -> None:
    for fd, original in zip((1, 2), saved):
        os.dup2(original, fd)
        os.close(original)
