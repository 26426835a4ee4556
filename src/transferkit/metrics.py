"""Classification metrics for evaluating transferred models.

`evaluate` runs a Keras classifier on data and returns a `ClassificationMetrics`
record (accuracy, macro/weighted precision, recall and F1, per-class scores and the
confusion matrix). `metrics_from_predictions` computes the same record from labels
that are already predicted, without touching Keras.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from ._data import output_activation
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
class ClassMetrics:
    """Precision, recall, F1 and support of a single class.

    Args:
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
    assert m.name == "cat"
    ```
    """

    label: int
    name: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_dict(self) -> dict[str, Any]:
        """Returns the class metrics as a JSON-serialisable dict.

        Returns:
            A dict with keys `label`, `name`, `precision`, `recall`, `f1`, `support`.

        Example:

        ```python
        from transferkit.metrics import ClassMetrics

        m = ClassMetrics(label=1, name="dog", precision=0.5, recall=1.0, f1=2 / 3, support=1)
        assert ClassMetrics.from_dict(m.to_dict()) == m
        ```
        """
        return {
            "label": self.label,
            "name": self.name,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassMetrics:
        """Rebuilds a `ClassMetrics` from the output of `to_dict`.

        Args:
            d: Mapping. A dict as produced by `ClassMetrics.to_dict`.

        Returns:
            The equal `ClassMetrics`.

        Raises:
            ValueError: If a key is missing.

        Example:

        ```python
        from transferkit.metrics import ClassMetrics

        d = {"label": 0, "name": "0", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}
        assert ClassMetrics.from_dict(d).support == 3
        ```
        """
        _require_keys(d, ("label", "name", "precision", "recall", "f1", "support"), "d")
        return cls(
            label=int(d["label"]),
            name=str(d["name"]),
            precision=float(d["precision"]),
            recall=float(d["recall"]),
            f1=float(d["f1"]),
            support=int(d["support"]),
        )


@dataclass(frozen=True)
class ClassificationMetrics:
    """Result of evaluating a classifier: headline scores, per-class scores, confusion matrix.

    All scores are computed with scikit-learn over the labels `range(num_classes)` with
    `zero_division=0`, so a class that never occurs and is never predicted still counts
    (with score 0) in the macro averages.

    Args:
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
    from transferkit.metrics import metrics_from_predictions

    m = metrics_from_predictions([0, 0, 1, 1], [0, 1, 1, 1], class_names=["cat", "dog"])
    assert m.accuracy == 0.75
    assert m.confusion_matrix == ((1, 1), (0, 2))
    print(m)
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
        """The confusion matrix as an `int64` NumPy array of shape `(num_classes, num_classes)`.

        Example:

        ```python
        from transferkit.metrics import metrics_from_predictions

        cm = metrics_from_predictions([0, 1, 1], [0, 1, 0]).confusion_matrix_array
        assert cm.shape == (2, 2) and cm.sum() == 3
        ```
        """
        n = len(self.class_names)
        return np.array(self.confusion_matrix, dtype=np.int64).reshape(n, n)

    def headline(self) -> dict[str, float]:
        """Returns the metrics named in `HEADLINE_METRICS` as a `{name: value}` dict.

        Returns:
            A dict mapping each name in `HEADLINE_METRICS` to its value.

        Example:

        ```python
        from transferkit.metrics import HEADLINE_METRICS, metrics_from_predictions

        h = metrics_from_predictions([0, 1], [0, 1]).headline()
        assert tuple(h) == HEADLINE_METRICS and h["accuracy"] == 1.0
        ```
        """
        return {name: float(getattr(self, name)) for name in HEADLINE_METRICS}

    def to_dict(self) -> dict[str, Any]:
        """Returns the metrics as a dict of plain, JSON-serialisable Python types.

        Returns:
            A dict with one key per field; `per_class` is a list of dicts and
            `confusion_matrix` a list of lists of ints.

        Example:

        ```python
        import json

        from transferkit.metrics import ClassificationMetrics, metrics_from_predictions

        m = metrics_from_predictions([0, 1, 2, 2], [0, 2, 2, 1])
        text = json.dumps(m.to_dict())
        assert ClassificationMetrics.from_dict(json.loads(text)) == m
        ```
        """
        return {
            "accuracy": self.accuracy,
            "precision_macro": self.precision_macro,
            "recall_macro": self.recall_macro,
            "f1_macro": self.f1_macro,
            "precision_weighted": self.precision_weighted,
            "recall_weighted": self.recall_weighted,
            "f1_weighted": self.f1_weighted,
            "per_class": [c.to_dict() for c in self.per_class],
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
            "class_names": list(self.class_names),
            "num_samples": self.num_samples,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassificationMetrics:
        """Rebuilds a `ClassificationMetrics` from the output of `to_dict`.

        Args:
            d: Mapping. A dict as produced by `ClassificationMetrics.to_dict` (possibly
                after a JSON round trip).

        Returns:
            A `ClassificationMetrics` equal to the one that produced `d`.

        Raises:
            ValueError: If a key is missing.

        Example:

        ```python
        from transferkit.metrics import ClassificationMetrics, metrics_from_predictions

        m = metrics_from_predictions([1, 0, 1], [1, 0, 0])
        assert ClassificationMetrics.from_dict(m.to_dict()) == m
        ```
        """
        _require_keys(d, _FIELDS, "d")
        return cls(
            accuracy=float(d["accuracy"]),
            precision_macro=float(d["precision_macro"]),
            recall_macro=float(d["recall_macro"]),
            f1_macro=float(d["f1_macro"]),
            precision_weighted=float(d["precision_weighted"]),
            recall_weighted=float(d["recall_weighted"]),
            f1_weighted=float(d["f1_weighted"]),
            per_class=tuple(ClassMetrics.from_dict(c) for c in d["per_class"]),
            confusion_matrix=tuple(tuple(int(v) for v in row) for row in d["confusion_matrix"]),
            class_names=tuple(str(n) for n in d["class_names"]),
            num_samples=int(d["num_samples"]),
        )

    def __str__(self) -> str:
        """Returns a short human-readable report with a per-class table."""
        width = max([len("class"), *(len(c.name) for c in self.per_class)])
        lines = [
            f"ClassificationMetrics on {self.num_samples} samples, {self.num_classes} classes",
            f"  accuracy: {self.accuracy:.4f}   macro F1: {self.f1_macro:.4f}   "
            f"weighted F1: {self.f1_weighted:.4f}",
            f"  macro precision: {self.precision_macro:.4f}   "
            f"macro recall: {self.recall_macro:.4f}",
            f"  {'class':<{width}}  precision     recall         f1    support",
        ]
        for c in self.per_class:
            lines.append(
                f"  {c.name:<{width}}  {c.precision:9.4f}  {c.recall:9.4f}  {c.f1:9.4f}  "
                f"{c.support:9d}"
            )
        return "\n".join(lines)


_FIELDS: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "per_class",
    "confusion_matrix",
    "class_names",
    "num_samples",
)


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
        num_classes: Integer. Number of classes; metrics are computed over the labels
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
    true_labels, true_width = _to_labels(y_true, "y_true")
    pred_labels, pred_width = _to_labels(y_pred, "y_pred")
    if true_labels.shape[0] != pred_labels.shape[0]:
        raise ValueError(
            "`y_true` and `y_pred` must have the same number of samples. "
            f"Received: len(y_true)={true_labels.shape[0]}, len(y_pred)={pred_labels.shape[0]}"
        )
    names = _check_class_names(class_names)
    if num_classes is not None:
        _check_num_classes(num_classes)
    elif names is not None:
        num_classes = len(names)
    else:
        num_classes = max(
            int(true_labels.max()) + 1,
            int(pred_labels.max()) + 1,
            true_width or 0,
            pred_width or 0,
        )
    for arg, width in (("y_true", true_width), ("y_pred", pred_width)):
        if width is not None and width != num_classes:
            raise ValueError(
                f"`{arg}` is one-hot/scores with {width} columns, but there are "
                f"{num_classes} classes. Expected shape (n, {num_classes}) or integer labels "
                f"of shape (n,). Received: {arg}.shape=(n, {width})"
            )
    _check_label_range(true_labels, num_classes, "y_true")
    _check_label_range(pred_labels, num_classes, "y_pred")
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
    heads with `from_logits=True`), then calls `metrics_from_predictions`.

    Args:
        model: `keras.Model`. A classifier whose (single) output has shape `(n, k)`.
        x: NumPy array, or a list/dict of arrays for multi-input models. The inputs.
        y: NumPy array. True labels: integers of shape `(n,)` or `(n, 1)`, or one-hot of
            shape `(n, k)`.
        class_names: Sequence of strings. One name per class. Defaults to `None`, meaning
            the names `"0"`, `"1"`, ...
        batch_size: Integer. Batch size for `model.predict`. Defaults to `256`.
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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    num_x = _check_x(x)
    y_labels, y_width = _to_labels(y, "y")
    if num_x != y_labels.shape[0]:
        raise ValueError(
            "`x` and `y` must have the same number of samples. "
            f"Received: len(x)={num_x}, len(y)={y_labels.shape[0]}"
        )
    names = _check_class_names(class_names)

    # Fail fast (before predicting) when the model's output width is known statically.
    num_classes = _static_num_classes(model)
    if num_classes is not None:
        _check_model_labels(y_labels, y_width, num_classes, names)

    probs = model.predict(x, batch_size=batch_size, verbose=verbose)
    if isinstance(probs, (list, tuple, dict)):
        raise ValueError(
            "`model` must have a single output to be evaluated as a classifier. "
            f"Received: a model returning a {type(probs).__name__} of outputs. "
            "Evaluate a single-output sub-model instead."
        )
    probs = _as_numpy(probs)
    if probs.ndim == 1:
        probs = probs[:, None]
    if probs.ndim != 2 or probs.shape[0] != num_x:
        raise ValueError(
            "`model` output must have shape (n, k) with n = len(x). "
            f"Received: output shape {probs.shape} for len(x)={num_x}"
        )
    units = probs.shape[1]
    if units == 1:
        threshold = 0.0 if _reads_logits(model, probs) else 0.5
        pred_labels = (probs[:, 0] > threshold).astype(np.int64)
        predicted_classes = 2
    else:
        pred_labels = np.argmax(probs, axis=1).astype(np.int64)
        predicted_classes = units
    if num_classes is None or num_classes != predicted_classes:
        num_classes = predicted_classes
        _check_model_labels(y_labels, y_width, num_classes, names)
    return _compute(y_labels, pred_labels, num_classes, names)


# --------------------------------------------------------------------------- helpers


def _compute(
    y_true: IntArray, y_pred: IntArray, num_classes: int, names: tuple[str, ...] | None
) -> ClassificationMetrics:
    labels = list(range(num_classes))
    if names is None:
        names = tuple(str(i) for i in labels)
    elif len(names) != num_classes:
        raise ValueError(
            f"`class_names` must have one name per class ({num_classes} classes). "
            f"Received: {len(names)} names: {list(names)!r}"
        )

    def averaged(average: str) -> tuple[float, float, float]:
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        return float(p), float(r), float(f)

    p_macro, r_macro, f_macro = averaged("macro")
    p_weighted, r_weighted, f_weighted = averaged("weighted")
    p_cls, r_cls, f_cls, s_cls = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    per_class = tuple(
        ClassMetrics(
            label=i,
            name=names[i],
            precision=float(p_cls[i]),
            recall=float(r_cls[i]),
            f1=float(f_cls[i]),
            support=int(s_cls[i]),
        )
        for i in labels
    )
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        precision_macro=p_macro,
        recall_macro=r_macro,
        f1_macro=f_macro,
        precision_weighted=p_weighted,
        recall_weighted=r_weighted,
        f1_weighted=f_weighted,
        per_class=per_class,
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in cm),
        class_names=names,
        num_samples=int(y_true.shape[0]),
    )


def _as_numpy(a: Any) -> npt.NDArray[Any]:
    """NumPy arrays, lists and scalars as-is; backend tensors via `keras.ops.convert_to_numpy`."""
    if isinstance(a, (np.ndarray, np.generic, list, tuple, int, float, bool)):
        return np.asarray(a)
    return np.asarray(keras.ops.convert_to_numpy(a))


def _to_labels(y: npt.ArrayLike, arg: str) -> tuple[IntArray, int | None]:
    """Converts labels / one-hot / scores to 1-D int labels; also returns the one-hot width."""
    try:
        arr = _as_numpy(y)
    except Exception as e:
        raise ValueError(
            f"`{arg}` must be an array of labels. Received: an object of type "
            f"{type(y).__name__} that cannot be converted to a NumPy array ({e})"
        ) from e
    if arr.ndim not in (1, 2):
        raise ValueError(
            f"`{arg}` must be integer labels of shape (n,) or (n, 1), or one-hot of shape "
            f"(n, num_classes). Received: {arg}.ndim={arr.ndim}, {arg}.shape={arr.shape}"
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"`{arg}` must contain at least one sample. Received: {arg}.shape={arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(
            f"`{arg}` must be numeric (integer labels or one-hot). Received: dtype={arr.dtype}"
        )
    width: int | None = None
    if arr.ndim == 2:
        if arr.shape[1] == 1:
            arr = arr[:, 0]
        else:
            width = int(arr.shape[1])
            if not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"`{arg}` must be finite. Received: {int(np.sum(~np.isfinite(arr)))} "
                    "NaN/inf values"
                )
            return np.argmax(arr, axis=1).astype(np.int64), width
    if arr.dtype == np.bool_:
        return arr.astype(np.int64), None
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(
                f"`{arg}` must contain integer class labels. Received: {int(np.sum(bad))} "
                f"non-integer or NaN/inf values, e.g. {arr[bad][:3].tolist()}. "
                "Pass integer labels, or one-hot arrays of shape (n, num_classes)."
            )
    labels = arr.real.astype(np.int64) if np.iscomplexobj(arr) else arr.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(
            f"`{arg}` labels must be non-negative class indices. "
            f"Received: min label {int(labels.min())}"
        )
    return labels, None


def _check_x(x: Any) -> int:
    """Validates model inputs; returns the number of samples."""
    leaves = [_as_numpy(a) for a in keras.tree.flatten(x)]
    if not leaves:
        raise ValueError("`x` must contain at least one input array. Received: an empty structure")
    counts = {a.shape[0] if a.ndim else 0 for a in leaves}
    if len(counts) != 1:
        raise ValueError(
            "All arrays in `x` must have the same number of samples. "
            f"Received: lengths {sorted(counts)}"
        )
    n = counts.pop()
    if n == 0:
        raise ValueError(
            f"`x` must contain at least one sample. Received: x with shape {leaves[0].shape}"
        )
    num_bad = sum(
        int(np.sum(~np.isfinite(a)))
        for a in leaves
        if np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.complexfloating)
    )
    if num_bad:
        raise ValueError(
            f"`x` must not contain NaN or inf. Received: {num_bad} non-finite values. "
            "Clean or impute the inputs first (e.g. `np.nan_to_num`)."
        )
    return int(n)


def _check_class_names(class_names: Sequence[str] | None) -> tuple[str, ...] | None:
    if class_names is None:
        return None
    if isinstance(class_names, str):
        raise ValueError(
            "`class_names` must be a sequence of strings, one per class. "
            f"Received: the single string {class_names!r}"
        )
    return tuple(str(n) for n in class_names)


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive integer. Received: num_classes={num_classes!r}"
        )


def _check_label_range(labels: IntArray, num_classes: int, arg: str) -> None:
    out = (labels < 0) | (labels >= num_classes)
    if np.any(out):
        raise ValueError(
            f"`{arg}` labels must be in the range [0, {num_classes}) for {num_classes} classes. "
            f"Received: {int(np.sum(out))} labels out of range, e.g. {labels[out][:3].tolist()}"
        )


def _check_model_labels(
    y_labels: IntArray, y_width: int | None, num_classes: int, names: tuple[str, ...] | None
) -> None:
    if y_width is not None and y_width != num_classes:
        raise ValueError(
            f"`y` is one-hot with {y_width} columns, but the model predicts {num_classes} "
            f"classes. Expected y of shape (n, {num_classes}) or integer labels of shape (n,)."
        )
    out = (y_labels < 0) | (y_labels >= num_classes)
    if np.any(out):
        raise ValueError(
            f"`y` labels must be in the range [0, {num_classes}) for a model with "
            f"{num_classes} classes. Received: {int(np.sum(out))} labels out of range, "
            f"e.g. {y_labels[out][:3].tolist()}. Check the labels or the model's output layer."
        )
    if names is not None and len(names) != num_classes:
        raise ValueError(
            f"`class_names` must have one name per class ({num_classes} classes). "
            f"Received: {len(names)} names: {list(names)!r}"
        )


def _reads_logits(model: Model, outputs: npt.NDArray[Any]) -> bool:
    """Whether a one-unit output is a logit: a linear last layer, or values outside [0, 1]."""
    try:
        activation = output_activation(model)
    except (ValueError, TypeError, AttributeError):
        activation = None
    if activation is not None:
        return activation == "linear"
    return bool(np.any((outputs < 0) | (outputs > 1)))


def _static_num_classes(model: Model) -> int | None:
    """The number of classes the model predicts, if its output shape is known statically."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        return None
    if not isinstance(outputs, (list, tuple)) or len(outputs) != 1:
        return None
    shape = getattr(outputs[0], "shape", None)
    if shape is None or len(shape) != 2 or shape[-1] is None:
        return None
    units = int(shape[-1])
    return 2 if units == 1 else units


def _require_keys(d: Mapping[str, Any], keys: Sequence[str], arg: str) -> None:
    if not isinstance(d, Mapping):
        raise ValueError(f"`{arg}` must be a dict. Received: {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(
            f"`{arg}` is missing keys {missing}. Expected the output of `to_dict()`. "
            f"Received keys: {sorted(d)}"
        )
