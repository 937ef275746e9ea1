"""Cluster readiness: the SLURM profile's dry run, profile layering, `snakemake --lint`, and the
conda environments in envs/ against pyproject.toml's pins."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from dfdetect.layout import batch_file_name
from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs_detail
from tests.helpers.workflow import ROOT, SNAKEFILE, snakemake, workflow_config

PROFILES = ROOT / "profiles"
ENVS = ROOT / "envs"
GPU_RULES = ("train", "evaluate")
PREP_GROUP = ("ingest", "select_frames", "pack")

# What each environment must hold (its rules' imports, through dfdetect); tensorflow-cpu is the
# CPU build of the same package that the GPU environments install as tensorflow[and-cuda].
NEEDS = {
    "prep": {"numpy", "pandas", "pyarrow", "pillow", "imageio", "matplotlib", "scikit-learn", "tqdm", "pyyaml"},
    "train": {
        "tensorflow",
        "keras",
        "numpy",
        "pandas",
        "pyarrow",
        "pillow",
        "imageio",
        "matplotlib",
        "scikit-learn",
        "scipy",
        "tqdm",
        "pyyaml",
        "albumentations",
        "opencv-python-headless",
    },
    "faces": {
        "mtcnn",
        "tensorflow",
        "keras",
        "imageio-ffmpeg",
        "numpy",
        "pandas",
        "pyarrow",
        "pillow",
        "tqdm",
        "dlib-bin",
        "face-recognition-models",
    },
}
# Runtime dependencies that no job environment needs, and why.
MAIN_PROCESS_ONLY = {
    "snakemake": "runs the workflow; a job's script imports it from the host through Snakemake's preamble",
    "jsonschema": "only the Snakefile validates the config, in the main process",
}
ALIASES = {"tensorflow-cpu": "tensorflow"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def name(requirement: Requirement) -> str:
    canonical = canonicalize_name(requirement.name)
    return ALIASES.get(canonical, canonical)


def specifiers_by_name() -> dict[str, list[SpecifierSet]]:
    """Package -> the specifiers pyproject gives it (runtime and the gpu extra)."""
    project = pyproject()["project"]
    found: dict[str, list[SpecifierSet]] = {}
    for line in project["dependencies"] + project["optional-dependencies"]["gpu"]:
        requirement = Requirement(line)
        found.setdefault(name(requirement), []).append(requirement.specifier)
    return found


def env_file(path: Path) -> tuple[str, list[Requirement]]:
    """An env file's conda python spec and its pip requirements."""
    spec = yaml.safe_load(path.read_text())
    python = next(dep for dep in spec["dependencies"] if isinstance(dep, str) and dep.startswith("python="))
    pip = next(dep["pip"] for dep in spec["dependencies"] if isinstance(dep, dict))
    return python.split("=", 1)[1], [Requirement(line) for line in pip]


# ---------------------------------------------------------------- environments


