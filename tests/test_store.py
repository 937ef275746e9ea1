"""The frame store: packed pixels straight from the zip, resizing, unreadable frames."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from dfdetect.data.clean import clean_videos
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.splits import packable_videos
from dfdetect.data.store import FrameStore, StorePaths, pack_batch
from dfdetect.testkit.batches import Video, face_pixels, video_code
from tests.helpers.prepared import manifest_for


def packed(tmp_path, videos, image_size=16, crop=16, step=10, count=4, extra_members=None):
    zip_path, manifest = manifest_for(tmp_path, videos, size=crop, extra_members=extra_members)
    selection = select_frames(manifest.frames, manifest.videos["video_id"], step, count)
    index = pack_batch(
        zip_path, selection, "0-0", StorePaths.for_prefix(tmp_path / "store" / "0-0"), image_size, count, progress=False
    )
    return zip_path, selection, index, FrameStore([StorePaths.for_prefix(tmp_path / "store" / "0-0")])


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
        FrameStore([StorePaths.for_prefix(tmp_path / "store" / "9-9")])


def test_pack_reads_straight_from_the_zip(tmp_path):
    zip_path, _, _, _ = packed(tmp_path, [Video("v", frames=[0, 10])])
    assert sorted(path.name for path in tmp_path.iterdir()) == [zip_path.name, "store"]  # nothing extracted
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
