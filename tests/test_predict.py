"""`dfdetect predict`: inputs (face-batch zip, face folder, mp4), scores equal to evaluation's, failures, CSV."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dfdetect.data.faces.detect import FaceSettings
from dfdetect.data.store import StorePaths
from dfdetect.layout import CALIBRATION_FILE
from dfdetect.testkit import videos
from dfdetect.testkit.batches import Video, write_face_batch
from dfdetect.training.backend import select_backend

select_backend("tensorflow")  # before anything imports Keras

from dfdetect.config import complete_config, default_config  # noqa: E402
from dfdetect.data.faces import detect, extract  # noqa: E402
from dfdetect.data.ingest import ingest_batch  # noqa: E402
from dfdetect.data.reduce import select_batch_frames  # noqa: E402
from dfdetect.data.store import FrameStore, decode_face, pack_batch  # noqa: E402
from dfdetect.evaluation import predict, predict_inputs, scoring  # noqa: E402
from dfdetect.evaluation.calibration import Calibration  # noqa: E402
from dfdetect.evaluation.predict import Scorer  # noqa: E402
from dfdetect.evaluation.predict_settings import PredictSettings, resolve_settings  # noqa: E402
from dfdetect.evaluation.scoring import score_store_videos  # noqa: E402
from dfdetect.schema import schema_default  # noqa: E402
from dfdetect.training.models import build_model, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGE_SIZE = 16
CROP_SIZE = 24  # face-batch crops differ from the model's input: the resize path is exercised
STEP, COUNT = 10, 4
BATCH = "5-0"


def face_videos() -> list[Video]:
    """Two scorable videos (one with some two-face frames), one with only two-face frames, one without a folder."""
    return [
        Video("aaaaaaaaaa", "REAL", None, range(0, 40)),
        Video("bbbbbbbbbb", "FAKE", "aaaaaaaaaa", range(3, 40), extra_faces={3: 2, 4: 2, 13: 2}),
        Video("cccccccccc", "FAKE", "aaaaaaaaaa", range(0, 40), extra_faces={n: 2 for n in range(40)}),
        Video("dddddddddd", "FAKE", "aaaaaaaaaa", folder=False),
    ]


@pytest.fixture(scope="module")
def face_zip(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("face-batch")
    return write_face_batch(folder / f"deepfake-detection-faces-part-{BATCH}.zip", face_videos(), size=CROP_SIZE)


@pytest.fixture(scope="module")
def face_folder(face_zip, tmp_path_factory) -> Path:
    """Video aaaaaaaaaa's crops unpacked into a folder named by the video."""
    folder = tmp_path_factory.mktemp("faces") / "aaaaaaaaaa"
    folder.mkdir()
    with zipfile.ZipFile(face_zip) as archive:
        for name in archive.namelist():
            if name.startswith("aaaaaaaaaa/"):
                (folder / name.split("/")[1]).write_bytes(archive.read(name))
    (folder / "notes.txt").write_text("not a face")  # ignored
    return folder


# Calibrations next to the saved models, as the evaluate job writes them: predict applies them by default.
CALIBRATIONS = {"cnn": Calibration("temperature", 0.5, 0.0), "td_lstm": Calibration("platt", 2.0, -0.3)}


