"""`transferkit.models.lab_cnn` is the lab's CNN: same layers, shapes and parameters."""

from __future__ import annotations

from typing import Any

import keras
import pytest
from keras import layers, models

import transferkit as tk
from transferkit.models import lab_cnn

LAB_NAMES = [
    *("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1"),
    *("flatten", "dense", "dense_1"),
]


def create_model_fine_tuning(num_classes: int) -> keras.Model:
    """The lab's own definition (reference notebook, cell [1]), verbatim."""
    base_model = models.Sequential(
        [
            layers.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )
    return base_model


def _architecture(model: keras.Model) -> list[tuple[str, dict[str, Any], Any, int]]:
    out = []
    for layer in model.layers:
        config = {k: v for k, v in layer.get_config().items() if k != "name"}
        out.append((type(layer).__name__, config, layer.output.shape, layer.count_params()))
    return out


@pytest.mark.parametrize("num_classes", [10, 5])
def test_lab_cnn_is_the_labs_model(num_classes: int) -> None:
    ours = lab_cnn(num_classes)
    assert _architecture(ours) == _architecture(create_model_fine_tuning(num_classes))
    assert ours.name == "lab_cnn" and ours.output_shape == (None, num_classes)


def test_layer_names_do_not_depend_on_earlier_models() -> None:
    create_model_fine_tuning(10)  # takes Keras' default names in this session
    model = lab_cnn(name="source")
    assert [leaf.path for leaf in tk.leaf_layers(model)] == LAB_NAMES
    assert model.name == "source"
    assert lab_cnn().get_layer("conv2d") is not model.get_layer("conv2d")  # a new model each call


@pytest.mark.parametrize(
    ("num_classes", "match"),
    [
        (0, r"`num_classes` must be a positive int\. Received: num_classes=0"),
        (2.0, r"Received: num_classes=2\.0"),
        (True, r"Received: num_classes=True"),
    ],
)
def test_lab_cnn_bad_input(num_classes: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lab_cnn(num_classes)
