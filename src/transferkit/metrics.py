"""Classification metrics for evaluating transferred models.

`evaluate` runs a Keras classifier on data and returns a `ClassificationMetrics` record
(accuracy, macro/weighted precision, recall and F1, per-class scores and the confusion matrix).
`metrics_from_predictions` computes the same record from labels already predicted.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from . import _serial
from ._labels import check_class_names, check_labels, class_names_for, to_labels
from ._validate import as_numpy, check_lengths, check_positive_int, sample_count
from .freezing._layers import output_activation, output_units
from .training._feed import predict
from .types import IntArray, Model

__all__ = [
    "HEADLINE_METRICS",
    "ClassMetrics",
    "ClassificationMetrics",
    "evaluate",
    "metrics_from_predictions",
]

HEADLINE_METRICS: tuple[str, ...] = ("accuracy", "precision_macro", "recall_macro", "f1_macro")
"""Names of the `ClassificationMetrics` fields shown in summary tables."""


@dataclass(frozen=True)
class ClassMetrics(_serial.Record):
    """Precision, recall, F1 and support of a single class.

    Attributes:
        label: Integer class index.
        name: Human-readable class name (`str(label)` when no names were given).
        precision: Precision of the class (0 when nothing was predicted as it).
        recall: Recall of the class (0 when the class has no samples).
        f1: F1 score of the class.
        support: Number of true samples of the class.

    Example:

    ```python
    from transferkit.metrics import ClassMetrics

    m = ClassMetrics(label=0, name="cat", precision=1.0, recall=0.5, f1=2 / 3, support=2)
    assert ClassMetrics.from_dict(m.to_dict()) == m
    ```
    """

    label: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationMetrics(_serial.Record):
    """Result of evaluating a classifier: headline scores, per-class scores, confusion matrix.

    All scores are computed with scikit-learn over the labels `range(num_classes)` with
    `zero_division=0`, so a class that never occurs and is never predicted still counts
    (with score 0) in the macro averages.

    Attributes:
        accuracy: Fraction of samples predicted correctly.
        precision_macro: Unweighted mean of per-class precision.
        recall_macro: Unweighted mean of per-class recall.
        f1_macro: Unweighted mean of per-class F1.
        precision_weighted: Support-weighted mean of per-class precision.
        recall_weighted: Support-weighted mean of per-class recall.
        f1_weighted: Support-weighted mean of per-class F1.
        per_class: One `ClassMetrics` per class, in label order.
        confusion_matrix: `confusion_matrix[i][j]` is the number of samples of true class
            `i` predicted as class `j`.
        class_names: Name of each class, in label order.
        num_samples: Number of evaluated samples.

    Example:

    ```python
    import json

    from transferkit.metrics import ClassificationMetrics, metrics_from_predictions

    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1], class_names=["cat", "dog"])
    assert m.accuracy == 0.75 and m.confusion_matrix == ((1, 1), (0, 2))
    assert m.confusion_matrix_array.sum() == m.num_samples == 4
    assert m.headline()["accuracy"] == 0.75 and "cat" in str(m)
    assert ClassificationMetrics.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    ```
    """

    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    per_class: tuple[ClassMetrics, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    class_names: tuple[str, ...]
    num_samples: int

    @property
    def num_classes(self) -> int:
        """Number of classes (rows of the confusion matrix)."""
        return len(self.class_names)

    @property
    def confusion_matrix_array(self) -> IntArray:
        """The confusion matrix as an `int64` array of shape `(num_classes, num_classes)`."""
        n = len(self.class_names)
        return np.array(self.confusion_matrix, dtype=np.int64).reshape(n, n)

    def headline(self) -> dict[str, float]:
        """The metrics named in `HEADLINE_METRICS` as a `{name: value}` dict."""
        return {name: float(getattr(self, name)) for name in HEADLINE_METRICS}

    def __str__(self) -> str:
        width = max([len("class"), *(len(c.name) for c in self.per_class)])
        lines = [
            f"ClassificationMetrics on {self.num_samples} samples, {self.num_classes} classes",
            f"  accuracy: {self.accuracy:.4f}   macro F1: {self.f1_macro:.4f}   "
            f"weighted F1: {self.f1_weighted:.4f}",
            f"  macro precision: {self.precision_macro:.4f}   "
            f"macro recall: {self.recall_macro:.4f}",
            f"  {'class':<{width}}  precision     recall         f1    support",
        ]
        lines += [
            f"  {c.name:<{width}}  {c.precision:9.4f}  {c.recall:9.4f}  {c.f1:9.4f}  {c.support:9d}"
            for c in self.per_class
        ]
        return "\n".join(lines)


def metrics_from_predictions(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> ClassificationMetrics:
    """Computes classification metrics from true and predicted labels.

    Pure NumPy/scikit-learn: no model is involved. Both arguments accept integer labels
    of shape `(n,)` or `(n, 1)`, or one-hot / score arrays of shape `(n, k)` with `k > 1`,
    which are reduced with `argmax`.

    Args:
        y_true: NumPy array (or list). True labels.
        y_pred: NumPy array (or list). Predicted labels, same number of samples as `y_true`.
        num_classes: int. Number of classes; metrics are computed over the labels
            `range(num_classes)`. Defaults to `None`, meaning `len(class_names)` when
            names are given, else the one-hot width, else the largest label + 1.
        class_names: Sequence of strings. One name per class. Defaults to `None`, meaning
            the names `"0"`, `"1"`, ...

    Returns:
        A `ClassificationMetrics`.

    Raises:
        ValueError: If the inputs are empty, have different lengths, have the wrong rank,
            contain non-integer or out-of-range labels, or if `class_names` does not have
            `num_classes` entries.

    Example:

    ```python
    from transferkit.metrics import metrics_from_predictions

    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1])
    assert m.accuracy == 0.75
    assert m.per_class[0].recall == 0.5 and m.per_class[1].precision == 2 / 3
    ```
    """
    true_labels, true_width = to_labels(y_true, "y_true")
    pred_labels, pred_width = to_labels(y_pred, "y_pred")
    check_lengths("y_true", true_labels.shape[0], "y_pred", pred_labels.shape[0])
    names = check_class_names(class_names)
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
    elif names is not None:
        num_classes = len(names)
    else:
        num_classes = max(
            int(true_labels.max()) + 1, int(pred_labels.max()) + 1, true_width or 0, pred_width or 0
        )
    check_labels(true_labels, true_width, num_classes, "y_true")
    check_labels(pred_labels, pred_width, num_classes, "y_pred")
    return _compute(true_labels, pred_labels, num_classes, names)


def evaluate(
    model: Model,
    x: Any,
    y: npt.ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    batch_size: int = 256,
    verbose: int | str = 0,
) -> ClassificationMetrics:
    """Evaluates a Keras classifier on `(x, y)` and returns classification metrics.

    Runs `model.predict`, turns the outputs into labels (argmax over `k > 1` outputs; a
    single output unit is a binary classifier: a probability, class 1 when `> 0.5`, or a
    logit, class 1 when `> 0`, if the output layer is linear, as `fine_tune` trains such
    heads with `from_logits=True`), then computes the metrics as `metrics_from_predictions`.

    Args:
        model: `keras.Model`. A classifier whose (single) output has shape `(n, k)`.
        x: NumPy array, or a list/dict of arrays for multi-input models. The inputs.
        y: NumPy array. True labels: integers of shape `(n,)` or `(n, 1)`, or one-hot of
            shape `(n, k)`.
        class_names: Sequence of strings. One name per class. Defaults to `None`, meaning
            the names `"0"`, `"1"`, ...
        batch_size: int. Batch size for `model.predict`. Defaults to `256`.
        verbose: Verbosity passed to `model.predict`. Defaults to `0`.

    Returns:
        A `ClassificationMetrics`.

    Raises:
        ValueError: If `x` is empty or contains NaN/inf, `x` and `y` have different
            lengths, `y` has the wrong rank or labels outside `[0, num_classes)`, the
            model output is not `(n, k)`, or `class_names` has the wrong length.

    Example:

    ```python
    import keras
    import numpy as np

    from transferkit.metrics import evaluate

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    m = evaluate(model, x, y, class_names=["a", "b", "c"])
    assert m.num_samples == 8 and len(m.per_class) == 3
    ```
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    num_x = sample_count(x, finite=True)
    y_labels, y_width = to_labels(y, "y")
    check_lengths("x", num_x, "y", y_labels.shape[0])
    names = check_class_names(class_names)
    try:  # fail before predicting when the output width is known
        num_classes: int | None = max(output_units(model), 2)
    except (ValueError, AttributeError, TypeError):
        num_classes = None
    if num_classes is not None:
        check_labels(y_labels, y_width, num_classes, "y")
        class_names_for(names, num_classes)

    probs = predict(model, x, batch_size, verbose)
    if isinstance(probs, (list, tuple, dict)):
        raise ValueError(
            "`model` must have a single output to be evaluated as a classifier. "
            f"Received: a model returning a {type(probs).__name__} of outputs. "
            "Evaluate a single-output sub-model instead."
        )
    probs = as_numpy(probs)
    if probs.ndim == 1:
        probs = probs[:, None]
    if probs.ndim != 2 or probs.shape[0] != num_x:
        raise ValueError(
            "`model` output must have shape (n, k) with n = len(x). "
            f"Received: output shape {probs.shape} for len(x)={num_x}"
        )
    if probs.shape[1] == 1:
        threshold = 0.0 if _reads_logits(model, probs) else 0.5
        pred_labels = (probs[:, 0] > threshold).astype(np.int64)
    else:
        pred_labels = np.argmax(probs, axis=1).astype(np.int64)
    predicted_classes = max(int(probs.shape[1]), 2)
    if num_classes != predicted_classes:
        check_labels(y_labels, y_width, predicted_classes, "y")
    return _compute(y_labels, pred_labels, predicted_classes, names)