@pytest.fixture(scope="module")
def model_paths(tmp_path_factory) -> dict[str, Path]:
    """Untrained models saved and loaded like trained ones: plumbing needs no meaningful scores."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for arch, settings in {"cnn": {"arch": "cnn"}, "td_lstm": {"arch": "td_lstm", "backbone": "cnn"}}.items():
        paths[arch] = folder / arch / "model.keras"
        paths[arch].parent.mkdir()
        build_model(f"tiny_{arch}", settings, IMAGE_SIZE, n_slots=COUNT).save(paths[arch])
        CALIBRATIONS[arch].save(paths[arch].parent / CALIBRATION_FILE)
    return paths


@pytest.fixture(scope="module")
def models(model_paths) -> dict[str, object]:
    return {arch: load_model(path) for arch, path in model_paths.items()}


@pytest.fixture(scope="module")
def detector() -> detect.FaceDetector:
    return detect.load_detector("CPU:0")


def no_detector():
    raise AssertionError("the face detector was loaded for inputs without an mp4")


def scorer(model, **settings) -> Scorer:
    return Scorer(model, PredictSettings.of(step=STEP, count=COUNT, **settings), detector_factory=no_detector)


def by_filename(table: pd.DataFrame) -> dict[str, tuple[float, str]]:
    return {row.filename: (row.label, row.status) for row in table.itertuples(index=False)}


# ---------------------------------------------------------------- model and settings


def test_model_spec_reads_the_input_shapes(models):
    assert scoring.model_spec(models["cnn"]) == scoring.ModelSpec(IMAGE_SIZE, None, True)
    assert scoring.model_spec(models["td_lstm"]) == scoring.ModelSpec(IMAGE_SIZE, COUNT, True)


def test_resize_face_matches_the_store_decoding_of_the_same_crop():
    crop = np.random.default_rng(0).integers(0, 256, size=(CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    expected = decode_face(extract.png_bytes(crop), IMAGE_SIZE)  # what pack stores for an extracted crop
    assert np.array_equal(predict_inputs.resize_face(crop, IMAGE_SIZE), expected)
    assert np.array_equal(predict_inputs.resize_face(crop, CROP_SIZE), crop)


def test_settings_come_from_the_command_line_over_the_config_over_the_model(models):
    config = complete_config(
        {
            "faces": {"every_k": 3, "resources": {"gpu": 1}},
            "frames": {"step": 5, "count": COUNT},
            "evaluation": {"aggregate": "median"},
        }
    )
    args = predict.parser().parse_args(["x.mp4", "--model", "m.keras", "--frames-step", "7"])
    cnn_spec = scoring.model_spec(models["cnn"])
    settings = resolve_settings(args, config, cnn_spec)
    assert settings == PredictSettings.of(faces=FaceSettings.of(every_k=3), step=7, count=COUNT, aggregation="median")
    assert resolve_settings(args, default_config(), cnn_spec).count == schema_default("frames", "count")
    # a clip model scores clips of its own length, whatever the config's frames.count says
    clip_spec = scoring.model_spec(models["td_lstm"])
    assert resolve_settings(args, default_config(), clip_spec).count == COUNT
    other_count = complete_config({"frames": {"count": COUNT + 3}})
    assert resolve_settings(args, other_count, clip_spec).count == COUNT
    with pytest.raises(ValueError, match="evaluation.aggregate"):
        PredictSettings.of(aggregation="max")


# ---------------------------------------------------------------- same scores as evaluation


def evaluation_scores(model, face_zip: Path, store_folder: Path, arch: str, aggregation: str) -> pd.DataFrame:
    """The workflow's path for the same batch: ingest -> select_frames -> pack -> score_store_videos."""
    manifest = ingest_batch(face_zip, BATCH)
    selection = select_batch_frames(manifest.frames, manifest.videos, STEP, COUNT, 0, 1000)
    index = pack_batch(
        face_zip, selection, BATCH, StorePaths.for_prefix(store_folder / BATCH), IMAGE_SIZE, COUNT, progress=False
    )
    packed = manifest.videos[manifest.videos["video_id"].isin(index.loc[index["status"] == "ok", "video_id"])]
    return score_store_videos(
        model, FrameStore([StorePaths.for_prefix(store_folder / BATCH)]), packed, aggregation, batch_size=64
    )


