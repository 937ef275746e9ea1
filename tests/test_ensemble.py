"""Ensembles: members' calibrated video scores combined per video, evaluated like a model; their config."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from dfdetect.config import check_config, complete_config, ensemble_runs
from dfdetect.config_errors import ConfigError
from dfdetect.evaluation.ensemble import EnsembleSettings, combine_scores, ensemble_predictions, evaluate_ensemble
from dfdetect.evaluation.evaluate import CALIBRATED_COLUMN, EvaluationPaths

VIDEOS = [f"v{number}" for number in range(12)]


def member_table(seed: int, order: list[str] = VIDEOS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = {video: number % 3 != 0 for number, video in enumerate(VIDEOS)}
    table = pd.DataFrame(
        {
            "video_id": order,
            "family": [f"f{video}" for video in order],
            "label": [int(labels[video]) for video in order],
            "p_fake": rng.random(len(order)),
            "p_fake_middle": rng.random(len(order)),
            "n_frames_scored": rng.integers(1, 10, len(order)).astype("int32"),
            "manipulation": ["swap" if labels[video] else "" for video in order],
        }
    )
    table.insert(4, CALIBRATED_COLUMN, expit(0.5 * logit(table["p_fake"])))
    return table


def test_combine_is_the_mean_of_probabilities_or_of_logits():
    first, second = np.array([0.1, 0.5, 0.99]), np.array([0.3, 0.9, 0.5])
    assert combine_scores([first, second], "mean") == pytest.approx((first + second) / 2)
    assert combine_scores([first, second], "logit_mean") == pytest.approx(expit((logit(first) + logit(second)) / 2))
    with pytest.raises(ValueError, match="unknown combine 'max'"):
        combine_scores([first, second], "max")


@pytest.mark.parametrize("method", ["mean", "logit_mean"])
def test_ensemble_scores_are_the_combination_of_its_members_scores(method):
    first, second = member_table(0), member_table(1, order=VIDEOS[::-1])  # another order: aligned by video
    combined = ensemble_predictions({"a": first, "b": second}, method)
    assert list(combined["video_id"]) == VIDEOS
    second = second.set_index("video_id").loc[VIDEOS].reset_index()
    for column in ("p_fake", CALIBRATED_COLUMN, "p_fake_middle"):
        assert combined[column].to_numpy() == pytest.approx(combine_scores([first[column], second[column]], method))
    assert (combined["n_frames_scored"] == np.minimum(first["n_frames_scored"], second["n_frames_scored"])).all()
    assert list(combined["manipulation"]) == list(first["manipulation"])


def test_members_that_scored_other_videos_are_named():
    with pytest.raises(ValueError, match="member 'b' scored other videos than 'a' \\(1 missing"):
        ensemble_predictions({"a": member_table(0), "b": member_table(1).iloc[1:]}, "mean")
    relabelled = member_table(1).assign(label=lambda table: 1 - table["label"])
    with pytest.raises(ValueError, match="member 'b' gives other labels"):
        ensemble_predictions({"a": member_table(0), "b": relabelled}, "mean")


def test_an_ensemble_is_evaluated_like_a_model(tmp_path):
    members = {"a": member_table(0), "b": member_table(1)}
    test_paths, validation_paths = {}, {}
    for name, table in members.items():
        test_paths[name] = tmp_path / f"{name}_test.parquet"
        validation_paths[name] = tmp_path / f"{name}_validation.parquet"
        table.to_parquet(test_paths[name])
        table.to_parquet(validation_paths[name])
    paths = EvaluationPaths.in_folder(tmp_path / "eval" / "duo")
    settings = EnsembleSettings.of(members=["a", "b"], combine="logit_mean")
    metrics = evaluate_ensemble(
        "duo",
        settings,
        predictions=test_paths,
        validation_predictions=validation_paths,
        paths=paths,
        n_resamples=20,
        seed=0,
        calibration_bins=5,
    )
    assert all(path.is_file() for path in dataclasses.asdict(paths).values())
    written = pd.read_parquet(paths.predictions)
    expected = combine_scores([members["a"][CALIBRATED_COLUMN], members["b"][CALIBRATED_COLUMN]], "logit_mean")
    assert written[CALIBRATED_COLUMN].to_numpy() == pytest.approx(expected)
    assert pd.read_csv(paths.submission)["label"].to_numpy() == pytest.approx(expected, abs=1e-6)
    on_disk = json.loads(paths.metrics.read_text())
    assert on_disk["arch"] == "ensemble" and on_disk["members"] == ["a", "b"] and on_disk == metrics
    assert on_disk["calibrated"]["method"] == "members" and "swap" in on_disk["per_manipulation"]


def config_with(ensembles, models=None):
    models = models or {"a": {"arch": "cnn", "repeats": 3}, "b": {"arch": "cnn", "repeats": 2}}
    return complete_config({"models": models, "ensembles": ensembles})


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"members": ["a", "nope"]}, "ensembles.duo.members"),
        ({"members": ["a"]}, "ensembles.duo.members"),
        ({"members": ["a", "b"], "combine": "max"}, "ensembles.duo.combine"),
        ({"members": ["a", "a"]}, "ensembles.duo.members"),
        ({"with": ["a", "b"]}, "ensembles.duo"),
    ],
)
def test_a_bad_ensemble_names_its_key(entry, key):
    with pytest.raises(ConfigError, match=rf"config key '{key}'"):
        check_config(config_with({"duo": entry}), check_sources=False)


def test_an_ensemble_may_not_take_a_models_name_and_has_the_runs_of_its_fewest():
    with pytest.raises(ConfigError, match="config key 'ensembles.a'"):
        check_config(config_with({"a": {"members": ["a", "b"]}}), check_sources=False)
    config = config_with({"duo": {"members": ["a", "b"]}})
    check_config(config, check_sources=False)
    assert config["ensembles"]["duo"]["combine"] == "mean"
    assert ensemble_runs(config, "duo") == 2
    with pytest.raises(ConfigError, match="config key 'evaluation.baseline'"):
        check_config(complete_config({"evaluation": {"baseline": "nope"}}), check_sources=False)
