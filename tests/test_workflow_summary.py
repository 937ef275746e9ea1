"""The end-of-run summary: printed on the console when a run ends, and in the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfdetect.evaluation.run_summary import run_summary, run_summary_markdown
from dfdetect.testkit.batches import Video, family_batch, png_bytes, write_face_batch
from tests.helpers.workflow import snakemake, workflow_config

pytestmark = pytest.mark.workflow


def test_run_summary_counts_each_reason():
    videos = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d"],
            "has_folder": [True, True, True, False],
            "metadata_note": ["", "REAL row names original x.mp4", "", ""],
        }
    )
    cleaned = pd.DataFrame(
        {
            "video_id": ["a", "b", "c", "d"],
            "keep": [True, True, False, False],
            "drop_reason": [None, None, "too_few_frames", "too_few_frames"],
        }
    )
    index = pd.DataFrame({"video_id": ["a", "b"], "status": ["ok", "unreadable_frame"]})
    skipped = pd.DataFrame(
        {
            "member": ["a/0002.png", "x/1.png", "notes.txt"],
            "reason": ["not_a_face_image", "unlisted_folder", "not_a_face_image"],
            "detail": ["non-canonical frame name", "its folder has no metadata.csv row", "other"],
        }
    )
    summary = run_summary(videos, cleaned, [index], [skipped])
    assert summary["videos_ingested"] == 4 and summary["videos_without_folder"] == 1
    assert summary["videos_kept_by_cleaning"] == 2 and summary["videos_dropped"] == {"too_few_frames": 2}
    assert summary["videos_unreadable"] == {"unreadable_frame": 1} and summary["videos_usable"] == 1
    assert summary["metadata_notes"] == 1
    canonical = {"reason": "not_a_face_image", "detail": "non-canonical frame name", "members": 1}
    assert canonical in summary["members_skipped"]
    table = run_summary_markdown(summary)
    assert "| dropped by cleaning: too_few_frames | 2 |" in table
    assert "| not_a_face_image | non-canonical frame name | 1 |" in table


def test_a_run_prints_what_it_dropped_and_skipped(tmp_path):
    videos = family_batch("s", n_families=12, fakes_per_family=2, frames=range(0, 40))
    videos.append(Video("short", "REAL", None, range(0, 5)))  # too few frames: dropped by cleaning
    broken = b"\x89PNG\r\n\x1a\n broken"
    extra = {
        "sreal0/0002.png": png_bytes(np.zeros((16, 16, 3), dtype=np.uint8)),  # skipped: non-canonical
        "sreal1/30.png": broken,
    }  # selected (every 10th frame) but undecodable: excluded when packing
    write_face_batch(
        tmp_path / "raw/deepfake-detection-faces-part-0-0.zip",
        [
            v if v.video_id != "sreal1" else Video("sreal1", "REAL", None, [f for f in range(40) if f != 30])
            for v in videos
        ],
        extra_members=extra,
    )
    config = workflow_config(
        tmp_path,
        image_size=16,
        frames={"min": 20, "max": 100, "step": 10, "count": 4},
        split={"test": 0.25, "validation": 0.25, "seed": 5},
    )
    done = snakemake(tmp_path, config)
    console = done.stderr + done.stdout
    assert "dfdetect end-of-run summary" in console
    for expected in (
        "videos ingested (metadata rows) | 37",
        "dropped by cleaning: too_few_frames | 1",
        "kept, but excluded when packing: unreadable_frame | 1",
        "not_a_face_image | non-canonical frame name | 1",
    ):
        assert expected in console, console[-3000:]
        assert expected in (tmp_path / "results/report/run_summary.md").read_text()
        assert expected in (tmp_path / "results/report/comparison.md").read_text()
    snakemake(tmp_path, config, "--report", "report.html")  # the same table in the Snakemake report
    assert "run_summary.md" in (tmp_path / "report.html").read_text(errors="replace")