@pytest.mark.parametrize(("arch", "aggregation"), [("cnn", "mean"), ("cnn", "confident_mean"), ("td_lstm", "mean")])
def test_zip_scores_equal_the_evaluation_path(models, face_zip, tmp_path, arch, aggregation):
    expected = evaluation_scores(models[arch], face_zip, tmp_path, arch, aggregation)
    assert sorted(expected["video_id"]) == ["aaaaaaaaaa", "bbbbbbbbbb"]
    table = scorer(models[arch], aggregation=aggregation).score([face_zip])
    assert list(table["filename"]) == [f"{letter * 10}.mp4" for letter in "abcd"]  # metadata order, all videos
    scores = by_filename(table)
    for row in expected.itertuples(index=False):
        label, status = scores[f"{row.video_id}.mp4"]
        assert status == "ok"
        assert label == pytest.approx(row.p_fake, abs=2e-6)  # predict rounds to 6 decimals


def test_evaluation_writes_exactly_the_paths_it_is_given(model_paths, face_zip, tmp_path):
    """The rule's declared outputs are what evaluate writes: no file of its own choosing, none missing."""
    from dfdetect.evaluation.evaluate import EvaluationPaths, evaluate_model

    manifest = ingest_batch(face_zip, BATCH)
    selection = select_batch_frames(manifest.frames, manifest.videos, STEP, COUNT, 0, 1000)
    pack_batch(
        face_zip, selection, BATCH, StorePaths.for_prefix(tmp_path / "store" / BATCH), IMAGE_SIZE, COUNT, progress=False
    )
    videos = manifest.videos[manifest.videos["video_id"].isin(["aaaaaaaaaa", "bbbbbbbbbb"])]
    videos.to_parquet(tmp_path / "videos.parquet")
    out = tmp_path / "out"
    names = [field.name for field in dataclasses.fields(EvaluationPaths)]
    paths = EvaluationPaths.from_mapping(
        {name: out / f"sub{number}" / f"{name}.x" for number, name in enumerate(names)}
    )
    metrics = evaluate_model(
        "tiny",
        {"arch": "cnn"},
        model_path=model_paths["cnn"],
        store_paths=[StorePaths.for_prefix(tmp_path / "store" / BATCH)],
        test_path=tmp_path / "videos.parquet",
        validation_path=tmp_path / "videos.parquet",
        paths=paths,
        backend="tensorflow",
        aggregation="mean",
        n_resamples=10,
        seed=0,
        batch_size=8,
        calibration_path=out / "beside-the-model" / "calibration.json",
        calibration_method="temperature",
        calibration_bins=10,
    )
    written = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    declared = [Path(getattr(paths, name)).relative_to(out) for name in names]
    assert written == sorted([*declared, Path("beside-the-model/calibration.json")])
    assert metrics["n"] == 2 and metrics["calibrated"]["method"] == "temperature"


def test_single_frame_score_is_the_aggregate_of_the_selected_frames(models, face_zip):
    """Video b: slot 0 has frames 5-9 single-face (3, 4 hold two faces), slot 1 frame 10, slot 2 frame 20, slot 3 30."""
    model = models["cnn"]
    with zipfile.ZipFile(face_zip) as archive:
        crops = [decode_face(archive.read(f"bbbbbbbbbb/{frame}.png"), IMAGE_SIZE) for frame in (5, 10, 20, 30)]
    frame_scores = model.predict({"frames": np.stack(crops)}, verbose=0).reshape(-1)
    table = scorer(model, aggregation="median").score([face_zip])
    assert by_filename(table)["bbbbbbbbbb.mp4"] == (pytest.approx(float(np.median(frame_scores)), abs=2e-6), "ok")


def test_videos_without_usable_frames_get_half_and_a_reason(models, face_zip):
    scores = by_filename(scorer(models["cnn"]).score([face_zip]))
    label, status = scores["cccccccccc.mp4"]
    assert label == 0.5 and status.startswith("no_usable_frames: no frame with exactly one face")
    assert scores["dddddddddd.mp4"] == (0.5, "no_faces: no face images")


