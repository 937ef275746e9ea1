"""Keras Applications backbones for ``transfer`` and ``td_lstm`` models: which exist, their
preprocessing, their weights (ImageNet, a local file or none), which layers train, and pooling.

Imports Keras: call ``dfdetect.training.backend.select_backend()`` first."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import keras
from keras import layers

from dfdetect.training.layers import BackbonePreprocessing

POOLINGS = ("flatten", "avg", "max")


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


_WEIGHTS_SUFFIXES = (".h5", ".hdf5")


class ModelConfigError(ValueError):
    """A model's settings cannot be built; the message names the model and the cause."""

    def __init__(self, model: str, cause: str) -> None:
        super().__init__(f"model {model!r}: {cause}")
        self.model = model
        self.cause = cause


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


def backbone_features(
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
