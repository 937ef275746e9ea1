"""Snakemake behaviour of the preparation stage on small crafted batches."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.data.store import FrameStore
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import snakemake, workflow_config

pytestmark = pytest.mark.workflow


def batch_videos(prefix: str) -> list[Video]:
    """Per batch: 4 families (REAL + 2 fakes), one short original whose fakes go with it, a two-actor video."""
    videos = []
    for family in range(4):
        frames = range(0, 60) if family else range(0, 8)  # family 0's original is too short
        real = f"{prefix}r{family}"
        videos.append(Video(real, "REAL", None, frames))
        videos += [Video(f"{prefix}f{family}{k}", "FAKE", real, range(0, 60)) for k in range(2)]
    videos.append(Video(f"{prefix}two", "FAKE", "absentoriginal", range(0, 60), extra_faces={n: 2 for n in range(60)}))
    return videos


def prep_config(workdir: Path, name: str = "test-config.yaml", **overrides) -> Path:
    return workflow_config(
        workdir,
        name,
        **{
            "image_size": 8,
            "frames": {"min": 20, "max": 100, "step": 10, "count": 6},
            "split": {"test": 0.25, "validation": 0.25, "seed": 3},
            **overrides,
        },
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf-prepare")
    for number, batch in enumerate(("0-0", "0-1", "1-0")):
        write_face_batch(
            workdir / "raw" / f"deepfake-detection-faces-part-{batch}.zip", batch_videos(f"b{number}"), size=8
        )
    config = prep_config(workdir)
    snakemake(workdir, config, "results/splits/summary.json", "results/reduced/frames.parquet")
    return workdir, config


def test_prepare_outputs(prepared):
    workdir, _ = prepared
    results = workdir / "results"
    cleaned = pd.read_parquet(results / "clean/videos.parquet").set_index("video_id")
    assert cleaned.loc["b0r0", "drop_reason"] == "too_few_frames"
    assert cleaned.loc["b0f00", "drop_reason"] == "original_dropped"
    assert cleaned.loc["b0two", "drop_reason"] == "too_many_frames"
    summary = json.loads((results / "clean/summary.json").read_text())
    assert summary["dropped"] == {"too_few_frames": 3, "too_many_frames": 3, "original_dropped": 6}

    reduced = pd.read_parquet(results / "reduced/frames.parquet")
    assert set(reduced["video_id"]) == set(cleaned.index[cleaned["keep"]])
    assert reduced.groupby("video_id")["slot"].apply(list).map(lambda slots: slots == list(range(6))).all()
    assert (reduced["frame_index"] == reduced["slot"] * 10).all()

    store = FrameStore.from_folder(results / "store")
    assert store.clip_shape == (6, 8, 8, 3)
    sets = {name: pd.read_parquet(results / f"splits/{name}.parquet") for name in ("train", "validation", "test")}
    assert sum(map(len, sets.values())) == int(cleaned["keep"].sum())
    families = [set(table["family"]) for table in sets.values()]
    assert not (families[0] & families[1] or families[0] & families[2] or families[1] & families[2])
    split_summary = json.loads((results / "splits/summary.json").read_text())
    assert split_summary["test"]["videos"] == len(sets["test"])
    for name in ("clean", "reduce", "split"):
        assert (results / f"logs/{name}.log").stat().st_size > 0
    assert "pack 0-0" in (results / "logs/pack/0-0.log").read_text()  # progress in the log


def test_changed_step_reruns_reduce_pack_split_not_ingest(prepared):
    workdir, _ = prepared
    changed = prep_config(workdir, "changed-step.yaml", frames={"min": 20, "max": 100, "step": 5, "count": 6})
    output = snakemake(workdir, changed, "results/splits/summary.json", "-n").stdout
    jobs = planned_jobs(output)
    assert "ingest" not in jobs and "clean" not in jobs
    assert jobs == {"select_frames": 3, "reduce": 1, "pack": 3, "split": 1}


def test_rewritten_batch_repacks_alone(prepared):
    workdir, config = prepared
    videos = batch_videos("b2")
    videos.append(Video("b2extra", "REAL", None, range(0, 50)))
    write_face_batch(workdir / "raw" / "deepfake-detection-faces-part-1-0.zip", videos, size=8)
    output = snakemake(workdir, config, "results/splits/summary.json", "-n").stdout
    assert planned_wildcards(output, "pack") == {"1-0"}
    assert planned_wildcards(output, "ingest") == {"1-0"}
    assert planned_jobs(output)["split"] == 1
