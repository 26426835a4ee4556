"""Validating training data and choosing the loss that matches the labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .types import Model


@dataclass(frozen=True)
class ArrayData:
    """A validated `(x, y)` pair of NumPy arrays.

    Attributes:
        x: Inputs.
        y: Labels (integer class ids, or one-hot rows).
        one_hot: Whether `y` is one-hot.
    """

    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    one_hot: bool

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def class_ids(self) -> np.ndarray[Any, Any]:
        """Labels as integer class ids."""
        return np.argmax(self.y, axis=-1) if self.one_hot else self.y.reshape(-1).astype(np.int64)


Data = tuple[Any, Any] | Any
"""`(x, y)` NumPy arrays, or anything Keras `fit` accepts (tf.data, PyDataset, ...)."""


def is_array_pair(data: Any) -> bool:
    """Whether `data` is an `(x, y)` tuple of array-likes (not a dataset object)."""
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(hasattr(part, "shape") and hasattr(part, "__len__") for part in data)
    )


def output_units(model: Model) -> int:
    """Number of output units of a single-output classification model."""
    shape = model.output_shape
    if isinstance(shape, list):
        raise ValueError("transferkit trains single-output classification models only.")
    return int(shape[-1])


def check_arrays(data: Any, name: str, model: Model) -> ArrayData:
    """Validate an `(x, y)` pair for `model`; raise a clear `ValueError` if it is wrong.

    Checks: two arrays of the same length, at least one sample, finite inputs, inputs of the
    shape the model expects, and labels in range for the model's output units.
    """
    if not is_array_pair(data):
        raise ValueError(
            f"`{name}` must be an `(x, y)` tuple of NumPy arrays or a dataset Keras `fit` "
            f"accepts. Received: {type(data).__name__}"
        )
    x = np.asarray(data[0])
    y = np.asarray(data[1])
    if len(x) != len(y):
        raise ValueError(
            f"`{name}` has {len(x)} inputs but {len(y)} labels; x and y must have the same "
            f"number of samples. Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    if len(x) == 0:
        raise ValueError(f"`{name}` is empty: it needs at least one sample.")
    if np.issubdtype(x.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise ValueError(
                f"`{name}` inputs contain {bad} NaN or infinite values; clean or impute them "
                "before training."
            )
    expected = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if expected is not None:
        # Keras adapts a rank off by one through a trailing axis of size 1 (e.g. (n, 28, 28)
        # for (28, 28, 1)); any other rank fails inside `fit`, after training has started.
        got = tuple(x.shape[1:])
        if len(got) == len(expected) + 1 and got[-1] == 1:
            got = got[:-1]
        elif len(got) == len(expected) - 1 and expected[-1] == 1:
            got = (*got, 1)
        if len(got) != len(expected) or any(
            w is not None and g != w for g, w in zip(got, expected, strict=True)
        ):
            raise ValueError(
                f"`{name}` inputs have shape {x.shape[1:]} per sample but the model expects "
                f"{expected}. Resize or reshape the data (see "
                "`transferkit.datasets.resize_images`)."
            )
    units = output_units(model)
    one_hot = y.ndim == 2 and y.shape[1] == units and units > 1
    if one_hot:
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            raise ValueError(f"`{name}` labels look one-hot but rows are not one-hot vectors.")
    else:
        if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise ValueError(
                f"`{name}` labels must be integer class ids of shape (n,) or one-hot of shape "
                f"(n, {units}). Received shape {y.shape}."
            )
        if not np.issubdtype(y.dtype, np.integer):
            if not np.issubdtype(y.dtype, np.floating) or not np.all(np.equal(np.mod(y, 1), 0)):
                raise ValueError(
                    f"`{name}` labels must be integer class ids. Received dtype {y.dtype}."
                )
        n_classes = max(units, 2)
        low, high = (int(y.min()), int(y.max()))
        if low < 0 or high >= n_classes:
            raise ValueError(
                f"`{name}` labels must be in [0, {n_classes - 1}] for a model with {units} "
                f"output units. Received labels in [{low}, {high}]. Use `replace_head(model, "
                f"{high + 1})` for a head sized for your classes."
            )
    return ArrayData(x=x, y=y, one_hot=one_hot)


def default_loss(model: Model, one_hot: bool | None) -> Any:
    """The cross-entropy loss matching the model's output and the label format."""
    import keras

    from ._layers import leaf_layers

    units = output_units(model)
    last = leaf_layers(model)[-1].layer
    activation = getattr(getattr(last, "activation", None), "__name__", "softmax")
    from_logits = activation == "linear"
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
