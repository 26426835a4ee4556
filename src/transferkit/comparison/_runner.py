"""The runs of a comparison: every strategy x rate x seed, resumed, searched, recorded."""

from __future__ import annotations

import dataclasses
import gc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras

from .._serial import describe
from .._version import __version__
from ..metrics import evaluate
from ..strategies._strategy import Strategy
from ..training._callbacks import early_stopping_config, per_run
from ..training._data import ArrayData, Data
from ..training._phases import strategy_phases
from ..training._run import FitResult, quiet_retracing, run_strategy
from ..training._settings import TrainSettings
from ..types import Model
from ._comparison import Comparison
from ._models import ModelKeeper
from ._progress import RunProgress
from ._records import RunKey, RunRecord
from ._runlog import RunLog
from ._search import Grid, best_rates, rung_epochs, rung_sizes


@dataclass(frozen=True)
class ComparisonPlan:
    """A checked comparison: the starting model, strategies, seeds, data and settings."""

    start: Model
    strategies: list[Strategy]
    seeds: list[int]
    train: Data
    validation: Data | None
    test: ArrayData
    arrays: tuple[ArrayData | None, ArrayData | None]
    settings: TrainSettings
    class_names: list[str] | None
    grids: dict[str, Grid] = field(default_factory=dict)
    search: str | None = None

    def non_arrays(self) -> list[str]:
        """The data sets given as something other than NumPy arrays."""
        given = zip(
            ("train", "validation"), (self.train, self.validation), self.arrays, strict=True
        )
        return [name for name, d, a in given if d is not None and a is None]

    def grid(self, strategy: Strategy) -> Grid:
        """The rates `strategy` trains at (`(None,)`: not searched)."""
        return self.grids.get(strategy.name, (None,))

    def config(self) -> dict[str, Any]:
        """What the results depend on: the log's fingerprint and `Comparison.config`."""
        s = self.settings
        config = {
            "transferkit": __version__,
            "backend": keras.backend.backend(),
            "strategies": [strategy.to_dict() for strategy in self.strategies],
            "epochs": s.epochs,
            "batch_size": s.batch_size,
            "optimizer": describe(s.optimizer),
            "learning_rate": describe(s.learning_rate),
            "loss": describe(s.loss),
            "callbacks": [describe(c) for c in s.callbacks],
            "precision": s.precision,
            "early_stopping": early_stopping_config(s.early_stopping),
            "train_samples": len(self.arrays[0]) if self.arrays[0] is not None else None,
            "test_samples": len(self.test),
        }
        if s.class_weight is not None:  # only when given, so other logs keep their fingerprint
            config["class_weight"] = {str(k): float(v) for k, v in s.class_weight.items()}
        if self.search is not None:  # only with a search, so other logs keep their fingerprint
            config["learning_rates"] = {name: list(grid) for name, grid in self.grids.items()}
            config["search"] = self.search
        return config

    def total_runs(self) -> int:
        """How many runs the comparison plans, shortened halving runs included."""
        per_seed = 0
        for strategy in self.strategies:
            grid = self.grid(strategy)
            halving = self.search == "halving" and len(grid) > 1
            per_seed += sum(rung_sizes(len(grid))) if halving else len(grid)
        return per_seed * len(self.seeds)


def best_key(comparison: Comparison) -> RunKey | None:
    """The run `Comparison.model()` returns by default, or `None` without validation."""
    try:
        return comparison.best_run().key
    except ValueError:
        return None


def _epochs(strategy: Strategy, model: Model, wanted: int, most: int) -> int:
    """`wanted` epochs, raised to the fewest the strategy's phases accept (at most `most`)."""
    for epochs in range(wanted, most):
        try:
            strategy_phases(strategy, model, epochs)
            return epochs
        except ValueError:
            continue
    return most


