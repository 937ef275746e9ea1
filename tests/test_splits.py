"""Splits: grouped by family, stratified by label, deterministic for a seed."""

from __future__ import annotations

import json

import pytest

from dfdetect.data.clean import clean_videos
from dfdetect.data.splits import SplitError, split_videos
from tests.helpers.prepared import video_rows


@pytest.fixture(scope="module")
def dfdc_sample_videos(root):
    metadata = json.loads((root / "tests/data/dfdc_train_sample_metadata.json").read_text())
    rows = []
    for filename, entry in metadata.items():
        label = 1 if entry["label"] == "FAKE" else 0
        original = entry["original"][:-4] if entry["original"] else None
        rows.append((filename[:-4], label, original if label else None, 300))
    return video_rows(rows)


def test_splits_on_real_dfdc_families(dfdc_sample_videos):
    videos = clean_videos(dfdc_sample_videos, 200, 400)
    sets = split_videos(videos[videos["keep"]], test=0.2, validation=0.2, seed=2006)
    families = {name: set(table["family"]) for name, table in sets.items()}
    assert not families["train"] & families["test"]
    assert not families["train"] & families["validation"]
    assert not families["validation"] & families["test"]
    for table in sets.values():
        assert set(table["label"]) == {0, 1}
        assert list(table.columns) == ["video_id", "label", "family"]
    assert sum(len(table) for table in sets.values()) == len(videos)
    assert 0.15 <= len(sets["test"]) / len(videos) <= 0.25
    assert 0.12 <= len(sets["validation"]) / len(videos) <= 0.2
    # stratified as far as families allow: each set's fake share near the overall 0.81
    for table in sets.values():
        assert abs(table["label"].mean() - videos["label"].mean()) < 0.06
    # every fake's original, where present, sits in the fake's set
    where = {video: name for name, table in sets.items() for video in table["video_id"]}
    for row in videos.itertuples():
        if row.label == 1 and row.original in where:
            assert where[row.original] == where[row.video_id]


def test_splits_are_deterministic_for_a_seed(dfdc_sample_videos):
    first = split_videos(dfdc_sample_videos, 0.2, 0.2, seed=7)
    again = split_videos(dfdc_sample_videos, 0.2, 0.2, seed=7)
    other = split_videos(dfdc_sample_videos, 0.2, 0.2, seed=8)
    assert all(first[name].equals(again[name]) for name in first)
    assert not first["test"]["video_id"].equals(other["test"]["video_id"])


def test_split_fails_clearly_when_a_set_lacks_a_class():
    # One REAL family among fakes of absent originals: at most one set can hold a REAL video.
    videos = video_rows([("r0", 0, None, 300)] + [(f"f{i}", 1, f"absent{i % 6}", 300) for i in range(12)])
    with pytest.raises(SplitError, match="set .* has no REAL video"):
        split_videos(videos, 0.2, 0.2, seed=1)
    with pytest.raises(SplitError, match="only 1 family"):
        split_videos(video_rows([("r0", 0, None, 300), ("f0", 1, "r0", 300)]), 0.2, 0.2, seed=1)
