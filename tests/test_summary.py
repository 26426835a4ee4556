"""`trainable_summary`: one row per leaf layer, a printable table and plain dicts."""

from __future__ import annotations

import dataclasses
import json

import keras
import pytest

import transferkit as tk
from _fixtures import LEAF_COUNTS, MOBILENET_NAME, count, flags_snapshot, leaf_flags

LAB_ROWS = [
    (0, "conv2d", "Conv2D", 320, False),
    (1, "max_pooling2d", "MaxPooling2D", 0, False),
    (2, "conv2d_1", "Conv2D", 18_496, False),
    (3, "max_pooling2d_1", "MaxPooling2D", 0, False),
    (4, "flatten", "Flatten", 0, True),
    (5, "dense", "Dense", 401_536, True),
    (6, "dense_1", "Dense", 1_290, True),
]
KEYS = ("index", "path", "type", "params", "trainable")


def test_lab_cnn_rows(lab_cnn):
    tk.freeze(lab_cnn, upto=4)
    summary = tk.trainable_summary(lab_cnn)
    assert isinstance(summary, tk.TrainableSummary)
    assert summary.model_name == "lab_cnn"
    assert len(summary) == 7
    assert all(isinstance(row, tk.LayerInfo) for row in summary.layers)
    rows = summary.to_list()
    assert rows == [dict(zip(KEYS, row, strict=True)) for row in LAB_ROWS]
    assert all(list(row) == list(KEYS) for row in rows)
    assert json.loads(json.dumps(rows)) == rows
    assert summary.trainable_params == 402_826
    assert summary.frozen_params == 18_816


def test_lab_cnn_table(lab_cnn):
    tk.freeze(lab_cnn, upto=4)
    assert str(tk.trainable_summary(lab_cnn)) == "\n".join(
        [
            "Model 'lab_cnn'",
            "#  path             type           params  trainable",
            "-  ---------------  ------------  -------  ---------",
            "0  conv2d           Conv2D            320  no",
            "1  max_pooling2d    MaxPooling2D        0  no",
            "2  conv2d_1         Conv2D         18,496  no",
            "3  max_pooling2d_1  MaxPooling2D        0  no",
            "4  flatten          Flatten             0  yes",
            "5  dense            Dense         401,536  yes",
            "6  dense_1          Dense           1,290  yes",
            "trainable params: 402,826  frozen params: 18,816",
        ]
    )


def test_table_with_batch_normalization():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, name="a"),
            keras.layers.BatchNormalization(name="norm"),
            keras.layers.Dense(2, name="b"),
        ],
        name="tiny",
    )
    tk.freeze(model, upto=1)
    summary = tk.trainable_summary(model)
    # params count every weight a layer owns, BN moving statistics included
    assert [row.params for row in summary.layers] == [15, 12, 8]
    assert str(summary) == (
        "Model 'tiny'\n"
        "#  path  type                params  trainable\n"
        "-  ----  ------------------  ------  ---------\n"
        "0  a     Dense                   15  no\n"
        "1  norm  BatchNormalization      12  yes\n"
        "2  b     Dense                    8  yes\n"
        "trainable params: 20  frozen params: 15"
    )


def test_summary_follows_the_flags(zoo_model):
    name, model = zoo_model
    n = LEAF_COUNTS[name]
    tk.freeze(model, upto=n // 3)
    before = flags_snapshot(model)
    summary = tk.trainable_summary(model)
    assert flags_snapshot(model) == before  # does not mutate
    leaves = tk.leaf_layers(model)
    assert len(summary) == n
    assert [row.path for row in summary.layers] == [leaf.path for leaf in leaves]
    assert [row.index for row in summary.layers] == list(range(n))
    assert [row.trainable for row in summary.layers] == leaf_flags(model)
    assert [row.type for row in summary.layers] == [type(leaf.layer).__name__ for leaf in leaves]
    assert [row.params for row in summary.layers] == [count(leaf.layer.weights) for leaf in leaves]
    assert summary.trainable_params + summary.frozen_params == model.count_params()
    assert summary.frozen_params == sum(row.params for row in summary.layers[: n // 3])
    text = str(summary)
    assert text.splitlines()[0] == f"Model {model.name!r}"
    assert len(text.splitlines()) == n + 4
    assert all(row.path in text for row in summary.layers)


def test_mobilenet_nested_rows(mobilenet_model):
    tk.freeze(mobilenet_model, upto=f"{MOBILENET_NAME}/block_13_expand")
    summary = tk.trainable_summary(mobilenet_model)
    by_path = {row.path: row for row in summary.layers}
    expand = by_path[f"{MOBILENET_NAME}/block_13_expand"]
    assert (expand.type, expand.params, expand.trainable) == ("Conv2D", 32 * 192, False)
    bn = by_path[f"{MOBILENET_NAME}/block_13_expand_BN"]
    assert (bn.type, bn.params, bn.trainable) == ("BatchNormalization", 4 * 192, True)
    assert summary.layers[-1] == tk.LayerInfo(
        index=154, path="classifier", type="Dense", params=1280 * 10 + 10, trainable=True
    )
    assert sum(not row.trainable for row in summary.layers) == 116


def test_subclassed_rows(subclassed_model):
    tk.freeze(subclassed_model, upto=1)
    rows = tk.trainable_summary(subclassed_model).to_list()
    assert rows == [
        {"index": 0, "path": "sub_hidden", "type": "Dense", "params": 40, "trainable": False},
        {
            "index": 1,
            "path": "sub_bn",
            "type": "BatchNormalization",
            "params": 32,
            "trainable": True,
        },
        {"index": 2, "path": "sub_out", "type": "Dense", "params": 27, "trainable": True},
    ]


def test_rows_are_immutable(lab_cnn):
    row = tk.trainable_summary(lab_cnn).layers[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.trainable = False  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["model", 7, None])
def test_summary_of_non_model_is_type_error(bad):
    with pytest.raises(TypeError, match=r"`model` must be a `keras.Model`"):
        tk.trainable_summary(bad)
