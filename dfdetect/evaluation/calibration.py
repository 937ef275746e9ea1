"""Calibrated probabilities: one monotone map of a model's video scores, fitted on its validation split.

A detector trained with class weights on a small split is often over- or under-confident: its log
loss (the competition's metric) punishes that, its ROC AUC does not see it. Calibration fits, on
the validation split's video scores, either

- ``temperature`` scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): one
  parameter T > 0, ``p' = sigmoid(logit(p) / T)``; or
- ``platt`` scaling (Platt 1999): ``p' = sigmoid(a * logit(p) + b)``, which can also shift the prior.

Both are fitted by minimising the cross-entropy against Platt's smoothed targets, (N+ + 1) / (N+ + 2)
for FAKE and 1 / (N- + 2) for REAL videos (Platt 1999, section 2.2; scikit-learn's sigmoid
calibration does the same): on a validation split that the model separates perfectly, as small
in-distribution splits often are, the plain maximum-likelihood temperature runs to zero and turns
every score into 0 or 1, which the next unseen video punishes with a log loss of 30. Both keep the
order of the scores, so ROC AUC and the decision calls are unchanged. A fit whose log loss on the
validation labels is not below the raw scores' is not used: the raw scores are kept, and the file
says why, so the calibrated validation log loss is never above the raw one.

The evaluate job writes the fit next to the model, ``models/{model}/calibration.json``::

    {
      "format": 1,
      "method": "temperature",            # or "platt"
      "temperature": 2.41,                # temperature scaling only
      "slope": 0.415, "intercept": 0.0,   # p' = sigmoid(slope * logit(p) + intercept)
      "fitted_on": {"split": "validation", "n": 29, "n_real": 11, "n_fake": 18},
      "validation": {"log_loss": 0.52, "log_loss_calibrated": 0.41, "ece": 0.21, "ece_calibrated": 0.08},
      "note": "..."                       # only when the raw scores were kept (slope 1, intercept 0), and why
    }

``logit`` clips probabilities to [1e-15, 1 - 1e-15] first, as the log loss does. ``load`` and
``Calibration.apply`` are what ``dfdetect predict`` uses; nothing here imports Keras.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit

from dfdetect.atomic import atomic_write_text
from dfdetect.evaluation.metrics import (
    LOG_LOSS_EPS,
    expected_calibration_error,
    labels_and_scores,
    one_class_reason,
    probability_metrics,
)

CALIBRATION_METHODS = ("temperature", "platt")
FORMAT = 1
# Temperatures searched (on a log scale): far beyond what a trained model needs either way.
TEMPERATURE_BOUNDS = (1e-2, 1e2)


def logit(scores: Any) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [1e-15, 1 - 1e-15] (the log loss's clip)."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return np.log(clipped) - np.log1p(-clipped)


def cross_entropy(targets: np.ndarray, logits: np.ndarray) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against (soft) ``targets``, stably from the logits:
    -t log s(z) - (1 - t) log(1 - s(z)) = log(1 + e^z) - t z."""
    return float(np.mean(np.logaddexp(0.0, logits) - targets * logits))


def smoothed_targets(labels: np.ndarray) -> np.ndarray:
    """Platt's targets: (N+ + 1) / (N+ + 2) for label 1, 1 / (N- + 2) for label 0 (a prior that keeps
    the fit finite when the scores separate the classes)."""
    n_fake, n_real = int((labels == 1).sum()), int((labels == 0).sum())
    return np.where(labels == 1, (n_fake + 1) / (n_fake + 2), 1 / (n_real + 2))