def test_every_rule_names_an_existing_env_and_every_env_is_used():
    used = set()
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for match in re.finditer(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", smk.read_text(), re.MULTILINE):
            path = (smk.parent / match.group(1)).resolve()
            assert path.is_file(), f"{smk.name}: conda env {match.group(1)} does not exist"
            used.add(path.stem)
    assert used == {path.stem for path in ENVS.glob("*.yaml")} == set(NEEDS)


@pytest.mark.parametrize("env", sorted(NEEDS))
def test_env_pins_satisfy_pyproject(env):
    python, requirements = env_file(ENVS / f"{env}.yaml")
    assert Version(python) in SpecifierSet(pyproject()["project"]["requires-python"])
    allowed = specifiers_by_name()
    pinned = {}
    for requirement in requirements:
        pins = [spec for spec in requirement.specifier if spec.operator == "=="]
        assert len(pins) == 1 and len(requirement.specifier) == 1, f"{env}.yaml: {requirement} is not pinned with =="
        assert name(requirement) in allowed, f"{env}.yaml: {requirement.name} is not a dependency in pyproject.toml"
        version = pins[0].version
        for specifier in allowed[name(requirement)]:
            assert version in specifier, f"{env}.yaml: {requirement.name}=={version} is outside pyproject's {specifier}"
        pinned[name(requirement)] = version
    missing = NEEDS[env] - set(pinned)
    assert not missing, f"{env}.yaml lacks {sorted(missing)}"


def test_every_runtime_dependency_has_an_env_and_envs_agree():
    runtime = {name(Requirement(line)) for line in pyproject()["project"]["dependencies"]}
    placed = set().union(*NEEDS.values()) | set(MAIN_PROCESS_ONLY)
    assert runtime == placed, f"decide which env needs: {sorted(runtime - placed)}; gone: {sorted(placed - runtime)}"
    versions: dict[str, set[str]] = {}
    for env in NEEDS:
        for requirement in env_file(ENVS / f"{env}.yaml")[1]:
            versions.setdefault(name(requirement), set()).add(str(requirement.specifier))
    assert {package: pins for package, pins in versions.items() if len(pins) > 1} == {}


# ---------------------------------------------------------------- profiles and lint


def test_slurm_profile_does_not_repeat_default_profile_keys():
    # Snakemake applies profiles/default on top of --profile profiles/slurm: a repeated key is silently lost.
    default = yaml.safe_load((PROFILES / "default/config.yaml").read_text())
    slurm = yaml.safe_load((PROFILES / "slurm/config.yaml").read_text())
    assert set(default) & set(slurm) == set()
    assert slurm["executor"] == "slurm"
    assert {"slurm_partition", "slurm_account", "mem_mb", "runtime"} <= set(slurm["default-resources"])


def test_lint_passes():
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--lint"],  # config.yaml, as a user runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-6000:]


@pytest.mark.workflow
@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="SLURM executor plugin not installed (pip install -e '.[slurm]')",
)
def test_slurm_dry_run_sends_gpu_rules_to_gpu_nodes(tmp_path, monkeypatch):
    for number, batch in enumerate(("0-0", "0-1")):
        write_face_batch(tmp_path / "raw" / batch_file_name(batch), family_batch(f"s{number}", 1, 1, range(3)))
    models = {"tiny": {"arch": "cnn", "epochs": 1, "batch_size": 4}, "wide": {"arch": "cnn", "resources": {"gpu": 2}}}
    (tmp_path / "videos").mkdir()  # a raw video part: only its name matters to a dry run
    with zipfile.ZipFile(tmp_path / "videos/dfdc_train_part_7.zip", "w") as archive:
        archive.writestr("metadata.json", "{}")
    monkeypatch.setenv("DFDETECT_SLURM_PARTITION", "cpu-test")
    monkeypatch.setenv("DFDETECT_SLURM_GPU_PARTITION", "gpu-test")
    monkeypatch.setenv("DFDETECT_SLURM_ACCOUNT", "project-test")

    done = snakemake(
        tmp_path,
        workflow_config(tmp_path, models=models, raw_video_dir="videos"),
        "-n",
        "--profile",
        str(PROFILES / "slurm"),
    )
    output = done.stdout + done.stderr
    jobs = planned_jobs_detail(output)
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)

    gpus = {"tiny": "1", "wide": "2"}  # from models.NAME.resources.gpu (default 1)
    for rule in GPU_RULES:
        assert {job["wildcards"]["model"] for job in by_rule[rule]} == set(gpus)
        for job in by_rule[rule]:
            resources = job["resources"]
            assert resources["gpu"] == gpus[job["wildcards"]["model"]], (rule, resources)
            assert resources["cpus_per_gpu"] == "8"
            assert resources["slurm_partition"] == "gpu-test"
            assert resources["slurm_account"] == "project-test"
    (faces,) = by_rule["extract_faces"]
    assert faces["resources"]["gpu"] == "1" and faces["resources"]["slurm_partition"] == "gpu-test"
    # Every job that asks for a GPU goes to the GPU partition (a new GPU rule needs its set-resources entry).
    for job in jobs:
        if job["resources"].get("gpu", "0") != "0":
            assert job["resources"]["slurm_partition"] == "gpu-test", (job["rule"], job["resources"])
            assert job["resources"]["cpus_per_gpu"] == "8", (job["rule"], job["resources"])
    for rule in PREP_GROUP + ("manifest", "clean", "reduce", "split", "report"):
        for job in by_rule[rule]:
            assert "gpu" not in job["resources"], (rule, job["resources"])
            assert job["resources"]["slurm_partition"] == "cpu-test"
            assert "mem_mb" in job["resources"] and "runtime" in job["resources"]
    # One cluster job per batch for ingest -> select_frames -> pack.
    assert output.count("Group job prep") == 3
