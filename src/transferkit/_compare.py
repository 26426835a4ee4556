"""`compare_strategies`: every strategy x seed from the same starting weights, resumable."""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ._cache import FeatureCache
from ._callbacks import EarlyStoppingSpec, check_early_stopping, early_stopping_config
from ._comparison import Comparison, RunRecord
from ._data import Data, check_arrays, is_array_pair
from ._layers import ensure_built
from ._phases import strategy_phases
from ._progress import RunProgress
from ._strategies import Strategy, resolve_strategy
from ._train import Auto, fine_tune
from ._version import __version__
from .metrics import evaluate
from .types import Model


def _resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError(f"`seeds` must be an int >= 1 or a list of ints. Received: {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(
                "`seeds` must be at least 1 (the number of seeds, 0..seeds-1) or a non-empty "
                f"list of ints. Received: seeds={seeds}"
            )
        return list(range(seeds))
    values = list(seeds)
    if not values or not all(isinstance(s, int) and not isinstance(s, bool) for s in values):
        raise ValueError(f"`seeds` must be a non-empty list of ints. Received: seeds={seeds!r}")
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


def _hash_arrays(h: Any, arrays: Sequence[np.ndarray[Any, Any]]) -> None:
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())


def _fingerprint(config: dict[str, Any], start: Model, data: list[np.ndarray[Any, Any]]) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    _hash_arrays(h, [np.asarray(w) for w in start.get_weights()])
    _hash_arrays(h, data)
    return h.hexdigest()[:32]


class _RunLog:
    """A JSON-lines file of finished runs: appended atomically, read back on resume."""

    def __init__(self, path: Path, fingerprint: str, config: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.config = config

    def read(self) -> dict[tuple[str, int], RunRecord]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._append({"kind": "header", "fingerprint": self.fingerprint, **self.config})
            return {}
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1
        if good_end < len(raw):  # an interrupted write left a partial last line: drop it
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
        lines = [json.loads(line) for line in raw[:good_end].splitlines() if line.strip()]
        if not lines or lines[0].get("kind") != "header":
            raise ValueError(
                f"`output` file {str(self.path)!r} is not a transferkit comparison log. Choose "
                "another path or delete the file."
            )
        if lines[0].get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"`output` file {str(self.path)!r} was written by a different configuration "
                "(strategies, epochs, batch size, optimizer, data or starting weights differ), "
                "so its runs cannot be mixed with this comparison. Use a new path, or delete "
                "the file to start over."
            )
        done = {}
        for line in lines[1:]:
            if line.get("kind") == "run":
                record = RunRecord.from_dict(line, resumed=True)
                done[(record.strategy, record.seed)] = record
        return done

    def _append(self, entry: dict[str, Any]) -> None:
        data = (json.dumps(entry) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one write on an O_APPEND descriptor: whole lines only
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, record: RunRecord) -> None:
        self._append({"kind": "run", **record.to_dict()})


