"""Tests for `transferkit.metrics`."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pytest

from transferkit.metrics import (
    HEADLINE_METRICS,
    ClassificationMetrics,
    ClassMetrics,
    evaluate,
    metrics_from_predictions,
)


@pytest.fixture(autouse=True)
def _clear_session() -> Iterator[None]:
    # `free_memory=False` skips a full `gc.collect()` (~0.3 s per test); models here are tiny.
    keras.utils.clear_session(free_memory=False)
    yield


def _identity_classifier(num_classes: int = 3) -> Any:
    """Softmax over the inputs themselves: the prediction is `argmax(x)`."""
    model = keras.Sequential(
        [keras.Input((num_classes,)), keras.layers.Dense(num_classes, activation="softmax")]
    )
    model.layers[0].set_weights([np.eye(num_classes, dtype="float32"), np.zeros(num_classes)])
    return model


def _sigmoid_classifier() -> Any:
    """Predicts class 1 exactly when `x[:, 0] > 0`."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.layers[0].set_weights([np.array([[10.0], [0.0]], dtype="float32"), np.zeros(1)])
    return model


def _one_hot(labels: list[int], k: int) -> np.ndarray[Any, Any]:
    return np.eye(k, dtype="float32")[labels]


def _assert_plain(obj: Any) -> None:
    """Everything in `obj` is a builtin JSON type (no NumPy scalars)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert type(k) is str
            _assert_plain(v)
    elif isinstance(obj, list):
        for v in obj:
            _assert_plain(v)
    else:
        assert obj is None or type(obj) in (int, float, str, bool), type(obj)


# --------------------------------------------------------------- hand-computed values


def test_two_class_hand_computed() -> None:
    # confusion: true 0 -> [1 correct, 1 as class 1]; true 1 -> [0, 2 correct]
    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1])
    assert m.accuracy == 0.75
    assert m.confusion_matrix == ((1, 1), (0, 2))
    c0, c1 = m.per_class
    assert (c0.precision, c0.recall, c0.support) == (1.0, 0.5, 2)
    assert c0.f1 == pytest.approx(2 / 3)
    assert (c1.precision, c1.recall, c1.support) == pytest.approx((2 / 3, 1.0, 2))
    assert c1.f1 == pytest.approx(0.8)
    assert m.precision_macro == pytest.approx(5 / 6)
    assert m.recall_macro == pytest.approx(0.75)
    assert m.f1_macro == pytest.approx((2 / 3 + 0.8) / 2)
    # equal support: weighted == macro
    assert m.f1_weighted == pytest.approx(m.f1_macro)
    assert m.num_samples == 4
    assert m.class_names == ("0", "1")


def test_weighted_averages_hand_computed() -> None:
    # class 0: 3 samples, 2 found, no false positives; class 1: 1 sample, found, 1 FP.
    m = metrics_from_predictions([0, 0, 0, 1], [0, 0, 1, 1])
    c0, c1 = m.per_class
    assert (c0.precision, c0.recall, c0.f1) == pytest.approx((1.0, 2 / 3, 0.8))
    assert (c1.precision, c1.recall, c1.f1) == pytest.approx((0.5, 1.0, 2 / 3))
    assert m.precision_weighted == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)
    assert m.recall_weighted == pytest.approx((3 * 2 / 3 + 1 * 1.0) / 4)
    assert m.f1_weighted == pytest.approx((3 * 0.8 + 1 * 2 / 3) / 4)
    assert m.precision_macro == pytest.approx(0.75)


def test_absent_class_counts_as_zero_in_macro_average() -> None:
    m = metrics_from_predictions([0, 0, 0], [0, 0, 0], num_classes=3)
    assert m.accuracy == 1.0
    assert m.f1_macro == pytest.approx(1 / 3)
    assert m.f1_weighted == 1.0
    assert [c.support for c in m.per_class] == [3, 0, 0]
    assert m.confusion_matrix == ((3, 0, 0), (0, 0, 0), (0, 0, 0))


def test_label_formats_agree() -> None:
    y_true = [0, 2, 1, 2, 0]
    y_pred = [0, 1, 1, 2, 2]
    ref = metrics_from_predictions(y_true, y_pred)
    assert metrics_from_predictions(np.array(y_true)[:, None], y_pred) == ref
    assert metrics_from_predictions(_one_hot(y_true, 3), _one_hot(y_pred, 3)) == ref
    assert metrics_from_predictions(np.array(y_true, dtype="float32"), y_pred) == ref
    scores = _one_hot(y_pred, 3) * 0.8 + 0.1  # argmax of scores == y_pred
    assert metrics_from_predictions(y_true, scores) == ref


def test_num_classes_inference() -> None:
    assert metrics_from_predictions([0, 1], [1, 1]).num_classes == 2
    assert metrics_from_predictions([0, 1], [1, 3]).num_classes == 4
    assert metrics_from_predictions([0, 1], [1, 1], num_classes=5).num_classes == 5
    assert metrics_from_predictions(_one_hot([0, 0], 4), [0, 0]).num_classes == 4
    named = metrics_from_predictions([0, 1], [1, 1], class_names=["a", "b", "c"])
    assert named.class_names == ("a", "b", "c")
    assert [c.name for c in named.per_class] == ["a", "b", "c"]
    assert [c.label for c in named.per_class] == [0, 1, 2]


def test_confusion_matrix_array_and_plain_types() -> None:
    m = metrics_from_predictions([0, 1, 2, 2], [0, 2, 2, 1])
    cm = m.confusion_matrix_array
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    assert all(type(v) is int for row in m.confusion_matrix for v in row)
    assert type(m.accuracy) is float
    assert all(type(c.support) is int for c in m.per_class)


def test_frozen() -> None:
    m = metrics_from_predictions([0, 1], [0, 1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.accuracy = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.per_class[0].f1 = 0.0  # type: ignore[misc]


# --------------------------------------------------------------- serialisation / report


def test_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    m = metrics_from_predictions(
        rng.integers(0, 4, size=50), rng.integers(0, 4, size=50), class_names=list("wxyz")
    )
    d = m.to_dict()
    _assert_plain(d)
    text = json.dumps(d)
    back = ClassificationMetrics.from_dict(json.loads(text))
    assert back == m
    assert back.to_dict() == d
    assert ClassMetrics.from_dict(m.per_class[1].to_dict()) == m.per_class[1]


def test_from_dict_missing_key() -> None:
    d = metrics_from_predictions([0, 1], [0, 1]).to_dict()
    del d["f1_macro"]
    with pytest.raises(ValueError, match=r"`d` is missing keys \['f1_macro'\]"):
        ClassificationMetrics.from_dict(d)


def test_str_report() -> None:
    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1], class_names=["cat", "dog"])
    text = str(m)
    assert "accuracy: 0.7500" in text
    assert "macro F1: 0.7333" in text
    assert re.search(r"cat\s+1\.0000\s+0\.5000\s+0\.6667\s+2", text)
    assert re.search(r"dog\s+0\.6667\s+1\.0000\s+0\.8000\s+2", text)
    assert len(text.splitlines()) == 4 + 2


def test_headline() -> None:
    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1])
    assert HEADLINE_METRICS == ("accuracy", "precision_macro", "recall_macro", "f1_macro")
    fields = {f.name for f in dataclasses.fields(ClassificationMetrics)}
    assert set(HEADLINE_METRICS) <= fields
    h = m.headline()
    assert list(h) == list(HEADLINE_METRICS)
    assert h["accuracy"] == 0.75 and h["f1_macro"] == m.f1_macro


# --------------------------------------------------------------- bad input: predictions

_BAD_PREDICTIONS: list[tuple[Any, Any, dict[str, Any], str]] = [
    ([0, 1, 1], [0, 1], {}, r"same number of samples.*len\(y_true\)=3, len\(y_pred\)=2"),
    ([], [], {}, r"`y_true` must contain at least one sample"),
    (np.zeros((2, 2, 2)), [0, 1], {}, r"`y_true` must be .*Received: y_true.ndim=3"),
    ([0, 1], np.zeros((2, 1, 1)), {}, r"`y_pred` must be .*Received: y_pred.ndim=3"),
    ([0.5, 1.0], [0, 1], {}, r"`y_true` must contain integer class labels.*1 non-integer"),
    ([0, np.nan], [0, 1], {}, r"`y_true` must contain integer class labels.*1 non-integer"),
    ([0, -1], [0, 1], {}, r"`y_true` labels must be non-negative.*min label -1"),
    ([0, 1], [0, 3], {"num_classes": 3}, r"`y_pred` labels must be in the range \[0, 3\)"),
    ([0, 1], [0, 1], {"num_classes": 0}, r"`num_classes` must be a positive int\. Received"),
    ([0, 1], [0, 1], {"class_names": ["a"], "num_classes": 2}, r"`class_names` must have one"),
    ([0, 1, 2], [0, 1, 2], {"class_names": ["a", "b"]}, r"`y_true` labels must be in the"),
    ([0, 1], [0, 1], {"class_names": "ab"}, r"`class_names` must be a sequence of strings"),
    (
        _one_hot([0, 1], 3),
        [0, 1],
        {"num_classes": 2},
        r"`y_true` is one-hot with 3 columns, but there are 2 classes",
    ),
    (["a", "b"], [0, 1], {}, r"`y_true` must be numeric"),
]


@pytest.mark.parametrize(("y_true", "y_pred", "kwargs", "match"), _BAD_PREDICTIONS)
def test_metrics_from_predictions_bad_input(
    y_true: Any, y_pred: Any, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        metrics_from_predictions(y_true, y_pred, **kwargs)


# --------------------------------------------------------------- evaluate with real models


def test_evaluate_matches_hand_computed_predictions() -> None:
    model = _identity_classifier(3)
    # predictions are argmax(x): [0, 1, 2, 2, 0, 1]
    x = np.array(
        [[5, 0, 0], [0, 5, 0], [0, 0, 5], [1, 0, 2], [3, 2, 1], [0, 1, 0]], dtype="float32"
    )
    y = np.array([0, 1, 2, 1, 1, 1])
    m = evaluate(model, x, y, class_names=["a", "b", "c"], batch_size=4)
    assert m == metrics_from_predictions(y, [0, 1, 2, 2, 0, 1], class_names=["a", "b", "c"])
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.confusion_matrix == ((1, 0, 0), (1, 2, 1), (0, 0, 1))
    # one-hot labels give the same result
    assert evaluate(model, x, _one_hot(y.tolist(), 3), class_names=["a", "b", "c"]) == m


def test_evaluate_sigmoid_binary() -> None:
    model = _sigmoid_classifier()
    x = np.array([[1, 0], [-1, 0], [2, 3], [-2, 3], [0.5, 0]], dtype="float32")
    y = np.array([1, 0, 0, 0, 1])  # predictions: [1, 0, 1, 0, 1]
    m = evaluate(model, x, y)
    assert m.num_classes == 2
    assert m.confusion_matrix == ((2, 1), (0, 2))
    assert m.accuracy == pytest.approx(0.8)
    assert evaluate(model, x, y[:, None]) == m


def test_evaluate_subclassed_and_multi_input_models() -> None:
    class Tiny(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(2, activation="softmax")

        def call(self, inputs: Any) -> Any:
            return self.dense(inputs)

    x = np.random.default_rng(1).normal(size=(6, 3)).astype("float32")
    y = np.array([0, 1, 0, 1, 0, 1])
    m = evaluate(Tiny(), x, y)
    assert m.num_samples == 6 and m.num_classes == 2
    with pytest.raises(ValueError, match=r"`y` labels must be in the range \[0, 2\)"):
        evaluate(Tiny(), x, y + 1)

    a = keras.Input((2,), name="a")
    b = keras.Input((3,), name="b")
    out = keras.layers.Dense(4, activation="softmax")(keras.layers.Concatenate()([a, b]))
    multi = keras.Model({"a": a, "b": b}, out)
    xs = {"a": x[:, :2], "b": x}
    m2 = evaluate(multi, xs, np.array([0, 1, 2, 3, 0, 1]))
    assert m2.num_classes == 4 and m2.num_samples == 6


def _bad_x() -> np.ndarray[Any, Any]:
    x = np.zeros((4, 3), dtype="float32")
    x[0, 0] = np.nan
    x[2, 1] = np.inf
    return x


_GOOD_X = np.zeros((4, 3), dtype="float32")
_GOOD_Y = np.array([0, 1, 2, 0])

_BAD_EVALUATE: list[tuple[Any, Any, dict[str, Any], str]] = [
    (_GOOD_X, _GOOD_Y[:3], {}, r"`x` and `y` must have the same.*len\(x\)=4, len\(y\)=3"),
    (_GOOD_X[:0], _GOOD_Y[:0], {}, r"`x` must contain at least one sample"),
    (_bad_x(), _GOOD_Y, {}, r"`x` must not contain NaN or inf. Received: 2 non-finite"),
    (_GOOD_X, np.array([0, 1, 3, 0]), {}, r"`y` labels must be in the range \[0, 3\)"),
    (_GOOD_X, np.zeros((4, 3, 1)), {}, r"`y` must be integer labels.*Received: y.ndim=3"),
    (_GOOD_X, _one_hot([0, 1, 2, 3], 4), {}, r"`y` is one-hot with 4 columns.*3 classes"),
    (_GOOD_X, _GOOD_Y, {"class_names": ["a", "b"]}, r"`class_names` must have one name"),
    (_GOOD_X, _GOOD_Y, {"batch_size": 0}, r"`batch_size` must be a positive int\. Received"),
]


@pytest.mark.parametrize(("x", "y", "kwargs", "match"), _BAD_EVALUATE)
def test_evaluate_bad_input(x: Any, y: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(_identity_classifier(3), x, y, **kwargs)


def test_evaluate_rejects_multi_output_model() -> None:
    inp = keras.Input((3,))
    model = keras.Model(inp, [keras.layers.Dense(2)(inp), keras.layers.Dense(2)(inp)])
    with pytest.raises(ValueError, match=r"`model` must have a single output"):
        evaluate(model, _GOOD_X, np.array([0, 1, 1, 0]))
