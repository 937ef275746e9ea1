"""Fault injection for tests: stop a process at a named point, as a scheduler, a power cut or a
lost login would, so that tests of recovery pick the moment instead of guessing it with timers.

``DFDETECT_FAULT_AT=POINT`` SIGKILLs the process (no clean-up, no ``finally``) when it reaches
``POINT``. With ``DFDETECT_FAULT_HOLD=FIFO`` as well, the process waits there instead: it opens the
named pipe ``FIFO`` for reading, which blocks until a test opens it for writing (so the test knows
the point is reached), and goes on when the test closes it.

Points: ``EPOCH:STEP`` in training (``dfdetect.training.resume.FAULT_POINTS``) and
``commit:NAME``, just before a finished temporary file is renamed onto the file named ``NAME``
(``dfdetect.atomic.commit``).
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "DFDETECT_FAULT_AT"
HOLD_ENV = "DFDETECT_FAULT_HOLD"


def fault_point(point: str) -> None:
    """Die (or wait, with ``DFDETECT_FAULT_HOLD``) here when ``DFDETECT_FAULT_AT`` names ``point``."""
    if os.environ.get(FAULT_ENV) != point:
        return
    hold = os.environ.get(HOLD_ENV)
    if hold:
        with open(hold, "rb") as pipe:  # blocks until the test opens the other end
            pipe.read()  # returns when the test closes it
        return
    os.kill(os.getpid(), signal.SIGKILL)
