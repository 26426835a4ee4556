"""Per-layer learning rates: `LayerRates`, an optimizer that scales the rate per variable.

Keras 3 optimizers have no parameter groups, and with Adam a scaled gradient is not a scaled
step, so `LayerRates` (after `LossScaleOptimizer`) keeps one clone of the optimizer per
distinct multiplier, each at its own rate and on its own variables, on its backend's own path.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from .._validate import check_number
from ..freezing._layers import Boundary, leaf_layers, resolve_boundary
from ..types import Model
from ._blocks import stages as block_stages
from ._phase import Phase

_Schedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="transferkit")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A learning-rate schedule times a constant factor (`LayerRates` scales schedules so)."""

    def __init__(self, schedule: Any, factor: float) -> None:
        self.schedule = schedule
        self.factor = float(factor)

    def __call__(self, step: Any) -> Any:
        return self.schedule(step) * self.factor

    def get_config(self) -> dict[str, Any]:
        """The wrapped schedule (serialised) and the factor."""
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "factor": self.factor,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaledSchedule:
        """Rebuild from `get_config`'s output."""
        return cls(keras.saving.deserialize_keras_object(config["schedule"]), config["factor"])


def _scaled_rate(rate: Any, factor: float) -> Any:
    """`rate` (a number or a schedule) times `factor`."""
    if isinstance(rate, _Schedule):
        return ScaledSchedule(rate, factor)
    return float(keras.ops.convert_to_numpy(rate)) * factor


