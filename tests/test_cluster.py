"""The SLURM path for real: a small demo through `snakemake --profile profiles/slurm` on a running SLURM.

Needs a cluster: `tests/cluster/slurm-up.sh` brings up a single-node one (as .ci/run does), then
`.venv/bin/python -m pytest tests/test_cluster.py -m cluster`; `tests/cluster/slurm-down.sh` stops it.
The account and partitions come from the README's variables (DFDETECT_SLURM_ACCOUNT,
DFDETECT_SLURM_PARTITION, DFDETECT_SLURM_GPU_PARTITION), by default the names slurm-up.sh creates.
Skipped where `sbatch` is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.testkit.dryrun import planned_jobs_detail
from tests.helpers.workflow import ROOT, snakemake, write_config


def cluster_missing() -> str | None:
    """Why no SLURM can take jobs here, or None. CI sets DFDETECT_REQUIRE_CLUSTER: there a missing
    cluster fails the test instead of skipping it."""
    if shutil.which("sbatch") is None:
        return "no SLURM here (sbatch not found): tests/cluster/slurm-up.sh starts a local one"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "UP" not in ping.stdout:
        return "SLURM is installed but its controller is not up: run tests/cluster/slurm-up.sh first"
    return None


MISSING = cluster_missing()
if MISSING and os.environ.get("DFDETECT_REQUIRE_CLUSTER"):
    raise RuntimeError(f"DFDETECT_REQUIRE_CLUSTER is set, but {MISSING}")

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.workflow,
    pytest.mark.slow,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]

PROFILE = ROOT / "profiles" / "slurm"
GPU_RULES = ("train", "evaluate", "robustness", "evaluate_set")  # at least these
PREP_GROUP = ("ingest", "pack", "select_frames")
# Defaults: the names tests/cluster/slurm-up.sh creates.
PARTITION = os.environ.get("DFDETECT_SLURM_PARTITION") or "cpu"
GPU_PARTITION = os.environ.get("DFDETECT_SLURM_GPU_PARTITION") or "gpu"
ACCOUNT = os.environ.get("DFDETECT_SLURM_ACCOUNT") or "dfdetect"
# Only test-specific flags: sacct hangs without an accounting database (squeue answers instead), the
# first status check comes after 5 s instead of 40 s, and the logs of successful jobs stay for the checks.
CLUSTER_FLAGS = (
    "--profile",
    str(PROFILE),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--slurm-keep-successful-logs",
)
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
CONFIG = {
    "raw_dir": "raw",
    "results_dir": "results",
    "demo": {"enabled": True, "batches": 3, "videos_per_batch": 16, "image_size": 16, "n_frame_slots": 60, "seed": 3},
    "image_size": 16,
    "frames": {"min": 40, "max": 80, "step": 5, "count": 4},
    "split": {"test": 0.25, "validation": 0.25, "seed": 5},
    # robustness (on by default) and one small evaluation set: their GPU jobs go through the cluster too.
    "evaluation": {"bootstrap": 50, "sets": {"unseen": {"demo": {"batches": 1, "videos_per_batch": 16, "seed": 9}}}},
    "models": {"tiny": {"arch": "cnn", "epochs": 1, "batch_size": 16, "frames_per_video": "all"}},
}
TABLES = (
    "manifests/videos.parquet",
    "clean/videos.parquet",
    "reduced/frames.parquet",
    "splits/train.parquet",
    "splits/validation.parquet",
    "splits/test.parquet",
)
PREDICTIONS = ("eval/tiny/predictions.parquet", "eval/tiny/validation_predictions.parquet")


def job_fields(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of a `scontrol show job` record or a jobcomp/filetxt line."""
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", text))


