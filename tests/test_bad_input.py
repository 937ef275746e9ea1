"""Bad input: each ends with a clear reason, and nothing is lost."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dfdetect.config import check_config, validate_config
from dfdetect.config_errors import ConfigError
from dfdetect.data.facebatch import FaceBatchError, parse_face_member
from dfdetect.data.ingest import ingest_batch
from dfdetect.data.reduce import select_frames
from dfdetect.data.store import OversizedImageError, StorePaths, decode_face, fit_face, pack_batch
from dfdetect.testkit.batches import Video, png_bytes, write_face_batch

# --- 4: non-canonical frame names ----------------------------------------------------------------


def test_leading_zero_frame_name_is_skipped_not_counted_twice(tmp_path):
    frame_two = png_bytes(np.zeros((16, 16, 3), dtype=np.uint8))
    zip_path = write_face_batch(
        tmp_path / "deepfake-detection-faces-part-0-0.zip",
        [Video("v", frames=range(6))],
        extra_members={"v/0002.png": frame_two, "v/3_02.png": frame_two},
    )
    manifest = ingest_batch(zip_path, "0-0")
    assert manifest.videos.set_index("video_id").at["v", "n_frames"] == 6  # not 7: 0002.png is no second frame 2
    members = manifest.frames["member"].tolist()
    assert members.count("v/2.png") == 1 and "v/0002.png" not in members
    skipped = manifest.skipped.set_index("member")
    for member in ("v/0002.png", "v/3_02.png"):
        assert skipped.at[member, "reason"] == "not_a_face_image"
        assert skipped.at[member, "detail"] == "non-canonical frame name"
    assert parse_face_member("v/0.png").frame_index == 0 and parse_face_member("v/10_2.png").face_index == 2


# --- 5: every PNG mode Pillow decodes ------------------------------------------------------------


def png_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_16bit(color_type: int, samples: tuple[int, ...], size: int = 4) -> bytes:
    """A 16-bit-per-sample PNG of one colour (Pillow writes 16-bit greyscale at most)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + struct.pack(f">{len(samples)}H", *samples) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 16, color_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


GREY = 40000  # on a 16-bit scale: 40000 / 257 = 155.6
PNG_MODES = {
    "1": (png_of(Image.new("1", (4, 4), 1)), 255),
    "L": (png_of(Image.new("L", (4, 4), 156)), 156),
    "LA": (png_of(Image.new("LA", (4, 4), (156, 255))), 156),
    "P": (png_of(Image.new("L", (4, 4), 156).convert("P")), 156),
    "RGB": (png_of(Image.new("RGB", (4, 4), (156, 156, 156))), 156),
    "RGBA": (png_of(Image.new("RGBA", (4, 4), (156, 156, 156, 255))), 156),
    "I;16": (png_of(Image.fromarray(np.full((4, 4), GREY, dtype=np.uint16))), 156),
    "grey 16-bit": (png_16bit(0, (GREY,)), 156),
    "grey+alpha 16-bit": (png_16bit(4, (GREY, 65535)), 156),
    "RGB 16-bit": (png_16bit(2, (GREY,) * 3), 156),
    "RGBA 16-bit": (png_16bit(6, (GREY,) * 3 + (65535,)), 156),
}


@pytest.mark.parametrize("mode", list(PNG_MODES))
def test_each_png_mode_is_scaled_to_8_bits(mode):
    data, expected = PNG_MODES[mode]
    pixels = decode_face(data, 4)
    assert pixels.shape == (4, 4, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - expected).max() <= 1, (mode, Image.open(io.BytesIO(data)).mode, pixels[0, 0])


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I", "F"])
def test_high_depth_modes_scale_instead_of_clipping(mode):
    values = np.full((4, 4), GREY, dtype={"I;16": "<u2", "I;16B": ">u2", "I": np.int32, "F": np.float32}[mode])
    image = Image.frombytes(mode, (4, 4), values.tobytes()) if mode.startswith("I;16") else Image.fromarray(values)
    assert image.mode == mode
    assert fit_face(image, 4)[0, 0].tolist() == [156, 156, 156]  # Pillow's own convert gives 255 (white)


# --- 6 and 13: oversized and undecodable members --------------------------------------------------


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with one row of pixel data: decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * (1 + 3 * width)))
        + chunk(b"IEND", b"")
    )


