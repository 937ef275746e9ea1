"""Small mp4s with real faces at known, moving places, built offline for the face-extraction tests.

The faces come from pictures that ship in installed packages: scikit-image's astronaut and
matplotlib's grace_hopper.jpg. Each is cut to a patch around the face, scaled, and pasted onto a
smooth background at a position that moves from frame to frame; the face's true box in every
frame follows from the paste offset.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

BoxXYXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class FacePicture:
    """Where to cut a face patch from a source picture, and the face inside it (source pixels)."""

    patch: tuple[int, int, int, int]  # x1, y1, x2, y2 of the patch in the source picture
    face: tuple[int, int, int, int]  # x1, y1, x2, y2 of the face (brow to chin, cheek to cheek)


# Face boxes measured on the source pictures (MTCNN's box at full resolution, checked by eye).
PICTURES = {
    "astronaut": FacePicture(patch=(140, 20, 310, 215), face=(182, 64, 265, 171)),
    "grace_hopper": FacePicture(patch=(130, 60, 400, 380), face=(178, 110, 351, 330)),
}


def source_picture(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    if name == "grace_hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    raise ValueError(f"unknown face picture {name!r}; known: {', '.join(PICTURES)}")


def face_patch(name: str, face_height: int) -> tuple[np.ndarray, BoxXYXY]:
    """A patch around the face, scaled so the face is ``face_height`` px tall, and the face box in it."""
    picture = PICTURES[name]
    px1, py1, px2, py2 = picture.patch
    fx1, fy1, fx2, fy2 = picture.face
    scale = face_height / (fy2 - fy1)
    patch = Image.fromarray(source_picture(name)[py1:py2, px1:px2])
    size = (round((px2 - px1) * scale), round((py2 - py1) * scale))
    scaled = np.asarray(patch.resize(size, Image.BILINEAR))
    face = ((fx1 - px1) * scale, (fy1 - py1) * scale, (fx2 - px1) * scale, (fy2 - py1) * scale)
    return scaled, face


def background(size: tuple[int, int]) -> np.ndarray:
    """A smooth colour gradient (no face-like texture), uint8 RGB of (height, width)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 60 + 120 * xs / max(width - 1, 1)
    green = 80 + 60 * ys / max(height - 1, 1)
    blue = np.full_like(xs, 140)
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def face_frames(
    faces: Sequence[str], n_frames: int, size: tuple[int, int] = (320, 240), face_heights: int | Sequence[int] = 64
) -> tuple[list[np.ndarray], dict[int, list[BoxXYXY]]]:
    """Frames with each named face moving left to right in its own vertical strip of the frame.

    ``face_heights`` is one height for all faces or one per face. Returns the frames and, per
    frame index, the true face boxes in the order of ``faces``.
    """
    width, height = size
    heights = [face_heights] * len(faces) if isinstance(face_heights, int) else list(face_heights)
    patches = [face_patch(name, face_height) for name, face_height in zip(faces, heights, strict=True)]
    lane_width = width // len(faces)
    frames, boxes = [], {}
    for index in range(n_frames):
        frame = background(size)
        frame_boxes = []
        for lane, (patch, face) in enumerate(patches):
            patch_height, patch_width = patch.shape[:2]
            travel = max(lane_width - patch_width, 0)
            left = lane * lane_width + round(travel * index / max(n_frames - 1, 1))
            top = (height - patch_height) // 2 + (index % 3) * 4 - 4  # small vertical wobble too
            if top < 0 or top + patch_height > height or left + patch_width > width:
                raise ValueError(f"a {patch_width}x{patch_height} face patch does not fit a {width}x{height} frame")
            frame[top : top + patch_height, left : left + patch_width] = patch
            frame_boxes.append((face[0] + left, face[1] + top, face[2] + left, face[3] + top))
        frames.append(frame)
        boxes[index] = frame_boxes
    return frames, boxes


def faceless_frames(
    n_frames: int, size: tuple[int, int] = (320, 240), kind: str = "noise", seed: int = 0
) -> list[np.ndarray]:
    """Frames without faces: smoothed noise or a flat grey."""
    width, height = size
    if kind == "flat":
        return [np.full((height, width, 3), 128, dtype=np.uint8) for _ in range(n_frames)]
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        coarse = rng.integers(0, 256, size=(height // 8, width // 8, 3), dtype=np.uint8)
        frames.append(np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR)))
    return frames


def write_mp4(path: str | Path, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """Encode frames as H.264 mp4 with imageio-ffmpeg's bundled ffmpeg."""
    import imageio_ffmpeg

    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width, height),
        fps=fps,
        codec="libx264",
        macro_block_size=8,
        output_params=["-crf", "18"],  # high quality: the test is about geometry, not compression
    )
    writer.send(None)  # start ffmpeg
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return path


def mp4_bytes(frames: Sequence[np.ndarray], fps: int = 10) -> bytes:
    with tempfile.TemporaryDirectory(prefix="dfdetect-test-video-") as folder:
        return write_mp4(Path(folder) / "video.mp4", frames, fps).read_bytes()


def cut_short_mp4(source: str | Path, target: str | Path, share: float) -> Path:
    """``source`` with its index moved to the front (``-movflags +faststart``, as streaming sites
    serve mp4s) and only the first ``share`` of its bytes kept: a download cut short. ffmpeg decodes
    the frames that are there and stops without an error."""
    import subprocess

    import imageio_ffmpeg

    target = Path(target)
    faststart = target.with_name(f"faststart-{target.name}")
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(source), "-c", "copy"]
    subprocess.run([*command, "-movflags", "+faststart", str(faststart)], check=True)
    data = faststart.read_bytes()
    faststart.unlink()
    target.write_bytes(data[: int(len(data) * share)])
    return target


def garbage_mp4_bytes(n_bytes: int = 4096, seed: int = 0) -> bytes:
    """Bytes that no decoder accepts (random, with no container header)."""
    return np.random.default_rng(seed).integers(0, 256, size=n_bytes, dtype=np.uint8).tobytes()


def write_raw_part(
    path: str | Path,
    videos: Mapping[str, bytes],
    metadata: Mapping[str, Mapping[str, object]],
    folder: str = "dfdc_train_part_0",
) -> Path:
    """A raw DFDC part zip laid out like the real ones: ``{folder}/metadata.json`` and ``{folder}/*.mp4``."""
    path = Path(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder}/metadata.json", json.dumps(dict(metadata)))
        for name, data in videos.items():
            archive.writestr(f"{folder}/{name}", data)
    path.write_bytes(buffer.getvalue())
    return path
