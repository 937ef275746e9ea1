"""Model builders and backend set-up: structure, one training step, .keras round trips,
masking, preprocessing parity with Keras Applications, weights files and config errors.

Sizes are tiny (32 px, a few slots) and backbones cheap, so the file runs in about a minute
on two CPU cores. Other Keras backends run in a subprocess where they are installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from dfdetect.training import backend

backend.select_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))

import keras  # noqa: E402  (after select_backend, on purpose)

from dfdetect.training import (  # noqa: E402
    backbones,
    layers,
    models,  # noqa: E402
)
from dfdetect.training.backbones import ModelConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # the smallest size the cheap backbones accept
CHEAP_BACKBONE = "MobileNet"  # 86 layers, BatchNorm, 'tf' preprocessing: builds in about 1 s


def _frames(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=(*shape, SIZE, SIZE, 3), dtype=np.uint8)


def _clips(rng: np.random.Generator, n_clips: int, n_slots: int) -> dict[str, np.ndarray]:
    n_filled = rng.integers(1, n_slots + 1, size=n_clips)
    mask = np.arange(n_slots)[None, :] < n_filled[:, None]
    return {"frames": _frames(rng, n_clips, n_slots), "mask": mask}


def _weights_of(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def _train_one_step(model: keras.Model, inputs: dict, n_examples: int, eager: bool) -> None:
    # eager=True skips tracing the train graph: much faster for one step of a big backbone.
    model.compile(optimizer="adam", loss="binary_crossentropy", run_eagerly=eager)
    labels = np.arange(n_examples) % 2
    model.fit(inputs, labels, batch_size=n_examples, epochs=1, verbose=0)


def _predict(model: keras.Model, inputs: dict) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))  # eager: no tracing


def _assert_reloads_identically(model: keras.Model, inputs: dict, tmp_path: Path) -> keras.Model:
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = _predict(model, inputs)
    np.testing.assert_allclose(_predict(reloaded, inputs), expected, rtol=1e-6, atol=1e-7)
    assert expected.shape[-1] == 1 and expected.dtype == np.float32
    return reloaded


def _layers_of_type(model: keras.Model, layer_type: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, layer_type)]


# --------------------------------------------------------------------------- backend


def test_importing_backend_does_not_import_keras() -> None:
    code = "import sys, dfdetect.training.backend; print(sorted({'keras', 'tensorflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_select_backend_refuses_unknown_and_switching(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    with pytest.raises(ValueError, match="unknown Keras backend 'theano'"):
        backend.select_backend("theano")
    backend.select_backend(keras.backend.backend())  # same backend: fine
    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    with pytest.raises(backend.BackendError, match="already imported"):
        backend.select_backend(other)
    assert os.environ["KERAS_BACKEND"] == keras.backend.backend()


def test_set_seeds_makes_builds_repeatable() -> None:
    backend.set_seeds(7)
    first = _weights_of(models.build_cnn(SIZE))
    backend.set_seeds(7)
    second = _weights_of(models.build_cnn(SIZE))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_mixed_precision_keeps_lstm_and_output_in_float32() -> None:
    try:
        assert backend.set_mixed_precision(True) == "mixed_bfloat16"
        model = models.build_td_lstm(SIZE, 2, "cnn")
        encoder = model.get_layer("frame_features").layer
        assert encoder.get_layer("block1_conv1").compute_dtype == "bfloat16"
        assert model.get_layer("lstm_64").compute_dtype == "float32"
        assert model.get_layer("lstm_256").compute_dtype == "float32"
        assert model.get_layer("fake_probability").compute_dtype == "float32"
        prediction = _predict(model, _clips(np.random.default_rng(0), 2, 2))
        assert prediction.dtype == np.float32 and np.isfinite(prediction).all()
    finally:
        assert backend.set_mixed_precision(False) == "float32"
    with pytest.raises(ValueError, match="unknown mixed precision policy"):
        backend.set_mixed_precision(True, policy="mixed_int8")


# --------------------------------------------------------------------------- cnn


def test_cnn_has_the_study_structure() -> None:
    model = models.build_model("baseline", {"arch": "cnn"}, SIZE)
    assert model.name == "baseline"
    assert list(model.input) == ["frames"] and model.input["frames"].dtype == "uint8"
    assert isinstance(model.layers[1], keras.layers.Rescaling)
    convs = _layers_of_type(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert len(_layers_of_type(model, keras.layers.MaxPooling2D)) == 3
    assert [d.units for d in _layers_of_type(model, keras.layers.Dense)] == [128, 256, 1]
    assert model.output.dtype == "float32"


def test_cnn_trains_and_reloads(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = models.build_cnn(SIZE)
    inputs = {"frames": _frames(rng, 4)}
    _train_one_step(model, inputs, 4, eager=True)
    reloaded = _assert_reloads_identically(model, inputs, tmp_path)
    with pytest.warns(UserWarning, match="structure"):  # a bare array works, with a warning
        bare = reloaded(inputs["frames"])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bare), _predict(reloaded, inputs))


# --------------------------------------------------------------------------- transfer


def test_preprocessing_matches_keras_preprocess_input_for_every_backbone() -> None:
    images = np.random.default_rng(2).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    images[0, 0, 0] = (0, 128, 255)  # extremes, and channel order visible
    modes_seen = set()
    for name in backbones.backbone_names():
        spec = backbones.backbone_spec(name)
        modes_seen.add(spec.preprocessing)
        expected = getattr(keras.applications, spec.module).preprocess_input(images.astype("float32"))
        layer = layers.BackbonePreprocessing(spec.preprocessing)
        actual = keras.ops.convert_to_numpy(layer(images))
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-5, err_msg=name)
    assert modes_seen == set(layers.PREPROCESSING_MODES)


def test_backbone_names_cover_the_study() -> None:
    names = backbones.backbone_names()
    for required in ("Xception", "VGG16", "InceptionV3", "ResNet50V2", "EfficientNetB0"):
        assert required in names
    assert backbones.backbone_spec("efficientnetb0").name == "EfficientNetB0"


def test_transfer_freezes_the_base_and_trains_the_head(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    model = models.build_model(
        "mobilenet_frozen",
        {"arch": "transfer", "backbone": CHEAP_BACKBONE, "weights": None, "trainable_layers": 0},
        SIZE,
    )
    base = model.get_layer(index=2)
    assert isinstance(model.get_layer(index=1), layers.BackbonePreprocessing)
    assert base.trainable_weights == [] and base.weights
    head_units = [d.units for d in _layers_of_type(model, keras.layers.Dense)]
    assert head_units == [1024, 512, 1]
    assert [d.rate for d in _layers_of_type(model, keras.layers.Dropout)] == [0.5, 0.25]
    assert len(_layers_of_type(model, keras.layers.BatchNormalization)) == 2

    base_before = _weights_of(base)
    head = [model.get_layer(name) for name in ("dense_1024", "dense_512", "fake_probability")]
    head_before = [w for layer in head for w in _weights_of(layer)]
    inputs = {"frames": _frames(rng, 4)}
    _train_one_step(model, inputs, 4, eager=True)
    for before, after in zip(base_before, _weights_of(base), strict=True):
        np.testing.assert_array_equal(before, after)
    head_after = [w for layer in head for w in _weights_of(layer)]
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, head_after, strict=True))

    reloaded = _assert_reloads_identically(model, inputs, tmp_path)
    assert reloaded.get_layer(index=2).trainable_weights == []


def test_transfer_from_scratch_trains_the_whole_backbone() -> None:
    model = models.build_transfer(SIZE, CHEAP_BACKBONE, weights=None, pooling="avg")
    base = model.get_layer(index=2)
    assert len(base.trainable_weights) == len([w for w in base.weights if "moving" not in w.path])
    assert isinstance(model.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)


def test_weights_from_a_local_file_and_top_layers_unfrozen(tmp_path: Path) -> None:
    source = keras.applications.MobileNet(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    weights_file = tmp_path / "mobilenet_notop.weights.h5"
    source.save_weights(weights_file)
    settings = {
        "arch": "transfer",
        "backbone": CHEAP_BACKBONE,
        "weights": str(weights_file),
        "trainable_layers": 6,
    }
    model = models.build_model("finetune", settings, SIZE)
    base = model.get_layer(index=2)
    for expected, actual in zip(_weights_of(source), _weights_of(base), strict=True):
        np.testing.assert_array_equal(expected, actual)
    body = [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert not any(layer.trainable for layer in body[:-6])
    top = body[-6:]
    assert any(layer.trainable and layer.weights for layer in top)
    for layer in top:
        is_batchnorm = isinstance(layer, keras.layers.BatchNormalization)
        assert layer.trainable != is_batchnorm, layer.name  # pretrained BatchNorm stays frozen


def test_imagenet_weights_offline_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def no_network(url: str, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    # Keras's real get_file runs and fails as it does offline (empty cache, no network).
    monkeypatch.setattr(keras_config, "keras_home", lambda: str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    settings = {"arch": "transfer", "backbone": "VGG16", "weights": "imagenet"}
    with pytest.raises(ModelConfigError) as error:
        models.build_model("vgg_imagenet", settings, SIZE)
    message = str(error.value)
    assert "'vgg_imagenet'" in message
    assert "could not download the ImageNet weights for VGG16" in message
    assert "URL fetch failure on https://" in message and "notop.h5" in message
    assert "weights: null" in message and "local path" in message


def test_unknown_backbone_names_model_and_close_names() -> None:
    with pytest.raises(ModelConfigError) as error:
        models.build_model("effnet", {"arch": "transfer", "backbone": "EfficientNetB9"}, SIZE)
    message = str(error.value)
    assert message.startswith("model 'effnet': unknown backbone 'EfficientNetB9'")
    assert "did you mean EfficientNetB" in message


def test_missing_weights_file_names_model(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "xception_notop.h5"
    settings = {"arch": "td_lstm", "backbone": "Xception", "weights": str(missing)}
    with pytest.raises(ModelConfigError, match=r"model 'clipnet': weights file .* does not exist"):
        models.build_model("clipnet", settings, 96, n_slots=3)


def test_too_small_images_name_model_and_minimum() -> None:
    settings = {"arch": "transfer", "backbone": "Xception", "weights": None}
    expected = r"model 'xc': backbone Xception cannot be built at image_size 64: .*at least 71"
    with pytest.raises(ModelConfigError, match=expected):
        models.build_model("xc", settings, 64)


@pytest.mark.parametrize(
    ("settings", "cause"),
    [
        ({"arch": "resnet"}, "arch must be one of cnn, transfer, td_lstm"),
        ({"arch": "transfer"}, "needs a `backbone:`"),
        ({"arch": "transfer", "backbone": "VGG16", "weights": None, "pooling": "sum"}, "pooling must be one of"),
        (
            {"arch": "transfer", "backbone": "VGG16", "weights": None, "trainable_layers": 99},
            "trainable_layers 99 is outside 0..18",
        ),
    ],
)
def test_bad_settings_name_model_and_cause(settings: dict, cause: str) -> None:
    with pytest.raises(ModelConfigError) as error:
        models.build_model("m1", settings, SIZE)
    assert str(error.value).startswith("model 'm1': ") and cause in str(error.value)


# --------------------------------------------------------------------------- td_lstm


def test_td_lstm_structure_trains_and_reloads(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    model = models.build_model("clips", {"arch": "td_lstm", "backbone": "cnn"}, SIZE, n_slots=4)
    assert {t.name: t.dtype for t in model.inputs} == {"frames": "uint8", "mask": "bool"}
    assert model.get_layer("frames").output.shape == (None, 4, SIZE, SIZE, 3)
    lstms = _layers_of_type(model, keras.layers.LSTM)
    assert [(lstm.units, lstm.return_sequences) for lstm in lstms] == [(64, True), (256, False)]
    assert [d.units for d in _layers_of_type(model, keras.layers.Dense)] == [512, 1]
    encoder = model.get_layer("frame_features").layer
    assert len(_layers_of_type(encoder, keras.layers.Conv2D)) == 6

    clips = _clips(rng, 4, 4)
    _train_one_step(model, clips, 4, eager=False)
    _assert_reloads_identically(model, clips, tmp_path)


def test_td_lstm_ignores_padded_slots() -> None:
    rng = np.random.default_rng(5)
    model = models.build_td_lstm(SIZE, 5, "cnn")
    clips = _clips(rng, 3, 5)
    clips["mask"][:, 3:] = False  # every clip has padding in slots 3 and 4
    baseline = _predict(model, clips)

    repainted = {"frames": clips["frames"].copy(), "mask": clips["mask"]}
    repainted["frames"][~clips["mask"]] = _frames(rng, int((~clips["mask"]).sum()))
    np.testing.assert_allclose(_predict(model, repainted), baseline, rtol=1e-6)

    as_numbers = {"frames": clips["frames"], "mask": clips["mask"].astype("float32")}
    np.testing.assert_allclose(_predict(model, as_numbers), baseline, rtol=1e-6)

    changed_first = {"frames": clips["frames"].copy(), "mask": clips["mask"]}
    changed_first["frames"][:, 0] = 255 - changed_first["frames"][:, 0]
    assert not np.allclose(_predict(model, changed_first), baseline, rtol=1e-6)

    empty = {"frames": clips["frames"], "mask": np.zeros_like(clips["mask"])}
    assert np.isfinite(_predict(model, empty)).all()


def test_td_lstm_over_a_pretrained_style_backbone(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    settings = {"arch": "td_lstm", "backbone": CHEAP_BACKBONE, "weights": None, "trainable_layers": 0}
    model = models.build_model("mobilenet_clips", settings, SIZE, n_slots=2)
    encoder = model.get_layer("frame_features").layer
    assert isinstance(encoder.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)
    assert encoder.get_layer(index=2).trainable_weights == []
    clips = _clips(rng, 2, 2)
    _train_one_step(model, clips, 2, eager=True)
    _assert_reloads_identically(model, clips, tmp_path)


# --------------------------------------------------------------------------- other backends

_OTHER_BACKEND_SCRIPT = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    from dfdetect.training import backend
    backend.select_backend(sys.argv[1])
    import keras, numpy as np
    from dfdetect.training import models
    assert keras.backend.backend() == sys.argv[1]
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    inputs = {
        "cnn": {"frames": frames[:, 0]},
        "td_lstm": {"frames": frames, "mask": np.array([[1, 1, 0], [1, 0, 0]], bool)},
    }
    for arch, x in inputs.items():
        model = models.build_model(arch, {"arch": arch, "backbone": "cnn"}, 16, n_slots=3)
        model.compile(optimizer="adam", loss="binary_crossentropy")
        model.fit(x, np.array([0, 1]), epochs=1, verbose=0)
        path = Path(tempfile.mkdtemp()) / f"{arch}.keras"
        model.save(path)
        reloaded = keras.models.load_model(path)
        np.testing.assert_allclose(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5
        )
    print("ok")
    """
)


@pytest.mark.slow  # about 2 minutes on JAX on two busy CPU cores (compilation)
@pytest.mark.parametrize("backend_name", ["jax", "torch"])
def test_models_on_other_backends(backend_name: str) -> None:
    if importlib.util.find_spec(backend_name) is None:
        pytest.skip(f"{backend_name} is not installed in this environment")
    env = {**os.environ, "KERAS_BACKEND": backend_name}
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_BACKEND_SCRIPT, backend_name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
