"""Wall-clock timing of training and inference.

`Timer` is a small `time.perf_counter` stopwatch, `EpochTimer` a Keras callback that
records per-epoch training time, `measure_inference` benchmarks prediction throughput and
`count_params` counts trainable and total parameters, and `machine_info` describes the machine
a measurement ran on.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import keras
import numpy as np

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

    Use it as a context manager, or call `start()` and `stop()` explicitly. `seconds` is the
    elapsed time: final after the timer stops, the time so far while it runs, `0.0` before
    it first starts.

    Example:

    ```python
    from transferkit.timing import Timer

    with Timer() as t:
        sum(range(10_000))
    assert t.seconds > 0.0

    t2 = Timer().start()
    sum(range(10_000))
    elapsed = t2.stop()
    assert elapsed == t2.seconds > 0.0
    ```
    """

    def __init__(self) -> None:
        self._start: float | None = None
        self._elapsed: float = 0.0
        self._running: bool = False

    @property
    def running(self) -> bool:
        """Whether the timer is currently running."""
        return self._running

    @property
    def seconds(self) -> float:
        """Elapsed seconds: final once stopped, so far while running, `0.0` if never started."""
        if self._running and self._start is not None:
            return time.perf_counter() - self._start
        return self._elapsed

    def start(self) -> Timer:
        """Starts (or restarts from zero) the timer.

        Returns:
            The timer itself, so that `t = Timer().start()` works.

        Example:

        ```python
        from transferkit.timing import Timer

        t = Timer().start()
        assert t.running
        ```
        """
        self._elapsed = 0.0
        self._start = time.perf_counter()
        self._running = True
        return self

    def stop(self) -> float:
        """Stops the timer.

        Returns:
            The elapsed seconds since `start()`.

        Raises:
            RuntimeError: If the timer is not running.

        Example:

        ```python
        from transferkit.timing import Timer

        t = Timer().start()
        assert t.stop() >= 0.0 and not t.running
        ```
        """
        if not self._running or self._start is None:
            raise RuntimeError(
                "`Timer.stop()` was called on a timer that is not running. "
                "Call `start()` first (or use `with Timer() as t:`)."
            )
        self._elapsed = time.perf_counter() - self._start
        self._running = False
        return self._elapsed

    def __enter__(self) -> Timer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"Timer({state}, seconds={self.seconds:.6f})"


