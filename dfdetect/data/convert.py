"""Another dataset into dfdetect's input layout: a folder of videos + a labels CSV -> a raw part.

Celeb-DF, FaceForensics++ or your own recordings come as video files and a list of labels. This
packs them into a raw DFDC part (``dfdc_train_part_N.zip``: the mp4 files and ``metadata.json``
mapping ``name.mp4`` to ``{label, split, original}``), which the workflow's ``extract_faces``
rule turns into a face batch with the same MTCNN settings as every other part. Point
``raw_video_dir`` (training data) or ``evaluation.sets.NAME.raw_video_dir`` (an evaluation set)
at the folder that holds it.

    dfdetect raw-part --videos celebdf/videos --labels celebdf/labels.csv --out celebdf_parts/dfdc_train_part_0.zip

The labels CSV has a header with ``filename`` and ``label`` (REAL or FAKE) and, optionally,
``original`` (the source video of a FAKE, for grouping) and ``split``. The videos are copied,
never moved; the zip is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Sequence

import pandas as pd

from dfdetect.atomic import atomic_path
from dfdetect.data.facebatch import LABELS, FaceBatchError

RAW_PART_NAME = "dfdc_train_part_{number}.zip"


def read_labels(labels_csv: str | Path, videos_dir: str | Path) -> dict[str, dict[str, str | None]]:
    """``metadata.json``'s content from the labels CSV; errors name the file and the row."""
    try:
        table = pd.read_csv(labels_csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise FaceBatchError(f"{labels_csv}: not a readable CSV ({error})") from error
    missing = [column for column in ("filename", "label") if column not in table.columns]
    if missing:
        raise FaceBatchError(f"{labels_csv}: no {' or '.join(missing)} column (have: {', '.join(table.columns)})")
    metadata: dict[str, dict[str, str | None]] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):  # line 1 is the header
        filename, label = row["filename"].strip(), row["label"].strip().upper()
        where = f"{labels_csv}, line {line}"
        if label not in LABELS:
            raise FaceBatchError(f"{where}: label {row['label']!r} is neither REAL nor FAKE")
        if not filename.lower().endswith(".mp4") or "/" in filename:
            raise FaceBatchError(f"{where}: {filename!r} is not a plain .mp4 file name")
        if filename in metadata:
            raise FaceBatchError(f"{where}: {filename} is listed twice")
        if not (Path(videos_dir) / filename).is_file():
            raise FaceBatchError(f"{where}: {Path(videos_dir) / filename} does not exist")
        original = (row.get("original") or "").strip() or None
        metadata[filename] = {
            "label": label,
            "split": (row.get("split") or "train").strip(),
            "original": original if label == "FAKE" else None,
        }
    if not metadata:
        raise FaceBatchError(f"{labels_csv}: no rows")
    return metadata


def videos_to_raw_part(videos_dir: str | Path, labels_csv: str | Path, out_zip: str | Path) -> Path:
    """Write the raw part ``out_zip`` from the videos the labels CSV lists; returns its path."""
    out_zip = Path(out_zip)
    if not out_zip.name.startswith("dfdc_train_part_") or out_zip.suffix != ".zip":
        raise ValueError(f"{out_zip}: name it {RAW_PART_NAME.format(number='N')} (N a number: its batch id is N-0)")
    metadata = read_labels(labels_csv, videos_dir)
    with atomic_path(out_zip) as temporary, zipfile.ZipFile(temporary, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata, indent=1, sort_keys=True))
        for filename in metadata:  # mp4s are compressed already: stored as they are
            archive.write(Path(videos_dir) / filename, filename, compress_type=zipfile.ZIP_STORED)
    return out_zip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfdetect raw-part", description=__doc__.splitlines()[0])
    parser.add_argument("--videos", required=True, help="folder holding the .mp4 files the CSV lists")
    parser.add_argument("--labels", required=True, help="CSV with filename,label[,original][,split]")
    parser.add_argument("--out", required=True, help="the raw part to write, e.g. parts/dfdc_train_part_0.zip")
    args = parser.parse_args(argv)
    try:
        out = videos_to_raw_part(args.videos, args.labels, args.out)
    except (FaceBatchError, ValueError) as error:
        parser.error(str(error))
    print(f"wrote {out}: point raw_video_dir (or evaluation.sets.NAME.raw_video_dir) at {out.parent}")
    return 0
