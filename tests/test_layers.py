"""Leaf layers in execution order and boundary resolution (`transferkit._layers`)."""

from __future__ import annotations

import dataclasses

import keras
import pytest

import transferkit as tk
from _fixtures import LEAF_COUNTS, MOBILENET_NAME, flags_snapshot
from transferkit.freezing._layers import resolve_boundary

LAB_PATHS = [
    "conv2d",
    "max_pooling2d",
    "conv2d_1",
    "max_pooling2d_1",
    "flatten",
    "dense",
    "dense_1",
]
LAB_TYPES = ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


def test_lab_cnn_leaves_match_model_layers(lab_cnn):
    leaves = tk.leaf_layers(lab_cnn)
    assert [leaf.path for leaf in leaves] == LAB_PATHS
    assert [leaf.name for leaf in leaves] == LAB_PATHS
    assert [type(leaf.layer).__name__ for leaf in leaves] == LAB_TYPES
    assert [leaf.index for leaf in leaves] == list(range(7))
    assert all(leaf.layer is layer for leaf, layer in zip(leaves, lab_cnn.layers, strict=True))
    assert all(leaf.containers == () for leaf in leaves)


def test_zoo_leaf_counts_and_no_input_layers(zoo_model):
    name, model = zoo_model
    leaves = tk.leaf_layers(model)
    assert len(leaves) == LEAF_COUNTS[name]
    assert [leaf.index for leaf in leaves] == list(range(len(leaves)))
    assert not any(isinstance(leaf.layer, keras.layers.InputLayer) for leaf in leaves)
    assert not any(isinstance(leaf.layer, keras.Model) for leaf in leaves)
    assert len({leaf.path for leaf in leaves}) == len(leaves)


def test_mobilenet_backbone_is_walked_into(mobilenet_readonly):
    backbone = mobilenet_readonly.get_layer(MOBILENET_NAME)
    leaves = tk.leaf_layers(mobilenet_readonly)
    paths = [leaf.path for leaf in leaves]
    assert paths[0] == f"{MOBILENET_NAME}/Conv1"
    assert paths[-2:] == ["gap", "classifier"]
    # the backbone contributes exactly its own leaf layers, in its own order, prefixed
    inner = [f"{MOBILENET_NAME}/{leaf.path}" for leaf in tk.leaf_layers(backbone)]
    assert paths[:-2] == inner
    assert len(inner) == len(backbone.layers) - 1 == 153  # minus its InputLayer
    expand = paths.index(f"{MOBILENET_NAME}/block_13_expand")
    leaf = leaves[expand]
    assert leaf.name == "block_13_expand"
    assert leaf.layer is backbone.get_layer("block_13_expand")
    assert leaf.containers == (backbone,)
    assert paths[expand + 1] == f"{MOBILENET_NAME}/block_13_expand_BN"
    assert leaves[-1].containers == ()


def test_nested_sequential_paths(nested_sequential):
    inner = nested_sequential.get_layer("inner")
    leaves = tk.leaf_layers(nested_sequential)
    assert [leaf.path for leaf in leaves] == ["pre", "inner/inner_a", "inner/inner_b", "head"]
    assert [leaf.containers for leaf in leaves] == [(), (inner,), (inner,), ()]


def test_subclassed_model_uses_attribute_order(subclassed_model):
    leaves = tk.leaf_layers(subclassed_model)
    assert [leaf.path for leaf in leaves] == ["sub_hidden", "sub_bn", "sub_out"]
    assert [type(leaf.layer).__name__ for leaf in leaves] == [
        "Dense",
        "BatchNormalization",
        "Dense",
    ]


def test_functional_order_is_execution_order_not_creation_order():
    second = keras.layers.Dense(2, name="runs_second")  # created first
    first = keras.layers.Dense(3, name="runs_first")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, second(first(inputs)))
    assert [leaf.path for leaf in tk.leaf_layers(model)] == ["runs_first", "runs_second"]


def test_shared_layer_counted_once():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    outputs = keras.layers.Dense(1, name="out")(shared(shared(inputs)))
    model = keras.Model(inputs, outputs)
    assert [leaf.path for leaf in tk.leaf_layers(model)] == ["shared", "out"]


def test_leaf_layers_does_not_mutate(mobilenet_model):
    tk.freeze(mobilenet_model, upto=40)
    before = flags_snapshot(mobilenet_model)
    tk.leaf_layers(mobilenet_model)
    assert flags_snapshot(mobilenet_model) == before


def test_leaf_layer_record_is_immutable(lab_cnn):
    leaf = tk.leaf_layers(lab_cnn)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        leaf.index = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("upto", "expected"),
    [
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
def test_resolve_boundary_int_and_name(lab_cnn, upto, expected):
    assert resolve_boundary(lab_cnn, upto) == expected


def test_resolve_boundary_layer_object(lab_cnn):
    for i, layer in enumerate(lab_cnn.layers):
        assert resolve_boundary(lab_cnn, layer) == i + 1


def test_resolve_boundary_nested(mobilenet_readonly):
    backbone = mobilenet_readonly.get_layer(MOBILENET_NAME)
    paths = [leaf.path for leaf in tk.leaf_layers(mobilenet_readonly)]
    expected = paths.index(f"{MOBILENET_NAME}/block_13_expand") + 1
    assert resolve_boundary(mobilenet_readonly, f"{MOBILENET_NAME}/block_13_expand") == expected
    assert resolve_boundary(mobilenet_readonly, "block_13_expand") == expected
    assert resolve_boundary(mobilenet_readonly, backbone.get_layer("block_13_expand")) == expected
    # a nested model as the boundary covers all of its leaf layers
    assert resolve_boundary(mobilenet_readonly, backbone) == 153
    assert resolve_boundary(mobilenet_readonly, "gap") == 154


def test_resolve_boundary_ambiguous_name_requires_path():
    def block(name):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="fc")], name=name)

    model = keras.Sequential([keras.Input((4,)), block("left"), block("right")])
    with pytest.raises(ValueError, match=r"ambiguous.*'left/fc', 'right/fc'.*full path"):
        resolve_boundary(model, "fc")
    assert resolve_boundary(model, "right/fc") == 2
