"""Preparation stage: clean, reduce, pack, split, on crafted batches whose pixels say where they came from."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from dfdetect.clean import clean_videos, clean_summary
from dfdetect.ingest import ingest_batch
from dfdetect.reduce import combine_selections, select_batch_frames, select_frames
from dfdetect.splits import SplitError, packable_videos, split_videos
from dfdetect.store import FrameStore, pack_batch
from tests.helpers.batches import Video, face_pixels, video_code, write_face_batch


def video_rows(rows):
    """rows: (video_id, label, original, n_frames)."""
    table = pd.DataFrame(rows, columns=["video_id", "label", "original", "n_frames"])
    table["batch"] = "0-0"
    table["original"] = table["original"].astype(object).where(table["original"].notna(), None)
    table["family"] = [o if l == 1 and o else v for v, l, o in zip(table.video_id, table.label, table.original)]
    return table


# --- clean ---------------------------------------------------------------------------------------

def test_clean_bounds_are_inclusive():
    table = video_rows([("a", 0, None, 199), ("b", 0, None, 200), ("c", 0, None, 400), ("d", 0, None, 401)])
    cleaned = clean_videos(table, 200, 400).set_index("video_id")
    assert cleaned["keep"].to_dict() == {"a": False, "b": True, "c": True, "d": False}
    assert cleaned.loc["a", "drop_reason"] == "too_few_frames"
    assert cleaned.loc["d", "drop_reason"] == "too_many_frames"
    assert pd.isna(cleaned.loc["b", "drop_reason"])


def test_clean_propagates_to_fakes_of_dropped_originals():
    table = video_rows([
        ("orig_short", 0, None, 150),           # dropped: too few
        ("fake_of_short", 1, "orig_short", 300),  # dropped with its original
        ("fake_short_too", 1, "orig_short", 100),  # its own reason wins
        ("orig_ok", 0, None, 300),
        ("fake_of_ok", 1, "orig_ok", 300),
        ("fake_of_absent", 1, "not_in_data", 300),  # original absent: judged on its own frames
        ("no_folder", 1, "orig_ok", 0),           # metadata row without folder
        ("orig_two_actors", 0, None, 600),
        ("fake_two_actors", 1, "orig_two_actors", 390),
    ])
    cleaned = clean_videos(table, 200, 400).set_index("video_id")
    reasons = cleaned["drop_reason"].to_dict()
    assert reasons["fake_of_short"] == "original_dropped"
    assert reasons["fake_short_too"] == "too_few_frames"
    assert pd.isna(reasons["fake_of_ok"]) and pd.isna(reasons["fake_of_absent"])
    assert reasons["no_folder"] == "too_few_frames"
    assert reasons["fake_two_actors"] == "original_dropped"
    summary = clean_summary(cleaned.reset_index())
    assert summary["dropped"] == {"too_few_frames": 3, "too_many_frames": 1, "original_dropped": 2}
    assert summary["before"]["videos"] == 9 and summary["after"]["videos"] == 3
    assert summary["after"]["fake"] == 2 and summary["after"]["real"] == 1
    json.dumps(summary)  # plain JSON types


# --- reduce --------------------------------------------------------------------------------------

def manifest_for(tmp_path, videos, **kwargs):
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, **kwargs)
    return zip_path, ingest_batch(zip_path, "0-0")


def test_reduce_takes_the_first_single_face_frame_per_slot(tmp_path):
    frames = [13, 2, 0, 1, 25, 11, 12, 10, 44, 41, 300, 59]  # unsorted on purpose
    _, manifest = manifest_for(tmp_path, [Video("v", frames=frames, extra_faces={0: 2, 10: 2, 11: 3})])
    selection = select_frames(manifest.frames, ["v"], step=10, count=5)
    chosen = dict(zip(selection["slot"], selection["frame_index"]))
    # slot 0: 0 has a second face -> 1; slot 1: 10 and 11 have extra faces -> 12; slot 2: 25;
    # slot 3: a gap (no frame 30-39) stays empty; slot 4: 41; 59 and 300 fall beyond 5 slots.
    assert chosen == {0: 1, 1: 12, 2: 25, 4: 41}
    assert selection["member"].tolist() == ["v/1.png", "v/12.png", "v/25.png", "v/41.png"]


def test_reduce_numeric_not_lexical_order(tmp_path):
    _, manifest = manifest_for(tmp_path, [Video("v", frames=[100, 19, 2, 10, 9])])
    selection = select_frames(manifest.frames, ["v"], step=10, count=11)
    assert dict(zip(selection["slot"], selection["frame_index"])) == {0: 2, 1: 10, 10: 100}


def test_batch_selection_respects_bounds_and_combination_respects_clean(tmp_path):
    videos = [Video("short", frames=range(5)), Video("ok", frames=range(30)), Video("fake", "FAKE", "short", range(30))]
    _, manifest = manifest_for(tmp_path, videos)
    selection = select_batch_frames(manifest.frames, manifest.videos, step=10, count=3, min_frames=10, max_frames=100)
    assert set(selection["video_id"]) == {"ok", "fake"}  # per-video bounds only
    cleaned = clean_videos(manifest.videos, 10, 100)
    reduced = combine_selections([selection], cleaned)
    assert set(reduced["video_id"]) == {"ok"}  # the fake goes with its dropped original


# --- pack ----------------------------------------------------------------------------------------

def packed(tmp_path, videos, image_size=16, crop=16, step=10, count=4, extra_members=None):
    zip_path, manifest = manifest_for(tmp_path, videos, size=crop, extra_members=extra_members)
    selection = select_frames(manifest.frames, manifest.videos["video_id"], step, count)
    index = pack_batch(zip_path, selection, "0-0", tmp_path / "store" / "0-0", image_size, count, progress=False)
    return zip_path, selection, index, FrameStore([tmp_path / "store" / "0-0"])


def test_pack_stores_the_selected_pixels(tmp_path):
    videos = [Video("alpha", frames=[0, 11, 12, 35]), Video("beta", frames=[5, 15, 25, 39], extra_faces={5: 2})]
    _, _, index, store = packed(tmp_path, videos)
    assert index["status"].tolist() == ["ok", "ok"]
    assert index["n_filled"].tolist() == [3, 3]
    frames, mask = store.clip("alpha")
    assert mask.tolist() == [True, True, False, True]
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[1], face_pixels("alpha", 11))
    np.testing.assert_array_equal(frames[3], face_pixels("alpha", 35))
    assert not frames[2].any()  # empty slot stays zeros
    frames, mask = store.clip("beta")
    assert mask.tolist() == [False, True, True, True]  # 5 has a second face
    assert frames[2, 0, 0].tolist() == [25, 0, video_code("beta")]
    assert isinstance(store.frames["0-0"], np.memmap)  # mapped, not loaded


def test_pack_resizes_when_crops_differ(tmp_path):
    _, _, _, store = packed(tmp_path, [Video("v", frames=[0, 10])], image_size=8, crop=20)
    frames, _ = store.clip("v")
    assert frames.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(frames[1], face_pixels("v", 10, size=8))  # a flat crop stays flat


def test_unreadable_frame_excludes_its_video_only(tmp_path):
    videos = [Video("good", frames=[0, 10]), Video("bad", frames=[0])]
    broken = {"bad/10.png": b"\x89PNG\r\n\x1a\n this is not really a png"}
    zip_path, _, index, store = packed(tmp_path, videos, extra_members=broken)
    status = index.set_index("video_id")
    assert status.loc["good", "status"] == "ok"
    assert status.loc["bad", "status"] == "unreadable_frame"
    assert "bad/10.png" in status.loc["bad", "reason"]
    cleaned = clean_videos(ingest_batch(zip_path, "0-0").videos, 0, 100)
    assert set(packable_videos(cleaned, store.index)["video_id"]) == {"good"}


def test_store_names_missing_videos(tmp_path):
    _, _, _, store = packed(tmp_path, [Video("v", frames=[0])])
    with pytest.raises(KeyError, match="not in the frame store: ghost"):
        store.locate(["v", "ghost"])
    with pytest.raises(FileNotFoundError, match="missing"):
        FrameStore([tmp_path / "store" / "9-9"])


def test_pack_reads_straight_from_the_zip(tmp_path):
    zip_path, _, _, _ = packed(tmp_path, [Video("v", frames=[0, 10])])
    assert sorted(path.name for path in tmp_path.iterdir()) == [zip_path.name, "store"]  # nothing extracted
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None


# --- split ---------------------------------------------------------------------------------------

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
