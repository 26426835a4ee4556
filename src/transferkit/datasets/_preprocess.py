"""Backend-agnostic preprocessing, splitting and subsampling of image datasets.

Only NumPy, scikit-learn and Keras (`keras.ops`, `keras.layers`) are used, never a backend
directly, so everything here works under the TensorFlow, JAX and PyTorch Keras backends. Keras
and scikit-learn are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeGuard

import numpy as np
import numpy.typing as npt

from ..types import Model
from ._fashion_mnist import load_fashion_mnist

__all__ = [
    "Split",
    "augmentation",
    "lab_split",
    "normalize",
    "resize_images",
    "stratified_subsample",
    "subset_classes",
    "to_float_images",
    "train_val_test_split",
]

_Pair = tuple[npt.NDArray[Any], npt.NDArray[Any]]


class Split(NamedTuple):
    """Train, validation and test sets, each an `(x, y)` pair of NumPy arrays.

    Being a `NamedTuple`, a `Split` unpacks as `train, validation, test = split`.

    Args:
        train: tuple of two arrays. `(x_train, y_train)`.
        validation: tuple of two arrays. `(x_val, y_val)`.
        test: tuple of two arrays. `(x_test, y_test)`; may hold zero samples when no test set
            was requested (see `train_val_test_split`).

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import Split

        x, y = np.zeros((10, 2)), np.arange(10)
        split = Split(train=(x[:6], y[:6]), validation=(x[6:8], y[6:8]), test=(x[8:], y[8:]))
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = split
        print(split)  # Split(train=6, validation=2, test=2 samples; x (2,) float64, ...)
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


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> TypeGuard[float]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_array(value: object, name: str) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(
            f"`{name}` must be an array with a leading sample axis; received a scalar "
            f"{value!r}. Pass an array of shape (n, ...)."
        )
    return array


def _as_labels(y: object, n: int | None = None, name: str = "y") -> npt.NDArray[Any]:
    labels = _as_array(y, name)
    if labels.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D array of integer class labels; received shape "
            f"{labels.shape}. For one-hot labels pass `{name}.argmax(axis=-1)`."
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`{name}` must hold integer class labels; received dtype {labels.dtype}. Convert "
            f"with `{name}.astype('int64')` (or `argmax` for one-hot labels)."
        )
    if n is not None and len(labels) != n:
        raise ValueError(
            f"`x` and `{name}` must have the same number of samples; received len(x)={n} and "
            f"len({name})={len(labels)}."
        )
    return labels


def _check_seed(seed: int | None) -> None:
    if seed is not None and not (_is_int(seed) and seed >= 0):
        raise ValueError(f"`seed` must be a non-negative int or None; received {seed!r}.")


# --------------------------------------------------------------------------------------------
# Conversion and resizing
# --------------------------------------------------------------------------------------------


def normalize(
    x: npt.ArrayLike, *, scale: float = 255.0, dtype: npt.DTypeLike = "float32"
) -> npt.NDArray[np.floating[Any]]:
    """Convert an array to floating point and divide it by `scale`.

    With the defaults this maps uint8 pixels 0..255 to float32 values in [0, 1].

    Args:
        x: array-like. Values to normalize, of any shape (typically uint8 images).
        scale: float. Positive divisor. Defaults to `255.0`.
        dtype: str or numpy dtype. Floating-point dtype of the result. Defaults to
            `"float32"`.

    Returns:
        A new array of dtype `dtype` and the shape of `x`, equal to `x / scale`.

    Raises:
        ValueError: `scale` is not a positive finite number or `dtype` is not a floating-point
            dtype.

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import normalize

        out = normalize(np.array([0, 51, 255], dtype="uint8"))
        print(out)  # [0.  0.2 1. ]
        assert out.dtype == "float32"
        ```
    """
    if not _is_real(scale) or not math.isfinite(float(scale)) or float(scale) <= 0:
        raise ValueError(
            f"`scale` must be a positive finite number; received {scale!r}. Use 255.0 for "
            "uint8 images."
        )
    target: np.dtype[Any] = np.dtype(dtype)
    if not np.issubdtype(target, np.floating):
        raise ValueError(
            f"`dtype` must be a floating-point dtype such as 'float32'; received {dtype!r}."
        )
    result: npt.NDArray[np.floating[Any]] = np.asarray(x, dtype=target) / np.asarray(
        scale, dtype=target
    )
    return result.astype(target, copy=False)


