"""Video-level metrics: scikit-learn agreement, probability-based AUC, aggregation, thresholds, bootstrap, plots."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from dfdetect import figures
from dfdetect.evaluation import plots
from dfdetect.evaluation.aggregate import aggregate_frame_scores
from dfdetect.evaluation.metrics import (
    bootstrap_auc_interval,
    choose_threshold,
    evaluation_metrics,
    probability_metrics,
    threshold_choice,
    threshold_metrics,
)
from dfdetect.evaluation.plots import plot_confusion_matrix, plot_precision_recall, plot_roc, plot_score_histograms

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
SCORES = np.array([0.05, 0.40, 0.62, 0.30, 0.90, 0.55, 0.48, 0.97, 0.70, 0.20, 0.81, 0.66])
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scored_table(labels, scores, families=None) -> pd.DataFrame:
    families = families if families is not None else [f"family{i}" for i in range(len(labels))]
    return pd.DataFrame({"label": labels, "family": families, "p_fake": scores})


# --- agreement with scikit-learn -----------------------------------------------------------------


def test_probability_metrics_match_sklearn():
    result = probability_metrics(LABELS, SCORES)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(LABELS, SCORES))
    assert result["average_precision"] == pytest.approx(average_precision_score(LABELS, SCORES))
    assert result["log_loss"] == pytest.approx(log_loss(LABELS, SCORES))


def test_log_loss_clips_certain_mistakes_like_the_competition():
    labels, scores = np.array([1, 0]), np.array([0.0, 0.0])  # one certain miss, one certain hit
    result = probability_metrics(labels, scores)
    assert np.isfinite(result["log_loss"])
    assert result["log_loss"] == pytest.approx(-np.log(1e-15) / 2, rel=1e-6)


def test_threshold_metrics_match_sklearn():
    threshold = 0.6
    predicted = (SCORES >= threshold).astype(int)
    result = threshold_metrics(LABELS, SCORES, threshold)
    assert result["accuracy"] == pytest.approx(accuracy_score(LABELS, predicted))
    assert result["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(LABELS, predicted))
    assert result["precision"] == pytest.approx(precision_score(LABELS, predicted))
    assert result["recall"] == pytest.approx(recall_score(LABELS, predicted))
    assert result["specificity"] == pytest.approx(recall_score(LABELS, predicted, pos_label=0))
    assert result["f1"] == pytest.approx(f1_score(LABELS, predicted))
    # REAL: 0.05 0.40 0.30 called REAL, 0.62 called FAKE; FAKE: 0.55 0.48 0.20 missed
    assert result["confusion_matrix"] == {"tn": 3, "fp": 1, "fn": 3, "tp": 5}


def test_score_equal_to_threshold_is_called_fake():
    result = threshold_metrics([0, 1], [0.3, 0.5], 0.5)
    assert result["confusion_matrix"] == {"tn": 1, "fp": 0, "fn": 0, "tp": 1}


def test_threshold_metrics_undefined_ratios_are_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nothing_called_fake = threshold_metrics([0, 1, 1], [0.1, 0.2, 0.3], 0.9)
        only_fakes = threshold_metrics([1, 1], [0.9, 0.1], 0.5)
    assert nothing_called_fake["precision"] == 0.0 and nothing_called_fake["f1"] == 0.0
    assert nothing_called_fake["specificity"] == 1.0
    assert only_fakes["specificity"] == 0.0 and only_fakes["recall"] == 0.5


@pytest.mark.parametrize(
    "labels, scores", [([0, 2], [0.1, 0.2]), ([0, 1], [0.1, np.nan]), ([0, 1], [0.1, 1.2]), ([], [])]
)
def test_bad_inputs_are_rejected(labels, scores):
    with pytest.raises(ValueError):
        probability_metrics(labels, scores)


# --- the study's mistake: AUC from thresholded labels --------------------------------------------


def test_auc_comes_from_probabilities_not_thresholded_labels():
    # A model that ranks perfectly but is under-confident: every fake scores below 0.5.
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.05, 0.10, 0.15, 0.20, 0.30, 0.35, 0.40, 0.45])
    from_probabilities = roc_auc_score(labels, scores)
    from_thresholded = roc_auc_score(labels, (scores >= 0.5).astype(int))  # what the study did
    assert from_probabilities == 1.0 and from_thresholded == 0.5
    table = scored_table(labels, scores)
    result = evaluation_metrics(table, table, n_resamples=50)
    assert result["roc_auc"] == pytest.approx(from_probabilities)
    assert result["roc_auc"] != pytest.approx(from_thresholded)


# --- frame aggregation ---------------------------------------------------------------------------


def test_mean_and_median_ignore_unfilled_slots():
    scores = np.array([[0.2, 0.4, 0.9, 0.99], [0.1, 0.7, 0.99, 0.99]])
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    assert aggregate_frame_scores(scores, mask, "mean") == pytest.approx([0.5, 0.4])
    assert aggregate_frame_scores(scores, mask, "median") == pytest.approx([0.4, 0.4])


def test_unfilled_slots_may_hold_anything():
    scores = np.array([[0.3, np.nan, np.inf]])
    mask = np.array([[True, False, False]])
    for method in ("mean", "median", "confident_mean"):
        assert aggregate_frame_scores(scores, mask, method) == pytest.approx([0.3])


def test_video_without_filled_slot_scores_nan():
    scores = np.array([[0.3, 0.5], [0.9, 0.9]])
    mask = np.array([[True, True], [False, False]])
    for method in ("mean", "median", "confident_mean"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = aggregate_frame_scores(scores, mask, method)
        assert result[0] == pytest.approx(0.4) and np.isnan(result[1])


def test_confident_mean_branches():
    ten = np.ones((1, 10), dtype=bool)
    # 5 of 10 frames > 0.8 (more than 40%): mean of those frames
    fake = np.array([[0.9, 0.9, 0.85, 0.95, 0.9, 0.1, 0.1, 0.2, 0.3, 0.5]])
    assert aggregate_frame_scores(fake, ten, "confident_mean")[0] == pytest.approx(0.9)
    # exactly 4 of 10 (40%) is not more than 40%: plain mean
    four = np.array([[0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])
    assert aggregate_frame_scores(four, ten, "confident_mean")[0] == pytest.approx(0.66)
    # all 10 < 0.2 (more than 90%): mean of those frames, which here is every frame
    real = np.full((1, 10), 0.1)
    real[0, :5] = 0.05
    assert aggregate_frame_scores(real, ten, "confident_mean")[0] == pytest.approx(0.075)
    # 9 of 10 < 0.2 is not more than 90%: plain mean
    nine = np.array([[0.1] * 9 + [0.6]])
    assert aggregate_frame_scores(nine, ten, "confident_mean")[0] == pytest.approx(0.15)


def test_confident_mean_counts_shares_over_filled_slots_only():
    # 3 filled frames, 2 above 0.8 (67% > 40%); the 7 empty slots would dilute the share to 20%.
    scores = np.array([[0.9, 0.95, 0.3] + [0.0] * 7])
    mask = np.array([[True, True, True] + [False] * 7])
    assert aggregate_frame_scores(scores, mask, "confident_mean")[0] == pytest.approx(0.925)
    # 10 filled frames < 0.2 with the rest unfilled: the real branch over the filled slots
    scores = np.array([[0.1] * 10 + [0.9] * 5])
    mask = np.array([[True] * 10 + [False] * 5])
    assert aggregate_frame_scores(scores, mask, "confident_mean")[0] == pytest.approx(0.1)


def reference_confident_strategy(frames: np.ndarray) -> tuple[float, str]:
    """The DFDC winner's rule on one video's frames, without its absolute 11-frame floor."""
    n = len(frames)
    if np.count_nonzero(frames > 0.8) > n // 2.5:
        return float(frames[frames > 0.8].mean()), "fake"
    if np.count_nonzero(frames < 0.2) > 0.9 * n:
        return float(frames[frames < 0.2].mean()), "real"
    return float(frames.mean()), "plain"


def test_confident_mean_matches_the_winners_rule_per_video():
    rng = np.random.default_rng(3)
    n_videos, n_slots = 300, 30
    # per video, its own shares of confident-fake, confident-real and uncertain frames
    fake_share = rng.random((n_videos, 1)) ** 2
    real_share = (1 - fake_share) * rng.random((n_videos, 1)) ** 0.2
    draw = rng.random((n_videos, n_slots))
    scores = np.where(
        draw < fake_share,
        rng.uniform(0.81, 1, draw.shape),
        np.where(draw < fake_share + real_share, rng.uniform(0, 0.19, draw.shape), rng.random(draw.shape)),
    )
    mask = np.arange(n_slots)[None, :] < rng.integers(1, n_slots + 1, (n_videos, 1))  # ragged lengths
    expected, branches = zip(*(reference_confident_strategy(row[keep]) for row, keep in zip(scores, mask)))
    assert set(branches) == {"fake", "real", "plain"}
    assert aggregate_frame_scores(scores, mask, "confident_mean") == pytest.approx(expected)


def test_aggregation_rejects_unknown_method_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_frame_scores(np.zeros((1, 2)), np.ones((1, 2), bool), "max")
    with pytest.raises(ValueError):
        aggregate_frame_scores(np.zeros((1, 2)), np.ones((1, 3), bool))


# --- threshold from validation -------------------------------------------------------------------


def test_choose_threshold_maximises_balanced_accuracy():
    threshold = choose_threshold(LABELS, SCORES)
    chosen = balanced_accuracy_score(LABELS, SCORES >= threshold)
    every_distinct_call = np.append(np.unique(SCORES), 1.01)  # with ">=", these cuts cover every split
    best = max(balanced_accuracy_score(LABELS, SCORES >= cut) for cut in every_distinct_call)
    assert chosen == pytest.approx(best)


def test_choose_threshold_cuts_halfway_between_scores():
    labels = [0, 0, 0, 1, 1, 1]
    assert choose_threshold(labels, [0.1, 0.2, 0.3, 0.6, 0.7, 0.8]) == pytest.approx(0.45)
    # a reversed ranking: calling nothing FAKE (cut 0.8, above the top score) ties with calling
    # everything FAKE (cut 0.1, halfway to 0); 0.8 is nearer 0.5
    assert choose_threshold([1, 0], [0.2, 0.6]) == pytest.approx(0.8)
    assert choose_threshold([1, 0], [0.05, 0.9]) == pytest.approx(0.95)


def test_choose_threshold_breaks_ties_towards_half_deterministically():
    # cuts 0.25 (all FAKE caught, 1 of 2 REAL) and 0.75 (1 of 2 FAKE, all REAL) tie on balanced
    # accuracy and are equally near 0.5: the higher one wins
    labels, scores = [0, 1, 0, 1], [0.1, 0.4, 0.6, 0.9]
    assert choose_threshold(labels, scores) == pytest.approx(0.75)
    labels, scores = [0, 1, 0, 1], [0.1, 0.3, 0.8, 0.9]  # ties at 0.2 and 0.85: 0.2 is nearer 0.5
    assert choose_threshold(labels, scores) == pytest.approx(0.2)
    assert choose_threshold(labels, scores) == choose_threshold(labels[::-1], scores[::-1])


def test_choose_threshold_falls_back_with_one_class():
    threshold, reason = threshold_choice([1, 1, 1], [0.2, 0.9, 0.7])
    assert threshold == 0.5 and "only one class" in reason


def test_metrics_use_the_validation_threshold_never_test():
    # validation is separable at 0.85, test at 0.25: their optimal thresholds differ
    validation = scored_table([0, 0, 0, 1, 1, 1], [0.6, 0.7, 0.8, 0.9, 0.92, 0.95])
    test = scored_table([0, 0, 0, 1, 1, 1], [0.05, 0.1, 0.2, 0.3, 0.6, 0.9])
    assert choose_threshold(test.label, test.p_fake) == pytest.approx(0.25)
    result = evaluation_metrics(test, validation, n_resamples=50)
    at_validation = result["at_validation_threshold"]
    assert at_validation["threshold"] == pytest.approx(0.85)
    assert at_validation == {
        "threshold": at_validation["threshold"],
        **threshold_metrics(test.label, test.p_fake, 0.85),
    }
    assert at_validation["recall"] == pytest.approx(1 / 3)  # the test-optimal cut would give 1.0
    assert result["at_0.5"] == threshold_metrics(test.label, test.p_fake, 0.5)


# --- family bootstrap ----------------------------------------------------------------------------


def clustered_scores(n_families: int, videos_per_family: int, seed: int):
    """Families whose videos the model gets all right or all wrong: errors correlated within a family."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(videos_per_family) % 2, n_families)
    families = np.repeat([f"f{i}" for i in range(n_families)], videos_per_family)
    family_right = np.repeat(rng.random(n_families) < 0.7, videos_per_family)
    correct_side = np.where(labels == 1, 0.8, 0.2)
    scores = np.where(family_right, correct_side, 1 - correct_side) + rng.normal(0, 0.05, len(labels))
    return labels, np.clip(scores, 0, 1), families


