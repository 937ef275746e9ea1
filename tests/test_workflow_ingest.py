"""Snakemake behaviour of the foundation: batch discovery, reruns, params, config errors, raw data safety."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.testkit.batches import Video, family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import dry_run, snakemake, workflow_config

pytestmark = pytest.mark.workflow

BATCHES = ("0-0", "0-1", "1-0")


def manifests_only(workdir: Path, name: str = "test-config.yaml", **overrides) -> Path:
    return workflow_config(workdir, name, **{"raw_dir": str(workdir / "raw"), **overrides})


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    """A workdir with three small batches, ingested once."""
    workdir = tmp_path_factory.mktemp("wf-ingest")
    for number, batch in enumerate(BATCHES):
        write_face_batch(
            workdir / "raw" / f"deepfake-detection-faces-part-{batch}.zip",
            family_batch(f"b{number}", n_families=2, fakes_per_family=2, frames=range(0, 40)),
        )
    config = manifests_only(workdir)
    snakemake(workdir, config, "results/manifests/videos.parquet")
    return workdir, config


def checksums(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.iterdir())
    }


def test_dry_run_lists_one_ingest_job_per_batch(tmp_path):
    for batch in BATCHES:
        write_face_batch(
            tmp_path / "raw" / f"deepfake-detection-faces-part-{batch}.zip", family_batch(f"x{batch}", 1, 1, range(3))
        )
    done = snakemake(tmp_path, manifests_only(tmp_path), "-n")
    jobs = planned_jobs(done.stdout + done.stderr)
    assert jobs["ingest"] == len(BATCHES)
    assert planned_wildcards(done.stdout + done.stderr, "ingest") == set(BATCHES)
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def test_outputs_and_second_run_has_nothing_to_do(ingested):
    workdir, config = ingested
    videos = pd.read_parquet(workdir / "results/manifests/videos.parquet")
    assert sorted(videos["batch"].unique()) == sorted(BATCHES)
    assert len(videos) == 3 * 6
    for batch in BATCHES:
        frames = pd.read_parquet(workdir / f"results/manifests/frames/{batch}.parquet")
        assert len(frames) == 6 * 40
        assert (workdir / f"results/logs/ingest/{batch}.log").read_text().count("face files") >= 1
    assert dry_run(workdir, config, "results/manifests/videos.parquet") == {}


def test_rewritten_batch_reruns_only_its_ingest_and_the_aggregates(ingested):
    workdir, config = ingested
    # New content (a checksum change, not only a newer mtime: Snakemake ignores touched-but-equal inputs).
    write_face_batch(
        workdir / "raw" / "deepfake-detection-faces-part-0-1.zip",
        family_batch("b1", n_families=2, fakes_per_family=3, frames=range(0, 40)),
    )
    done = snakemake(workdir, config, "results/manifests/videos.parquet", "-n")
    output = done.stdout + done.stderr
    assert planned_wildcards(output, "ingest") == {"0-1"}
    assert planned_jobs(output) == {"ingest": 1, "manifest": 1}
    snakemake(workdir, config, "results/manifests/videos.parquet")
    videos = pd.read_parquet(workdir / "results/manifests/videos.parquet")
    assert (videos["batch"] == "0-1").sum() == 2 * 4


def test_changed_param_reruns_what_uses_it(ingested):
    workdir, _ = ingested
    changed = manifests_only(workdir, "changed-bounds.yaml", frames={"min": 10, "max": 400})
    output = snakemake(workdir, changed, "results/manifests/n_frames_hist.png", "-n").stdout
    assert planned_jobs(output) == {"manifest": 1}  # the histogram draws the bounds; ingest does not use them
    assert "Params have changed" in output


def test_raw_data_is_never_modified(tmp_path):
    for number, batch in enumerate(BATCHES[:2]):
        write_face_batch(
            tmp_path / "raw" / f"deepfake-detection-faces-part-{batch}.zip", family_batch(f"r{number}", 1, 2, range(5))
        )
    before = checksums(tmp_path / "raw")
    snakemake(tmp_path, manifests_only(tmp_path), "results/manifests/videos.parquet")
    assert checksums(tmp_path / "raw") == before


def test_duplicate_video_across_batches_fails_naming_both(tmp_path):
    for batch in ("0-0", "2-1"):
        write_face_batch(
            tmp_path / "raw" / f"deepfake-detection-faces-part-{batch}.zip", [Video("samevideo", frames=[0])]
        )
    done = snakemake(tmp_path, manifests_only(tmp_path), "results/manifests/videos.parquet", check=False)
    assert done.returncode != 0
    log = (tmp_path / "results/logs/manifest.log").read_text()
    assert "samevideo appears in batches 0-0 and 2-1" in log


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"frames": {"min": -5}}, "config key 'frames.min': -5 is less than the minimum"),
        ({"frames": {"min": 300, "max": 200}}, "config key 'frames.min'"),
        ({"split": {"test": 1.0}}, "config key 'split.test'"),
        ({"split": {"validation": 0}}, "config key 'split.validation'"),
        ({"models": {"m": {"arch": "rnn"}}}, "config key 'models.m.arch': 'rnn' is not one of"),
        ({"raw_dir": "/nonexistent/raw"}, "config key 'raw_dir': folder '/nonexistent/raw' does not exist"),
        ({"raw_dir": "."}, "config key 'results_dir': 'results' is inside raw_dir '.'"),
        ({"keras_backend": "theano"}, "'theano' is not one of"),
        (
            {"models": {"seq": {"arch": "td_lstm", "encoder_from": "nosuch"}}},
            "config key 'models.seq.encoder_from': 'nosuch' is not a configured model",
        ),
        (
            {"models": {"a": {"arch": "cnn", "encoder_from": "b"}, "b": {"arch": "cnn"}}},
            "config key 'models.a.encoder_from': only arch td_lstm",
        ),
    ],
)
def test_bad_config_fails_at_once_naming_the_key(tmp_path, overrides, expected):
    (tmp_path / "raw").mkdir()
    write_face_batch(tmp_path / "raw" / "deepfake-detection-faces-part-0-0.zip", [Video("a", frames=[0])])
    done = snakemake(tmp_path, manifests_only(tmp_path, **overrides), "-n", check=False)
    assert done.returncode != 0
    assert expected in done.stdout + done.stderr
    assert "rule ingest" not in done.stdout  # failed before planning any job


def test_rule_graph_renders_with_dot(tmp_path):
    """`snakemake --rulegraph | dot -Tsvg`, as the README shows (graphviz comes from .ci/run)."""
    import shutil
    import subprocess

    if shutil.which("dot") is None:
        pytest.skip("graphviz `dot` is not installed (.ci/run installs it)")
    write_face_batch(tmp_path / "raw" / "deepfake-detection-faces-part-0-0.zip", [Video("a", frames=[0])])
    config = manifests_only(tmp_path, models={"cnn": {"arch": "cnn"}})
    graph = snakemake(tmp_path, config, "--rulegraph").stdout
    assert graph.lstrip().startswith("digraph")
    svg = subprocess.run(["dot", "-Tsvg"], input=graph, capture_output=True, text=True, check=True).stdout
    for rule in ("ingest", "clean", "pack", "split", "train", "evaluate", "report"):
        assert f">{rule}<" in svg
