"""Face extraction: decoding, MTCNN detection on moving real faces, crops, and raw part -> face batch."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dfdetect.data.facebatch import METADATA_MEMBER, FaceBatchError, parse_face_member, read_metadata
from dfdetect.data.faces import decode, detect, extract
from dfdetect.data.faces.decode import VideoDecodeError
from dfdetect.data.faces.detect import Box, FaceSettings
from dfdetect.layout import batch_file_name
from dfdetect.testkit import videos

N_FRAMES = 12


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def as_xyxy(box: Box) -> tuple[float, float, float, float]:
    return box.x1, box.y1, box.x2, box.y2


@pytest.fixture(scope="session")
def detector() -> detect.FaceDetector:
    return detect.load_detector("CPU:0")


@pytest.fixture(scope="session")
def astronaut_video() -> tuple[bytes, dict]:
    frames, truth = videos.face_frames(["astronaut"], N_FRAMES)
    return videos.mp4_bytes(frames), truth


@pytest.fixture(scope="session")
def grace_video() -> tuple[bytes, dict]:
    frames, truth = videos.face_frames(["grace_hopper"], N_FRAMES)
    return videos.mp4_bytes(frames), truth


@pytest.fixture(scope="session")
def two_face_video() -> tuple[bytes, dict]:
    # Different sizes so that the order (largest first) is known: astronaut is face 1.
    frames, truth = videos.face_frames(["astronaut", "grace_hopper"], N_FRAMES, face_heights=(76, 54))
    return videos.mp4_bytes(frames), truth


@pytest.fixture(scope="session")
def noise_video() -> bytes:
    return videos.mp4_bytes(videos.faceless_frames(N_FRAMES, kind="noise"))


# ---------------------------------------------------------------- settings, geometry (no detector)


def test_settings_reject_values_that_cannot_work():
    with pytest.raises(ValueError, match="every_k"):
        FaceSettings.of(every_k=0)
    with pytest.raises(ValueError, match="threshold"):
        FaceSettings.of(threshold=1.5)
    with pytest.raises(ValueError, match="min_face_size"):
        FaceSettings.of(min_face_size=8)
    with pytest.raises(ValueError, match="every_n. was unexpected"):
        FaceSettings.from_mapping({"every_n": 2})
    assert FaceSettings.from_mapping({"every_k": 5, "max_faces": None}) == FaceSettings.of(every_k=5, max_faces=None)


def test_detection_scale_keeps_mtcnn_at_its_safe_minimum():
    assert detect.detection_scale(12) == 1.0
    assert detect.detection_scale(20) == 1.0
    assert detect.detection_scale(40) == 0.5
    assert detect.detection_scale(80) == 0.25


def test_crop_face_is_square_with_margin_and_resized():
    frame = np.zeros((200, 300, 3), dtype=np.uint8)
    frame[50:150, 100:180] = 200  # an 80x100 "face"
    settings = FaceSettings.of(margin=0.2, crop_size=120)
    crop = detect.crop_face(frame, Box(100, 50, 180, 150, 0.99), settings)
    assert crop.shape == (120, 120, 3) and crop.dtype == np.uint8
    # side = 100 * 1.2 = 120 px, centred on the box: rows 40..160, columns 80..200
    assert np.array_equal(crop, frame[40:160, 80:200])


def test_crop_face_shifts_inside_the_frame_and_pads_only_when_larger():
    frame = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    settings = FaceSettings.of(margin=0.0, crop_size=40)
    near_corner = detect.crop_face(frame, Box(-10, -5, 30, 35, 0.99), settings)
    assert np.array_equal(near_corner, frame[0:40, 0:40])  # shifted in, no black border
    settings = FaceSettings.of(margin=0.0, crop_size=140)
    larger = detect.crop_face(frame, Box(0, 0, 140, 100, 0.99), settings)
    assert np.array_equal(larger[20:120, 10:130], frame)  # centred, black above, below and sides
    assert not larger[:20].any() and not larger[120:].any()


def test_order_faces_largest_first_and_capped():
    small, big = Box(0, 0, 10, 10, 1), Box(50, 0, 90, 40, 1)
    left_twin, right_twin = Box(0, 0, 20, 20, 1), Box(60, 0, 80, 20, 1)
    assert detect.order_faces([small, big], None) == [big, small]
    assert detect.order_faces([right_twin, left_twin], None) == [left_twin, right_twin]
    assert detect.order_faces([small, big, left_twin], 2) == [big, left_twin]


def test_report_path_sits_next_to_the_output():
    out = Path("results/faces") / batch_file_name("12-0")
    assert extract.report_path(out) == Path("results/faces/deepfake-detection-faces-part-12-0.report.csv")


# ---------------------------------------------------------------- decoding


def test_iter_video_frames_samples_every_kth_frame_from_bytes_and_paths(astronaut_video, tmp_path):
    data, _ = astronaut_video
    from_bytes = list(decode.iter_video_frames(data, every_k=5))
    assert [index for index, _ in from_bytes] == [0, 5, 10]
    assert all(frame.shape == (240, 320, 3) and frame.dtype == np.uint8 for _, frame in from_bytes)
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    from_path = list(decode.iter_video_frames(path, every_k=5))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(from_bytes, from_path))


def test_read_ahead_keeps_order_raises_source_errors_and_closes_the_source():
    closed = []

    def numbers(fail_at: int | None):
        try:
            for number in range(10):
                if number == fail_at:
                    raise VideoDecodeError(f"frame {number}: broken")
                yield number
        finally:
            closed.append(fail_at)

    assert list(decode.read_ahead(numbers(None), depth=3)) == list(range(10))
    with pytest.raises(VideoDecodeError, match="frame 4: broken"):
        list(decode.read_ahead(numbers(4), depth=2))
    early = decode.read_ahead(numbers(-1), depth=2)
    assert next(early) == 0
    early.close()  # the consumer stops: the thread stops and closes its source
    assert closed == [None, 4, -1]


def test_truncated_video_is_a_decode_error_or_shorter(astronaut_video):
    data, _ = astronaut_video
    try:
        indices = [index for index, _ in decode.iter_video_frames(data[: len(data) // 2], name="half.mp4")]
    except VideoDecodeError as error:
        assert str(error).startswith("half.mp4: ")
    else:
        assert len(indices) < N_FRAMES


def test_garbage_bytes_raise_a_decode_error_naming_the_video():
    with pytest.raises(VideoDecodeError, match=r"^broken\.mp4: moov atom not found; .*Invalid data"):
        list(decode.iter_video_frames(videos.garbage_mp4_bytes(), name="broken.mp4"))


def test_audio_only_mp4_is_a_decode_error(tmp_path):
    import imageio_ffmpeg

    audio = tmp_path / "audio.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=0.2", str(audio)],
        check=True,
    )
    with pytest.raises(VideoDecodeError, match=r"audio\.mp4: .*does not contain any stream"):
        list(decode.iter_video_frames(audio, name="audio.mp4"))


# ---------------------------------------------------------------- detection on real faces


@pytest.mark.parametrize("video_fixture", ["astronaut_video", "grace_video"])
def test_moving_face_is_found_where_it_was_pasted(request, detector, video_fixture):
    data, truth = request.getfixturevalue(video_fixture)
    settings = FaceSettings.of(every_k=2)
    found = extract.extract_video_faces(data, detector, settings, name=video_fixture)
    assert found.n_frames_read == N_FRAMES and found.n_frames_sampled == N_FRAMES // 2
    assert sorted(found.faces) == list(range(0, N_FRAMES, 2))  # a face in every sampled frame
    for index, frame_faces in found.faces.items():
        assert len(frame_faces) == 1
        box = frame_faces[0].box
        true_box = truth[index][0]
        assert iou(as_xyxy(box), true_box) > 0.6, (index, box, true_box)
        true_centre = ((true_box[0] + true_box[2]) / 2, (true_box[1] + true_box[3]) / 2)
        assert np.hypot(box.centre[0] - true_centre[0], box.centre[1] - true_centre[1]) < 8
        assert frame_faces[0].crop.shape == (160, 160, 3)
    # The face moves: the first and last boxes are far apart.
    first, last = found.faces[0][0].box, found.faces[N_FRAMES - 2][0].box
    assert last.centre[0] - first.centre[0] > 100


def test_crop_shows_the_face(detector, astronaut_video):
    data, _ = astronaut_video
    found = extract.extract_video_faces(data, detector, FaceSettings.of(every_k=6, crop_size=96))
    crop = found.faces[0][0].crop
    assert crop.shape == (96, 96, 3)
    # Detecting again inside the crop finds one face filling most of it (margin 0.3: about 1/1.3).
    again = detect.detect_faces([crop], detector, FaceSettings.of(min_face_size=20))[0]
    assert len(again) == 1 and again[0].height > 0.6 * 96


def test_two_faces_come_largest_first(detector, two_face_video):
    data, truth = two_face_video
    found = extract.extract_video_faces(data, detector, FaceSettings.of(every_k=3))
    assert sorted(found.faces) == [0, 3, 6, 9]
    for index, frame_faces in found.faces.items():
        assert len(frame_faces) == 2
        for face, true_box in zip(frame_faces, truth[index]):  # truth order: astronaut (larger), grace
            assert iou(as_xyxy(face.box), true_box) > 0.5, (index, face.box, true_box)


def test_max_faces_and_min_face_size_filter(detector, two_face_video):
    data, _ = two_face_video
    one = extract.extract_video_faces(data, detector, FaceSettings.of(every_k=6, max_faces=1))
    assert sorted(one.faces) == [0, 6]  # faces were found, so the next line checks something
    assert all(len(frame_faces) == 1 for frame_faces in one.faces.values())
    too_big = extract.extract_video_faces(data, detector, FaceSettings.of(every_k=6, min_face_size=120))
    assert too_big.n_faces == 0 and too_big.n_frames_sampled == 2


def test_batched_detection_matches_per_frame_detection(detector, two_face_video):
    data, _ = two_face_video
    frames = [frame for _, frame in decode.iter_video_frames(data, every_k=2)]
    batched = detect.detect_faces(frames, detector, FaceSettings.of(batch_size=6))
    single = detect.detect_faces(frames, detector, FaceSettings.of(batch_size=1))
    assert [len(boxes) for boxes in batched] == [len(boxes) for boxes in single] == [2] * len(frames)
    for batch_boxes, single_boxes in zip(batched, single):
        for a, b in zip(batch_boxes, single_boxes):
            assert np.allclose(as_xyxy(a), as_xyxy(b), atol=1.0)


def test_a_video_cut_short_is_extracted_from_its_frames_with_a_note(detector, tmp_path):
    frames, _ = videos.face_frames(["astronaut"], 40)
    whole = videos.write_mp4(tmp_path / "whole.mp4", frames)
    cut = videos.cut_short_mp4(whole, tmp_path / "cut.mp4", 0.7)
    settings = FaceSettings.of(every_k=8)
    assert extract.extract_video_faces(whole, detector, settings).partial_decode == ""
    found = extract.extract_video_faces(cut, detector, settings)
    assert 0 < found.n_frames_read < 30 and found.n_faces > 0
    assert found.partial_decode == f"decoded {found.n_frames_read} of 40 frames: the file ends early (cut short?)"
    # predict stops decoding at the last frame a slot can take: no note for the frames after it
    assert extract.extract_video_faces(cut, detector, settings, frame_limit=found.n_frames_read).partial_decode == ""


def test_faceless_video_yields_no_faces(detector, noise_video):
    found = extract.extract_video_faces(noise_video, detector, FaceSettings.of())
    assert found.n_faces == 0 and found.n_frames_read == N_FRAMES


# ---------------------------------------------------------------- raw part -> face batch


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def raw_part(tmp_path_factory, astronaut_video, grace_video, two_face_video, noise_video) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    clips = {
        "aaaaaaaaaa.mp4": astronaut_video[0],
        "bbbbbbbbbb.mp4": grace_video[0],
        "cccccccccc.mp4": two_face_video[0],
        "dddddddddd.mp4": videos.garbage_mp4_bytes(),
        "eeeeeeeeee.mp4": noise_video,
        "zzzzzzzzzz.mp4": noise_video,  # in the zip, not in metadata.json
    }
    metadata = {
        "aaaaaaaaaa.mp4": {"label": "REAL", "split": "train", "original": None},
        "bbbbbbbbbb.mp4": {"label": "FAKE", "split": "train", "original": "aaaaaaaaaa.mp4"},
        "cccccccccc.mp4": {"label": "FAKE", "split": "train", "original": "ffffffffff.mp4"},
        "dddddddddd.mp4": {"label": "FAKE", "split": "train", "original": "aaaaaaaaaa.mp4"},
        "eeeeeeeeee.mp4": {"label": "REAL", "split": "train", "original": None},
        "ffffffffff.mp4": {"label": "REAL", "split": "train", "original": None},  # listed, not in the zip
    }
    return videos.write_raw_part(folder / "dfdc_train_part_7.zip", clips, metadata, folder="dfdc_train_part_7")


@pytest.fixture(scope="module")
def extracted(raw_part, detector, tmp_path_factory):
    before = sha256(raw_part)
    out = tmp_path_factory.mktemp("faces") / batch_file_name("7-0")
    summary = extract.extract_part(raw_part, out, FaceSettings.of(every_k=4), detector=detector, progress=False)
    assert sha256(raw_part) == before, "the raw part was modified"
    return summary


def test_extract_part_writes_a_valid_face_batch(extracted):
    with zipfile.ZipFile(extracted.out_zip) as archive:
        names = archive.namelist()
        metadata = read_metadata(archive.read(METADATA_MEMBER), source=str(extracted.out_zip))
        crops = {
            name: np.asarray(Image.open(io.BytesIO(archive.read(name)))) for name in names if name != METADATA_MEMBER
        }
    assert names[0] == METADATA_MEMBER
    assert list(metadata["filename"]) == [f"{letter * 10}.mp4" for letter in "abcdef"]
    assert list(metadata["label"]) == [0, 1, 1, 1, 0, 0]
    originals = [None if pd.isna(original) else original for original in metadata["original"]]
    assert originals == [None, "aaaaaaaaaa", "ffffffffff", "aaaaaaaaaa", None, None]
    members = [parse_face_member(name) for name in crops]
    assert all(member is not None for member in members), [n for n, m in zip(crops, members) if m is None]
    by_video: dict[str, set[tuple[int, int]]] = {}
    for member in members:
        by_video.setdefault(member.video_id, set()).add((member.frame_index, member.face_index))
    assert sorted(by_video) == ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]  # only videos with faces get a folder
    assert by_video["aaaaaaaaaa"] == {(0, 1), (4, 1), (8, 1)}
    assert by_video["cccccccccc"] == {(n, k) for n in (0, 4, 8) for k in (1, 2)}  # `{n}_2.png` for the second face
    assert all(crop.shape == (160, 160, 3) and crop.dtype == np.uint8 for crop in crops.values())


def test_extract_part_reports_every_video_with_its_reason(extracted):
    report = pd.read_csv(extracted.report_path, keep_default_na=False)
    assert list(report.columns) == extract.REPORT_COLUMNS
    status = dict(zip(report["filename"], report["status"]))
    assert status == {
        "aaaaaaaaaa.mp4": "ok",
        "bbbbbbbbbb.mp4": "ok",
        "cccccccccc.mp4": "ok",
        "dddddddddd.mp4": "undecodable",
        "eeeeeeeeee.mp4": "no_faces",
        "ffffffffff.mp4": "missing",
        "zzzzzzzzzz.mp4": "unlisted",
    }
    reason = dict(zip(report["filename"], report["reason"]))
    assert reason["dddddddddd.mp4"] == (
        "dddddddddd.mp4: moov atom not found; Error opening input: Invalid data found when processing input"
    )
    assert reason["eeeeeeeeee.mp4"].startswith("no face") and reason["aaaaaaaaaa.mp4"] == ""
    faces_per_video = dict(zip(report["filename"], report["n_faces"]))
    assert faces_per_video["cccccccccc.mp4"] == 6 and faces_per_video["aaaaaaaaaa.mp4"] == 3
    noise = report.set_index("filename").loc["eeeeeeeeee.mp4"]
    counts = noise[["n_frames_read", "n_frames_sampled", "width", "height"]].tolist()
    assert counts == [N_FRAMES, 3, 320, 240]
    assert extracted.status_counts == {"missing": 1, "no_faces": 1, "ok": 3, "undecodable": 1, "unlisted": 1}
    assert extracted.n_faces == 3 + 3 + 6


def test_extract_part_is_deterministic_and_leaves_no_temporary_files(extracted, raw_part, detector, tmp_path):
    again = extract.extract_part(
        raw_part, tmp_path / extracted.out_zip.name, FaceSettings.of(every_k=4), detector=detector, progress=False
    )
    assert again.out_zip.read_bytes() == extracted.out_zip.read_bytes()
    assert again.report_path.read_bytes() == extracted.report_path.read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([again.out_zip.name, again.report_path.name])


def test_extract_part_errors_name_the_file(tmp_path, detector):
    no_metadata = tmp_path / "dfdc_train_part_1.zip"
    with zipfile.ZipFile(no_metadata, "w") as archive:
        archive.writestr("dfdc_train_part_1/x.mp4", b"")
    with pytest.raises(FaceBatchError, match=r"dfdc_train_part_1\.zip: no metadata\.json"):
        extract.extract_part(no_metadata, tmp_path / "out.zip", FaceSettings.of(), detector=detector, progress=False)
    bad_label = videos.write_raw_part(tmp_path / "dfdc_train_part_2.zip", {}, {"x.mp4": {"label": "MAYBE"}})
    with pytest.raises(FaceBatchError, match=r"metadata\.json: entry 'x\.mp4': label 'MAYBE'"):
        extract.extract_part(bad_label, tmp_path / "out.zip", FaceSettings.of(), detector=detector, progress=False)
    assert not (tmp_path / "out.zip").exists()
