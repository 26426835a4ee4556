"""`replace_head` and `as_feature_extractor`: new models from a copy, caller untouched."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import (
    BUILDERS,
    MOBILENET_NAME,
    assert_weights_equal,
    count,
    fit_once,
    flags_snapshot,
    leaf_flags,
    random_images,
    weights_snapshot,
)
from transferkit.freezing._layers import all_layers

LAB_PATHS = [
    "conv2d",
    "max_pooling2d",
    "conv2d_1",
    "max_pooling2d_1",
    "flatten",
    "dense",
    "dense_1",
]
EXPAND = f"{MOBILENET_NAME}/block_13_expand"


def _paths(model):
    return [leaf.path for leaf in tk.leaf_layers(model)]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def assert_independent(new, original):
    """No layer and no variable of `original` is part of `new`."""
    assert not {id(v) for v in new.weights} & {id(v) for v in original.weights}
    assert not {id(layer) for layer in all_layers(new)} & {
        id(layer) for layer in all_layers(original)
    }


def assert_leaf_weights_equal(new, original, k):
    """The first k leaf layers of `new` and `original` have bit-identical weights."""
    for a, b in zip(tk.leaf_layers(new)[:k], tk.leaf_layers(original)[:k], strict=True):
        assert a.name == b.name
        assert_weights_equal(weights_snapshot(b.layer), weights_snapshot(a.layer))


# --------------------------------------------------------------------------- replace_head


def test_replace_head_lab_cnn(lab_cnn):
    tk.freeze(lab_cnn, upto=4)
    lab_cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    flags, weights = flags_snapshot(lab_cnn), weights_snapshot(lab_cnn)

    new = tk.replace_head(lab_cnn, 3)

    assert new is not lab_cnn and new.name == "lab_cnn_new_head"
    assert new.output_shape == (None, 3)
    assert _paths(new) == [*LAB_PATHS[:6], "head_classifier"]
    assert leaf_flags(new) == [False] * 4 + [True] * 3  # flags carried over, head trainable
    head = new.get_layer("head_classifier")
    assert head.units == 3 and head.activation is keras.activations.softmax
    assert_leaf_weights_equal(new, lab_cnn, 6)
    assert_independent(new, lab_cnn)
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))

    x, y = random_images(48, (28, 28, 1), 3)
    before_new = {leaf.path: weights_snapshot(leaf.layer) for leaf in tk.leaf_layers(new)}
    fit_once(new, x, y)
    for leaf in tk.leaf_layers(new):
        after = weights_snapshot(leaf.layer)
        if not after:
            continue
        if leaf.layer.trainable:
            assert not np.array_equal(before_new[leaf.path][0], after[0]), leaf.path
        else:
            assert_weights_equal(before_new[leaf.path], after)
    # training the new model changes nothing in the caller's model
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))


def test_replace_head_hidden_dropout_activation(lab_cnn):
    new = tk.replace_head(lab_cnn, 5, hidden=[32, 16], dropout=0.25, activation=None)
    assert _paths(new)[6:] == [
        "head_dropout_0",
        "head_dense_0",
        "head_dropout_1",
        "head_dense_1",
        "head_dropout",
        "head_classifier",
    ]
    assert [new.get_layer(f"head_dense_{i}").units for i in (0, 1)] == [32, 16]
    assert all(
        new.get_layer(f"head_dense_{i}").activation is keras.activations.relu for i in (0, 1)
    )
    assert [
        new.get_layer(n).rate for n in ("head_dropout_0", "head_dropout_1", "head_dropout")
    ] == [0.25] * 3
    assert new.get_layer("head_classifier").activation is keras.activations.linear
    assert new.output_shape == (None, 5)
    assert count(new.trainable_weights) == count(lab_cnn.trainable_weights) - 1_290 + (
        (128 * 32 + 32) + (32 * 16 + 16) + (16 * 5 + 5)
    )


def test_replace_head_no_dropout_layers_when_zero(lab_cnn):
    new = tk.replace_head(lab_cnn, 2, hidden=(8,))
    assert _paths(new)[6:] == ["head_dense_0", "head_classifier"]


@pytest.mark.parametrize(
    ("cut", "kept"),
    [(4, 4), ("max_pooling2d_1", 4), (-4, 3), (1, 1), ("dense", 6)],
)
def test_replace_head_cut_forms(lab_cnn, cut, kept):
    new = tk.replace_head(lab_cnn, 4, cut=cut)
    flatten = ["head_flatten"] if kept < 5 else []  # 4-D activations are flattened
    assert _paths(new) == [*LAB_PATHS[:kept], *flatten, "head_classifier"]
    assert new.output_shape == (None, 4)
    assert_leaf_weights_equal(new, lab_cnn, kept)


def test_replace_head_cut_by_layer_object(lab_cnn):
    new = tk.replace_head(lab_cnn, 4, cut=lab_cnn.layers[4])
    assert _paths(new) == [*LAB_PATHS[:5], "head_classifier"]


def test_replace_head_default_on_mobilenet_then_train(mobilenet_model):
    tk.freeze(mobilenet_model, upto=EXPAND)
    flags, weights = flags_snapshot(mobilenet_model), weights_snapshot(mobilenet_model)
    new = tk.replace_head(mobilenet_model, 2)
    paths = _paths(new)
    assert paths[-2:] == ["gap", "head_classifier"]
    assert paths[:-1] == _paths(mobilenet_model)[:-1]
    assert leaf_flags(new)[:-1] == leaf_flags(mobilenet_model)[:-1]
    assert new.output_shape == (None, 2)
    assert_independent(new, mobilenet_model)
    assert_leaf_weights_equal(new, mobilenet_model, len(paths) - 1)

    x, y = random_images(32, (32, 32, 3), 2)
    fit_once(new, x, y)
    assert flags_snapshot(mobilenet_model) == flags
    assert_weights_equal(weights, weights_snapshot(mobilenet_model))


def test_replace_head_cut_inside_backbone(mobilenet_model):
    flags, weights = flags_snapshot(mobilenet_model), weights_snapshot(mobilenet_model)
    k = _paths(mobilenet_model).index(EXPAND) + 1
    new = tk.replace_head(mobilenet_model, 7, cut=EXPAND)
    leaves = tk.leaf_layers(new)
    assert len(leaves) == k + 2
    assert [leaf.name for leaf in leaves[k - 1 :]] == [
        "block_13_expand",
        "head_flatten",
        "head_classifier",
    ]
    assert new.output_shape == (None, 7)
    assert tuple(new.get_layer("head_classifier").kernel.shape) == (2 * 2 * 192, 7)
    assert_leaf_weights_equal(new, mobilenet_model, k)
    assert_independent(new, mobilenet_model)
    assert flags_snapshot(mobilenet_model) == flags
    assert_weights_equal(weights, weights_snapshot(mobilenet_model))


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bn_model", ["conv_a", "bn_a", "relu_a", "conv_b", "bn_b", "relu_b", "gap"]),
        ("nested_sequential", ["pre", "inner/inner_a", "inner/inner_b"]),
    ],
)
def test_replace_head_other_graph_models(name, body):
    model = BUILDERS[name]()
    flags, weights = flags_snapshot(model), weights_snapshot(model)
    new = tk.replace_head(model, 6)
    assert [leaf.name for leaf in tk.leaf_layers(new)] == [
        *(path.rsplit("/", 1)[-1] for path in body),
        "head_classifier",
    ]
    assert new.output_shape == (None, 6)
    assert_leaf_weights_equal(new, model, len(body))
    assert flags_snapshot(model) == flags
    assert_weights_equal(weights, weights_snapshot(model))


def test_replace_head_nested_sequential_cut_inside(nested_sequential):
    new = tk.replace_head(nested_sequential, 2, cut="inner/inner_a")
    assert [leaf.name for leaf in tk.leaf_layers(new)] == ["pre", "inner_a", "head_classifier"]
    assert new.get_layer("head_classifier").kernel.shape == (5, 2)


# --------------------------------------------------------------------------- feature extractor


def test_feature_extractor_default_is_input_of_classifier(lab_cnn):
    lab_cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # no warning
    flags, weights = flags_snapshot(lab_cnn), weights_snapshot(lab_cnn)
    extractor = tk.as_feature_extractor(lab_cnn)
    assert extractor.name == "lab_cnn_features"
    assert _paths(extractor) == LAB_PATHS[:6]
    assert extractor.output_shape == (None, 128)
    assert extractor.trainable_weights == []
    assert not any(leaf_flags(extractor))
    assert (
        count(extractor.non_trainable_weights)
        == extractor.count_params()
        == 320 + 18_496 + (401_536)
    )
    assert_independent(extractor, lab_cnn)
    x, _ = random_images(8, (28, 28, 1), 10)
    reference = keras.Model(lab_cnn.inputs, lab_cnn.layers[-1].input)
    np.testing.assert_array_equal(_np(extractor(x)), _np(reference(x)))
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))


def test_feature_extractor_bn_in_inference_mode(bn_model):
    x, _ = random_images(16, (8, 8, 3), 3)
    reference = keras.Model(bn_model.inputs, bn_model.get_layer("gap").output)
    # control: the (trainable) original normalises with batch statistics when training
    # (which also updates its moving statistics, so snapshot afterwards)
    assert not np.array_equal(_np(reference(x, training=True)), _np(reference(x)))
    flags, weights = flags_snapshot(bn_model), weights_snapshot(bn_model)
    extractor = tk.as_feature_extractor(bn_model)
    assert extractor.output_shape == (None, 8)
    train_out = _np(extractor(x, training=True))
    np.testing.assert_array_equal(train_out, _np(extractor(x, training=False)))
    np.testing.assert_array_equal(train_out, _np(reference(x, training=False)))
    assert flags_snapshot(bn_model) == flags
    assert_weights_equal(weights, weights_snapshot(bn_model))


@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_feature_extractor_pooling(bn_model, pooling):
    x, _ = random_images(4, (8, 8, 3), 3)
    maps = _np(keras.Model(bn_model.inputs, bn_model.get_layer("relu_b").output)(x))
    extractor = tk.as_feature_extractor(bn_model, cut="relu_b", pooling=pooling)
    out = _np(extractor(x))
    if pooling is None:
        assert extractor.output_shape == (None, 8, 8, 8)
        np.testing.assert_array_equal(out, maps)
    elif pooling == "avg":
        assert extractor.output_shape == (None, 8)
        assert _paths(extractor)[-1] == "features_avg_pool"
        np.testing.assert_allclose(out, maps.mean(axis=(1, 2)), rtol=1e-6, atol=1e-7)
    else:
        assert extractor.output_shape == (None, 8)
        assert _paths(extractor)[-1] == "features_max_pool"
        np.testing.assert_array_equal(out, maps.max(axis=(1, 2)))
    assert extractor.trainable_weights == []


def test_feature_extractor_mobilenet_backbone(mobilenet_model):
    flags, weights = flags_snapshot(mobilenet_model), weights_snapshot(mobilenet_model)
    extractor = tk.as_feature_extractor(
        mobilenet_model, cut=f"{MOBILENET_NAME}/out_relu", pooling="avg"
    )
    assert extractor.output_shape == (None, 1280)
    assert extractor.trainable_weights == []
    x, _ = random_images(4, (32, 32, 3), 10)
    gap = keras.Model(mobilenet_model.inputs, mobilenet_model.get_layer("gap").output)
    np.testing.assert_allclose(_np(extractor(x, training=True)), _np(gap(x)), rtol=1e-5, atol=1e-6)
    assert flags_snapshot(mobilenet_model) == flags
    assert_weights_equal(weights, weights_snapshot(mobilenet_model))


def test_training_on_top_of_extractor_changes_neither(bn_model):
    flags, weights = flags_snapshot(bn_model), weights_snapshot(bn_model)
    extractor = tk.as_feature_extractor(bn_model)
    extractor_weights = weights_snapshot(extractor)
    outputs = keras.layers.Dense(3, activation="softmax", name="new_head")(extractor.output)
    classifier = keras.Model(extractor.inputs, outputs)
    head_before = weights_snapshot(classifier.get_layer("new_head"))
    x, y = random_images(32, (8, 8, 3), 3)
    fit_once(classifier, x, y)
    assert not np.array_equal(head_before[0], weights_snapshot(classifier.get_layer("new_head"))[0])
    assert_weights_equal(extractor_weights, weights_snapshot(extractor))  # BN stats included
    assert flags_snapshot(bn_model) == flags
    assert_weights_equal(weights, weights_snapshot(bn_model))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call",
    [lambda m: tk.replace_head(m, 2), tk.as_feature_extractor],
    ids=["replace_head", "as_feature_extractor"],
)
def test_subclassed_model_gets_a_clear_error(subclassed_model, call):
    flags, weights = flags_snapshot(subclassed_model), weights_snapshot(subclassed_model)
    with pytest.raises(
        ValueError,
        match=r"needs a Functional or Sequential model.*'subclassed' is a subclassed model "
        r"\(SubclassedNet\).*Functional API",
    ):
        call(subclassed_model)
    assert flags_snapshot(subclassed_model) == flags
    assert_weights_equal(weights, weights_snapshot(subclassed_model))


def test_model_without_weights_has_no_classifier():
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.ReLU()])
    with pytest.raises(ValueError, match=r"no layer with weights"):
        tk.replace_head(model, 2)


HEAD_ERRORS = [
    (
        lambda m: tk.replace_head(m, 0),
        ValueError,
        r"`num_classes` must be a positive int\. "
        r"Received: num_classes=0",
    ),
    (lambda m: tk.replace_head(m, -3), ValueError, r"num_classes=-3"),
    (lambda m: tk.replace_head(m, True), ValueError, r"num_classes=True"),
    (lambda m: tk.replace_head(m, 2.0), ValueError, r"num_classes=2\.0"),
    (
        lambda m: tk.replace_head(m, 3, cut=7),
        ValueError,
        r"`cut` is at the output layer \('dense_1'\).*index below 7.*'dense'",
    ),
    (lambda m: tk.replace_head(m, 3, cut="dense_1"), ValueError, r"at the output layer"),
    (
        lambda m: tk.replace_head(m, 3, cut=0),
        ValueError,
        r"`cut` must keep at least one layer \(an index between 1 and 6\)",
    ),
    (lambda m: tk.replace_head(m, 3, cut=-7), ValueError, r"keep at least one layer"),
    (
        lambda m: tk.replace_head(m, 3, cut=8),
        ValueError,
        r"`cut` must be between -7 and 7 \(the model has 7 leaf layers\)",
    ),
    (
        lambda m: tk.replace_head(m, 3, cut="conv2d_l"),
        ValueError,
        r"No leaf layer named 'conv2d_l'.*Did you mean 'conv2d_1'",
    ),
    (lambda m: tk.replace_head(m, 3, cut=True), TypeError, r"Received: cut=True \(a bool\)"),
    (
        lambda m: tk.replace_head(m, 3, cut=keras.layers.Dense(2, name="alien")),
        ValueError,
        r"'alien', which is not a layer of model 'lab_cnn'",
    ),
    (
        lambda m: tk.replace_head(m, 3, hidden=(0,)),
        ValueError,
        r"`hidden` must be positive ints \(units\)\. Received: hidden=\(0,\)",
    ),
    (lambda m: tk.replace_head(m, 3, hidden=(16, -1)), ValueError, r"hidden=\(16, -1\)"),
    (lambda m: tk.replace_head(m, 3, hidden=(True,)), ValueError, r"hidden=\(True,\)"),
    (lambda m: tk.replace_head(m, 3, hidden=(8.0,)), ValueError, r"hidden=\(8\.0,\)"),
    (
        lambda m: tk.replace_head(m, 3, hidden=64),
        TypeError,
        r"`hidden` must be a sequence of ints.*Received: hidden=64",
    ),
    (lambda m: tk.replace_head(m, 3, hidden="64"), TypeError, r"hidden='64'"),
    (
        lambda m: tk.replace_head(m, 3, dropout=1.0),
        ValueError,
        r"`dropout` must be a float in \[0, 1\)\. Received: dropout=1\.0",
    ),
    (lambda m: tk.replace_head(m, 3, dropout=-0.1), ValueError, r"dropout=-0\.1"),
    (lambda m: tk.replace_head(m, 3, dropout=float("nan")), ValueError, r"dropout=nan"),
    (lambda m: tk.replace_head(m, 3, dropout="0.5"), ValueError, r"dropout='0\.5'"),
    (lambda m: tk.replace_head(m, 3, dropout=True), ValueError, r"dropout=True"),
    (
        lambda m: tk.as_feature_extractor(m, pooling="mean"),
        ValueError,
        r"`pooling` must be one of None, 'avg', 'max'\. Received: pooling='mean'",
    ),
    (lambda m: tk.as_feature_extractor(m, pooling="AVG"), ValueError, r"pooling='AVG'"),
    (
        lambda m: tk.as_feature_extractor(m, pooling="avg"),
        ValueError,
        r"`pooling` needs a 4-D output.*shape \(None, 128\)",
    ),
    (lambda m: tk.as_feature_extractor(m, cut="dense_1"), ValueError, r"at the output layer"),
    (lambda m: tk.as_feature_extractor(m, cut=-1_000), ValueError, r"between -7 and 7"),
    (lambda m: tk.as_feature_extractor(m, cut=1.5), TypeError, r"of type float"),
]


@pytest.mark.parametrize(("call", "error", "match"), HEAD_ERRORS)
def test_head_bad_input_leaves_model_unchanged(lab_cnn, call, error, match):
    tk.freeze(lab_cnn, upto=2)
    flags, weights = flags_snapshot(lab_cnn), weights_snapshot(lab_cnn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error, match=match):
            call(lab_cnn)
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))
