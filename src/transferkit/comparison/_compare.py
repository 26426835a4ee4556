"""`compare_strategies`: every strategy x seed from the same starting weights, resumable."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import keras

from .._validate import check_choice, check_positive_int, is_int
from ..freezing._layers import ensure_built
from ..strategies._resolve import resolve_strategy
from ..strategies._strategy import Strategy
from ..training._cache import FeatureCache
from ..training._callbacks import EarlyStoppingSpec
from ..training._data import (
    Data,
    check_class_names,
    check_class_weight,
    check_data,
    check_pair,
    read_declared,
    read_once,
)
from ..training._phases import strategy_phases
from ..training._settings import Auto, TrainSettings
from ..types import Model
from ._comparison import Comparison
from ._models import KEEP_MODELS, ModelKeeper
from ._parallel import Dispatch, check_executor
from ._records import RunKey, RunRecord
from ._runlog import RunLog, check_data_identity, data_hashes
from ._runner import ComparisonPlan, Runner, best_key
from ._search import RateSpec, check_search, resolve_grids


def _resolve_seeds(seeds: int | Sequence[int]) -> list[int]:
    if is_int(seeds) or not isinstance(seeds, Sequence):
        return list(range(check_positive_int(seeds, "seeds")))  # NumPy integers are ints too
    values = list(seeds)
    if not values or not all(is_int(s) for s in values):
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
    if dupes := sorted({n for n in names if names.count(n) > 1}):
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
    optimizer: str | Any | None = None,
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
    learning_rates: RateSpec = None,
    search: str = "grid",
    keep_models: str = "best",
    class_weight: Mapping[int, float] | None = None,
    executor: Executor | str | Any | None = None,
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
            metrics, and `Comparison.best` has nothing to choose on). A dataset is read once
            into NumPy arrays before the first run. Defaults to `None`.
        test: Same forms as `validation` (required: the comparison is on the test set).
        epochs: int. Epochs for strategies that do not set their own. Defaults to `10`.
        batch_size: int. Defaults to `32`.
        seeds: int n (seeds 0..n-1) or a list of seeds. Defaults to `1`.
        optimizer: Optimizer name or instance (a fresh copy per run), or `None`: a copy of
            the optimizer `model` was compiled with, Adam if it was not. Defaults to `None`.
        learning_rate: float or None. Defaults to `None`.
        loss: A Keras loss, or `None` to choose from the labels. Defaults to `None`.
        callbacks: Keras callbacks given to every run. Those that log to a path get one per
            run, named `<strategy label>[-lr<rate>][-rung<n>]-seed<seed>` (the rate only when
            a search tries several, the rung for a shortened halving run; spaces and quotes
            dropped, other characters but letters, digits and `._=,()+-` made `_`):
            `TensorBoard(log_dir="logs")` and `BackupAndRestore("logs")` write to
            `logs/full-seed0/`, `CSVLogger("log.csv")` to `log.full-seed0.csv` and
            `ModelCheckpoint("m.keras")` to `m.full-seed0.keras`; each run has shallow
            copies, the callbacks given are left unchanged. Defaults to `()`.
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
        learning_rates: None, `"auto"`, a list of rates, or a mapping from strategy label to
            a list. A learning-rate search: each strategy trains at each of its rates (with
            every seed) and the rate with the best mean *validation* accuracy is chosen;
            summaries, `best()`, reports and `model()` use each strategy at its chosen rate,
            and every run stays in `runs` with its `learning_rate`. `"auto"` searches each
            strategy's `search_multipliers` times the optimizer's rate (Adam: 3e-4, 1e-3,
            3e-3 for strategies that train the body; 1e-3 to 3e-2 for `FeatureExtractor` and
            `LoRA`; 3e-4 to 1e-2 for LP-FT). A strategy with its own `learning_rate` is not
            searched. Needs validation data. Defaults to `None` (no search: the
            optimizer's or `learning_rate`'s rate).
        search: `"grid"` (every rate trains all epochs) or `"halving"` (successive halving
            with factor 3: every rate trains a ninth or a third of the epochs, the best third
            of the rates on validation continue, the last one trains all epochs; the shortened
            runs are recorded with their `rung`). Defaults to `"grid"`.
        keep_models: `"best"` (the model of the best strategy's best-validation seed),
            `"all"` (every full-length run's) or `"none"`. Kept models stay in memory, or with
            `output=` are written as `.keras` files into a folder beside the log
            (`runs.jsonl` -> `runs.models/`), where a resumed comparison finds them;
            `Comparison.model()` returns them. `"best"` keeps nothing without validation data
            (nothing to choose on). Defaults to `"best"`.
        class_weight: As in `fine_tune` (`{class_id: weight}` in the loss of every run).
            Defaults to `None`.
        executor: `None` (every run here, one after the other), `"processes"` (a pool of
            spawned processes, one per core, each with one intra-op thread, made for this
            comparison), a `concurrent.futures.Executor`, or a Dask `distributed.Client`.
            Each run is a task of its own; the starting model travels as a `.keras` file,
            the data as arrays, and each worker unpickles them once per comparison and
            keeps its own frozen-prefix cache. Runs are appended to `output` as they finish,
            in any order; a run that fails (its worker killed, say) is submitted once more.
            Results are those of a serial call, up to float rounding. Scripts need an
            `if __name__ == "__main__":` guard (spawned workers import the main module).
            Defaults to `None`.

    Returns:
        A `Comparison` with one `RunRecord` per strategy, seed and learning rate.

    Raises:
        ValueError: Before any training: empty or duplicate strategies, an unknown strategy
            name, labels out of range, mismatched x/y lengths, NaN/inf inputs, a missing test
            set, `seeds < 1`, `learning_rate <= 0`, `class_names` of the wrong length, an
            `output` file that is not this configuration's log or cannot be written, a
            learning-rate grid that is empty or holds a rate that is not a finite number > 0,
            a `learning_rates` label that names no strategy, a search without validation
            data, an unknown `search` or `keep_models`; with an `executor`: training data
            that are not arrays, or a model, data or callbacks that cannot be sent to a worker
            (the error names the layers Keras cannot load again).
        TypeError: If `model` is neither a `keras.Model` nor a factory returning one, or
            `executor` is none of the above.
        RunsFailed: With an executor, after the other runs finished, if a run failed
            twice (`failures` says which and why; the finished runs are in `output`).

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
    verbose = 1 if verbose == "auto" else verbose
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f'`verbose` must be 0, 1, 2 or "auto". Received: verbose={verbose!r}')
    check_choice(keep_models, "keep_models", KEEP_MODELS)
    executor = check_executor(executor)
    # Each run's own Keras progress bars show only under the overall progress's verbose=2.
    settings = TrainSettings.of(locals(), verbose=1 if verbose >= 2 else 0)
    plan = _plan(model, strategies, seeds, train, validation, test, settings, class_names)
    settings = plan.settings
    plan = replace(plan, grids=resolve_grids(learning_rates, plan.strategies, settings))
    check_search(search, plan.grids, plan.arrays[1] is not None)
    plan = replace(plan, search=search if learning_rates is not None else None)
    check_data_identity(plan.non_arrays(), data_id, output)
    keep = "none" if keep_models == "best" and plan.arrays[1] is None else keep_models
    # Everything a worker needs is checked before the log is opened or a run submitted.
    dispatch = (
        None if executor is None else Dispatch(executor, plan, replace(settings, cache=cache), keep)
    )
    log, done = _open_log(plan, output, data_id)
    keeper = ModelKeeper(keep, output)
    with ExitStack() as stack:
        elsewhere = None if dispatch is None else stack.enter_context(closing(dispatch)).run
        store = stack.enter_context(_comparison_cache(cache if dispatch is None else False))
        shared = replace(settings, cache=store if store is not None else False)
        runs = Runner(plan, shared, log, done, keeper, verbose, output, elsewhere).run_all()
    objects = {s.name: s for s in plan.strategies}
    comparison = Comparison(runs=tuple(runs), config=plan.config(), strategy_objects=objects)
    return replace(comparison, kept=keeper.only(best_key(comparison)))


def _plan(
    model: Model | Callable[[], Model],
    strategies: Sequence[Strategy | str],
    seeds: int | Sequence[int],
    train: Data,
    validation: Data | None,
    test: Data,
    settings: TrainSettings,
    class_names: Sequence[str] | None,
) -> ComparisonPlan:
    """Check everything before the first run: strategies, seeds, model, data, names."""
    strategy_list, seed_list = _resolve_strategies(strategies), _resolve_seeds(seeds)
    if test is None:
        raise ValueError(
            "`test` is required: every run is evaluated on a held-out test set. Pass "
            "`test=(x_test, y_test)`."
        )
    start = _start_model(model)
    settings = settings.for_model(start)  # the model's compiled optimizer, if no other given
    validation, test = read_once(validation, "validation"), read_once(test, "test")
    train = read_declared(train, settings.cache)
    arrays, test_arrays = check_pair(train, validation, start), check_data(test, "test", start)
    assert test_arrays is not None  # `read_once` made arrays of a dataset
    for strategy in strategy_list:
        strategy.validate(start)
        strategy_phases(strategy, start, strategy.epochs or settings.epochs)
    settings.check_validation(validation)
    check_class_weight(settings.class_weight, start)
    check_class_names(class_names, start)
    names = list(class_names) if class_names is not None else None
    return ComparisonPlan(
        start, strategy_list, seed_list, train, validation, test_arrays, arrays, settings, names
    )


def _start_model(model: Model | Callable[[], Model]) -> Model:
    start = model() if callable(model) and not isinstance(model, keras.Model) else model
    if not isinstance(start, keras.Model):
        raise TypeError(
            "`model` must be a built `keras.Model` or a zero-argument factory returning one. "
            f"Received: {type(start).__name__}"
        )
    ensure_built(start)
    return start


def _open_log(
    plan: ComparisonPlan, output: str | Path | None, data_id: str | None
) -> tuple[RunLog | None, dict[RunKey, RunRecord]]:
    """The verified log of this configuration and its finished runs (none without `output`)."""
    if output is None:
        return None, {}
    arrays = {"test": plan.test, "train": plan.arrays[0], "validation": plan.arrays[1]}
    pairs = {k: None if a is None else (a.x, a.y) for k, a in arrays.items()}
    return RunLog.open(output, plan.config(), data_hashes(plan.start, pairs, data_id))


@contextmanager
def _comparison_cache(cache: bool | FeatureCache) -> Iterator[FeatureCache | None]:
    """The cache the runs share; the comparison's own is deleted when it ends, even on error."""
    store = cache if isinstance(cache, FeatureCache) else FeatureCache() if cache else None
    try:
        yield store
    finally:
        if store is not None and store is not cache:
            store.close()
