"""Ingest: manifests from a face batch's zip, and every kind of bad input."""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest

from dfdetect.data.facebatch import FaceBatchError, is_unsafe_member, parse_face_member, read_metadata
from dfdetect.data.ingest import combine_video_tables, ingest_batch, write_batch_manifest
from dfdetect.layout import batch_id
from dfdetect.testkit.batches import Video, write_face_batch


def test_member_names_parse_numerically():
    assert parse_face_member("abc/12.png").frame_index == 12
    assert parse_face_member("abc/12_2.png").face_index == 2
    assert parse_face_member("abc/7.png").face_index == 1
    assert parse_face_member("abc/12.jpg") is None
    assert parse_face_member("abc/x12.png") is None
    assert parse_face_member("abc/12_1.png") is None
    assert parse_face_member("nested/abc/12.png") is None


@pytest.mark.parametrize("name", ["../evil/1.png", "/etc/1.png", "a/../../1.png", "C:/x/1.png", "a\\1.png"])
def test_unsafe_member_names(name):
    assert is_unsafe_member(name)


def test_batch_id_from_file_name():
    assert batch_id("/x/deepfake-detection-faces-part-12-3.zip") == "12-3"
    with pytest.raises(ValueError, match="not a face-batch file name"):
        batch_id("faces-12.zip")


def test_ingest_tables(tmp_path):
    videos = [
        Video("real1", "REAL", None, [2, 0, 1, 10], extra_faces={1: 2, 10: 3}),
        Video("fake1", "FAKE", "real1", [0, 1]),
        Video("fake2", "FAKE", "absentoriginal", [5]),
        Video("nofolder", "FAKE", "real1", folder=False),
    ]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos)
    manifest = ingest_batch(zip_path, "0-0")

    frames = manifest.frames
    assert list(frames.columns) == ["batch", "video_id", "frame_index", "face_index", "member", "size"]
    real_frames = frames[frames.video_id == "real1"]
    assert real_frames["frame_index"].tolist() == [0, 1, 1, 2, 10, 10, 10]  # numeric order, extra faces after
    assert real_frames["face_index"].tolist() == [1, 1, 2, 1, 1, 2, 3]
    assert (frames["size"] > 0).all()
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.getinfo("real1/10_3.png").file_size == int(
            frames.loc[frames.member == "real1/10_3.png", "size"].iloc[0]
        )

    table = manifest.videos.set_index("video_id")
    assert table.loc["real1", "n_frames"] == 7
    assert table.loc["real1", "n_multi_face_frames"] == 2
    assert table.loc["real1", "family"] == "real1" and pd.isna(table.loc["real1", "original"])
    assert table.loc["fake1", "label"] == 1 and table.loc["fake1", "family"] == "real1"
    assert table.loc["fake2", "family"] == "absentoriginal"  # family keyed on original even when absent
    assert table.loc["nofolder", "n_frames"] == 0 and not table.loc["nofolder", "has_folder"]
    assert table.loc["real1", "label"] == 0 and table.loc["real1", "filename"] == "real1.mp4"
    assert table["batch"].eq("0-0").all()
    assert manifest.skipped.empty


def test_windows_line_endings_and_bom(tmp_path):
    videos = [Video("a", "REAL", None, [0]), Video("b", "FAKE", "a", [0])]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, line_ending="\r\n")
    table = ingest_batch(zip_path, "0-0").videos
    assert table["label"].tolist() == [0, 1]
    assert table["original"].tolist()[1] == "a"  # no stray '\r' in the last column
    metadata = read_metadata(b"\xef\xbb\xbffilename,split,original,label\r\nx.mp4,train,,REAL\r\n", "m")
    assert metadata["video_id"].tolist() == ["x"]


def test_bad_label_names_batch_and_row(tmp_path):
    videos = [Video("a", "REAL", None, [0]), Video("b", "MAYBE", None, [0])]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-4-1.zip", videos)
    with pytest.raises(FaceBatchError) as error:
        ingest_batch(zip_path, "4-1")
    assert "part-4-1.zip" in str(error.value) and "row 2" in str(error.value) and "MAYBE" in str(error.value)


