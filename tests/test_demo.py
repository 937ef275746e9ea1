"""Demo face batches: exact DFDC face-batch format, determinism, DFDC-like structure, learnability."""

from __future__ import annotations

import functools
import io
import os
import re
import stat
import subprocess
import sys
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfdetect.data import demo
from dfdetect.data.demo import DemoSpec, plan_batch, write_demo_batch
from dfdetect.data.demo import write as demo_write
from dfdetect.data.facebatch import METADATA_MEMBER, parse_face_member, read_metadata
from dfdetect.layout import batch_file_name, demo_batch_id, demo_batch_index

SMALL = DemoSpec.of(videos_per_batch=12, image_size=40, n_frame_slots=60, seed=11)
VIDEO_FILENAME = re.compile(r"^[a-z]{10}\.mp4$")


@dataclass
class Batch:
    """A written demo batch, read back the way ingest will read it."""

    path: Path
    summary: demo.DemoBatchSummary
    metadata: list[dict[str, str]]  # rows of metadata.csv as text
    faces: dict[str, set[tuple[int, int]]]  # video -> {(frame, face_index)}
    members: list[str]

    def rows(self, label: str) -> list[dict[str, str]]:
        return [row for row in self.metadata if row["label"] == label]

    def n_files(self, video: str) -> int:
        return len(self.faces.get(video, ()))

    def images(self, video: str, frames: list[int]) -> list[np.ndarray]:
        """First-face crops of ``video`` at ``frames``, decoded."""
        with zipfile.ZipFile(self.path) as archive:
            return [decode(archive, video, frame) for frame in frames]


def decode(archive: zipfile.ZipFile, video: str, frame: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(archive.read(f"{video}/{frame}.png"))))


def read_batch(path: Path, summary: demo.DemoBatchSummary) -> Batch:
    with zipfile.ZipFile(path) as archive:
        members = archive.namelist()
        text = archive.read(METADATA_MEMBER).decode("utf-8")
    header, *lines = text.splitlines()
    metadata = [dict(zip(header.split(","), line.split(","))) for line in lines]
    faces: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for name in members:
        member = parse_face_member(name)
        if member is not None:
            faces[member.video_id].add((member.frame_index, member.face_index))
    return Batch(path, summary, metadata, dict(faces), members)


def write_and_read(folder: Path, batch_index: int, spec: DemoSpec) -> Batch:
    path = folder / batch_file_name(demo_batch_id(batch_index))
    return read_batch(path, write_demo_batch(path, batch_index, spec))


@pytest.fixture(scope="module")
def small_batches(tmp_path_factory: pytest.TempPathFactory) -> list[Batch]:
    folder = tmp_path_factory.mktemp("demo-small")
    return [write_and_read(folder, index, SMALL) for index in range(2)]


@pytest.fixture(scope="module")
def default_batch(tmp_path_factory: pytest.TempPathFactory) -> Batch:
    return write_and_read(tmp_path_factory.mktemp("demo-default"), 0, DemoSpec.of())


def stem(filename: str) -> str:
    return filename.removesuffix(".mp4")


def fakes_by_original(batch: Batch) -> dict[str, list[str]]:
    families: dict[str, list[str]] = defaultdict(list)
    for row in batch.rows("FAKE"):
        families[stem(row["original"])].append(stem(row["filename"]))
    return dict(families)


# --- format ---------------------------------------------------------------------------------


def test_batch_ids_run_0_0_0_1_1_0_1_1() -> None:
    assert [demo_batch_id(index) for index in range(5)] == ["0-0", "0-1", "1-0", "1-1", "2-0"]
    assert [demo_batch_index(demo_batch_id(index)) for index in range(25)] == list(range(25))
    with pytest.raises(ValueError):
        demo_batch_id(-1)
    with pytest.raises(ValueError, match="1-2"):
        demo_batch_index("1-2")