def test_oversized_member_is_rejected_from_its_header_before_decoding(tmp_path):
    # 9000 x 9000 is under Pillow's bomb limit; decoding this file would fail with "truncated",
    # so the reason "oversized" shows that only the header was read.
    with pytest.raises(OversizedImageError, match="oversized: 9000x9000 px, above max_image_side 4096"):
        decode_face(header_only_png(9000, 9000), 16)
    videos = [Video("good", frames=[0, 10]), Video("huge", frames=[0])]
    zip_path = write_face_batch(
        tmp_path / "deepfake-detection-faces-part-0-0.zip",
        videos,
        extra_members={"huge/10.png": header_only_png(9000, 9000)},
    )
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, 2)
    index = pack_batch(
        zip_path, selection, "0-0", StorePaths.for_prefix(tmp_path / "store/0-0"), 16, 2, progress=False
    ).set_index("video_id")
    assert index.at["good", "status"] == "ok"
    assert index.at["huge", "status"] == "unreadable_frame"
    assert index.at["huge", "reason"].startswith("huge/10.png: oversized: 9000x9000")
    # the cap is a setting: crops of 16 px are oversized under a cap of 8
    small_cap = pack_batch(
        zip_path,
        selection,
        "0-0",
        StorePaths.for_prefix(tmp_path / "store2/0-0"),
        16,
        2,
        progress=False,
        max_image_side=8,
    )
    assert set(small_cap["status"]) == {"unreadable_frame"}


def test_undecodable_member_reason_names_no_memory_address(tmp_path):
    videos = [Video("bad", frames=[0])]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos, image=b"not an image")
    manifest = ingest_batch(zip_path, "0-0")
    selection = select_frames(manifest.frames, manifest.videos["video_id"], 10, 2)
    reason = pack_batch(
        zip_path, selection, "0-0", StorePaths.for_prefix(tmp_path / "store/0-0"), 16, 2, progress=False
    )["reason"].iloc[0]
    assert reason.startswith("bad/0.png: cannot identify image file")
    assert "BytesIO" not in reason and " at 0x" not in reason


# --- 7: metadata.csv that pandas cannot parse ---------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            b"filename,split,original,label\na.mp4,train,,REAL\nb.mp4,train,a.mp4,FAKE,extra\n",
            r"part-0-0\.zip: metadata\.csv line 3 cannot be parsed \(.*Expected 4 fields in line 3, saw 5",
        ),
        (b"", r"part-0-0\.zip: metadata\.csv is empty"),
    ],
    ids=["five_fields", "empty"],
)
def test_unparsable_metadata_names_the_zip_and_line(tmp_path, metadata, message):
    zip_path = write_face_batch(
        tmp_path / "deepfake-detection-faces-part-0-0.zip",
        [Video("a", frames=[0])],
        with_metadata=False,
        extra_members={"metadata.csv": metadata},
    )
    with pytest.raises(FaceBatchError, match=message):
        ingest_batch(zip_path, "0-0")


# --- 8: a REAL row that names an original ---------------------------------------------------------


def test_real_row_with_an_original_is_warned_and_recorded(tmp_path, caplog):
    videos = [Video("orig", "REAL", None, [0]), Video("odd", "REAL", "orig", [0])]
    zip_path = write_face_batch(tmp_path / "deepfake-detection-faces-part-0-0.zip", videos)
    with caplog.at_level(logging.WARNING):
        table = ingest_batch(zip_path, "0-0").videos.set_index("video_id")
    assert "metadata.csv row 2 (odd.mp4): REAL row names original orig.mp4" in caplog.text
    assert "REAL row names original orig.mp4" in table.at["odd", "metadata_note"]
    assert table.at["orig", "metadata_note"] == "" and table.at["odd", "family"] == "odd"


# --- 10 and 13: config ---------------------------------------------------------------------------


def demo_config(**overrides) -> dict:
    config = {"results_dir": "results", **overrides}
    validate_config(config)
    return config


def test_results_dir_below_a_regular_file_is_a_config_error(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    below = r"config key 'results_dir': .*afile/results' is below .*afile', which is a file"
    with pytest.raises(ConfigError, match=below):
        check_config(demo_config(results_dir=str(tmp_path / "afile" / "results")))
    with pytest.raises(ConfigError, match="config key 'results_dir': .*is a file"):
        check_config(demo_config(results_dir=str(tmp_path / "afile")))
    check_config(demo_config(results_dir=str(tmp_path / "new" / "results")))  # not there yet: fine


def test_unknown_config_key_gives_a_short_message(tmp_path):
    with pytest.raises(ConfigError) as caught:
        validate_config({"results_dir": "results", "resluts": 1})
    message = str(caught.value)
    assert message.startswith("config key 'resluts': unknown key; did you mean 'results_dir'?")
    assert len(message.splitlines()) == 1 and "properties:" not in message
    with pytest.raises(ConfigError, match=r"config key 'frames\.step': 'ten' is text, but this key takes integer"):
        validate_config({"frames": {"step": "ten"}})


def test_snakemake_prints_the_short_config_error(tmp_path):
    from tests.helpers.workflow import snakemake, write_config

    done = snakemake(
        tmp_path, write_config(tmp_path, {"results_dir": str(tmp_path / "r"), "resluts": 1}), "-n", check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "config key 'resluts': unknown key; did you mean 'results_dir'?" in output
    assert len(output.splitlines()) < 30, output  # not the whole schema


def test_config_defaults_include_the_image_side_cap():
    assert demo_config()["max_image_side"] == 4096
