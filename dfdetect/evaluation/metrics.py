"""Video-level evaluation metrics from probabilities, and the decision threshold.

The study computed ROC AUC from thresholded labels and scored one frame per video. Here every
ranking metric (ROC AUC, average precision, log loss) is computed from the video's probability
of FAKE, and thresholded metrics are reported at 0.5 and at a threshold chosen on the
validation split, never on test. All metric arithmetic is scikit-learn's.

Conventions: label 1 is FAKE, 0 is REAL; a video is called FAKE when its score >= threshold
(the same rule as ``sklearn.metrics.roc_curve``). No TensorFlow/Keras here: this runs in light
jobs. Numbers only: the figures are ``dfdetect.evaluation.plots``; frame scores -> video scores is
``dfdetect.evaluation.aggregate``.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    auc,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from dfdetect.data.facebatch import MANIPULATION_COLUMN

log = logging.getLogger(__name__)

LOG_LOSS_EPS = 1e-15  # the DFDC competition clipped probabilities to [1e-15, 1 - 1e-15]
DEFAULT_THRESHOLD = 0.5
CLASS_NAMES = {0: "REAL", 1: "FAKE"}


# --- input checks --------------------------------------------------------------------------------


def labels_and_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated (labels int 0/1, scores float in [0, 1]) arrays of equal length."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D of equal length")
    if len(labels) == 0:
        raise ValueError("no videos to evaluate")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (REAL) or 1 (FAKE); found {sorted(set(labels.tolist()) - {0, 1})}")
    bad = ~np.isfinite(scores) | (scores < 0) | (scores > 1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} score(s) are not probabilities in [0, 1] (first at position "
            f"{int(np.flatnonzero(bad)[0])}); drop videos without frames before evaluating"
        )
    return labels.astype(np.int64), scores


def one_class_reason(labels: np.ndarray) -> str | None:
    """Why a ranking metric is undefined on ``labels``, or None when both classes are present."""
    present = set(np.unique(labels).tolist())
    if present == {0, 1}:
        return None
    only = int(present.pop())
    return f"only one class present: {len(labels)} {CLASS_NAMES[only]} videos and no {CLASS_NAMES[1 - only]}"


# --- metrics -------------------------------------------------------------------------------------


def probability_metrics(labels: Any, scores: Any) -> dict[str, Any]:
    """roc_auc, average_precision and log_loss from probabilities.

    With one class present roc_auc is None plus ``roc_auc_undefined`` (the reason); average
    precision is None plus ``average_precision_undefined`` when there is no FAKE video (with
    only FAKE videos it is defined, and trivially 1). log_loss is always computed, on scores
    clipped to [1e-15, 1 - 1e-15] as in the competition.
    """
    labels, scores = labels_and_scores(labels, scores)
    clipped = np.clip(scores, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    result: dict[str, Any] = {"log_loss": float(log_loss(labels, clipped, labels=[0, 1]))}
    reason = one_class_reason(labels)
    if reason is None:
        result["roc_auc"] = float(roc_auc_score(labels, scores))
    else:
        result["roc_auc"] = None
        result["roc_auc_undefined"] = reason
    if labels.any():
        result["average_precision"] = float(average_precision_score(labels, scores))
    else:
        result["average_precision"] = None
        result["average_precision_undefined"] = f"no FAKE video among {len(labels)}"
    return result


def expected_calibration_error(labels: Any, scores: Any, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width probability bins: the mean over videos of |share of FAKE in the
    video's bin - mean score in that bin| (Guo et al., ICML 2017, eq. 3; 1.0 falls in the last bin)."""
    labels, scores = labels_and_scores(labels, scores)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    which = np.minimum((scores * bins).astype(np.int64), bins - 1)
    fake = np.bincount(which, weights=labels, minlength=bins)
    score_sums = np.bincount(which, weights=scores, minlength=bins)
    return float(np.abs(fake - score_sums).sum() / len(labels))


