"""`fine_tune`: train a copy of a model with a strategy, in one call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._validate import check_positive_int
from ..strategies._resolve import resolve_strategy
from ..strategies._strategy import Strategy
from ..types import Model
from ._cache import FeatureCache
from ._callbacks import EarlyStoppingSpec
from ._data import Data, read_declared, read_once
from ._run import FitResult, run_strategy
from ._settings import Auto, TrainSettings


def fine_tune(
    model: Model,
    train: Data,
    *,
    validation: Data | None = None,
    strategy: Strategy | str = "full",
    epochs: int = 10,
    batch_size: int = 32,
    optimizer: str | Any | None = None,
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
    class_weight: Mapping[int, float] | None = None,
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
        validation: Same forms as `train`, or `None`. A dataset is read once into NumPy
            arrays before training (so it must end), then used as arrays are. Defaults to
            `None`.
        strategy: A `Strategy` or its name (`"full"`, `"partial"`, `"feature_extractor"`).
            The strategy's own `epochs`, `optimizer` and `learning_rate` override the
            arguments here. Defaults to `"full"`.
        epochs: int. Defaults to `10`.
        batch_size: int. Used for NumPy data. Validation data are evaluated in
            batches of at least 256, cached activations in batches of at least 2048 (forward
            passes only, so training is unchanged and validation is cheaper). Defaults to `32`.
        optimizer: Optimizer name or instance (copied, never reused), or `None`: a fresh
            copy of the optimizer `model` was compiled with, and Adam for a model that was not
            compiled. Defaults to `None`.
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
        jit_compile: bool or `"auto"` (XLA on JAX and on TensorFlow with a GPU; on TensorFlow
            CPU only for a remainder on cached activations trained for at least 2,000 steps,
            where it measured faster, and off for the full model, where it measured slower).
            Each phase's `PhaseRecord.jit_compile` says what it used. Defaults to `"auto"`.
        precision: None, `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`. Opt-in mixed
            precision: the copy computes in 16 bits (variables and the output layer stay
            float32). bfloat16 pays off on CPUs with AVX512_BF16/AMX and on recent GPUs; see
            the performance guide for its measured effect. Needs `copy=True`. Defaults to
            `None` (the layers' own policies).
        early_stopping: None, int or `keras.callbacks.EarlyStopping`. Stop each phase when
            the monitored metric stops improving and keep its best epoch's weights: an int is
            the patience on `val_loss` (with `restore_best_weights=True`); an `EarlyStopping`
            is copied afresh for each phase. Defaults to `None`.
        class_weight: dict or None. Weights of the classes in the loss, as Keras `fit` takes
            them (`{class_id: weight}`), e.g. to balance rare classes. Defaults to `None`.

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
    strat = resolve_strategy(strategy)
    settings = TrainSettings.of(locals(), epochs=strat.epochs or epochs)
    if settings.precision not in (None, "float32") and not copy:
        raise ValueError(
            "`precision` needs `copy=True`: a model's dtype policy cannot be changed in place."
        )
    seed = None if seed is None else check_positive_int(seed, "seed", allow_zero=True)
    validation, train = read_once(validation, "validation"), read_declared(train, cache)
    return run_strategy(model, train, validation, strat, settings, seed=seed, copy=copy)[0]


__all__ = ["FitResult", "fine_tune"]
