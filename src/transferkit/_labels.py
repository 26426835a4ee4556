"""Class labels given as arrays: turning them into integer ids and checking them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._validate import as_numpy
from .types import IntArray


def to_labels(y: npt.ArrayLike, arg: str) -> tuple[IntArray, int | None]:
    """Labels / one-hot / scores as 1-D int labels, and the one-hot width (or `None`)."""
    try:
        arr = as_numpy(y)
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
    if arr.ndim == 2 and arr.shape[1] > 1:
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"`{arg}` must be finite. Received: {int(np.sum(~np.isfinite(arr)))} NaN/inf values"
            )
        return np.argmax(arr, axis=1).astype(np.int64), int(arr.shape[1])
    arr = arr.reshape(-1)
    if np.issubdtype(arr.dtype, np.inexact):
        if np.any(bad := ~np.isfinite(arr) | (arr != np.round(arr))):
            raise ValueError(
                f"`{arg}` must contain integer class labels. Received: {int(np.sum(bad))} "
                f"non-integer or NaN/inf values, e.g. {arr[bad][:3].tolist()}. "
                "Pass integer labels, or one-hot arrays of shape (n, num_classes)."
            )
    labels = (arr.real if np.iscomplexobj(arr) else arr).astype(np.int64)
    if labels.min() < 0:
        raise ValueError(
            f"`{arg}` labels must be non-negative class indices. "
            f"Received: min label {int(labels.min())}"
        )
    return labels, None


def check_class_names(class_names: Sequence[str] | None) -> tuple[str, ...] | None:
    """`class_names` as a tuple of strings (None kept); a single string is refused."""
    if class_names is None:
        return None
    if isinstance(class_names, str):
        raise ValueError(
            "`class_names` must be a sequence of strings, one per class. "
            f"Received: the single string {class_names!r}"
        )
    return tuple(str(n) for n in class_names)


def class_names_for(names: tuple[str, ...] | None, num_classes: int) -> tuple[str, ...]:
    """`names`, or `"0"`, `"1"`, ... without them; raises if there is not one per class."""
    if names is None:
        return tuple(str(i) for i in range(num_classes))
    if len(names) != num_classes:
        raise ValueError(
            f"`class_names` must have one name per class ({num_classes} classes). "
            f"Received: {len(names)} names: {list(names)!r}"
        )
    return names


def check_labels(labels: IntArray, width: int | None, num_classes: int, arg: str) -> None:
    """Refuse a one-hot width or labels that do not fit `num_classes`."""
    if width is not None and width != num_classes:
        raise ValueError(
            f"`{arg}` is one-hot with {width} columns, but there are {num_classes} classes. "
            f"Expected shape (n, {num_classes}) or integer labels of shape (n,). "
            f"Received: {arg}.shape=(n, {width})"
        )
    if np.any(out := (labels < 0) | (labels >= num_classes)):
        raise ValueError(
            f"`{arg}` labels must be in the range [0, {num_classes}) for {num_classes} classes. "
            f"Received: {int(np.sum(out))} labels out of range, e.g. {labels[out][:3].tolist()}"
        )
