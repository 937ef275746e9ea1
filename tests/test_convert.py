"""`dfdetect raw-part`: a folder of videos + labels CSV -> a raw part that extract_faces reads."""

from __future__ import annotations

import json
import zipfile

import pytest

from dfdetect.cli import main as cli
from dfdetect.data.convert import videos_to_raw_part
from dfdetect.data.facebatch import FaceBatchError
from dfdetect.data.faces.extract import read_raw_metadata


def videos_folder(tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).write_bytes(b"not really a video: " + name.encode())
    return folder


def test_a_raw_part_holds_the_videos_and_a_metadata_json_extract_faces_reads(tmp_path):
    folder = videos_folder(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label,original\na.mp4,REAL,\nb.mp4,fake,a.mp4\n")
    out = videos_to_raw_part(folder, labels, tmp_path / "parts" / "dfdc_train_part_3.zip")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["a.mp4", "b.mp4", "metadata.json"]
        assert archive.read("b.mp4") == (folder / "b.mp4").read_bytes()
        entries = read_raw_metadata(archive.read("metadata.json"), str(out))
    assert [(e.filename, e.label, e.original) for e in entries] == [("a.mp4", "REAL", None), ("b.mp4", "FAKE", "a.mp4")]
    assert sorted(path.name for path in folder.iterdir()) == ["a.mp4", "b.mp4"]  # copied, not moved


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("filename,label\na.mp4,MAYBE\n", "line 2: label 'MAYBE'"),
        ("filename,label\na.mp4,REAL\nmissing.mp4,FAKE\n", "line 3: .*missing.mp4 does not exist"),
        ("filename,label\na.mp4,REAL\na.mp4,REAL\n", "line 3: a.mp4 is listed twice"),
        ("name,label\na.mp4,REAL\n", "no filename column"),
    ],
)
def test_bad_labels_name_the_file_and_line(tmp_path, csv, message):
    folder = videos_folder(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text(csv)
    with pytest.raises(FaceBatchError, match=message):
        videos_to_raw_part(folder, labels, tmp_path / "dfdc_train_part_1.zip")
    assert not (tmp_path / "dfdc_train_part_1.zip").exists()


def test_the_cli_names_where_to_point_the_config(tmp_path, capsys):
    folder = videos_folder(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("filename,label\na.mp4,REAL\n")
    assert (
        cli(
            [
                "raw-part",
                "--videos",
                str(folder),
                "--labels",
                str(labels),
                "--out",
                str(tmp_path / "dfdc_train_part_0.zip"),
            ]
        )
        == 0
    )
    assert "raw_video_dir" in capsys.readouterr().out
    assert (
        json.loads(zipfile.ZipFile(tmp_path / "dfdc_train_part_0.zip").read("metadata.json"))["a.mp4"]["label"]
        == "REAL"
    )
