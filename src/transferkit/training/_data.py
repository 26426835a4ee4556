"""Validating training data and choosing the loss that matches the labels."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from .._chunks import count_nonfinite
from ..freezing._layers import io_shapes, leaf_layers, output_activation, output_units
from ..types import Model


@dataclass(frozen=True)
class ArrayData:
    """A validated `(x, y)` pair of NumPy arrays; `one_hot` says whether `y` is one-hot."""

    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    one_hot: bool

    def __len__(self) -> int:
        return int(self.x.shape[0])


Data = tuple[Any, Any] | Any
"""`(x, y)` NumPy arrays, or anything Keras `fit` accepts (tf.data, PyDataset, ...)."""


def is_array_pair(data: Any) -> bool:
    """Whether `data` is an `(x, y)` tuple of array-likes (lists too), not a dataset object."""
    return (
        isinstance(data, tuple | list)
        and len(data) == 2
        and all(
            isinstance(part, list) or (hasattr(part, "shape") and hasattr(part, "__len__"))
            for part in data
        )
    )


def check_class_names(class_names: Any, model: Model) -> None:
    """Refuse `class_names` that are not one name per class of the model's head."""
    if class_names is None:
        return
    n = max(output_units(model), 2)
    if isinstance(class_names, str | bytes) or not isinstance(class_names, Sequence):
        raise ValueError(
            f"`class_names` must be a list of {n} names, one per class. "
            f"Received: class_names={class_names!r}"
        )
    if len(class_names) != n:
        raise ValueError(
            f"`class_names` must have one name per class: the model predicts {n} classes. "
            f"Received: {len(class_names)} names: {list(class_names)!r}"
        )


def check_data(data: Any, name: str, model: Model) -> ArrayData | None:
    """Validate `data` for `model`: an `ArrayData` for arrays, None for a dataset object.

    A tf.data pipeline's first batch is checked like arrays (cheap, and it catches labels the
    head cannot take).
    """
    if is_array_pair(data):
        return check_arrays(data, name, model)
    if not _is_dataset(data):
        length = f" of length {len(data)}" if isinstance(data, tuple | list) else ""
        raise ValueError(
            f"`{name}` must be an `(x, y)` tuple of arrays, or a dataset Keras `fit` accepts "
            f"(tf.data, `keras.utils.PyDataset`, a generator of `(x, y)` batches). Received: "
            f"a {type(data).__name__}{length}. For a multi-input model or sample weights, build "
            "a tf.data pipeline."
        )
    if hasattr(data, "take") and hasattr(data, "element_spec"):  # tf.data: peek at one batch
        batch = next(iter(data.take(1)), None)
        if isinstance(batch, tuple) and len(batch) == 2:
            first = tuple(np.asarray(getattr(t, "numpy", lambda t=t: t)()) for t in batch)
            check_arrays(first, f"{name} (its first batch)", model)
    return None


def _is_dataset(data: Any) -> bool:
    """Whether `data` may be a dataset object (not None, an array, a dict, a str or a tuple)."""
    return not (
        data is None
        or isinstance(data, dict | str | bytes | tuple | list)
        or hasattr(data, "dtype")
    )


def read_once(data: Any, name: str) -> Any:
    """`data` as given, or a dataset's `(x, y)` batches read into NumPy arrays (`read_batches`)."""
    return read_batches(data, name) if _is_dataset(data) else data


def read_declared(train: Any, cache: Any) -> Any:
    """Training data as given, or read once into arrays with `FeatureCache(deterministic=True)`."""
    if not (getattr(cache, "deterministic", False) and _is_dataset(train)):
        return train
    specs = keras.tree.flatten(getattr(train, "element_spec", ()))
    if any(None in tuple(getattr(spec, "shape", ()))[1:] for spec in specs):
        raise ValueError(
            "`FeatureCache(deterministic=True)` needs batches of one shape per sample; `train`'s "
            f"element spec has an unknown dimension: {train.element_spec}. Resize before batching."
        )
    return read_batches(train, "train")


