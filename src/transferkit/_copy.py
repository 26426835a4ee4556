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
            implements `get_config`/`from_config`). A Functional subclass with its own config,
            such as a keras-hub backbone or `ImageClassifier`, is rebuilt from its config, so
            the copy keeps its class (with `dtype_policy` it becomes a plain Functional model).
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
    if dtype_policy is None and _has_own_config(model):
        twin = _copy_by_config(model)
        if twin is not None:
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


def _has_own_config(model: Model) -> bool:
    """Whether `model` is a Functional subclass with its own `get_config` (keras-hub models).

    `keras.models.clone_model` rebuilds such a model as a plain Functional model, so a
    keras-hub `ResNetBackbone` or `ImageClassifier` would lose its class and methods
    (`enable_lora`, `backbone`, its `compile` defaults). Its own config round trip keeps them.
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
    if not (twin.built and _same_weights(model, twin) and _same_layers(model, twin)):
        return None  # the config left something out: clone the layer graph instead
    _copy_weights(model, twin)
    _copy_flags(model, twin)
    return twin


def _same_weights(source: Model, target: Model) -> bool:
    src: list[Any] = list(source.weights)
    dst: list[Any] = list(target.weights)
    return len(src) == len(dst) and all(
        tuple(a.shape) == tuple(b.shape) for a, b in zip(src, dst, strict=True)
    )


def _layers(model: Model) -> list[Any]:
    # Input layers hold no weights, and a clone may have one more: keras-hub's
    # `ImageClassifier` shares its backbone's input layer, a cloned graph gets its own.
    return [layer for layer in _all_layers(model) if not isinstance(layer, keras.layers.InputLayer)]


def _same_layers(source: Model, target: Model) -> bool:
    # A cloned Functional subclass is a plain Functional: nested models may differ in class.
    src = _layers(source)
    dst = _layers(target)
    return len(src) == len(dst) and all(
        type(a) is type(b) or (isinstance(a, keras.Model) and isinstance(b, keras.Model))
        for a, b in zip(src, dst, strict=True)
    )


def _copy_weights(source: Model, target: Model) -> None:
    """Assign every variable of `source` to `target`'s, backend to backend (no NumPy trip)."""
    src: list[Any] = list(source.weights)
    dst: list[Any] = list(target.weights)
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
    from ._layers import leaf_layers

    output_layer = leaf_layers(model)[-1].layer

    def clone_layer(layer: Any) -> Any:
        config = layer.get_config()
        if layer is not output_layer and "dtype" in config:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    return keras.models.clone_model(model, clone_function=clone_layer, recursive=True)


def _copy_flags(source: Model, target: Model) -> None:
    src = _layers(source)
    dst = _layers(target)
    if not _same_layers(source, target):
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
