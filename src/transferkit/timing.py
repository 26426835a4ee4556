"""Wall-clock timing of training and inference, and the machine a measurement ran on."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from . import _serial
from ._machine import MachineInfo, machine_info
from ._validate import check_positive_int, sample_count
from .types import Model

__all__ = [
    "EpochTimer",
    "InferenceTiming",
    "MachineInfo",
    "Timer",
    "TrainingTiming",
    "count_params",
    "machine_info",
    "measure_inference",
]


class Timer:
    """A wall-clock stopwatch based on `time.perf_counter`.

    Use it as a context manager, or call `start()` and `stop()`. `seconds` is final once the
    timer stops, the time so far while it runs, `0.0` before it first starts.

    Example:

    ```python
    from transferkit.timing import Timer

    with Timer() as t:
        sum(range(10_000))
    assert t.seconds > 0.0 and not t.running
    ```
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._elapsed: float = 0.0

    @property
    def running(self) -> bool:
        """Whether the timer is currently running."""
        return self._start is not None

    @property
    def seconds(self) -> float:
        """Elapsed seconds: final once stopped, so far while running, `0.0` if never started."""
        return self._elapsed if self._start is None else time.perf_counter() - self._start

    def start(self) -> Timer:
        """Starts (or restarts from zero) the timer; returns the timer."""
        self._elapsed = 0.0
        self._start = time.perf_counter()
        return self

    def stop(self) -> float:
        """Stops the timer and returns the elapsed seconds; raises if it is not running."""
        if self._start is None:
            raise RuntimeError(
                "`Timer.stop()` was called on a timer that is not running. "
                "Call `start()` first (or use `with Timer() as t:`)."
            )
        self._elapsed = time.perf_counter() - self._start
        self._start = None
        return self._elapsed

    def __enter__(self) -> Timer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Timer({'running' if self.running else 'stopped'}, seconds={self.seconds:.6f})"


