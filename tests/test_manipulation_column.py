"""The optional ``manipulation`` column: read from metadata.csv, kept by ingest, carried by clean and split."""

from __future__ import annotations

import pandas as pd
import pytest

from dfdetect.data.clean import clean_videos
from dfdetect.data.facebatch import FaceBatchError, read_metadata
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.splits import packable_videos, split_videos
from dfdetect.data.store import STATUS_OK
from dfdetect.testkit.batches import Video, metadata_csv, write_face_batch

CSV = b"""filename,split,original,label,manipulation
real1.mp4,train,,REAL,
fake1.mp4,train,real1.mp4,FAKE,swap
fake2.mp4,train,real1.mp4,FAKE,reenact
fake3.mp4,train,gone.mp4,FAKE,
"""


def test_read_metadata_keeps_the_column_with_none_where_empty():
    table = read_metadata(CSV, "m.csv")
    assert table["manipulation"].tolist() == [None, "swap", "reenact", None]
    assert (
        "manipulation"
        not in read_metadata(
            CSV.replace(b",manipulation", b"").replace(b",\n", b"\n").replace(b",swap", b"").replace(b",reenact", b""),
            "m.csv",
        ).columns
    )


def test_a_real_video_with_a_manipulation_is_an_error_naming_the_row():
    bad = CSV.replace(b"real1.mp4,train,,REAL,", b"real1.mp4,train,,REAL,swap")
    with pytest.raises(FaceBatchError, match=r"m.csv: metadata.csv row 1 \(real1.mp4\).*REAL.*'swap'"):
        read_metadata(bad, "m.csv")


def batch(tmp_path, with_column: bool):
    videos = [
        Video("real1", "REAL", None, range(250)),
        Video("fake1", "FAKE", "real1", range(250)),
        Video("fake2", "FAKE", "real1", range(250)),
        Video("fake3", "FAKE", "gone", range(250)),
        Video("real2", "REAL", None, range(250)),
        Video("fake4", "FAKE", "real2", range(250)),
    ]
    more = b"real2.mp4,train,,REAL,\nfake4.mp4,train,real2.mp4,FAKE,colour\n"
    text = CSV + more if with_column else metadata_csv(videos)
    path = write_face_batch(
        tmp_path / "deepfake-detection-faces-part-0-0.zip",
        videos,
        image=b"png",
        with_metadata=False,
        extra_members={"metadata.csv": text},
    )
    return ingest_batch(path, "0-0").videos


def test_ingest_clean_and_split_carry_the_column_when_present(tmp_path):
    videos = batch(tmp_path, with_column=True)
    assert list(videos.columns[:7]) == ["batch", "video_id", "filename", "label", "original", "family", "manipulation"]
    cleaned = clean_videos(videos, 200, 400)
    assert dict(zip(cleaned["video_id"], cleaned["manipulation"])) == {
        "real1": None,
        "fake1": "swap",
        "fake2": "reenact",
        "fake3": None,
        "real2": None,
        "fake4": "colour",
    }
    store_index = pd.DataFrame({"video_id": cleaned["video_id"], "status": STATUS_OK})
    packable = packable_videos(cleaned, store_index)
    assert list(packable.columns) == ["video_id", "label", "family", "manipulation"]
    families = pd.DataFrame(
        [
            (f"{kind}{n}", label, f"family{n}", kind if label else None)
            for n in range(12)
            for kind, label in (("real", 0), ("swap", 1), ("colour", 1))
        ],
        columns=["video_id", "label", "family", "manipulation"],
    )
    sets = split_videos(families, test=0.25, validation=0.25, seed=1)
    for table in sets.values():
        assert list(table.columns) == ["video_id", "label", "family", "manipulation"]
        assert (table["manipulation"].isna() == (table["label"] == 0)).all()
    # the column survives Parquet (what the rules write between them)
    path = tmp_path / "clean.parquet"
    cleaned.to_parquet(path, index=False)
    assert pd.read_parquet(path)["manipulation"].fillna("").tolist() == cleaned["manipulation"].fillna("").tolist()


def test_without_the_column_nothing_changes(tmp_path):
    videos = batch(tmp_path, with_column=False)
    assert "manipulation" not in videos.columns
    cleaned = clean_videos(videos, 200, 400)
    assert "manipulation" not in cleaned.columns
    store_index = pd.DataFrame({"video_id": cleaned["video_id"], "status": STATUS_OK})
    assert list(packable_videos(cleaned, store_index).columns) == ["video_id", "label", "family"]
