"""The models' custom layers, registered for ``.keras`` loading (package ``dfdetect``): backbone
preprocessing of uint8 frames, a frame-wise wrapper for clips, and the clip's slot mask.

Imports Keras: call ``dfdetect.training.backend.select_backend()`` first."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

PREPROCESSING_MODES = ("tf", "torch", "caffe", "none")


_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)


_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


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
