"""Strategies: immutable values, names, resolution by name, `prepare`, per-strategy settings."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import TopLayersOnly, blobs, lab_cnn, mlp
from transferkit import FeatureExtractor, FullFineTune, PartialFreeze, resolve_strategy


def leaf_flags(model):
    return [bool(leaf.layer.trainable) for leaf in tk.leaf_layers(model)]


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("strategy", "name"),
    [
        (FullFineTune(), "full"),
        (PartialFreeze(), "partial"),
        (PartialFreeze(upto=4), "partial(upto=4)"),
        (PartialFreeze(upto="flatten"), "partial(upto='flatten')"),
        (FeatureExtractor(), "feature_extractor"),
        (FeatureExtractor(cut="flatten"), "feature_extractor(cut='flatten')"),
        (FeatureExtractor(hidden=(64,)), "feature_extractor(hidden=(64,))"),
        (FeatureExtractor(cut=5, hidden=[32, 16]), "feature_extractor(cut=5, hidden=(32, 16))"),
        (FullFineTune(label="lab method 1"), "lab method 1"),
        (PartialFreeze(upto=4, label="p4"), "p4"),
    ],
)
def test_names(strategy, name):
    assert strategy.name == name


@pytest.mark.parametrize(
    ("strategy", "attribute", "value"),
    [
        (FullFineTune(), "epochs", 3),
        (FullFineTune(), "learning_rate", 0.1),
        (PartialFreeze(upto=4), "upto", 2),
        (PartialFreeze(), "train_bn", True),
        (FeatureExtractor(), "cut", "dense"),
        (FeatureExtractor(epochs=20), "epochs", 10),
        (FeatureExtractor(), "optimizer", "sgd"),
    ],
)
def test_strategies_are_immutable(strategy, attribute, value):
    before = getattr(strategy, attribute)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(strategy, attribute, value)
    assert getattr(strategy, attribute) == before


def test_builtin_strategies_satisfy_the_protocol():
    for strategy in (FullFineTune(), PartialFreeze(upto=2), FeatureExtractor()):
        assert isinstance(strategy, tk.Strategy)
    assert isinstance(TopLayersOnly(), tk.Strategy)
    assert not isinstance("full", tk.Strategy)


def test_strategies_carry_their_own_settings():
    fe = FeatureExtractor(epochs=20, optimizer="sgd", learning_rate=0.01)
    assert (fe.epochs, fe.optimizer, fe.learning_rate) == (20, "sgd", 0.01)
    full = FullFineTune()
    assert (full.epochs, full.optimizer, full.learning_rate) == (None, None, None)


def test_equality_and_hash():
    assert PartialFreeze(upto=4) == PartialFreeze(upto=4)
    assert PartialFreeze(upto=4) != PartialFreeze(upto=3)
    assert FullFineTune(epochs=2) != FullFineTune(epochs=3)
    assert FullFineTune() != PartialFreeze()
    assert len({FullFineTune(), FullFineTune(), PartialFreeze(upto=4)}) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": -2}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
    ],
)
@pytest.mark.parametrize("cls", [FullFineTune, PartialFreeze, FeatureExtractor])
def test_invalid_settings_are_rejected(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_positional_arguments_are_not_accepted():
    with pytest.raises(TypeError):
        PartialFreeze(4)  # type: ignore[misc]


# --------------------------------------------------------------------------- resolution


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("full", FullFineTune()),
        ("partial", PartialFreeze()),
        ("partial:4", PartialFreeze(upto=4)),
        ("partial:-2", PartialFreeze(upto=-2)),
        ("partial:flatten", PartialFreeze(upto="flatten")),
        ("feature_extractor", FeatureExtractor()),
        ("feature-extractor", FeatureExtractor()),
        ("feature_extractor:flatten", FeatureExtractor(cut="flatten")),
        ("feature_extractor:5", FeatureExtractor(cut=5)),
    ],
)
def test_resolve_strategy_by_name(name, expected):
    resolved = resolve_strategy(name)
    assert resolved == expected
    assert type(resolved) is type(expected)


def test_resolve_strategy_passes_strategies_through():
    for strategy in (PartialFreeze(upto=3), TopLayersOnly()):
        assert resolve_strategy(strategy) is strategy


@pytest.mark.parametrize("name", ["fulll", "partal", "linear_probe", "", "full:3"])
def test_unknown_strategy_name_lists_known_names(name):
    with pytest.raises(ValueError, match="Known strategy names") as info:
        resolve_strategy(name)
    message = str(info.value)
    for known in ("'full'", "'partial'", "'feature_extractor'"):
        assert known in message


def test_unknown_strategy_name_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'partial'"):
        resolve_strategy("partal")


@pytest.mark.parametrize("value", [None, 3, FullFineTune, object()])
def test_resolve_strategy_rejects_other_types(value):
    with pytest.raises(TypeError, match="strategy"):
        resolve_strategy(value)


# --------------------------------------------------------------------------- prepare


def test_full_fine_tune_unfreezes_everything():
    model = lab_cnn()
    tk.freeze(model, 5)
    assert leaf_flags(model) == [False] * 5 + [True] * 2
    out = FullFineTune().prepare(model)
    assert out is model
    assert leaf_flags(model) == [True] * 7
    assert len(model.trainable_weights) == len(model.weights)


def test_partial_freeze_default_boundary_is_the_convolutional_body():
    model = lab_cnn()
    assert PartialFreeze().boundary(model) == 4
    out = PartialFreeze().prepare(model)
    assert out is model
    assert leaf_flags(model) == [False] * 4 + [True] * 3


@pytest.mark.parametrize(
    ("upto", "flags"),
    [
        (2, [False, False, True, True, True, True, True]),
        (-1, [False] * 6 + [True]),
        ("conv2d_1", [False, False, False, True, True, True, True]),
        (0, [True] * 7),
    ],
)
def test_partial_freeze_explicit_boundary(upto, flags):
    model = lab_cnn()
    PartialFreeze(upto=upto).prepare(model)
    assert leaf_flags(model) == flags


def test_partial_freeze_without_flatten_freezes_the_first_half():
    model = mlp()  # h1, h2, out
    assert PartialFreeze().boundary(model) == 1
    PartialFreeze().prepare(model)
    assert leaf_flags(model) == [False, True, True]


def test_partial_freeze_is_independent_of_earlier_flags():
    model = lab_cnn()
    tk.freeze(model)  # everything frozen
    PartialFreeze(upto=2).prepare(model)
    assert leaf_flags(model) == [False, False] + [True] * 5


def test_feature_extractor_default_is_a_linear_probe():
    model = lab_cnn()
    out = FeatureExtractor().prepare(model)
    assert out is model
    assert leaf_flags(model) == [False] * 6 + [True]
    assert [w.path for w in model.trainable_weights] == [w.path for w in model.layers[-1].weights]


def test_feature_extractor_with_hidden_builds_a_new_head():
    model = lab_cnn()
    out = FeatureExtractor(cut="flatten", hidden=(16,)).prepare(model)
    leaves = tk.leaf_layers(out)
    trainable = [leaf for leaf in leaves if leaf.layer.trainable]
    assert [type(leaf.layer).__name__ for leaf in trainable] == ["Dense", "Dense"]
    assert [leaf.layer.units for leaf in trainable] == [16, 10]
    assert trainable[-1].layer.activation.__name__ == "softmax"
    assert all(not leaf.layer.trainable for leaf in leaves[:5])
    assert out.output_shape == (None, 10)
    # The frozen body keeps the pretrained weights.
    old_leaves = tk.leaf_layers(model)[:5]
    for old, new in zip(old_leaves, leaves[:5], strict=True):
        assert type(old.layer) is type(new.layer)
        for a, b in zip(old.layer.weights, new.layer.weights, strict=True):
            assert np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize(
    ("strategy", "match"),
    [
        (PartialFreeze(upto=99), "between"),
        (PartialFreeze(upto="no_such_layer"), "No leaf layer named"),
        (FeatureExtractor(cut="no_such_layer"), "No leaf layer named"),
        (FeatureExtractor(cut=-8), "between"),
        (FeatureExtractor(cut=7), "nothing would train"),
        (FeatureExtractor(cut="dense_1"), "nothing would train"),
    ],
)
def test_validate_rejects_boundaries_the_model_lacks(strategy, match):
    model = lab_cnn()
    with pytest.raises(ValueError, match=match):
        strategy.validate(model)
    assert leaf_flags(model) == [True] * 7  # validate never touches flags


# --------------------------------------------------------------------------- to_dict


def test_to_dict_is_json_and_describes_the_strategy():
    d = PartialFreeze(upto=4, epochs=3).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["type"] == "PartialFreeze" and d["name"] == "partial(upto=4)"
    assert d["upto"] == 4 and d["epochs"] == 3 and d["train_bn"] is False
    fe = FeatureExtractor(hidden=(8, 4)).to_dict()
    assert fe["hidden"] == [8, 4] and fe["type"] == "FeatureExtractor"
    assert json.loads(json.dumps(fe)) == fe


def test_to_dict_with_layer_and_optimizer_instances():
    model = lab_cnn()
    strategy = PartialFreeze(upto=model.layers[2], optimizer=keras.optimizers.SGD(0.05))
    d = strategy.to_dict()
    assert d["upto"] == "conv2d_1"
    assert d["optimizer"]["class_name"].endswith(".SGD")
    assert d["optimizer"]["config"]["learning_rate"] == pytest.approx(0.05)
    assert json.loads(json.dumps(d)) == d
    assert strategy.name == "partial(upto='conv2d_1')"


def test_to_dict_differs_between_configurations():
    dicts = [
        json.dumps(s.to_dict(), sort_keys=True)
        for s in (
            FullFineTune(),
            FullFineTune(epochs=3),
            PartialFreeze(upto=4),
            PartialFreeze(upto=4, train_bn=True),
            FeatureExtractor(),
            FeatureExtractor(learning_rate=0.01),
        )
    ]
    assert len(set(dicts)) == len(dicts)


# --------------------------------------------------------------------------- in training


def test_strategy_epochs_optimizer_and_learning_rate_override_the_call():
    x, y = blobs(64)
    strategy = FeatureExtractor(epochs=3, optimizer="sgd", learning_rate=0.05)
    result = tk.fine_tune(
        mlp(), (x, y), strategy=strategy, epochs=1, learning_rate=0.5, cache=False, verbose=0
    )
    assert result.epochs == 3
    assert len(result.history["loss"]) == 3
    assert result.strategy == "feature_extractor"
    optimizer = result.model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.05)


def test_call_settings_apply_when_the_strategy_has_none():
    x, y = blobs(64)
    result = tk.fine_tune(
        mlp(), (x, y), strategy="full", epochs=2, optimizer="sgd", learning_rate=0.02,
        cache=False, verbose=0,
    )  # fmt: skip
    assert result.epochs == 2 and len(result.history["loss"]) == 2
    assert isinstance(result.model.optimizer, keras.optimizers.SGD)
    lr = float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate))
    assert lr == pytest.approx(0.02)


def test_optimizer_instance_is_copied_not_reused():
    x, y = blobs(64)
    mine = keras.optimizers.Adam(learning_rate=0.003)
    result = tk.fine_tune(
        mlp(), (x, y), strategy=FullFineTune(optimizer=mine), epochs=1, cache=False, verbose=0
    )
    assert result.model.optimizer is not mine
    assert isinstance(result.model.optimizer, keras.optimizers.Adam)
    lr = float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate))
    assert lr == pytest.approx(0.003)
    assert int(keras.ops.convert_to_numpy(mine.iterations)) == 0  # never stepped


def test_custom_strategy_trains_only_the_top_layers():
    x, y = blobs(64)
    model = mlp()
    result = tk.fine_tune(model, (x, y), strategy=TopLayersOnly(n=2), epochs=1, verbose=0)
    assert result.strategy == "top2"
    assert leaf_flags(result.model) == [False, True, True]
    assert result.timing.trainable_params == 78 + 21
    assert result.timing.total_params == 108 + 78 + 21