@dataclass(frozen=True)
class TrainingTiming(_serial.Record):
    """Wall-clock cost of one training run.

    Attributes:
        train_seconds: Wall time of `fit`, from train begin to train end (called
            `total_seconds` before 0.2; that name still reads, with a `DeprecationWarning`).
        epoch_seconds: Wall time of each epoch (including its validation pass).
        samples_per_second: Training samples per second of epoch time; `None` when the
            number of samples is unknown.
        trainable_params: Trainable parameters during the run.
        total_params: All parameters.

    Example:

    ```python
    from transferkit.timing import TrainingTiming

    t = TrainingTiming(3.5, epoch_seconds=(1.0, 2.0), samples_per_second=None,
                       trainable_params=10, total_params=50)
    assert t.seconds_per_epoch == 1.5
    assert TrainingTiming.from_dict(t.to_dict()) == t
    ```
    """

    train_seconds: float
    epoch_seconds: tuple[float, ...]
    samples_per_second: float | None
    trainable_params: int
    total_params: int

    @property
    def total_seconds(self) -> float:
        """Deprecated name of `train_seconds`."""
        warnings.warn(
            "`TrainingTiming.total_seconds` is deprecated; use `train_seconds`.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.train_seconds

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingTiming:
        """Rebuilds the record from `to_dict`, reading the old `total_seconds` key too."""
        if isinstance(d, Mapping) and "train_seconds" not in d and "total_seconds" in d:
            d = {**d, "train_seconds": d["total_seconds"]}
        return _serial.from_dict(cls, d)

    @property
    def num_epochs(self) -> int:
        """Number of recorded epochs."""
        return len(self.epoch_seconds)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean wall time per epoch in seconds (`0.0` when no epoch was recorded)."""
        if not self.epoch_seconds:
            return 0.0
        return float(sum(self.epoch_seconds) / len(self.epoch_seconds))


class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras callback recording the wall time of each epoch and of the whole `fit`.

    State is reset at the start of every `fit`, so one instance can be reused; after `fit`,
    `epoch_seconds`, `train_seconds` and `samples_per_second` describe that run.

    Args:
        num_samples: int. Training samples per epoch, for `samples_per_second` (Keras' step
            count times batch size is not a reliable sample count). Defaults to `None`
            (`samples_per_second` is `None`).

    Raises:
        ValueError: If `num_samples` is not a positive int.

    Example:

    ```python
    import keras
    import numpy as np

    from transferkit.timing import EpochTimer

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.zeros((16, 4), dtype="float32")
    y = np.zeros((16,), dtype="int64")
    timer = EpochTimer(num_samples=len(x))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[timer])
    assert timer.to_timing().num_epochs == 2
    assert sum(timer.epoch_seconds) <= timer.train_seconds
    ```
    """

    def __init__(self, num_samples: int | None = None) -> None:
        super().__init__()
        self.num_samples: int | None = (
            None if num_samples is None else check_positive_int(num_samples, "num_samples")
        )
        self.epoch_seconds: list[float] = []
        self.train_seconds: float = 0.0
        self.trainable_params: int = 0
        self.total_params: int = 0
        self._train, self._epoch = Timer(), Timer()

    @property
    def samples_per_second(self) -> float | None:
        """Training throughput over the recorded epochs, or `None` without `num_samples`."""
        return throughput(self.num_samples, self.epoch_seconds)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Resets the recorded times and counts the model's parameters."""
        self.epoch_seconds = []
        self.train_seconds = 0.0
        self._epoch = Timer()
        if (model := getattr(self, "model", None)) is not None:
            self.trainable_params, self.total_params = count_params(model)
        self._train.start()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Starts timing an epoch."""
        self._epoch.start()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Records the wall time of the epoch that just ended."""
        if self._epoch.running:
            self.epoch_seconds.append(self._epoch.stop())

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Records the total wall time of `fit`."""
        if self._train.running:
            self.train_seconds = self._train.stop()

    def to_timing(self) -> TrainingTiming:
        """The times recorded for the last (or current) `fit` as a `TrainingTiming`."""
        return TrainingTiming(
            train_seconds=float(self.train_seconds),
            epoch_seconds=tuple(float(s) for s in self.epoch_seconds),
            samples_per_second=self.samples_per_second,
            trainable_params=int(self.trainable_params),
            total_params=int(self.total_params),
        )


@dataclass(frozen=True)
class InferenceTiming(_serial.Record):
    """Result of `measure_inference`: best-of-N prediction time over a dataset.

    Attributes:
        batch_size: Batch size used for prediction.
        num_samples: Samples predicted per run.
        seconds: Wall time of the fastest run over all samples.
        latency_ms_per_batch: Mean milliseconds per batch in the fastest run.
        samples_per_second: Throughput of the fastest run.

    Example:

    ```python
    from transferkit.timing import InferenceTiming

    t = InferenceTiming(32, num_samples=64, seconds=0.5, latency_ms_per_batch=250.0,
                        samples_per_second=128.0)
    assert InferenceTiming.from_dict(t.to_dict()) == t
    ```
    """

    batch_size: int
    num_samples: int
    seconds: float
    latency_ms_per_batch: float
    samples_per_second: float


def measure_inference(
    model: Model, x: Any, *, batch_size: int = 256, repeats: int = 3, warmup: int = 1
) -> InferenceTiming:
    """Measures prediction time of `model` over `x`, reporting the best of several runs.

    Each run calls `model.predict_on_batch` on consecutive batches of `x` (NumPy outputs, so
    each batch is computed before the next starts). `warmup` untimed runs come first, so
    tracing and compilation are excluded. Does not change `model`.

    Args:
        model: `keras.Model`. The model to time.
        x: NumPy array, or a list/dict of arrays for multi-input models. The inputs.
        batch_size: int. Samples per batch. Defaults to `256`.
        repeats: int. Timed runs; the fastest is reported. Defaults to `3`.
        warmup: int. Untimed runs before timing. Defaults to `1`.

    Returns:
        An `InferenceTiming`.

    Raises:
        ValueError: If `batch_size` or `repeats` is not a positive int, `warmup` is negative,
            or `x` is empty or its arrays have different lengths.

    Example:

    ```python
    import keras
    import numpy as np

    from transferkit.timing import measure_inference

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = np.zeros((10, 4), dtype="float32")
    t = measure_inference(model, x, batch_size=4, repeats=2)
    assert t.num_samples == 10 and t.samples_per_second > 0
    ```
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    repeats = check_positive_int(repeats, "repeats")
    warmup = check_positive_int(warmup, "warmup", allow_zero=True)
    num_samples = sample_count(x)
    batches = [_slice(x, start, start + batch_size) for start in range(0, num_samples, batch_size)]

    def run_once() -> float:
        with Timer() as t:
            for batch in batches:
                model.predict_on_batch(batch)
        return t.seconds

    for _ in range(warmup):
        run_once()
    best = max(min(run_once() for _ in range(repeats)), 1e-12)
    # batch_size, num_samples, seconds, latency_ms_per_batch, samples_per_second
    return InferenceTiming(
        batch_size, num_samples, float(best), best / len(batches) * 1000.0, num_samples / best
    )


def throughput(num_samples: int | None, epoch_seconds: Sequence[float]) -> float | None:
    """Training samples per second of epoch time; `None` without samples or epoch time."""
    elapsed = sum(epoch_seconds)
    if num_samples is None or elapsed <= 0.0:
        return None
    return float(num_samples * len(epoch_seconds) / elapsed)


def count_params(model: Model) -> tuple[int, int]:
    """Counts the trainable and total parameters of a model.

    Args:
        model: `keras.Model` or layer. An unbuilt one has no weights yet: `(0, 0)`.

    Returns:
        `(trainable, total)`.

    Example:

    ```python
    import keras

    from transferkit.timing import count_params

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert count_params(model) == (15, 15)
    model.trainable = False
    assert count_params(model) == (0, 15)
    ```
    """
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    return int(trainable), int(sum(int(np.prod(v.shape)) for v in model.weights))


def _slice(x: Any, start: int, stop: int) -> Any:
    return keras.tree.map_structure(lambda a: a[start:stop], x)
