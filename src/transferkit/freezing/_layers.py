"""Leaf layers in execution order (nested models walked into), and resolving boundaries."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import keras

from ..types import Layer, Model

Boundary = int | str | Any
"""A layer boundary: an index into the leaf layers, a layer name or path, or a layer."""


@dataclass(frozen=True)
class LeafLayer:
    """One leaf layer of a model with its nesting path.

    Attributes:
        index: Position among the model's leaf layers in execution order (0-based).
        path: `/`-joined names of the enclosing nested models and the layer, e.g.
            `"mobilenetv2_0.35_32/Conv1"`.
        layer: The `keras.layers.Layer` itself.
        containers: The nested models enclosing the layer, outermost first (the walked model
            excluded).
    """

    index: int
    path: str
    layer: Layer
    containers: tuple[Model, ...]

    @property
    def name(self) -> str:
        """The layer's own name."""
        return str(self.layer.name)


def children(model: Model) -> list[Layer]:
    """Direct sublayers of a model in execution order (input layers excluded)."""
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def all_layers(model: Model) -> list[Layer]:
    """Every layer of the model (itself included), parents before children."""
    out: dict[int, Layer] = {}

    def visit(layer: Layer) -> None:
        if id(layer) not in out:
            out[id(layer)] = layer
            for sub in layer._flatten_layers(include_self=False, recursive=False):
                visit(sub)

    visit(model)
    return list(out.values())


def _walk(
    model: Model, prefix: str, containers: tuple[Model, ...], seen: set[int]
) -> Iterator[tuple[str, Layer, tuple[Model, ...]]]:
    for layer in children(model):
        if id(layer) in seen:  # a layer reused at several places in the graph counts once
            continue
        seen.add(id(layer))
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model):
            yield from _walk(layer, f"{path}/", (*containers, layer), seen)
        else:
            yield path, layer, containers


def ensure_built(model: Model, argument: str = "model") -> None:
    """Raise a clear error if `model` is not a built `keras.Model`."""
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`{argument}` must be a `keras.Model`. Received: {argument}={model!r} "
            f"of type {type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"`{argument}` ({model.name!r}) is not built, so its layers and weights do not exist "
            "yet. Build it first: start it with `keras.Input(shape=...)`, call "
            "`model.build(input_shape)`, or call it once on a batch of data."
        )


def leaf_layers(model: Model) -> list[LeafLayer]:
    """The model's leaf layers in execution order, walking into nested models.

    Args:
        model: A built `keras.Model`.

    Returns:
        A list of `LeafLayer`, in the order the layers run (for subclassed models, Keras's
        `model.layers` order).

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If `model` is not built.

    Example:
    ```python
    import keras
    from transferkit import leaf_layers

    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")], name="body")
    model = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1, name="head")])
    assert [leaf.path for leaf in leaf_layers(model)] == ["body/a", "head"]
    ```
    """
    ensure_built(model)
    return [
        LeafLayer(index=i, path=path, layer=layer, containers=containers)
        for i, (path, layer, containers) in enumerate(_walk(model, "", (), set()))
    ]


def _closest(name: str, leaves: list[LeafLayer]) -> str:
    candidates = [leaf.name for leaf in leaves] + [leaf.path for leaf in leaves]
    if close := difflib.get_close_matches(name, candidates, n=3, cutoff=0.5):
        return "Did you mean " + " or ".join(repr(c) for c in dict.fromkeys(close)) + "?"
    shown = ", ".join(repr(leaf.path) for leaf in leaves[:12])
    more = f" (and {len(leaves) - 12} more)" if len(leaves) > 12 else ""
    return f"Existing leaf layers are: {shown}{more}."


def resolve_boundary(
    model: Model, upto: Boundary, *, argument: str = "upto", leaves: list[LeafLayer] | None = None
) -> int:
    """The number of leading leaf layers up to `upto` (an int, or an inclusive name or layer).

    A nested model, given as an object, name or path, covers all of its leaf layers. Raises
    `ValueError` for an index out of range, or an unknown, ambiguous or foreign layer, and
    `TypeError` for another type.
    """
    leaves = leaf_layers(model) if leaves is None else leaves
    n = len(leaves)
    if isinstance(upto, bool):
        raise TypeError(
            f"`{argument}` must be an int, a layer name or a `keras.layers.Layer`. "
            f"Received: {argument}={upto!r} (a bool)."
        )
    if isinstance(upto, Integral):  # NumPy integers too
        upto = int(upto)
        if not -n <= upto <= n:
            raise ValueError(
                f"`{argument}` must be between {-n} and {n} (the model has {n} leaf layers). "
                f"Received: {argument}={upto}"
            )
        return upto if upto >= 0 else n + upto
    if isinstance(upto, str):
        return _by_name(model, upto, argument, leaves)
    if isinstance(upto, keras.layers.Layer):
        return _by_layer(model, upto, argument, leaves)
    raise TypeError(
        f"`{argument}` must be None, an int, a layer name (str) or a `keras.layers.Layer`. "
        f"Received: {argument}={upto!r} of type {type(upto).__name__}."
    )