@pytest.mark.parametrize(
    "changes",
    [
        {"videos_per_batch": 0},
        {"image_size": 8},
        {"n_frame_slots": 3},
        {"seed": -1},
        {"manipulations": ()},
        {"manipulations": ("swap", "morph")},
        {"manipulations": ("swap", "swap")},
        {"real_share": (0.2, 0.1)},
        {"real_share": (0.3, 0.6)},
        {"real_share": (-0.1, 0.1)},
    ],
)
def test_spec_refuses_sizes_that_cannot_work(changes: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        DemoSpec.of(**changes)


def test_zip_holds_metadata_and_face_folders_only(small_batches: list[Batch]) -> None:
    for batch in small_batches:
        assert batch.members[0] == METADATA_MEMBER
        others = [name for name in batch.members if name != METADATA_MEMBER]
        assert all(parse_face_member(name) is not None for name in others), "every other member is a face image"
        with zipfile.ZipFile(batch.path) as archive:
            assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            header = archive.read(METADATA_MEMBER).decode("utf-8").splitlines()[0]
        assert header == "filename,split,original,label,manipulation"  # DFDC's four, then the demo's own


def test_metadata_rows_are_dfdc_shaped(small_batches: list[Batch]) -> None:
    for batch in small_batches:
        assert len(batch.metadata) == SMALL.videos_per_batch
        for row in batch.metadata:
            assert VIDEO_FILENAME.match(row["filename"]), row
            assert row["split"] == "train"
            assert row["label"] in {"REAL", "FAKE"}
            if row["label"] == "REAL":
                assert row["original"] == "" and row["manipulation"] == ""
            else:
                assert VIDEO_FILENAME.match(row["original"]) and row["original"] != row["filename"], row
                assert row["manipulation"] == "swap", "the default spec makes face swaps only"
        with zipfile.ZipFile(batch.path) as archive:
            table = read_metadata(archive.read(METADATA_MEMBER), str(batch.path))  # the format's own reader
        assert table["label"].sum() == batch.summary.n_fake


def test_one_folder_per_video_with_numbered_faces(small_batches: list[Batch]) -> None:
    for batch in small_batches:
        assert set(batch.faces) == {stem(row["filename"]) for row in batch.metadata}
        for video, faces in batch.faces.items():
            assert {face for _, face in faces} <= {1, 2}
            firsts = {frame for frame, face in faces if face == 1}
            seconds = {frame for frame, face in faces if face == 2}
            assert seconds <= firsts, f"{video}: a `{{n}}_2.png` without `{{n}}.png`"
            assert all(0 <= frame < SMALL.n_frame_slots for frame in firsts)


def test_faces_are_rgb_pngs_of_the_spec_size(small_batches: list[Batch]) -> None:
    batch = small_batches[0]
    with zipfile.ZipFile(batch.path) as archive:
        for name in [name for name in batch.members if name.endswith(".png")][::25]:
            image = Image.open(io.BytesIO(archive.read(name)))
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (SMALL.image_size, SMALL.image_size)), name
            image.load()  # decodes fully: the PNG is complete and its checksums hold


def test_second_faces_are_named_n_2(small_batches: list[Batch], default_batch: Batch) -> None:
    seconds = [
        name for batch in (*small_batches, default_batch) for name in batch.members if "_" in name.rsplit("/", 1)[-1]
    ]
    assert seconds, "some videos have a second face"
    assert all(re.fullmatch(r"[a-z]{10}/\d+_2\.png", name) for name in seconds)


def test_summary_counts_what_was_written(small_batches: list[Batch]) -> None:
    for batch in small_batches:
        summary = batch.summary
        assert summary.batch == demo_batch_id(small_batches.index(batch))
        assert summary.n_videos == len(batch.metadata) == summary.n_real + summary.n_fake
        assert summary.n_real == len(batch.rows("REAL"))
        assert summary.n_files == len(batch.members) - 1
        assert summary.n_bytes == batch.path.stat().st_size
        present = {stem(row["filename"]) for row in batch.metadata}
        assert summary.n_absent_originals == len(set(fakes_by_original(batch)) - present)
        assert "FAKE" in str(summary) and str(batch.path) in str(summary)


def test_video_names_are_unique_across_batches(small_batches: list[Batch]) -> None:
    written = [stem(row["filename"]) for batch in small_batches for row in batch.metadata]
    assert len(written) == len(set(written))
    # Originals, present or not, never share a name with another video; checked on many plans.
    names: list[str] = []
    for index in range(40):
        for family in plan_batch(index, DemoSpec.of()).families:
            names += [family.original, *family.fakes]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]{10}", name) for name in names)


# --- determinism and safe writing -----------------------------------------------------------


def test_rewriting_a_batch_gives_identical_bytes(tmp_path: Path, small_batches: list[Batch]) -> None:
    again = tmp_path / small_batches[0].path.name
    write_demo_batch(again, 0, SMALL)
    assert again.read_bytes() == small_batches[0].path.read_bytes()
    other_seed = tmp_path / "other" / small_batches[0].path.name
    write_demo_batch(other_seed, 0, DemoSpec.of(videos_per_batch=12, image_size=40, n_frame_slots=60, seed=12))
    assert other_seed.read_bytes() != again.read_bytes()


