"""Which JPEG quality matches H.264 at DeeperForensics-1.0's CRF levels (30, 32, 35, 38, 40)?

Builds short face-crop videos (a real face photo, matplotlib's grace_hopper.jpg, and a demo
video's crops), each with slow drift and sensor noise as in a video, encodes them with libx264
(imageio-ffmpeg's ffmpeg, yuv420p, default preset) at each CRF, decodes them and measures the
mean PSNR against the input; then JPEG-codes the same frames at every quality 5..95 and prints,
per CRF, the quality whose mean PSNR is closest. dfdetect.evaluation.perturb.CRF_TO_JPEG_QUALITY holds the
result. Usage: .venv/bin/python benchmarks/jpeg_for_crf.py [--size 160] [--frames 30]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from matplotlib import cbook
from PIL import Image

from dfdetect.data.demo import DemoSpec, plan_batch
from dfdetect.data.demo.render import render_original

CRFS = (30, 32, 35, 38, 40)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def photo_video(size: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        photo = Image.open(file).convert("RGB")
    face = photo.crop((90, 60, 430, 400))  # the face and some surround, square
    frames = []
    for t in range(n_frames):
        dx, dy = 3 * np.sin(t / 9), 2 * np.cos(t / 13)
        frame = face.transform(face.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), Image.Resampling.BILINEAR)
        pixels = np.asarray(frame.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
        frames.append(np.clip(pixels + rng.normal(0, 1.5, pixels.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def demo_video(size: int, n_frames: int) -> np.ndarray:
    spec = DemoSpec.of(videos_per_batch=4, image_size=size, n_frame_slots=max(n_frames, 10), seed=3)
    family = plan_batch(0, spec).families[0]
    track = render_original(family.scene, spec, np.random.default_rng(1))[0]
    return track.pixels[:n_frames]


def h264_psnr(frames: np.ndarray, crf: int, folder: Path) -> float:
    path = str(folder / f"crf{crf}.mp4")
    size = (frames.shape[2], frames.shape[1])
    writer = imageio_ffmpeg.write_frames(
        path,
        size,
        fps=30,
        codec="libx264",
        quality=None,
        pix_fmt_out="yuv420p",
        output_params=["-crf", str(crf)],
        macro_block_size=1,
    )
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame).tobytes())
    writer.close()
    reader = imageio_ffmpeg.read_frames(path)
    meta = reader.__next__()
    width, height = meta["size"]
    decoded = [np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3) for raw in reader]
    return float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)]))


def jpeg_psnr(frames: np.ndarray, quality: int) -> float:
    values = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
        values.append(psnr(frame, np.asarray(Image.open(buffer).convert("RGB"))))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    videos = {
        "photo": photo_video(args.size, args.frames, np.random.default_rng(0)),
        "demo": demo_video(args.size, args.frames),
    }
    qualities = list(range(5, 96))
    with tempfile.TemporaryDirectory() as folder:
        for name, frames in videos.items():
            jpeg = {quality: jpeg_psnr(frames, quality) for quality in qualities}
            print(f"{name} video ({len(frames)} frames, {args.size} px):")
            for crf in CRFS:
                target = h264_psnr(frames, crf, Path(folder))
                best = min(qualities, key=lambda quality: abs(jpeg[quality] - target))
                print(f"  CRF {crf}: H.264 PSNR {target:.2f} dB -> JPEG quality {best} ({jpeg[best]:.2f} dB)")


if __name__ == "__main__":
    main()
