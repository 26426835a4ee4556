"""`compare_strategies`: every strategy x seed from the same starting weights, resumable."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import keras

from .._serial import describe
from .._validate import check_learning_rate, check_positive_int
from .._version import __version__
from ..freezing._layers import ensure_built
from ..metrics import evaluate
from ..strategies._resolve import resolve_strategy
from ..strategies._strategy import Strategy
from ..training._cache import FeatureCache
from ..training._callbacks import EarlyStoppingSpec, check_early_stopping, early_stopping_config
from ..training._data import Data, check_class_names, check_data, check_pair
from ..training._fine_tune import Auto, fine_tune
from ..training._phases import strategy_phases
from ..types import Model
from ._comparison import Comparison
from ._progress import RunProgress
from ._records import RunRecord
from ._runlog import RunLog, check_data_identity, data_hashes


def _resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, Integral) or not isinstance(seeds, Sequence):
        return list(range(check_positive_int(seeds, "seeds")))  # NumPy integers are ints too
    values = list(seeds)
    if not values or not all(isinstance(s, Integral) and not isinstance(s, bool) for s in values):
        raise ValueError(f"`seeds` must be a non-empty list of ints. Received: seeds={seeds!r}")
    values = [int(s) for s in values]
    if len(set(values)) != len(values):
        raise ValueError(f"`seeds` must not repeat a seed. Received: seeds={values}")
    return values


def _resolve_strategies(strategies: Sequence[Strategy | str]) -> list[Strategy]:
    if isinstance(strategies, str) or not isinstance(strategies, Sequence):
        raise ValueError(
            "`strategies` must be a list of strategies or names, e.g. "
            f"['full', 'partial', 'feature_extractor']. Received: {strategies!r}"
        )
    if not strategies:
        raise ValueError(
            "`strategies` is empty: pass at least one, e.g. ['full', 'partial', "
            "'feature_extractor']."
        )
    resolved = [resolve_strategy(s) for s in strategies]
    names = [s.name for s in resolved]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"`strategies` has duplicates: {dupes}. Give each a distinct configuration or a "
            "distinct `label=`."
        )
    return resolved


def compare_strategies(
    model: Model | Callable[[], Model],
    strategies: Sequence[Strategy | str],
    *,
    train: Data,
    validation: Data | None = None,
    test: Data,
    epochs: int = 10,
    batch_size: int = 32,
    seeds: int | Sequence[int] = 1,
    optimizer: str | Any = "adam",
    learning_rate: float | None = None,
    loss: Any = None,
    callbacks: Sequence[Any] = (),
    output: str | Path | None = None,
    class_names: Sequence[str] | None = None,
    verbose: int | Auto = "auto",
    cache: bool | FeatureCache = True,
    steps_per_execution: int | Auto = "auto",
    jit_compile: bool | Auto = "auto",
    precision: str | None = None,
    early_stopping: EarlyStoppingSpec = None,
    data_id: str | None = None,
) -> Comparison:
    """Train every strategy with every seed from the same starting weights and compare them.

    Each run trains a fresh copy of the starting model (`fine_tune`), so every strategy and
    seed starts from exactly the same weights, and the caller's model keeps its weights and
    trainable flags. Each run is evaluated on the test set (accuracy, precision, recall, F1,
    confusion matrix) and timed. Strategies that share a frozen prefix share its cached
    activations.

    Args:
        model: A built `keras.Model` (the pretrained starting point) or a zero-argument
            factory returning one (called once).
        strategies: Strategies or names, e.g. `["full", PartialFreeze(upto=4),
            FeatureExtractor(cut="flatten", epochs=20)]`.
        train: `(x, y)` NumPy arrays, or a dataset Keras `fit` accepts.
        validation: Same forms as `train`, or `None` (then no early stopping on validation
            metrics, and `Comparison.best` has nothing to choose on). Defaults to `None`.
        test: `(x, y)` NumPy arrays (required: the comparison is on the test set).
        epochs: int. Epochs for strategies that do not set their own. Defaults to `10`.
        batch_size: int. Defaults to `32`.
        seeds: int n (seeds 0..n-1) or a list of seeds. Defaults to `1`.
        optimizer: Optimizer name or instance (a fresh copy per run). Defaults to `"adam"`.
        learning_rate: float or None. Defaults to `None`.
        loss: A Keras loss, or `None` to choose from the labels. Defaults to `None`.
        callbacks: Keras callbacks given to every run. Defaults to `()`.
        output: str or Path or None. A JSON-lines file: each finished run is appended at once,
            and a rerun with the same path resumes, reading finished runs back instead of
            training them again. An existing file is only appended to once it is verified as
            the log of this very configuration; any other file is refused before training and
            left byte-for-byte unchanged. Defaults to `None`.
        class_names: Names of the classes for the metrics. Defaults to `None`.
        verbose: int. 0 prints nothing; 1 shows the overall progress (runs done of total,
            the current strategy and seed, elapsed time and ETA: a bar that updates in place
            in a terminal or notebook, plain lines in logs); 2 also prints Keras's progress
            bars of each run. `"auto"` is 1, as in Keras. Defaults to `"auto"`.
        cache: bool or `FeatureCache`. Use the frozen-prefix activation cache, shared by
            the runs of this comparison; pass a `FeatureCache(budget_bytes=...)` to set its
            memory budget and `cache_dir` (activations over the budget are spilled to disk and
            streamed; the comparison's own cache is deleted when it ends). Defaults to `True`.
        steps_per_execution: As in `fine_tune`. Defaults to `"auto"`.
        jit_compile: As in `fine_tune`. Defaults to `"auto"`.
        precision: As in `fine_tune` (opt-in mixed precision). Defaults to `None`.
        early_stopping: As in `fine_tune` (patience, or a `keras.callbacks.EarlyStopping`;
            per phase, keeping the best epoch's weights). Defaults to `None`.
        data_id: str or None. With `output=`, the identity of data that are not NumPy arrays
            (tf.data, PyDataset), which cannot be hashed: change it whenever the data change.
            Defaults to `None` (such data are refused with `output=`).

    Returns:
        A `Comparison` with one `RunRecord` per strategy and seed.

    Raises:
        ValueError: Before any training: empty or duplicate strategies, an unknown strategy
            name, labels out of range, mismatched x/y lengths, NaN/inf inputs, a missing test
            set, `seeds < 1`, `learning_rate <= 0`, `class_names` of the wrong length, or an
            `output` file that is not this configuration's log or cannot be written.
        TypeError: If `model` is neither a `keras.Model` nor a factory returning one.

    Example:
    ```python
    import numpy as np
    from transferkit import compare_strategies
    from transferkit.models import lab_cnn

    rng = np.random.default_rng(0)
    x, y = rng.random((96, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 96)
    comparison = compare_strategies(
        lab_cnn(), ["full", "feature_extractor"], train=(x[:64], y[:64]),
        test=(x[64:], y[64:]), epochs=1, seeds=2, verbose=0,
    )
    assert [(run.strategy, run.seed) for run in comparison.runs] == [
        ("full", 0), ("full", 1), ("feature_extractor", 0), ("feature_extractor", 1)
    ]
    print(comparison.to_markdown())
    ```
    """
    strategy_list = _resolve_strategies(strategies)
    seed_list = _resolve_seeds(seeds)
    if test is None:
        raise ValueError(
            "`test` is required: every run is evaluated on a held-out test set. Pass "
            "`test=(x_test, y_test)`."
        )
    start = model() if callable(model) and not isinstance(model, keras.Model) else model
    if not isinstance(start, keras.Model):
        raise TypeError(
            "`model` must be a built `keras.Model` or a zero-argument factory returning one. "
            f"Received: {type(start).__name__}"
        )
    ensure_built(start)
    train_arrays, val_arrays = check_pair(train, validation, start)
    test_arrays = check_data(test, "test", start)
    if test_arrays is None:
        raise ValueError("`test` must be an `(x, y)` tuple of NumPy arrays.")
    epochs, batch_size = (
        check_positive_int(epochs, "epochs"),
        check_positive_int(batch_size, "batch_size"),
    )
    if verbose == "auto":
        verbose = 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f'`verbose` must be 0, 1, 2 or "auto". Received: verbose={verbose!r}')
    for strategy in strategy_list:
        strategy.validate(start)
        strategy_phases(strategy, start, strategy.epochs or epochs)
    check_early_stopping(
        early_stopping, has_validation=validation is not None, metrics=["accuracy"]
    )
    check_learning_rate(learning_rate)
    check_class_names(class_names, start)
    given = {"train": (train, train_arrays), "validation": (validation, val_arrays)}
    non_arrays = [name for name, (d, a) in given.items() if d is not None and a is None]
    check_data_identity(non_arrays, data_id, output)

    config = {
        "transferkit": __version__,
        "backend": keras.backend.backend(),
        "strategies": [s.to_dict() for s in strategy_list],
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": describe(optimizer),
        "learning_rate": describe(learning_rate),
        "loss": describe(loss),
        "callbacks": [describe(c) for c in callbacks],
        "precision": precision,
        "early_stopping": early_stopping_config(early_stopping),
        "train_samples": len(train_arrays) if train_arrays is not None else None,
        "test_samples": len(test_arrays),
    }
    done: dict[tuple[str, int], RunRecord] = {}
    log: RunLog | None = None
    if output is not None:
        arrays = {"test": test_arrays, "train": train_arrays, "validation": val_arrays}
        pairs = {k: None if a is None else (a.x, a.y) for k, a in arrays.items()}
        log, done = RunLog.open(output, config, data_hashes(start, pairs, data_id))

    shared_cache = cache if isinstance(cache, FeatureCache) else FeatureCache() if cache else None
    runs: list[RunRecord] = []
    total = len(strategy_list) * len(seed_list)
    run_options: dict[str, Any] = {  # what every run shares, as `fine_tune` takes it
        "validation": validation,
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "loss": loss,
        "callbacks": callbacks,
        "verbose": 1 if verbose >= 2 else 0,
        "copy": True,
        "cache": shared_cache if shared_cache is not None else False,
        "steps_per_execution": steps_per_execution,
        "jit_compile": jit_compile,
        "precision": precision,
        "early_stopping": early_stopping,
    }
    progress = RunProgress(total, verbose=verbose)
    try:
        for strategy, seed in [(s, seed) for s in strategy_list for seed in seed_list]:
            if (strategy.name, seed) in done:
                runs.append(done[(strategy.name, seed)])
                acc = done[(strategy.name, seed)].metrics.accuracy
                progress.resumed(
                    strategy.name, seed, f"resumed from {output} (test accuracy {acc:.4f})"
                )
                continue
            progress.start_run(strategy.name, seed)
            result = fine_tune(start, train, strategy=strategy, seed=seed, **run_options)
            names = list(class_names) if class_names is not None else None
            metrics = evaluate(
                result.model,
                test_arrays.x,
                test_arrays.y,
                class_names=names,
            )
            val_metrics = (
                evaluate(result.model, val_arrays.x, val_arrays.y, class_names=names)
                if val_arrays is not None
                else None
            )
            record = RunRecord(
                strategy=strategy.name,
                seed=seed,
                epochs=result.epochs,
                metrics=metrics,
                timing=result.timing,
                history=result.history,
                cache=result.cache,
                validation=val_metrics,
                phases=result.phases,
            )
            if log is not None:
                log.append(record)
            runs.append(record)
            cached = " (cached prefix)" if result.cache.used else ""
            progress.finish_run(
                f"test accuracy {metrics.accuracy:.4f}, macro F1 {metrics.f1_macro:.4f}, "
                f"{result.timing.train_seconds:.1f} s{cached}"
            )
            del result
            gc.collect()
    finally:
        if shared_cache is not None and shared_cache is not cache:
            shared_cache.close()  # the comparison's own cache: spilled files go, even on error
    progress.close()
    return Comparison(runs=tuple(runs), config=config)
