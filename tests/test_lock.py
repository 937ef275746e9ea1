"""dfdetect.lock's job locks: a job holds one while it runs, the kernel drops it when the job dies,
and neither a second job on the same outputs nor a new run beside a live job gets in."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from dfdetect.lock import (
    LOCK_NAME,
    ResultsLockError,
    acquire,
    job_lock,
    job_lock_path,
    live_jobs,
    read_holder,
    release,
    unlock,
)

HOLD_JOB = textwrap.dedent(
    """
    import sys, time
    from dfdetect.lock import job_lock
    with job_lock(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        time.sleep(600)
    """
)


@pytest.fixture
def running_job(tmp_path):
    """Another process holding the job lock of results/logs/train/m.log, as a train job would."""
    results = tmp_path / "results"
    log = results / "logs/train/m.log"
    job = subprocess.Popen([sys.executable, "-c", HOLD_JOB, str(results), str(log)], stdout=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "held\n"
    yield results, log, job
    job.kill()
    job.wait()


def test_a_second_job_on_the_same_outputs_fails_naming_the_first(running_job):
    results, log, job = running_job
    with pytest.raises(ResultsLockError, match=f"another process is running this job: .*m.log \\(PID {job.pid} on"):
        with job_lock(results, log):
            pass
    with job_lock(results, results / "logs/train/other.log"):  # another job is free to run
        assert [holder["pid"] for holder in live_jobs(results)] == [job.pid, os.getpid()]


def test_a_job_lock_is_free_again_once_its_job_dies_however_it_dies(running_job):
    results, log, job = running_job
    assert [holder["job"] for holder in live_jobs(results)] == [str(log)]
    os.kill(job.pid, signal.SIGKILL)  # no clean-up ran: the file stays, the kernel's lock is gone
    job.wait()
    assert job_lock_path(results, log).exists()
    assert live_jobs(results) == [] and not job_lock_path(results, log).exists()
    with job_lock(results, log) as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert not path.exists()


def test_a_run_does_not_take_over_a_dead_runs_lock_while_its_job_lives(running_job):
    results, _, job = running_job
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (results / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "workdir": "/x"}))
    with pytest.raises(ResultsLockError, match=f"PID {gone.pid} on host .* is gone, but 1 of its job.*kill {job.pid}"):
        acquire(results)
    (results / LOCK_NAME).unlink()  # removed by hand: the live job still counts
    with pytest.raises(ResultsLockError, match="no run holds it, but 1 of its job"):
        acquire(results)
    assert not (results / LOCK_NAME).exists()


def test_unlock_refuses_a_live_local_holder_or_live_jobs_unless_forced(tmp_path, running_job):
    results, _, job = running_job
    with pytest.raises(ResultsLockError, match="still run"):
        unlock(results)  # no lock file, but a job writes there
    job.kill()
    job.wait()
    acquire(results)  # this process: alive, on this host
    try:
        command = [sys.executable, "-m", "dfdetect.cli", "unlock", "--results-dir", str(results)]
        refused = subprocess.run(command, capture_output=True, text=True)
        assert refused.returncode == 1 and "is still running" in refused.stderr and "--force" in refused.stderr
        assert read_holder(results)["pid"] == os.getpid()
        forced = subprocess.run([*command, "--force"], capture_output=True, text=True, check=True)
        assert "removed the lock" in forced.stdout and read_holder(results) is None
    finally:
        release(results)


def test_without_file_locks_a_jobs_pid_on_this_host_is_checked(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(descriptor, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)  # NFS mounted with nolock
    results, log = tmp_path / "results", tmp_path / "results/logs/train/m.log"
    with job_lock(results, log) as path:
        assert [holder["pid"] for holder in live_jobs(results)] == [os.getpid()]
        with pytest.raises(ResultsLockError, match="another process is running this job"):
            with job_lock(results, log):
                pass
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"job": str(log), "pid": gone.pid, "host": socket.gethostname()}))
    assert live_jobs(results) == [] and not path.exists()  # a dead job's record is cleared