# --------------------------------------------------------------------------- helpers


def _compute(
    y_true: IntArray, y_pred: IntArray, num_classes: int, names: tuple[str, ...] | None
) -> ClassificationMetrics:
    labels, names = list(range(num_classes)), class_names_for(names, num_classes)
    scores = {
        average: precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        for average in ("macro", "weighted", None)
    }
    p, r, f, s = scores[None]
    per_class = tuple(
        ClassMetrics(i, names[i], float(p[i]), float(r[i]), float(f[i]), int(s[i])) for i in labels
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        precision_macro=float(scores["macro"][0]),
        recall_macro=float(scores["macro"][1]),
        f1_macro=float(scores["macro"][2]),
        precision_weighted=float(scores["weighted"][0]),
        recall_weighted=float(scores["weighted"][1]),
        f1_weighted=float(scores["weighted"][2]),
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm),
        class_names=names,
        num_samples=int(y_true.shape[0]),
    )


def _reads_logits(model: Model, outputs: npt.NDArray[Any]) -> bool:
    """Whether a one-unit output is a logit: a linear last layer, or values outside [0, 1]."""
    with suppress(ValueError, TypeError, AttributeError):
        if (activation := output_activation(model)) is not None:
            return activation == "linear"
    return bool(np.any((outputs < 0) | (outputs > 1)))
