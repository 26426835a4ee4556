"""WiSE-FT: the interpolation between a model and its fine-tuned version that validates best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import _serial
from .._validate import check_positive_int, check_unit_interval, unpack_pair
from ..freezing import copy_model
from ..metrics import evaluate
from ..types import Model
from ._interpolate import ALPHA_NOTE, Interpolation

DEFAULT_ALPHAS: tuple[float, ...] = tuple(i / 10 for i in range(11))
"""0.0, 0.1, ..., 1.0."""


@dataclass(frozen=True)
class WiseFTResult:
    """The outcome of `wise_ft`: the chosen model and the accuracy at every alpha.

    Attributes:
        model: The interpolated model at `alpha` (a new model with `tuned`'s architecture).
        alpha: The alpha with the best validation accuracy (the first one listed among ties).
        accuracy: Its validation accuracy.
        alphas: Every alpha tried, in the order given.
        accuracies: The validation accuracy at each of `alphas`.
        tuned_only: Paths of the variables with no starting counterpart (a new head), which
            keep `tuned`'s values at every alpha.

    Example:
    ```python
    import keras
    from transferkit import WiseFTResult

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    result = WiseFTResult(model, 0.5, 0.9, (0.0, 0.5, 1.0), (0.8, 0.9, 0.85), ())
    assert result.to_dict()["alphas"] == [0.0, 0.5, 1.0] and "model" not in result.to_dict()
    ```
    """

    model: Model
    alpha: float
    accuracy: float
    alphas: tuple[float, ...]
    accuracies: tuple[float, ...]
    tuned_only: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of everything but the model."""
        return _serial.to_dict(self, drop=("model",))


def wise_ft(
    start: Model,
    tuned: Model,
    validation: tuple[Any, Any],
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    batch_size: int = 256,
) -> WiseFTResult:
    """WiSE-FT: `interpolate(start, tuned, alpha)` at each alpha, the best on validation.

    Wortsman et al. (2022), "Robust fine-tuning of zero-shot models". One copy of `tuned`
    takes the interpolated weights of each alpha in turn and is evaluated on `validation`
    (accuracy, as `transferkit.metrics.evaluate` computes it); it ends with the weights of
    the best alpha. See `interpolate` for how variables are matched, and for a new head with
    no starting counterpart (it keeps `tuned`'s values: the tuned head on interpolated body
    weights). Neither model is mutated.

    Args:
        start: A built `keras.Model`: the starting point (the model before fine-tuning).
        tuned: A built `keras.Model`: the fine-tuned model.
        validation: `(x, y)` NumPy arrays (integer or one-hot labels).
        alphas: Sequence of floats in [0, 1]. The weights of `tuned` to try. Defaults to
            `(0.0, 0.1, ..., 1.0)`.
        batch_size: int. Batch size for the validation predictions. Defaults to `256`.

    Returns:
        A `WiseFTResult`.

    Raises:
        TypeError: If `start` or `tuned` is not a `keras.Model`.
        ValueError: If `alphas` is empty or holds a value outside [0, 1], the models share
            no variable by path and shape, or the validation data are invalid.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import fine_tune, wise_ft

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4), dtype=np.float32), rng.integers(0, 2, 64)
    start = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    tuned = fine_tune(start, (x, y), epochs=1, verbose=0).model
    result = wise_ft(start, tuned, (x, y), alphas=(0.0, 0.5, 1.0))
    assert result.alpha in (0.0, 0.5, 1.0) and len(result.accuracies) == 3
    assert result.accuracy == max(result.accuracies)
    ```
    """
    if isinstance(alphas, str) or not isinstance(alphas, Sequence) or not alphas:
        raise ValueError(
            f"`alphas` must be a non-empty list of numbers in [0, 1]. Received: alphas={alphas!r}"
        )
    alphas = tuple(check_unit_interval(a, f"alphas[{i}]", ALPHA_NOTE) for i, a in enumerate(alphas))
    batch_size = check_positive_int(batch_size, "batch_size")
    x, y = unpack_pair(validation, "validation")
    plan = Interpolation.of(start, tuned)
    model, accuracies = copy_model(tuned), []
    for alpha in alphas:
        plan.apply(model, alpha)
        accuracies.append(evaluate(model, x, y, batch_size=batch_size).accuracy)
    best = max(range(len(alphas)), key=lambda i: accuracies[i])  # the first among ties
    plan.apply(model, alphas[best])
    return WiseFTResult(
        model=model,
        alpha=alphas[best],
        accuracy=accuracies[best],
        alphas=alphas,
        accuracies=tuple(accuracies),
        tuned_only=plan.tuned_only,
    )
