"""Variables by path: how the weights of two models are matched, read and written back.

A variable's path here is the path of its leaf layer in the model (`leaf_layers`) and its
path inside that layer: `"dense/kernel"`, `"mobilenetv2_0.35_32/Conv1/kernel"`. Unlike Keras's
`Variable.path`, it does not depend on the model's own name or on the name scope the variable
was built in, so a model and its copies (`copy_model`, `fine_tune`, `replace_head`) agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from ..freezing import leaf_layers
from ..types import Model

Values = dict[str, np.ndarray[Any, Any]]
"""NumPy values of a model's variables, by path."""


def variable_paths(model: Model) -> dict[str, Any]:
    """Every weight of `model` (trainable and not, e.g. BatchNormalization statistics) by path,
    in `model.weights` order of first appearance."""
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for leaf in leaf_layers(model):
        for variable in leaf.layer.weights:
            if id(variable) not in seen:
                seen.add(id(variable))
                _add(out, f"{leaf.path}/{_inner_path(leaf.layer, variable)}", variable)
    for variable in model.weights:  # a model's own variables, outside any leaf layer
        if id(variable) not in seen:
            seen.add(id(variable))
            _add(out, str(variable.path), variable)
    return out


def _inner_path(layer: Any, variable: Any) -> str:
    """The variable's path inside its layer: `"kernel"`, or `"query/kernel"` in a sublayer."""
    path, base = str(variable.path), getattr(layer, "path", None)
    return path[len(base) + 1 :] if base and path.startswith(f"{base}/") else str(variable.name)


def _add(out: dict[str, Any], path: str, variable: Any) -> None:
    unique, i = path, 1
    while unique in out:  # two variables of one layer with one name: number them
        i += 1
        unique = f"{path}#{i}"
    out[unique] = variable


def values_of(paths: Mapping[str, Any]) -> Values:
    """A NumPy copy of each variable's value."""
    return {p: np.array(keras.ops.convert_to_numpy(v.value), copy=True) for p, v in paths.items()}


def is_float(variable: Any) -> bool:
    """Whether a variable holds floating-point values (others are copied, never averaged)."""
    return bool(keras.backend.is_float_dtype(variable.dtype))


def assign(target: Model, source: Model, paths: Mapping[str, Any], values: Values) -> None:
    """Write `values` (by path in `source`) into `target`, a copy of `source`: variables
    correspond by position in `weights`, as `copy_model` makes them."""
    position = {id(v): i for i, v in enumerate(source.weights)}
    weights = target.weights
    for path, variable in paths.items():
        value = values[path]
        # A fresh array each time: a backend may keep the very buffer (JAX) or share its memory
        # (PyTorch), and one value (alpha 0 or 1, a lone ingredient) goes into several models.
        weights[position[id(variable)]].assign(np.array(value, dtype=value.dtype, copy=True))


def check_same(
    models: Sequence[Model], paths: Sequence[Mapping[str, Any]], arg: str = "models"
) -> None:
    """Raise a `ValueError` naming the first leaf layer or variable where `models[i]` differs
    from `models[0]` (layer types, variable paths or shapes)."""
    reference = [(leaf.path, type(leaf.layer).__name__) for leaf in leaf_layers(models[0])]
    for i, model in enumerate(models[1:], start=1):
        layers = [(leaf.path, type(leaf.layer).__name__) for leaf in leaf_layers(model)]
        where = _first_difference(reference, layers, i, arg)
        if where is None:
            where = _variable_difference(paths[0], paths[i], i, arg)
        if where is not None:
            raise ValueError(
                f"`{arg}` must share one architecture (the same layers and variable shapes) to "
                f"be averaged, but `{arg}[{i}]` ({model.name!r}) differs from `{arg}[0]` "
                f"({models[0].name!r}): {where}. Pass fine-tuned copies of one model."
            )


def _first_difference(
    a: list[tuple[str, str]], b: list[tuple[str, str]], i: int, arg: str
) -> str | None:
    for j, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return (
                f"leaf layer {j} is {x[0]!r} ({x[1]}) in `{arg}[0]` and {y[0]!r} ({y[1]}) in "
                f"`{arg}[{i}]`"
            )
    if len(a) != len(b):
        return f"`{arg}[0]` has {len(a)} leaf layers and `{arg}[{i}]` {len(b)}"
    return None


def _variable_difference(
    a: Mapping[str, Any], b: Mapping[str, Any], i: int, arg: str
) -> str | None:
    for path, variable in a.items():
        if path not in b:
            return f"variable {path!r} of `{arg}[0]` is not in `{arg}[{i}]`"
        if tuple(variable.shape) != tuple(b[path].shape):
            return (
                f"variable {path!r} has shape {tuple(variable.shape)} in `{arg}[0]` and "
                f"{tuple(b[path].shape)} in `{arg}[{i}]`"
            )
    extra = [p for p in b if p not in a]
    return f"variable {extra[0]!r} of `{arg}[{i}]` is not in `{arg}[0]`" if extra else None
