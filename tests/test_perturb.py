"""DeeperForensics-1.0 perturbations: identity at level 0, monotone in level, seeded, the stated parameters."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image

from dfdetect.evaluation.perturb import (
    LEVELS,
    N_LEVELS,
    PERTURBATIONS,
    conditions,
    parameter,
    perturb_frames,
    video_seed,
)

ALL_LEVELS = range(1, N_LEVELS + 1)


@functools.lru_cache
def faces(size: int = 64) -> np.ndarray:
    """Four (size, size) crops of a real photo's face region (skimage's astronaut), slightly shifted."""
    from skimage.data import astronaut

    photo = Image.fromarray(astronaut())
    crops = [
        photo.crop((150 + dx, 20, 310 + dx, 180)).resize((size, size), Image.Resampling.LANCZOS) for dx in (0, 4, 8, 12)
    ]
    frames = np.stack([np.asarray(crop) for crop in crops])
    frames.setflags(write=False)
    return frames


def levels_of(perturbation: str, frames: np.ndarray, seed: int = 5) -> list[np.ndarray]:
    return [perturb_frames(perturbation, level, frames, seed).astype(np.float64) for level in range(N_LEVELS + 1)]


def strictly_decreasing(values: list[float]) -> bool:
    return all(later < earlier for earlier, later in zip(values, values[1:]))


def strictly_increasing(values: list[float]) -> bool:
    return strictly_decreasing([-value for value in values])


def high_frequency_energy(frames: np.ndarray) -> float:
    x = frames.astype(np.float64)
    laplacian = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.mean(laplacian**2))


def chroma(frames: np.ndarray) -> float:
    x = frames.astype(np.float64)
    return float(np.abs(x - x.mean(axis=-1, keepdims=True)).mean())


def test_the_table_is_deeperforensics_levels():
    assert PERTURBATIONS == ("saturation", "contrast", "block", "noise", "blur", "pixelation", "compression")
    assert LEVELS["saturation"] == (0.4, 0.3, 0.2, 0.1, 0.0)
    assert LEVELS["contrast"] == (0.85, 0.725, 0.6, 0.475, 0.35)
    assert LEVELS["block"] == (16, 32, 48, 64, 80)
    assert LEVELS["noise"] == (0.001, 0.002, 0.005, 0.01, 0.05)
    assert LEVELS["blur"] == (7, 9, 13, 17, 21)
    assert LEVELS["pixelation"] == (2, 3, 4, 5, 6)
    assert all(len(values) == N_LEVELS for values in LEVELS.values())
    assert parameter("blur", 0) is None and parameter("blur", 5) == 21
    assert len(conditions()) == 35 and conditions(("blur",)) == [("blur", level) for level in ALL_LEVELS]
    with pytest.raises(ValueError, match="unknown perturbation"):
        conditions(("sharpen",))


@pytest.mark.parametrize("perturbation", PERTURBATIONS)
def test_level_0_is_the_identity_and_a_copy(perturbation):
    frames = faces()
    out = perturb_frames(perturbation, 0, frames, seed=1)
    assert np.array_equal(out, frames) and out is not frames and out.flags.writeable


@pytest.mark.parametrize("perturbation", PERTURBATIONS)
def test_every_level_keeps_shape_and_dtype_changes_more_pixels_more_and_leaves_the_input(perturbation):
    frames = faces()
    before = frames.copy()
    outputs = levels_of(perturbation, frames)
    assert all(out.shape == frames.shape for out in outputs)
    assert perturb_frames(perturbation, 3, frames).dtype == np.uint8
    distance = [float(np.mean((out - frames) ** 2)) for out in outputs]
    assert distance[0] == 0 and strictly_increasing(distance), distance
    assert np.array_equal(frames, before)


@pytest.mark.parametrize("perturbation", PERTURBATIONS)
def test_seeded_perturbations_repeat(perturbation):
    frames = faces()
    first, again = (perturb_frames(perturbation, 4, frames, seed=9) for _ in range(2))
    assert np.array_equal(first, again)


@pytest.mark.parametrize("perturbation", ["block", "noise"])
def test_random_perturbations_depend_on_the_seed(perturbation):
    frames = faces()
    one, other = (perturb_frames(perturbation, 2, frames, seed=seed) for seed in (1, 2))
    assert not np.array_equal(one, other)
    assert video_seed("abc", 0) == video_seed("abc", 0) != video_seed("abd", 0) != video_seed("abc", 1)


def test_more_blur_and_pixelation_lower_high_frequency_energy():
    for perturbation in ("blur", "pixelation"):
        energy = [high_frequency_energy(out) for out in levels_of(perturbation, faces())]
        assert strictly_decreasing(energy), (perturbation, energy)


def test_blur_kernel_has_the_stated_size():
    impulse = np.zeros((1, 41, 41, 3), dtype=np.uint8)
    impulse[0, 20, 20] = 255
    reached = []
    for level in ALL_LEVELS:
        kernel = int(parameter("blur", level))
        spread = np.argwhere(perturb_frames("blur", level, impulse)[0, :, :, 0] > 0)
        assert spread.min() >= 20 - kernel // 2 and spread.max() <= 20 + kernel // 2  # no tap beyond the kernel
        reached.append(len(spread))
    assert strictly_increasing(reached)


def test_lower_saturation_lowers_chroma_down_to_grey_with_luma_kept():
    values = [chroma(out) for out in levels_of("saturation", faces())]
    assert strictly_decreasing(values), values
    grey = perturb_frames("saturation", 5, faces()).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1
    luma = faces().astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(grey[..., 0] - luma).max() <= 1


def test_contrast_scales_values_by_the_factor():
    frames = faces()
    for level in ALL_LEVELS:
        expected = np.rint(frames * parameter("contrast", level))
        assert np.abs(perturb_frames("contrast", level, frames) - expected).max() <= 1


def test_more_noise_raises_the_variance_of_the_difference_at_the_stated_variance():
    variances = [float(np.var(out - faces())) for out in levels_of("noise", faces())]
    assert strictly_increasing(variances), variances
    grey = np.full((2, 64, 64, 3), 128, dtype=np.uint8)  # far from clipping at level 1
    difference = perturb_frames("noise", 1, grey, seed=3).astype(np.float64) - 128
    # Y, Cb, Cr each get variance v (0..1 scale): R = Y + 1.402 Cr, G = Y - 0.344 Cb - 0.714 Cr, B = Y + 1.772 Cb
    expected = 0.001 * 255**2 * np.array([1 + 1.402**2, 1 + 0.344136**2 + 0.714136**2, 1 + 1.772**2])
    assert difference.reshape(-1, 3).var(axis=0) == pytest.approx(expected, rel=0.1)


def test_blocks_are_grey_and_scaled_to_the_crop_size():
    frames = np.zeros((3, 160, 160, 3), dtype=np.uint8)
    for level in ALL_LEVELS:
        out = perturb_frames("block", level, frames, seed=4)
        assert set(np.unique(out)) == {0, 128}
        covered = (out[..., 0] == 128).sum(axis=(1, 2))
        blocks = parameter("block", level)
        assert (covered <= blocks * 5 * 5).all() and (covered >= 0.6 * blocks * 25).all()  # 5 px blocks on 160 px
    small = perturb_frames("block", 1, np.zeros((1, 16, 16, 3), dtype=np.uint8), seed=4)
    assert 0 < (small[..., 0] == 128).sum() <= 16  # 1 px blocks on a 16 px crop


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("sharpen", 1), "unknown perturbation"),
        (("blur", 6), "0..5"),
        (("blur", -1), "0..5"),
        (("blur", 1.5), "0..5"),
    ],
)
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        perturb_frames(*arguments, faces())


def test_bad_frames_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        perturb_frames("blur", 1, faces().astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        perturb_frames("blur", 1, faces()[0])
