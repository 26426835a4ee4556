"""`_serial`: the one dict round trip of the result records, and the format 0.1 wrote."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from transferkit import _serial
from transferkit.timing import InferenceTiming, MachineInfo, TrainingTiming

# What transferkit 0.1 wrote (hand-written `to_dict`), copied from a 0.1 log.
TRAINING_V01 = {
    "total_seconds": 3.5,
    "epoch_seconds": [1.0, 2.5],
    "samples_per_second": 40.0,
    "trainable_params": 10,
    "total_params": 50,
}
INFERENCE_V01 = {
    "batch_size": 32,
    "num_samples": 64,
    "seconds": 0.5,
    "latency_ms_per_batch": 250.0,
    "samples_per_second": 128.0,
}


@pytest.mark.parametrize(
    ("cls", "d", "renamed"),
    [
        (TrainingTiming, TRAINING_V01, {"total_seconds": "train_seconds"}),
        (InferenceTiming, INFERENCE_V01, {}),
    ],
)
def test_reads_the_0_1_format(cls: Any, d: dict[str, Any], renamed: dict[str, str]) -> None:
    record = cls.from_dict(d)
    assert record.to_dict() == {renamed.get(k, k): v for k, v in d.items()}
    assert list(record.to_dict()) == [renamed.get(k, k) for k in d]  # same order
    assert cls.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_total_seconds_is_the_deprecated_name_of_train_seconds() -> None:
    t = TrainingTiming.from_dict(TRAINING_V01)
    with pytest.warns(DeprecationWarning, match="use `train_seconds`"):
        assert t.total_seconds == t.train_seconds == 3.5
    both = TrainingTiming.from_dict({**TRAINING_V01, "train_seconds": 2.0})
    assert both.train_seconds == 2.0  # the new key wins


def test_lists_come_back_as_tuples_and_ints_as_floats() -> None:
    t = TrainingTiming.from_dict({**TRAINING_V01, "total_seconds": 3, "samples_per_second": None})
    assert t.epoch_seconds == (1.0, 2.5)
    assert isinstance(t.train_seconds, float) and t.samples_per_second is None
    assert TrainingTiming.from_dict({**TRAINING_V01, "extra": 1}).total_params == 50


def test_machine_info_to_dict() -> None:
    info = MachineInfo("cpu", 2, 1.0, ("gpu0",), "Linux", "3.11", "3.15", "jax", "0.7")
    expected = {
        "cpu": "cpu",
        "cores": 2,
        "memory_gib": 1.0,
        "gpus": ["gpu0"],
        "system": "Linux",
        "python": "3.11",
        "keras": "3.15",
        "backend": "jax",
        "backend_version": "0.7",
    }
    d = info.to_dict()
    assert d == expected and list(d) == list(expected)  # same keys, values and order
    assert _serial.from_dict(MachineInfo, json.loads(json.dumps(d))) == info


@dataclass(frozen=True)
class _Outer:
    name: str
    timing: TrainingTiming
    optional: TrainingTiming | None = None
    tags: tuple[str, ...] = ()


def test_nested_records_round_trip() -> None:
    outer = _Outer("a", TrainingTiming.from_dict(TRAINING_V01), tags=("x", "y"))
    d = _serial.to_dict(outer)
    assert d["timing"] == outer.timing.to_dict() and d["timing"]["train_seconds"] == 3.5
    assert d["tags"] == ["x", "y"] and d["optional"] is None
    assert _serial.from_dict(_Outer, json.loads(json.dumps(d))) == outer
    old = _serial.from_dict(_Outer, {"name": "b", "timing": TRAINING_V01})  # 0.1's key, nested
    assert old.tags == () and old.timing == outer.timing


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ([1, 2], r"`d` must be a dict \(the output of `to_dict\(\)`\)\. Received: list"),
        ({"name": "a"}, r"`d` is missing keys \['timing'\]\. .*Received keys: \['name'\]"),
    ],
)
def test_from_dict_bad_input(d: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _serial.from_dict(_Outer, d)