def test_bootstrap_resamples_families_not_videos():
    labels, scores, families = clustered_scores(24, 8, seed=1)
    by_family = bootstrap_auc_interval(labels, scores, families, n_resamples=120, seed=0)
    by_video = bootstrap_auc_interval(labels, scores, np.arange(len(labels)), n_resamples=120, seed=0)
    width = lambda interval: interval[1] - interval[0]  # noqa: E731
    # 192 videos but only 24 independent families: resampling videos would overstate precision
    assert width(by_family) > 1.8 * width(by_video)  # about sqrt(8) expected


def test_bootstrap_is_deterministic_contains_estimate_and_narrows_with_data():
    labels, scores, families = clustered_scores(20, 6, seed=2)
    interval = bootstrap_auc_interval(labels, scores, families, n_resamples=100, seed=5)
    assert interval == bootstrap_auc_interval(labels, scores, families, n_resamples=100, seed=5)
    assert interval != bootstrap_auc_interval(labels, scores, families, n_resamples=100, seed=6)
    assert interval[0] <= roc_auc_score(labels, scores) <= interval[1]
    more = clustered_scores(80, 6, seed=2)
    wider, narrower = interval, bootstrap_auc_interval(*more, n_resamples=100, seed=5)
    assert narrower[1] - narrower[0] < wider[1] - wider[0]


