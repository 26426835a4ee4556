"""Image preprocessing on any Keras backend: scale, resize and augment (Keras imported lazily)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from .._validate import check_positive_int, is_int, is_real
from ..types import Model


def normalize(
    x: npt.ArrayLike, *, scale: float = 255.0, dtype: npt.DTypeLike = "float32"
) -> npt.NDArray[np.floating[Any]]:
    """Returns `x / scale` as a new floating-point array (uint8 pixels to [0, 1] by default).

    Args:
        x: array-like. Values of any shape, typically uint8 images.
        scale: float. Positive divisor. Defaults to `255.0`.
        dtype: str or numpy dtype. Floating-point dtype of the result. Defaults to `"float32"`.

    Returns:
        An array of dtype `dtype` and the shape of `x`.

    Raises:
        ValueError: If `scale` is not a positive finite number or `dtype` is not floating.

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import normalize

    out = normalize(np.array([0, 51, 255], dtype="uint8"))
    assert out.dtype == "float32" and np.allclose(out, [0.0, 0.2, 1.0])
    ```
    """
    if not is_real(scale) or not math.isfinite(float(scale)) or float(scale) <= 0:
        raise ValueError(
            f"`scale` must be a positive finite number; received {scale!r}. Use 255.0 for "
            "uint8 images."
        )
    target: np.dtype[Any] = np.dtype(dtype)
    if not np.issubdtype(target, np.floating):
        raise ValueError(
            f"`dtype` must be a floating-point dtype such as 'float32'; received {dtype!r}."
        )
    result: npt.NDArray[np.floating[Any]] = np.asarray(x, target) / np.asarray(scale, target)
    return result.astype(target, copy=False)


def to_float_images(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Turns integer images `(n, h, w)` into float32 `(n, h, w, 1)` in [0, 1] (the lab's way).

    Args:
        x: array-like. Integer (typically uint8) images, `(n, h, w)` or `(n, h, w, c)`.

    Returns:
        A float32 array of shape `(n, h, w, 1)` (or `(n, h, w, c)`).

    Raises:
        ValueError: If `x` is not 3-D or 4-D, or holds floats (they would be divided by 255
            twice; use `normalize`).

    Example:

    ```python
    import numpy as np
    from transferkit.datasets import to_float_images

    out = to_float_images(np.full((2, 28, 28), 255, dtype="uint8"))
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
    """`size` as `(height, width)`, or a `ValueError`."""
    sides = (size, size) if is_int(size) else size
    if isinstance(sides, tuple) and len(sides) == 2 and all(is_int(s) and s > 0 for s in sides):
        return int(sides[0]), int(sides[1])
    raise ValueError(
        "`size` must be a positive int or a (height, width) tuple of positive ints; received "
        f"{size!r}. Use e.g. `size=32` or `size=96` for keras.applications backbones."
    )


def resize_images(
    x: npt.ArrayLike, size: int | tuple[int, int], *, rgb: bool = False, batch_size: int = 1024
) -> npt.NDArray[np.float32]:
    """Resizes images (bilinear, `keras.ops.image.resize`), optionally grey to RGB.

    Sharp edge: the output is allocated in full (60000 images at 96x96x3 take 6.6 GB); for
    large inputs resize subsets or put a `keras.layers.Resizing` layer in the model.

    Args:
        x: array-like. Channels-last images `(n, h, w, c)`; `(n, h, w)` is one channel.
        size: int or tuple of two ints. Output side length, or `(height, width)`.
        rgb: bool. Whether to repeat one grey channel into 3. Defaults to `False`.
        batch_size: int. Images resized at once. Defaults to `1024`.

    Returns:
        A float32 array of shape `(n, height, width, c)` (`c` is 3 with `rgb`).

    Raises:
        ValueError: If `x` is not 3-D or 4-D, `size` or `batch_size` is not positive, or
            `rgb` is asked for images with neither 1 nor 3 channels.

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
    batch_size = check_positive_int(batch_size, "batch_size")
    channels = array.shape[-1]
    if rgb and channels not in (1, 3):
        raise ValueError(
            f"`rgb=True` needs images with 1 (grey) or 3 channels; received {channels} channels "
            f"(shape {array.shape}). Pass `rgb=False` to keep the channels as they are."
        )
    out = np.empty((array.shape[0], height, width, 3 if rgb else channels), dtype=np.float32)
    if array.shape[0] == 0:
        return out

    import keras

    for start in range(0, array.shape[0], batch_size):
        batch = array[start : start + batch_size].astype(np.float32, copy=False)
        if batch.shape[1:3] != (height, width):
            batch = keras.ops.convert_to_numpy(
                keras.ops.image.resize(
                    batch, (height, width), interpolation="bilinear", data_format="channels_last"
                )
            )
        out[start : start + batch_size] = batch  # broadcasts 1 channel to 3 when rgb
    return out


def augmentation(
    *,
    flip: bool = True,
    rotation: float = 0.05,
    zoom: float = 0.1,
    translation: float = 0.1,
    seed: int | None = None,
) -> Model:
    """Builds a `keras.Sequential` of random flip, rotation, zoom and translation layers.

    They augment in `fit` and pass images through in `predict` and `evaluate`. Sharp edge: a
    direct call (`model(x)`) augments too; pass `training=False`. A factor of 0 leaves its
    layer out.

    Args:
        flip: bool. Whether to flip images horizontally at random. Defaults to `True`.
        rotation: float. Largest rotation, as a fraction of a full turn. Defaults to `0.05`.
        zoom: float in [0, 1). Largest zoom, as a fraction of the size. Defaults to `0.1`.
        translation: float in [0, 1). Largest shift, as a fraction. Defaults to `0.1`.
        seed: int. Seed of the random layers (each derives its own). Defaults to `None`.

    Returns:
        A `keras.Sequential` named `"augmentation"` (an `Identity` layer when all are off).

    Raises:
        ValueError: If a factor is out of range or `seed` is not a non-negative int.

    Example:

    ```python
    import keras
    import numpy as np
    from transferkit.datasets import augmentation

    augment = augmentation(seed=0)
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype="float32")
    assert np.allclose(keras.ops.convert_to_numpy(augment(images, training=False)), images)
    ```
    """
    if not isinstance(flip, (bool, np.bool_)):
        raise ValueError(f"`flip` must be a bool; received {flip!r}.")
    for name, value, upper in (
        ("rotation", rotation, math.inf),
        ("zoom", zoom, 1.0),
        ("translation", translation, 1.0),
    ):
        if not is_real(value) or not (0.0 <= float(value) < upper):
            bound = "a non-negative number" if upper == math.inf else f"a number in [0, {upper})"
            raise ValueError(f"`{name}` must be {bound}; received {value!r}. Use 0 to disable it.")
    if seed is not None:
        check_positive_int(seed, "seed", allow_zero=True)

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
        shift = float(translation)
        layers.append(keras.layers.RandomTranslation(shift, shift, seed=layer_seed(3)))
    return keras.Sequential(layers or [keras.layers.Identity()], name="augmentation")
