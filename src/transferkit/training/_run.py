"""One training run, as named steps: check, prepare, plan the cache, run the phases, finish."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras

from .. import _serial
from ..freezing._copy import copy_model
from ..freezing._freeze import RecompileWarning
from ..freezing._heads import pretrained_weights
from ..freezing._layers import ensure_built
from ..strategies._l2sp import Penalty, attach_l2sp
from ..strategies._phase import Phase
from ..strategies._strategy import Strategy
from ..timing import TrainingTiming, count_params, throughput
from ..types import Model
from ._cache import CacheInfo, FeatureCache
from ._data import ArrayData, check_class_weight, check_pair, default_loss
from ._phases import PhaseRecord, PhaseRunner, check_phases, phase_optimizer, strategy_phases
from ._settings import TrainSettings, make_optimizer


@dataclass(frozen=True)
class FitResult:
    """The outcome of `fine_tune`.

    Attributes:
        model: The trained model (a copy of the input unless `copy=False`), as the
            strategy's `finish` returns it (for `LoRA`, a plain copy with merged adapters).
        history: Per-epoch metrics as plain lists (`loss`, `accuracy`, `val_loss`, ...).
        timing: Wall time, seconds per epoch, throughput and parameter counts. Its
            `train_seconds` includes computing cached activations.
        strategy: The strategy's name.
        epochs: Epochs trained.
        seed: The seed the run used, or `None`.
        cache: Whether frozen-prefix activations were cached, and why (not): the first phase
            that used the cache, else the first phase.
        phases: One `PhaseRecord` per phase (epochs, time, learning rate, cache, early stop).
    """

    model: Model
    history: dict[str, list[float]]
    timing: TrainingTiming
    strategy: str
    epochs: int
    seed: int | None
    cache: CacheInfo
    phases: tuple[PhaseRecord, ...] = ()

    @property
    def best_epoch(self) -> int | None:
        """With early stopping, the 1-based epoch whose weights the last phase kept."""
        return self.phases[-1].best_epoch if self.phases else None

    @property
    def stopped_epoch(self) -> int | None:
        """The 1-based epoch at which early stopping ended the last phase, or `None`."""
        return self.phases[-1].stopped_epoch if self.phases else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of everything but the model."""
        return _serial.to_dict(self, drop=("model",))


def check_run(
    model: Model, strategy: Strategy, settings: TrainSettings, train: Any, validation: Any
) -> tuple[ArrayData | None, ArrayData | None]:
    """Everything that can fail before training: the strategy on `model`, and the data."""
    ensure_built(model)
    strategy.validate(model)
    strategy_phases(strategy, model, settings.epochs)  # bad phase settings fail now
    arrays = check_pair(train, validation, model)
    settings.check_validation(validation)
    check_class_weight(settings.class_weight, model)
    return arrays


def prepare(
    model: Model, strategy: Strategy, settings: TrainSettings, *, copy: bool
) -> tuple[Model, Model]:
    """The copy (or `model`) and the model the strategy made of it to train."""
    policy = None if settings.precision in (None, "float32") else settings.precision
    work = copy_model(model, dtype_policy=policy) if copy else model
    with warnings.catch_warnings():
        # `prepare` may change flags on a model the caller compiled (copy=False); the
        # RecompileWarning's advice is moot here because the model is compiled again below.
        warnings.simplefilter("ignore", RecompileWarning)
        return work, strategy.prepare(work)


@contextmanager
def open_store(
    cache: bool | FeatureCache, train: ArrayData | None, validation: Any, val: Any
) -> Iterator[tuple[FeatureCache | None, str]]:
    """The activation cache of a run and why it is off; a run's own cache closes after it."""
    off = ""
    if cache is False:
        off = "turned off (cache=False)"
    elif train is None or (validation is not None and val is None):
        off = (
            "the data are not NumPy arrays (a dataset may give other batches each epoch); for "
            "the cached fast path pass `(x, y)` arrays, e.g. a folder of images read by "
            "`transferkit.datasets.from_directory(...)`, or declare a dataset that gives the "
            "same samples every epoch with `cache=FeatureCache(deterministic=True)`"
        )
    store = None if off else cache if isinstance(cache, FeatureCache) else FeatureCache()
    try:
        yield store, off
    finally:
        if store is not None and store is not cache:
            store.close()  # this run's own cache: its spilled files go now, even on error


def run_phases(
    runner: PhaseRunner, phases: tuple[Phase, ...], settings: TrainSettings, penalty: Any
) -> tuple[list[PhaseRecord], dict[str, list[float]], Any]:
    """Each phase with a fresh optimizer; the records, the joined history, the last optimizer."""
    records: list[PhaseRecord] = []
    history: dict[str, list[float]] = {}
    optimizer: Any = None
    try:
        for index, phase in enumerate(phases):
            optimizer = phase_optimizer(
                phase, settings.optimizer, settings.learning_rate, make_optimizer, runner.prepared
            )
            record, values = runner.run(index, phase, optimizer)
            records.append(record)
            for key, vals in values.items():
                history.setdefault(key, []).extend(vals)
    finally:
        if penalty is not None:  # the returned (or caller's) model carries no L2-SP term
            penalty.detach()
    return records, history, optimizer


