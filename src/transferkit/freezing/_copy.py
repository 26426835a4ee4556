"""Independent copies of models: same architecture, weights and trainable flags."""

from __future__ import annotations

from typing import Any

import keras

from ..types import Model
from ._layers import all_layers, ensure_built, leaf_layers


def copy_model(model: Model, *, dtype_policy: str | None = None) -> Model:
    """An independent copy of `model` (no shared layers or variables); `model` is not mutated.

    Args:
        model: A built Functional or Sequential `keras.Model`, or one with `get_config`. A
            Functional subclass with its own config (a keras-hub backbone) keeps its class,
            unless `dtype_policy` is given.
        dtype_policy: str or None. A dtype policy for every layer but the output layer, e.g.
            `"mixed_bfloat16"`. Defaults to `None` (keep each layer's).

    Returns:
        A new built `keras.Model`.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If the model is not built or cannot be cloned.

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
    if dtype_policy is None and has_own_config(model):
        if (twin := _copy_by_config(model)) is not None:
            return twin
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


def has_own_config(model: Model) -> bool:
    """Whether `model` is a Functional subclass with its own `get_config` (keras-hub models).

    `clone_model` would make it a plain Functional model, losing its class and methods.
    """
    cls: type[Any] = type(model)
    # Keras's `Functional` class is private: find it in the class's ancestry by name.
    functional: type[Any] | None = next(
        (c for c in cls.__mro__ if c.__name__ == "Functional" and c.__module__.startswith("keras")),
        None,
    )
    if functional is None or functional is cls:
        return False
    return cls.get_config is not functional.get_config


def _copy_by_config(model: Model) -> Model | None:
    """A copy rebuilt by `type(model).from_config`, or None if that gives another structure."""
    try:
        twin = type(model).from_config(model.get_config())
    except Exception:  # a subclass's config may not round-trip; clone_model is the fallback
        return None
    if not (twin.built and _same_weights(model, twin) and same_layers(model, twin)):
        return None  # the config left something out: clone the layer graph instead
    _copy_weights(model, twin)
    _copy_flags(model, twin)
    return twin


def _same_weights(source: Model, target: Model) -> bool:
    src, dst = list(source.weights), list(target.weights)
    return len(src) == len(dst) and all(
        tuple(a.shape) == tuple(b.shape) for a, b in zip(src, dst, strict=True)
    )


def own_layers(model: Model) -> list[Any]:
    """`all_layers` without input layers (a clone may have one more: they hold no weights)."""
    return [layer for layer in all_layers(model) if not isinstance(layer, keras.layers.InputLayer)]


def same_layers(source: Model, target: Model) -> bool:
    """Whether the layers correspond one to one (nested models may differ in class)."""
    src, dst = own_layers(source), own_layers(target)
    return len(src) == len(dst) and all(
        type(a) is type(b) or (isinstance(a, keras.Model) and isinstance(b, keras.Model))
        for a, b in zip(src, dst, strict=True)
    )


def _copy_weights(source: Model, target: Model) -> None:
    """Assign every variable of `source` to `target`'s, backend to backend (no NumPy trip)."""
    src, dst = list(source.weights), list(target.weights)
    if not _same_weights(source, target):
        raise ValueError(
            f"Copy of model {source.name!r} has different weights than the original "
            f"({len(dst)} vs {len(src)} variables or different shapes); cannot copy them. "
            "Pass a model factory instead."
        )
    for a, b in zip(src, dst, strict=True):
        # A fresh buffer: on JAX, `assign` keeps the very array, and `fit` donates (frees) it.
        b.assign(keras.ops.copy(a.value))


def _clone_with_policy(model: Model, policy: str) -> Model:
    output_layer = leaf_layers(model)[-1].layer

    def clone_layer(layer: Any) -> Any:
        config = layer.get_config()
        if layer is not output_layer and "dtype" in config:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone_layer, recursive=True)


def _copy_flags(source: Model, target: Model) -> None:
    if not same_layers(source, target):
        raise ValueError(
            f"Copy of model {source.name!r} has a different layer structure than the original; "
            "cannot carry its trainable flags over. Pass a model factory instead."
        )
    for src, dst in ((own_layers(source), own_layers(target)), (source.weights, target.weights)):
        for a, b in zip(src, dst, strict=True):
            b.trainable = bool(a.trainable)


# The old private names, still imported by `_lora`.
