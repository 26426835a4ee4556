"""Backend-neutral type aliases (importing them imports no backend: tensors are `Any`)."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

Tensor: TypeAlias = Any
"""A tensor of the active Keras backend (tf.Tensor, jax.Array or torch.Tensor)."""

ArrayLike: TypeAlias = "npt.NDArray[Any]"
"""A NumPy array."""

FloatArray: TypeAlias = "npt.NDArray[np.floating[Any]]"
IntArray: TypeAlias = "npt.NDArray[np.integer[Any]]"

Model: TypeAlias = Any
"""A `keras.Model` (typed loosely: Keras ships no type information)."""

Layer: TypeAlias = Any
"""A `keras.layers.Layer`."""

__all__ = ["ArrayLike", "FloatArray", "IntArray", "Layer", "Model", "Tensor"]