def test_face_folder_scores_like_its_video_in_the_zip(models, face_zip, face_folder):
    for arch in ("cnn", "td_lstm"):
        from_zip = by_filename(scorer(models[arch]).score([face_zip]))["aaaaaaaaaa.mp4"]
        from_folder = scorer(models[arch]).score([face_folder])
        assert list(from_folder["filename"]) == ["aaaaaaaaaa.mp4"]
        assert from_zip[1] == "ok"
        # batches of another size change the last bits of a prediction: compare as the file does elsewhere
        assert by_filename(from_folder)["aaaaaaaaaa.mp4"] == (pytest.approx(from_zip[0], abs=2e-6), "ok")


# ---------------------------------------------------------------- mp4 input


@pytest.mark.slow
def test_mp4_scores_like_its_extracted_face_batch(models, detector, tmp_path):
    """The mp4 path and the workflow's extract_faces -> face batch path select the same faces."""
    frames, _ = videos.face_frames(["astronaut"], 12)
    mp4 = videos.write_mp4(tmp_path / "eeeeeeeeee.mp4", frames)
    face_settings = FaceSettings.of(crop_size=CROP_SIZE)
    raw_part = videos.write_raw_part(
        tmp_path / "dfdc_train_part_9.zip",
        {mp4.name: mp4.read_bytes()},
        {mp4.name: {"label": "REAL", "split": "train", "original": None}},
    )
    extracted = extract.extract_part(
        raw_part, tmp_path / "deepfake-detection-faces-part-9-0.zip", face_settings, detector=detector, progress=False
    )
    settings = PredictSettings.of(faces=face_settings, step=4, count=3)
    table = Scorer(models["cnn"], settings, detector_factory=lambda: detector).score([mp4, extracted.out_zip])
    assert list(table["filename"]) == ["eeeeeeeeee.mp4", "eeeeeeeeee.mp4"]
    assert list(table["status"]) == ["ok", "ok"]
    assert table["label"].iloc[0] == table["label"].iloc[1]


def test_an_mp4_cut_short_is_scored_from_its_frames_with_a_note(models, detector, tmp_path):
    frames, _ = videos.face_frames(["astronaut"], 40)
    whole = videos.write_mp4(tmp_path / "whole.mp4", frames)
    cut = videos.cut_short_mp4(whole, tmp_path / "cut.mp4", 0.7)  # the first key frame is a third of the file
    settings = PredictSettings.of(faces=FaceSettings.of(crop_size=CROP_SIZE), step=2, count=30)  # frames 0-59
    table = Scorer(models["cnn"], settings, detector_factory=lambda: detector).score([whole, cut])
    assert list(table["status"]) == ["ok", "ok"] and table["note"].iloc[0] == ""
    assert table["n_frames_scored"].iloc[0] == 20  # every 2nd of 40 frames
    note = table["note"].iloc[1]
    decoded = int(note.split()[1])
    assert note == f"decoded {decoded} of 40 frames: the file ends early (cut short?)" and 5 < decoded < 30
    assert table["n_frames_scored"].iloc[1] == (decoded + 1) // 2


@pytest.mark.slow
def test_mp4_without_faces_or_undecodable_gets_half_and_a_reason(models, detector, tmp_path):
    noise = videos.write_mp4(tmp_path / "noise.mp4", videos.faceless_frames(6))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(videos.garbage_mp4_bytes())
    scored = Scorer(models["cnn"], PredictSettings.of(step=2, count=3), detector_factory=lambda: detector)
    statuses = by_filename(scored.score([noise, garbage]))
    assert statuses["noise.mp4"][0] == 0.5 and statuses["noise.mp4"][1].startswith("no_faces: no face with confidence")
    assert statuses["noise.mp4"][1].endswith("in the 6 frame(s) searched (frames 0-5)")  # what was actually read
    assert statuses["garbage.mp4"] == (
        0.5,
        "unreadable: garbage.mp4: moov atom not found; Error opening input: Invalid data found when processing input",
    )


