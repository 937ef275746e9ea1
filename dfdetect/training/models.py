"""Model builders for the study's three architectures (Keras 3, backend-neutral).

Call `dfdetect.training.backend.select_backend()` before importing this module: it imports Keras.

Inputs (the loader's contract). Frames are **uint8** RGB face crops exactly as the frame store
holds them; scaling and each backbone's own preprocessing are the first layers of every model,
so a saved `.keras` model scores raw crops.

Every model takes a dict keyed by input name (`model.input` is that dict, so a loader can test
`MASK_INPUT in model.input`); a bare array also works for single-frame models, with a warning.

- `cnn`, `transfer` (one frame per example): `{"frames": (batch, image_size, image_size, 3)}`
  uint8.
- `td_lstm` (one clip per example):
  `"frames"`: `(batch, n_slots, image_size, image_size, 3)` uint8 (padded slots may hold anything),
  `"mask"`: `(batch, n_slots)` bool (the store's mask; 0/1 numbers work too), True where the
  slot holds a frame. Filled slots must come first (right padding): cuDNN's LSTM on TensorFlow
  GPUs accepts no other masks. A clip with no filled slot is scored from its first slot.

Every model outputs `(batch, 1)` float32: the probability that the input is FAKE (label 1).

Settings (a model's entry in config `models:`) read here; other keys are the trainer's:
    arch: cnn | transfer | td_lstm
    backbone: a Keras Applications name (see `backbone_names()`), or `cnn` for td_lstm
              (transfer: required; td_lstm: default cnn)
    weights: imagenet | null (the schema's default) | PATH to a weights file for the backbone (a Keras
              Applications *_notop.h5 or a .weights.h5 from save_weights); ignored for cnn
    trainable_layers: N top backbone layers to train, or "all". Default: 0 (frozen) with
              pretrained weights, "all" with `weights: null`, since a frozen random backbone
              would not be trained from scratch at all. BatchNorm layers of a pretrained
              backbone stay frozen and in inference mode (Keras's fine-tuning guide).
    pooling: flatten | avg | max, how backbone feature maps become a vector
              (default: flatten for transfer, as in the study; avg for td_lstm)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
from keras import layers, ops

from dfdetect.corrupt import REBUILD_MODEL, CorruptFileError, check_model_archive
from dfdetect.schema import schema_default
from dfdetect.training.modelinput import FRAMES_INPUT, MASK_INPUT

ARCHS = ("cnn", "transfer", "td_lstm")
POOLINGS = ("flatten", "avg", "max")
PREPROCESSING_MODES = ("tf", "torch", "caffe", "none")
DEFAULT_WEIGHTS = schema_default("model", "weights")  # null: from scratch (a download is opt-in)

# Each Keras Applications module's `preprocess_input` mode (read from the module sources in
# Keras 3.15; tests check every supported backbone against its module's preprocess_input).
# "none": the model rescales internally and preprocess_input is the identity.
_PREPROCESSING_BY_MODULE = {
    "convnext": "none",
    "densenet": "torch",
    "efficientnet": "none",
    "efficientnet_v2": "none",
    "inception_resnet_v2": "tf",
    "inception_v3": "tf",
    "mobilenet": "tf",
    "mobilenet_v2": "tf",
    "mobilenet_v3": "none",
    "nasnet": "tf",
    "resnet": "caffe",
    "resnet_v2": "tf",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "xception": "tf",
}
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_WEIGHTS_SUFFIXES = (".h5", ".hdf5")


class ModelConfigError(ValueError):
    """A model's settings cannot be built; the message names the model and the cause."""

    def __init__(self, model: str, cause: str) -> None:
        super().__init__(f"model {model!r}: {cause}")
        self.model = model
        self.cause = cause


# --------------------------------------------------------------------------- custom layers


