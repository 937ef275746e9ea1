"""dfdetect.config and dfdetect.schema: completion with the schema's defaults, the checks JSON Schema
cannot express, batch discovery, and every settings class against the schema."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest
import yaml

from dfdetect.config import (
    check_config,
    complete_config,
    complete_section,
    default_config,
    load_config,
    result_settings,
    run_settings,
)
from dfdetect.config_errors import ConfigError
from dfdetect.data.demo import DemoSpec
from dfdetect.data.faces.detect import FaceSettings
from dfdetect.layout import ResultsLayout, batch_file_name, raw_video_part_number
from dfdetect.schema import SCHEMA_PATH, run_count_keys, schema_default, section_schema, speed_keys
from dfdetect.sources import discover_batches, part_number, raw_video_parts

SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())


def schema_defaults(section: str) -> dict:
    return {key: spec["default"] for key, spec in section_schema(section)["properties"].items() if "default" in spec}


# --- completion ----------------------------------------------------------------------------------


def test_complete_config_fills_every_default_and_leaves_its_argument_alone():
    given = {"frames": {"count": 12}, "models": {"m": {"arch": "cnn"}}}
    completed = complete_config(given)
    assert given == {"frames": {"count": 12}, "models": {"m": {"arch": "cnn"}}}
    assert completed["frames"] == {**schema_defaults("frames"), "count": 12}
    assert completed["models"]["m"]["weights"] is None and completed["models"]["m"]["resources"]["gpu"] == 1
    assert completed["results_dir"] == SCHEMA["properties"]["results_dir"]["default"]


def test_default_config_is_the_schema_defaults():
    config = default_config()
    for section in ("demo", "faces", "frames", "split", "evaluation"):
        for key, value in schema_defaults(section).items():
            if not isinstance(value, dict):  # nested sections ({}) are filled with their own defaults
                assert config[section][key] == value, f"{section}.{key}"


def test_complete_section_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError, match="models.model.*epoch"):
        complete_section("model", {"arch": "cnn", "epoch": 3})


def test_load_config_validates_completes_and_checks(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"frames": {"min": 300, "max": 200}}))
    with pytest.raises(ConfigError, match="frames.min"):
        load_config(path)
    path.write_text(yaml.safe_dump({"demo": {"enabled": False}, "raw_dir": str(tmp_path / "absent")}))
    with pytest.raises(ConfigError, match="raw_dir"):
        load_config(path)
    assert load_config(path, check_sources=False)["raw_dir"] == str(tmp_path / "absent")


# --- checks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"frames": {"min": 50, "max": 10}}, "frames.min"),
        ({"models": {"lstm": {"arch": "td_lstm", "encoder_from": "nope"}}}, "models.lstm.encoder_from"),
        ({"models": {"c": {"arch": "cnn", "encoder_from": "c"}}}, "models.c.encoder_from"),
        (
            {"models": {"a": {"arch": "td_lstm"}, "b": {"arch": "td_lstm", "encoder_from": "a"}}},
            "models.b.encoder_from",
        ),
    ],
)
def test_check_config_names_the_key(changes, key):
    with pytest.raises(ConfigError) as raised:
        check_config(complete_config(changes))
    assert raised.value.key == key and str(raised.value).startswith(f"config key '{key}'")


@pytest.mark.parametrize(
    ("model", "key", "message"),
    [
        ({"arch": "transfer"}, "models.m.backbone", "needs a backbone"),
        ({"arch": "transfer", "backbone": "cnn"}, "models.m.backbone", "write arch: cnn"),
        ({"arch": "cnn", "backbone": "Xception"}, "models.m.backbone", "write arch: transfer"),
        ({"arch": "cnn", "weights": "imagenet"}, "models.m.weights", "takes no backbone, weights"),
        ({"arch": "td_lstm", "weights": "imagenet"}, "models.m.weights", "cnn has none"),
        ({"arch": "td_lstm", "fakes": "sbi"}, "models.m.fakes", "needs fakes: labelled"),
    ],
)
def test_architectures_get_only_the_keys_they_use(model, key, message):
    with pytest.raises(ConfigError, match=message) as raised:
        check_config(complete_config({"models": {"m": model}}))
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("model", "key", "hint"),
    [
        ({"arch": "transfer", "backbone": "Xceptoin"}, "models.m.backbone", "did you mean 'Xception'"),
        ({"arch": "transfer", "backbone": "efficientnetb0"}, "models.m.backbone", "did you mean 'EfficientNetB0'"),
        ({"arch": "cnn", "learning_rat": 0.1}, "models.m.learning_rat", "unknown key; did you mean 'learning_rate'"),
        ({"arch": "cnn", "augment": "flips"}, "models.m.augment", "did you mean 'flip'?.*a boolean"),
        ({"arch": "cnnn"}, "models.m.arch", "did you mean 'cnn'"),
        ({"arch": "cnn", "frames_per_video": 0}, "models.m.frames_per_video", "less than the minimum of 1"),
        ({"arch": "cnn", "epochs": "1e3"}, "models.m.epochs", "is text.*write 1000"),
    ],
)
def test_schema_errors_say_what_would_be_valid(model, key, hint):
    with pytest.raises(ConfigError, match=hint) as raised:
        complete_config({"models": {"m": model}})
    assert raised.value.key == key


def test_an_unknown_top_level_key_and_encoder_get_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'evaluation'") as raised:
        complete_config({"evalution": {}})
    assert raised.value.key == "evalution"
    models = {"cnn": {"arch": "cnn"}, "lstm": {"arch": "td_lstm", "encoder_from": "CNN"}}
    with pytest.raises(ConfigError, match="did you mean 'cnn'"):
        check_config(complete_config({"models": models}))


def test_numbers_yaml_reads_as_text_are_accepted(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("models:\n  m: {arch: cnn, learning_rate: 1e-3}\nsplit: {test: 2e-1}\n")
    assert yaml.safe_load(path.read_text())["models"]["m"]["learning_rate"] == "1e-3"  # PyYAML: YAML 1.1
    config = load_config(path, check_sources=False)
    assert config["models"]["m"]["learning_rate"] == 0.001 and config["split"]["test"] == 0.2
    path.write_text("models:\n  m: {arch: cnn, learning_rate: fast}\n")
    with pytest.raises(ConfigError, match="'fast' is text, but this key takes number"):
        load_config(path, check_sources=False)


def test_the_keras_backend_must_be_installed(monkeypatch):
    import importlib.util

    config = complete_config({"keras_backend": "jax", "models": {"m": {"arch": "cnn"}}})
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "jax" else real_find_spec(name))
    check_config(config)  # checked only where the jobs share this environment
    with pytest.raises(ConfigError, match=r"keras_backend.*jax is not installed.*\.\[jax\]"):
        check_config(config, check_backend=True)
    check_config({**config, "models": {}}, check_backend=True)  # no model: no Keras job


def test_a_backbone_must_build_at_the_image_size():
    def checked(image_size, backbone):
        check_config(
            complete_config({"image_size": image_size, "models": {"t": {"arch": "transfer", "backbone": backbone}}})
        )

    checked(75, "InceptionV3")
    checked(32, "MobileNet")
    with pytest.raises(
        ConfigError, match=r"74 px is below 75 px, the smallest input InceptionV3 \(models.t.backbone\)"
    ):
        checked(74, "InceptionV3")
    with pytest.raises(ConfigError, match="below 32 px") as raised:
        checked(16, "EfficientNetB0")
    assert raised.value.key == "image_size"


def test_local_weights_files_are_checked(tmp_path):
    def checked(weights):
        check_config(complete_config({"models": {"t": {"arch": "transfer", "backbone": "VGG16", "weights": weights}}}))

    with pytest.raises(ConfigError, match="does not exist") as raised:
        checked(str(tmp_path / "missing.h5"))
    assert raised.value.key == "models.t.weights"
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="not an .h5 file"):
        checked(str(tmp_path / "weights.bin"))
    (tmp_path / "w_notop.h5").write_bytes(b"")
    checked(str(tmp_path / "w_notop.h5"))
    checked("imagenet")


def test_a_misnamed_zip_in_a_source_folder_is_named(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / batch_file_name("0-0")).write_bytes(b"")
    (raw / "notes.txt").write_text("not a zip: ignored")
    config = complete_config({"demo": {"enabled": False}, "raw_dir": str(raw)})
    check_config(config)
    (raw / "deepfake-detection-faces-part-1.zip").write_bytes(b"")
    with pytest.raises(ConfigError, match="faces-part-1.zip' is not named like a face batch") as raised:
        check_config(config)
    assert raised.value.key == "raw_dir"
    (raw / "deepfake-detection-faces-part-1.zip").unlink()
    (raw / "dfdc_train_part_3.zip").write_bytes(b"")
    with pytest.raises(ConfigError, match="belongs in raw_video_dir"):
        check_config(config)
    check_config({**config, "raw_video_dir": str(raw)})  # one folder may hold both kinds
    sets = {"evaluation": {"sets": {"s": {"raw_dir": str(raw)}}}}
    with pytest.raises(ConfigError, match="belongs in evaluation.sets.s.raw_video_dir") as raised:
        check_config(complete_config(sets))
    assert raised.value.key == "evaluation.sets.s.raw_dir"


def test_raw_sources_are_checked_only_without_the_demo(tmp_path):
    config = complete_config({"demo": {"enabled": False}, "raw_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="holds no deepfake-detection-faces-part"):
        check_config(config)
    check_config(complete_config({"raw_dir": str(tmp_path)}))  # the demo needs no raw data


# --- batch discovery -------------------------------------------------------------------------------


def test_demo_batches_live_where_the_layout_says(tmp_path):
    config = complete_config({"results_dir": str(tmp_path / "r"), "demo": {"batches": 3}})
    layout = ResultsLayout(tmp_path / "r")
    assert discover_batches(config) == {batch: layout.demo_zip(batch) for batch in ("0-0", "0-1", "1-0")}


def test_raw_batches_and_raw_video_parts_are_discovered_in_numeric_order(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for batch in ("10-0", "2-1", "2-0"):
        (raw / batch_file_name(batch)).write_bytes(b"")
    videos = tmp_path / "videos"
    videos.mkdir()
    with zipfile.ZipFile(videos / "dfdc_train_part_7.zip", "w") as archive:
        archive.writestr("metadata.json", "{}")
    config = complete_config(
        {
            "demo": {"enabled": False},
            "raw_dir": str(raw),
            "raw_video_dir": str(videos),
            "results_dir": str(tmp_path / "r"),
        }
    )
    batches = discover_batches(config)
    assert list(batches) == ["2-0", "2-1", "7-0", "10-0"]
    assert batches["7-0"] == ResultsLayout(tmp_path / "r").faces_zip("7")
    assert raw_video_parts(config) == {"7": str(videos / "dfdc_train_part_7.zip")}
    (raw / batch_file_name("7-0")).write_bytes(b"")
    with pytest.raises(ConfigError, match="batch 7-0 comes from both"):
        discover_batches(config)


def test_raw_video_part_numbers():
    assert raw_video_part_number("x/dfdc_train_part_012.zip") == "12"
    with pytest.raises(ValueError, match="not a raw DFDC part name"):
        raw_video_part_number("dfdc_train_part_x.zip")
    with pytest.raises(ConfigError, match="raw_video_dir"):
        part_number("dfdc_train_part_x.zip")


# --- the schema is the only source of defaults -------------------------------------------------------


def _section_settings_classes():
    from dfdetect.data.landmarks.detect import LandmarkSettings

    return [FaceSettings, DemoSpec, LandmarkSettings]


@pytest.mark.parametrize("index", range(3))
def test_section_settings_take_defaults_and_ranges_from_the_schema_only(index):
    cls = _section_settings_classes()[index]
    fields = dataclasses.fields(cls)
    assert all(field.default is dataclasses.MISSING for field in fields), f"{cls.__name__} has its own defaults"
    defaults = schema_defaults(cls.SECTION)
    built = cls.from_mapping({})
    for field in fields:
        expected = defaults[field.name]
        assert getattr(built, field.name) == (tuple(expected) if isinstance(expected, list) else expected)
    # every key of the section that changes results is a field (demo: but enabled/batches, the workflow's)
    workflow_keys = {"enabled", "batches"} if cls is DemoSpec else set()
    assert {field.name for field in fields} == set(defaults) - speed_keys(cls.SECTION) - workflow_keys
    integer_key = next(field.name for field in fields if field.type == "int")  # every one has a minimum >= 0
    with pytest.raises(ConfigError, match=rf"{cls.SECTION}\.{integer_key}"):
        cls.from_mapping({integer_key: -5})


def test_predict_settings_take_the_schema_defaults_and_ranges():
    from dfdetect.evaluation.predict_settings import PredictSettings

    assert all(field.default is dataclasses.MISSING for field in dataclasses.fields(PredictSettings))
    settings = PredictSettings.of()
    assert (settings.step, settings.count) == (schema_default("frames", "step"), schema_default("frames", "count"))
    assert settings.aggregation == schema_default("evaluation", "aggregate")
    assert settings.faces == FaceSettings.from_mapping()
    with pytest.raises(ConfigError, match="evaluation.aggregate"):
        PredictSettings.of(aggregation="max")


def test_speed_settings_are_left_out_of_what_changes_results():
    assert speed_keys("model") == {"resources", "loader_workers", "loader_threads"}
    assert speed_keys("faces") == speed_keys("landmarks") == {"resources"}
    assert run_count_keys("model") == {"repeats"}
    entry = complete_section("model", {"arch": "cnn"})
    assert set(entry) - set(result_settings(entry, "model")) == {
        "resources",
        "loader_workers",
        "loader_threads",
        "repeats",
    }


def test_repeats_differ_in_their_seed_only():
    entry = complete_section("model", {"arch": "cnn", "seed": 7, "repeats": 3})
    runs = [run_settings(entry, run) for run in range(3)]
    assert [run["seed"] for run in runs] == [7, 8, 9]
    assert runs[0] == entry  # run 0 is the model users deploy: the entry itself
    assert all(run | {"seed": 7} == entry for run in runs)  # nothing else differs
    # each run's params (what decides its reruns) differ in the seed, and leave the run count out
    params = [result_settings(run, "model") for run in runs]
    assert len({json.dumps(run, sort_keys=True) for run in params}) == 3 and "repeats" not in params[0]
    with pytest.raises(ValueError, match="outside the model's 3 repeat"):
        run_settings(entry, 3)


def test_train_settings_hold_no_defaults_and_take_the_schema_defaults():
    from dfdetect.training.train import TrainSettings

    assert all(
        field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        for field in dataclasses.fields(TrainSettings)
    )
    settings = TrainSettings.from_config({"arch": "cnn"})
    model_defaults = schema_defaults("model")
    for field in dataclasses.fields(TrainSettings):
        if field.name in model_defaults:
            assert getattr(settings, field.name) == model_defaults[field.name], field.name
    assert settings.model["weights"] is None  # a library caller trains from scratch, as the workflow does


def test_model_builders_default_to_the_schema_weights():
    import inspect

    from dfdetect.training.backend import select_backend

    select_backend("tensorflow")
    from dfdetect.training import models

    for builder in (models.build_transfer, models.build_frame_encoder, models.build_td_lstm):
        assert inspect.signature(builder).parameters["weights"].default == schema_default("model", "weights")


# --- evaluation sets ---------------------------------------------------------------------------------


def test_a_demo_set_takes_the_main_demo_settings_with_its_own_keys(tmp_path):
    from dfdetect.sources import data_sources, demo_spec

    config = complete_config(
        {
            "results_dir": str(tmp_path),
            "demo": {"image_size": 32, "seed": 7},
            "evaluation": {"sets": {"unseen": {"demo": {"batches": 1, "seed": 8}}}},
        }
    )
    assert list(data_sources(config)) == ["", "sets/unseen/"]
    spec = demo_spec(config, "sets/unseen/")
    assert spec["image_size"] == 32 and spec["seed"] == 8 and "batches" not in spec
    # a set's batch ids may repeat the training data's: its files live under sets/NAME/
    assert discover_batches(config, "sets/unseen/") == {"0-0": ResultsLayout(tmp_path).demo_zip("0-0", "sets/unseen/")}
    assert "0-0" in discover_batches(config)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"raw_dir": "/nonexistent/folder"}, "evaluation.sets.s.raw_dir"),
        ({"raw_video_dir": "/nonexistent/folder"}, "evaluation.sets.s.raw_video_dir"),
        ({"raw_dir": "EXISTING", "demo": {"seed": 1}}, "evaluation.sets.s"),
    ],
)
def test_bad_sets_name_their_key(entry, key, tmp_path):
    # an existing folder apart from results_dir (wherever the checkout is: /tmp itself may hold it)
    entry = {name: str(tmp_path / "raw") if value == "EXISTING" else value for name, value in entry.items()}
    (tmp_path / "raw").mkdir()
    config = {"results_dir": str(tmp_path / "results"), "evaluation": {"sets": {"s": entry}}}
    with pytest.raises(ConfigError) as raised:
        check_config(complete_config(config))
    assert raised.value.key == key


# --- names that become paths, and the folders results and raw data live in ------------------------

BAD_NAMES = [".", "..", "...", ".hidden", "bad/name", "a\\b", "", "x y"]


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    ("kind", "config_of"),
    [
        ("models", lambda name: {"models": {name: {"arch": "cnn"}}}),
        ("evaluation.sets", lambda name: {"evaluation": {"sets": {name: {"raw_dir": "x"}}}}),
    ],
)
def test_names_that_would_escape_their_folder_are_refused_naming_the_key(kind, config_of, name):
    with pytest.raises(ConfigError, match="cannot be a name") as raised:
        complete_config(config_of(name))
    assert raised.value.key == f"{kind}.{name}"


@pytest.mark.parametrize("name", ["cnn", "cnn.v2", "effnet_b4-160", "0", "_x"])
def test_ordinary_names_are_accepted(name):
    assert name in complete_config({"models": {name: {"arch": "cnn"}}})["models"]


def test_a_raw_zip_whose_name_is_no_batch_id_is_a_config_error(tmp_path):
    (tmp_path / "deepfake-detection-faces-part-..-1.zip").write_bytes(b"")
    config = complete_config({"raw_dir": str(tmp_path), "results_dir": str(tmp_path / "r"), "demo": {"enabled": False}})
    with pytest.raises(ConfigError, match=r"part-\.\.-1\.zip: not a face-batch file name") as raised:
        discover_batches(config)
    assert raised.value.key == "raw_dir"


def raw_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(folder / batch_file_name("0-0"), "w").close()
    return str(folder)


@pytest.mark.parametrize(
    ("layout", "key", "says"),
    [
        (lambda t: {"raw_dir": raw_folder(t / "data"), "results_dir": str(t / "data")}, "raw_dir", "the same folder"),
        (lambda t: {"raw_dir": raw_folder(t / "data"), "results_dir": str(t / "data/")}, "raw_dir", "the same"),
        (lambda t: {"raw_dir": raw_folder(t / "r/demo/raw"), "results_dir": str(t / "r")}, "raw_dir", "inside results"),
        (lambda t: {"raw_dir": raw_folder(t / "data"), "results_dir": str(t / "data/out")}, "results_dir", "inside"),
        (
            lambda t: {
                "raw_video_dir": raw_folder(t / "r/parts"),
                "results_dir": str(t / "r"),
                "raw_dir": str(t / "x"),
            },
            "raw_video_dir",
            "inside results",
        ),
        (
            lambda t: {
                "raw_dir": raw_folder(t / "data"),
                "results_dir": str(t / "r"),
                "evaluation": {"sets": {"s": {"raw_dir": raw_folder(t / "r/s")}}},
            },
            "evaluation.sets.s.raw_dir",
            "inside results",
        ),
    ],
)
def test_results_and_raw_data_never_share_a_folder(tmp_path, layout, key, says):
    config = complete_config({"demo": {"enabled": False}, **layout(tmp_path)})
    with pytest.raises(ConfigError, match=says) as raised:
        check_config(config)
    assert raised.value.key == key
    assert "results_dir" in str(raised.value) and (key == "results_dir" or key.split(".")[-1] in str(raised.value))


def test_raw_dir_is_not_checked_against_results_when_the_demo_replaces_it(tmp_path):
    check_config(complete_config({"raw_dir": str(tmp_path / "r/raw"), "results_dir": str(tmp_path / "r")}))


def test_home_in_folder_keys_is_expanded_once_for_every_reader(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    config = complete_config(
        {"results_dir": "~/results", "raw_dir": "~/raw", "evaluation": {"sets": {"s": {"raw_video_dir": "~/v"}}}}
    )
    assert config["results_dir"] == f"{tmp_path}/results" and config["raw_dir"] == f"{tmp_path}/raw"
    assert config["evaluation"]["sets"]["s"]["raw_video_dir"] == f"{tmp_path}/v"
    assert ResultsLayout(config["results_dir"]).videos() == f"{tmp_path}/results/manifests/videos.parquet"


def test_the_packing_size_cap_is_the_schema_default():
    from dfdetect.data.store import DEFAULT_MAX_IMAGE_SIDE

    assert DEFAULT_MAX_IMAGE_SIDE == SCHEMA["properties"]["max_image_side"]["default"]
