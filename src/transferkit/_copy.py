"""Independent copies of models: same architecture, weights and trainable flags."""

from __future__ import annotations

from typing import Any

import keras

from ._freeze import TrainableState, _all_layers
from ._layers import ensure_built
from .types import Model


def copy_model(model: Model, *, dtype_policy: str | None = None) -> Model:
    """An independent copy of `model`: same architecture, weights and trainable flags.

    The copy shares no layers or variables with `model`, so training it or changing its
    flags never affects the original. `model` is not mutated.

    Args:
        model: A built Functional or Sequential `keras.Model` (or a subclassed model that
            implements `get_config`/`from_config`).
        dtype_policy: str or None. A Keras dtype policy for the copy's layers, e.g.
            `"mixed_bfloat16"` (variables stay float32, so the weights carry over exactly);
            the output layer keeps float32 for a numerically stable softmax. Defaults to
            `None` (keep each layer's policy).

    Returns:
        A new built `keras.Model`.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If the model is not built or cannot be cloned (e.g. a subclassed model
            without `get_config`); pass a zero-argument model factory instead where accepted.

    Example:
    ```python
    import keras
    from transferkit import copy_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    twin = copy_model(model)
    assert twin is not model and twin.layers[0] is not model.layers[0]
    ```
    """
    ensure_built(model)
    try:
        if dtype_policy is None:
            clone = keras.models.clone_model(model)
        else:
            clone = _clone_with_policy(model, dtype_policy)
    except Exception as err:  # Keras raises several types for models it cannot clone
        raise ValueError(
            f"Cannot copy model {model.name!r} ({type(model).__name__}) with "
            f"`keras.models.clone_model`: {err}. Use a Functional or Sequential model, "
            "implement `get_config`/`from_config`, or pass a zero-argument factory that builds "
            "the model instead."
        ) from err
    if not clone.built:
        clone.build(model.input_shape if hasattr(model, "input_shape") else None)
    _copy_weights(model, clone)
    _copy_flags(model, clone)
    return clone


def _copy_weights(source: Model, target: Model) -> None:
    """Assign every variable of `source` to `target`'s, backend to backend (no NumPy trip)."""
    src: list[Any] = list(source.weights)
    dst: list[Any] = list(target.weights)
    if len(src) != len(dst) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst, strict=True)
    ):
        raise ValueError(
            f"Copy of model {source.name!r} has different weights than the original "
            f"({len(dst)} vs {len(src)} variables or different shapes); cannot copy them. "
            "Pass a model factory instead."
        )
    for a, b in zip(src, dst, strict=True):
        # A fresh buffer: on JAX, `assign` keeps the very array, and `fit` donates (frees) it.
        b.assign(keras.ops.copy(a.value))


def _clone_with_policy(model: Model, policy: str) -> Model:
    from ._layers import leaf_layers

    output_layer = leaf_layers(model)[-1].layer

    def clone_layer(layer: Any) -> Any:
        config = layer.get_config()
        if layer is not output_layer and "dtype" in config:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone_layer, recursive=True)


def _copy_flags(source: Model, target: Model) -> None:
    src = _all_layers(source)
    dst = _all_layers(target)
    if len(src) != len(dst) or any(type(a) is not type(b) for a, b in zip(src, dst, strict=True)):
        raise ValueError(
            f"Copy of model {source.name!r} has a different layer structure than the original; "
            "cannot carry its trainable flags over. Pass a model factory instead."
        )
    for a, b in zip(src, dst, strict=True):
        b.trainable = bool(a.trainable)
    src_vars: list[Any] = list(source.weights)
    dst_vars: list[Any] = list(target.weights)
    for a, b in zip(src_vars, dst_vars, strict=True):
        b.trainable = bool(a.trainable)


__all__ = ["TrainableState", "copy_model"]