@dataclass(frozen=True)
class Calibration:
    """``p' = sigmoid(slope * logit(p) + intercept)``; temperature scaling has ``intercept`` 0 and
    ``slope`` 1 / T."""

    method: str  # one of CALIBRATION_METHODS
    slope: float
    intercept: float
    fitted_on: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def temperature(self) -> float | None:
        return 1.0 / self.slope if self.method == "temperature" else None

    def apply(self, scores: Any) -> np.ndarray:
        """Calibrated probabilities of ``scores`` (any shape); NaN stays NaN; the identity returns them as they are."""
        if self.slope == 1.0 and self.intercept == 0.0:
            return np.array(scores, dtype=np.float64)
        return expit(self.slope * logit(scores) + self.intercept)

    @property
    def kept_raw(self) -> bool:
        """Whether the fit was not used (``note`` says why): the map is the identity."""
        return self.note is not None

    def describe(self) -> str:
        if self.kept_raw:
            return f"{self.method}: raw scores kept"
        if self.method == "temperature":
            return f"temperature T={self.temperature:.4g}"
        return f"platt a={self.slope:.4g} b={self.intercept:.4g}"

    def to_dict(self) -> dict[str, Any]:
        content: dict[str, Any] = {"format": FORMAT, "method": self.method}
        if self.method == "temperature":
            content["temperature"] = self.temperature
        content |= {"slope": self.slope, "intercept": self.intercept}
        content |= {"fitted_on": self.fitted_on, "validation": self.validation}
        if self.note:
            content["note"] = self.note
        return content

    @classmethod
    def from_dict(cls, content: dict[str, Any], source: str = "calibration") -> "Calibration":
        try:
            method = content["method"]
            if method not in CALIBRATION_METHODS:
                raise ValueError(f"unknown method {method!r} (want {', '.join(CALIBRATION_METHODS)})")
            slope, intercept = float(content["slope"]), float(content["intercept"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: not a dfdetect calibration ({error})") from None
        if not (np.isfinite(slope) and np.isfinite(intercept)):
            raise ValueError(f"{source}: slope and intercept must be finite")
        return cls(
            method,
            slope,
            intercept,
            dict(content.get("fitted_on") or {}),
            dict(content.get("validation") or {}),
            content.get("note"),
        )

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def load(path: str | Path) -> Calibration:
    """A calibration.json; ValueError naming the file when it is unreadable or not a calibration."""
    try:
        content = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the calibration ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: not a dfdetect calibration (no JSON object)")
    return Calibration.from_dict(content, str(path))


def fit_temperature(labels: Any, scores: Any) -> float:
    """The temperature T minimising the cross-entropy of ``sigmoid(logit(scores) / T)`` against
    Platt's smoothed targets of ``labels``.

    The loss is convex in 1 / T, so Brent's bounded search over log T finds its minimum.
    """
    labels, scores = labels_and_scores(labels, scores)
    logits, targets = logit(scores), smoothed_targets(labels)
    low, high = np.log(TEMPERATURE_BOUNDS)
    found = minimize_scalar(
        lambda log_t: cross_entropy(targets, logits / np.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(found.x))


def fit_platt(labels: Any, scores: Any) -> tuple[float, float]:
    """(a, b) of ``sigmoid(a * logit(scores) + b)`` minimising the cross-entropy against Platt's
    smoothed targets (a convex problem in (a, b): L-BFGS from the identity)."""
    labels, scores = labels_and_scores(labels, scores)
    logits, targets = logit(scores), smoothed_targets(labels)

    def loss_and_gradient(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        slope, intercept = parameters
        combined = slope * logits + intercept
        residual = expit(combined) - targets
        return cross_entropy(targets, combined), np.array([np.mean(residual * logits), np.mean(residual)])

    found = minimize(loss_and_gradient, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(found.x[0]), float(found.x[1])


def calibration_metrics(labels: Any, raw: Any, calibrated: Any, bins: int) -> dict[str, float]:
    """Log loss and expected calibration error of the raw and the calibrated scores."""
    return {
        "log_loss": probability_metrics(labels, raw)["log_loss"],
        "log_loss_calibrated": probability_metrics(labels, calibrated)["log_loss"],
        "ece": expected_calibration_error(labels, raw, bins),
        "ece_calibrated": expected_calibration_error(labels, calibrated, bins),
    }


def fit_calibration(labels: Any, scores: Any, method: str = "temperature", bins: int = 10) -> Calibration:
    """Fit ``method`` on (validation) ``labels`` and video ``scores``.

    With one class present nothing can be fitted: the identity, with a note. A fit whose log loss
    on these scores is above the raw one keeps the identity too (it cannot be better, since the
    identity is one of its candidates).
    """
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration {method!r}; expected one of {', '.join(CALIBRATION_METHODS)}")
    labels, scores = labels_and_scores(labels, scores)
    fitted_on = {
        "split": "validation",
        "n": int(len(labels)),
        "n_real": int((labels == 0).sum()),
        "n_fake": int((labels == 1).sum()),
    }

    def identity(note: str) -> Calibration:
        return _with_metrics(Calibration(method, 1.0, 0.0, fitted_on, note=note), labels, scores, bins)

    reason = one_class_reason(labels)
    if reason is not None:
        return identity(f"not fitted: the validation split has {reason}")
    if method == "temperature":
        fitted = Calibration(method, 1.0 / fit_temperature(labels, scores), 0.0, fitted_on)
    else:
        fitted = Calibration(method, *fit_platt(labels, scores), fitted_on)
    if fitted.slope <= 0:
        return identity(f"the fit ({fitted.describe()}) would reverse the order of the scores")
    fitted = _with_metrics(fitted, labels, scores, bins)
    if fitted.validation["log_loss_calibrated"] >= fitted.validation["log_loss"]:
        return identity(
            f"the fit ({fitted.describe()}) is not better on the validation labels than the raw scores "
            f"(log loss {fitted.validation['log_loss_calibrated']:.4f} vs {fitted.validation['log_loss']:.4f})"
        )
    return fitted


def _with_metrics(calibration: Calibration, labels: np.ndarray, scores: np.ndarray, bins: int) -> Calibration:
    validation = calibration_metrics(labels, scores, calibration.apply(scores), bins)
    return Calibration(
        calibration.method,
        calibration.slope,
        calibration.intercept,
        calibration.fitted_on,
        validation,
        calibration.note,
    )
