"""Running a strategy's phases back to back: freeze, plan the cache, compile, fit, record."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np

from .. import _serial
from .._chunks import return_free_memory
from ..freezing._freeze import RecompileWarning, TrainableState, freeze
from ..strategies._phase import Phase
from ..strategies._rates import block_multipliers, with_rates
from ..strategies._strategy import Strategy
from ..timing import EpochTimer, count_params
from ..types import Model
from ._cache import CacheInfo, CachePlan, FeatureCache, plan_cache
from ._callbacks import give_back, make_early_stopping, see_full_model
from ._data import ArrayData
from ._feed import (
    CACHED_VALIDATION_BATCH_SIZE,
    cached_compile,
    cached_input,
    even_batch,
    remainder_threads,
)
from ._settings import TrainSettings
from ._spill import stream_fit_data

VALIDATION_BATCH = 256
"""Smallest batch size `fine_tune` validates NumPy data with (forward passes only)."""


class _ReturnMemory(keras.callbacks.Callback):  # type: ignore[misc]
    """Hands the heap's freed pages back to the OS after every epoch (`return_free_memory`)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        return_free_memory()


def strategy_phases(strategy: Strategy, model: Model, epochs: int) -> tuple[Phase, ...]:
    """A strategy's phases on `model`, each with its epochs resolved; validated."""
    method = getattr(strategy, "phases", None)
    phases = tuple(method(model, epochs)) if callable(method) else (Phase(epochs=epochs),)
    if not phases or not all(isinstance(p, Phase) for p in phases):
        raise ValueError(
            f"Strategy {strategy.name!r} must return at least one `Phase` from `phases()`. "
            f"Received: {phases!r}"
        )
    return tuple(
        replace(p, epochs=p.epochs or epochs, name=p.name or f"phase{i}")
        for i, p in enumerate(phases)
    )


def apply_phase(model: Model, phase: Phase) -> None:
    """Set `model`'s trainable flags for `phase` (no-op when it keeps the prepared flags)."""
    if phase.freeze_upto is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecompileWarning)  # every phase compiles afresh
            freeze(model, phase.freeze_upto, train_bn=phase.train_bn)


def check_phases(model: Model, phases: Sequence[Phase], strategy: str) -> None:
    """Raise `ValueError` if a phase would train nothing; `model`'s flags are left as found."""
    state = TrainableState.capture(model)
    try:
        for i, phase in enumerate(phases):
            apply_phase(model, phase)
            if not model.trainable_weights:
                raise ValueError(
                    f"Phase {i} ({phase.name!r}) of strategy {strategy!r} has nothing to train: "
                    f"every weight is frozen (freeze_upto={phase.freeze_upto!r}). Freeze fewer "
                    "layers in that phase."
                )
            phase_multipliers(model, phase)
    finally:
        state.restore()


def phase_multipliers(model: Model, phase: Phase) -> dict[str, float] | None:
    """Per-variable rate multipliers of `phase` on `model` (with its flags set as they are)."""
    return block_multipliers(
        model,
        lr_mult=phase.lr_mult,
        layer_decay=phase.layer_decay,
        blocks=phase.blocks,
        phase=phase.name,
    )


def phase_optimizer(
    phase: Phase, base: str | Any, base_lr: Any, make: Any, model: Model | None = None
) -> Any:
    """A fresh optimizer for `phase`: its own, or the base one at `lr_scale` times the rate.

    With per-layer rates on the phase, the optimizer is wrapped in `LayerRates` with the
    multipliers of `model` under the phase's flags (`model`'s flags are left as found); a
    `LayerRates` optimizer has its own multipliers multiplied in.
    """
    opt = _scaled_optimizer(phase, base, base_lr, make)
    if model is None or (phase.lr_mult is None and phase.layer_decay is None):
        return opt
    state = TrainableState.capture(model)
    try:
        apply_phase(model, phase)
        multipliers = phase_multipliers(model, phase)
    finally:
        state.restore()
    return opt if multipliers is None else with_rates(opt, multipliers)


def _scaled_optimizer(phase: Phase, base: str | Any, base_lr: Any, make: Any) -> Any:
    opt = make(phase.optimizer or base, phase.learning_rate or base_lr)
    if phase.learning_rate is None and phase.lr_scale != 1.0:
        rate = opt.learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                f"Phase {phase.name!r} scales the learning rate (lr_scale={phase.lr_scale}), "
                "which cannot scale a schedule: give the phase its own `learning_rate`."
            )
        opt.learning_rate = float(keras.ops.convert_to_numpy(rate)) * phase.lr_scale
    return opt


