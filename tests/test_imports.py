"""Data-prep code must not import TensorFlow or Keras: a prep job should start in well under 2 s."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Modules that light jobs (demo, ingest, clean, reduce, pack, split, report) and the CLI's start import,
# and the contracts that scoring shares (model inputs, scoring, input sources, layout, schema).
PREP_MODULES = [
    "dfdetect.data.facebatch",
    "dfdetect.config",
    "dfdetect.schema",
    "dfdetect.layout",
    "dfdetect.atomic",
    "dfdetect.evaluation.aggregate",
    "dfdetect.data.png",
    "dfdetect.logutil",
    "dfdetect.data.ingest",
    "dfdetect.data.demo",
    "dfdetect.data.clean",
    "dfdetect.data.reduce",
    "dfdetect.data.store",
    "dfdetect.data.splits",
    "dfdetect.evaluation.metrics",
    "dfdetect.plots",
    "dfdetect.evaluation.report",
    "dfdetect.cli",
    "dfdetect.data.faces",
    "dfdetect.training.modelinput",
    "dfdetect.evaluation.scoring",
    "dfdetect.evaluation.sources",
    "dfdetect.evaluation.predict",
    "dfdetect.training.train",
    "dfdetect.evaluation.evaluate",
    "dfdetect.evaluation.robustness",
    "dfdetect.data.convert",
    "dfdetect.evaluation.perturb",
    "dfdetect.testkit.batches",
    "dfdetect.testkit.videos",
    "dfdetect.testkit.dryrun",
    # training recipes: they run in the loader's workers (and the landmarks job imports mtcnn only in its detector)
    "dfdetect.training.augment",
    "dfdetect.training.sbi",
    "dfdetect.data.landmarks",
    "dfdetect.training.recipes",
    "dfdetect.training.batches",
    "dfdetect.training.workers",
    "dfdetect.training.samples_figure",
]
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
