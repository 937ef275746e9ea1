"""Run the workflow through Snakemake's command line on a throw-away working directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"


def write_config(workdir: Path, config: dict[str, Any], name: str = "test-config.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, config_path: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """`snakemake TARGETS... --configfile C` in ``workdir`` (targets first: --configfile takes several values)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args,
               "--configfile", str(config_path)]
    if "-n" not in args and "--dry-run" not in args and not any(a.startswith("--cores") for a in args):
        command += ["--cores", "2"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}")
    return done


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table a (dry) run prints; empty when nothing to do."""
    counts: dict[str, int] = {}
    in_table = False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table, counts = True, {}
            continue
        if in_table:
            match = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
            elif line.strip().startswith("total"):
                in_table = False
    return counts


def dry_run(workdir: Path, config_path: Path, *args: str) -> dict[str, int]:
    done = snakemake(workdir, config_path, *args, "-n")
    return planned_jobs(done.stdout + done.stderr)


def planned_jobs_detail(output: str) -> list[dict]:
    """Each job a (dry) run prints: rule, wildcards and resources (as strings)."""
    jobs: list[dict] = []
    for line in output.splitlines():
        text = line.strip()
        header = re.match(r"^(?:local)?rule (\w+):$", text)
        if header:
            jobs.append({"rule": header.group(1), "wildcards": {}, "resources": {}})
        elif jobs and text.startswith(("wildcards:", "resources:")):
            key, _, values = text.partition(": ")
            jobs[-1][key] = dict(item.split("=", 1) for item in values.split(", "))
    return jobs


def planned_wildcards(output: str, rule: str, name: str = "batch") -> set[str]:
    """The values of one wildcard over the jobs of ``rule`` that a (dry) run lists."""
    return {job["wildcards"][name] for job in planned_jobs_detail(output)
            if job["rule"] == rule and name in job["wildcards"]}
