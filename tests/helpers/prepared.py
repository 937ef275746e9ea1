"""Tables and batches shared by the preparation tests (clean, reduce, store, splits)."""

from __future__ import annotations

import pandas as pd

from dfdetect.data.ingest import ingest_batch
from dfdetect.testkit.batches import write_face_batch


def video_rows(rows):
    """rows: (video_id, label, original, n_frames)."""
    table = pd.DataFrame(rows, columns=["video_id", "label", "original", "n_frames"])
    table["batch"] = "0-0"
    table["original"] = table["original"].astype(object).where(table["original"].notna(), None)
    table["family"] = [o if label == 1 and o else v for v, label, o in zip(table.video_id, table.label, table.original)]
    return table


def manifest_for(tmp_path, videos, **kwargs):
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, **kwargs)
    return zip_path, ingest_batch(zip_path, "0-0")
