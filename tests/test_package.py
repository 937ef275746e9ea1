"""`pip install .` gives a working dfdetect: the wheel carries the config schema, and the installed
package works with no checkout on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The wheel built from this checkout, installed (without its dependencies, which the test
    environment has) into a folder outside the checkout; the environment that imports it from there."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"  # what the wheel is built from, copied so that the build leaves the checkout alone
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "dfdetect", source / "dfdetect", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, text=True, cwd=folder)
    (wheel,) = folder.glob("dfdetect-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "dfdetect/config.schema.yaml" in archive.namelist()
    site = folder / "site"
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True, cwd=folder)
    env = {**os.environ, "PYTHONPATH": str(site)}
    return site, env


def run_outside_checkout(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_installed_package_reads_its_schema(installed, tmp_path):
    site, env = installed
    code = (
        "import dfdetect; from dfdetect.config import default_config; from dfdetect.schema import SCHEMA_PATH\n"
        "print(dfdetect.__file__); print(SCHEMA_PATH); print(default_config()['results_dir'])"
    )
    module_file, schema, results_dir = run_outside_checkout([sys.executable, "-c", code], env, tmp_path).split()
    assert module_file.startswith(str(site)) and schema.startswith(str(site)), "imported the checkout, not the wheel"
    assert results_dir == "results"


def test_installed_command_line_runs(installed, tmp_path):
    site, env = installed
    usage = run_outside_checkout([sys.executable, str(site / "bin" / "dfdetect"), "predict", "--help"], env, tmp_path)
    assert "dfdetect predict" in usage and "--model" in usage
