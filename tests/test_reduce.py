"""Reduction: one single-face frame per slot, numeric frame order, bounds and cleaning."""

from __future__ import annotations

from dfdetect.data.clean import clean_videos
from dfdetect.data.reduce import combine_selections, select_batch_frames, select_frames
from dfdetect.testkit.batches import Video
from tests.helpers.prepared import manifest_for


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
