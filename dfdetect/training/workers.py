"""Worker processes that make training batches into shared memory, for the training loader.

Augmentation (albumentations, OpenCV, numpy) holds Python's GIL for much of its time, so worker
threads do not add up (``benchmarks/loader_workers.py``); processes do. ``BatchWorkers`` starts
``workers`` processes that each run a ``BatchMaker`` (``dfdetect.training.batches``), and a ring of
batch-sized slots in one shared-memory block: the trainer sends (ticket, slot, epoch, items), a
worker writes the batch straight into that slot and answers with the ticket only, and the
trainer copies the batch out and frees the slot. No batch is pickled through a pipe.

- Processes are *spawned* (a fresh interpreter): forking a process whose TensorFlow or JAX has
  started threads can deadlock the child. The workers import numpy, OpenCV and albumentations,
  never Keras; a spawned child would normally import the parent's main script again (a Snakemake
  ``script:`` has no ``__name__`` guard), so it is hidden from them while they start.
- The workers' BLAS and OpenMP pools get one thread each: the workers are the parallelism.
- A worker that fails sends its traceback, which the trainer raises (``LoaderWorkerError``); a
  worker that dies is noticed within a second; workers leave when the trainer exits or dies.

Nothing here imports Keras.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

log = logging.getLogger(__name__)

START_METHOD = "spawn"
POLL_SECONDS = 1.0  # how often a waiting side checks that the other one is still alive
START_TIMEOUT_SECONDS = 300.0  # a worker's interpreter start and imports, on a heavily loaded machine
RING_BYTES_LIMIT = 1 << 30  # the slots beyond two per worker are capped at this much shared memory
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class LoaderWorkerError(RuntimeError):
    """A loader worker process failed or died; the message carries its traceback or exit code."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a cluster job's allocation)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_worker_count(job_threads: int | None = None) -> int:
    """The job's threads when it has a thread count (Snakemake's ``threads`` of the job), else the
    cores it may use; never more than those cores."""
    cores = usable_cores()
    return max(1, min(int(job_threads), cores) if job_threads else cores)


@dataclass(frozen=True)
class SlotLayout:
    """Where each named input array lies inside one slot of the ring."""

    fields: tuple[tuple[str, tuple[int, ...], str, int], ...]  # name, shape, dtype, byte offset
    nbytes: int

    @classmethod
    def of(cls, spec: Mapping[str, tuple[tuple[int, ...], str]]) -> "SlotLayout":
        fields, offset = [], 0
        for name, (shape, dtype) in spec.items():
            fields.append((name, tuple(shape), dtype, offset))
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            offset += -(-size // 64) * 64  # each array starts on a cache line
        return cls(tuple(fields), max(offset, 64))

    def views(self, buffer: Any, slot: int) -> dict[str, np.ndarray]:
        """The arrays of ``slot`` as views into the shared buffer."""
        base = slot * self.nbytes
        return {
            name: np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape)), offset=base + offset).reshape(shape)
            for name, shape, dtype, offset in self.fields
        }


def _worker_main(maker: Any, layout: SlotLayout, buffer: Any, n_slots: int, tasks: Any, results: Any) -> None:
    """A worker's loop: take (ticket, slot, epoch, items), write the batch into the slot, answer."""
    results.cancel_join_thread()  # never hang at exit on a trainer that is gone
    slots = [layout.views(buffer, slot) for slot in range(n_slots)]
    parent = multiprocessing.parent_process()
    if hasattr(maker, "warm_up"):
        maker.warm_up()
    results.put(("ready", os.getpid()))
    while True:
        try:
            task = tasks.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return  # the trainer died (killed): nobody will collect the batches
            continue
        if task is None:
            return
        ticket, slot, epoch, items = task
        try:
            out = {name: array[: len(items)] for name, array in slots[slot].items()}
            maker.make(items, epoch, out)
            results.put((ticket, None))
        except BaseException:  # noqa: B036 - sent to the trainer, which raises it
            results.put((ticket, traceback.format_exc()))


