"""`copy_model`: an independent copy with the same weights and trainable flags."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import (
    LEAF_COUNTS,
    assert_weights_equal,
    fit_once,
    flags_snapshot,
    leaf_flags,
    random_images,
    weights_snapshot,
)
from transferkit.freezing._layers import all_layers

INPUT_SHAPES = {
    "lab_cnn": (28, 28, 1),
    "mobilenet": (32, 32, 3),
    "bn_model": (8, 8, 3),
    "subclassed": (4,),
    "nested_sequential": (6,),
}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_copy_is_independent_with_same_weights_and_flags(zoo_model):
    name, model = zoo_model
    tk.freeze(model, upto=LEAF_COUNTS[name] // 2)
    flags, weights = flags_snapshot(model), weights_snapshot(model)

    twin = tk.copy_model(model)

    assert twin is not model and type(twin) is type(model)
    assert [leaf.path for leaf in tk.leaf_layers(twin)] == [
        leaf.path for leaf in tk.leaf_layers(model)
    ]
    assert flags_snapshot(twin) == flags
    assert_weights_equal(weights, weights_snapshot(twin))
    assert not {id(v) for v in twin.weights} & {id(v) for v in model.weights}
    assert not {id(layer) for layer in all_layers(twin)} & {
        id(layer) for layer in all_layers(model)
    }
    x, _ = random_images(4, INPUT_SHAPES[name], 2)
    np.testing.assert_array_equal(_np(twin(x)), _np(model(x)))

    # changing the copy leaves the original alone
    tk.unfreeze(twin)
    for v in twin.weights:
        v.assign(keras.ops.ones(v.shape, dtype=v.dtype))
    assert flags_snapshot(model) == flags
    assert_weights_equal(weights, weights_snapshot(model))
    assert model.built and twin.built


def test_copy_keeps_variable_level_flags(lab_cnn):
    lab_cnn.layers[5].kernel.trainable = False
    twin = tk.copy_model(lab_cnn)
    assert [v.trainable for v in twin.weights] == [v.trainable for v in lab_cnn.weights]
    assert twin.layers[5].kernel.trainable is False
    assert twin.layers[5].bias.trainable is True


def test_copy_of_frozen_bn_model_runs_bn_in_inference_mode(bn_model):
    tk.freeze(bn_model, upto="bn_b")
    twin = tk.copy_model(bn_model)
    x, _ = random_images(8, (8, 8, 3), 3)
    np.testing.assert_array_equal(_np(twin(x, training=True)), _np(twin(x, training=False)))


def test_training_the_copy_leaves_the_original_alone(lab_cnn):
    tk.freeze(lab_cnn, upto=4)
    flags, weights = flags_snapshot(lab_cnn), weights_snapshot(lab_cnn)
    twin = tk.copy_model(lab_cnn)
    x, y = random_images(32, (28, 28, 1), 10)
    dense_before = weights_snapshot(twin.layers[5])
    fit_once(twin, x, y)
    assert not np.array_equal(dense_before[0], weights_snapshot(twin.layers[5])[0])
    assert leaf_flags(twin) == [False] * 4 + [True] * 3
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))


class _Unclonable(keras.Model):
    """Subclassed model with a non-serialisable constructor argument and no get_config."""

    def __init__(self, thing, **kwargs):
        super().__init__(**kwargs)
        self.thing = thing
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


def test_unclonable_model_raises_value_error():
    model = _Unclonable(object(), name="unclonable")
    model(np.zeros((1, 3), dtype="float32"))
    flags, weights = flags_snapshot(model), weights_snapshot(model)
    with pytest.raises(ValueError, match=r"Cannot copy model 'unclonable' \(_Unclonable\)"):
        tk.copy_model(model)
    assert flags_snapshot(model) == flags
    assert_weights_equal(weights, weights_snapshot(model))


@pytest.mark.parametrize("bad", ["model", None, keras.layers.Dense])
def test_copy_of_non_model_is_type_error(bad):
    with pytest.raises(TypeError, match=r"`model` must be a `keras.Model`"):
        tk.copy_model(bad)