def read_batches(data: Any, name: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """A finite dataset's `(x, y)` batches (tf.data, `keras.utils.PyDataset`, an iterable of
    batches) read once into NumPy arrays `(x, y)`: validation and test data are then used
    exactly as arrays are (metrics per epoch, records, `best()`, the cache)."""
    if isinstance(data, keras.utils.PyDataset):
        count = data.num_batches
        batches: Any = () if count is None else (data[i] for i in range(count))
    else:  # tf.data says -1 for an endless dataset (`.repeat()`)
        count, batches = int(data.cardinality()) if hasattr(data, "cardinality") else 0, data
    if count is None or count == -1:
        raise ValueError(f"`{name}` is an endless dataset: pass one that ends (no `.repeat()`).")
    xs, ys = [], []
    for batch in batches:
        if not isinstance(batch, tuple | list) or len(batch) != 2:
            size = len(batch) if isinstance(batch, tuple | list) else "no"
            raise ValueError(
                f"`{name}` must yield `(x, y)` batches of arrays. Received an element of type "
                f"{type(batch).__name__} with {size} parts (sample weights are not supported)."
            )
        xs.append(np.asarray(batch[0]))
        ys.append(np.asarray(batch[1]))
    try:
        return np.concatenate(xs), np.concatenate(ys)
    except ValueError as err:  # no batch, unbatched elements, ragged shapes, a dict of inputs
        raise ValueError(
            f"`{name}`'s batches cannot be joined into `(x, y)` arrays: it must yield at least "
            "one batch, and every batch arrays of one shape per sample (batch a tf.data "
            f"pipeline with `.batch(n)`). ({err})"
        ) from err


def check_pair(
    train: Any, validation: Any, model: Model
) -> tuple[ArrayData | None, ArrayData | None]:
    """`check_data` for training and validation data, plus one label format for both."""
    train_arrays = check_data(train, "train", model)
    val_arrays = None if validation is None else check_data(validation, "validation", model)
    # An `ArrayData` is never empty (`_as_arrays` refuses that): true means "arrays were given".
    if train_arrays and val_arrays and train_arrays.one_hot != val_arrays.one_hot:
        kinds = {True: "one-hot", False: "integer class ids"}
        raise ValueError(
            f"`train` labels are {kinds[train_arrays.one_hot]} but `validation` labels "
            f"are {kinds[val_arrays.one_hot]}; the loss can take only one format. Convert "
            "one of them (`keras.utils.to_categorical(y)` or `y.argmax(axis=-1)`)."
        )
    return train_arrays, val_arrays


def check_arrays(data: Any, name: str, model: Model) -> ArrayData:
    """Validate an `(x, y)` pair for `model` (lengths, finite inputs, shapes, label range)."""
    x, y = _as_arrays(data, name)
    _check_inputs(x, name, model)
    units = output_units(model)
    _check_head(model, units)
    one_hot = y.ndim == 2 and y.shape[1] == units and units > 1
    if one_hot:
        if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(axis=1) == 1):
            raise ValueError(f"`{name}` labels look one-hot but rows are not one-hot vectors.")
    else:
        _check_class_ids(y, name, units)
        if name == "train":
            _warn_few_classes(y, units)
    if name == "train":
        _warn_unscaled(x, model)
    return ArrayData(x=x, y=y, one_hot=one_hot)


_RESCALING = ("Rescaling", "Normalization")


def _warn_unscaled(x: np.ndarray[Any, Any], model: Model) -> None:
    """Warn when integer pixels (0-255) meet a model whose first layers do not rescale."""
    if not np.issubdtype(x.dtype, np.integer) or x.size == 0 or int(x[:1024].max()) <= 1:
        return
    leaves = leaf_layers(model)
    first = next((i for i, leaf in enumerate(leaves) if leaf.layer.weights), len(leaves))
    if any(type(leaf.layer).__name__ in _RESCALING for leaf in leaves[: first + 1]):
        return
    warnings.warn(
        f"`train` inputs are {x.dtype} values up to {int(x[:1024].max())}, and model "
        f"{model.name!r} does not rescale them before its first weights. A model pretrained on "
        "[0, 1] inputs sees values 255x too large: convert them with "
        "`transferkit.datasets.normalize(x)` (or `to_float_images`), or start the model with "
        "`keras.layers.Rescaling(1 / 255)`.",
        UserWarning,
        stacklevel=4,
    )


def _warn_few_classes(y: np.ndarray[Any, Any], units: int) -> None:
    """Warn when the labels use a small part of a large head (5 labels of a 1000-class top)."""
    used = int(y.max()) + 1
    if units >= 100 and used * 10 <= units:
        warnings.warn(
            f"`train` labels use {used} classes, but the model's head has {units} units "
            "(e.g. a `keras.applications` model's ImageNet top): it will spread probability "
            f"over {units - used} classes that never occur. Give it a head of its own first: "
            f"`model = replace_head(model, {used})`.",
            UserWarning,
            stacklevel=4,
        )


