"""Weight-space interpolation between a model and its fine-tuned version (WiSE-FT)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_unit_interval
from ..freezing import copy_model
from ..freezing._layers import ensure_built
from ..types import Model
from ._variables import Values, assign, is_float, values_of, variable_paths

ALPHA_NOTE = " (0 gives `start`'s weights, 1 gives `tuned`'s)"


def interpolate(start: Model, tuned: Model, alpha: float) -> Model:
    """A new model with the weights `(1 - alpha) * start + alpha * tuned` (WiSE-FT).

    Wortsman et al. (2022), "Robust fine-tuning of zero-shot models": interpolating the
    weights of a model before and after fine-tuning often keeps most of the fine-tuned
    accuracy and more of the starting model's robustness. The new model has `tuned`'s
    architecture and trainable flags; neither model is mutated.

    Variables are matched by their path in the model (leaf layer path and variable name,
    e.g. `"dense/kernel"`) and shape. Every floating-point variable the two share is
    interpolated, non-trainable state such as BatchNormalization's moving statistics
    included. A variable only `tuned` has, or has with another shape, has no starting
    counterpart: it keeps `tuned`'s value at every `alpha`. This is the case of a new head
    (`replace_head`, or a head for another number of classes): the result is then
    `tuned`'s head on interpolated body weights, which at `alpha=0` is the starting body with
    the fine-tuned head. Variables only `start` has (its old head) are ignored.

    Args:
        start: A built `keras.Model`: the starting point (e.g. the pretrained model, or the
            model before fine-tuning).
        tuned: A built `keras.Model`: the fine-tuned model.
        alpha: float in [0, 1]. The weight of `tuned`: 0 gives `start`'s values
            (bit-identical), 1 gives `tuned`'s.

    Returns:
        A new `keras.Model` (a copy of `tuned` with the interpolated weights).

    Raises:
        TypeError: If `start` or `tuned` is not a `keras.Model`.
        ValueError: If `alpha` is not a number in [0, 1], or the models share no variable
            by path and shape.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import copy_model, interpolate

    start = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="out")])
    tuned = copy_model(start)
    tuned.get_layer("out").bias.assign(np.ones(2))
    half = interpolate(start, tuned, 0.5)
    bias = keras.ops.convert_to_numpy(half.get_layer("out").bias)
    assert np.allclose(bias, 0.5)
    ```
    """
    alpha = check_unit_interval(alpha, "alpha", ALPHA_NOTE)
    plan, model = Interpolation.of(start, tuned), copy_model(tuned)
    plan.apply(model, alpha)
    return model


@dataclass(frozen=True)
class Interpolation:
    """The variables of `tuned`, their values, and those of the starting model they share."""

    tuned: Model
    paths: dict[str, Any]
    tuned_values: Values
    start_values: Values

    @property
    def tuned_only(self) -> tuple[str, ...]:
        """Paths of the variables that keep `tuned`'s value at every alpha."""
        return tuple(p for p in self.paths if p not in self.start_values)

    @classmethod
    def of(cls, start: Model, tuned: Model) -> Interpolation:
        ensure_built(start, "start")
        ensure_built(tuned, "tuned")
        start_paths, tuned_paths = variable_paths(start), variable_paths(tuned)
        shared = {
            p: v
            for p, v in start_paths.items()
            if p in tuned_paths
            and tuple(v.shape) == tuple(tuned_paths[p].shape)
            and is_float(v)
            and is_float(tuned_paths[p])
        }
        if not shared:
            raise ValueError(
                "`start` and `tuned` share no variable by path and shape, so there is nothing "
                "to interpolate. Pass a model and a fine-tuned copy of it (`fine_tune` and "
                "`replace_head` keep the layer names). Received: variables "
                f"{list(start_paths)[:4]} in `start` ({start.name!r}) and "
                f"{list(tuned_paths)[:4]} in `tuned` ({tuned.name!r})"
            )
        return cls(tuned, tuned_paths, values_of(tuned_paths), values_of(shared))

    def blend(self, alpha: float) -> Values:
        """Each variable's value at `alpha`: endpoints exact, never rounded through a sum."""
        out: Values = {}
        for path, value in self.tuned_values.items():
            start = self.start_values.get(path)
            if start is None or alpha == 1.0:
                out[path] = value
            elif alpha == 0.0:
                out[path] = start.astype(value.dtype, copy=False)
            else:
                mixed = (1.0 - alpha) * start.astype(np.float64) + alpha * value.astype(np.float64)
                out[path] = mixed.astype(value.dtype)
        return out

    def apply(self, model: Model, alpha: float) -> None:
        """Write the weights at `alpha` into `model`, a copy of `tuned`."""
        assign(model, self.tuned, self.paths, self.blend(alpha))
