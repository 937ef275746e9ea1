"""Shared test set-up: offline, quiet, and nothing written to the user's home."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Keras writes ~/.keras and imageio ~/.imageio; keep both inside the test session's temp area.
_HOME = Path(os.environ.get("PYTEST_DFDETECT_HOME", "/tmp/dfdetect-test-home"))
os.environ.setdefault("KERAS_HOME", str(_HOME / "keras"))
os.environ.setdefault("IMAGEIO_USERDIR", str(_HOME / "imageio"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA
