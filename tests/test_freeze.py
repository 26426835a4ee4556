"""`freeze`, `unfreeze`, `frozen`, `FreezeReport` and `RecompileWarning`."""

from __future__ import annotations

import json
import warnings

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transferkit as tk
from _fixtures import (
    BUILDERS,
    LEAF_COUNTS,
    MOBILENET_NAME,
    assert_weights_equal,
    build_mobilenet_model,
    count,
    fit_once,
    flags_snapshot,
    leaf_flags,
    random_images,
    weights_snapshot,
)

LAB_PATHS = (
    "conv2d",
    "max_pooling2d",
    "conv2d_1",
    "max_pooling2d_1",
    "flatten",
    "dense",
    "dense_1",
)
# conv2d: 3*3*1*32+32, conv2d_1: 3*3*32*64+64, dense: 7*7*64*128+128, dense_1: 128*10+10
LAB_PARAMS = (320, 0, 18_496, 0, 0, 401_536, 1_290)
LAB_TOTAL = sum(LAB_PARAMS)  # 421,642
EXPAND = f"{MOBILENET_NAME}/block_13_expand"


def _paths(model):
    return [leaf.path for leaf in tk.leaf_layers(model)]


def _ids(variables):
    return [id(v) for v in variables]


def _weights_by_leaf(model):
    """{(leaf path, variable path): numpy copy} for every weight of every leaf layer."""
    return {
        (leaf.path, v.path): np.array(keras.ops.convert_to_numpy(v), copy=True)
        for leaf in tk.leaf_layers(model)
        for v in leaf.layer.weights
    }


# --------------------------------------------------------------------------- the lab CNN


def test_lab_freeze_upto_4_is_layers_slice(lab_cnn):
    report = tk.freeze(lab_cnn, upto=4)
    assert [layer.trainable for layer in lab_cnn.layers] == [False] * 4 + [True] * 3
    assert report.frozen == LAB_PATHS[:4]
    assert report.trainable == LAB_PATHS[4:]
    assert report.boundary == 4
    assert lab_cnn.trainable is True
    assert count(lab_cnn.trainable_weights) == 401_536 + 1_290

    # exactly what the Keras idiom `for layer in model.layers[:4]: layer.trainable = False` does
    manual = BUILDERS["lab_cnn"]()
    for layer in manual.layers[:4]:
        layer.trainable = False
    assert [v.trainable for v in lab_cnn.weights] == [v.trainable for v in manual.weights]
    assert [layer.trainable for layer in lab_cnn.layers] == [
        layer.trainable for layer in manual.layers
    ]
    assert count(lab_cnn.trainable_weights) == count(manual.trainable_weights)
    assert count(lab_cnn.non_trainable_weights) == count(manual.non_trainable_weights)


@pytest.mark.parametrize(
    ("upto", "k"),
    [
        (None, 7),
        (0, 0),
        (1, 1),
        (4, 4),
        (7, 7),
        (-1, 6),
        (-3, 4),
        (-7, 0),
        ("conv2d", 1),
        ("max_pooling2d_1", 4),
        ("dense_1", 7),
    ],
)
def test_lab_freeze_boundary_forms(lab_cnn, upto, k):
    report = tk.freeze(lab_cnn, upto=upto)
    assert leaf_flags(lab_cnn) == [False] * k + [True] * (7 - k)
    assert report.frozen == LAB_PATHS[:k]
    assert report.trainable == LAB_PATHS[k:]
    assert report.boundary == k
    assert lab_cnn.trainable is (k < 7)


def test_lab_freeze_by_layer_object(lab_cnn):
    report = tk.freeze(lab_cnn, upto=lab_cnn.layers[3])
    assert report.frozen == LAB_PATHS[:4]
    assert leaf_flags(lab_cnn) == [False] * 4 + [True] * 3


@pytest.mark.parametrize(("first", "second"), [(6, 2), (2, 6), (None, 3), (0, -1), (5, 5)])
def test_freeze_does_not_depend_on_earlier_calls(lab_cnn, first, second):
    tk.freeze(lab_cnn, upto=first)
    tk.freeze(lab_cnn, upto=second)
    fresh = BUILDERS["lab_cnn"]()
    tk.freeze(fresh, upto=second)
    assert leaf_flags(lab_cnn) == leaf_flags(fresh)
    assert [v.trainable for v in lab_cnn.weights] == [v.trainable for v in fresh.weights]
    assert lab_cnn.trainable == fresh.trainable


def test_freeze_report_counts_and_str(lab_cnn):
    report = tk.freeze(lab_cnn, upto=4)
    assert report.trainable_params_before == LAB_TOTAL
    assert report.non_trainable_params_before == 0
    assert report.trainable_params_after == 402_826
    assert report.non_trainable_params_after == 18_816
    assert report.total_params == LAB_TOTAL == lab_cnn.count_params()
    assert str(report) == (
        "FreezeReport: 4/7 leaf layers frozen, 3 trainable\n"
        "  trainable params: 421,642 -> 402,826\n"
        "  frozen params:    0 -> 18,816"
    )
    again = tk.freeze(lab_cnn, upto=None)
    assert (again.trainable_params_before, again.non_trainable_params_before) == (
        402_826,
        18_816,
    )
    assert (again.trainable_params_after, again.non_trainable_params_after) == (0, LAB_TOTAL)


def test_freeze_report_to_dict_is_json(lab_cnn):
    report = tk.freeze(lab_cnn, upto=2)
    d = report.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert tk.FreezeReport.from_dict(json.loads(json.dumps(d))) == report
    assert d == {
        "frozen": ["conv2d", "max_pooling2d"],
        "trainable": list(LAB_PATHS[2:]),
        "boundary": 2,
        "trainable_params_before": LAB_TOTAL,
        "non_trainable_params_before": 0,
        "trainable_params_after": LAB_TOTAL - 320,
        "non_trainable_params_after": 320,
    }


@pytest.mark.compiled
def test_freeze_compile_fit_keeps_frozen_weights_bit_identical(lab_cnn):
    """The lab's workflow in graph mode (the default): freeze, compile, fit."""
    tk.freeze(lab_cnn, upto=4)
    before = _weights_by_leaf(lab_cnn)
    x, y = random_images(64, (28, 28, 1), 10)
    fit_once(lab_cnn, x, y, run_eagerly=False)
    after = _weights_by_leaf(lab_cnn)
    assert before.keys() == after.keys()
    frozen = {key for key in before if key[0] in LAB_PATHS[:4]}
    assert len(frozen) == 4 and len(before) == 8
    for key in before:
        if key in frozen:
            assert np.array_equal(before[key], after[key]), f"frozen {key} changed"
        else:
            assert not np.array_equal(before[key], after[key]), f"trainable {key} unchanged"


# --------------------------------------------------------------------------- RecompileWarning


def test_freezing_a_compiled_model_warns(lab_cnn):
    assert issubclass(tk.RecompileWarning, UserWarning)
    lab_cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.warns(tk.RecompileWarning, match=r"compile\(\.\.\.\)` again before `fit`") as rec:
        tk.freeze(lab_cnn, upto=4)
    assert len(rec) == 1
    assert rec[0].filename == __file__  # points at the caller, not at transferkit
    with pytest.warns(tk.RecompileWarning, match="'lab_cnn' was compiled"):
        tk.unfreeze(lab_cnn)


def test_no_warning_when_no_flag_changes(lab_cnn):
    tk.freeze(lab_cnn, upto=4)
    lab_cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tk.freeze(lab_cnn, upto=4)  # same flags: nothing to recompile
        tk.unfreeze(lab_cnn, upto=7)
    assert leaf_flags(lab_cnn) == [False] * 4 + [True] * 3


def test_no_warning_for_uncompiled_model(lab_cnn):
    assert not lab_cnn.compiled and leaf_flags(lab_cnn) == [True] * 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tk.freeze(lab_cnn, upto=2)
        assert leaf_flags(lab_cnn) == [False] * 2 + [True] * 5  # the flags did change
        tk.unfreeze(lab_cnn)
    assert leaf_flags(lab_cnn) == [True] * 7


# --------------------------------------------------------------------------- BatchNormalization


def _bn_vars(model, name):
    bn = model.get_layer(name)
    return {
        "gamma": keras.ops.convert_to_numpy(bn.gamma),
        "beta": keras.ops.convert_to_numpy(bn.beta),
        "moving_mean": keras.ops.convert_to_numpy(bn.moving_mean),
        "moving_variance": keras.ops.convert_to_numpy(bn.moving_variance),
    }


def test_frozen_bn_runs_in_inference_mode_and_keeps_statistics(bn_model):
    x, y = random_images(48, (8, 8, 3), 3)
    # control: a trainable BN uses batch statistics when training=True
    assert not np.array_equal(
        keras.ops.convert_to_numpy(bn_model(x, training=True)),
        keras.ops.convert_to_numpy(bn_model(x, training=False)),
    )
    report = tk.freeze(bn_model, upto="relu_b")
    assert report.frozen == ("conv_a", "bn_a", "relu_a", "conv_b", "bn_b", "relu_b")
    assert report.trainable == ("gap", "classifier")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn_model(x, training=True)),
        keras.ops.convert_to_numpy(bn_model(x, training=False)),
    )
    before = {name: _bn_vars(bn_model, name) for name in ("bn_a", "bn_b")}
    kernel = keras.ops.convert_to_numpy(bn_model.get_layer("classifier").kernel)
    fit_once(bn_model, x, y)
    for name in ("bn_a", "bn_b"):
        after = _bn_vars(bn_model, name)
        for var, value in before[name].items():
            assert np.array_equal(value, after[var]), f"{name}.{var} changed"
    assert not np.array_equal(
        kernel, keras.ops.convert_to_numpy(bn_model.get_layer("classifier").kernel)
    )


def test_train_bn_keeps_bn_trainable_and_updating(bn_model):
    report = tk.freeze(bn_model, upto="relu_b", train_bn=True)
    assert report.frozen == ("conv_a", "relu_a", "conv_b", "relu_b")
    assert report.trainable == ("bn_a", "bn_b", "gap", "classifier")
    assert report.trainable_params_after == 2 * 4 + 2 * 8 + 8 * 3 + 3  # gammas, betas, dense
    before = {name: _bn_vars(bn_model, name) for name in ("bn_a", "bn_b")}
    convs = {n: weights_snapshot(bn_model.get_layer(n)) for n in ("conv_a", "conv_b")}
    x, y = random_images(48, (8, 8, 3), 3)
    fit_once(bn_model, x, y)
    for name in ("bn_a", "bn_b"):
        after = _bn_vars(bn_model, name)
        for var, value in before[name].items():
            assert not np.array_equal(value, after[var]), f"{name}.{var} did not change"
    for name, snapshot in convs.items():
        assert_weights_equal(snapshot, weights_snapshot(bn_model.get_layer(name)))


def test_train_bn_in_mobilenet_only_affects_frozen_bn_layers(mobilenet_model):
    leaves = tk.leaf_layers(mobilenet_model)
    k = _paths(mobilenet_model).index(EXPAND) + 1
    report = tk.freeze(mobilenet_model, upto=EXPAND, train_bn=True)
    is_bn = [isinstance(leaf.layer, keras.layers.BatchNormalization) for leaf in leaves]
    assert sum(is_bn[:k]) == 39  # bn_Conv1, expanded_conv's 2, and 3 in each of blocks 1-12
    assert leaf_flags(mobilenet_model) == [i >= k or is_bn[i] for i in range(len(leaves))]
    assert len(report.trainable) == len(leaves) - k + 39


# --------------------------------------------------------------------------- nested backbone


def test_mobilenet_freeze_by_nested_path(mobilenet_model):
    backbone = mobilenet_model.get_layer(MOBILENET_NAME)
    paths = _paths(mobilenet_model)
    k = paths.index(EXPAND) + 1
    assert k == 116
    report = tk.freeze(mobilenet_model, upto=EXPAND)
    assert leaf_flags(mobilenet_model) == [False] * k + [True] * (len(paths) - k)
    assert report.frozen == tuple(paths[:k])
    assert report.trainable == tuple(paths[k:])
    assert report.frozen[-1] == EXPAND
    assert report.trainable[0] == f"{EXPAND}_BN"
    assert backbone.trainable is True and mobilenet_model.trainable is True
    assert backbone.get_layer("Conv1").trainable is False
    assert backbone.get_layer("block_16_project").trainable is True
    trainable_leaf_params = sum(
        count(leaf.layer.trainable_weights) for leaf in tk.leaf_layers(mobilenet_model)[k:]
    )
    assert count(mobilenet_model.trainable_weights) == trainable_leaf_params
    assert report.trainable_params_after == trainable_leaf_params
    assert report.total_params == mobilenet_model.count_params()

    by_name = BUILDERS["mobilenet"]()
    tk.freeze(by_name, upto="block_13_expand")
    assert leaf_flags(by_name) == leaf_flags(mobilenet_model)


def test_mobilenet_fit_keeps_frozen_weights_and_bn_statistics():
    mobilenet_model = build_mobilenet_model()  # its own: training changes the weights
    tk.freeze(mobilenet_model, upto=EXPAND)
    leaves = tk.leaf_layers(mobilenet_model)
    frozen_paths = {leaf.path for leaf in leaves if not leaf.layer.trainable}
    trainable_vars = {(leaf.path, v.path) for leaf in leaves for v in leaf.layer.trainable_weights}
    bn_after = {
        leaf.path
        for leaf in leaves
        if leaf.layer.trainable and isinstance(leaf.layer, keras.layers.BatchNormalization)
    }
    assert len(bn_after) == 13  # block_13_expand_BN ... Conv_1_bn
    before = _weights_by_leaf(mobilenet_model)
    x, y = random_images(64, (32, 32, 3), 10)
    fit_once(mobilenet_model, x, y)
    after = _weights_by_leaf(mobilenet_model)
    assert before.keys() == after.keys()
    checked = {"frozen": 0, "trainable": 0, "moving": 0}
    for key, value in before.items():
        leaf_path, var_path = key
        if leaf_path in frozen_paths:  # kernels, gammas/betas AND moving statistics
            assert np.array_equal(value, after[key]), f"frozen {key} changed"
            checked["frozen"] += 1
        elif key in trainable_vars:
            assert not np.array_equal(value, after[key]), f"trainable {key} unchanged"
            checked["trainable"] += 1
        else:  # moving statistics of trainable BN layers are updated by a real fit
            assert leaf_path in bn_after and "moving" in var_path
            assert not np.array_equal(value, after[key]), f"{key} unchanged"
            checked["moving"] += 1
    assert checked["frozen"] == sum(
        len(leaf.layer.weights) for leaf in leaves if leaf.path in frozen_paths
    )
    assert checked["trainable"] == len(mobilenet_model.trainable_weights)
    assert checked == {"frozen": 196, "trainable": 40, "moving": 2 * 13}
    assert sum(checked.values()) == len(mobilenet_model.weights)


def test_freeze_whole_backbone_by_model_object(mobilenet_model):
    backbone = mobilenet_model.get_layer(MOBILENET_NAME)
    report = tk.freeze(mobilenet_model, upto=backbone)
    assert report.trainable == ("gap", "classifier")
    assert backbone.trainable is False
    assert _ids(mobilenet_model.trainable_weights) == _ids(
        mobilenet_model.get_layer("classifier").weights
    )


def test_freeze_all_then_unfreeze_all(mobilenet_model):
    n_trainable = len(mobilenet_model.trainable_weights)
    report = tk.freeze(mobilenet_model)
    assert report.trainable == () and len(report.frozen) == LEAF_COUNTS["mobilenet"]
    assert mobilenet_model.trainable is False and mobilenet_model.trainable_weights == []
    report = tk.unfreeze(mobilenet_model)
    assert report.frozen == () and report.boundary == 0
    assert all(leaf_flags(mobilenet_model))
    assert len(mobilenet_model.trainable_weights) == n_trainable


# --------------------------------------------------------------------------- unfreeze


def test_unfreeze_keeps_layers_up_to_boundary(lab_cnn):
    pattern = [False, True, False, False, True, False, False]
    for layer, flag in zip(lab_cnn.layers, pattern, strict=True):
        layer.trainable = flag
    report = tk.unfreeze(lab_cnn, upto=3)
    assert leaf_flags(lab_cnn) == [False, True, False, True, True, True, True]
    assert report.boundary == 3
    assert report.frozen == ("conv2d", "conv2d_1")


def test_gradual_unfreezing(lab_cnn):
    tk.freeze(lab_cnn)
    tk.unfreeze(lab_cnn, upto=-2)
    assert leaf_flags(lab_cnn) == [False] * 5 + [True] * 2
    tk.unfreeze(lab_cnn, upto="flatten")
    assert leaf_flags(lab_cnn) == [False] * 5 + [True] * 2
    tk.unfreeze(lab_cnn, upto=lab_cnn.layers[1])
    assert leaf_flags(lab_cnn) == [False] * 2 + [True] * 5


def test_unfreeze_inside_frozen_backbone(mobilenet_model):
    backbone = mobilenet_model.get_layer(MOBILENET_NAME)
    tk.freeze(mobilenet_model)
    assert backbone.trainable is False
    tk.unfreeze(mobilenet_model, upto="block_13_expand")
    assert backbone.trainable is True
    k = _paths(mobilenet_model).index(EXPAND) + 1
    assert leaf_flags(mobilenet_model) == [False] * k + [True] * (LEAF_COUNTS["mobilenet"] - k)
    trainable = set(_ids(mobilenet_model.trainable_weights))
    assert id(backbone.get_layer("block_16_project").kernel) in trainable
    assert id(backbone.get_layer("block_13_expand").kernel) not in trainable


# --------------------------------------------------------------------------- frozen(...)


def test_frozen_restores_every_flag(lab_cnn):
    tk.freeze(lab_cnn, upto=2)
    lab_cnn.layers[5].kernel.trainable = False  # a variable-level flag, unlike its layer's
    before = flags_snapshot(lab_cnn)
    with tk.frozen(lab_cnn, upto=5) as report:
        assert isinstance(report, tk.FreezeReport)
        assert report.frozen == LAB_PATHS[:5]
        assert leaf_flags(lab_cnn) == [False] * 5 + [True] * 2
    assert flags_snapshot(lab_cnn) == before
    assert lab_cnn.layers[5].kernel.trainable is False
    assert lab_cnn.layers[5].bias.trainable is True


def test_frozen_restores_nested_flags(mobilenet_model):
    backbone = mobilenet_model.get_layer(MOBILENET_NAME)
    before = flags_snapshot(mobilenet_model)
    with tk.frozen(mobilenet_model, train_bn=True):
        assert backbone.trainable is True  # its BN layers still train
        assert mobilenet_model.get_layer("classifier").trainable is False
    assert flags_snapshot(mobilenet_model) == before
    with tk.frozen(mobilenet_model, upto=backbone):
        assert backbone.trainable is False
    assert flags_snapshot(mobilenet_model) == before


def test_frozen_restores_when_body_raises(lab_cnn):
    tk.freeze(lab_cnn, upto=3)
    before = flags_snapshot(lab_cnn)
    with pytest.raises(RuntimeError, match="boom"):
        with tk.frozen(lab_cnn):
            assert not any(leaf_flags(lab_cnn))
            raise RuntimeError("boom")
    assert flags_snapshot(lab_cnn) == before


@pytest.mark.parametrize(
    ("upto", "error", "match"),
    [
        (99, ValueError, r"between -7 and 7"),
        ("nope", ValueError, r"No leaf layer named 'nope'"),
        (True, TypeError, r"a bool"),
    ],
)
def test_frozen_bad_upto_raises_before_anything_changes(lab_cnn, upto, error, match):
    tk.freeze(lab_cnn, upto=3)
    before = flags_snapshot(lab_cnn)
    ran = False
    with pytest.raises(error, match=match):
        with tk.frozen(lab_cnn, upto=upto):
            ran = True
    assert ran is False
    assert flags_snapshot(lab_cnn) == before


def test_trainable_state_capture_restore(nested_sequential):
    state = tk.TrainableState.capture(nested_sequential)
    before = flags_snapshot(nested_sequential)
    tk.freeze(nested_sequential, upto="inner/inner_a")
    assert flags_snapshot(nested_sequential) != before
    state.restore()
    assert flags_snapshot(nested_sequential) == before


# --------------------------------------------------------------------------- nested Sequential


def test_nested_sequential_freeze(nested_sequential):
    inner = nested_sequential.get_layer("inner")
    report = tk.freeze(nested_sequential, upto="inner_a")
    assert report.frozen == ("pre", "inner/inner_a")
    assert report.trainable == ("inner/inner_b", "head")
    assert inner.trainable is True
    assert _ids(nested_sequential.trainable_weights) == _ids(
        [*inner.get_layer("inner_b").weights, *nested_sequential.get_layer("head").weights]
    )
    tk.freeze(nested_sequential, upto="inner")  # the nested model as a name: all of it
    assert leaf_flags(nested_sequential) == [False, False, False, True]
    assert inner.trainable is False


def test_subclassed_freeze_unfreeze(subclassed_model):
    report = tk.freeze(subclassed_model, upto="sub_bn")
    assert report.frozen == ("sub_hidden", "sub_bn")
    assert _ids(subclassed_model.trainable_weights) == _ids(subclassed_model.out.weights)
    assert count(subclassed_model.trainable_weights) == 8 * 3 + 3
    tk.unfreeze(subclassed_model)
    assert leaf_flags(subclassed_model) == [True, True, True]
    assert count(subclassed_model.trainable_weights) == (4 * 8 + 8) + 2 * 8 + (8 * 3 + 3)


# --------------------------------------------------------------------------- bad input


def _foreign_layer():
    return keras.layers.Dense(3, name="foreign")


BAD_CALLS = [
    pytest.param(
        lambda m: tk.freeze(m, upto=8),
        ValueError,
        r"`upto` must be between -7 and 7 \(the model has 7 leaf layers\)\. Received: upto=8",
        id="freeze-upto-too-big",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto=-8),
        ValueError,
        r"between -7 and 7 \(the model has 7 leaf layers\)",
        id="freeze-upto-too-negative",
    ),
    pytest.param(
        lambda m: tk.unfreeze(m, upto=100),
        ValueError,
        r"between -7 and 7 \(the model has 7 leaf layers\)",
        id="unfreeze-upto-too-big",
    ),
    pytest.param(
        lambda m: tk.frozen(m, upto=-100).__enter__(),
        ValueError,
        r"between -7 and 7",
        id="frozen-upto-too-negative",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto="conv2d_l"),
        ValueError,
        r"No leaf layer named 'conv2d_l' in model 'lab_cnn'\. Did you mean 'conv2d_1'",
        id="freeze-misspelt-name",
    ),
    pytest.param(
        lambda m: tk.unfreeze(m, upto="Dense"),
        ValueError,
        r"No leaf layer named 'Dense'.*'dense'",
        id="unfreeze-wrong-case-name",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto="zzzzzzzzzz"),
        ValueError,
        r"Existing leaf layers are: 'conv2d', 'max_pooling2d', 'conv2d_1'",
        id="freeze-unknown-name-lists-layers",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto=_foreign_layer()),
        ValueError,
        r"layer 'foreign', which is not a layer of model 'lab_cnn'",
        id="freeze-foreign-layer",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto=True),
        TypeError,
        r"Received: upto=True \(a bool\)",
        id="freeze-bool",
    ),
    pytest.param(
        lambda m: tk.unfreeze(m, upto=False),
        TypeError,
        r"\(a bool\)",
        id="unfreeze-bool",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto=2.0),
        TypeError,
        r"must be None, an int, a layer name \(str\) or a `keras.layers.Layer`.*float",
        id="freeze-float",
    ),
    pytest.param(
        lambda m: tk.freeze(m, upto=[1, 2]),
        TypeError,
        r"of type list",
        id="freeze-list",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_input_leaves_model_unchanged(lab_cnn, call, error, match):
    tk.freeze(lab_cnn, upto=3)
    lab_cnn.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    flags, weights = flags_snapshot(lab_cnn), weights_snapshot(lab_cnn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing changes, so no RecompileWarning either
        with pytest.raises(error, match=match):
            call(lab_cnn)
    assert flags_snapshot(lab_cnn) == flags
    assert_weights_equal(weights, weights_snapshot(lab_cnn))


def _unbuilt_sequential():
    return keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(2)], name="unbuilt")


def _uncalled_subclassed():
    from _fixtures import SubclassedNet

    return SubclassedNet(name="unbuilt")


@pytest.mark.parametrize("make", [_unbuilt_sequential, _uncalled_subclassed])
@pytest.mark.parametrize(
    "call",
    [
        tk.freeze,
        tk.unfreeze,
        lambda m: tk.frozen(m).__enter__(),
        tk.leaf_layers,
        tk.trainable_summary,
        tk.copy_model,
        lambda m: tk.replace_head(m, 2),
        tk.as_feature_extractor,
    ],
    ids=[
        "freeze",
        "unfreeze",
        "frozen",
        "leaf_layers",
        "summary",
        "copy",
        "replace_head",
        "extractor",
    ],
)
def test_unbuilt_model_error_says_how_to_build(make, call):
    model = make()
    with pytest.raises(
        ValueError,
        match=r"\('unbuilt'\) is not built.*Build it first.*keras\.Input.*model\.build",
    ):
        call(model)
    assert model.built is False
    assert model.trainable is True


@pytest.mark.parametrize("not_a_model", ["model", None, 3])
def test_not_a_model_is_a_type_error(not_a_model):
    with pytest.raises(TypeError, match=r"`model` must be a `keras.Model`"):
        tk.freeze(not_a_model)


def test_a_plain_layer_is_not_a_model():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    with pytest.raises(TypeError, match=r"must be a `keras.Model`.*of type Dense"):
        tk.freeze(layer)
    assert layer.trainable is True


# --------------------------------------------------------------------------- properties

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    # One model per test, reused across examples on purpose: `freeze` must not depend on
    # earlier calls, so every example checks that too.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_freeze_first_k(zoo_model, data):
    name, model = zoo_model
    n = LEAF_COUNTS[name]
    upto = data.draw(st.integers(-n, n), label="upto")
    k = upto if upto >= 0 else n + upto
    leaves = tk.leaf_layers(model)
    paths = tuple(leaf.path for leaf in leaves)
    trainable_before = count(model.trainable_weights)

    report = tk.freeze(model, upto=upto)

    assert len(report.frozen) + len(report.trainable) == n
    assert report.frozen == paths[:k] and report.trainable == paths[k:]
    assert report.boundary == k
    assert leaf_flags(model) == [False] * k + [True] * (n - k)
    assert report.trainable_params_before == trainable_before
    total = model.count_params()
    assert report.trainable_params_after + report.non_trainable_params_after == total
    assert report.trainable_params_before + report.non_trainable_params_before == total
    assert report.trainable_params_after == count(model.trainable_weights)
    assert report.trainable_params_after == sum(
        count(leaf.layer.trainable_weights) for leaf in leaves[k:]
    )
    assert report.non_trainable_params_after == sum(
        count(leaf.layer.weights) for leaf in leaves[:k]
    ) + sum(count(leaf.layer.non_trainable_weights) for leaf in leaves[k:])
    assert all(count(leaf.layer.trainable_weights) == 0 for leaf in leaves[:k])


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_train_bn(zoo_model, data):
    name, model = zoo_model
    n = LEAF_COUNTS[name]
    k = data.draw(st.integers(0, n), label="upto")
    report = tk.freeze(model, upto=k, train_bn=True)
    is_bn = [
        isinstance(leaf.layer, keras.layers.BatchNormalization) for leaf in tk.leaf_layers(model)
    ]
    assert leaf_flags(model) == [i >= k or is_bn[i] for i in range(n)]
    assert len(report.frozen) == k - sum(is_bn[:k])
    assert report.trainable_params_after == count(model.trainable_weights)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_unfreeze(zoo_model, data):
    name, model = zoo_model
    n = LEAF_COUNTS[name]
    k0 = data.draw(st.integers(0, n), label="freeze upto")
    k = data.draw(st.integers(-n, n), label="unfreeze upto")
    tk.freeze(model, upto=k0)
    tk.unfreeze(model, upto=k)
    k = k if k >= 0 else n + k
    assert leaf_flags(model) == [i >= min(k0, k) for i in range(n)]


@PROPERTY_SETTINGS
@given(data=st.data())
def test_property_frozen_restores_flags(zoo_model, data):
    name, model = zoo_model
    n = LEAF_COUNTS[name]
    k0 = data.draw(st.integers(0, n), label="initial upto")
    k = data.draw(st.integers(-n, n), label="frozen upto")
    tk.freeze(model, upto=k0)
    before = flags_snapshot(model)
    with tk.frozen(model, upto=k) as report:
        inside = k if k >= 0 else n + k
        assert leaf_flags(model) == [False] * inside + [True] * (n - inside)
        assert len(report.frozen) == inside
    assert flags_snapshot(model) == before


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize(
    ("name", "upto"),
    [("lab_cnn", 4), ("bn_model", "bn_b"), ("nested_sequential", "inner/inner_a")],
)
def test_save_load_keeps_flags(tmp_path, name, upto):
    model = BUILDERS[name]()
    tk.freeze(model, upto=upto)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert _paths(loaded) == _paths(model)
    assert leaf_flags(loaded) == leaf_flags(model)
    assert [v.trainable for v in loaded.weights] == [v.trainable for v in model.weights]
    assert_weights_equal(weights_snapshot(model), weights_snapshot(loaded))


def test_save_load_keeps_nested_backbone_flags(tmp_path, mobilenet_model):
    tk.freeze(mobilenet_model, upto=EXPAND)
    path = tmp_path / "mobilenet.keras"
    mobilenet_model.save(path)
    loaded = keras.models.load_model(path)
    assert _paths(loaded) == _paths(mobilenet_model)
    flags = leaf_flags(loaded)
    assert flags == leaf_flags(mobilenet_model)
    assert flags.count(False) == 116
    assert loaded.get_layer(MOBILENET_NAME).trainable is True
    assert count(loaded.trainable_weights) == count(mobilenet_model.trainable_weights)
    assert [v.trainable for v in loaded.weights] == [v.trainable for v in mobilenet_model.weights]