def slurm_job(job_id: str) -> dict[str, str]:
    done = subprocess.run(["scontrol", "show", "job", "-d", job_id], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"scontrol show job {job_id}: {done.stderr}"
    return job_fields(done.stdout)


def jobcomp_records() -> dict[str, dict[str, str]]:
    """SLURM's record of every finished job (JobCompType=jobcomp/filetxt), by job id."""
    done = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30)
    location = re.search(r"^JobCompLoc\s*=\s*(\S+)", done.stdout, re.MULTILINE)
    if location is None or not Path(location.group(1)).is_file():
        return {}
    records = [job_fields(line) for line in Path(location.group(1)).read_text().splitlines() if line.strip()]
    return {record["JobId"]: record for record in records}


def cancel_left_jobs(workdir: Path) -> None:
    """scancel jobs of ``workdir`` still queued after a failed or timed-out run."""
    done = subprocess.run(["squeue", "-h", "-o", "%i %Z"], capture_output=True, text=True, timeout=30)
    left = [line.split()[0] for line in done.stdout.splitlines() if line.split()[1:] == [str(workdir)]]
    if left:
        subprocess.run(["scancel", *left], timeout=30)


def on_cluster(workdir: Path, config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        return snakemake(workdir, config, *args, *CLUSTER_FLAGS, check=check, timeout=600)
    finally:
        cancel_left_jobs(workdir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, monkeypatch_module):
    """The same config locally and on the cluster, and a cluster run on a corrupt batch, all at once."""
    if subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode != 0:
        pytest.fail("sbatch is installed but no SLURM controller answers: run tests/cluster/slurm-up.sh")
    for name, value in (
        ("DFDETECT_SLURM_PARTITION", PARTITION),
        ("DFDETECT_SLURM_GPU_PARTITION", GPU_PARTITION),
        ("DFDETECT_SLURM_ACCOUNT", ACCOUNT),
    ):
        monkeypatch_module.setenv(name, value)
    local_dir, cluster_dir, broken_dir = (tmp_path_factory.mktemp(name) for name in ("local", "cluster", "broken"))
    (broken_dir / "raw").mkdir()
    (broken_dir / "raw/deepfake-detection-faces-part-0-0.zip").write_bytes(b"PK\x03\x04 a truncated download")
    broken_config = write_config(
        broken_dir, {"raw_dir": "raw", "results_dir": "results", "demo": {"enabled": False}, "models": CONFIG["models"]}
    )
    start = time.monotonic()
    # The cluster runs mostly wait for their jobs; the local reference run uses one core meanwhile.
    with ThreadPoolExecutor(3) as pool:
        local = pool.submit(snakemake, local_dir, write_config(local_dir, CONFIG), "--cores", "1")
        cluster = pool.submit(on_cluster, cluster_dir, write_config(cluster_dir, CONFIG))
        broken = pool.submit(on_cluster, broken_dir, broken_config, "results/manifests/videos/0-0.parquet", check=False)
        local.result()
        done, failed = cluster.result(), broken.result()
    print(f"local and cluster runs: {time.monotonic() - start:.0f} s")
    return {"local": local_dir, "cluster": cluster_dir, "output": done.stdout + done.stderr, "broken": failed}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def submissions(output: str) -> dict[str, str]:
    """SLURM job id -> the log folder of its job under .snakemake/slurm_logs (rule_NAME or group_...)."""
    return {job_id: re.search(r"slurm_logs/([^/]+)/", log).group(1) for _, job_id, log in SUBMITTED.findall(output)}


def test_every_non_local_job_ran_as_a_slurm_job(runs):
    workdir, output = runs["cluster"], runs["output"]
    jobs = submissions(output)
    # The jobs Snakemake ran: `rule X:` for cluster jobs (group members indented), `localrule X:` on this host.
    remote = Counter(re.findall(r"^\s*rule (\w+):$", output, re.MULTILINE))
    local = set(re.findall(r"^localrule (\w+):$", output, re.MULTILINE))
    assert {"all", "manifest", "clean", "reduce", "split", "report"} <= local
    assert {"demo", *PREP_GROUP, *GPU_RULES} <= set(remote) and not local & set(remote)
    by_folder = Counter(jobs.values())
    group = f"group_prep_{'_'.join(sorted(PREP_GROUP))}"  # one job per batch for the three prep rules
    expected = {f"rule_{rule}": count for rule, count in remote.items() if rule not in PREP_GROUP}
    batches = CONFIG["demo"]["batches"] + CONFIG["evaluation"]["sets"]["unseen"]["demo"]["batches"]
    expected[group] = batches
    assert by_folder == expected
    assert all(remote[rule] == batches for rule in PREP_GROUP)

    finished = jobcomp_records()
    for job_id, folder in jobs.items():
        log = workdir / ".snakemake/slurm_logs" / folder
        assert list(log.rglob(f"{job_id}.log")), f"no SLURM log of job {job_id} under {log}"
        record = finished.get(job_id) or slurm_job(job_id)
        assert record["JobState"] == "COMPLETED", (job_id, folder, record)
        assert record["WorkDir"] == str(workdir)
        assert record["Account"] == ACCOUNT


def test_gpu_rules_went_to_the_gpu_partition_with_one_gpu(runs):
    # The rules whose jobs ask for a GPU (train, evaluate, robustness, ...), as the run printed them.
    gpu_rules = {job["rule"] for job in planned_jobs_detail(runs["output"]) if job["resources"].get("gpu", "0") != "0"}
    assert set(GPU_RULES) <= gpu_rules
    for job_id, folder in submissions(runs["output"]).items():
        job = slurm_job(job_id)
        if folder.removeprefix("rule_") in gpu_rules:
            assert job["Partition"] == GPU_PARTITION, (folder, job)
            assert job.get("TresPerJob") == "gres:gpu:1", (folder, job)  # sbatch --gpus=1
            assert job.get("CpusPerTres") == "gres:gpu:8", (folder, job)  # cpus_per_gpu from the profile
            assert job["TimeLimit"] == "04:00:00" and job["MinMemoryNode"] == "8000M"  # models.NAME.resources
        else:
            assert job["Partition"] == PARTITION, (folder, job)
            assert "gpu" not in job.get("TresPerJob", ""), (folder, job)


def test_outputs_equal_a_local_run(runs):
    local_dir, cluster_dir = runs["local"], runs["cluster"]
    for table in TABLES:
        pd.testing.assert_frame_equal(
            pd.read_parquet(cluster_dir / "results" / table), pd.read_parquet(local_dir / "results" / table), obj=table
        )
    for table in PREDICTIONS:  # the same seeds on the same CPUs: equal up to float noise
        pd.testing.assert_frame_equal(
            pd.read_parquet(cluster_dir / "results" / table),
            pd.read_parquet(local_dir / "results" / table),
            check_exact=False,
            atol=1e-5,
            obj=table,
        )
    comparison = pd.read_csv(cluster_dir / "results/report/comparison.csv")
    assert list(comparison["model"]) == ["tiny"]


def test_a_job_failing_on_the_cluster_fails_the_run_naming_the_rule(runs):
    failed = runs["broken"]
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output[-4000:]
    (job_id,) = submissions(output)  # the batch's prep group job
    # The failed group job names its SLURM log, its rule and the rule's log; that log (shown) names the file.
    error = output[output.index("Error in group prep") :]
    assert f"slurm_logs/group_prep_ingest/{job_id}.log" in error, error[:2000]
    assert re.search(r"jobs:\s+rule ingest:", error), error[:2000]
    assert "results/logs/ingest/0-0.log" in error
    assert "raw/deepfake-detection-faces-part-0-0.zip: not a readable zip file" in output
    assert f"{ROOT / 'dfdetect'}/" in output  # the job imported this checkout's package (its traceback names it)
    record = jobcomp_records().get(job_id) or slurm_job(job_id)
    assert record["JobState"] == "FAILED", record
