"""Model builders for the study's three architectures (Keras 3, backend-neutral).

Call ``dfdetect.training.backend.select_backend()`` before importing this module: it imports Keras.
Each builder reads its keys of a model's config entry; what they mean is in the schema
(``dfdetect/config.schema.yaml``, ``$defs.model``). The backbones are in ``backbones``, the custom
layers (registered for ``.keras`` loading) in ``layers``.

Inputs (the loader's contract, ``dfdetect.training.modelinput``). Frames are **uint8** RGB face
crops exactly as the frame store holds them; scaling and each backbone's own preprocessing are the
first layers of every model, so a saved ``.keras`` model scores raw crops. Every model takes a dict
keyed by input name (``model.input`` is that dict, so a loader can test ``MASK_INPUT in model.input``):

- ``cnn``, ``transfer`` (one frame per example): ``{"frames": (batch, size, size, 3)}`` uint8;
- ``td_lstm`` (one clip per example): ``"frames"`` ``(batch, n_slots, size, size, 3)`` uint8 and
  ``"mask"`` ``(batch, n_slots)`` bool, True where the slot holds a frame. Filled slots come first
  (right padding): cuDNN's LSTM on TensorFlow GPUs accepts no other masks. A clip with no filled
  slot is scored from its first slot.

Every model outputs ``(batch, 1)`` float32: the probability that the input is FAKE (label 1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
from keras import layers

from dfdetect.corrupt import REBUILD_MODEL, CorruptFileError, check_model_archive
from dfdetect.schema import schema_default
from dfdetect.training.backbones import FROM_SCRATCH_BATCHNORM_MOMENTUM, ModelConfigError, backbone_features
from dfdetect.training.layers import FrameWise, SlotMask
from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT

ARCHS = ("cnn", "transfer", "td_lstm")


DEFAULT_WEIGHTS = schema_default("model", "weights")  # null: from scratch (a download is opt-in)


def _frames_input(image_size: int) -> keras.KerasTensor:
    return keras.Input((image_size, image_size, 3), dtype="uint8", name=FRAMES_INPUT)


def _fake_probability(x: keras.KerasTensor) -> keras.KerasTensor:
    # float32 output: a sigmoid in bfloat16/float16 rounds probabilities near 0 and 1.
    return layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")(x)


def _dense_block(x: keras.KerasTensor, units: int, dropout: float) -> keras.KerasTensor:
    """The study's head block: Dense (ReLU) + Dropout + BatchNorm."""
    x = layers.Dense(units, activation="relu", name=f"dense_{units}")(x)
    x = layers.Dropout(dropout, name=f"dropout_{units}")(x)
    # momentum 0.9 (Keras: 0.99): the moving statistics that inference uses must settle within
    # the few hundred steps a small dataset gives, or the model predicts a constant.
    return layers.BatchNormalization(momentum=FROM_SCRATCH_BATCHNORM_MOMENTUM, name=f"batchnorm_{units}")(x)


def _cnn_features(frames: keras.KerasTensor) -> keras.KerasTensor:
    """The study's CNN up to its last hidden layer: 3 x (2 conv + max-pool), Dense 128, 256."""
    x = layers.Rescaling(1.0 / 255, name="rescale")(frames)
    for block, filters in enumerate((32, 64, 128), start=1):
        for conv in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense_128")(x)
    return layers.Dense(256, activation="relu", name="dense_256")(x)


def _check_image_size(image_size: int, model_name: str, minimum: int = 8) -> None:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < minimum:
        raise ModelConfigError(model_name, f"image_size must be a whole number >= {minimum}, not {image_size!r}")


def _keras_name(model_name: str) -> str:
    # Keras rejects "/" in names; keep the config name readable otherwise.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_name) or "model"


def build_cnn(image_size: int, *, model_name: str = "cnn") -> keras.Model:
    """The study's baseline CNN on one uint8 frame."""
    _check_image_size(image_size, model_name)
    frames = _frames_input(image_size)
    outputs = _fake_probability(_cnn_features(frames))
    return keras.Model({FRAMES_INPUT: frames}, outputs, name=_keras_name(model_name))


def build_transfer(
    image_size: int,
    backbone: str,
    weights: Any = DEFAULT_WEIGHTS,
    trainable_layers: int | str | None = None,
    pooling: str = "flatten",
    *,
    model_name: str = "transfer",
) -> keras.Model:
    """A Keras Applications backbone (its own preprocessing inside) with the study's head."""
    _check_image_size(image_size, model_name)
    frames = _frames_input(image_size)
    x = backbone_features(frames, image_size, backbone, weights, trainable_layers, pooling, model_name)
    x = _dense_block(x, 1024, 0.5)
    x = _dense_block(x, 512, 0.25)
    outputs = _fake_probability(x)
    return keras.Model({FRAMES_INPUT: frames}, outputs, name=_keras_name(model_name))


