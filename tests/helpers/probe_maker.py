"""A batch maker for tests of the loader's worker processes (dfdetect.training.workers).

Its batches report what the worker process has imported, and it can be told to fail or to die
at a chosen epoch. Importing this module imports nothing heavy: the workers import it.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

HEAVY = ("tensorflow", "keras", "jax", "torch")
REPORT_BYTES = 256


class ProbeMaker:
    """``make`` writes the names of the heavy modules loaded in the worker (comma-separated,
    zero-padded bytes) into each row, after ``inner.warm_up()`` when an inner maker is given."""

    def __init__(self, inner=None, fail_at_epoch: int | None = None, die_at_epoch: int | None = None):
        self.inner = inner
        self.fail_at_epoch, self.die_at_epoch = fail_at_epoch, die_at_epoch

    def output_spec(self, batch_size: int) -> dict:
        return {"report": ((batch_size, REPORT_BYTES), "uint8"), "items": ((batch_size,), "int64")}

    def make(self, items, epoch, out):
        if epoch == self.fail_at_epoch:
            raise ValueError(f"broken frame in epoch {epoch}")
        if epoch == self.die_at_epoch:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.inner is not None:
            self.inner.warm_up()
        heavy = ",".join(sorted(name for name in sys.modules if name.split(".")[0] in HEAVY)).encode()[:REPORT_BYTES]
        out["report"][...] = 0
        out["report"][:, : len(heavy)] = np.frombuffer(heavy, dtype=np.uint8)
        out["items"][...] = np.asarray(items) + 1000 * epoch
        return out


def report_of(batch: dict) -> str:
    """The heavy modules a worker had loaded, from a batch of ``ProbeMaker``."""
    return bytes(batch["report"][0]).rstrip(b"\0").decode()