# ---------------------------------------------------------------- command line


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def test_cli_writes_the_competition_csv_and_scores_the_good_inputs(model_paths, face_zip, face_folder, tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(videos.garbage_mp4_bytes())
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    out = tmp_path / "scores" / "scores.csv"
    argv = [
        str(face_folder),
        str(garbage),
        str(tmp_path / "absent.mp4"),
        str(notes),
        str(face_zip),
        "--model",
        str(model_paths["cnn"]),
        "--out",
        str(out),
        "--frames-step",
        str(STEP),
        "--frames-count",
        str(COUNT),
    ]
    assert predict.main(argv) == 0
    assert out.read_text().splitlines()[0] == "filename,label,status,n_frames_scored,n_faces_found,note,calibration"
    table = read_csv(out)
    assert list(table["filename"]) == [
        "aaaaaaaaaa.mp4",
        "broken.mp4",
        "absent.mp4",
        "notes.txt",
        "aaaaaaaaaa.mp4",
        "bbbbbbbbbb.mp4",
        "cccccccccc.mp4",
        "dddddddddd.mp4",
    ]
    codes = [status.split(":")[0] for status in table["status"]]
    assert codes == ["ok", "unreadable", "not_found", "unsupported", "ok", "ok", "no_usable_frames", "no_faces"]
    assert ((table["label"] > 0) & (table["label"] < 1)).all()
    assert (table.loc[table["status"] != "ok", "label"] == 0.5).all()
    assert table["label"].iloc[0] == table["label"].iloc[4]  # the folder and its video in the zip
    # frames the score comes from, and face images in frames 0-39 (c: two faces in each of its 40 frames)
    assert list(table["n_frames_scored"]) == [COUNT, 0, 0, 0, COUNT, COUNT, 0, 0]
    assert list(table["n_faces_found"]) == [40, 0, 0, 0, 40, 37 + 3, 80, 0]


def test_cli_exits_non_zero_when_nothing_is_scored_and_writes_to_stdout(model_paths, tmp_path, capsys):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(videos.garbage_mp4_bytes())
    empty = tmp_path / "zzzzzzzzzz"
    empty.mkdir()
    assert predict.main([str(garbage), str(empty), "--model", str(model_paths["cnn"])]) == 1
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), keep_default_na=False)
    assert list(table.columns) == [
        "filename",
        "label",
        "status",
        "n_frames_scored",
        "n_faces_found",
        "note",
        "calibration",
    ]
    assert list(table["filename"]) == ["broken.mp4", "zzzzzzzzzz.mp4"]
    assert list(table["n_frames_scored"]) == [0, 0]
    assert list(table["label"]) == [0.5, 0.5]
    assert table["status"].iloc[1].startswith("no_faces: ")


def test_cli_takes_the_clip_length_of_a_td_lstm_model_and_rejects_another(model_paths, face_zip, tmp_path):
    out = tmp_path / "scores.csv"
    assert predict.main([str(face_zip), "--model", str(model_paths["td_lstm"]), "--out", str(out)]) == 0
    assert list(read_csv(out)["status"])[:2] == ["ok", "ok"]
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(model_paths["td_lstm"]), "--frames-count", str(COUNT + 1)])
    assert stopped.value.code == 2


def test_cli_takes_frames_and_aggregation_from_a_workflow_config(model_paths, face_zip, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"frames": {"step": STEP, "count": COUNT}, "evaluation": {"aggregate": "median"}}))
    out = tmp_path / "scores.csv"
    assert (
        predict.main([str(face_zip), "--model", str(model_paths["cnn"]), "--config", str(config), "--out", str(out)])
        == 0
    )
    settings = PredictSettings.of(step=STEP, count=COUNT, aggregation="median")
    calibrated = Scorer(load_model(model_paths["cnn"]), settings, no_detector, calibrations=[CALIBRATIONS["cnn"]])
    expected = calibrated.score([face_zip])
    assert read_csv(out)["label"].tolist() == pytest.approx(expected["label"].tolist(), abs=1e-9)