def _by_name(model: Model, upto: str, argument: str, leaves: list[LeafLayer]) -> int:
    """`resolve_boundary` for a leaf layer's name or path, or a nested model's."""
    by_path = [leaf for leaf in leaves if leaf.path == upto]
    matches = by_path or [leaf for leaf in leaves if leaf.name == upto]
    if not matches:  # the name or path of a nested model: up to its last leaf layer
        nested = {
            id(c): c
            for leaf in leaves
            for i, c in enumerate(leaf.containers)
            if upto in (c.name, "/".join(x.name for x in leaf.containers[: i + 1]))
        }
        if len(nested) == 1:
            (container,) = nested.values()
            return _by_layer(model, container, argument, leaves)
        if len(nested) > 1:
            raise ValueError(
                f"`{argument}`={upto!r} is ambiguous: several nested models have that name. "
                "Pass the full path instead."
            )
        raise ValueError(
            f"No leaf layer named {upto!r} in model {model.name!r}. {_closest(upto, leaves)}"
        )
    if len(matches) > 1:
        raise ValueError(
            f"`{argument}`={upto!r} is ambiguous: several leaf layers have that name "
            f"({', '.join(repr(m.path) for m in matches)}). Pass the full path instead."
        )
    return matches[0].index + 1


def _by_layer(model: Model, upto: Layer, argument: str, leaves: list[LeafLayer]) -> int:
    """`resolve_boundary` for a layer object: a leaf layer, or a nested model's last leaf."""
    for leaf in leaves:
        if leaf.layer is upto:
            return leaf.index + 1
    if isinstance(upto, keras.Model):
        if inner := [leaf for leaf in leaves if any(c is upto for c in leaf.containers)]:
            return inner[-1].index + 1
    raise ValueError(
        f"`{argument}` is the layer {upto.name!r}, which is not a layer of model "
        f"{model.name!r}. Pass a layer of this model (e.g. `model.get_layer(name)`), its "
        f"name, or an index. {_closest(upto.name, leaves)}"
    )


def io_shapes(model: Model) -> tuple[tuple[Any, ...] | None, Any]:
    """The model's input shape (None if several) and output shape (subclassed models too)."""
    with suppress(AttributeError, ValueError):  # a subclassed model may not know its shapes
        shape = model.input_shape
        return (None if isinstance(shape, list) else tuple(shape)), model.output_shape
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if len(shapes) != 1 or not isinstance(next(iter(shapes.values())), tuple | list):
        raise ValueError(
            f"Cannot tell the input shape of the subclassed model {model.name!r} "
            f"({type(model).__name__}). Wrap it in a Functional model: `inputs = "
            "keras.Input(shape); model = keras.Model(inputs, your_model(inputs))`."
        )
    input_shape = (None, *tuple(next(iter(shapes.values())))[1:])
    spec = model.compute_output_spec(keras.KerasTensor(input_shape))
    out = [tuple(s.shape) for s in spec] if isinstance(spec, list | tuple) else tuple(spec.shape)
    return input_shape, out


def output_units(model: Model) -> int:
    """Number of output units of a single-output classification model."""
    shape = io_shapes(model)[1]
    if isinstance(shape, list):
        raise ValueError(
            f"transferkit trains single-output classification models only; model "
            f"{model.name!r} has {len(shape)} outputs. Build a single-output model, e.g. "
            "`keras.Model(model.inputs, model.outputs[i])`."
        )
    return int(shape[-1])


def output_activation(model: Model) -> str | None:
    """The name of the last layer's activation (`"linear"` for logits), or None (`Softmax`)."""
    leaves = leaf_layers(model)
    if not leaves:
        return None
    name = getattr(getattr(leaves[-1].layer, "activation", None), "__name__", None)
    return None if name is None else str(name)
