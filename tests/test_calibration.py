"""Calibration of video scores: temperature and Platt scaling fitted on validation, ECE, the file format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import log_loss

from dfdetect.evaluation import calibration
from dfdetect.evaluation.calibration import Calibration, fit_calibration, fit_platt, fit_temperature
from dfdetect.evaluation.metrics import expected_calibration_error


def synthetic(temperature: float, n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from calibrated probabilities sigmoid(z); scores of a model ``temperature`` times
    too confident: sigmoid(temperature * z)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, n)
    labels = (rng.random(n) < expit(logits)).astype(int)
    return labels, expit(temperature * logits)


@pytest.mark.parametrize("temperature", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(temperature):
    labels, scores = synthetic(temperature)
    assert fit_temperature(labels, scores) == pytest.approx(temperature, rel=0.05)
    fitted = fit_calibration(labels, scores, "temperature")
    assert fitted.temperature == pytest.approx(temperature, rel=0.05) and fitted.intercept == 0
    assert fitted.validation["log_loss_calibrated"] < fitted.validation["log_loss"]
    assert fitted.validation["ece_calibrated"] < fitted.validation["ece"]


def test_platt_scaling_recovers_slope_and_shift():
    rng = np.random.default_rng(1)
    logits = rng.normal(0.0, 2.0, 20_000)
    labels = (rng.random(len(logits)) < expit(logits)).astype(int)
    scores = expit((logits - 0.8) * 2.0)  # sigmoid(a * logit + b) undoes it with a = 0.5, b = 0.8
    slope, intercept = fit_platt(labels, scores)
    assert (slope, intercept) == pytest.approx((0.5, 0.8), abs=0.05)


@pytest.mark.parametrize("method", ["temperature", "platt"])
@pytest.mark.parametrize("seed", range(6))
def test_calibrated_validation_log_loss_is_never_above_the_raw_one(method, seed):
    """On small, badly ranked or already calibrated validation splits too: the identity is a candidate."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 60))
    labels = np.r_[0, 1, rng.integers(0, 2, n - 2)]
    kind = seed % 3
    scores = (
        rng.random(n)  # noise
        if kind == 0
        else np.clip(labels * 0.6 + rng.random(n) * 0.4, 0, 1)  # ranked well, under-confident
        if kind == 1
        else 1 - np.clip(labels * 0.9 + rng.random(n) * 0.1, 0, 1)  # ranked the wrong way round, over-confident
    )
    fitted = fit_calibration(labels, scores, method)
    raw = log_loss(labels, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])
    calibrated = log_loss(labels, np.clip(fitted.apply(scores), 1e-15, 1 - 1e-15), labels=[0, 1])
    assert fitted.validation["log_loss"] == pytest.approx(raw)
    assert fitted.validation["log_loss_calibrated"] == pytest.approx(calibrated)
    assert calibrated <= raw + 1e-12
    assert fitted.slope > 0  # the order of the scores, so ROC AUC, never changes


def test_one_class_validation_keeps_the_scores_and_says_why():
    fitted = fit_calibration(np.ones(5, dtype=int), np.linspace(0.2, 0.9, 5))
    assert (fitted.slope, fitted.intercept) == (1.0, 0.0)
    assert "only one class" in fitted.note
    assert fitted.apply([0.3, 0.7]) == pytest.approx([0.3, 0.7]) and fitted.describe() == "temperature: raw scores kept"


def test_expected_calibration_error_by_hand():
    labels = np.array([0, 0, 1, 1, 1])
    scores = np.array([0.05, 0.15, 0.55, 0.65, 1.0])
    # bins of 0.5: [0, 0.5): 2 videos, share FAKE 0, mean score 0.1; [0.5, 1]: 3 videos, share 1, mean 0.7333
    expected = (2 * 0.1 + 3 * (1 - 2.2 / 3)) / 5
    assert expected_calibration_error(labels, scores, bins=2) == pytest.approx(expected)
    assert expected_calibration_error([0, 1], [0.0, 1.0], bins=10) == 0.0


def test_the_file_round_trips_and_a_bad_one_names_itself(tmp_path):
    labels, scores = synthetic(2.0, n=500)
    fitted = fit_calibration(labels, scores, "temperature")
    path = tmp_path / "calibration.json"
    fitted.save(path)
    content = json.loads(path.read_text())
    assert content["method"] == "temperature" and content["temperature"] == pytest.approx(fitted.temperature)
    assert content["slope"] == pytest.approx(1 / content["temperature"]) and content["fitted_on"]["n"] == 500
    loaded = calibration.load(path)
    assert loaded == fitted
    assert loaded.apply(scores) == pytest.approx(expit(np.log(scores / (1 - scores)) / fitted.temperature))
    path.write_text(json.dumps({"method": "isotonic", "slope": 1, "intercept": 0}))
    with pytest.raises(ValueError, match=f"{path}: not a dfdetect calibration"):
        calibration.load(path)
    assert Calibration("platt", 0.5, 0.1).describe() == "platt a=0.5 b=0.1"


def test_a_perfectly_separated_validation_split_does_not_turn_scores_into_certainties():
    """Plain maximum likelihood sends T to 0 here (every score to 0 or 1); Platt's targets keep it finite."""
    labels = np.r_[np.zeros(8, dtype=int), np.ones(12, dtype=int)]
    modest = np.r_[np.linspace(0.05, 0.3, 8), np.linspace(0.7, 0.97, 12)]
    temperature = fit_temperature(labels, modest)
    assert 0.1 < temperature < 1  # sharpened towards Platt's targets (12/13 and 1/9), not to certainty
    fitted = fit_calibration(labels, modest)
    assert not fitted.kept_raw and fitted.apply(modest).max() < 0.999  # maximum likelihood: 1.0
    # already over-confident: softening towards the targets is worse on these labels, so the raw scores stay
    confident = np.r_[np.full(8, 1e-4), np.full(12, 1 - 1e-4)]
    kept = fit_calibration(labels, confident)
    assert kept.kept_raw and "not better on the validation labels" in kept.note
    assert kept.validation["log_loss_calibrated"] == kept.validation["log_loss"]