def build_frame_encoder(
    image_size: int,
    backbone: str = "cnn",
    weights: Any = DEFAULT_WEIGHTS,
    trainable_layers: int | str | None = None,
    pooling: str = "avg",
    *,
    model_name: str = "td_lstm",
) -> keras.Model:
    """One uint8 frame -> a feature vector: the study's CNN body or a pretrained backbone."""
    _check_image_size(image_size, model_name)
    frames = _frames_input(image_size)
    if backbone == "cnn":
        return keras.Model(frames, _cnn_features(frames), name="cnn_encoder")
    features = backbone_features(frames, image_size, backbone, weights, trainable_layers, pooling, model_name)
    return keras.Model(frames, features, name=f"{backbone.lower()}_encoder")


def build_td_lstm(
    image_size: int,
    n_slots: int,
    backbone: str = "cnn",
    weights: Any = DEFAULT_WEIGHTS,
    trainable_layers: int | str | None = None,
    pooling: str = "avg",
    *,
    model_name: str = "td_lstm",
    encoder: keras.Model | None = None,
) -> keras.Model:
    """Per-frame encoder over the clip's slots, masked LSTM 64 -> LSTM 256, Dense 512 head.

    ``encoder``: a ready frame encoder (``encoder_from_trained``) instead of a new backbone.
    """
    if not isinstance(n_slots, int) or isinstance(n_slots, bool) or n_slots < 1:
        raise ModelConfigError(model_name, f"n_slots must be a whole number >= 1, not {n_slots!r}")
    if encoder is None:
        encoder = build_frame_encoder(image_size, backbone, weights, trainable_layers, pooling, model_name=model_name)
    frames = keras.Input((n_slots, image_size, image_size, 3), dtype="uint8", name=FRAMES_INPUT)
    mask = keras.Input((n_slots,), dtype="bool", name=MASK_INPUT)
    features = FrameWise(encoder, name="frame_features")(frames)
    slot_mask = SlotMask(name="slot_mask")(mask)
    # RNNs in float32: under mixed_bfloat16 JAX's LSTM fails, and float32 state is steadier.
    x = layers.LSTM(64, return_sequences=True, dtype="float32", name="lstm_64")(features, mask=slot_mask)
    x = layers.LSTM(256, dtype="float32", name="lstm_256")(x, mask=slot_mask)
    x = _dense_block(x, 512, 0.5)
    outputs = _fake_probability(x)
    return keras.Model({FRAMES_INPUT: frames, MASK_INPUT: mask}, outputs, name=_keras_name(model_name))


def encoder_from_trained(
    model_path: str | Path, image_size: int, trainable: bool = False, *, model_name: str = "td_lstm"
) -> keras.Model:
    """A trained single-frame model (cnn or transfer) up to its last hidden layer, as a frame encoder.

    Two-stage training for ``td_lstm`` (setting ``encoder_from: OTHER_MODEL``): the sequence
    model learns from one label per clip, far fewer than the frame model's one label per frame,
    so starting from the frame model's features (frozen by default) lets it learn on small data.
    """
    path = Path(model_path)
    if not path.exists():
        raise ModelConfigError(model_name, f"encoder model {path} does not exist (train that model first)")
    trained = load_model(path)
    if MASK_INPUT in trained.input:
        raise ModelConfigError(
            model_name, f"encoder model {path} is a clip model; encoder_from needs a cnn or transfer model"
        )
    frames = trained.input[FRAMES_INPUT]
    if tuple(frames.shape[1:3]) != (image_size, image_size):
        raise ModelConfigError(
            model_name, f"encoder model {path} takes {frames.shape[1]}px frames, not image_size {image_size}"
        )
    encoder = keras.Model(frames, trained.get_layer("fake_probability").input, name=f"{trained.name}_encoder")
    encoder.trainable = trainable
    return encoder


def build_model(
    name: str,
    settings: Mapping[str, Any],
    image_size: int,
    n_slots: int = 30,
    encoder: keras.Model | None = None,
) -> keras.Model:
    """Build config model `name` from its settings (dispatch on settings["arch"]).

    Keys the settings leave out take the schema's defaults (``weights: null``: from scratch), as
    in the workflow. ``encoder`` (td_lstm only): the frame encoder to use, e.g. from
    ``encoder_from_trained``.
    """
    arch = settings.get("arch")
    if arch not in ARCHS:
        raise ModelConfigError(name, f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    if arch == "cnn":
        return build_cnn(image_size, model_name=name)
    weights = settings.get("weights", DEFAULT_WEIGHTS)
    trainable_layers = settings.get("trainable_layers")
    if arch == "transfer":
        if not settings.get("backbone"):
            raise ModelConfigError(name, "arch transfer needs a `backbone:` (e.g. EfficientNetB0, Xception)")
        return build_transfer(
            image_size,
            settings["backbone"],
            weights,
            trainable_layers,
            settings.get("pooling", "flatten"),
            model_name=name,
        )
    return build_td_lstm(
        image_size,
        n_slots,
        settings.get("backbone") or "cnn",
        weights,
        trainable_layers,
        settings.get("pooling", "avg"),
        model_name=name,
        encoder=encoder,
    )


def load_model(path: str | Path) -> keras.Model:
    """Load a saved dfdetect model; importing this module has registered its custom layers.

    A file that is missing raises FileNotFoundError; one that exists but cannot be loaded raises
    CorruptFileError naming it and the next step.
    """
    import zipfile

    check_model_archive(path)
    try:
        return keras.models.load_model(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CorruptFileError(path, f"Keras cannot load it: {error}", REBUILD_MODEL) from error