@keras.saving.register_keras_serializable(package="dfdetect")
class BackbonePreprocessing(layers.Layer):
    """uint8 RGB images -> the float input a Keras Applications backbone was trained on.

    Modes as in `keras.applications.imagenet_utils.preprocess_input`: "tf" scales to [-1, 1],
    "torch" to [0, 1] then ImageNet mean/std, "caffe" flips RGB to BGR and subtracts the
    ImageNet mean; "none" only casts (EfficientNet, ConvNeXt, MobileNetV3 rescale internally).
    Computes in float32 under any dtype policy, so mixed precision rounds only the result.
    """

    def __init__(self, mode: str, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; expected one of {PREPROCESSING_MODES}")
        self.mode = mode

    def call(self, images: Any) -> Any:
        x = ops.cast(images, "float32")
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(np.array(_IMAGENET_MEAN_RGB, "float32"))
            std = ops.convert_to_tensor(np.array(_IMAGENET_STD_RGB, "float32"))
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(np.array(_CAFFE_MEAN_BGR, "float32"))
            return ops.flip(x, axis=-1) - mean
        return x

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="dfdetect")
class FrameWise(layers.Wrapper):
    """Runs a per-frame model on every slot of a clip: (B, T, H, W, C) -> (B, T, features).

    Does what TimeDistributed does by folding time into the batch. Keras 3's TimeDistributed
    unrolls a Python loop over a static time axis: 30 copies of the backbone in the graph
    (minutes of XLA compilation) and 30 small batches instead of one large one.
    """

    def build(self, input_shape: tuple) -> None:
        if not self.layer.built:
            self.layer.build((None, *input_shape[2:]))
        self.built = True

    def call(self, clips: Any, training: bool | None = None) -> Any:
        n_slots = clips.shape[1]
        frames = ops.reshape(clips, (-1, *clips.shape[2:]))
        features = self.layer(frames, training=training)
        return ops.reshape(features, (-1, n_slots, *features.shape[1:]))


@keras.saving.register_keras_serializable(package="dfdetect")
class SlotMask(layers.Layer):
    """The store's slot mask (bool or 0/1) -> a bool mask for the LSTM layers.

    A clip with no filled slot keeps its first slot: cuDNN's LSTM (TensorFlow on GPU) fails on
    fully masked sequences, and such a clip has nothing to score anyway.
    """

    def call(self, mask: Any) -> Any:
        filled = ops.not_equal(ops.cast(mask, "float32"), 0.0)
        first_slot = ops.expand_dims(ops.equal(ops.arange(mask.shape[1]), 0), 0)
        empty_clip = ops.logical_not(ops.any(filled, axis=1, keepdims=True))
        return ops.logical_or(filled, ops.logical_and(first_slot, empty_clip))

    def compute_output_spec(self, mask: Any) -> keras.KerasTensor:
        return keras.KerasTensor(mask.shape, dtype="bool")


# --------------------------------------------------------------------------- backbones


@dataclass(frozen=True)
class BackboneSpec:
    """A Keras Applications backbone: its builder, module and preprocessing mode."""

    name: str
    builder: Callable[..., keras.Model]
    module: str  # keras.applications.<module> holds its preprocess_input
    preprocessing: str


def _application_specs() -> dict[str, BackboneSpec]:
    specs = {}
    for name in dir(keras.applications):
        builder = getattr(keras.applications, name)
        if not (name[:1].isupper() and callable(builder)):
            continue
        module = builder.__module__.rsplit(".", 1)[-1]
        if module in _PREPROCESSING_BY_MODULE:
            specs[name] = BackboneSpec(name, builder, module, _PREPROCESSING_BY_MODULE[module])
    return specs


def backbone_names() -> list[str]:
    """Names of the Keras Applications backbones that `transfer` and `td_lstm` accept."""
    return sorted(_application_specs())


