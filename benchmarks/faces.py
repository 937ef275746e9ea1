"""Face-extraction speed: per-frame vs batched MTCNN detection on one generated video.

    .venv/bin/python benchmarks/faces.py [--frames 48] [--size 640x360] [--batch-size 32]

Builds an mp4 with a real face (scikit-image's astronaut) moving across the frame, then prints
frames/s of ``extract_video_faces`` with batch_size 1 and with batched detection, and where
the time of the batched pipeline goes (decode, detection, crop + PNG encoding).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dfdetect.data.faces import decode, detect, extract  # noqa: E402
from dfdetect.testkit import videos  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"size {text!r}: want WIDTHxHEIGHT, e.g. 640x360")
    return int(width), int(height)


def time_extraction(video: Path, detector: detect.FaceDetector, settings: detect.FaceSettings) -> tuple[float, int]:
    start = time.perf_counter()
    found = extract.extract_video_faces(video, detector, settings)
    return time.perf_counter() - start, found.n_faces


def time_stages(video: Path, detector: detect.FaceDetector, settings: detect.FaceSettings) -> dict[str, float]:
    """The batched pipeline run stage by stage, so each stage's time is measured alone."""
    start = time.perf_counter()
    frames = [frame for _, frame in decode.iter_video_frames(video, settings.every_k)]
    decoded = time.perf_counter()
    boxes = detect.detect_faces(frames, detector, settings)
    detected = time.perf_counter()
    for frame, frame_boxes in zip(frames, boxes):
        for box in frame_boxes:
            extract.png_bytes(detect.crop_face(frame, box, settings))
    cropped = time.perf_counter()
    return {"decode": decoded - start, "detect": detected - decoded, "crop+png": cropped - detected}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48, help="frames in the generated video")
    parser.add_argument("--size", type=parse_size, default=(640, 360), help="frame size WIDTHxHEIGHT")
    parser.add_argument("--batch-size", type=int, default=32, help="frames per batched detection call")
    parser.add_argument("--min-face-size", type=int, default=40, help="MTCNN minimum face size, px")
    parser.add_argument("--device", default=None, help="TensorFlow device, e.g. CPU:0 or GPU:0 (default: GPU if any)")
    args = parser.parse_args(argv)

    width, height = args.size
    face_height = max(24, round(height * 0.27))  # a DFDC-like share of the frame height
    frames, _ = videos.face_frames(["astronaut"], args.frames, size=args.size, face_heights=face_height)
    per_frame = detect.FaceSettings.of(batch_size=1, min_face_size=args.min_face_size)
    batched = detect.FaceSettings.of(batch_size=args.batch_size, min_face_size=args.min_face_size)

    with tempfile.TemporaryDirectory(prefix="dfdetect-bench-faces-") as folder:
        video = videos.write_mp4(Path(folder) / "bench.mp4", frames, fps=30)
        detector = detect.load_detector(args.device)
        # Warm-up: the first calls build TF kernels for each input shape; keep that out of the timings.
        warm = [frame for _, frame in itertools.islice(decode.iter_video_frames(video), args.batch_size)]
        detect.detect_faces(warm[:1], detector, per_frame)
        detect.detect_faces(warm, detector, batched)

        single_s, single_faces = time_extraction(video, detector, per_frame)
        batch_s, batch_faces = time_extraction(video, detector, batched)
        stages = time_stages(video, detector, batched)

    print(
        f"video: {args.frames} frames {width}x{height}, face {face_height} px tall; "
        f"min_face_size {args.min_face_size} (detection at scale {detect.detection_scale(args.min_face_size):g}); "
        f"device {getattr(detector, 'device', '?')}"
    )
    print(
        f"per-frame detection (batch 1): {args.frames / single_s:7.1f} frames/s "
        f"({single_s:.2f} s, {single_faces} faces)"
    )
    print(
        f"batched detection (batch {args.batch_size}): {args.frames / batch_s:7.1f} frames/s "
        f"({batch_s:.2f} s, {batch_faces} faces)"
    )
    print(f"speed-up of batching: {single_s / batch_s:.2f}x")
    total = sum(stages.values())
    shares = ", ".join(f"{name} {seconds / total:.0%} ({seconds:.2f} s)" for name, seconds in stages.items())
    print(f"batched pipeline by stage: {shares}; decode alone {args.frames / stages['decode']:.0f} frames/s")


if __name__ == "__main__":
    main()