def compare_strategies(
    model: Model | Callable[[], Model],
    strategies: Sequence[Strategy | str],
    *,
    train: Data,
    validation: Data | None,
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
    verbose: int = 1,
    cache: bool | FeatureCache = True,
    steps_per_execution: int | Auto = "auto",
    jit_compile: bool | Auto = "auto",
    precision: str | None = None,
    early_stopping: EarlyStoppingSpec = None,
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
        validation: Same forms as `train`, or `None`.
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
            training them again. Defaults to `None`.
        class_names: Names of the classes for the metrics. Defaults to `None`.
        verbose: int. 0 prints nothing; 1 shows the overall progress (runs done of total,
            the current strategy and seed, elapsed time and ETA: a bar that updates in place
            in a terminal or notebook, plain lines in logs); 2 also prints Keras's progress
            bars of each run. Defaults to `1`.
        cache: bool or `FeatureCache`. Use the frozen-prefix activation cache, shared by
            the runs of this comparison; pass a `FeatureCache(budget_bytes=...)` to set its
            memory budget. Defaults to `True`.
        steps_per_execution: As in `fine_tune`. Defaults to `"auto"`.
        jit_compile: As in `fine_tune`. Defaults to `"auto"`.
        precision: As in `fine_tune` (opt-in mixed precision). Defaults to `None`.
        early_stopping: As in `fine_tune` (patience, or a `keras.callbacks.EarlyStopping`;
            per phase, keeping the best epoch's weights). Defaults to `None`.

    Returns:
        A `Comparison` with one `RunRecord` per strategy and seed.

    Raises:
        ValueError: Before any training: empty or duplicate strategies, an unknown strategy
            name, labels out of range, mismatched x/y lengths, NaN/inf inputs, a missing test
            set, `seeds < 1`, or an `output` file written by a different configuration.
        TypeError: If `model` is neither a `keras.Model` nor a factory returning one.

    Example:
    ```python
    import keras
    import numpy as np
    from transferkit import compare_strategies

    model = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    x, y = np.random.rand(96, 8).astype("float32"), np.random.randint(0, 3, 96)
    data = (x[:64], y[:64])
    comparison = compare_strategies(
        model, ["full", "feature_extractor"], train=data, validation=None,
        test=(x[64:], y[64:]), epochs=1, seeds=2, verbose=0,
    )
    assert len(comparison.runs) == 4
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
    train_arrays = check_arrays(train, "train", start) if is_array_pair(train) else None
    val_arrays = None
    if validation is not None and is_array_pair(validation):
        val_arrays = check_arrays(validation, "validation", start)
    if not is_array_pair(test):
        raise ValueError("`test` must be an `(x, y)` tuple of NumPy arrays.")
    test_arrays = check_arrays(test, "test", start)
    for strategy in strategy_list:
        strategy.validate(start)
        strategy_phases(strategy, start, strategy.epochs or epochs)
    check_early_stopping(
        early_stopping, has_validation=validation is not None, metrics=["accuracy"]
    )
    for value, arg in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{arg}` must be a positive int. Received: {arg}={value!r}")

    config = {
        "transferkit": __version__,
        "backend": keras.backend.backend(),
        "strategies": [s.to_dict() for s in strategy_list],
        "epochs": epochs,
        "batch_size": batch_size,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "learning_rate": learning_rate,
        "loss": None if loss is None else str(loss),
        "precision": precision,
        "early_stopping": early_stopping_config(early_stopping),
        "train_samples": len(train_arrays) if train_arrays is not None else None,
        "test_samples": len(test_arrays),
    }
    log: _RunLog | None = None
    done: dict[tuple[str, int], RunRecord] = {}
    if output is not None:
        data = [test_arrays.x, test_arrays.y]
        if train_arrays is not None:
            data += [train_arrays.x, train_arrays.y]
        if validation is not None and is_array_pair(validation):
            data += [np.asarray(validation[0]), np.asarray(validation[1])]
        log = _RunLog(Path(output), _fingerprint(config, start, data), config)
        done = log.read()

    shared_cache = cache if isinstance(cache, FeatureCache) else FeatureCache() if cache else None
    runs: list[RunRecord] = []
    total = len(strategy_list) * len(seed_list)
    progress = RunProgress(total, verbose=verbose)
    for strategy, seed in [(s, seed) for s in strategy_list for seed in seed_list]:
        if (strategy.name, seed) in done:
            runs.append(done[(strategy.name, seed)])
            acc = done[(strategy.name, seed)].metrics.accuracy
            progress.resumed(
                strategy.name, seed, f"resumed from {output} (test accuracy {acc:.4f})"
            )
            continue
        progress.start_run(strategy.name, seed)
        result = fine_tune(
            start,
            train,
            validation=validation,
            strategy=strategy,
            epochs=epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            learning_rate=learning_rate,
            loss=loss,
            callbacks=callbacks,
            seed=seed,
            verbose=1 if verbose >= 2 else 0,
            copy=True,
            cache=shared_cache if shared_cache is not None else False,
            steps_per_execution=steps_per_execution,
            jit_compile=jit_compile,
            precision=precision,
            early_stopping=early_stopping,
        )
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
            cache=result.cache.to_dict(),
            validation=val_metrics,
            phases=tuple(p.to_dict() for p in result.phases),
        )
        if log is not None:
            log.append(record)
        runs.append(record)
        cached = " (cached prefix)" if result.cache.used else ""
        progress.finish_run(
            f"test accuracy {metrics.accuracy:.4f}, macro F1 {metrics.f1_macro:.4f}, "
            f"{result.timing.total_seconds:.1f} s{cached}"
        )
        del result
        gc.collect()
    progress.close()
    return Comparison(runs=tuple(runs), config=config)
