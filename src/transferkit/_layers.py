"""Leaf layers in execution order, and resolving a layer boundary (`upto`, `cut`).

transferkit addresses a model's layers as its *leaf layers in execution order*: nested models
(a `keras.applications` backbone inside a Functional or Sequential model) are walked into and
count as their own layers, input layers are not counted. Every public function that takes a
layer boundary resolves it here, so all of them accept the same forms and raise the same errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import keras

from .types import Layer, Model

Boundary = int | str | Any
"""A layer boundary: an index into the leaf layers, a layer name or path, or a layer."""


@dataclass(frozen=True)
class LeafLayer:
    """One leaf layer of a model with its nesting path.

    Attributes:
        index: Position among the model's leaf layers in execution order (0-based).
        path: `/`-joined names of the enclosing nested models and the layer itself,
            e.g. `"mobilenetv2_0.35_32/Conv1"`; a top-level layer's path is its name.
        layer: The `keras.layers.Layer` object itself.
        containers: The nested models that enclose the layer, outermost first
            (not including the model that was walked).
    """

    index: int
    path: str
    layer: Layer
    containers: tuple[Model, ...]

    @property
    def name(self) -> str:
        """The layer's own name."""
        return str(self.layer.name)


def _is_input_layer(layer: Layer) -> bool:
    return isinstance(layer, keras.layers.InputLayer)


def _children(model: Model) -> list[Layer]:
    """Direct sublayers of a model in execution order (input layers excluded)."""
    return [layer for layer in model.layers if not _is_input_layer(layer)]


def _walk(
    model: Model, prefix: str, containers: tuple[Model, ...], seen: set[int]
) -> Iterator[tuple[str, Layer, tuple[Model, ...]]]:
    for layer in _children(model):
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
        A list of `LeafLayer` records. For Functional and Sequential models the order is the
        order in which the layers run; for subclassed models it is the order in which the
        layers were assigned as attributes (Keras's `model.layers` order).

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If `model` is not built.

    Example:
    ```python
    import keras
    from transferkit import leaf_layers

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2), keras.layers.Dense(1)])
    [leaf.path for leaf in leaf_layers(model)]  # ['dense', 'dense_1'] (names may vary)
    ```
    """
    ensure_built(model)
    return [
        LeafLayer(index=i, path=path, layer=layer, containers=containers)
        for i, (path, layer, containers) in enumerate(_walk(model, "", (), set()))
    ]


def _closest(name: str, leaves: list[LeafLayer]) -> str:
    candidates = [leaf.name for leaf in leaves] + [leaf.path for leaf in leaves]
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if close:
        return "Did you mean " + " or ".join(repr(c) for c in dict.fromkeys(close)) + "?"
    shown = ", ".join(repr(leaf.path) for leaf in leaves[:12])
    more = f" (and {len(leaves) - 12} more)" if len(leaves) > 12 else ""
    return f"Existing leaf layers are: {shown}{more}."


def resolve_boundary(
    model: Model, upto: Boundary, *, argument: str = "upto", leaves: list[LeafLayer] | None = None
) -> int:
    """Turn a boundary into the number of leading leaf layers it covers.

    `upto` may be an `int` n (the first n leaf layers; negative n means all but the last |n|),
    a `str` (a layer name or `/`-joined path; the boundary includes that layer) or a
    `keras.layers.Layer` of the model (likewise inclusive). A nested model, given as an object,
    name or path, covers all of its leaf layers.

    Returns:
        An int in `[0, len(leaves)]`: how many leading leaf layers lie up to the boundary.

    Raises:
        ValueError: If the index is out of range, the name is unknown or ambiguous, or the
            layer is not a leaf layer of this model.
        TypeError: If `upto` has an unsupported type.
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
                return resolve_boundary(model, container, argument=argument, leaves=leaves)
            if len(nested) > 1:
                raise ValueError(
                    f"`{argument}`={upto!r} is ambiguous: several nested models have that name. "
                    "Pass the full path instead."
                )
        if not matches:
            raise ValueError(
                f"No leaf layer named {upto!r} in model {model.name!r}. {_closest(upto, leaves)}"
            )
        if len(matches) > 1:
            paths = ", ".join(repr(m.path) for m in matches)
            raise ValueError(
                f"`{argument}`={upto!r} is ambiguous: several leaf layers have that name "
                f"({paths}). Pass the full path instead."
            )
        return matches[0].index + 1
    if isinstance(upto, keras.layers.Layer):
        for leaf in leaves:
            if leaf.layer is upto:
                return leaf.index + 1
        if isinstance(upto, keras.Model):
            inner = [leaf for leaf in leaves if any(c is upto for c in leaf.containers)]
            if inner:
                return inner[-1].index + 1
        raise ValueError(
            f"`{argument}` is the layer {upto.name!r}, which is not a layer of model "
            f"{model.name!r}. Pass a layer of this model (e.g. `model.get_layer(name)`), its "
            f"name, or an index. {_closest(upto.name, leaves)}"
        )
    raise TypeError(
        f"`{argument}` must be None, an int, a layer name (str) or a `keras.layers.Layer`. "
        f"Received: {argument}={upto!r} of type {type(upto).__name__}."
    )
