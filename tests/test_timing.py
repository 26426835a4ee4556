"""Tests for `transferkit.timing`."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pytest

from transferkit.timing import (
    EpochTimer,
    InferenceTiming,
    Timer,
    TrainingTiming,
    count_params,
    measure_inference,
)


@pytest.fixture(autouse=True)
def _clear_session() -> Iterator[None]:
    # `free_memory=False` skips a full `gc.collect()` (~0.3 s per test); models here are tiny.
    keras.utils.clear_session(free_memory=False)
    yield


def _tiny_model(num_inputs: int = 4, num_classes: int = 3) -> Any:
    return keras.Sequential(
        [keras.Input((num_inputs,)), keras.layers.Dense(num_classes, activation="softmax")]
    )


# --------------------------------------------------------------- Timer


def test_timer_context_manager() -> None:
    with Timer() as t:
        assert t.running
        time.sleep(0.01)
        during = t.seconds
        assert during >= 0.01
    assert not t.running
    final = t.seconds
    assert final >= during
    time.sleep(0.002)
    assert t.seconds == final  # frozen after exit


def test_timer_start_stop() -> None:
    t = Timer()
    assert t.seconds == 0.0 and not t.running
    assert t.start() is t
    first = t.seconds
    time.sleep(0.005)
    assert t.seconds > first  # grows while running
    elapsed = t.stop()
    assert elapsed == t.seconds >= 0.005
    # Restart resets to zero: the reading is bounded by clock reads around the restart,
    # however long the machine stalls in between (a carried-over 5 ms would exceed them).
    before = time.perf_counter()
    t.start()
    so_far = t.seconds
    after = time.perf_counter()
    assert 0.0 <= so_far <= after - before
    before_stop = time.perf_counter()
    restarted = t.stop()
    after_stop = time.perf_counter()
    assert before_stop - after <= restarted <= after_stop - before
    assert "stopped" in repr(t)


def test_timer_stop_without_start() -> None:
    with pytest.raises(RuntimeError, match=r"`Timer.stop\(\)` was called on a timer that is not"):
        Timer().stop()
    t = Timer().start()
    t.stop()
    with pytest.raises(RuntimeError, match="not running"):
        t.stop()


def test_timer_records_time_when_body_raises() -> None:
    with pytest.raises(KeyError), Timer() as t:
        raise KeyError("boom")
    assert not t.running and t.seconds > 0.0


# --------------------------------------------------------------- EpochTimer


def _fit(model: Any, timer: EpochTimer, epochs: int = 2, n: int = 32) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = rng.integers(0, 3, size=n)
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=[timer])


def test_epoch_timer_in_real_fit() -> None:
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    timer = EpochTimer(num_samples=32)
    _fit(model, timer, epochs=2)
    assert len(timer.epoch_seconds) == 2
    assert all(s > 0.0 for s in timer.epoch_seconds)
    assert sum(timer.epoch_seconds) <= timer.train_seconds
    assert timer.samples_per_second == pytest.approx(32 * 2 / sum(timer.epoch_seconds))
    assert (timer.trainable_params, timer.total_params) == (15, 15)

    result = timer.to_timing()
    assert result.epoch_seconds == tuple(timer.epoch_seconds)
    assert result.train_seconds == timer.train_seconds
    assert result.seconds_per_epoch == pytest.approx(sum(timer.epoch_seconds) / 2)
    assert result.trainable_params == 15
    assert TrainingTiming.from_dict(json.loads(json.dumps(result.to_dict()))) == result

    # Reuse: state is reset at the start of each fit; frozen model -> 0 trainable params.
    model.trainable = False
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    _fit(model, timer, epochs=1)
    assert len(timer.epoch_seconds) == 1
    assert (timer.trainable_params, timer.total_params) == (0, 15)


def test_epoch_timer_without_num_samples() -> None:
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    timer = EpochTimer()
    assert timer.samples_per_second is None and timer.epoch_seconds == []
    _fit(model, timer, epochs=1, n=8)
    assert len(timer.epoch_seconds) == 1
    assert timer.samples_per_second is None
    assert timer.to_timing().samples_per_second is None


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_epoch_timer_bad_num_samples(bad: Any) -> None:
    with pytest.raises(
        ValueError, match=r"`num_samples` must be a positive int\. Received: num_samples="
    ):
        EpochTimer(num_samples=bad)


# --------------------------------------------------------------- TrainingTiming


def test_training_timing() -> None:
    t = TrainingTiming(
        train_seconds=4.0,
        epoch_seconds=(1.0, 2.0, 0.5),
        samples_per_second=None,
        trainable_params=7,
        total_params=9,
    )
    assert t.seconds_per_epoch == pytest.approx(3.5 / 3)
    assert t.num_epochs == 3
    assert TrainingTiming(0.0, (), None, 0, 0).seconds_per_epoch == 0.0
    d = t.to_dict()
    assert d["epoch_seconds"] == [1.0, 2.0, 0.5]
    assert TrainingTiming.from_dict(json.loads(json.dumps(d))) == t
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.train_seconds = 1.0  # type: ignore[misc]
    del d["total_params"]
    with pytest.raises(ValueError, match=r"`d` is missing keys \['total_params'\]"):
        TrainingTiming.from_dict(d)


# --------------------------------------------------------------- measure_inference


def test_measure_inference_consistency() -> None:
    model = _tiny_model()
    x = np.zeros((10, 4), dtype="float32")
    t = measure_inference(model, x, batch_size=4, repeats=2, warmup=1)
    assert (t.batch_size, t.num_samples) == (4, 10)
    assert t.seconds > 0.0
    assert t.latency_ms_per_batch == pytest.approx(t.seconds / math.ceil(10 / 4) * 1000)
    assert t.samples_per_second == pytest.approx(10 / t.seconds)
    d = t.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert InferenceTiming.from_dict(d) == t


def test_measure_inference_reports_best_run() -> None:
    # One batch larger than the data; zero warmup still works.
    model = _tiny_model()
    x = np.ones((3, 4), dtype="float32")
    with Timer() as wall:
        t = measure_inference(model, x, batch_size=256, repeats=3, warmup=0)
    assert t.latency_ms_per_batch == pytest.approx(t.seconds * 1000)
    assert t.seconds * 3 <= wall.seconds  # best of three is at most a third of their sum


def test_measure_inference_multi_input() -> None:
    a = keras.Input((2,), name="a")
    b = keras.Input((3,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Concatenate()([a, b]))
    x = {"a": np.zeros((5, 2), "float32"), "b": np.zeros((5, 3), "float32")}
    t = measure_inference(model, x, batch_size=2, repeats=1)
    assert t.num_samples == 5


_BAD_INFERENCE: list[tuple[Any, dict[str, Any], str]] = [
    (
        np.zeros((4, 4), "float32"),
        {"batch_size": 0},
        r"`batch_size` must be a positive int\. Received: batch_size=0",
    ),
    (np.zeros((4, 4), "float32"), {"batch_size": 2.0}, r"Received: batch_size=2.0"),
    (
        np.zeros((4, 4), "float32"),
        {"repeats": 0},
        r"`repeats` must be a positive int\. Received: repeats=0",
    ),
    (
        np.zeros((4, 4), "float32"),
        {"warmup": -1},
        r"`warmup` must be a non-negative int\. Received: warmup=-1",
    ),
    (np.zeros((0, 4), "float32"), {}, r"`x` must contain at least one sample"),
    ([np.zeros((4, 4)), np.zeros((3, 4))], {}, r"same number of samples.*lengths \[3, 4\]"),
]


@pytest.mark.parametrize(("x", "kwargs", "match"), _BAD_INFERENCE)
def test_measure_inference_bad_input(x: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        measure_inference(_tiny_model(), x, **kwargs)


# --------------------------------------------------------------- count_params


def test_count_params() -> None:
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3),  # 4*3 + 3 = 15 trainable
            keras.layers.BatchNormalization(),  # gamma, beta trainable; mean, var not: 6 + 6
            keras.layers.Dense(2),  # 3*2 + 2 = 8 trainable
        ]
    )
    assert count_params(model) == (15 + 6 + 8, 15 + 12 + 8)
    model.layers[0].trainable = False
    assert count_params(model) == (6 + 8, 35)
    assert count_params(keras.layers.Dense(3)) == (0, 0)  # unbuilt layer


def test_machine_info_describes_this_machine_and_backend() -> None:
    import os

    from transferkit.timing import MachineInfo, machine_info

    info = machine_info()
    assert isinstance(info, MachineInfo)
    assert info.backend == keras.backend.backend()
    assert info.keras == keras.__version__
    assert 1 <= info.cores <= (os.cpu_count() or 1)
    assert info.memory_gib > 0
    text = str(info)
    assert f"{info.cores} cores" in text and info.backend in text and info.cpu in text
    assert json.loads(json.dumps(info.to_dict()))["backend"] == info.backend
    assert MachineInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
