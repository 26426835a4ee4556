"""A comparison's records: a `RunRecord` per run, a `SummaryRow` per strategy and metric."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .. import _serial
from ..metrics import ClassificationMetrics
from ..timing import TrainingTiming
from ..training._cache import CacheInfo
from ..training._phases import PhaseRecord

SUMMARY_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "train_seconds")


BASELINE = "scratch"
"""The control that `Comparison.summary` and `to_markdown` report gains against."""


RunKey = tuple[str, int, float | None, int | None]
"""A run's identity in a comparison: `(strategy, seed, learning_rate, rung)`."""


@dataclass(frozen=True)
class RunRecord:
    """One strategy trained with one seed and evaluated on the test set.

    Attributes:
        strategy: The strategy's name.
        seed: The seed of the run.
        epochs: Epochs trained.
        metrics: Test-set metrics.
        timing: Training time, throughput and parameter counts.
        history: Per-epoch training history (`loss`, `accuracy`, `val_accuracy`, ...).
        cache: Whether the run trained on cached frozen-prefix activations, and why (not).
        resumed: Whether the run was read back from an `output` file rather than trained now.
        validation: Validation-set metrics (what `Comparison.best` chooses on), or `None`
            without validation data.
        phases: One `PhaseRecord` per phase (epochs, seconds, learning rate, cache, best and
            stopped epoch under early stopping).
        learning_rate: The rate a learning-rate search trained this run at, or `None` when
            the run was not part of a search (the strategy's or the caller's rate).
        rung: With `search="halving"`, the round of a shortened run (0 is the first, with
            the fewest epochs); `None` for a run with the full epochs.
    """

    strategy: str
    seed: int
    epochs: int
    metrics: ClassificationMetrics
    timing: TrainingTiming
    history: dict[str, list[float]]
    cache: CacheInfo = field(default_factory=lambda: CacheInfo(used=False, reason="not recorded"))
    resumed: bool = False
    validation: ClassificationMetrics | None = None
    phases: tuple[PhaseRecord, ...] = ()
    learning_rate: float | None = None
    rung: int | None = None

    @property
    def key(self) -> RunKey:
        """What identifies the run in a comparison: strategy, seed, rate and rung."""
        return (self.strategy, self.seed, self.learning_rate, self.rung)

    def value(self, metric: str) -> float:
        """A headline number of this run: a metric name or `"train_seconds"`."""
        if metric == "train_seconds":
            return float(self.timing.train_seconds)
        return float(getattr(self.metrics, metric))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (what `output=` files hold, one per line)."""
        # `resumed` is a property of how a record was obtained, not of the run
        return _serial.to_dict(self, drop=("resumed",))

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, resumed: bool = False) -> RunRecord:
        """Rebuild a record written by `to_dict`."""
        return replace(_serial.from_dict(cls, d), resumed=resumed)


# Two-sided 95% Student-t critical values by degrees of freedom (1..30); 1.96 beyond.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(dof: int) -> float:
    """Two-sided 95% Student-t critical value for `dof` degrees of freedom."""
    return math.nan if dof < 1 else _T95[dof - 1] if dof <= len(_T95) else 1.96


@dataclass(frozen=True)
class SummaryRow:
    """Mean, spread and 95% confidence interval of one metric of one strategy.

    Attributes:
        strategy: The strategy's name.
        metric: The metric (`accuracy`, `f1_macro`, `train_seconds`, ...).
        n: Number of runs (seeds).
        mean: Mean over runs.
        std: Sample standard deviation (ddof=1); 0.0 for one run.
        ci95_low: Lower end of the 95% t-interval of the mean (`nan` for one run).
        ci95_high: Upper end (`nan` for one run).
    """

    strategy: str
    metric: str
    n: int
    mean: float
    std: float
    ci95_low: float
    ci95_high: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (`nan` becomes `None`)."""
        d = _serial.to_dict(self)
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


def summarize(
    values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf)
) -> tuple[float, float, float, float]:
    """(mean, std, ci95_low, ci95_high) of a sample, with Student-t 95% intervals.

    The interval is clipped to `bounds`, the range the metric can take (an accuracy's
    interval from two seeds can otherwise reach past 1).
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * std / math.sqrt(n)
    low, high = bounds
    return mean, std, max(low, mean - half), min(high, mean + half)


def summary_row(strategy: str, metric: str, values: Sequence[float]) -> SummaryRow:
    """The `SummaryRow` of `values`: mean, std and 95% CI, clipped to the metric's range."""
    return SummaryRow(strategy, metric, len(values), *summarize(values, metric_bounds(metric)))


def metric_bounds(metric: str) -> tuple[float, float]:
    """The range of a summary metric: [0, 1] for scores, [-1, 1] for gains, [0, inf) for time."""
    if metric == "train_seconds":
        return 0.0, math.inf
    return (-1.0, 1.0) if "_gain_vs_" in metric else (0.0, 1.0)


def by_strategy(runs: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    """The runs of each strategy, strategies in order of first appearance."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(run)
    return groups


class ComparisonView(Protocol):
    """What a report needs of a comparison (so the report module does not import it)."""

    @property
    def runs(self) -> tuple[RunRecord, ...]: ...

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def strategies(self) -> tuple[str, ...]: ...

    def summary(self) -> tuple[SummaryRow, ...]: ...

    def rate_text(self, strategy: str) -> str: ...

    def runs_of(self, strategy: str) -> tuple[RunRecord, ...]: ...

    def best(self) -> str: ...

    def plot_history(self) -> Any: ...

    def plot_tradeoff(self) -> Any: ...
