"""Raw DFDC video parts through Snakemake: extract_faces -> ingest -> ... -> report; predict on the same videos."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from dfdetect.testkit import videos
from dfdetect.testkit.batches import family_batch, write_face_batch
from dfdetect.testkit.dryrun import planned_jobs, planned_wildcards
from tests.helpers.workflow import snakemake, workflow_config

pytestmark = pytest.mark.workflow

N_FRAMES = 12  # = frames.step * frames.count below: predict decodes exactly the frames extraction does
FAMILIES = (("astronaut", 64), ("grace_hopper", 70), ("astronaut", 80))


def raw_part_videos() -> tuple[dict[str, bytes], dict[str, dict]]:
    """Three families (a REAL and its FAKE, different faces and sizes) and one undecodable FAKE.

    Three families let the family-grouped split put a REAL and a FAKE into each of the three sets.
    """
    clips, metadata = {}, {}
    for family, (picture, height) in enumerate(FAMILIES):
        other = "grace_hopper" if picture == "astronaut" else "astronaut"
        real, fake = f"real{family}.mp4", f"fake{family}.mp4"
        clips[real] = videos.mp4_bytes(videos.face_frames([picture], N_FRAMES, face_heights=height)[0])
        clips[fake] = videos.mp4_bytes(videos.face_frames([other], N_FRAMES, face_heights=height)[0])
        metadata[real] = {"label": "REAL", "split": "train", "original": None}
        metadata[fake] = {"label": "FAKE", "split": "train", "original": real}
    clips["broken.mp4"] = videos.garbage_mp4_bytes()
    metadata["broken.mp4"] = {"label": "FAKE", "split": "train", "original": "real0.mp4"}
    return clips, metadata


def faces_config(workdir: Path, name: str = "test-config.yaml", **overrides) -> Path:
    config = {
        "raw_dir": "raw",  # absent: the raw videos are the only source
        "raw_video_dir": "raw_videos",
        "faces": {"crop_size": 64, "batch_size": 16},  # crops larger than image_size: packing resizes
        "image_size": 32,
        "frames": {"min": 4, "max": 100, "step": 4, "count": 3},
        "split": {"test": 0.34, "validation": 0.5, "seed": 1},
        "evaluation": {"bootstrap": 20, "robustness": False},
        "models": {
            "tiny": {
                "arch": "cnn",
                "epochs": 1,
                "batch_size": 8,
                "frames_per_video": "all",
                "augment": False,
                "resources": {"gpu": 0, "threads": 1, "mem_mb": 1000, "runtime": 10},
            },
        },
    }
    config.update(overrides)
    return workflow_config(workdir, name, **config)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("wf-faces")
    (workdir / "raw_videos").mkdir()
    clips, metadata = raw_part_videos()
    videos.write_raw_part(workdir / "raw_videos" / "dfdc_train_part_0.zip", clips, metadata)
    config = faces_config(workdir)
    snakemake(workdir, config)
    return workdir, config


@pytest.mark.slow
def test_raw_part_runs_through_the_whole_workflow(finished):
    workdir, _ = finished
    results = workdir / "results"
    faces_zip = results / "faces/deepfake-detection-faces-part-0-0.zip"
    with zipfile.ZipFile(faces_zip) as archive:
        names = archive.namelist()
    assert names[0] == "metadata.csv"
    assert {name.split("/")[0] for name in names[1:]} == {
        f"{kind}{family}" for kind in ("real", "fake") for family in range(3)
    }

    report = pd.read_csv(results / "faces/deepfake-detection-faces-part-0-0.report.csv", keep_default_na=False)
    status = dict(zip(report["filename"], report["status"]))
    assert status.pop("broken.mp4") == "undecodable"
    assert set(status.values()) == {"ok"}
    log = (results / "logs/extract_faces/0.log").read_text()
    assert "faces dfdc_train_part_0.zip" in log and "face crops" in log  # progress and summary in the job's log
    assert (results / "benchmarks/extract_faces/0.tsv").exists()

    videos_table = pd.read_parquet(results / "manifests/videos.parquet")
    assert set(videos_table["batch"]) == {"0-0"}
    cleaned = pd.read_parquet(results / "clean/videos.parquet").set_index("video_id")
    assert cleaned.loc["broken", "drop_reason"] == "too_few_frames"
    assert int(cleaned["keep"].sum()) == 6

    sets = {name: pd.read_parquet(results / f"splits/{name}.parquet") for name in ("train", "validation", "test")}
    assert all(sorted(table["label"]) == [0, 1] for table in sets.values())
    metrics = json.loads((results / "eval/tiny/metrics.json").read_text())
    assert metrics["model"] == "tiny"
    comparison = pd.read_csv(results / "report/comparison.csv")
    assert "tiny" in comparison.to_string()


@pytest.mark.slow
def test_predict_on_the_raw_mp4s_gives_the_evaluation_scores(finished, tmp_path):
    """`dfdetect predict` on a test video's mp4 extracts, selects and scores as the workflow did."""
    from dfdetect.evaluation import predict

    workdir, config = finished
    results = workdir / "results"
    evaluated = pd.read_parquet(results / "eval/tiny/predictions.parquet")
    clips, _ = raw_part_videos()
    mp4s = []
    for video_id in evaluated["video_id"]:
        mp4s.append(tmp_path / f"{video_id}.mp4")
        mp4s[-1].write_bytes(clips[f"{video_id}.mp4"])
    out = tmp_path / "scores.csv"
    argv = [
        *map(str, mp4s),
        "--model",
        str(results / "models/tiny/model.keras"),
        "--config",
        str(config),
        "--out",
        str(out),
    ]
    assert predict.main(argv) == 0
    scores = pd.read_csv(out, keep_default_na=False)
    assert list(scores["status"]) == ["ok"] * len(mp4s)
    # predict applies the model's calibration (calibration.json beside it), as evaluation's calibrated score
    assert scores["label"].tolist() == pytest.approx(evaluated["p_fake_calibrated"].tolist(), abs=2e-6)