def test_missing_metadata(tmp_path):
    zip_path = write_face_batch(
        tmp_path / "deepfake-detection-faces-part-0-0.zip", [Video("a", frames=[0])], with_metadata=False
    )
    with pytest.raises(FaceBatchError, match="part-0-0.zip: no metadata.csv"):
        ingest_batch(zip_path, "0-0")


def test_truncated_zip_names_the_file(tmp_path):
    good = write_face_batch(tmp_path / "good.zip", [Video("a", frames=range(20))])
    truncated = tmp_path / "deepfake-detection-faces-part-0-0.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FaceBatchError, match="part-0-0.zip: not a readable zip"):
        ingest_batch(truncated, "0-0")
    garbage = tmp_path / "deepfake-detection-faces-part-0-1.zip"
    garbage.write_bytes(b"this is not a zip at all")
    with pytest.raises(FaceBatchError, match="part-0-1.zip"):
        ingest_batch(garbage, "0-1")


def test_unlisted_folder_unsafe_and_foreign_members_are_skipped(tmp_path, caplog):
    videos = [Video("a", frames=[0, 1]), Video("ghost", frames=[0, 1, 2], listed=False)]
    extra = {"../escape/1.png": b"x", "/abs/1.png": b"x", "a/notes.txt": b"x", "a/1.jpg": b"x", "readme.md": b"x"}
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, extra_members=extra)
    with caplog.at_level("WARNING"):
        manifest = ingest_batch(zip_path, "0-0")
    assert manifest.videos["video_id"].tolist() == ["a"]
    assert set(manifest.frames["video_id"]) == {"a"}
    reasons = manifest.skipped.set_index("member")["reason"].to_dict()
    assert reasons["../escape/1.png"] == "unsafe_path" and reasons["/abs/1.png"] == "unsafe_path"
    assert reasons["a/notes.txt"] == "not_a_face_image" and reasons["readme.md"] == "not_a_face_image"
    assert [reasons[f"ghost/{n}.png"] for n in range(3)] == ["unlisted_folder"] * 3
    assert "ghost/" in caplog.text and "../escape/1.png" in caplog.text


def test_many_unsafe_members_are_one_warning_and_each_a_skipped_row(tmp_path, caplog):
    extra = {f"../escape{number}/1.png": b"x" for number in range(60)}
    videos = [Video("a", frames=[0, 1])]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, extra_members=extra)
    with caplog.at_level("WARNING"):
        manifest = ingest_batch(zip_path, "0-0")
    assert (manifest.skipped["reason"] == "unsafe_path").sum() == 60
    (line,) = [record.getMessage() for record in caplog.records]
    assert "ignoring 60 member(s), unsafe_path (absolute path or '..'): " in line
    assert "'../escape0/1.png', '../escape1/1.png', '../escape2/1.png' and 57 more" in line


def test_duplicate_video_within_metadata(tmp_path):
    videos = [Video("a", frames=[0]), Video("a", frames=[0], folder=False)]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos)
    with pytest.raises(FaceBatchError, match="row 2: video a is listed twice"):
        ingest_batch(zip_path, "0-0")


def test_same_video_in_two_batches(tmp_path):
    paths = []
    for batch in ("0-0", "0-1"):
        zip_path = write_face_batch(
            tmp_path / f"deepfake-detection-faces-part-{batch}.zip",
            [Video("dup", frames=[0]), Video(f"u{batch}", frames=[0])],
        )
        manifest = ingest_batch(zip_path, batch)
        paths.append(tmp_path / f"{batch}.videos.parquet")
        write_batch_manifest(
            manifest, tmp_path / f"{batch}.frames.parquet", paths[-1], tmp_path / f"{batch}.skipped.parquet"
        )
    with pytest.raises(FaceBatchError, match="video dup appears in batches 0-0 and 0-1"):
        combine_video_tables(paths)
    assert len(combine_video_tables(paths[:1])) == 2


def test_ingest_does_not_modify_the_zip(tmp_path):
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", [Video("a", frames=range(5))])
    before = (zip_path.read_bytes(), zip_path.stat().st_mtime_ns)
    ingest_batch(zip_path, "0-0")
    assert (zip_path.read_bytes(), zip_path.stat().st_mtime_ns) == before
