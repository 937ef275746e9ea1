"""Keras backend, precision and seeds: the set-up a training or scoring process does first.

Keras reads `KERAS_BACKEND` once, when it is first imported, so `select_backend()` must run
before anything imports Keras (dfdetect.training.models, dfdetect.training.loader, ...). Importing this module
does not import Keras; `set_mixed_precision()` and `set_seeds()` do, so call them after
`select_backend()`.

Mixed precision: `set_mixed_precision(True)` picks `mixed_bfloat16`. bfloat16 has float32's
exponent range, so it needs no loss scaling and behaves the same on TensorFlow, JAX and PyTorch
(Ampere or newer GPUs, TPUs). `mixed_float16` (through `policy=`) is the choice for older
NVIDIA GPUs (V100, T4) on TensorFlow; Keras adds the loss scaling itself when it compiles a
model under that policy. On a CPU mixed precision only slows training down: leave it off there.
The model builders keep the parts that need float32 in float32 (preprocessing, LSTMs, the output).
"""

from __future__ import annotations

import os
import sys

SUPPORTED_BACKENDS = ("tensorflow", "jax", "torch")
MIXED_PRECISION_POLICIES = ("mixed_bfloat16", "mixed_float16")
DEFAULT_MIXED_PRECISION_POLICY = "mixed_bfloat16"


class BackendError(RuntimeError):
    """The requested Keras backend cannot be used in this process."""


def select_backend(name: str) -> None:
    """Make Keras use backend `name` (tensorflow | jax | torch) in this process.

    Sets `KERAS_BACKEND` (which overrides ~/.keras/keras.json). If Keras is already imported,
    its backend cannot change any more: that is fine when it is the same one, an error otherwise.
    """
    if name not in SUPPORTED_BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}; expected one of {', '.join(SUPPORTED_BACKENDS)}")
    loaded = _loaded_keras_backend()
    if loaded is not None and loaded != name:
        raise BackendError(
            f"Keras was already imported with the {loaded!r} backend, so it cannot switch to "
            f"{name!r} in this process: call dfdetect.training.backend.select_backend({name!r}) before "
            "anything imports keras (or start the process with KERAS_BACKEND set)"
        )
    os.environ["KERAS_BACKEND"] = name


def _loaded_keras_backend() -> str | None:
    """The backend of the Keras already imported in this process, or None if there is none."""
    keras = sys.modules.get("keras")
    if keras is None:
        return None
    return str(keras.backend.backend())


def set_mixed_precision(enabled: bool, policy: str = DEFAULT_MIXED_PRECISION_POLICY) -> str:
    """Set Keras's global dtype policy; returns the policy name now in force.

    `enabled=False` restores plain float32. Affects models built afterwards only.
    """
    import keras

    if not enabled:
        policy = "float32"
    elif policy not in MIXED_PRECISION_POLICIES:
        raise ValueError(
            f"unknown mixed precision policy {policy!r}; expected one of {', '.join(MIXED_PRECISION_POLICIES)}"
        )
    keras.config.set_dtype_policy(policy)
    return policy


def set_seeds(seed: int) -> None:
    """Seed Python's `random`, NumPy and the backend framework in one call."""
    import keras

    keras.utils.set_random_seed(int(seed))