@keras.saving.register_keras_serializable(package="transferkit")
class LayerRates(keras.optimizers.Optimizer):  # type: ignore[misc]
    """Wrap an optimizer so each layer trains at its own multiple of the learning rate.

    A variable's multiplier is that of the longest key of `multipliers` found in its path as
    whole `/`-separated parts (`"dense"` matches `"mlp/dense/kernel"`), else 1. Each distinct
    multiplier gets its own copy of `optimizer`, so with Adam the step, not just the gradient,
    scales; multiplier 0 leaves a variable bit-identical (weight decay included).
    `global_clipnorm` clips over all variables together. The wrapper saves and loads with the
    model, optimizer state included.

    Args:
        optimizer: A `keras.optimizers.Optimizer` (only its configuration is used).
        multipliers: Mapping of variable or layer path (e.g. `"dense"`) to a finite
            multiplier >= 0.
        name: str or None. Defaults to `None` (`"layer_rates"`).

    Raises:
        ValueError: For a negative or non-finite multiplier, or a wrapper as `optimizer`.
        TypeError: If `optimizer` is not a Keras optimizer.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import LayerRates

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="a"),
                              keras.layers.Dense(1, name="b")])
    start = model.get_layer("a").get_weights()
    model.compile(optimizer=LayerRates(keras.optimizers.Adam(0.1), {"a": 0.0}), loss="mse")
    model.fit(np.ones((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0)
    assert all(np.array_equal(w, s) for w, s in zip(model.get_layer("a").get_weights(), start))
    ```
    """

    def __init__(
        self, optimizer: Any, multipliers: Mapping[str, float], name: str | None = None
    ) -> None:
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                f"`optimizer` must be a `keras.optimizers.Optimizer`. Received: {optimizer!r}"
            )
        if (
            isinstance(optimizer, LayerRates | keras.optimizers.LossScaleOptimizer)
            or type(optimizer).__name__ == "MultiOptimizer"
        ):
            raise ValueError(
                "`optimizer` must be a plain optimizer, not a wrapper. "
                f"Received: optimizer={type(optimizer).__name__}"
            )
        if not isinstance(multipliers, Mapping):
            raise TypeError(
                f"`multipliers` must be a mapping of paths to numbers. Received: {multipliers!r}"
            )
        for key, value in multipliers.items():
            note = " (0 leaves a layer's weights unchanged)"
            check_number(value, f"multipliers[{key!r}]", note=note)
        config = optimizer.get_config()
        super().__init__(
            learning_rate=_scaled_rate(optimizer._learning_rate, 1.0),
            global_clipnorm=config.get("global_clipnorm"),
            name=name or "layer_rates",
        )
        self._inner_config = {k: v for k, v in config.items() if k != "global_clipnorm"}
        self._inner_class = type(optimizer)
        self._base_rate = _scaled_rate(optimizer._learning_rate, 1.0)
        self.multipliers = {str(k): float(v) for k, v in multipliers.items()}
        self.groups: list[Any] = []
        self._factors: list[float] = []
        self._group_of: dict[Any, int] = {}

    def multiplier(self, variable: Any) -> float:
        """The multiplier of `variable`: its longest matching key's, else 1."""
        return _lookup(self.multipliers, str(variable.path))

    def build(self, var_list: Sequence[Any]) -> None:
        """Build one inner optimizer per distinct non-zero multiplier."""
        if self.built:
            return
        factors = [self.multiplier(v) for v in var_list]
        distinct = sorted({f for f in factors if f > 0})
        for f in distinct:
            group = self._inner_class.from_config(
                {**self._inner_config, "learning_rate": _scaled_rate(self._base_rate, f)}
            )
            group.build([v for v, g in zip(var_list, factors, strict=True) if g == f])
            self.groups.append(group)
        self._factors = distinct
        self._group_of = {
            self._var_key(v): distinct.index(f) if f > 0 else -1
            for v, f in zip(var_list, factors, strict=True)
        }
        super().build(var_list)

    @property
    def variables(self) -> list[Any]:
        """This wrapper's variables, then each group's."""
        return [*self._variables, *(v for g in self.groups for v in g.variables)]

    @property
    def learning_rate(self) -> Any:
        """The base learning rate (group `i` trains at it times its multiplier)."""
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        keras.optimizers.Optimizer.learning_rate.fset(self, value)
        self._base_rate = _scaled_rate(value, 1.0)
        for group, factor in zip(getattr(self, "groups", ()), self._factors, strict=True):
            group.learning_rate = _scaled_rate(value, factor)

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Any] | None = None) -> Any:
        """Hand each group its gradients and variables; skip multiplier-0 variables."""
        if len(grads) == 0:
            return
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
        grads = self._clip_gradients(list(grads)) if self.global_clipnorm else list(grads)
        split: list[tuple[list[Any], list[Any]]] = [([], []) for _ in self.groups]
        for grad, var in zip(grads, trainable_variables, strict=True):
            if (index := self._group_of[self._var_key(var)]) >= 0 and grad is not None:
                split[index][0].append(grad)
                split[index][1].append(var)
        for group, (sub_grads, sub_vars) in zip(self.groups, split, strict=True):
            if sub_vars:
                group.apply(sub_grads, sub_vars)
        self._iterations.assign_add(1)

    def finalize_variable_values(self, var_list: Sequence[Any]) -> None:
        """Let each group finalise its variables (e.g. EMA)."""
        for i, group in enumerate(self.groups):
            group.finalize_variable_values(
                [v for v in var_list if self._group_of.get(self._var_key(v)) == i]
            )

    def get_config(self) -> dict[str, Any]:
        """The inner optimizer (serialised), the multipliers and the name."""
        config = {**self._inner_config, "global_clipnorm": self.global_clipnorm}
        return {
            "optimizer": keras.optimizers.serialize(self._inner_class.from_config(config)),
            "multipliers": dict(self.multipliers),
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> LayerRates:
        """Rebuild from `get_config`'s output."""
        inner = keras.optimizers.deserialize(config["optimizer"], custom_objects=custom_objects)
        return cls(inner, config["multipliers"], name=config.get("name"))


def _lookup(multipliers: Mapping[str, float], path: str) -> float:
    """The multiplier of the longest key that is a whole part of `path`, else 1."""
    keys = [k for k in multipliers if f"/{k}/" in f"/{path}/"]
    return multipliers[max(keys, key=len)] if keys else 1.0


def with_rates(optimizer: Any, multipliers: dict[str, float]) -> LayerRates:
    """`optimizer` wrapped in `LayerRates`; a `LayerRates` given has its rates multiplied in."""
    if isinstance(optimizer, LayerRates):
        config = optimizer.get_config()
        inner = keras.optimizers.deserialize(config["optimizer"])
        own = config["multipliers"]
        return LayerRates(inner, {p: m * _lookup(own, p) for p, m in multipliers.items()})
    return LayerRates(optimizer, multipliers)


def block_starts(model: Model, blocks: Sequence[Boundary] | None) -> list[int]:
    """Leaf indices where blocks start, ascending: `GradualUnfreeze`'s stages by default."""
    if blocks is None:
        return sorted(block_stages(model))
    leaves = leaf_layers(model)
    return sorted(
        {0, *(resolve_boundary(model, b, argument="blocks", leaves=leaves) for b in blocks)}
        - {len(leaves)}
    )


def block_multipliers(
    model: Model,
    *,
    lr_mult: float | None,
    layer_decay: float | None,
    blocks: Sequence[Boundary] | None = None,
    phase: str = "",
) -> dict[str, float] | None:
    """Multipliers of the trainable variables by block (the head's 1), or `None` without rates.

    `lr_mult` spreads them geometrically from `1 / lr_mult` at the lowest trainable block;
    `layer_decay` gives block `k` below the head `layer_decay ** k`. Raises `ValueError` if
    only the head trains.
    """
    if lr_mult is None and layer_decay is None:
        return None
    starts = block_starts(model, blocks)
    top, leaves = len(starts) - 1, leaf_layers(model)
    block_of = [bisect.bisect_right(starts, leaf.index) - 1 for leaf in leaves]
    trained = {block_of[leaf.index] for leaf in leaves if leaf.layer.trainable_weights}
    if len(trained) < 2:
        setting = f"lr_mult={lr_mult!r}" if lr_mult is not None else f"layer_decay={layer_decay!r}"
        raise ValueError(
            f"Phase {phase!r} sets {setting}, but only one block trains (blocks start at leaf "
            f"layers {starts}), so per-layer rates would change nothing. Drop the setting "
            "from that phase, freeze fewer layers, or pass finer `blocks`."
        )
    lowest = min(trained)
    out: dict[str, float] = {}
    for leaf in leaves:
        below = top - block_of[leaf.index]
        if lr_mult is not None:
            factor = float(lr_mult) ** (-below / (top - lowest)) if top > lowest else 1.0
        else:
            factor = float(layer_decay) ** below  # type: ignore[arg-type]
        for v in leaf.layer.trainable_weights:
            if out.setdefault(str(v.path), factor) != factor:
                raise ValueError(
                    f"Two weights share the path {v.path!r} but lie in different blocks, so "
                    "per-layer rates cannot tell them apart. Give the layers unique names."
                )
    return out


@dataclass(frozen=True, kw_only=True)
class RateOptions:
    """Strategy options for per-layer rates (a mixin before `BaseStrategy` in the bases)."""

    lr_mult: float | None = None
    layer_decay: float | None = None
    blocks: Sequence[Boundary] | None = None

    def _rates(self) -> dict[str, Any]:
        return {"lr_mult": self.lr_mult, "layer_decay": self.layer_decay, "blocks": self.blocks}

    def phases(self, model: Model, epochs: int) -> tuple[Any, ...]:
        """One phase of `epochs` epochs, with the flags `prepare` set and the rates."""
        return (Phase(epochs=epochs, **self._rates()),)


def with_options(name: str, strategy: Any) -> str:
    """`name` with the strategy's rates and L2-SP: `"full"` -> `"full(lr_mult=10.0, l2sp)"`."""
    extra = [
        f"{k}={getattr(strategy, k)!r}"
        for k in ("lr_mult", "layer_decay")
        if getattr(strategy, k, None) is not None
    ]
    extra += ["l2sp"] if getattr(strategy, "regularizer", None) is not None else []
    if not extra:
        return name
    head, paren, inner = name.partition("(")
    inner = inner[:-1] + ", " if paren else ""
    return f"{head}({inner}{', '.join(extra)})"