@contextlib.contextmanager
def _spawn_environment() -> Iterator[None]:
    """While workers start: one BLAS/OpenMP thread each, and no main script for them to re-run.

    A spawned child runs the parent's ``__main__`` file again unless it is guarded by
    ``if __name__ == "__main__"``, and Snakemake's ``script:`` files are not; the workers need
    nothing from it (they get their maker by pickle), so it is hidden while they start.
    """
    main = sys.modules.get("__main__")
    saved_file, saved_spec = getattr(main, "__file__", None), getattr(main, "__spec__", None)
    saved_environment = {name: os.environ.get(name) for name in ONE_THREAD}
    try:
        if saved_file is not None:
            del main.__file__
        if main is not None:
            main.__spec__ = None  # `python -m module`: the module would be imported again by name
        os.environ.update(ONE_THREAD)
        yield
    finally:
        if saved_file is not None:
            main.__file__ = saved_file
        if main is not None:
            main.__spec__ = saved_spec
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class BatchWorkers:
    """``workers`` processes making batches with ``maker`` into a ring of shared-memory slots.

    ``submit`` hands a batch to the next free worker and returns its ticket (None when every slot
    is taken); ``fetch`` waits for a ticket and returns a copy of its batch; ``discard`` drops a
    ticket whose batch is no longer wanted. Tickets are answered in any order.
    """

    def __init__(self, maker: Any, batch_size: int, workers: int, slots: int | None = None) -> None:
        if workers < 1:
            raise ValueError(f"loader workers must be at least 1, not {workers}")
        self.workers, self.batch_size = int(workers), int(batch_size)
        self.layout = SlotLayout.of(maker.output_spec(batch_size))
        affordable = max(1, RING_BYTES_LIMIT // self.layout.nbytes)
        self.n_slots = int(slots) if slots else max(self.workers + 1, min(2 * self.workers, affordable), 2)
        context = multiprocessing.get_context(START_METHOD)
        # multiprocessing's shared ctypes: an unlinked file in /dev/shm (or the temp folder when
        # /dev/shm is too small) mapped by every process, so nothing is left behind after a kill.
        self._buffer = context.RawArray("B", self.layout.nbytes * self.n_slots)
        self._views = [self.layout.views(self._buffer, slot) for slot in range(self.n_slots)]
        self._tasks = context.Queue()
        self._results = context.Queue()
        self._free = list(range(self.n_slots))
        self._slot_of: dict[int, int] = {}  # ticket -> slot, for every ticket not yet answered or fetched
        self._answers: dict[int, str | None] = {}  # ticket -> its traceback (None: made), answered, not fetched
        self._sizes: dict[int, int] = {}
        self._discarded: set[int] = set()
        self._next_ticket = 0
        self._processes = []
        started = time.perf_counter()
        with _spawn_environment():
            for index in range(self.workers):
                process = context.Process(
                    target=_worker_main,
                    args=(maker, self.layout, self._buffer, self.n_slots, self._tasks, self._results),
                    name=f"dfdetect-loader-{index}",
                    daemon=True,
                )
                process.start()
                self._processes.append(process)
        self._waiting_for_start = set(process.pid for process in self._processes)
        self.spawn_seconds = time.perf_counter() - started
        self.start_seconds: float | None = None  # until every worker has said it is ready
        self._started = started
        self._closed = False

    # -- the trainer's side -----------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def submit(self, epoch: int, items: np.ndarray, wait: bool = False) -> int | None:
        """Queue one batch; its ticket, or None when no slot is free (``wait``: until one is, which
        needs a discarded ticket still being made: a fetched or discarded batch frees its slot)."""
        if self._closed:
            raise LoaderWorkerError("the loader's worker processes are closed")
        if len(items) > self.batch_size:
            raise ValueError(f"{len(items)} items do not fit a batch of {self.batch_size}")
        while wait and not self._free and self._discarded:
            self._receive()
        if not self._free:
            return None
        slot = self._free.pop()
        ticket = self._next_ticket
        self._next_ticket += 1
        self._slot_of[ticket] = slot
        self._sizes[ticket] = len(items)
        self._tasks.put((ticket, slot, int(epoch), np.asarray(items)))
        return ticket

    def fetch(self, ticket: int) -> dict[str, np.ndarray]:
        """Wait for ``ticket``'s batch and return a copy of it (its slot is free again)."""
        if ticket not in self._slot_of:
            raise KeyError(f"unknown or already fetched ticket {ticket}")
        while ticket not in self._answers:
            self._receive()
        error, count = self._answers.pop(ticket), self._sizes.pop(ticket)
        slot = self._slot_of.pop(ticket)
        try:
            if error is not None:
                raise LoaderWorkerError(f"a loader worker failed making a batch:\n{error}")
            return {name: np.array(array[:count]) for name, array in self._views[slot].items()}
        finally:
            self._free.append(slot)

    def discard(self, ticket: int) -> None:
        """Drop a ticket: its slot is freed once its worker has answered."""
        if ticket not in self._slot_of:
            return
        if ticket in self._answers:
            self._answers.pop(ticket)
            self._sizes.pop(ticket)
            self._free.append(self._slot_of.pop(ticket))
        else:
            self._discarded.add(ticket)

    def wait_until_started(self) -> float:
        """Block until every worker is up; the seconds from the start to then."""
        while self.start_seconds is None:
            self._receive()
        return self.start_seconds

    def _receive(self) -> None:
        """Take one answer off the result queue (checking that the workers live while waiting)."""
        while True:
            try:
                message = self._results.get(timeout=POLL_SECONDS)
                break
            except queue.Empty:
                self._check_alive()
        ticket, payload = message
        if ticket == "ready":
            self._waiting_for_start.discard(payload)
            if not self._waiting_for_start:
                self.start_seconds = time.perf_counter() - self._started
                log.info("%d loader worker process(es) started in %.1f s", self.workers, self.start_seconds)
            return
        if ticket in self._discarded:
            self._discarded.discard(ticket)
            self._sizes.pop(ticket, None)
            self._free.append(self._slot_of.pop(ticket))
            return
        self._answers[ticket] = payload

    def _check_alive(self) -> None:
        dead = [process for process in self._processes if process.exitcode is not None]
        if dead:
            codes = ", ".join(f"{process.name}: exit code {process.exitcode}" for process in dead)
            self.close()
            raise LoaderWorkerError(
                f"a loader worker process died ({codes}; a negative code is the signal that killed it, "
                "-9 often the out-of-memory killer)"
            )
        if self.start_seconds is None and time.perf_counter() - self._started > START_TIMEOUT_SECONDS:
            self.close()
            raise LoaderWorkerError(f"the loader's worker processes did not start within {START_TIMEOUT_SECONDS:.0f} s")

    def close(self) -> None:
        """Stop the workers: queued batches are dropped; a worker still busy after a second is
        terminated (it holds nothing that needs cleaning up)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            while True:
                self._tasks.get_nowait()
        for _ in self._processes:
            with contextlib.suppress(Exception):
                self._tasks.put(None)
        deadline = time.perf_counter() + 1.0
        for process in self._processes:
            process.join(timeout=max(0.0, deadline - time.perf_counter()))
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
        for channel in (self._tasks, self._results):
            channel.cancel_join_thread()
            channel.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