def threshold_metrics(labels: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """Metrics of the calls ``score >= threshold`` -> FAKE; an undefined ratio is 0.0, silently."""
    labels, scores = labels_and_scores(labels, scores)
    predicted = (scores >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(count) for count in confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    with warnings.catch_warnings():
        # balanced accuracy warns when a predicted class is absent from labels (one-class splits)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        balanced = balanced_accuracy_score(labels, predicted)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "balanced_accuracy": float(balanced),
        "precision": float(precision_score(labels, predicted, zero_division=0.0)),
        "recall": float(recall_score(labels, predicted, zero_division=0.0)),
        "specificity": float(recall_score(labels, predicted, pos_label=0, zero_division=0.0)),
        "f1": float(f1_score(labels, predicted, zero_division=0.0)),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def cut_below(thresholds: np.ndarray, index: int) -> float:
    """A threshold halfway between ``thresholds[index]`` and the next lower distinct score.

    ``thresholds`` is roc_curve's (inf, then distinct scores descending). Any cut in that gap
    makes the same calls on validation; the midpoint is the least sensitive to small score shifts.
    """
    if index == 0:  # "call nothing FAKE": a cut above the highest score
        highest = thresholds[1]
        return float((highest + 1.0) / 2) if highest < 1.0 else float(np.nextafter(1.0, 2.0))
    lower = thresholds[index + 1] if index + 1 < len(thresholds) else 0.0
    return float((thresholds[index] + lower) / 2)


def threshold_choice(labels: Any, scores: Any) -> tuple[float, str | None]:
    """(threshold maximising balanced accuracy on these labels, None) or (0.5, why it fell back).

    Balanced accuracy at each roc_curve point is (tpr + 1 - fpr) / 2. Ties (within 1e-12) go to
    the cut closest to 0.5, then to the higher cut, so the choice is deterministic.
    """
    labels, scores = labels_and_scores(labels, scores)
    reason = one_class_reason(labels)
    if reason is not None:
        return DEFAULT_THRESHOLD, f"validation split has {reason}; using {DEFAULT_THRESHOLD}"
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    balanced = (tpr + 1 - fpr) / 2
    best = np.flatnonzero(np.isclose(balanced, balanced.max(), rtol=0.0, atol=1e-12))
    cuts = [cut_below(thresholds, int(index)) for index in best]
    return min(cuts, key=lambda cut: (abs(cut - DEFAULT_THRESHOLD), -cut)), None


def choose_threshold(labels: Any, scores: Any) -> float:
    """The threshold from :func:`threshold_choice`; pass the VALIDATION split's labels and scores."""
    threshold, reason = threshold_choice(labels, scores)
    if reason is not None:
        log.warning("threshold: %s", reason)
    return threshold


def bootstrap_auc_samples(
    labels: Any, scores: Any, families: Any, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """ROC AUC of each family bootstrap resample that holds both classes.

    Videos of one family (a real video and the fakes made from it) are not independent, so
    whole families are drawn with replacement. A family drawn k times weighs k in the AUC
    (``sample_weight``), which equals repeating its rows k times without building the copies.
    """
    labels, scores = labels_and_scores(labels, scores)
    family_of_video, family_names = pd.factorize(pd.Series(np.asarray(families, dtype=object)), sort=True)
    if len(family_of_video) != len(labels):
        raise ValueError(f"{len(family_of_video)} families for {len(labels)} videos")
    if (family_of_video < 0).any():
        raise ValueError(f"{int((family_of_video < 0).sum())} video(s) have no family")
    n_families = len(family_names)
    rng = np.random.default_rng(seed)
    aucs = []
    # Inputs are validated above; skipping sklearn's per-call checks makes a resample several times cheaper.
    # roc_curve + auc is what roc_auc_score computes for binary labels.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for _ in range(n_resamples):
            draws = np.bincount(rng.integers(0, n_families, n_families), minlength=n_families)
            weights = draws[family_of_video]
            drawn = weights > 0
            if one_class_reason(labels[drawn]) is not None:
                continue
            fpr, tpr, _ = roc_curve(labels[drawn], scores[drawn], sample_weight=weights[drawn])
            aucs.append(auc(fpr, tpr))
    return np.asarray(aucs, dtype=np.float64)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    if len(samples) == 0:
        return None
    low, high = np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def bootstrap_auc_interval(
    labels: Any, scores: Any, families: Any, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile interval of the family-bootstrap ROC AUC; None when no resample has both classes.

    Resamples with one class are skipped (not redrawn), so the interval is over the rest.
    """
    return percentile_interval(bootstrap_auc_samples(labels, scores, families, n_resamples, seed), level)


def table_labels_and_scores(table: pd.DataFrame, name: str, score_column: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return labels_and_scores(table["label"].to_numpy(), table[score_column].to_numpy())
    except ValueError as error:
        raise ValueError(f"{name} table: {error}") from error


def evaluation_metrics(
    test: pd.DataFrame, validation: pd.DataFrame, score_column: str = "p_fake", n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """The ``metrics.json`` dict for one model; tables hold ``label``, ``family`` and ``score_column``.

    The second threshold is chosen on ``validation`` and only applied to ``test``.
    """
    for name, table in (("test", test), ("validation", validation)):
        absent = [column for column in ("label", "family", score_column) if column not in table.columns]
        if absent:
            raise ValueError(f"{name} table lacks column(s) {', '.join(absent)}")
    labels, scores = table_labels_and_scores(test, "test", score_column)
    result: dict[str, Any] = {
        "n": int(len(labels)),
        "n_real": int((labels == 0).sum()),
        "n_fake": int((labels == 1).sum()),
        "n_families": int(test["family"].nunique()),
    }
    result |= probability_metrics(labels, scores)
    if result["roc_auc"] is None:
        result["roc_auc_ci"] = None
        result["roc_auc_ci_resamples"] = 0
    else:
        aucs = bootstrap_auc_samples(labels, scores, test["family"].to_numpy(), n_resamples, seed)
        interval = percentile_interval(aucs)
        result["roc_auc_ci"] = list(interval) if interval else None
        result["roc_auc_ci_resamples"] = int(len(aucs))  # resamples with both classes
    result["at_0.5"] = threshold_metrics(labels, scores, DEFAULT_THRESHOLD)
    threshold, reason = threshold_choice(*table_labels_and_scores(validation, "validation", score_column))
    at_validation: dict[str, Any] = {"threshold": threshold}
    if reason is not None:
        at_validation["threshold_fallback"] = reason
    result["at_validation_threshold"] = at_validation | threshold_metrics(labels, scores, threshold)
    return result


# --- per manipulation and under perturbations ---------------------------------------------------

UNKNOWN_MANIPULATION = "unknown"  # a FAKE whose metadata names no manipulation
ROBUSTNESS_COLUMNS = ["perturbation", "level", "roc_auc", "log_loss", "n"]


def per_manipulation_auc(
    predictions: pd.DataFrame,
    score_column: str = "p_fake",
    manipulation_column: str = MANIPULATION_COLUMN,
    n_resamples: int = 0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """ROC AUC of each manipulation's fakes against all the REAL videos of ``predictions``.

    ``predictions`` holds ``label``, ``score_column`` and, where the data says which
    manipulation made each fake, ``manipulation_column`` (REAL rows: empty). Without that
    column the result is ``{}`` (real DFDC metadata has none). FAKE rows without a value are
    grouped as ``"unknown"``. Per kind: ``roc_auc`` (None plus ``roc_auc_undefined`` without
    REAL videos), ``n_fake`` and ``n_real``; with ``n_resamples`` > 0 and a ``family`` column
    also ``roc_auc_ci``, the family-bootstrap 95% interval on that subset. Kinds are sorted.
    """
    if manipulation_column not in predictions.columns:
        return {}
    labels, scores = table_labels_and_scores(predictions, "predictions", score_column)
    kinds = np.array(
        [
            UNKNOWN_MANIPULATION if pd.isna(kind) or kind == "" else str(kind)
            for kind in predictions[manipulation_column].astype(object)
        ],
        dtype=object,
    )
    real = labels == 0
    families = predictions["family"].to_numpy() if "family" in predictions.columns else None
    result: dict[str, dict[str, Any]] = {}
    for kind in sorted(set(kinds[labels == 1].tolist())):
        subset = real | ((labels == 1) & (kinds == kind))
        entry: dict[str, Any] = {"n_fake": int((labels[subset] == 1).sum()), "n_real": int(real.sum())}
        reason = one_class_reason(labels[subset])
        if reason is None:
            entry["roc_auc"] = float(roc_auc_score(labels[subset], scores[subset]))
            if n_resamples > 0 and families is not None:
                interval = bootstrap_auc_interval(labels[subset], scores[subset], families[subset], n_resamples, seed)
                entry["roc_auc_ci"] = list(interval) if interval else None
        else:
            entry["roc_auc"] = None
            entry["roc_auc_undefined"] = reason
        result[kind] = entry
    return result


def robustness_record(perturbation: str, level: int, labels: Any, scores: Any) -> dict[str, Any]:
    """One ``robustness.csv`` row: roc_auc (None with one class), log_loss and n videos."""
    metrics = probability_metrics(labels, scores)
    return {
        "perturbation": perturbation,
        "level": int(level),
        "roc_auc": metrics["roc_auc"],
        "log_loss": metrics["log_loss"],
        "n": int(len(np.asarray(labels))),
    }


def mean_perturbed_auc(robustness: pd.DataFrame) -> float | None:
    """Mean ROC AUC over every perturbed row (level >= 1) with a defined AUC; None when there is none."""
    perturbed = robustness.loc[robustness["level"] >= 1, "roc_auc"].dropna()
    return float(perturbed.mean()) if len(perturbed) else None
