"""`freeze`, `unfreeze`, `frozen`: they mutate the model's flags, after validating everything."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras

from .. import _serial
from ..timing import count_params
from ..types import Layer, Model
from ._layers import Boundary, LeafLayer, all_layers, leaf_layers, resolve_boundary


class RecompileWarning(UserWarning):
    """Trainable flags changed on a model that was already compiled.

    Keras 3 treats this differently per backend (TensorFlow keeps training the frozen layer,
    JAX fails inside the optimizer, PyTorch honours the flag), so the model must be compiled
    again before `fit`. transferkit's own training functions always recompile.
    """


@dataclass(frozen=True)
class FreezeReport(_serial.Record):
    """What a `freeze`/`unfreeze` call did.

    Attributes:
        frozen: Paths of the leaf layers frozen after the call.
        trainable: Paths of the leaf layers trainable after the call.
        boundary: How many leading leaf layers the boundary covered.
        trainable_params_before, non_trainable_params_before: Parameter counts before.
        trainable_params_after, non_trainable_params_after: Parameter counts after.
    """

    frozen: tuple[str, ...]
    trainable: tuple[str, ...]
    boundary: int
    trainable_params_before: int
    non_trainable_params_before: int
    trainable_params_after: int
    non_trainable_params_after: int

    @property
    def total_params(self) -> int:
        """All parameters of the model (unchanged by freezing)."""
        return self.trainable_params_after + self.non_trainable_params_after

    def __str__(self) -> str:
        n = len(self.frozen) + len(self.trainable)
        return (
            f"FreezeReport: {len(self.frozen)}/{n} leaf layers frozen, "
            f"{len(self.trainable)} trainable\n"
            f"  trainable params: {self.trainable_params_before:,} -> "
            f"{self.trainable_params_after:,}\n"
            f"  frozen params:    {self.non_trainable_params_before:,} -> "
            f"{self.non_trainable_params_after:,}"
        )


def _param_counts(model: Model) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of a model."""
    trainable, total = count_params(model)
    return trainable, total - trainable


def _apply_flags(model: Model, leaves: list[LeafLayer], desired: list[bool]) -> bool:
    """Set leaf flags, and make each enclosing model trainable iff any leaf inside trains.

    Keras's `trainable` setter cascades to sublayers, and a container whose own flag is False
    hides all its weights from `trainable_weights`; so containers are set first, outermost
    first, and the leaves last. Returns whether any leaf flag changed.
    """
    changed = any(
        bool(leaf.layer.trainable) != want for leaf, want in zip(leaves, desired, strict=True)
    )
    containers: dict[int, tuple[Model, bool]] = {id(model): (model, any(desired))}
    for leaf, want in zip(leaves, desired, strict=True):
        for container in leaf.containers:
            prev = containers.get(id(container), (container, False))[1]
            containers[id(container)] = (container, prev or want)
    for container, want in containers.values():  # insertion order: outermost first
        container.trainable = want
    for leaf, want in zip(leaves, desired, strict=True):
        leaf.layer.trainable = want
    return changed


def _set_flags(
    model: Model, upto: Boundary | None, all_if_none: bool, keep: Callable[[Layer], bool]
) -> FreezeReport:
    """`freeze`/`unfreeze`: leaf layers after `upto`, and those that `keep`, train."""
    leaves = leaf_layers(model)
    none = len(leaves) if all_if_none else 0
    k = none if upto is None else resolve_boundary(model, upto, leaves=leaves)
    before = _param_counts(model)
    desired = [i >= k or keep(leaf.layer) for i, leaf in enumerate(leaves)]
    if _apply_flags(model, leaves, desired) and getattr(model, "compiled", False):
        warnings.warn(
            f"Model {model.name!r} was compiled before its trainable flags changed. Call "
            "`model.compile(...)` again before `fit`: otherwise Keras keeps training the frozen "
            "layers on TensorFlow and fails on JAX. transferkit's `fine_tune` and "
            "`compare_strategies` always recompile.",
            RecompileWarning,
            stacklevel=3,
        )
    return FreezeReport(
        tuple(leaf.path for leaf in leaves if not leaf.layer.trainable),
        tuple(leaf.path for leaf in leaves if leaf.layer.trainable),
        k,
        *before,
        *_param_counts(model),
    )