def test_a_zip_whose_metadata_cannot_be_parsed_scores_0_5_and_the_other_inputs_go_on(
    model_paths, face_folder, tmp_path
):
    broken = tmp_path / "deepfake-detection-faces-part-9-0.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("metadata.csv", "filename,split,original,label\na.mp4,train,,REAL,extra,fields\n")
        archive.writestr("a/0.png", b"")
    out = tmp_path / "scores.csv"
    argv = [
        str(broken),
        str(face_folder),
        "--model",
        str(model_paths["cnn"]),
        "--out",
        str(out),
        "--frames-step",
        str(STEP),
        "--frames-count",
        str(COUNT),
    ]
    assert predict.main(argv) == 0
    table = read_csv(out)
    assert list(table["filename"]) == [broken.name, "aaaaaaaaaa.mp4"]
    assert table["status"].iloc[0].startswith("unreadable: ") and broken.name in table["status"].iloc[0]
    assert table["label"].iloc[0] == 0.5 and table["status"].iloc[1] == "ok"


def test_a_model_file_that_is_not_a_keras_archive_is_named_as_such(face_zip, tmp_path, capsys):
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("not a model")
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(not_a_model)])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert f"{not_a_model} cannot be read (not a Keras model archive" in message
    assert "remove it and rerun `snakemake` to retrain" in message


@pytest.mark.parametrize(
    ("out_of", "says"),
    [
        (lambda inputs: inputs["mp4"], "is input 1 of 3"),
        (lambda inputs: inputs["folder"] / "0.png", "is inside input 2 of 3"),
        (lambda inputs: inputs["folder"] / "new.csv", "is inside input 2 of 3"),
        (lambda inputs: inputs["zip"], "is input 3 of 3"),
        (lambda inputs: inputs["model"], "is the model"),
        (lambda inputs: inputs["config"], "is the config"),
        (lambda inputs: inputs["link"], "is input 1 of 3"),  # another name of the same file
    ],
)
def test_an_output_that_would_replace_an_input_fails_before_any_scoring(
    model_paths, face_zip, face_folder, tmp_path, capsys, monkeypatch, out_of, says
):
    mp4 = videos.write_mp4(tmp_path / "clip.mp4", videos.faceless_frames(3))
    (tmp_path / "config.yaml").write_text("frames: {step: 10}\n")
    os.link(mp4, tmp_path / "same-clip.mp4")
    inputs = {"mp4": mp4, "folder": face_folder, "zip": face_zip, "model": model_paths["cnn"]}
    inputs.update(config=tmp_path / "config.yaml", link=tmp_path / "same-clip.mp4")
    before = {path: path.read_bytes() for path in [mp4, face_zip, model_paths["cnn"], *face_folder.iterdir()]}
    scored = []
    monkeypatch.setattr(predict.Scorer, "score", lambda *args, **kwargs: scored.append(args))
    argv = [str(mp4), str(face_folder), str(face_zip), "--model", str(model_paths["cnn"])]
    with pytest.raises(SystemExit) as stopped:
        predict.main([*argv, "--config", str(inputs["config"]), "--out", str(out_of(inputs))])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err and scored == []
    assert {path: path.read_bytes() for path in before} == before and not (face_folder / "new.csv").exists()


def test_predict_command_refuses_to_write_over_its_model(model_paths, face_zip):
    model = model_paths["cnn"]
    before = model.read_bytes()
    command = [sys.executable, "-m", "dfdetect.cli", "predict", str(face_zip), "--model", str(model)]
    done = subprocess.run([*command, "--out", str(model)], capture_output=True, text=True)
    assert done.returncode == 2 and f"--out {model} is the model" in done.stderr
    assert model.read_bytes() == before


def test_an_unwritable_output_fails_before_any_scoring(model_paths, face_zip, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    scored = []
    monkeypatch.setattr(predict.Scorer, "score", lambda *args, **kwargs: scored.append(args))
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(model_paths["cnn"]), "--out", str(blocker / "scores.csv")])
    assert stopped.value.code == 2
    assert "cannot be written" in capsys.readouterr().err and scored == []
    assert list(tmp_path.iterdir()) == [blocker]  # and nothing was left behind


