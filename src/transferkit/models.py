"""Reference models: the lab's CNN, defined once for examples, benchmarks, tests and docs."""

from __future__ import annotations

import keras

from ._validate import check_positive_int
from .types import Model

__all__ = ["lab_cnn"]


def lab_cnn(num_classes: int = 10, *, name: str = "lab_cnn") -> Model:
    """The lab's Fashion-MNIST CNN (`create_model_fine_tuning`), layer for layer.

    `Conv2D(32) -> MaxPooling2D -> Conv2D(64) -> MaxPooling2D -> Flatten -> Dense(128) ->
    Dense(num_classes, softmax)` on 28x28x1 images, freshly initialised, with the layer names
    of a fresh Keras session (the lab's "first 4 layers" are `upto="max_pooling2d_1"`).

    Args:
        num_classes: int. Units of the softmax output layer. Defaults to `10`.
        name: str. The model's name. Defaults to `"lab_cnn"`.

    Returns:
        A new, built `keras.Sequential`.

    Raises:
        ValueError: If `num_classes` is not a positive int.

    Example:

    ```python
    from transferkit import leaf_layers
    from transferkit.models import lab_cnn

    model = lab_cnn(5)
    assert [leaf.path for leaf in leaf_layers(model)][3:5] == ["max_pooling2d_1", "flatten"]
    assert model.output_shape == (None, 5) and model.count_params() == 420_997
    ```
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding="same", name="conv2d"),
            layers.MaxPooling2D(name="max_pooling2d"),
            layers.Conv2D(64, (3, 3), activation="relu", padding="same", name="conv2d_1"),
            layers.MaxPooling2D(name="max_pooling2d_1"),
            layers.Flatten(name="flatten"),
            layers.Dense(128, activation="relu", name="dense"),
            layers.Dense(num_classes, activation="softmax", name="dense_1"),
        ],
        name=name,
    )
