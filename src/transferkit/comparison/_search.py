"""The learning-rate search of a comparison: each strategy's grid, halving, and the choice."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from .._validate import check_choice, did_you_mean, is_real
from ..strategies._strategy import BaseStrategy, Strategy
from ..training._settings import TrainSettings, make_optimizer
from ._records import RunRecord

SEARCHES = ("grid", "halving")
ETA = 3
"""Successive halving keeps the best third of the rates at each rung (and trains 3x longer)."""

Grid = tuple[float | None, ...]
"""A strategy's rates to try; `(None,)` when it is not searched."""

RateSpec = Sequence[float] | Mapping[str, Sequence[float]] | str | None


def _check_grid(values: Any, where: str) -> tuple[float, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"{where} must be a non-empty list of learning rates, e.g. [1e-4, 1e-3, 1e-2]. "
            f"Received: {values!r}"
        )
    for value in values:
        if not is_real(value) or not math.isfinite(float(value)) or float(value) <= 0:
            raise ValueError(
                f"{where} must hold finite learning rates > 0. Received: {value!r} in {values!r}"
            )
    rates = [float(value) for value in values]
    if len(set(rates)) != len(rates):
        raise ValueError(f"{where} repeats a rate. Received: {values!r}")
    return tuple(rates)


def auto_grid(strategy: Strategy, settings: TrainSettings) -> tuple[float, ...]:
    """The `"auto"` rates of `strategy`: its `search_multipliers` times the optimizer's rate."""
    base_rate = settings.learning_rate
    if base_rate is None:
        optimizer = make_optimizer(strategy.optimizer or settings.optimizer, None)
        base_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    multipliers = getattr(strategy, "search_multipliers", BaseStrategy.search_multipliers)
    return tuple(float(f"{base_rate * m:.3g}") for m in multipliers)


def resolve_grids(
    learning_rates: RateSpec, strategies: Sequence[Strategy], settings: TrainSettings
) -> dict[str, Grid]:
    """Each strategy's rates to try (`(None,)`: not searched), checked before training.

    A strategy with its own `learning_rate` is never searched.
    """
    names = [s.name for s in strategies]
    if learning_rates is None:
        return {name: (None,) for name in names}
    if isinstance(learning_rates, str):
        if learning_rates != "auto":
            raise ValueError(
                '`learning_rates` must be None, "auto", a list of rates or a mapping from '
                f"strategy label to a list. Received: learning_rates={learning_rates!r}"
            )
        grids = {s.name: auto_grid(s, settings) for s in strategies}
    elif isinstance(learning_rates, Mapping):
        if unknown := [label for label in learning_rates if label not in names]:
            raise ValueError(
                f"`learning_rates` names {unknown[0]!r}, which is not a strategy of this "
                f"comparison. Strategies: {names}.{did_you_mean(unknown[0], names)}"
            )
        grids = {
            label: _check_grid(rates, f"`learning_rates[{label!r}]`")
            for label, rates in learning_rates.items()
        }
    else:
        grids = dict.fromkeys(names, _check_grid(learning_rates, "`learning_rates`"))
    return {
        s.name: (None,) if s.learning_rate is not None else grids.get(s.name, (None,))
        for s in strategies
    }


def check_search(search: Any, grids: Mapping[str, Grid], has_validation: bool) -> None:
    """Refuse an unknown `search`, or a search without validation data to choose on."""
    check_choice(search, "search", SEARCHES)
    searched = [name for name, grid in grids.items() if len(grid) > 1]
    if searched and not has_validation:
        raise ValueError(
            f"A learning-rate search chooses each strategy's rate on validation data, and "
            f"none was given (searched: {searched}). Pass `validation=(x_val, y_val)` as NumPy "
            "arrays; choosing on the test set would make its numbers optimistic."
        )


def rung_epochs(epochs: int, rungs: int) -> list[int]:
    """Epochs of each rung of successive halving: the last trains all `epochs`."""
    return [max(1, round(epochs / ETA ** (rungs - 1 - r))) for r in range(rungs)]


def rung_sizes(n: int) -> list[int]:
    """How many rates train at each rung of successive halving, from `n` down to 1."""
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append(math.ceil(sizes[-1] / ETA))
    return sizes


def mean_validation(runs: Sequence[RunRecord], metric: str = "accuracy") -> float:
    """The mean validation `metric` of `runs` (NaN without validation metrics)."""
    values = [float(getattr(r.validation, metric)) for r in runs if r.validation is not None]
    return sum(values) / len(values) if values else math.nan


def best_rates(
    runs: Sequence[RunRecord], rates: Sequence[float | None], keep: int, metric: str = "accuracy"
) -> list[float | None]:
    """The `keep` rates whose runs have the best mean validation `metric` (ties: the order)."""

    def score(rate: float | None) -> float:
        value = mean_validation([r for r in runs if r.learning_rate == rate], metric)
        return -math.inf if math.isnan(value) else value

    return sorted(rates, key=lambda rate: -score(rate))[:keep]  # stable: grid order breaks ties