class Runner:
    """Trains (or resumes) the runs of a `ComparisonPlan` in order, one line of progress each."""

    def __init__(
        self,
        plan: ComparisonPlan,
        settings: TrainSettings,
        log: RunLog | None,
        done: dict[RunKey, RunRecord],
        keeper: ModelKeeper,
        verbose: int,
        output: str | Path | None,
    ) -> None:
        self.plan, self.settings, self.log, self.done = plan, settings, log, done
        self.keeper, self.output = keeper, output
        self.progress = RunProgress(plan.total_runs(), verbose=verbose)

    @quiet_retracing()  # the runs' evaluations trace too
    def run_all(self) -> list[RunRecord]:
        """Every run, strategy by strategy: each rate of its grid (or its halving), each seed."""
        runs: list[RunRecord] = []
        for strategy in self.plan.strategies:
            grid = self.plan.grid(strategy)
            if self.plan.search == "halving" and len(grid) > 1:
                runs += self._halving(strategy, grid)
            else:
                runs += [self._one(strategy, r, s, None) for r in grid for s in self.plan.seeds]
        self.progress.close()
        return runs

    def _halving(self, strategy: Strategy, grid: Grid) -> list[RunRecord]:
        """Successive halving: all rates for a few epochs, the best third for 3x more, ..."""
        sizes = rung_sizes(len(grid))
        full = strategy.epochs or self.settings.epochs
        budgets = rung_epochs(full, len(sizes))
        cost = sum(n * e for n, e in zip(sizes, budgets, strict=True)) * len(self.plan.seeds)
        self.progress.note(
            f"{strategy.name}: successive halving over {len(grid)} rates, {sizes} rates per "
            f"rung, {budgets} epochs: {cost} epochs in all (the full grid: "
            f"{len(grid) * full * len(self.plan.seeds)})"
        )
        rates, runs = list(grid), []
        for rung, (size, budget) in enumerate(zip(sizes, budgets, strict=True)):
            last, rates = rung == len(sizes) - 1, rates[:size]
            these = [
                self._one(strategy, rate, seed, None if last else rung, budget)
                for rate in rates
                for seed in self.plan.seeds
            ]
            runs += these
            if not last:
                rates = best_rates(these, rates, sizes[rung + 1])
        return runs

    def _one(
        self,
        strategy: Strategy,
        rate: float | None,
        seed: int,
        rung: int | None,
        epochs: int | None = None,
    ) -> RunRecord:
        """One run: read back from the log, or trained now and appended to it."""
        key: RunKey = (strategy.name, seed, rate, rung)
        tag = strategy.name if rate is None else f"{strategy.name} lr={rate:g}"
        tag += "" if rung is None else f" rung {rung} ({epochs} epochs)"
        if key in self.done:
            record = self.done[key]
            self.keeper.find(key)
            acc = record.metrics.accuracy
            self.progress.resumed(
                tag, seed, f"resumed from {self.output} (test accuracy {acc:.4f})"
            )
            return record
        self.progress.start_run(tag, seed)
        run = strategy.name + (f"-lr{rate:g}" if len(self.plan.grid(strategy)) > 1 else "")
        run += ("" if rung is None else f"-rung{rung}") + f"-seed{seed}"
        result = self._train(strategy, rate, seed, epochs, run)
        record = self._record(strategy.name, seed, rate, rung, result)
        if self.log is not None:
            self.log.append(record)
        self.keeper.add(key, result.model)
        cached = " (cached prefix)" if result.cache.used else ""
        self.progress.finish_run(
            f"test accuracy {record.metrics.accuracy:.4f}, macro F1 "
            f"{record.metrics.f1_macro:.4f}, {result.timing.train_seconds:.1f} s{cached}"
        )
        del result
        gc.collect()
        return record

    def _train(
        self, strategy: Strategy, rate: float | None, seed: int, epochs: int | None, run: str
    ) -> FitResult:
        """`run_strategy` from the starting weights at `rate` (and, shortened, `epochs`), with
        `run`'s own log paths (`per_run`)."""
        settings = replace(self.settings, callbacks=per_run(self.settings.callbacks, run))
        settings = settings if rate is None else replace(settings, learning_rate=rate)
        if epochs is not None:
            full = strategy.epochs or settings.epochs
            epochs = _epochs(strategy, self.plan.start, epochs, full)
            settings = replace(settings, epochs=epochs)
            if strategy.epochs is not None and dataclasses.is_dataclass(strategy):
                strategy = replace(strategy, epochs=epochs)
        plan = self.plan
        return run_strategy(plan.start, plan.train, plan.validation, strategy, settings, seed=seed)

    def _record(
        self, name: str, seed: int, rate: float | None, rung: int | None, result: FitResult
    ) -> RunRecord:
        """The run's record: its test (and validation) metrics, timing and history."""
        plan, val = self.plan, self.plan.arrays[1]
        names = plan.class_names
        return RunRecord(
            strategy=name,
            seed=seed,
            epochs=result.epochs,
            metrics=evaluate(result.model, plan.test.x, plan.test.y, class_names=names),
            timing=result.timing,
            history=result.history,
            cache=result.cache,
            validation=(
                evaluate(result.model, val.x, val.y, class_names=names) if val is not None else None
            ),
            phases=result.phases,
            learning_rate=rate,
            rung=rung,
        )
