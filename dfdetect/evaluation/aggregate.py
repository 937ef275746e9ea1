"""Frame scores -> video scores: mean, median, or the DFDC winner's confident mean.

Pure numpy, so that scoring (``dfdetect.evaluation.scoring``, for evaluation and ``dfdetect predict``) does
not pay for importing scikit-learn and matplotlib.
"""

from __future__ import annotations

import numpy as np

AGGREGATIONS = ("mean", "median", "confident_mean")


def masked_mean(scores: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Row means over the ``selected`` entries; NaN for a row with none selected."""
    counts = selected.sum(axis=1)
    totals = np.where(selected, scores, 0.0).sum(axis=1)
    return np.divide(totals, counts, out=np.full(len(scores), np.nan), where=counts > 0)


def confident_mean(
    scores: np.ndarray,
    mask: np.ndarray,
    fake_threshold: float,
    real_threshold: float,
    enough_fake_share: float,
    most_real_share: float,
) -> np.ndarray:
    """The DFDC winner's ``confident_strategy`` per row over the filled slots.

    With n filled frames: if more than ``enough_fake_share * n`` frames score > ``fake_threshold``,
    the mean of those frames; else if more than ``most_real_share * n`` score < ``real_threshold``,
    the mean of those; else the mean of all filled frames. The fake branch wins when both hold.
    """
    n_filled = mask.sum(axis=1)
    confident_fake = mask & (scores > fake_threshold)
    confident_real = mask & (scores < real_threshold)
    use_fake = confident_fake.sum(axis=1) > enough_fake_share * n_filled
    use_real = ~use_fake & (confident_real.sum(axis=1) > most_real_share * n_filled)
    selected = np.where(use_fake[:, None], confident_fake, np.where(use_real[:, None], confident_real, mask))
    return masked_mean(scores, selected)


def aggregate_frame_scores(
    scores: np.ndarray,
    mask: np.ndarray,
    method: str = "mean",
    *,
    fake_threshold: float = 0.8,
    real_threshold: float = 0.2,
    enough_fake_share: float = 0.4,
    most_real_share: float = 0.9,
) -> np.ndarray:
    """Per-video scores (videos,) from per-frame P(FAKE) ``scores`` (videos, slots) over ``mask``ed slots.

    ``method``: ``mean``, ``median`` or ``confident_mean`` (see :func:`confident_mean`). The
    defaults of the latter are the winner's (selimsef, ``confident_strategy``): 0.8 / 0.2,
    "enough" = more than 40% of the frames (its ``fakes > n // 2.5``), "most" = more than 90%.
    The winner also required more than 11 confident frames out of its 32; that absolute floor
    is left out because our videos have up to 30 filled slots, and fewer for short videos,
    where it would switch the branch off.

    Unfilled slots are ignored whatever they hold. A video with no filled slot gets NaN: the
    caller decides whether to drop it or fail (metric functions here reject NaN scores).
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {method!r}; expected one of {', '.join(AGGREGATIONS)}")
    scores = np.asarray(scores, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if scores.ndim != 2 or scores.shape != mask.shape:
        raise ValueError(f"scores {scores.shape} and mask {mask.shape} must both be (videos, slots)")
    if not np.isfinite(scores[mask]).all():
        raise ValueError(f"{int((~np.isfinite(scores[mask])).sum())} filled slot(s) have a non-finite score")
    if method == "mean":
        return masked_mean(scores, mask)
    if method == "median":
        video_scores = np.full(len(scores), np.nan)
        filled = mask.any(axis=1)  # nanmedian warns on all-NaN rows, so skip empty videos
        video_scores[filled] = np.nanmedian(np.where(mask, scores, np.nan)[filled], axis=1)
        return video_scores
    return confident_mean(scores, mask, fake_threshold, real_threshold, enough_fake_share, most_real_share)