def test_bootstrap_without_both_classes_is_none():
    assert bootstrap_auc_interval([1, 1, 1], [0.2, 0.5, 0.9], ["a", "b", "c"], n_resamples=20) is None


# --- metrics.json --------------------------------------------------------------------------------


def test_evaluation_metrics_is_json_safe_and_complete():
    test = scored_table(LABELS, SCORES, families=["a", "b", "c", "d"] * 3)
    validation = scored_table([0, 1, 0, 1], [0.2, 0.7, 0.4, 0.9])
    result = evaluation_metrics(test, validation, n_resamples=100)
    json.dumps(result, allow_nan=False)
    assert {
        "n",
        "n_real",
        "n_fake",
        "roc_auc",
        "roc_auc_ci",
        "average_precision",
        "log_loss",
        "at_0.5",
        "at_validation_threshold",
    } <= set(result)
    assert (result["n"], result["n_real"], result["n_fake"]) == (12, 4, 8)
    assert result == json.loads(json.dumps(result))  # no tuples

    def plain(value) -> bool:  # json.dumps accepts numpy floats (float subclasses): check the exact types
        if isinstance(value, dict):
            return all(plain(item) for item in value.values())
        if isinstance(value, list):
            return all(plain(item) for item in value)
        return type(value) in (str, int, float, bool, type(None))

    assert plain(result)
    low, high = result["roc_auc_ci"]
    assert low <= result["roc_auc"] <= high
    assert set(result["at_0.5"]["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}


def test_one_class_test_split_reports_auc_undefined_and_the_rest():
    test = scored_table([1, 1, 1, 1], [0.9, 0.2, 0.7, 0.6])
    validation = scored_table([0, 1, 0, 1], [0.2, 0.7, 0.4, 0.9])
    result = evaluation_metrics(test, validation, n_resamples=20)
    json.dumps(result, allow_nan=False)
    assert result["roc_auc"] is None and "only one class" in result["roc_auc_undefined"]
    assert result["roc_auc_ci"] is None
    assert result["log_loss"] == pytest.approx(log_loss([1, 1, 1, 1], [0.9, 0.2, 0.7, 0.6], labels=[0, 1]))
    assert result["average_precision"] == pytest.approx(1.0)
    assert result["at_0.5"]["recall"] == pytest.approx(0.75)
    only_real = evaluation_metrics(test.assign(label=0), validation, n_resamples=20)
    assert only_real["roc_auc"] is None and only_real["average_precision"] is None
    assert "no FAKE" in only_real["average_precision_undefined"]


def test_missing_scores_are_an_error_naming_the_problem():
    test = scored_table([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match="test table: .*not probabilities"):
        evaluation_metrics(test, scored_table([0, 1], [0.1, 0.9]))
    with pytest.raises(ValueError, match="lacks column"):
        evaluation_metrics(test.drop(columns="family"), scored_table([0, 1], [0.1, 0.9]))


# --- plots ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels", [LABELS, np.ones_like(LABELS), np.zeros_like(LABELS)], ids=["two_classes", "only_fake", "only_real"]
)
def test_plots_are_png_files_even_with_one_class(tmp_path, labels, monkeypatch):
    placeholders = []
    draw_placeholder = figures.undefined_plot
    monkeypatch.setattr(
        plots, "undefined_plot", lambda path, *args: (placeholders.append(path.name), draw_placeholder(path, *args))
    )
    paths = [tmp_path / name for name in ("roc.png", "pr.png", "confusion.png", "hist.png")]
    plot_roc(labels, SCORES, paths[0], "ROC")
    plot_precision_recall(labels, SCORES, paths[1], "Precision-recall")
    plot_confusion_matrix(labels, SCORES, 0.5, paths[2], "Confusion matrix")
    plot_score_histograms(labels, SCORES, paths[3], "Scores", thresholds={"validation": 0.4})
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 2000
    # a curve is drawn whenever it is defined; the placeholder only when it is not
    assert (
        placeholders == [] if 0 < labels.sum() < len(labels) else ["roc.png"] if labels.all() else ["roc.png", "pr.png"]
    )