def to_float_images(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Turn integer images `(n, h, w)` into float32 `(n, h, w, 1)` in [0, 1] (divide by 255).

    This is the lab's preprocessing for Fashion-MNIST: `x.astype("float32")[..., None] / 255`.
    Images that already have a channel axis, `(n, h, w, c)`, keep it.

    Args:
        x: array-like. Integer (typically uint8) images of shape `(n, h, w)` or `(n, h, w, c)`.

    Returns:
        A float32 array of shape `(n, h, w, 1)` (or `(n, h, w, c)`) with values in [0, 1].

    Raises:
        ValueError: `x` is not 3-D or 4-D, or does not hold integers (already-float images
            would be divided by 255 twice; use `normalize` for them).

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import to_float_images

        images = np.full((2, 28, 28), 255, dtype="uint8")
        out = to_float_images(images)
        assert out.shape == (2, 28, 28, 1) and out.dtype == "float32" and out.max() == 1.0
        ```
    """
    array = np.asarray(x)
    if array.ndim not in (3, 4):
        raise ValueError(
            "`x` must be a batch of images of shape (n, h, w) or (n, h, w, c); received shape "
            f"{array.shape}. Add a batch axis with `x[None]` for a single image."
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(
            "`x` must hold integer pixel values 0..255 (e.g. uint8); received dtype "
            f"{array.dtype}. Float images are probably already normalized; use "
            "`normalize(x, scale=...)` if they still need scaling."
        )
    if array.ndim == 3:
        array = array[..., np.newaxis]
    return normalize(array, scale=255.0, dtype=np.float32).astype(np.float32, copy=False)


def _check_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if _is_int(size) and int(size) > 0:
        return int(size), int(size)
    if (
        isinstance(size, tuple)
        and len(size) == 2
        and all(_is_int(side) and int(side) > 0 for side in size)
    ):
        return int(size[0]), int(size[1])
    raise ValueError(
        "`size` must be a positive int or a (height, width) tuple of positive ints; received "
        f"{size!r}. Use e.g. `size=32` or `size=96` for keras.applications backbones."
    )


def resize_images(
    x: npt.ArrayLike,
    size: int | tuple[int, int],
    *,
    rgb: bool = False,
    batch_size: int = 1024,
) -> npt.NDArray[np.float32]:
    """Resize a batch of images with bilinear interpolation, optionally turning grey into RGB.

    Resizing runs through `keras.ops.image.resize` (any Keras backend) in batches of
    `batch_size`, so peak memory beyond the output array stays bounded. The output itself is
    allocated in full: 60000 images at 96x96x3 take 6.6 GB, so resize subsets or use a
    `keras.layers.Resizing` layer inside the model for large inputs. Bilinear interpolation
    without antialiasing never leaves the input value range.

    Args:
        x: array-like. Float images of shape `(n, h, w, c)` (channels last); `(n, h, w)` is
            treated as one channel.
        size: int or tuple of two ints. Output side length, or `(height, width)`.
        rgb: bool. Whether to return 3 channels by repeating a single grey channel, as
            `keras.applications` backbones expect. Defaults to `False`.
        batch_size: int. Number of images resized at once. Defaults to `1024`.

    Returns:
        A float32 NumPy array of shape `(n, height, width, c)`, or `(n, height, width, 3)`
        when `rgb` is true.

    Raises:
        ValueError: `x` is not 3-D or 4-D, `size` or `batch_size` is not positive, or `rgb` is
            requested for images that have neither 1 nor 3 channels.

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import resize_images

        images = np.random.default_rng(0).random((4, 28, 28, 1), dtype="float32")
        out = resize_images(images, 32, rgb=True)
        assert out.shape == (4, 32, 32, 3) and out.dtype == "float32"
        ```
    """
    array = np.asarray(x)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4:
        raise ValueError(
            "`x` must be a batch of channels-last images of shape (n, h, w, c); received shape "
            f"{array.shape}."
        )
    height, width = _check_size(size)
    if not (_is_int(batch_size) and batch_size > 0):
        raise ValueError(f"`batch_size` must be a positive int; received {batch_size!r}.")
    channels = array.shape[-1]
    if rgb and channels not in (1, 3):
        raise ValueError(
            f"`rgb=True` needs images with 1 (grey) or 3 channels; received {channels} channels "
            f"(shape {array.shape}). Pass `rgb=False` to keep the channels as they are."
        )
    out_channels = 3 if rgb else channels
    out = np.empty((array.shape[0], height, width, out_channels), dtype=np.float32)
    if array.shape[0] == 0:
        return out

    import keras

    for start in range(0, array.shape[0], batch_size):
        batch = array[start : start + batch_size].astype(np.float32, copy=False)
        if batch.shape[1:3] == (height, width):
            resized = batch
        else:
            resized = keras.ops.convert_to_numpy(
                keras.ops.image.resize(
                    batch, (height, width), interpolation="bilinear", data_format="channels_last"
                )
            )
        out[start : start + batch_size] = resized  # broadcasts 1 channel to 3 when rgb
    return out


def augmentation(
    *,
    flip: bool = True,
    rotation: float = 0.05,
    zoom: float = 0.1,
    translation: float = 0.1,
    seed: int | None = None,
) -> Model:
    """Build a `keras.Sequential` of random image augmentations to put at the start of a model.

    The layers (`RandomFlip("horizontal")`, `RandomRotation`, `RandomZoom`,
    `RandomTranslation`) augment during `model.fit` and pass images through unchanged in
    `model.predict` and `model.evaluate`. Beware: a direct call (`model(x)` or `augment(x)`)
    without `training=False` augments too, because Keras' random layers default to
    `training=True`; pass `training=False` when extracting features by calling the model. A
    factor of 0 (or `flip=False`) leaves the corresponding layer out.

    Args:
        flip: bool. Whether to flip images horizontally at random. Defaults to `True`.
        rotation: float. Maximum rotation as a fraction of a full turn (0.05 = +/-18 degrees).
            Defaults to `0.05`.
        zoom: float in [0, 1). Maximum zoom in or out as a fraction of the image size.
            Defaults to `0.1`.
        translation: float in [0, 1). Maximum shift as a fraction of the image height and
            width. Defaults to `0.1`.
        seed: int or None. Seed of the random layers (each layer gets its own derived seed).
            Defaults to `None` (non-reproducible).

    Returns:
        A `keras.Sequential` named `"augmentation"`; it holds a single `Identity` layer when
        every augmentation is disabled.

    Raises:
        ValueError: a factor is negative or out of range, or `seed` is not a non-negative int.

    Example:
        ```python
        import keras
        import numpy as np

        from transferkit.datasets import augmentation

        augment = augmentation(seed=0)
        images = np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32")
        inference = keras.ops.convert_to_numpy(augment(images, training=False))
        assert np.allclose(inference, images)
        trained = keras.ops.convert_to_numpy(augment(images, training=True))
        assert trained.shape == images.shape
        ```
    """
    if not isinstance(flip, (bool, np.bool_)):
        raise ValueError(f"`flip` must be a bool; received {flip!r}.")
    for name, value, upper in (
        ("rotation", rotation, math.inf),
        ("zoom", zoom, 1.0),
        ("translation", translation, 1.0),
    ):
        if not _is_real(value) or not (0.0 <= float(value) < upper):
            bound = "a non-negative number" if upper == math.inf else f"a number in [0, {upper})"
            raise ValueError(f"`{name}` must be {bound}; received {value!r}. Use 0 to disable it.")
    _check_seed(seed)

    import keras

    def layer_seed(offset: int) -> int | None:
        return None if seed is None else int(seed) + offset

    layers: list[Any] = []
    if flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(0)))
    if rotation:
        layers.append(keras.layers.RandomRotation(float(rotation), seed=layer_seed(1)))
    if zoom:
        layers.append(keras.layers.RandomZoom(float(zoom), seed=layer_seed(2)))
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                float(translation), float(translation), seed=layer_seed(3)
            )
        )
    if not layers:
        layers.append(keras.layers.Identity())
    return keras.Sequential(layers, name="augmentation")


# --------------------------------------------------------------------------------------------
# Splitting and subsampling
# --------------------------------------------------------------------------------------------


def _resolve_size(value: int | float | None, name: str, n: int, *, allow_none: bool) -> int:
    if value is None and allow_none:
        return 0
    if _is_int(value):
        count = int(value)
        if count > 0:
            return count
    elif _is_real(value) and 0.0 < float(value) < 1.0:
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
    """Split `(x, y)` at random into train, validation and (optionally) test sets.

    Uses `sklearn.model_selection.train_test_split`, stratified by label (so each set keeps
    the class proportions) and seeded (the same `seed` always gives the same split). The test
    set is split off first, then the validation set from the rest.

    Args:
        x: array-like. Samples, of shape `(n, ...)`.
        y: array-like. Integer class labels of shape `(n,)`.
        val_size: int or float. Number of validation samples (int), or fraction of all samples
            (float in (0, 1), rounded up). Defaults to `10000`.
        test_size: int, float or None. Number or fraction of test samples; `None` makes an
            empty test set (use it when the dataset ships an official test set). Defaults to
            `None`.
        stratify: bool. Whether to preserve class proportions in every set. Defaults to `True`.
        seed: int or None. Random seed; `None` gives a different split on every call. Defaults
            to `0`.

    Returns:
        A `Split` whose `train`, `validation` and `test` are `(x, y)` pairs of NumPy arrays.
        With `test_size=None` the test arrays hold zero samples.

    Raises:
        ValueError: `x` and `y` differ in length, `y` is not 1-D integer labels, a size is not
            positive, the sizes leave no training sample, or stratification is impossible
            (a set smaller than the number of classes, or a class with a single sample).

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import train_val_test_split

        x, y = np.arange(200).reshape(100, 2), np.repeat(np.arange(5), 20)
        split = train_val_test_split(x, y, val_size=20, test_size=0.1, seed=0)
        print(split)  # Split(train=70, validation=20, test=10 samples; ...)
        x_val, y_val = split.validation
        assert np.bincount(y_val).tolist() == [4, 4, 4, 4, 4]
        ```
    """
    x_array = _as_array(x, "x")
    n = len(x_array)
    y_array = _as_labels(y, n)
    n_val = _resolve_size(val_size, "val_size", n, allow_none=False)
    n_test = _resolve_size(test_size, "test_size", n, allow_none=True)
    if n_val + n_test >= n:
        raise ValueError(
            f"`val_size` and `test_size` must leave at least one training sample: they give "
            f"{n_val} + {n_test} = {n_val + n_test} samples, but `x` has only {n}. Reduce them."
        )
    if not isinstance(stratify, (bool, np.bool_)):
        raise ValueError(f"`stratify` must be a bool; received {stratify!r}.")
    _check_seed(seed)
    if stratify:
        sizes = {"`val_size`": n_val, "The training set": n - n_val - n_test}
        if n_test:
            sizes["`test_size`"] = n_test
        _check_stratifiable(y_array, sizes)

    from sklearn.model_selection import train_test_split

    if n_test:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x_array,
            y_array,
            test_size=n_test,
            stratify=y_array if stratify else None,
            random_state=seed,
        )
    else:
        x_rest, y_rest = x_array, y_array
        x_test, y_test = x_array[:0], y_array[:0]
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=n_val,
        stratify=y_rest if stratify else None,
        random_state=seed,
    )
    return Split(train=(x_train, y_train), validation=(x_val, y_val), test=(x_test, y_test))


def lab_split(path: str | os.PathLike[str] | None = None) -> Split:
    """Return Fashion-MNIST split exactly as in the lab: 50000 train, 10000 validation, 10000 test.

    The validation set is the last 10000 of the 60000 official training images, unshuffled
    (`x_val = x_train[-10000:]`), the training set the first 50000, and the test set the
    official 10000 test images. Images are float32 `(n, 28, 28, 1)` in [0, 1] (divided by 255),
    labels int64.

    Args:
        path: str or Path. Directory holding the Fashion-MNIST files, passed to
            `load_fashion_mnist`. Defaults to `None` (search the standard locations).

    Returns:
        A `Split` with 50000 / 10000 / 10000 samples.

    Raises:
        DatasetNotFoundError: the Fashion-MNIST files cannot be found or downloaded.
        DatasetCorruptError: a Fashion-MNIST file is corrupt.

    Example:
        ```python
        from transferkit.datasets import lab_split

        (x_train, y_train), (x_val, y_val), (x_test, y_test) = lab_split()
        assert x_train.shape == (50000, 28, 28, 1) and x_train.dtype == "float32"
        assert len(x_val) == len(x_test) == 10000 and y_val.dtype == "int64"
        ```
    """
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(path)
    x_train_f = to_float_images(x_train)
    y_train_i = y_train.astype(np.int64)
    return Split(
        train=(x_train_f[:-10000], y_train_i[:-10000]),
        validation=(x_train_f[-10000:], y_train_i[-10000:]),
        test=(to_float_images(x_test), y_test.astype(np.int64)),
    )


def subset_classes(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    classes: Sequence[int],
    *,
    relabel: bool = True,
) -> _Pair:
    """Keep only the samples of the given classes, optionally relabelled to 0..k-1.

    Used to build transfer tasks, e.g. a source task on classes 0-4 and a target task on
    classes 5-9. Sample order is preserved. Requested classes without samples are allowed (they
    just contribute nothing), as long as at least one sample is kept.

    Args:
        x: array-like. Samples of shape `(n, ...)`.
        y: array-like. Integer class labels of shape `(n,)`.
        classes: sequence of ints. Distinct labels to keep. With `relabel`, `classes[i]`
            becomes label `i`.
        relabel: bool. Whether to map the kept labels to `0..len(classes)-1` in the order of
            `classes`. Defaults to `True`.

    Returns:
        `(x_subset, y_subset)`: NumPy arrays holding only the kept samples; labels keep the
        dtype of `y`.

    Raises:
        ValueError: `x` and `y` differ in length, `y` is not 1-D integer labels, `classes` is
            empty, holds non-ints or duplicates, or none of its classes occurs in `y`.

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import subset_classes

        x, y = np.arange(6), np.array([5, 0, 7, 5, 9, 1])
        x_sub, y_sub = subset_classes(x, y, [5, 6, 7, 8, 9])
        print(x_sub, y_sub)  # [0 2 3 4] [0 2 0 4]
        ```
    """
    x_array = _as_array(x, "x")
    y_array = _as_labels(y, len(x_array))
    wanted = list(classes) if not isinstance(classes, (str, bytes)) else None
    if not wanted or not all(_is_int(c) for c in wanted):
        raise ValueError(
            f"`classes` must be a non-empty sequence of int labels; received {classes!r}. "
            "Example: `classes=[5, 6, 7, 8, 9]`."
        )
    wanted_ints = [int(c) for c in wanted]
    if len(set(wanted_ints)) != len(wanted_ints):
        raise ValueError(f"`classes` must not contain duplicates; received {classes!r}.")
    mask = np.isin(y_array, wanted_ints)
    if not mask.any():
        present = np.unique(y_array).tolist()
        raise ValueError(
            f"None of the `classes` {wanted_ints} occurs in `y`; labels present in `y`: "
            f"{present}. Check that `y` holds integer labels (not one-hot) and `classes` "
            "uses the same numbering."
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
            room = np.where(alloc < counts, quota - alloc, -np.inf)
            alloc[int(np.argmax(room))] += 1
        else:
            excess = np.where(alloc > 1, alloc - quota, -np.inf)
            alloc[int(np.argmax(excess))] -= 1
    return alloc


def stratified_subsample(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    n: int,
    *,
    seed: int | None = 0,
) -> _Pair:
    """Draw `n` samples at random, stratified by label (a labelled-data budget).

    Each class gets a share of `n` proportional to its frequency (largest remainders, at least
    one sample per class), so a balanced dataset gives exactly `n / k` samples per class when
    `k` divides `n`. The result is shuffled.

    Args:
        x: array-like. Samples of shape `(N, ...)`.
        y: array-like. Integer class labels of shape `(N,)`.
        n: int. Number of samples to draw, between the number of classes and `N`.
        seed: int or None. Random seed; `None` gives a different subsample on every call.
            Defaults to `0`.

    Returns:
        `(x_subset, y_subset)` NumPy arrays of `n` samples, in random order.

    Raises:
        ValueError: `x` and `y` differ in length, `y` is not 1-D integer labels, or `n` is not
            an int between the number of classes and `len(x)`.

    Example:
        ```python
        import numpy as np

        from transferkit.datasets import stratified_subsample

        x, y = np.arange(1000), np.repeat(np.arange(10), 100)
        x_50, y_50 = stratified_subsample(x, y, 50, seed=0)
        assert np.bincount(y_50).tolist() == [5] * 10
        ```
    """
    x_array = _as_array(x, "x")
    y_array = _as_labels(y, len(x_array))
    _check_seed(seed)
    classes, inverse, counts = np.unique(y_array, return_inverse=True, return_counts=True)
    if not _is_int(n) or not (len(classes) <= int(n) <= len(x_array)):
        raise ValueError(
            f"`n` must be an int between the number of classes ({len(classes)}) and the "
            f"number of samples ({len(x_array)}); received {n!r}."
        )
    rng = np.random.default_rng(seed)
    alloc = _allocate(counts.astype(np.int64), int(n))
    chosen = [
        rng.choice(np.flatnonzero(inverse == index), size=int(k), replace=False)
        for index, k in enumerate(alloc)
    ]
    indices = rng.permutation(np.concatenate(chosen))
    return x_array[indices], y_array[indices]
