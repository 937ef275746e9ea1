"""Writing one demo batch zip in the DFDC face-batch format, byte-identical for the same arguments."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dfdetect.atomic import atomic_path
from dfdetect.data.demo.manipulations import MANIPULATORS
from dfdetect.data.demo.plan import BatchPlan, family_rng, plan_batch
from dfdetect.data.demo.render import Track, render_original
from dfdetect.data.demo.spec import DemoBatchSummary, DemoSpec
from dfdetect.data.facebatch import (
    MANIPULATION_COLUMN,
    METADATA_COLUMNS,
    METADATA_MEMBER,
    face_member_name,
    metadata_csv,
    write_member,
)
from dfdetect.data.png import encode_pngs
from dfdetect.layout import BATCH_FILE_PATTERN, batch_id, demo_batch_id


def write_demo_batch(zip_path: str | Path, batch_index: int, spec: DemoSpec) -> DemoBatchSummary:
    """Write demo batch ``batch_index`` to ``zip_path``; byte-identical for the same arguments.

    The zip is written to a temporary file next to the target and renamed into place, so an
    interrupted job leaves no half-written batch.
    """
    started = time.perf_counter()
    target = Path(zip_path)
    batch = demo_batch_id(batch_index)
    if BATCH_FILE_PATTERN.match(target.name) and batch_id(target) != batch:
        raise ValueError(
            f"{target}: batch index {batch_index} is demo batch {batch}, but the file name says {batch_id(target)}"
        )
    plan = plan_batch(batch_index, spec)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temporary, zipfile.ZipFile(temporary, "w", allowZip64=True) as archive:
        metadata = metadata_csv(plan.metadata_rows(), (*METADATA_COLUMNS, MANIPULATION_COLUMN))
        write_member(archive, METADATA_MEMBER, metadata, zipfile.ZIP_DEFLATED)
        n_files = write_families(archive, plan, batch_index, spec)
    return DemoBatchSummary(
        batch=batch,
        path=target,
        n_real=plan.n_real,
        n_fake=plan.n_fake,
        n_absent_originals=plan.n_absent_originals,
        n_files=n_files,
        n_bytes=target.stat().st_size,
        seconds=round(time.perf_counter() - started, 3),
    )


def write_families(archive: zipfile.ZipFile, plan: BatchPlan, batch_index: int, spec: DemoSpec) -> int:
    n_files = 0
    progress_bar = tqdm(total=plan.n_real + plan.n_fake, desc=f"demo batch {plan.batch}", unit="video", mininterval=1.0)
    with progress_bar as progress:
        for family in plan.families:
            tracks = render_original(family.scene, spec, family_rng(spec, batch_index, family))
            if family.original_present:
                n_files += _write_video(archive, family.original, [(track, track.pixels) for track in tracks])
                progress.update()
            for j, fake in enumerate(family.fakes):
                fake_rng = np.random.default_rng([spec.seed, batch_index, 2, family.number, j])
                manipulate = MANIPULATORS[family.manipulation(j)]
                crops = [
                    (track, manipulate(track, spec, fake_rng) if track.swappable else track.pixels) for track in tracks
                ]
                n_files += _write_video(archive, fake, crops)
                progress.update()
    return n_files


def _write_video(archive: zipfile.ZipFile, video_id: str, crops: list[tuple[Track, np.ndarray]]) -> int:
    """Write every face crop of one video, in frame order (`{n}.png` before `{n}_2.png`)."""
    members = sorted(
        (int(frame), track.face_index, png)
        for track, pixels in crops
        for frame, png in zip(track.frames, encode_pngs(pixels))
    )
    for frame, face_index, png in members:
        write_member(archive, face_member_name(video_id, frame, face_index), png, zipfile.ZIP_STORED)
    return len(members)
