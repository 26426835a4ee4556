"""Splitting and subsampling labelled datasets (NumPy and scikit-learn only)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._validate import check_positive_int, is_int, is_real
from ._fashion_mnist import load_fashion_mnist
from ._images import to_float_images

_Pair = tuple[npt.NDArray[Any], npt.NDArray[Any]]


class Split(NamedTuple):
    """Train, validation and test sets, each an `(x, y)` pair; unpacks as a tuple.

    Attributes:
        train: `(x_train, y_train)`.
        validation: `(x_val, y_val)`.
        test: `(x_test, y_test)`; zero samples when no test set was asked for.

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import Split

    x, y = np.zeros((10, 2)), np.arange(10)
    split = Split(train=(x[:6], y[:6]), validation=(x[6:8], y[6:8]), test=(x[8:], y[8:]))
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = split
    assert repr(split).startswith("Split(train=6, validation=2, test=2 samples")
    ```
    """

    train: _Pair
    validation: _Pair
    test: _Pair

    def __repr__(self) -> str:
        x_train, y_train = self.train
        return (
            f"Split(train={len(x_train)}, validation={len(self.validation[0])}, "
            f"test={len(self.test[0])} samples; x {tuple(x_train.shape[1:])} {x_train.dtype}, "
            f"y {tuple(y_train.shape[1:])} {y_train.dtype})"
        )


def _as_array(value: object, name: str) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(
            f"`{name}` must be an array with a leading sample axis; received a scalar "
            f"{value!r}. Pass an array of shape (n, ...)."
        )
    return array


def _as_xy(x: object, y: object) -> _Pair:
    """`x` and `y` as arrays, or a `ValueError` unless `y` is one int label per sample of `x`."""
    x_array, labels = _as_array(x, "x"), _as_array(y, "y")
    if labels.ndim != 1:
        raise ValueError(
            "`y` must be a 1-D array of integer class labels; received shape "
            f"{labels.shape}. For one-hot labels pass `y.argmax(axis=-1)`."
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`y` must hold integer class labels; received dtype {labels.dtype}. Convert "
            "with `y.astype('int64')` (or `argmax` for one-hot labels)."
        )
    if len(labels) != len(x_array):
        raise ValueError(
            f"`x` and `y` must have the same number of samples; received len(x)={len(x_array)} "
            f"and len(y)={len(labels)}."
        )
    return x_array, labels


def _resolve_size(value: int | float | None, name: str, n: int, *, allow_none: bool) -> int:
    if value is None and allow_none:
        return 0
    if is_int(value) and int(value) > 0:
        return int(value)
    if is_real(value) and 0.0 < float(value) < 1.0:  # never an int
        return max(1, math.ceil(float(value) * n))
    none = " or None" if allow_none else ""
    raise ValueError(
        f"`{name}` must be a positive int (a number of samples) or a float in (0, 1) (a "
        f"fraction of the samples){none}; received {value!r}."
    )


def _check_stratifiable(y: npt.NDArray[Any], sizes: dict[str, int]) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        rare = classes[counts < 2].tolist()
        raise ValueError(
            f"Cannot stratify: classes {rare} have a single sample in `y`, but every class "
            "needs at least 2. Pass `stratify=False` or remove these classes."
        )
    for name, count in sizes.items():
        if count < len(classes):
            raise ValueError(
                f"{name} would hold {count} samples, fewer than the {len(classes)} classes in "
                f"`y`, so a stratified split is impossible. Change the sizes or pass "
                "`stratify=False`."
            )


def train_val_test_split(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    val_size: int | float = 10000,
    test_size: int | float | None = None,
    stratify: bool = True,
    seed: int | None = 0,
) -> Split:
    """Splits `(x, y)` at random (stratified, seeded) into train, validation and test sets.

    Args:
        x: array-like. Samples, `(n, ...)`.
        y: array-like. Integer class labels, `(n,)`.
        val_size: int or float. Validation samples (int), or a fraction of all samples
            (float in (0, 1), rounded up). Defaults to `10000`.
        test_size: int, float or None. As `val_size`, for the test set; `None` makes it
            empty. Defaults to `None`.
        stratify: bool. Whether every set keeps the class proportions. Defaults to `True`.
        seed: int. Random seed; `None` splits differently each call. Defaults to `0`.

    Returns:
        A `Split`.

    Raises:
        ValueError: If `x` and `y` differ in length, `y` is not 1-D int labels, a size is not
            positive or leaves no training sample, or stratifying is impossible.

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import train_val_test_split

    x, y = np.arange(200).reshape(100, 2), np.repeat(np.arange(5), 20)
    train, validation, test = train_val_test_split(x, y, val_size=20, test_size=0.1)
    assert (len(train[0]), len(validation[0]), len(test[0])) == (70, 20, 10)
    assert np.bincount(validation[1]).tolist() == [4, 4, 4, 4, 4]
    ```
    """
    x_array, y_array = _as_xy(x, y)
    n = len(x_array)
    n_val = _resolve_size(val_size, "val_size", n, allow_none=False)
    n_test = _resolve_size(test_size, "test_size", n, allow_none=True)
    if n_val + n_test >= n:
        raise ValueError(
            f"`val_size` and `test_size` must leave at least one training sample: they give "
            f"{n_val} + {n_test} = {n_val + n_test} samples, but `x` has only {n}. Reduce them."
        )
    if not isinstance(stratify, (bool, np.bool_)):
        raise ValueError(f"`stratify` must be a bool; received {stratify!r}.")
    if seed is not None:
        check_positive_int(seed, "seed", allow_zero=True)
    if stratify:
        sizes = {"`val_size`": n_val, "The training set": n - n_val - n_test}
        if n_test:
            sizes["`test_size`"] = n_test
        _check_stratifiable(y_array, sizes)

    from sklearn.model_selection import train_test_split

    def cut(x: npt.NDArray[Any], y: npt.NDArray[Any], size: int) -> list[npt.NDArray[Any]]:
        by = y if stratify else None
        return train_test_split(x, y, test_size=size, stratify=by, random_state=seed)  # type: ignore[no-any-return]

    x_rest, x_test, y_rest, y_test = (
        cut(x_array, y_array, n_test) if n_test else (x_array, x_array[:0], y_array, y_array[:0])
    )
    x_train, x_val, y_train, y_val = cut(x_rest, y_rest, n_val)
    return Split(train=(x_train, y_train), validation=(x_val, y_val), test=(x_test, y_test))


def lab_split(path: str | os.PathLike[str] | None = None) -> Split:
    """Fashion-MNIST split as in the lab: 50000 train, 10000 validation, 10000 test.

    Validation is the last 10000 training images, unshuffled; test the official test set.

    Args:
        path: str or Path. As in `load_fashion_mnist`. Defaults to `None`.

    Returns:
        A `Split` of float32 images `(n, 28, 28, 1)` in [0, 1] and int64 labels.

    Raises:
        DatasetNotFoundError: If the files cannot be found or downloaded.
        DatasetCorruptError: If a file is corrupt.

    Example:

    ```python
    from transferkit.datasets import lab_split

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = lab_split()
    assert x_train.shape == (50000, 28, 28, 1) and x_train.dtype == "float32"
    assert len(x_val) == len(x_test) == 10000 and y_val.dtype == "int64"
    ```
    """
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(path)
    x_train_f, y_train_i = to_float_images(x_train), y_train.astype(np.int64)
    return Split(
        train=(x_train_f[:-10000], y_train_i[:-10000]),
        validation=(x_train_f[-10000:], y_train_i[-10000:]),
        test=(to_float_images(x_test), y_test.astype(np.int64)),
    )


def subset_classes(
    x: npt.ArrayLike, y: npt.ArrayLike, classes: Sequence[int], *, relabel: bool = True
) -> _Pair:
    """Keeps the samples of the given classes (in order), relabelled to 0..k-1 by default.

    A requested class without samples is allowed as long as some sample is kept.

    Args:
        x: array-like. Samples, `(n, ...)`.
        y: array-like. Integer class labels, `(n,)`.
        classes: sequence of ints. Distinct labels to keep.
        relabel: bool. Whether `classes[i]` becomes label `i`. Defaults to `True`.

    Returns:
        `(x_subset, y_subset)`; labels keep the dtype of `y`.

    Raises:
        ValueError: If `x` and `y` differ in length, `y` is not 1-D int labels, or `classes`
            is empty, holds non-ints or duplicates, or none of them occurs in `y`.

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import subset_classes

    x, y = np.arange(6), np.array([5, 0, 7, 5, 9, 1])
    x_sub, y_sub = subset_classes(x, y, [5, 6, 7, 8, 9])
    assert x_sub.tolist() == [0, 2, 3, 4] and y_sub.tolist() == [0, 2, 0, 4]
    ```
    """
    x_array, y_array = _as_xy(x, y)
    wanted = list(classes) if not isinstance(classes, (str, bytes)) else None
    if not wanted or not all(is_int(c) for c in wanted):
        raise ValueError(
            f"`classes` must be a non-empty sequence of int labels; received {classes!r}. "
            "Example: `classes=[5, 6, 7, 8, 9]`."
        )
    wanted_ints = [int(c) for c in wanted]
    if len(set(wanted_ints)) != len(wanted_ints):
        raise ValueError(f"`classes` must not contain duplicates; received {classes!r}.")
    mask = np.isin(y_array, wanted_ints)
    if not mask.any():
        raise ValueError(
            f"None of the `classes` {wanted_ints} occurs in `y`; labels present in `y`: "
            f"{np.unique(y_array).tolist()}. Check that `y` holds integer labels (not one-hot) "
            "and `classes` uses the same numbering."
        )
    x_subset, y_subset = x_array[mask], y_array[mask]
    if relabel:
        order = np.argsort(wanted_ints)
        sorted_classes = np.asarray(wanted_ints)[order]
        y_subset = order[np.searchsorted(sorted_classes, y_subset)].astype(y_array.dtype)
    return x_subset, y_subset


def _allocate(counts: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    """Split `n` over classes proportionally to `counts`, at least 1 and at most `counts` each."""
    quota = n * counts / counts.sum()
    alloc: npt.NDArray[np.int64] = np.clip(np.floor(quota).astype(np.int64), 1, counts)
    while (total := int(alloc.sum())) != n:
        if total < n:
            alloc[int(np.argmax(np.where(alloc < counts, quota - alloc, -np.inf)))] += 1
        else:
            alloc[int(np.argmax(np.where(alloc > 1, alloc - quota, -np.inf)))] -= 1
    return alloc


def stratified_subsample(
    x: npt.ArrayLike, y: npt.ArrayLike, n: int, *, seed: int | None = 0
) -> _Pair:
    """Draws `n` samples at random, each class in proportion (at least one each), shuffled.

    Args:
        x: array-like. Samples, `(N, ...)`.
        y: array-like. Integer class labels, `(N,)`.
        n: int. Samples to draw, between the number of classes and `N`.
        seed: int. Random seed; `None` draws differently each call. Defaults to `0`.

    Returns:
        `(x_subset, y_subset)` of `n` samples.

    Raises:
        ValueError: If `x` and `y` differ in length, `y` is not 1-D int labels, or `n` is
            out of range.

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import stratified_subsample

    x, y = np.arange(1000), np.repeat(np.arange(10), 100)
    x_50, y_50 = stratified_subsample(x, y, 50, seed=0)
    assert np.bincount(y_50).tolist() == [5] * 10
    ```
    """
    x_array, y_array = _as_xy(x, y)
    if seed is not None:
        check_positive_int(seed, "seed", allow_zero=True)
    classes, inverse, counts = np.unique(y_array, return_inverse=True, return_counts=True)
    if not is_int(n) or not (len(classes) <= int(n) <= len(x_array)):
        raise ValueError(
            f"`n` must be an int between the number of classes ({len(classes)}) and the "
            f"number of samples ({len(x_array)}); received {n!r}."
        )
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(inverse == index), size=int(k), replace=False)
        for index, k in enumerate(_allocate(counts.astype(np.int64), int(n)))
    ]
    indices = rng.permutation(np.concatenate(chosen))
    return x_array[indices], y_array[indices]