def _as_arrays(data: Any, name: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """`data` as NumPy `(x, y)` with numeric, non-empty inputs and one label per input."""
    if not is_array_pair(data):
        raise ValueError(
            f"`{name}` must be an `(x, y)` tuple of NumPy arrays or a dataset Keras `fit` "
            f"accepts. Received: {type(data).__name__}"
        )
    try:
        x, y = np.asarray(data[0]), np.asarray(data[1])
    except ValueError as err:  # ragged lists
        raise ValueError(
            f"`{name}` cannot be converted to NumPy arrays: x and y must be rectangular (all "
            f"samples of one shape). Received: {type(data[0]).__name__} and "
            f"{type(data[1]).__name__} ({err})"
        ) from err
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(
            f"`{name}` inputs must be numeric arrays. Received: dtype {x.dtype}. Convert them "
            "with `np.asarray(x, dtype='float32')`."
        )
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"`{name}` must hold one sample per row: x and y cannot be scalars. Received: "
            f"x.shape={x.shape}, y.shape={y.shape}"
        )
    if len(x) != len(y):
        raise ValueError(
            f"`{name}` has {len(x)} inputs but {len(y)} labels; x and y must have the same "
            f"number of samples. Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    if len(x) == 0:
        raise ValueError(f"`{name}` is empty: it needs at least one sample.")
    return x, y


def _check_inputs(x: np.ndarray[Any, Any], name: str, model: Model) -> None:
    """Refuse NaN/inf inputs and a per-sample shape the model cannot take."""
    # chunk by chunk: x may be a memmap larger than memory
    if np.issubdtype(x.dtype, np.floating) and (bad := count_nonfinite(x)):
        raise ValueError(
            f"`{name}` inputs contain {bad} NaN or infinite values; clean or impute them "
            "before training."
        )
    input_shape = io_shapes(model)[0]
    if input_shape is None:
        return
    expected = tuple(input_shape[1:])
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


def _check_class_ids(y: np.ndarray[Any, Any], name: str, units: int) -> None:
    """Refuse labels that are not integer class ids in the head's range."""
    if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(
            f"`{name}` labels must be integer class ids of shape (n,) or one-hot of shape "
            f"(n, {units}). Received shape {y.shape}."
        )
    if not np.issubdtype(y.dtype, np.integer) and (
        not np.issubdtype(y.dtype, np.floating)
        or not np.all(np.isfinite(y))
        or not np.all(np.equal(np.mod(y, 1), 0))
    ):
        raise ValueError(f"`{name}` labels must be integer class ids. Received dtype {y.dtype}.")
    n_classes = max(units, 2)
    low, high = (int(y.min()), int(y.max()))
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"`{name}` labels must be in [0, {n_classes - 1}] for a model with {units} "
            f"output units. Received labels in [{low}, {high}]. {_label_advice(y, n_classes)}"
        )


def _label_advice(y: np.ndarray[Any, Any], n_classes: int) -> str:
    """The fix for labels out of the head's range: shift, relabel, or a bigger head."""
    ids = np.unique(y.astype(np.int64))
    low, high = int(ids[0]), int(ids[-1])
    if low == 1 and high == n_classes:
        return f"They look 1-based (1..{high}): pass `y - 1`."
    if low >= 0 and len(ids) <= n_classes:
        return (
            f"They are {len(ids)} class ids out of a larger set: relabel them 0..{len(ids) - 1} "
            "with `transferkit.datasets.subset_classes(x, y, classes)` (or "
            f"`np.searchsorted(classes, y)`); only if the model must tell all {high + 1} ids "
            f"apart, use `replace_head(model, {high + 1})`."
        )
    return f"Use `replace_head(model, {high + 1})` for a head sized for your classes."


def _check_head(model: Model, units: int) -> None:
    """Refuse a softmax over one unit (it always outputs 1.0)."""
    if units == 1 and output_activation(model) == "softmax":
        raise ValueError(
            f"Model {model.name!r} ends in a softmax over one unit, which always outputs 1.0, "
            "so it cannot learn. For a binary task use one sigmoid unit "
            "(`replace_head(model, 1)` gives one) or two softmax units."
        )


def default_loss(model: Model, one_hot: bool | None) -> Any:
    """The cross-entropy loss matching the model's output and the label format."""
    units = output_units(model)
    _check_head(model, units)
    from_logits = output_activation(model) == "linear"
    if units == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if one_hot:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def check_class_weight(class_weight: Any, model: Model) -> None:
    """Refuse `class_weight` keys that are not classes of `model`'s head."""
    if class_weight is None:
        return
    n = max(output_units(model), 2)
    if outside := sorted(int(k) for k in class_weight if int(k) >= n):
        raise ValueError(
            f"`class_weight` has keys {outside} but the model predicts {n} classes "
            f"(ids 0..{n - 1})."
        )