# ---------------------------------------------------------------- the model's own scoring settings


def model_with_scoring(model_paths, folder: Path, scoring_settings: dict | None) -> Path:
    """A copy of the cnn model in ``folder``, with ``scoring.json`` beside it (as the workflow writes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    path.write_bytes(model_paths["cnn"].read_bytes())
    if scoring_settings is not None:
        config = complete_config(scoring_settings)
        scoring.write_scoring_settings(folder / "scoring.json", scoring.scoring_settings(config))
    return path


def test_a_model_scores_with_its_own_scoring_settings_without_a_config(model_paths, face_zip, tmp_path, caplog):
    """(--raw: the scores compared are the model's own; calibration has its own tests below.)"""
    caplog.set_level("INFO")
    evaluated_with = {"frames": {"step": STEP, "count": COUNT}, "evaluation": {"aggregate": "median"}}
    model = model_with_scoring(model_paths, tmp_path / "cnn", evaluated_with)
    out = tmp_path / "scores.csv"
    assert predict.main([str(face_zip), "--model", str(model), "--raw", "--out", str(out)]) == 0
    expected = scorer(load_model(model), aggregation="median").score([face_zip])
    assert read_csv(out)["label"].tolist() == pytest.approx(expected["label"].tolist(), abs=1e-9)
    assert "frames step 10, count 4, aggregate median (as evaluated" in caplog.text
    # a config that says otherwise does not change how the model scores; the command line does
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump({"frames": {"step": 3}, "evaluation": {"aggregate": "mean"}}))
    assert (
        predict.main([str(face_zip), "--model", str(model), "--raw", "--config", str(config), "--out", str(out)]) == 0
    )
    assert read_csv(out)["label"].tolist() == pytest.approx(expected["label"].tolist(), abs=1e-9)
    assert "says frames.step 3, the model was evaluated with 10: the model's applies" in caplog.text
    assert predict.main([str(face_zip), "--model", str(model), "--raw", "--aggregate", "mean", "--out", str(out)]) == 0
    mean = scorer(load_model(model), aggregation="mean").score([face_zip])
    assert read_csv(out)["label"].tolist() == pytest.approx(mean["label"].tolist(), abs=1e-9)


def test_without_scoring_settings_the_defaults_apply_with_a_warning(model_paths, face_zip, tmp_path, caplog, capsys):
    model = model_with_scoring(model_paths, tmp_path / "bare", None)
    assert predict.main([str(face_zip), "--model", str(model), "--raw", "--out", str(tmp_path / "s.csv")]) == 0
    assert "has no scoring.json beside it: the schema's defaults apply" in caplog.text
    (model.parent / "scoring.json").write_text("{broken")
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(model), "--raw"])
    assert stopped.value.code == 2
    assert f"{model.parent / 'scoring.json'} cannot be read" in capsys.readouterr().err


def test_an_ensemble_of_models_evaluated_differently_is_refused(model_paths, face_zip, tmp_path, capsys):
    first = model_with_scoring(model_paths, tmp_path / "a", {"frames": {"step": STEP, "count": COUNT}})
    second = model_with_scoring(model_paths, tmp_path / "b", {"frames": {"step": 3, "count": COUNT}})
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(first), "--model", str(second), "--raw"])
    assert stopped.value.code == 2
    assert f"{first.parent / 'scoring.json'} and {second.parent / 'scoring.json'} differ" in capsys.readouterr().err


