"""The runs of a comparison: every strategy x rate x seed, resumed, searched, recorded."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Iterator
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
from ..training._feed import even_batch
from ..training._phases import strategy_phases
from ..training._run import quiet_retracing, run_strategy
from ..training._settings import TrainSettings
from ..types import Model
from ._comparison import Comparison
from ._models import ModelKeeper
from ._progress import RunProgress
from ._records import RunKey, RunRecord
from ._runlog import RunLog
from ._search import Grid, best_rates, rung_epochs, rung_sizes

Dispatcher = Callable[[list["Job"], RunProgress], Iterator[tuple["Job", RunRecord, Model | None]]]
"""Trains jobs elsewhere and yields each with its record (and kept model) as it finishes."""


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


@dataclass(frozen=True)
class Job:
    """One run to train: a strategy at a rate (or its own) with a seed, maybe shortened."""

    strategy: Strategy
    rate: float | None
    seed: int
    rung: int | None = None
    epochs: int | None = None

    @property
    def key(self) -> RunKey:
        return (self.strategy.name, self.seed, self.rate, self.rung)

    @property
    def tag(self) -> str:
        """The strategy as the progress lines name it: with its rate and rung if any."""
        tag = self.strategy.name if self.rate is None else f"{self.strategy.name} lr={self.rate:g}"
        return tag + ("" if self.rung is None else f" rung {self.rung} ({self.epochs} epochs)")


@quiet_retracing()  # the runs' evaluations trace too
def train_job(plan: ComparisonPlan, settings: TrainSettings, job: Job) -> tuple[RunRecord, Model]:
    """Train `job` from the plan's starting weights, here or in an executor's worker: its
    record and trained model. Callbacks that log to a path get the run's own (`per_run`)."""
    strategy, epochs = job.strategy, job.epochs
    run = strategy.name + (f"-lr{job.rate:g}" if len(plan.grid(strategy)) > 1 else "")
    run += ("" if job.rung is None else f"-rung{job.rung}") + f"-seed{job.seed}"
    settings = replace(settings, callbacks=per_run(settings.callbacks, run))
    settings = settings if job.rate is None else replace(settings, learning_rate=job.rate)
    if epochs is not None:
        epochs = _epochs(strategy, plan.start, epochs, strategy.epochs or settings.epochs)
        settings = replace(settings, epochs=epochs)
        if strategy.epochs is not None and dataclasses.is_dataclass(strategy):
            strategy = replace(strategy, epochs=epochs)
    result, cached = run_strategy(
        plan.start, plan.train, plan.validation, strategy, settings, seed=job.seed
    )
    names, val, validation = plan.class_names, plan.arrays[1], None
    test = evaluate(result.model, plan.test.x, plan.test.y, class_names=names)
    if val is not None:  # the trained remainder on cached activations gives the same outputs
        model, x, size = (*cached, even_batch(len(val))) if cached else (result.model, val.x, 256)
        validation = evaluate(model, x, val.y, class_names=names, batch_size=size)
    record = RunRecord(
        strategy=job.strategy.name,
        seed=job.seed,
        epochs=result.epochs,
        metrics=test,
        timing=result.timing,
        history=result.history,
        cache=result.cache,
        validation=validation,
        phases=result.phases,
        learning_rate=job.rate,
        rung=job.rung,
    )
    return record, result.model


class Runner:
    """Trains (or resumes) the runs of a `ComparisonPlan`, one line of progress each: in
    order here, or all at once on an executor's workers (`Dispatch`)."""

    def __init__(
        self,
        plan: ComparisonPlan,
        settings: TrainSettings,
        log: RunLog | None,
        done: dict[RunKey, RunRecord],
        keeper: ModelKeeper,
        verbose: int,
        output: str | Path | None,
        dispatch: Dispatcher | None = None,
    ) -> None:
        self.plan, self.settings, self.log, self.done = plan, settings, log, dict(done)
        self.keeper, self.output, self.dispatch = keeper, output, dispatch
        self.resumed = set(done)
        self.progress = RunProgress(plan.total_runs(), verbose=verbose)

    def _halves(self, strategy: Strategy) -> bool:
        return self.plan.search == "halving" and len(self.plan.grid(strategy)) > 1

    def run_all(self) -> list[RunRecord]:
        """Every run: the grids' runs together, then each halving rung by rung; the records
        strategy by strategy, each rate of its grid, each seed."""
        plan, runs = self.plan, []
        self._wave(
            [
                Job(s, r, seed)
                for s in plan.strategies
                if not self._halves(s)
                for r in plan.grid(s)
                for seed in plan.seeds
            ]
        )
        for strategy in plan.strategies:
            if self._halves(strategy):
                runs += self._halving(strategy, plan.grid(strategy))
            else:
                keys = [
                    (strategy.name, s, r, None) for r in plan.grid(strategy) for s in plan.seeds
                ]
                runs += [self.done[key] for key in keys]
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
            these = self._wave(
                [
                    Job(strategy, rate, seed, None if last else rung, budget)
                    for rate in rates
                    for seed in self.plan.seeds
                ]
            )
            runs += these
            if not last:
                rates = best_rates(these, rates, sizes[rung + 1])
        return runs

    def _wave(self, jobs: list[Job]) -> list[RunRecord]:
        """`jobs`' records: read back from the log, or trained now (here, one after the
        other, or on the executor, as they finish) and appended to it."""
        for job in jobs:
            if job.key in self.resumed:
                self.keeper.find(job.key)
                acc = self.done[job.key].metrics.accuracy
                text = f"resumed from {self.output} (test accuracy {acc:.4f})"
                self.progress.resumed(job.tag, job.seed, text)
        todo = [job for job in jobs if job.key not in self.done]
        if self.dispatch is not None:
            finished = self.dispatch(todo, self.progress)
        else:
            finished = (self._here(job) for job in todo)
        for job, record, model in finished:
            self._finish(job, record, model)
        return [self.done[job.key] for job in jobs]

    def _here(self, job: Job) -> tuple[Job, RunRecord, Model]:
        self.progress.start_run(job.tag, job.seed)
        return (job, *train_job(self.plan, self.settings, job))

    def _finish(self, job: Job, record: RunRecord, model: Model | None) -> None:
        """A run just trained: into the log, the keeper and the progress lines."""
        if self.log is not None:
            self.log.append(record)
        self.done[job.key] = record
        if model is not None:
            self.keeper.add(job.key, model)
        cached = " (cached prefix)" if record.cache.used else ""
        text = (
            f"test accuracy {record.metrics.accuracy:.4f}, macro F1 "
            f"{record.metrics.f1_macro:.4f}, {record.timing.train_seconds:.1f} s{cached}"
        )
        if self.dispatch is None:
            self.progress.finish_run(text)
        else:
            self.progress.arrived(job.tag, job.seed, text)
        gc.collect()  # the run's model and traced functions