def test_batches_get_ordinary_file_permissions(small_batches: list[Batch]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(small_batches[0].path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_zip_and_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / batch_file_name("0-0")
    target.write_bytes(b"previous batch")
    calls = []

    def fail_on_third_video(frames: np.ndarray) -> list[bytes]:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # what a killed job looks like from inside
        return original_encode(frames)

    original_encode = demo_write.encode_pngs
    monkeypatch.setattr(demo_write, "encode_pngs", fail_on_third_video)
    with pytest.raises(KeyboardInterrupt):
        write_demo_batch(target, 0, SMALL)
    assert target.read_bytes() == b"previous batch"
    assert [path.name for path in tmp_path.iterdir()] == [target.name]


def test_a_face_batch_file_name_must_match_the_batch_index(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0-1"):
        write_demo_batch(tmp_path / batch_file_name("0-1"), 0, SMALL)
    assert not any(tmp_path.iterdir())


# --- families -------------------------------------------------------------------------------


def test_fakes_come_from_real_videos_in_the_batch_or_absent_ones(small_batches: list[Batch]) -> None:
    absent = 0
    for batch in small_batches:
        labels = {stem(row["filename"]): row["label"] for row in batch.metadata}
        for original, fakes in fakes_by_original(batch).items():
            assert labels.get(original, "REAL") == "REAL", f"{original} is FAKE yet has fakes"
            assert 1 <= len(fakes) <= 5
            absent += original not in labels
        for row in batch.rows("REAL"):
            assert 1 <= len(fakes_by_original(batch).get(stem(row["filename"]), [])) <= 5
    assert absent > 0, "some fakes reference originals that are not in the data"


def test_about_seven_in_eight_videos_are_fake(default_batch: Batch) -> None:
    plans = [plan_batch(index, DemoSpec.of()) for index in range(12)]
    n_fake = sum(plan.n_fake for plan in plans)
    n_videos = sum(plan.n_fake + plan.n_real for plan in plans)
    assert 0.8 <= n_fake / n_videos <= 0.95
    assert all(0.8 <= plan.n_fake / (plan.n_fake + plan.n_real) <= 0.95 for plan in plans)
    assert 0.8 <= len(default_batch.rows("FAKE")) / len(default_batch.metadata) <= 0.95
    # Most originals are absent, as in DFDC's face batches.
    assert sum(plan.n_absent_originals for plan in plans) > sum(plan.n_real for plan in plans)


def test_plan_and_written_metadata_agree(small_batches: list[Batch]) -> None:
    for index, batch in enumerate(small_batches):
        rows = [
            (row["filename"], row["split"], row["original"], row["label"], row["manipulation"])
            for row in batch.metadata
        ]
        assert rows == plan_batch(index, SMALL).metadata_rows()


# --- frame sets -----------------------------------------------------------------------------


def test_frame_counts_are_shaped_like_dfdc(default_batch: Batch) -> None:
    counts = {video: default_batch.n_files(video) for video in default_batch.faces}
    seconds = {video: sum(face == 2 for _, face in faces) for video, faces in default_batch.faces.items()}
    n = len(counts)
    assert sum(250 <= count <= 300 for count in counts.values()) >= 0.6 * n, "most videos hold 250-300 faces"
    assert sum(count < 300 and seconds[video] == 0 for video, count in counts.items()) >= 0.5 * n, "a few gaps"
    assert 1 <= sum(count < 200 for count in counts.values()) <= 0.2 * n, "some have long face-less stretches"
    two_actor = [video for video, count in counts.items() if count >= 500]
    assert 1 <= len(two_actor) <= 0.15 * n
    for video in two_actor:
        assert seconds[video] >= 0.8 * (counts[video] - seconds[video]), "a second face on most frames"
        assert counts[video] <= 600
    handful = [video for video, count in seconds.items() if 2 <= count <= 10]
    assert 1 <= len(handful) <= 0.3 * n
    assert all(count == 0 or 2 <= count <= 10 or video in two_actor for video, count in seconds.items())


def test_fakes_share_their_originals_frame_set(small_batches: list[Batch], default_batch: Batch) -> None:
    compared = 0
    for batch in (*small_batches, default_batch):
        for original, fakes in fakes_by_original(batch).items():
            reference = batch.faces.get(original)
            if reference is None:  # an absent original: its fakes still share one frame set
                reference = batch.faces[fakes[0]]
            for fake in fakes:
                assert batch.faces[fake] == reference, f"{fake} vs {original}"
                compared += 1
    assert compared > 20


# --- pixels ---------------------------------------------------------------------------------


@functools.lru_cache
def regions(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks: the inner face (well inside any swap mask) and the crop's outer border."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    inner = ((x - 0.5) / 0.17) ** 2 + ((y - 0.55) / 0.22) ** 2 <= 1
    border = (np.minimum(np.minimum(x, 1 - x), np.minimum(y, 1 - y))) < 0.1
    return inner, border


def test_fakes_differ_from_their_original_inside_the_face(small_batches: list[Batch]) -> None:
    inner, border = regions(SMALL.image_size)
    checked = 0
    for batch in small_batches:
        for original, fakes in fakes_by_original(batch).items():
            if original not in batch.faces:
                continue
            frames = sorted(frame for frame, face in batch.faces[original] if face == 1)[::7]
            originals = batch.images(original, frames)
            for fake in fakes:
                diffs = [
                    np.abs(fake_image.astype(float) - original_image).mean(axis=2)
                    for fake_image, original_image in zip(batch.images(fake, frames), originals)
                ]
                inside = np.mean([diff[inner].mean() for diff in diffs])
                outside = np.mean([diff[border].mean() for diff in diffs])
                assert inside > 3.0, f"{fake}: the swap barely changes the face ({inside:.1f})"
                assert outside < 0.15 * inside, f"{fake}: changes outside the face ({outside:.1f} vs {inside:.1f})"
                checked += 1
    assert checked >= 3


def test_frames_of_a_video_move_and_are_never_identical(small_batches: list[Batch]) -> None:
    batch = small_batches[0]
    video = stem(batch.rows("REAL")[0]["filename"])
    frames = sorted(frame for frame, face in batch.faces[video] if face == 1)
    images = np.stack(batch.images(video, frames)).astype(float)
    steps = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))
    assert (steps > 0.5).all(), "sensor noise: no two frames alike"
    assert steps.max() < 25, "a detector-centred crop moves only a little between frames"
    assert np.abs(images[0] - images).mean(axis=(1, 2, 3)).max() > steps.mean(), "drift over the video"


def frame_features(image: np.ndarray) -> list[float]:
    """Cheap per-frame features: colour of the inner face vs its surround, high-frequency energy."""
    x = image.astype(np.float32)
    size = x.shape[0]
    inner, border = regions(size)
    cheeks = np.zeros_like(inner)
    cheeks[int(0.35 * size) : int(0.7 * size), int(0.12 * size) : int(0.24 * size)] = True
    cheeks[int(0.35 * size) : int(0.7 * size), int(0.76 * size) : int(0.88 * size)] = True
    forehead = np.zeros_like(inner)
    forehead[int(0.12 * size) : int(0.25 * size), int(0.3 * size) : int(0.7 * size)] = True
    laplacian = np.zeros(x.shape[:2], dtype=np.float32)
    laplacian[1:-1, 1:-1] = np.abs(4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]).mean(
        axis=2
    )
    centre = x[inner].mean(axis=0)
    energy_inner, energy_border = np.log(laplacian[inner].mean() + 1e-3), np.log(laplacian[border].mean() + 1e-3)
    return [
        *centre,
        *(centre - x[cheeks].mean(axis=0)),
        *(centre - x[forehead].mean(axis=0)),
        float(x[inner].std()),
        energy_inner,
        energy_border,
        energy_inner - energy_border,
    ]


def labelled_frames(batch: Batch, every: int = 2) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    with zipfile.ZipFile(batch.path) as archive:
        for row in batch.metadata:
            video = stem(row["filename"])
            for frame in sorted(frame for frame, face in batch.faces[video] if face == 1)[::every]:
                features.append(frame_features(decode(archive, video, frame)))
                labels.append(row["label"] == "FAKE")
    return np.array(features), np.array(labels)


def test_a_simple_detector_separates_real_from_fake_frames_of_new_videos(tmp_path: Path) -> None:
    """Logistic regression on colour and high-frequency features, tested on a held-out batch."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    spec = DemoSpec.of(videos_per_batch=40, image_size=48, n_frame_slots=24, seed=5)
    train = [labelled_frames(write_and_read(tmp_path, index, spec)) for index in range(2)]
    test_features, test_labels = labelled_frames(write_and_read(tmp_path, 2, spec))
    assert 0 < test_labels.mean() < 1
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    model.fit(np.concatenate([features for features, _ in train]), np.concatenate([labels for _, labels in train]))
    auc = roc_auc_score(test_labels, model.predict_proba(test_features)[:, 1])
    assert auc > 0.75, f"held-out frame AUC {auc:.3f}"
    # The label is in the blend, not in a global shift: the inner face's mean colour alone is no
    # detector (real and fake frames come from the same identities and the same rendering).
    all_features = np.concatenate([features for features, _ in train] + [test_features])
    all_labels = np.concatenate([labels for _, labels in train] + [test_labels])
    brightness_auc = roc_auc_score(all_labels, all_features[:, :3].mean(axis=1))
    assert 0.25 < brightness_auc < 0.75, f"brightness alone gives AUC {brightness_auc:.2f}"


# --- light imports --------------------------------------------------------------------------


def test_demo_does_not_import_tensorflow_or_keras() -> None:
    code = (
        "import sys, dfdetect.data.demo; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'skimage') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.stdout.strip() == "[]"