def fit_view(model: Model) -> Model:
    """The model whose `fit` trains `model` with Keras's own batching and shuffling.

    keras-hub tasks (e.g. `ImageClassifier`) batch NumPy inputs themselves and ignore
    `shuffle`, so every seed would see the same batch order; a Functional view sharing their
    layers trains the same weights the Keras way. Other models train as they are.
    """
    if type(model).fit is keras.Model.fit or getattr(model, "preprocessor", None) is not None:
        return model
    return keras.Model(model.inputs, model.outputs, name=model.name)


def _initial_rate(opt: Any) -> float | None:
    rate = opt.learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return None
    return float(f"{float(keras.ops.convert_to_numpy(rate)):.7g}")


@dataclass(frozen=True)
class _FitPlan:
    """What one phase's `fit` runs on: the model that trains and its inputs."""

    trained: Model
    x: Any
    y: Any
    validation: Any
    info: CacheInfo
    cached: bool = False
    streamed: bool = False
    compile: dict[str, Any] | None = None
    features: dict[str, Any] | None = None  # cached activations in memory, by data set


@dataclass
class PhaseRunner:
    """Everything a run's phases share: the model, data, cache store and fit settings."""

    prepared: Model
    train: ArrayData | None
    train_data: Any
    validation: ArrayData | None
    validation_data: Any
    store: FeatureCache | None
    cache_off_reason: str
    settings: TrainSettings
    compile_kwargs: dict[str, Any]
    callbacks: Sequence[Any]
    seed: int | None
    epochs_done: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    last: _FitPlan | None = None

    def _plan(self) -> CachePlan | CacheInfo:
        if self.store is None:
            return CacheInfo(used=False, reason=self.cache_off_reason)
        assert self.train is not None
        arrays = {"train": self.train.x}
        if self.validation is not None:
            arrays["validation"] = self.validation.x
        return plan_cache(
            self.prepared, arrays, cache=self.store, batch_size=self.settings.batch_size
        )

    def _fit_plan(self, index: int, epochs: int) -> _FitPlan:
        """The model to `fit` and its data: the full model, or the remainder on activations."""
        plan = self._plan()
        val = None if self.validation is None else (self.validation.x, self.validation.y)
        if not isinstance(plan, CachePlan):
            x, y = (self.train.x, self.train.y) if self.train else (self.train_data, None)
            val = val if self.validation is not None else self.validation_data
            return _FitPlan(fit_view(self.prepared), x, y, val, plan)
        assert self.train is not None
        if plan.info.location == "disk":
            size = self.settings.batch_size
            # The order's seed is fixed before `fit` re-seeds: the same for every backend.
            seed = (self.seed + index) if self.seed is not None else int(np.random.randint(2**31))
            y_val = None if self.validation is None else self.validation.y
            x, val = stream_fit_data(
                plan.features, self.train.y, y_val, size, max(size, VALIDATION_BATCH), seed
            )
            return _FitPlan(plan.remainder, x, None, val, plan.info, cached=True, streamed=True)
        if self.validation is not None:
            val = (cached_input(plan.features["validation"]), self.validation.y)
        steps = -(-len(self.train) // self.settings.batch_size) * epochs
        kwargs = cached_compile(self.settings, self.compile_kwargs, steps)
        x = cached_input(plan.features["train"])
        return _FitPlan(
            plan.remainder, x, self.train.y, val, plan.info, cached=True, compile=kwargs,
            features=plan.features,
        )  # fmt: skip

    def cached_validation(self) -> tuple[Model, Any] | None:
        """The last phase's trained remainder and its cached activations of the validation
        arrays (the full model's outputs without running its frozen prefix), if that phase
        trained on activations in memory."""
        last = self.last
        if last is None or last.features is None or "validation" not in last.features:
            return None
        return last.trained, last.features["validation"]

    def _fit_kwargs(self, fit: _FitPlan) -> dict[str, Any]:
        """Batch sizes (none for a stream: it batches itself, as any PyDataset), class weights."""
        size, weights = self.settings.batch_size, self.settings.class_weight
        kwargs: dict[str, Any] = {} if weights is None else {"class_weight": dict(weights)}
        if self.train is None and not isinstance(fit.x, keras.utils.PyDataset):
            kwargs["shuffle"] = False  # Keras shuffles no tf.data (it warns each run): they do
        if fit.streamed:
            return kwargs
        if self.train:
            kwargs["batch_size"] = size
        if self.validation is not None:
            # Validation only runs forward: bigger batches are cheaper and leave training as is;
            # cached, of equal size (10,000 as 5 x 2,000): one batch shape, one compilation.
            even = even_batch(len(self.validation), max(size, CACHED_VALIDATION_BATCH_SIZE))
            kwargs["validation_batch_size"] = even if fit.cached else max(size, VALIDATION_BATCH)
        return kwargs

    def run(
        self, index: int, phase: Phase, optimizer: Any
    ) -> tuple[PhaseRecord, dict[str, list[float]]]:
        """Train `phase`; return its record and its history (one entry per epoch)."""
        start = time.perf_counter()
        apply_phase(self.prepared, phase)
        assert phase.epochs is not None
        fit = self.last = self._fit_plan(index, phase.epochs)
        with warnings.catch_warnings():
            if self.settings.jit_compile == "auto":  # Keras falls back from XLA where it must
                warnings.filterwarnings("ignore", "Model doesn't support `jit_compile")
            fit.trained.compile(optimizer=optimizer, **(fit.compile or self.compile_kwargs))
        if self.seed is not None:
            # Re-seed right before `fit` (offset per phase): computing cached activations may
            # draw from the backend's RNG, and training must not depend on whether it ran.
            keras.utils.set_random_seed(self.seed + index)
        timer = EpochTimer(num_samples=len(self.train) if self.train is not None else None)
        stopper = make_early_stopping(self.settings.early_stopping)
        callbacks = [timer, _ReturnMemory(), *([stopper] if stopper else [])]
        callbacks += see_full_model(self.callbacks, self.prepared, fit.trained)
        try:
            with remainder_threads() if fit.cached else nullcontext():
                history = fit.trained.fit(
                    fit.x,
                    fit.y,
                    validation_data=fit.validation,
                    initial_epoch=self.epochs_done,
                    epochs=self.epochs_done + phase.epochs,
                    callbacks=callbacks,
                    verbose=self.settings.verbose,
                    **self._fit_kwargs(fit),
                )
        finally:
            give_back(callbacks)
        return_free_memory()
        self.epoch_seconds.extend(timer.epoch_seconds)
        epochs = len(history.epoch)
        best = stopped = None
        if stopper is not None and stopper.best is not None:
            best = int(stopper.best_epoch) + 1
            stopped = int(stopper.stopped_epoch) + 1 if stopper.stopped_epoch else None
        record = PhaseRecord(
            name=phase.name,
            epochs=epochs,
            seconds=time.perf_counter() - start,
            learning_rate=_initial_rate(optimizer),
            trainable_params=count_params(self.prepared)[0],
            cache=fit.info,
            jit_compile=bool(fit.trained.jit_compile),
            best_epoch=best,
            stopped_epoch=stopped,
        )
        self.epochs_done += epochs
        values = {k: [float(v) for v in vs] for k, vs in history.history.items()}
        values["phase"] = [float(index)] * epochs
        return record, values


@dataclass(frozen=True)
class PhaseRecord(_serial.Record):
    """What one phase of a run did.

    Attributes:
        name: The phase's name (`"phase0"` when it has none).
        epochs: Epochs trained (fewer than planned if early stopping stopped it).
        seconds: Wall time of the phase, computing cached activations included.
        learning_rate: The phase's initial learning rate, or `None` for a schedule.
        trainable_params: Parameters that trained in the phase.
        cache: Whether the phase trained on cached activations, and why (not).
        jit_compile: Whether the phase's training step was compiled with XLA (on PyTorch,
            `torch.compile`); see `fine_tune`'s `jit_compile`.
        best_epoch: With early stopping, the epoch (1-based, counted over the run) whose
            weights the phase kept; else `None`.
        stopped_epoch: The epoch (1-based) at which early stopping ended the phase, or `None`.
    """

    name: str
    epochs: int
    seconds: float
    learning_rate: float | None
    trainable_params: int
    cache: CacheInfo
    jit_compile: bool = False
    best_epoch: int | None = None
    stopped_epoch: int | None = None
