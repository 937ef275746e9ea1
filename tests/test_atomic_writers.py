"""Every output writer goes through a unique temporary name: a job killed mid-write (or a second job
writing the same output) never leaves a half-written file under the output's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from dfdetect.data.clean import clean_videos, write_clean
from dfdetect.data.ingest import BatchManifest, write_batch_manifest
from dfdetect.data.splits import write_splits
from dfdetect.evaluation.report import write_report
from dfdetect.evaluation.run_summary import write_run_summary
from dfdetect.figures import new_figure, save_figure


class Crash(Exception):
    """A job dying in the middle of writing a file."""


@pytest.fixture
def crash_mid_write(monkeypatch):
    """Each pandas/matplotlib/pathlib write writes its file, truncates it to half (killed mid-write)
    and raises; returns the paths that were written to."""
    written: list[Path] = []

    def breaking(original):
        def write(self, path, *args, **kwargs):
            original(self, path, *args, **kwargs)
            path = Path(path)
            written.append(path)
            path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)]) if path.is_file() else None
            raise Crash(path)

        return write

    monkeypatch.setattr(pd.DataFrame, "to_parquet", breaking(pd.DataFrame.to_parquet))
    monkeypatch.setattr(pd.DataFrame, "to_csv", breaking(pd.DataFrame.to_csv))
    monkeypatch.setattr(Figure, "savefig", breaking(Figure.savefig))
    original_write_bytes = Path.write_bytes

    def write_bytes(self, data):  # atomic_write_text ends here; the truncation above uses it too
        if self.name.startswith("."):
            original_write_bytes(self, data[: max(1, len(data) // 2)])
            written.append(self)
            raise Crash(self)
        return original_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "write_text", lambda self, text, *a, **k: write_bytes(self, text.encode()))
    return written


def old_files(folder: Path, names: list[str]) -> dict[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {folder / name: f"previous {name}".encode() for name in names}
    for path, content in files.items():
        path.write_bytes(content)
    return files


def assert_untouched(files: dict[Path, bytes], written: list[Path]) -> None:
    assert written, "nothing was written"
    for path in written:
        assert path not in files and path.name.startswith("."), f"{path} written in place"
        assert not path.exists(), f"temporary {path} left behind"
    for path, content in files.items():
        assert path.read_bytes() == content, f"{path} changed by a failed write"


VIDEOS = pd.DataFrame(
    {
        "batch": "0-0",
        "video_id": ["a", "b"],
        "label": [0, 1],
        "original": [None, "a"],
        "family": ["a", "a"],
        "n_frames": [300, 300],
    }
)


@pytest.mark.parametrize("writer", ["ingest", "clean", "splits", "report", "run_summary", "figure"])
def test_a_write_that_dies_leaves_the_previous_output(tmp_path, crash_mid_write, writer):
    folder = tmp_path / writer
    if writer == "ingest":
        files = old_files(folder, ["f.parquet", "v.parquet", "s.parquet"])
        call = lambda: write_batch_manifest(BatchManifest(VIDEOS, VIDEOS, VIDEOS), *files)  # noqa: E731
    elif writer == "clean":
        files = old_files(folder, ["videos.parquet", "summary.json"])
        call = lambda: write_clean(clean_videos(VIDEOS, 10, 400), *files)  # noqa: E731
    elif writer == "splits":
        files = old_files(folder, ["train.parquet", "validation.parquet", "test.parquet", "summary.json"])
        paths = {name: folder / f"{name}.parquet" for name in ("train", "validation", "test")}
        call = lambda: write_splits({name: VIDEOS for name in paths}, paths, folder / "summary.json", 1)  # noqa: E731
    elif writer == "report":
        files = old_files(folder, ["comparison.csv", "comparison.md"])
        call = lambda: write_report(pd.DataFrame({"model": ["m"]}), [], {}, {}, *files)  # noqa: E731
    elif writer == "run_summary":
        files = old_files(folder, ["run_summary.md"])
        summary = {
            "videos_ingested": 1,
            "videos_without_folder": 0,
            "metadata_notes": 0,
            "videos_kept_by_cleaning": 1,
            "videos_dropped": {},
            "videos_unreadable": {},
            "videos_usable": 1,
            "members_skipped": [],
        }
        call = lambda: write_run_summary(summary, *files)  # noqa: E731
    else:
        files = old_files(folder, ["roc.png"])
        figure, axes = new_figure()
        axes.plot(np.arange(3))
        call = lambda: save_figure(figure, *files)  # noqa: E731
    with pytest.raises(Crash):
        call()
    assert_untouched(files, crash_mid_write)
