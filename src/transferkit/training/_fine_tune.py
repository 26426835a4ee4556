"""`fine_tune`: prepare a copy of a model with a strategy, compile it, train it, time it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import keras

from .._validate import check_learning_rate, check_positive_int
from ..freezing._copy import copy_model
from ..freezing._freeze import RecompileWarning
from ..freezing._layers import ensure_built
from ..strategies._l2sp import attach_l2sp
from ..strategies._resolve import resolve_strategy
from ..strategies._strategy import Strategy
from ..timing import TrainingTiming, count_params
from ..types import Model
from ._cache import CacheInfo, FeatureCache
from ._callbacks import EarlyStoppingSpec, check_early_stopping
from ._data import ArrayData, Data, check_pair, default_loss
from ._phases import PhaseRecord, PhaseRunner, check_phases, phase_optimizer, strategy_phases

Auto = Literal["auto"]


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
        return {
            "strategy": self.strategy,
            "epochs": self.epochs,
            "seed": self.seed,
            "history": self.history,
            "timing": self.timing.to_dict(),
            "cache": self.cache.to_dict(),
            "phases": [p.to_dict() for p in self.phases],
        }


def _backend() -> str:
    return str(keras.backend.backend())


def default_steps_per_execution() -> int:
    """`steps_per_execution` used by `"auto"`, chosen per backend from measurements.

    On this project's reference CPU (2 cores) TensorFlow ran full fine-tuning of the lab CNN
    about 20% faster per epoch with 16 steps per execution; JAX also gains; the PyTorch
    trainer runs one step at a time, and so does TensorFlow inside a `tf.distribute` scope.
    """
    backend = _backend()
    if backend == "torch":
        return 1
    if backend == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        if tf.distribute.has_strategy():
            return 1  # Keras's multi-step loop fails under MirroredStrategy (placeholder error)
    return 16


def default_jit_compile() -> bool:
    """`jit_compile` used by `"auto"`: XLA for JAX; off on TensorFlow CPU (measured slower)."""
    backend = _backend()
    if backend == "jax":
        return True
    if backend == "tensorflow":
        import tensorflow as tf  # only reached on the TensorFlow backend

        return bool(tf.config.list_physical_devices("GPU"))
    return False


def make_optimizer(optimizer: str | Any, learning_rate: float | None) -> Any:
    """A fresh optimizer: from a name, or a copy of an optimizer instance's configuration."""
    if isinstance(optimizer, str):
        config: dict[str, Any] = {} if learning_rate is None else {"learning_rate": learning_rate}
        try:
            return keras.optimizers.get({"class_name": optimizer, "config": config})
        except ValueError as err:
            raise ValueError(
                f"Unknown `optimizer` {optimizer!r}: use a Keras optimizer name such as 'adam', "
                f"'sgd' or 'adamw', or an optimizer instance. ({err})"
            ) from err
    if isinstance(optimizer, keras.optimizers.Optimizer):
        fresh = type(optimizer).from_config(optimizer.get_config())
        if learning_rate is not None:
            fresh.learning_rate = learning_rate
        return fresh
    raise TypeError(
        "`optimizer` must be an optimizer name or a `keras.optimizers.Optimizer`. "
        f"Received: {optimizer!r}"
    )


def _validate_common(
    epochs: int, batch_size: int, seed: int | None, learning_rate: float | None
) -> tuple[int, int, int | None]:
    """The settings as plain ints (NumPy integers accepted); raises for invalid ones."""
    check_learning_rate(learning_rate)
    seed = None if seed is None else check_positive_int(seed, "seed", allow_zero=True)
    return check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size"), seed