@dataclass(frozen=True)
class TrainingTiming:
    """Wall-clock cost of one training run.

    Args:
        total_seconds: Total wall time of `fit`, from train begin to train end.
        epoch_seconds: Wall time of each epoch (including its validation pass).
        samples_per_second: Training samples processed per second of epoch time, or `None`
            when the number of samples is unknown.
        trainable_params: Number of trainable parameters during the run.
        total_params: Total number of parameters.

    Example:

    ```python
    from transferkit.timing import TrainingTiming

    t = TrainingTiming(
        total_seconds=3.5,
        epoch_seconds=(1.0, 2.0),
        samples_per_second=100.0,
        trainable_params=10,
        total_params=50,
    )
    assert t.seconds_per_epoch == 1.5
    assert TrainingTiming.from_dict(t.to_dict()) == t
    ```
    """

    total_seconds: float
    epoch_seconds: tuple[float, ...]
    samples_per_second: float | None
    trainable_params: int
    total_params: int

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

    def to_dict(self) -> dict[str, Any]:
        """Returns the timing as a dict of plain, JSON-serialisable Python types.

        Returns:
            A dict with one key per field (`epoch_seconds` as a list).

        Example:

        ```python
        import json

        from transferkit.timing import TrainingTiming

        t = TrainingTiming(1.0, (0.5,), None, 3, 4)
        assert TrainingTiming.from_dict(json.loads(json.dumps(t.to_dict()))) == t
        ```
        """
        return {
            "total_seconds": self.total_seconds,
            "epoch_seconds": list(self.epoch_seconds),
            "samples_per_second": self.samples_per_second,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainingTiming:
        """Rebuilds a `TrainingTiming` from the output of `to_dict`.

        Args:
            d: Mapping. A dict as produced by `TrainingTiming.to_dict`.

        Returns:
            The equal `TrainingTiming`.

        Raises:
            ValueError: If a key is missing.

        Example:

        ```python
        from transferkit.timing import TrainingTiming

        d = {
            "total_seconds": 2.0,
            "epoch_seconds": [1.0, 1.0],
            "samples_per_second": None,
            "trainable_params": 1,
            "total_params": 2,
        }
        assert TrainingTiming.from_dict(d).num_epochs == 2
        ```
        """
        _require_keys(
            d,
            (
                "total_seconds",
                "epoch_seconds",
                "samples_per_second",
                "trainable_params",
                "total_params",
            ),
            "d",
        )
        sps = d["samples_per_second"]
        return cls(
            total_seconds=float(d["total_seconds"]),
            epoch_seconds=tuple(float(s) for s in d["epoch_seconds"]),
            samples_per_second=None if sps is None else float(sps),
            trainable_params=int(d["trainable_params"]),
            total_params=int(d["total_params"]),
        )


class EpochTimer(keras.callbacks.Callback):  # type: ignore[misc]
    """Keras callback recording the wall time of each epoch and of the whole `fit`.

    State is reset at the start of every `fit`, so one instance can be reused; after `fit`
    returns, `epoch_seconds`, `train_seconds` and `samples_per_second` describe that run,
    and `to_timing()` packs them into a `TrainingTiming`.

    Args:
        num_samples: Integer. Number of training samples per epoch, used for
            `samples_per_second`. Defaults to `None`, meaning `samples_per_second` is
            `None` (Keras' step count times batch size is not a reliable sample count).

    Raises:
        ValueError: If `num_samples` is not a positive integer.

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
    assert len(timer.epoch_seconds) == 2
    assert sum(timer.epoch_seconds) <= timer.train_seconds
    print(timer.to_timing())
    ```
    """

    def __init__(self, num_samples: int | None = None) -> None:
        super().__init__()
        if num_samples is not None and (
            isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1
        ):
            raise ValueError(
                "`num_samples` must be a positive integer or None. "
                f"Received: num_samples={num_samples!r}"
            )
        self.num_samples: int | None = num_samples
        self.epoch_seconds: list[float] = []
        self.train_seconds: float = 0.0
        self.trainable_params: int = 0
        self.total_params: int = 0
        self._train_start: float | None = None
        self._epoch_start: float | None = None

    @property
    def samples_per_second(self) -> float | None:
        """Training throughput over the recorded epochs, or `None` without `num_samples`."""
        if self.num_samples is None or not self.epoch_seconds:
            return None
        elapsed = sum(self.epoch_seconds)
        if elapsed <= 0.0:
            return None
        return float(self.num_samples * len(self.epoch_seconds) / elapsed)

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Resets the recorded times and counts the model's parameters."""
        self.epoch_seconds = []
        self.train_seconds = 0.0
        self._epoch_start = None
        model = getattr(self, "model", None)
        if model is not None:
            self.trainable_params, self.total_params = count_params(model)
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Starts timing an epoch."""
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Records the wall time of the epoch that just ended."""
        if self._epoch_start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """Records the total wall time of `fit`."""
        if self._train_start is not None:
            self.train_seconds = time.perf_counter() - self._train_start
            self._train_start = None

    def to_timing(self) -> TrainingTiming:
        """Returns the recorded times as a frozen `TrainingTiming`.

        Returns:
            A `TrainingTiming` for the last (or current) `fit`.

        Example:

        ```python
        from transferkit.timing import EpochTimer

        timing = EpochTimer().to_timing()  # nothing recorded yet
        assert timing.epoch_seconds == () and timing.samples_per_second is None
        ```
        """
        return TrainingTiming(
            total_seconds=float(self.train_seconds),
            epoch_seconds=tuple(float(s) for s in self.epoch_seconds),
            samples_per_second=self.samples_per_second,
            trainable_params=int(self.trainable_params),
            total_params=int(self.total_params),
        )


@dataclass(frozen=True)
class InferenceTiming:
    """Result of `measure_inference`: best-of-N prediction time over a dataset.

    Args:
        batch_size: Batch size used for prediction.
        num_samples: Number of samples predicted per run.
        seconds: Wall time of the fastest run over all samples.
        latency_ms_per_batch: Mean milliseconds per batch in the fastest run.
        samples_per_second: Throughput of the fastest run.

    Example:

    ```python
    from transferkit.timing import InferenceTiming

    t = InferenceTiming(
        batch_size=32,
        num_samples=64,
        seconds=0.5,
        latency_ms_per_batch=250.0,
        samples_per_second=128.0,
    )
    assert InferenceTiming.from_dict(t.to_dict()) == t
    ```
    """

    batch_size: int
    num_samples: int
    seconds: float
    latency_ms_per_batch: float
    samples_per_second: float

    def to_dict(self) -> dict[str, Any]:
        """Returns the timing as a dict of plain, JSON-serialisable Python types.

        Returns:
            A dict with one key per field.

        Example:

        ```python
        import json

        from transferkit.timing import InferenceTiming

        t = InferenceTiming(8, 8, 0.01, 10.0, 800.0)
        assert json.loads(json.dumps(t.to_dict()))["batch_size"] == 8
        ```
        """
        return {
            "batch_size": self.batch_size,
            "num_samples": self.num_samples,
            "seconds": self.seconds,
            "latency_ms_per_batch": self.latency_ms_per_batch,
            "samples_per_second": self.samples_per_second,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InferenceTiming:
        """Rebuilds an `InferenceTiming` from the output of `to_dict`.

        Args:
            d: Mapping. A dict as produced by `InferenceTiming.to_dict`.

        Returns:
            The equal `InferenceTiming`.

        Raises:
            ValueError: If a key is missing.

        Example:

        ```python
        from transferkit.timing import InferenceTiming

        t = InferenceTiming(4, 4, 0.002, 2.0, 2000.0)
        assert InferenceTiming.from_dict(t.to_dict()) == t
        ```
        """
        _require_keys(
            d,
            ("batch_size", "num_samples", "seconds", "latency_ms_per_batch", "samples_per_second"),
            "d",
        )
        return cls(
            batch_size=int(d["batch_size"]),
            num_samples=int(d["num_samples"]),
            seconds=float(d["seconds"]),
            latency_ms_per_batch=float(d["latency_ms_per_batch"]),
            samples_per_second=float(d["samples_per_second"]),
        )


def measure_inference(
    model: Model,
    x: Any,
    *,
    batch_size: int = 256,
    repeats: int = 3,
    warmup: int = 1,
) -> InferenceTiming:
    """Measures prediction time of `model` over `x`, reporting the best of several runs.

    Each run calls `model.predict_on_batch` on consecutive batches of `x` (outputs are
    NumPy arrays, so every batch is fully computed before the next starts). `warmup` untimed
    runs come first, so that tracing/compilation is excluded; the fastest of the `repeats`
    timed runs is reported.

    Args:
        model: `keras.Model`. The model to time.
        x: NumPy array, or a list/dict of arrays for multi-input models. The inputs.
        batch_size: Integer. Samples per batch. Defaults to `256`.
        repeats: Integer. Number of timed runs; the minimum is reported. Defaults to `3`.
        warmup: Integer. Number of untimed runs before timing. Defaults to `1`.

    Returns:
        An `InferenceTiming`.

    Raises:
        ValueError: If `batch_size` or `repeats` is smaller than 1, `warmup` is negative,
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
    _check_positive_int(batch_size, "batch_size", minimum=1)
    _check_positive_int(repeats, "repeats", minimum=1)
    _check_positive_int(warmup, "warmup", minimum=0)
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("`x` must contain at least one input array. Received: an empty structure")
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else 0 for a in leaves}
    if len(lengths) != 1:
        raise ValueError(
            "All arrays in `x` must have the same number of samples. "
            f"Received: lengths {sorted(lengths)}"
        )
    num_samples = lengths.pop()
    if num_samples == 0:
        raise ValueError("`x` must contain at least one sample. Received: 0 samples")
    batches = [_slice(x, start, start + batch_size) for start in range(0, num_samples, batch_size)]

    def run_once() -> float:
        t0 = time.perf_counter()
        for batch in batches:
            model.predict_on_batch(batch)
        return time.perf_counter() - t0

    for _ in range(warmup):
        run_once()
    best = min(run_once() for _ in range(repeats))
    best = max(best, 1e-12)
    return InferenceTiming(
        batch_size=batch_size,
        num_samples=num_samples,
        seconds=float(best),
        latency_ms_per_batch=float(best / len(batches) * 1000.0),
        samples_per_second=float(num_samples / best),
    )


def count_params(model: Model) -> tuple[int, int]:
    """Counts the trainable and total parameters of a model.

    Args:
        model: `keras.Model` or layer. Must be built (unbuilt models have no weights).

    Returns:
        A tuple `(trainable, total)` of parameter counts.

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
    total = sum(int(np.prod(v.shape)) for v in model.weights)
    return int(trainable), int(total)


@dataclass(frozen=True)
class MachineInfo:
    """What a measurement ran on: CPU, cores, memory and the software stack.

    Attributes:
        cpu: CPU model name (from `/proc/cpuinfo` where available).
        cores: CPU cores this process may use.
        memory_gib: Total physical memory in GiB (`nan` where unknown).
        gpus: Accelerators the Keras backend sees (empty on a CPU-only machine).
        system: Operating system and machine architecture.
        python: Python version.
        keras: Keras version.
        backend: Keras backend name.
        backend_version: Version of the backend's framework.

    Example:

    ```python
    from transferkit.timing import MachineInfo

    info = MachineInfo("AMD EPYC", 2, 23.5, (), "Linux x86_64", "3.11.7", "3.15.1",
                       "tensorflow", "2.21.0")
    assert str(info).startswith("AMD EPYC, 2 cores, 24 GiB RAM, no GPU")
    assert info.to_dict()["gpus"] == []
    ```
    """

    cpu: str
    cores: int
    memory_gib: float
    gpus: tuple[str, ...]
    system: str
    python: str
    keras: str
    backend: str
    backend_version: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {**self.__dict__, "gpus": list(self.gpus)}

    def __str__(self) -> str:
        gpus = ", ".join(self.gpus) if self.gpus else "no GPU"
        return (
            f"{self.cpu}, {self.cores} cores, {self.memory_gib:.0f} GiB RAM, {gpus}; "
            f"{self.system}; Python {self.python}, Keras {self.keras}, "
            f"{self.backend} {self.backend_version}"
        )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gib() -> float:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")) / 1024**3
    except (ValueError, OSError, AttributeError):
        return float("nan")


def _backend_devices(backend: str) -> tuple[str, tuple[str, ...]]:
    """The backend framework's version and its accelerators (imports only that framework)."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tuple(d.name for d in tf.config.list_physical_devices("GPU"))
        return str(tf.__version__), gpus
    if backend == "jax":
        import jax

        return str(jax.__version__), tuple(str(d) for d in jax.devices() if d.platform != "cpu")
    if backend == "torch":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return str(torch.__version__), tuple(torch.cuda.get_device_name(i) for i in range(n))
    return "unknown", ()


def machine_info() -> MachineInfo:
    """Describes this machine and software stack, for the record next to a measurement.

    Reads `/proc/cpuinfo` and the backend framework Keras runs on (it imports only that
    framework). Nothing is changed.

    Returns:
        A `MachineInfo`; `str()` gives a one-line description.

    Example:

    ```python
    from transferkit.timing import machine_info

    info = machine_info()
    assert info.cores >= 1 and info.backend in str(info)
    ```
    """
    backend = str(keras.backend.backend())
    version, gpus = _backend_devices(backend)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return MachineInfo(
        cpu=_cpu_name(),
        cores=int(cores or 1),
        memory_gib=_memory_gib(),
        gpus=gpus,
        system=f"{platform.system()} {platform.machine()}",
        python=platform.python_version(),
        keras=str(keras.__version__),
        backend=backend,
        backend_version=version,
    )


def _slice(x: Any, start: int, stop: int) -> Any:
    return keras.tree.map_structure(lambda a: a[start:stop], x)


def _check_positive_int(value: int, arg: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{arg}` must be an integer >= {minimum}. Received: {arg}={value!r}")


def _require_keys(d: Mapping[str, Any], keys: tuple[str, ...], arg: str) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"`{arg}` must be a dict. Received: {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(
            f"`{arg}` is missing keys {missing}. Expected the output of `to_dict()`. "
            f"Received keys: {sorted(d)}"
        )
