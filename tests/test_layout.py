"""dfdetect.layout: every path it gives is inside results_dir, whatever the names."""

from __future__ import annotations

import os

import pytest

from dfdetect.layout import LayoutError, ResultsLayout, check_name, name_pattern
from dfdetect.schema import config_schema

LAYOUT = ResultsLayout("results")
ESCAPING = [".", "..", "...", ".hidden", "a/b", "../x", "/abs", "", "a\\b"]

# One call per name kind: each builds a path from the name.
PATHS_OF = {
    "model": [
        lambda name: LAYOUT.model_dir(name),
        lambda name: LAYOUT.train_file(name, "model"),
        lambda name: LAYOUT.eval_file(name, "metrics"),
        lambda name: LAYOUT.robustness_file(name, "table"),
        lambda name: LAYOUT.set_eval_file(name, "unseen", "metrics"),
    ],
    "evaluation set": [
        lambda name: LAYOUT.path(LAYOUT.set_data(name)),
        lambda name: LAYOUT.set_videos(name),
        lambda name: LAYOUT.set_eval_file("cnn", name, "metrics"),
        lambda name: LAYOUT.store_prefix("0-0", f"sets/{name}/"),
        lambda name: LAYOUT.videos(f"sets/{name}/"),
    ],
    "batch": [
        lambda name: LAYOUT.store_prefix(name),
        lambda name: LAYOUT.frame_manifest(name),
        lambda name: LAYOUT.video_manifest(name, "sets/unseen/"),
        lambda name: LAYOUT.skipped_manifest(name),
        lambda name: LAYOUT.selection(name),
        lambda name: LAYOUT.demo_zip(name),
    ],
}


@pytest.mark.parametrize("name", ESCAPING)
@pytest.mark.parametrize(("kind", "path_of"), [(kind, call) for kind, calls in PATHS_OF.items() for call in calls])
def test_a_name_that_would_escape_its_folder_is_refused_naming_its_kind(kind, path_of, name):
    with pytest.raises(LayoutError, match=f"{kind} name"):
        path_of(name)


@pytest.mark.parametrize(("kind", "path_of"), [(kind, call) for kind, calls in PATHS_OF.items() for call in calls])
def test_ordinary_names_and_wildcards_stay_inside_results(kind, path_of):
    for name in ("x.v2", "0-1", "b_4-x", f"{{{kind.split()[-1]}}}"):
        path = path_of(name)
        assert os.path.normpath(path).startswith("results"), path


@pytest.mark.parametrize("relative", ["../x", "sets/../manifests", "./x", "models/./m", "/etc/passwd", "a/.."])
def test_the_layout_refuses_any_path_outside_results(relative):
    with pytest.raises(LayoutError, match="not a path inside results_dir"):
        LAYOUT.path(relative)


def test_dataset_prefixes_are_the_training_data_or_a_set():
    assert LAYOUT.videos("") == "results/manifests/videos.parquet"
    assert LAYOUT.videos("{data}") == "results/{data}manifests/videos.parquet"
    for prefix in ("sets/../", "sets/x", "other/x/", "../"):
        with pytest.raises(LayoutError):
            LAYOUT.videos(prefix)


def test_the_name_rule_is_the_schemas():
    assert name_pattern().pattern == config_schema()["$defs"]["path_name"]["pattern"]
    assert check_name("model", "cnn") == "cnn"
