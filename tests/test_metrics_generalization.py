"""Per-manipulation ROC AUC (against scikit-learn on the subset), robustness rows and the robustness plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from dfdetect.evaluation.metrics import mean_perturbed_auc, per_manipulation_auc, robustness_record
from dfdetect.evaluation.plots import plot_robustness

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def predictions(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.75).astype(int)
    kinds = np.where(labels == 1, rng.choice(["swap", "reenact", "colour"], n), None)
    # each kind is detected to a different degree
    strength = pd.Series(kinds).map({"swap": 0.4, "reenact": 0.1, "colour": 0.0}).fillna(0.0).to_numpy()
    scores = np.clip(rng.uniform(0.1, 0.7, n) + labels * strength, 0, 1)
    return pd.DataFrame(
        {
            "video_id": [f"v{i}" for i in range(n)],
            "family": [f"f{i // 2}" for i in range(n)],
            "label": labels,
            "p_fake": scores,
            "manipulation": kinds,
        }
    )


def test_per_manipulation_auc_equals_sklearn_on_that_kinds_fakes_and_all_reals():
    table = predictions()
    result = per_manipulation_auc(table)
    assert list(result) == ["colour", "reenact", "swap"]
    reals = table["label"] == 0
    for kind, entry in result.items():
        subset = table[reals | (table["manipulation"] == kind)]
        assert entry["roc_auc"] == pytest.approx(roc_auc_score(subset["label"], subset["p_fake"]), abs=1e-12)
        assert entry["n_real"] == int(reals.sum())
        assert entry["n_fake"] == int((table["manipulation"] == kind).sum())
    assert result["swap"]["roc_auc"] > result["colour"]["roc_auc"]


def test_per_manipulation_auc_without_the_column_is_empty_and_unnamed_fakes_are_unknown():
    table = predictions()
    assert per_manipulation_auc(table.drop(columns="manipulation")) == {}
    table.loc[table.index[table["label"] == 1][:3], "manipulation"] = ""
    assert per_manipulation_auc(table)["unknown"]["n_fake"] == 3


def test_per_manipulation_auc_bootstrap_interval_and_one_class():
    table = predictions()
    entry = per_manipulation_auc(table, n_resamples=200)["swap"]
    low, high = entry["roc_auc_ci"]
    assert low <= entry["roc_auc"] <= high
    only_fakes = per_manipulation_auc(table[table["label"] == 1])
    assert all(entry["roc_auc"] is None and "REAL" in entry["roc_auc_undefined"] for entry in only_fakes.values())


def test_robustness_record_and_mean_perturbed_auc():
    labels, scores = np.array([0, 0, 1, 1, 1]), np.array([0.2, 0.6, 0.5, 0.9, 0.7])
    row = robustness_record("blur", 3, labels, scores)
    assert row == {
        "perturbation": "blur",
        "level": 3,
        "roc_auc": pytest.approx(roc_auc_score(labels, scores)),
        "log_loss": pytest.approx(log_loss(labels, scores)),
        "n": 5,
    }
    table = pd.DataFrame(
        {"perturbation": ["none", "blur", "blur", "noise"], "level": [0, 1, 2, 1], "roc_auc": [1.0, 0.8, None, 0.6]}
    )
    assert mean_perturbed_auc(table) == pytest.approx(0.7)
    assert mean_perturbed_auc(table[table["level"] == 0]) is None


def test_robustness_plot_is_a_png_and_copes_with_gaps_and_no_auc(tmp_path):
    rows = [
        {"perturbation": name, "level": level, "roc_auc": auc}
        for name, base in (("blur", 0.9), ("noise", 0.8))
        for level, auc in zip(range(1, 6), (base, base - 0.1, None, base - 0.3, base - 0.35))
    ]
    path = tmp_path / "robustness.png"
    plot_robustness(pd.DataFrame(rows), path, "model: AUC under perturbations", clean_auc=0.95)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    empty = tmp_path / "empty.png"
    plot_robustness(pd.DataFrame(rows).assign(roc_auc=None), empty, "no AUC")
    assert empty.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="roc_auc"):
        plot_robustness(pd.DataFrame({"perturbation": [], "level": []}), path, "bad")


def test_robustness_plot_does_not_touch_pyplot(tmp_path):
    import sys

    before = "matplotlib.pyplot" in sys.modules
    plot_robustness(pd.DataFrame({"perturbation": ["blur"], "level": [1], "roc_auc": [0.7]}), tmp_path / "p.png", "t")
    assert ("matplotlib.pyplot" in sys.modules) == before