def backbone_spec(name: str, model_name: str = "model") -> BackboneSpec:
    """The backbone called `name` (case-insensitive); ModelConfigError with close names if none."""
    specs = _application_specs()
    if name in specs:
        return specs[name]
    by_lower = {key.lower(): spec for key, spec in specs.items()}
    if str(name).lower() in by_lower:
        return by_lower[str(name).lower()]
    close = difflib.get_close_matches(str(name), list(specs), n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelConfigError(
        model_name,
        f"unknown backbone {name!r}; {hint}supported: {', '.join(sorted(specs))}",
    )


def _weights_argument(weights: Any, model_name: str) -> str | Path | None:
    """Normalise `weights`: "imagenet", None, or the Path of an existing local file."""
    if weights is None or str(weights).lower() in ("null", "none", ""):
        return None
    if str(weights).lower() == "imagenet":
        return "imagenet"
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise ModelConfigError(
            model_name,
            f"weights file {str(path)!r} does not exist (resolved: {path.resolve()}); "
            "weights must be imagenet, null, or the path of a Keras Applications weights file",
        )
    if not path.name.endswith(_WEIGHTS_SUFFIXES):
        raise ModelConfigError(
            model_name,
            f"weights file {str(path)!r} is not an .h5 file: give a Keras Applications "
            "*_notop.h5 file or a .weights.h5 file saved with save_weights()",
        )
    return path


def _build_backbone(spec: BackboneSpec, image_size: int, weights: str | Path | None, model_name: str) -> keras.Model:
    """The backbone without its top at image_size, with `weights` loaded."""
    try:
        base = spec.builder(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=(image_size, image_size, 3),
        )
    except ValueError as error:  # e.g. "Input size must be at least 75x75"
        raise ModelConfigError(
            model_name, f"backbone {spec.name} cannot be built at image_size {image_size}: {error}"
        ) from error
    except Exception as error:
        if "URL fetch failure" not in str(error):
            raise
        raise ModelConfigError(
            model_name,
            f"could not download the ImageNet weights for {spec.name} ({error}). "
            "On a machine without internet access, download that file elsewhere and set "
            "`weights:` to its local path (or copy it into $KERAS_HOME/models/), "
            "or set `weights: null` to train the backbone from scratch",
        ) from error
    if weights is None:
        _quicken_batchnorm_statistics(base)
    if isinstance(weights, Path):
        try:
            base.load_weights(str(weights))
        except Exception as error:
            raise ModelConfigError(
                model_name,
                f"could not load weights file {str(weights)!r} into {spec.name} at image_size {image_size}: {error}",
            ) from error
    return base


FROM_SCRATCH_BATCHNORM_MOMENTUM = 0.9


def _quicken_batchnorm_statistics(base: keras.Model) -> None:
    """A backbone trained from scratch: let BatchNorm's moving statistics follow the weights faster.

    Keras Applications use momentum 0.99, which needs many hundreds of steps before the moving
    mean/variance match what the layers now compute; on a small dataset (the demo trains ~100
    steps) the model then predicts a constant in inference mode although training went well.
    0.9 settles within tens of steps. Pretrained backbones keep their ImageNet statistics.
    """
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = FROM_SCRATCH_BATCHNORM_MOMENTUM


def _check_trainable_layers(trainable_layers: Any, model_name: str) -> None:
    is_count = isinstance(trainable_layers, int) and not isinstance(trainable_layers, bool)
    if not (is_count or trainable_layers == "all"):
        raise ModelConfigError(
            model_name,
            f"trainable_layers must be a whole number or 'all', not {trainable_layers!r}",
        )


def _set_trainable_top(base: keras.Model, trainable_layers: int | str, pretrained: bool, model_name: str) -> None:
    """Freeze the backbone except its top `trainable_layers` layers (BatchNorm kept frozen
    when pretrained: its statistics are part of what was learned on ImageNet)."""
    body = [layer for layer in base.layers if not isinstance(layer, layers.InputLayer)]
    n_trainable = len(body) if trainable_layers == "all" else int(trainable_layers)
    if not 0 <= n_trainable <= len(body):
        raise ModelConfigError(
            model_name,
            f"trainable_layers {n_trainable} is outside 0..{len(body)} (the number of layers in {base.name})",
        )
    if n_trainable == 0:
        base.trainable = False
        return
    base.trainable = True
    first_trainable = len(body) - n_trainable
    for position, layer in enumerate(body):
        keep_frozen = pretrained and isinstance(layer, layers.BatchNormalization)
        layer.trainable = position >= first_trainable and not keep_frozen


def _pooling_layer(pooling: str, model_name: str) -> layers.Layer:
    if pooling == "flatten":
        return layers.Flatten(name="flatten")
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")
    raise ModelConfigError(model_name, f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")


def _backbone_features(
    frames: keras.KerasTensor,
    image_size: int,
    backbone: str,
    weights: Any,
    trainable_layers: int | str | None,
    pooling: str,
    model_name: str,
) -> keras.KerasTensor:
    """uint8 frames -> preprocessing -> backbone -> pooled feature vector."""
    spec = backbone_spec(backbone, model_name)
    pooling_layer = _pooling_layer(pooling, model_name)
    weights_arg = _weights_argument(weights, model_name)
    pretrained = weights_arg is not None
    if trainable_layers is None:
        trainable_layers = 0 if pretrained else "all"
    _check_trainable_layers(trainable_layers, model_name)  # before a possibly long download
    base = _build_backbone(spec, image_size, weights_arg, model_name)
    _set_trainable_top(base, trainable_layers, pretrained, model_name)
    x = BackbonePreprocessing(spec.preprocessing, name=f"{spec.module}_preprocessing")(frames)
    # A pretrained base runs in inference mode even where unfrozen, so that fine-tuning does not
    # wreck its BatchNorm statistics; a base trained from scratch needs batch statistics.
    x = base(x, training=False) if pretrained else base(x)
    return pooling_layer(x)


# --------------------------------------------------------------------------- heads and inputs


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


# --------------------------------------------------------------------------- builders


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
    x = _backbone_features(frames, image_size, backbone, weights, trainable_layers, pooling, model_name)
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
    features = _backbone_features(frames, image_size, backbone, weights, trainable_layers, pooling, model_name)
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