def freeze(model: Model, upto: Boundary | None = None, *, train_bn: bool = False) -> FreezeReport:
    """Freeze the leaf layers of `model` up to a boundary and make the rest trainable.

    Leaf layers are counted in execution order, walking into nested models. The layers after
    the boundary are made trainable, so the result does not depend on earlier calls (fastai's
    `freeze_to`); frozen BatchNormalization runs in inference mode. Mutates `model`'s
    trainable flags only; warns with `RecompileWarning` if the model was compiled.

    Args:
        model: A built `keras.Model`.
        upto: `None`, int, str or `keras.layers.Layer`. `None` freezes every leaf layer; an
            int n the first n (negative n: all but the last |n|); a name, `/`-joined path or
            layer freezes up to and including that layer. Defaults to `None`.
        train_bn: bool. Keep BatchNormalization layers in the frozen part trainable.
            Defaults to `False`.

    Returns:
        A `FreezeReport`.

    Raises:
        TypeError: If `model` is not a `keras.Model` or `upto` has an unsupported type.
        ValueError: If the model is not built, or `upto` is out of range or names no leaf
            layer (the message suggests the closest names).

    Example:
    ```python
    import keras
    from transferkit import freeze

    layers = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(8, 3, name="conv"),
                              layers.Flatten(name="flatten"), layers.Dense(10, name="head")])
    report = freeze(model, upto="flatten")
    assert report.frozen == ("conv", "flatten") and report.trainable == ("head",)
    ```
    """
    is_bn = keras.layers.BatchNormalization
    return _set_flags(model, upto, True, lambda layer: train_bn and isinstance(layer, is_bn))


def unfreeze(model: Model, upto: Boundary | None = None) -> FreezeReport:
    """Make leaf layers trainable: all of them, or those after a boundary (the rest kept).

    `freeze(model)` then `unfreeze(model, upto=-2)` trains the last two layers. Mutates
    `model`'s trainable flags.

    Args:
        model: A built `keras.Model`.
        upto: `None`, int, str or `keras.layers.Layer`, as in `freeze`. Defaults to `None`
            (unfreeze everything).

    Returns:
        A `FreezeReport`.

    Raises:
        TypeError, ValueError: As `freeze`.

    Example:
    ```python
    import keras
    from transferkit import freeze, unfreeze

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    freeze(model)
    report = unfreeze(model, upto=-1)
    assert len(report.trainable) == 1
    ```
    """
    return _set_flags(model, upto, False, lambda layer: bool(layer.trainable))


@dataclass(frozen=True)
class TrainableState:
    """A snapshot of every layer's and variable's `trainable` flag, restorable exactly."""

    layers: tuple[tuple[Layer, bool], ...]
    variables: tuple[tuple[Any, bool], ...]

    @classmethod
    def capture(cls, model: Model) -> TrainableState:
        """Snapshot `model`'s flags."""
        layers = tuple((layer, bool(layer.trainable)) for layer in all_layers(model))
        return cls(layers=layers, variables=tuple((v, bool(v.trainable)) for v in model.weights))

    def restore(self) -> None:
        """Put every flag back as it was when captured."""
        for layer, flag in self.layers:
            layer.trainable = flag
        for v, flag in self.variables:
            v.trainable = flag


@contextmanager
def frozen(
    model: Model, upto: Boundary | None = None, *, train_bn: bool = False
) -> Iterator[FreezeReport]:
    """Freeze `model` inside a `with` block; on exit (also on error) restore every flag exactly.

    Args:
        model: A built `keras.Model`.
        upto: As in `freeze`. Defaults to `None` (freeze everything).
        train_bn: As in `freeze`. Defaults to `False`.

    Yields:
        The `FreezeReport` of the freeze applied on entry.

    Raises:
        TypeError, ValueError: As `freeze`, before the block runs.

    Example:
    ```python
    import keras
    from transferkit import frozen

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with frozen(model):
        assert not model.trainable_weights
    assert model.trainable_weights
    ```
    """
    leaves = leaf_layers(model)  # validates before the snapshot
    if upto is not None:
        resolve_boundary(model, upto, leaves=leaves)
    state = TrainableState.capture(model)
    report = freeze(model, upto, train_bn=train_bn)
    try:
        yield report
    finally:
        state.restore()