def fine_tune(
    model: Model,
    train: Data,
    *,
    validation: Data | None = None,
    strategy: Strategy | str = "full",
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str | Any = "adam",
    learning_rate: float | None = None,
    loss: Any = None,
    callbacks: Sequence[Any] = (),
    seed: int | None = None,
    verbose: int | Auto = "auto",
    metrics: Sequence[Any] = ("accuracy",),
    copy: bool = True,
    cache: bool | FeatureCache = True,
    steps_per_execution: int | Auto = "auto",
    jit_compile: bool | Auto = "auto",
    precision: str | None = None,
    early_stopping: EarlyStoppingSpec = None,
) -> FitResult:
    """Train a copy of `model` with a transfer-learning strategy, in one call.

    The model is copied (weights and flags) and prepared by the strategy (new head,
    re-initialisation); then the strategy's phases run back to back on it. Each phase sets
    the trainable flags, compiles afresh with a fresh optimizer (so flags take effect
    identically on every backend) and trains with `fit`. When a phase leaves a frozen,
    deterministic prefix and the data are NumPy arrays, the prefix's activations are computed
    once (and reused by later phases and runs with the same prefix) and only the remainder
    trains on them: the same training with less compute (`cache=False` turns this off).
    Callbacks always see the full model being trained.

    Args:
        model: A built `keras.Model` (the pretrained starting point). Not mutated unless
            `copy=False`.
        train: `(x, y)` NumPy arrays (integer or one-hot labels) or anything Keras `fit`
            accepts (tf.data, `keras.utils.PyDataset`, ...).
        validation: Same forms as `train`, or `None`. Defaults to `None`.
        strategy: A `Strategy` or its name (`"full"`, `"partial"`, `"feature_extractor"`).
            The strategy's own `epochs`, `optimizer` and `learning_rate` override the
            arguments here. Defaults to `"full"`.
        epochs: int. Defaults to `10`.
        batch_size: int. Used for NumPy data. NumPy validation data are evaluated in
            batches of at least 256, cached activations in batches of at least 2048 (forward
            passes only, so training is unchanged and validation is cheaper). Defaults to `32`.
        optimizer: Optimizer name or instance (copied, never reused). Defaults to `"adam"`.
        learning_rate: float or None. Defaults to `None` (the optimizer's default).
        loss: A Keras loss or `None` to pick cross-entropy from the labels (sparse for integer
            labels, categorical for one-hot, binary for one output; `from_logits` when the
            output layer has no activation). Defaults to `None`.
        callbacks: Keras callbacks. Defaults to `()`.
        seed: int or None. Seeds Python, NumPy and the backend
            (`keras.utils.set_random_seed`), so two runs with the same seed on the same
            backend give the same history. Defaults to `None`.
        verbose: Keras `fit` verbosity. Defaults to `"auto"`.
        metrics: Keras metrics. Defaults to `("accuracy",)`.
        copy: bool. Train a copy (`True`) or `model` itself. Defaults to `True`.
        cache: bool or `FeatureCache`. Use the frozen-prefix activation cache. Over the
            cache's memory budget the activations are spilled to a temporary file and streamed
            from disk (deleted when the run ends); pass `FeatureCache(budget_bytes=...,
            cache_dir=...)` to set the budget and where the files go. Defaults to `True`.
        steps_per_execution: int or `"auto"` (per-backend measured default; at least 64 for
            a remainder on cached activations on TensorFlow and JAX). Defaults to `"auto"`.
        jit_compile: bool or `"auto"` (XLA on JAX and on TensorFlow with a GPU; off on
            TensorFlow CPU, where it measured slower). Defaults to `"auto"`.
        precision: None, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`. Opt-in mixed
            precision: the copy computes in 16 bits (variables and the output layer stay
            float32). bfloat16 pays off on CPUs with AVX512_BF16/AMX and on recent GPUs; see
            the performance guide for its measured effect. Needs `copy=True`. Defaults to
            `None` (the layers' own policies).
        early_stopping: None, int or `keras.callbacks.EarlyStopping`. Stop each phase when
            the monitored metric stops improving and keep its best epoch's weights: an int is
            the patience on `val_loss` (with `restore_best_weights=True`); an `EarlyStopping`
            is copied afresh for each phase. Defaults to `None`.

    Returns:
        A `FitResult` with the trained model, history (with a `"phase"` entry per epoch),
        timing, cache record and one `PhaseRecord` per phase.

    Raises:
        ValueError: Before any training, for bad data (mismatched lengths, NaN/inf, labels out
            of range for the head, wrong shape), an unknown strategy, or invalid settings.
        TypeError: If `model` is not a `keras.Model`.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import fine_tune

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    x, y = np.random.rand(64, 8).astype("float32"), np.random.randint(0, 3, 64)
    result = fine_tune(model, (x, y), strategy="feature_extractor", epochs=2, seed=0, verbose=0)
    assert len(result.history["loss"]) == 2
    ```
    """
    ensure_built(model)
    strat = resolve_strategy(strategy)
    epochs = strat.epochs or epochs
    epochs, batch_size, seed = _validate_common(epochs, batch_size, seed, learning_rate)
    strat.validate(model)
    strategy_phases(strat, model, epochs)  # bad phase settings fail before anything runs
    if steps_per_execution != "auto" and (
        isinstance(steps_per_execution, bool)
        or not isinstance(steps_per_execution, int)
        or steps_per_execution < 1
    ):
        raise ValueError(
            "`steps_per_execution` must be a positive int or 'auto'. "
            f"Received: steps_per_execution={steps_per_execution!r}"
        )
    train_arrays, val_arrays = check_pair(train, validation, model)
    if precision not in (None, "float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(
            "`precision` must be None, 'float32', 'mixed_bfloat16' or 'mixed_float16'. "
            f"Received: precision={precision!r}"
        )
    if precision not in (None, "float32") and not copy:
        raise ValueError(
            "`precision` needs `copy=True`: a model's dtype policy cannot be changed in place."
        )
    check_early_stopping(early_stopping, has_validation=validation is not None, metrics=metrics)
    base_optimizer = strat.optimizer or optimizer
    base_lr = strat.learning_rate or learning_rate
    make_optimizer(base_optimizer, base_lr)  # an unknown optimizer fails before training

    if seed is not None:
        keras.utils.set_random_seed(seed)
    policy = None if precision in (None, "float32") else precision
    work = copy_model(model, dtype_policy=policy) if copy else model
    with warnings.catch_warnings():
        # `prepare` may change flags on a model the caller compiled (copy=False); the
        # RecompileWarning's advice is moot here because the model is compiled again below.
        warnings.simplefilter("ignore", RecompileWarning)
        prepared = strat.prepare(work)
    phases = strategy_phases(strat, prepared, epochs)
    check_phases(prepared, phases, strat.name)
    if loss is None:
        loss = default_loss(prepared, train_arrays.one_hot if train_arrays else None)

    start = time.perf_counter()
    off = ""
    if cache is False:
        off = "turned off (cache=False)"
    elif train_arrays is None or (validation is not None and val_arrays is None):
        off = "the data are not NumPy arrays"
    store = None if off else cache if isinstance(cache, FeatureCache) else FeatureCache()
    compile_kwargs: dict[str, Any] = {
        "loss": loss,
        "metrics": list(metrics),
        "steps_per_execution": (
            default_steps_per_execution() if steps_per_execution == "auto" else steps_per_execution
        ),
        "jit_compile": default_jit_compile() if jit_compile == "auto" else jit_compile,
    }
    regularizer = getattr(strat, "regularizer", None)
    penalty = None if regularizer is None else attach_l2sp(prepared, regularizer, work.weights)
    runner = PhaseRunner(
        prepared=prepared,
        train=train_arrays,
        train_data=train,
        validation=val_arrays,
        validation_data=validation,
        store=store,
        cache_off_reason=off,
        batch_size=batch_size,
        compile_kwargs=compile_kwargs,
        callbacks=[*callbacks, *([penalty.logger()] if penalty else [])],
        early_stopping=early_stopping,
        seed=seed,
        verbose=verbose,
        auto_steps=steps_per_execution == "auto",
    )
    records: list[PhaseRecord] = []
    history: dict[str, list[float]] = {}
    optimizer_used: Any = None
    try:
        for index, phase in enumerate(phases):
            optimizer_used = phase_optimizer(
                phase, base_optimizer, base_lr, make_optimizer, prepared
            )
            record, values = runner.run(index, phase, optimizer_used)
            records.append(record)
            for key, vals in values.items():
                history.setdefault(key, []).extend(vals)
    finally:
        if penalty is not None:  # the returned (or caller's) model carries no L2-SP term
            penalty.detach()
        if store is not None and store is not cache:
            store.close()  # this run's own cache: its spilled files go now, even on error
    finish = getattr(strat, "finish", None)  # e.g. LoRA merges its adapters here
    final = finish(prepared) if callable(finish) else prepared
    if getattr(final, "optimizer", None) is not optimizer_used:  # the remainder trained, or
        last = phases[-1]  # `finish` returned a new model: compile it as the run did
        final.compile(
            optimizer=phase_optimizer(last, base_optimizer, base_lr, make_optimizer, final),
            **{k: compile_kwargs[k] for k in ("loss", "metrics")},
        )
    total = time.perf_counter() - start
    trainable, total_params = count_params(prepared)
    timing = TrainingTiming(
        train_seconds=float(total),
        epoch_seconds=tuple(runner.epoch_seconds),
        samples_per_second=(
            len(train_arrays) * len(runner.epoch_seconds) / sum(runner.epoch_seconds)
            if train_arrays is not None and sum(runner.epoch_seconds) > 0
            else None
        ),
        trainable_params=trainable,
        total_params=total_params,
    )
    used = [r.cache for r in records if r.cache.used]
    return FitResult(
        model=final,
        history=history,
        timing=timing,
        strategy=strat.name,
        epochs=runner.epochs_done,
        seed=seed,
        cache=used[0] if used else records[0].cache,
        phases=tuple(records),
    )


__all__ = ["ArrayData", "FitResult", "fine_tune"]