def finish(
    strategy: Strategy,
    prepared: Model,
    last: Phase,
    optimizer: Any,
    settings: TrainSettings,
    compile_kwargs: dict[str, Any],
) -> Model:
    """The model to return, compiled as the run trained it (e.g. LoRA merges its adapters)."""
    hook = getattr(strategy, "finish", None)
    final = hook(prepared) if callable(hook) else prepared
    if getattr(final, "optimizer", None) is not optimizer:  # the remainder trained, or
        # `finish` returned a new model: compile it as the run did
        final.compile(
            optimizer=phase_optimizer(
                last, settings.optimizer, settings.learning_rate, make_optimizer, final
            ),
            **{k: compile_kwargs[k] for k in ("loss", "metrics")},
        )
    return final


def timing_of(
    runner: PhaseRunner, prepared: Model, train: ArrayData | None, seconds: float
) -> TrainingTiming:
    """The run's timing record from its epochs."""
    n, epochs = (None if train is None else len(train)), runner.epoch_seconds
    # train_seconds, epoch_seconds, samples_per_second, trainable_params, total_params
    return TrainingTiming(
        float(seconds), tuple(epochs), throughput(n, epochs), *count_params(prepared)
    )


def _penalty(strategy: Strategy, prepared: Model, work: Model) -> Penalty | None:
    """L2-SP on `prepared`: its pretrained weights pulled to their start, new ones to zero.

    Pretrained: the weights of the copy before the strategy prepared it, except a head made
    by `replace_head` (before the comparison, or by the strategy), which is new.
    """
    if (regularizer := getattr(strategy, "regularizer", None)) is None:
        return None
    return attach_l2sp(prepared, regularizer, pretrained_weights(work))


@contextmanager
def quiet_retracing() -> Iterator[None]:
    """Drops TensorFlow's "triggered tf.function retracing" note meanwhile: each run's new
    model traces its own functions, which TensorFlow counts as retracing Keras's one function."""

    def note(record: logging.LogRecord) -> bool:  # a new filter per use: they may nest
        return "triggered tf.function retracing" not in record.getMessage()

    logger = logging.getLogger("tensorflow")
    logger.addFilter(note)
    try:
        yield
    finally:
        logger.removeFilter(note)


@quiet_retracing()
def run_strategy(
    model: Model,
    train: Any,
    validation: Any,
    strategy: Strategy,
    settings: TrainSettings,
    *,
    seed: int | None,
    copy: bool = True,
) -> tuple[FitResult, tuple[Model, Any] | None]:
    """Train a copy of `model` (or `model`) with `strategy`: `fine_tune` without the checks
    of its arguments, for callers that hold checked `TrainSettings`.

    Also returns a model and input whose outputs are the trained model's on the validation
    arrays: the last phase's remainder and its cached activations of them, when the run's
    model is the one it trained (no `finish` made another); else `None`.
    """
    settings = settings.for_model(model).for_strategy(strategy)
    train_arrays, val_arrays = check_run(model, strategy, settings, train, validation)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    work, prepared = prepare(model, strategy, settings, copy=copy)
    phases = strategy_phases(strategy, prepared, settings.epochs)
    check_phases(prepared, phases, strategy.name)
    loss = settings.loss
    if loss is None:
        loss = default_loss(prepared, train_arrays.one_hot if train_arrays else None)
    start, compile_kwargs = time.perf_counter(), settings.compile_kwargs(loss)
    penalty = _penalty(strategy, prepared, work)
    with open_store(settings.cache, train_arrays, validation, val_arrays) as (store, off):
        runner = PhaseRunner(
            prepared=prepared,
            train=train_arrays,
            train_data=train,
            validation=val_arrays,
            validation_data=validation,
            store=store,
            cache_off_reason=off,
            settings=settings,
            compile_kwargs=compile_kwargs,
            callbacks=[*settings.callbacks, *([penalty.logger()] if penalty else [])],
            seed=seed,
        )
        records, history, optimizer = run_phases(runner, phases, settings, penalty)
    final = finish(strategy, prepared, phases[-1], optimizer, settings, compile_kwargs)
    result = FitResult(
        model=final,
        history=history,
        timing=timing_of(runner, prepared, train_arrays, time.perf_counter() - start),
        strategy=strategy.name,
        epochs=runner.epochs_done,
        seed=seed,
        cache=next((r.cache for r in records if r.cache.used), records[0].cache),
        phases=tuple(records),
    )
    return result, runner.cached_validation() if final is prepared else None