@pytest.mark.slow
def test_changed_face_settings_rerun_extraction_and_resources_do_not(finished):
    workdir, _ = finished
    more_resources = {"crop_size": 64, "batch_size": 16, "resources": {"threads": 1, "mem_mb": 500}}
    unchanged = faces_config(workdir, "resources.yaml", faces=more_resources)
    assert planned_jobs(snakemake(workdir, unchanged, "-n").stdout) == {}
    stricter = faces_config(workdir, "threshold.yaml", faces={"crop_size": 64, "batch_size": 16, "threshold": 0.95})
    jobs = planned_jobs(snakemake(workdir, stricter, "-n").stdout)
    assert jobs["extract_faces"] == 1 and jobs["ingest"] == 1 and jobs["train"] == 1


# ---------------------------------------------------------------- DAG only (dry runs)


def write_placeholder_parts(folder: Path, numbers: tuple[int, ...]) -> None:
    """Raw parts for dry runs: Snakemake plans from the names and never opens them."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in numbers:
        videos.write_raw_part(folder / f"dfdc_train_part_{number}.zip", {}, {})


def test_each_raw_part_is_one_extract_faces_job_next_to_downloaded_batches(tmp_path):
    write_placeholder_parts(tmp_path / "raw_videos", (0, 3))
    write_face_batch(tmp_path / "raw" / "deepfake-detection-faces-part-1-0.zip", family_batch("x", 1, 1, range(3)))
    done = snakemake(tmp_path, faces_config(tmp_path), "results/manifests/videos.parquet", "-n")
    output = done.stdout + done.stderr
    assert planned_jobs(output) == {"extract_faces": 2, "ingest": 3, "manifest": 1}
    assert planned_wildcards(output, "extract_faces", "part") == {"0", "3"}
    assert planned_wildcards(output, "ingest") == {"0-0", "1-0", "3-0"}
    assert "raw_videos/dfdc_train_part_3.zip" in output  # the job's input
    assert not (tmp_path / "results").exists()


def test_raw_videos_alone_need_no_raw_dir(tmp_path):
    write_placeholder_parts(tmp_path / "raw_videos", (2,))
    done = snakemake(tmp_path, faces_config(tmp_path, raw_dir=str(tmp_path / "absent")), "-n")
    jobs = planned_jobs(done.stdout)
    assert jobs["extract_faces"] == 1 and jobs["evaluate"] == 1 and jobs["report"] == 1


def test_a_batch_id_from_both_sources_is_a_config_error(tmp_path):
    write_placeholder_parts(tmp_path / "raw_videos", (1,))
    write_face_batch(tmp_path / "raw" / "deepfake-detection-faces-part-1-0.zip", family_batch("x", 1, 1, range(3)))
    done = snakemake(tmp_path, faces_config(tmp_path), "-n", check=False)
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "batch 1-0 comes from both" in message and "results/faces/deepfake-detection-faces-part-1-0.zip" in message


def test_a_raw_video_dir_without_parts_is_a_config_error(tmp_path):
    (tmp_path / "raw_videos").mkdir()
    done = snakemake(tmp_path, faces_config(tmp_path), "-n", check=False)
    assert done.returncode != 0
    assert "config key 'raw_video_dir'" in done.stdout + done.stderr
