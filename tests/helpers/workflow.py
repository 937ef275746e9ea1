"""Run the workflow through Snakemake's command line on a throw-away working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from dfdetect.testkit.dryrun import planned_jobs

ROOT = Path(__file__).resolve().parents[2]
SNAKEFILE = ROOT / "Snakefile"


def write_config(workdir: Path, config: dict[str, Any], name: str = "test-config.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def workflow_config(workdir: Path, name: str = "test-config.yaml", **settings: Any) -> Path:
    """The one config builder of the workflow tests: batches under ``raw/`` (no demo), results
    under ``results/``, no models, and the schema's defaults for the rest; ``settings`` replace
    whole top-level keys."""
    config: dict[str, Any] = {"raw_dir": "raw", "results_dir": "results", "demo": {"enabled": False}, "models": {}}
    config.update(settings)
    return write_config(workdir, config, name)


def tiny_models_config(workdir: Path, models: dict[str, Any], name: str = "test-config.yaml") -> Path:
    """``workflow_config`` for tiny models on 16 px crops: 4 frame slots per video (of 20-100 face files),
    a quarter of the families each for test and validation, a short bootstrap and no robustness."""
    return workflow_config(
        workdir,
        name,
        image_size=16,
        frames={"min": 20, "max": 100, "step": 10, "count": 4},
        split={"test": 0.25, "validation": 0.25, "seed": 5},
        evaluation={"bootstrap": 50, "robustness": False},
        models=models,
    )


def snakemake_command(workdir: Path, config_path: Path, *args: str) -> list[str]:
    """`snakemake TARGETS... --configfile C` in ``workdir`` (targets first: --configfile takes several values);
    two cores unless the arguments say otherwise (or it is a dry run)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    command += ["--configfile", str(config_path)]
    if "-n" not in args and "--dry-run" not in args and not any(a.startswith("--cores") for a in args):
        command += ["--cores", "2"]
    return command


def snakemake(
    workdir: Path, config_path: Path, *args: str, check: bool = True, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run ``snakemake_command`` and wait; with ``check`` a failure shows the end of its output."""
    command = snakemake_command(workdir, config_path, *args)
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
        )
    return done


def dry_run(workdir: Path, config_path: Path, *args: str) -> dict[str, int]:
    done = snakemake(workdir, config_path, *args, "-n")
    return planned_jobs(done.stdout + done.stderr)
