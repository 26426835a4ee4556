"""How cached activations are fed to the trainable remainder: few host-to-tensor copies, few
dispatches per step, validation in large batches. None of it changes the batches or updates."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ._cache import fit_input

CACHED_VALIDATION_BATCH_SIZE = 2048
"""Smallest batch size the remainder is validated with on cached activations (forward only)."""

CACHED_STEPS_PER_EXECUTION = 64
"""`steps_per_execution` of `"auto"` for a remainder on cached activations (TensorFlow, JAX)."""


def cached_steps_per_execution(auto: bool, steps: int) -> int:
    """`steps_per_execution` for a cached remainder: more steps per call when `"auto"`.

    A remainder's step is a few small matrix products, so the per-call cost of the training
    loop weighs more than on the full model; the batches and updates are the same. PyTorch,
    and TensorFlow under a `tf.distribute` strategy (`steps == 1`), keep one step per call.
    """
    return max(steps, CACHED_STEPS_PER_EXECUTION) if auto and steps > 1 else steps


def cached_input(features: np.ndarray[Any, Any]) -> Any:
    """Cached activations as `fit` should get them, without a copy where the backend allows.

    TensorFlow gets a tensor sharing the buffer (`fit_input`). PyTorch gets a CPU tensor
    sharing it (`torch.from_numpy`), so each batch is one `index_select` instead of a NumPy
    gather plus a host-to-tensor conversion; the batch order comes from the same sampler.
    JAX slices NumPy arrays and gets them as they are.
    """
    if keras.backend.backend() == "torch":
        import torch  # only reached on the PyTorch backend

        return torch.from_numpy(features)
    return fit_input(features)
