"""Data-parallel training over every visible GPU.

``distribute`` (a model setting):
- ``none``: one device, as Keras picks it (the default);
- ``auto``: all visible GPUs when there are two or more, else one device;
- ``always``: the data-parallel code path even on a single device (CPU included), e.g. to
  check a configuration on a laptop before sending it to a multi-GPU node. Without GPUs it runs
  over every logical CPU device: one on an ordinary machine; two where TensorFlow was given two
  logical CPUs (``tf.config.set_logical_device_configuration``) or JAX two host devices
  (``--xla_force_host_platform_device_count=2``), which is how the two-replica path is tested.

TensorFlow uses ``tf.distribute.MirroredStrategy`` (the model is built and compiled in its scope);
JAX uses Keras's distribution API (``keras.distribution.DataParallel``). The PyTorch backend has
no in-process data parallelism in Keras 3 (it needs torchrun / DDP): it trains on one device and
says so. ``batch_size`` stays per device: the global batch is ``batch_size * replicas``. JAX
splits every batch evenly over its devices, so there an epoch's last, short batch is cut to a
multiple of the replicas (``batch_multiple``: at most replicas - 1 items of an epoch left out);
MirroredStrategy takes uneven batches as they are.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, ContextManager

log = logging.getLogger(__name__)

DISTRIBUTE_MODES = ("none", "auto", "always")


@dataclass
class Distribution:
    replicas: int
    devices: list[str]
    description: str
    scope: ContextManager[Any]
    batch_multiple: int = 1  # every batch's size must be a multiple of this (JAX shards it evenly)


def visible_gpus(backend: str) -> list[str]:
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices("GPU")]
    if backend == "jax":
        import keras

        return list(keras.distribution.list_devices("gpu")) if _jax_has_gpu() else []
    if backend == "torch":
        import torch

        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    raise ValueError(f"unknown backend {backend!r}")


def _jax_has_gpu() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:  # no GPU platform in this jaxlib
        return False


def choose_distribution(backend: str, mode: str) -> Distribution:
    """The devices to train on and the context to build and compile the model in."""
    if mode not in DISTRIBUTE_MODES:
        raise ValueError(f"distribute must be one of {', '.join(DISTRIBUTE_MODES)}, not {mode!r}")
    single = Distribution(1, [], "one device", contextlib.nullcontext())
    if mode == "none":
        return single
    gpus = visible_gpus(backend)
    if mode == "auto" and len(gpus) < 2:
        return single
    if backend == "torch":
        log.warning(
            "distribute=%s: the torch backend trains on one device (Keras 3 has no in-process "
            "data parallelism for PyTorch; use the tensorflow or jax backend for several GPUs)",
            mode,
        )
        return single
    devices = gpus or _cpu_devices(backend)
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=devices)
        return Distribution(
            strategy.num_replicas_in_sync, devices, f"MirroredStrategy over {len(devices)} device(s)", strategy.scope()
        )
    import keras

    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return Distribution(
        len(devices),
        devices,
        f"keras DataParallel over {len(devices)} device(s)",
        contextlib.nullcontext(),
        batch_multiple=len(devices),
    )


def _cpu_devices(backend: str) -> list[str]:
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices("CPU")]
    import keras

    return list(keras.distribution.list_devices("cpu"))
