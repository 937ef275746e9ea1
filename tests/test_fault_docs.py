"""What a user reads after a failure: README's "When something goes wrong" and `make run`'s message."""

from __future__ import annotations

import os
import subprocess


def test_readme_says_what_to_do_when_something_goes_wrong(root):
    readme = (root / "README.md").read_text()
    section = readme.split("## When something goes wrong", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "snakemake --unlock",
        ".dfdetect.lock",
        "dfdetect unlock",
        "models/{model}/.resume/",
        "results/logs/",
        "end-of-run summary",
        "max_image_side",
    ):
        assert needed in section, needed


def test_make_run_failure_mentions_unlock(root, tmp_path):
    # A stand-in venv whose snakemake fails, as after a killed run (LockException).
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, code in (("python", 0), ("snakemake", 1), ("dfdetect", 0)):
        script = venv / "bin" / name
        script.write_text(f"#!/bin/sh\nexit {code}\n")
        script.chmod(0o755)
    (venv / ".installed-run").touch()
    os.utime(venv / ".installed-run", (2**31, 2**31))  # newer than pyproject.toml: no reinstall
    done = subprocess.run(["make", "-s", "run", f"VENV={venv}"], cwd=root, capture_output=True, text=True)
    assert done.returncode != 0
    assert "snakemake --unlock" in done.stderr and "results/logs/" in done.stderr
