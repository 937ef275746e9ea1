"""Data-prep code must not import TensorFlow or Keras: a prep job should start in well under 2 s."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

PREP_MODULES = ["dfdetect.facebatch", "dfdetect.config", "dfdetect.logutil", "dfdetect.ingest", "dfdetect.demo"]
HEAVY = ("tensorflow", "keras", "jax", "torch", "mtcnn")


@pytest.mark.parametrize("module", PREP_MODULES)
def test_prep_module_imports_no_deep_learning_framework(module):
    code = (
        f"import sys, {module}\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"{module} pulled in {done.stdout.strip()}"


def test_prep_job_imports_start_quickly():
    code = "import dfdetect.ingest, dfdetect.demo, dfdetect.config, pandas, pyarrow.parquet"
    best = min(_seconds([sys.executable, "-c", code]) for _ in range(2))
    # Generous bound (a noisy 2-core machine); with TensorFlow it would take 3-6 s.
    assert best < 2.0, f"prep imports took {best:.2f} s"


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start