def test_a_single_face_crop_is_scored_as_a_video_of_one_frame(models, face_zip, tmp_path):
    with zipfile.ZipFile(face_zip) as archive:
        crop = archive.read("aaaaaaaaaa/12.png")
    image = tmp_path / "face.png"
    image.write_bytes(crop)
    table = scorer(models["cnn"]).score([image])
    expected = models["cnn"].predict({"frames": decode_face(crop, IMAGE_SIZE)[None]}, verbose=0).reshape(-1)[0]
    row = table.iloc[0]
    assert (row["filename"], row["status"], row["n_frames_scored"], row["n_faces_found"]) == ("face.png", "ok", 1, 1)
    assert row["label"] == pytest.approx(float(expected), abs=2e-6)
    not_an_image = tmp_path / "text.png"
    not_an_image.write_text("no picture")
    assert scorer(models["cnn"]).score([not_an_image])["status"].iloc[0].startswith("unreadable: face image")


# ---------------------------------------------------------------- calibration and ensembles


def test_the_models_calibration_applies_by_default_and_raw_turns_it_off(model_paths, face_zip, tmp_path):
    common = [
        str(face_zip),
        "--model",
        str(model_paths["cnn"]),
        "--frames-step",
        str(STEP),
        "--frames-count",
        str(COUNT),
    ]
    assert predict.main([*common, "--out", str(tmp_path / "calibrated.csv")]) == 0
    assert predict.main([*common, "--raw", "--out", str(tmp_path / "raw.csv")]) == 0
    calibrated, raw = read_csv(tmp_path / "calibrated.csv"), read_csv(tmp_path / "raw.csv")
    scored = raw["status"] == "ok"
    expected = CALIBRATIONS["cnn"].apply(raw.loc[scored, "label"])
    assert calibrated.loc[scored, "label"].to_numpy() == pytest.approx(expected, abs=2e-6)
    assert set(calibrated["calibration"]) == {"temperature T=2"} and set(raw["calibration"]) == {"raw"}


def test_a_model_without_its_calibration_is_refused_unless_raw(model_paths, face_zip, tmp_path, capsys):
    alone = tmp_path / "alone" / "model.keras"
    alone.parent.mkdir()
    alone.write_bytes(model_paths["cnn"].read_bytes())
    with pytest.raises(SystemExit) as stopped:
        predict.main([str(face_zip), "--model", str(alone)])
    assert stopped.value.code == 2
    assert f"{alone.parent / CALIBRATION_FILE} does not exist" in capsys.readouterr().err
    assert predict.main([str(face_zip), "--model", str(alone), "--raw", "--out", str(tmp_path / "s.csv")]) == 0


@pytest.mark.parametrize("combine", ["mean", "logit_mean"])
def test_predict_with_two_models_equals_the_ensembles_evaluation(model_paths, face_zip, tmp_path, combine):
    """Each member evaluated as the evaluate job does (scores, calibration), the ensemble combined as the
    ensemble job does; predict with both models on the batch gives the same scores."""
    from dfdetect.evaluation.ensemble import ensemble_predictions
    from dfdetect.evaluation.evaluate import CALIBRATED_COLUMN, with_calibrated

    members = {}
    for arch in ("cnn", "td_lstm"):
        scored = evaluation_scores(load_model(model_paths[arch]), face_zip, tmp_path / arch, arch, "mean")
        members[arch] = with_calibrated(scored, CALIBRATIONS[arch])
    expected = ensemble_predictions(members, combine).set_index("video_id")[CALIBRATED_COLUMN]
    out = tmp_path / "ensemble.csv"
    argv = [str(face_zip), "--model", str(model_paths["cnn"]), "--model", str(model_paths["td_lstm"])]
    assert predict.main([*argv, "--combine", combine, "--frames-step", str(STEP), "--out", str(out)]) == 0
    table = read_csv(out).set_index("filename")
    for video_id, score in expected.items():
        assert table.loc[f"{video_id}.mp4", "status"] == "ok"
        assert table.loc[f"{video_id}.mp4", "label"] == pytest.approx(score, abs=2e-6)
    assert table["calibration"].iloc[0] == f"{combine} of cnn: temperature T=2; td_lstm: platt a=2 b=-0.3"
