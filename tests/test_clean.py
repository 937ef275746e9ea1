"""Cleaning: frame-count bounds, propagation to the fakes of dropped originals, the summary."""

from __future__ import annotations

import json

import pandas as pd

from dfdetect.data.clean import clean_summary, clean_videos
from tests.helpers.prepared import video_rows


def test_clean_bounds_are_inclusive():
    table = video_rows([("a", 0, None, 199), ("b", 0, None, 200), ("c", 0, None, 400), ("d", 0, None, 401)])
    cleaned = clean_videos(table, 200, 400).set_index("video_id")
    assert cleaned["keep"].to_dict() == {"a": False, "b": True, "c": True, "d": False}
    assert cleaned.loc["a", "drop_reason"] == "too_few_frames"
    assert cleaned.loc["d", "drop_reason"] == "too_many_frames"
    assert pd.isna(cleaned.loc["b", "drop_reason"])


def test_clean_propagates_to_fakes_of_dropped_originals():
    table = video_rows(
        [
            ("orig_short", 0, None, 150),  # dropped: too few
            ("fake_of_short", 1, "orig_short", 300),  # dropped with its original
            ("fake_short_too", 1, "orig_short", 100),  # its own reason wins
            ("orig_ok", 0, None, 300),
            ("fake_of_ok", 1, "orig_ok", 300),
            ("fake_of_absent", 1, "not_in_data", 300),  # original absent: judged on its own frames
            ("no_folder", 1, "orig_ok", 0),  # metadata row without folder
            ("orig_two_actors", 0, None, 600),
            ("fake_two_actors", 1, "orig_two_actors", 390),
        ]
    )
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
