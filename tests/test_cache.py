"""The frozen-prefix activation cache: same training as without it, and clean refusals."""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import (
    ArraySequence,
    blobs,
    fashion,
    images,
    lab_cnn,
    leaf_weights,
    mlp,
    same_weights,
    split,
    tiny_cnn,
    weights_of,
)
from transferkit import FeatureCache, FeatureExtractor, FullFineTune, PartialFreeze

CLOSE = {"rtol": 1e-4, "atol": 1e-5}


# --------------------------------------------------------------------------- same training


@pytest.mark.compiled
@pytest.mark.parametrize(
    ("strategy", "prefix_layers", "feature_shape"),
    [
        (PartialFreeze(), 5, (3136,)),  # conv, pool, conv, pool (frozen) + flatten (no weights)
        (FeatureExtractor(), 6, (128,)),  # everything but the classifier
    ],
    ids=["partial", "feature_extractor"],
)
def test_cache_gives_the_same_training_on_the_lab_cnn(strategy, prefix_layers, feature_shape):
    x, y = fashion(300)
    train, validation = split(x, y, 240, 60)
    model = lab_cnn()
    kwargs = dict(
        validation=validation, strategy=strategy, epochs=2, batch_size=32, seed=0, verbose=0
    )
    cached = tk.fine_tune(model, train, cache=True, **kwargs)
    plain = tk.fine_tune(model, train, cache=False, **kwargs)

    assert cached.cache.used
    assert "frozen and deterministic" in cached.cache.reason
    assert cached.cache.prefix_layers == prefix_layers
    assert cached.cache.feature_shape == feature_shape
    assert cached.cache.nbytes == 300 * math.prod(feature_shape) * 4
    assert cached.cache.seconds > 0 and not cached.cache.shared
    assert not plain.cache.used and "cache=False" in plain.cache.reason

    assert set(cached.history) == set(plain.history) == {
        "loss", "accuracy", "val_loss", "val_accuracy", "phase"
    }  # fmt: skip
    for key in plain.history:
        assert np.allclose(cached.history[key], plain.history[key], **CLOSE), key
    assert plain.history["loss"][1] < plain.history["loss"][0]  # it did learn something

    # The full model came out trained (the remainder shares its layers), like without cache.
    start = leaf_weights(model)
    trained_cached, trained_plain = leaf_weights(cached.model), leaf_weights(plain.model)
    for i, (a, b) in enumerate(zip(trained_cached, trained_plain, strict=True)):
        assert all(np.allclose(u, v, **CLOSE) for u, v in zip(a, b, strict=True)), i
    assert not same_weights(trained_cached[-1], start[-1])
    assert same_weights(trained_cached[0], start[0])
    assert cached.model.output_shape == (None, 10)
    predictions = [keras.ops.convert_to_numpy(r.model.predict(x[:50], verbose=0))
                   for r in (cached, plain)]  # fmt: skip
    assert np.allclose(*predictions, rtol=1e-3, atol=1e-5)
    assert cached.timing.trainable_params == plain.timing.trainable_params
    assert cached.timing.total_params == plain.timing.total_params == 421642


@pytest.mark.compiled
def test_a_long_cached_phase_is_compiled_with_xla_on_tensorflow(monkeypatch):
    from transferkit.training import _feed

    x, y = fashion(300)
    train, validation = split(x, y, 240, 60)  # 8 steps per epoch at batch size 32
    model, backend = lab_cnn(), keras.backend.backend()
    kwargs = dict(validation=validation, strategy=PartialFreeze(), epochs=2, batch_size=32,
                  seed=0, verbose=0)  # fmt: skip
    short = tk.fine_tune(model, train, **kwargs)
    monkeypatch.setattr(_feed, "CACHED_XLA_MIN_STEPS", 16)  # this phase's 16 steps are "long"
    long = tk.fine_tune(model, train, **kwargs)
    off = tk.fine_tune(model, train, jit_compile=False, **kwargs)
    plain = tk.fine_tune(model, train, cache=False, **kwargs)

    assert long.cache.used and long.phases[0].jit_compile is (backend != "torch")
    assert short.phases[0].jit_compile is plain.phases[0].jit_compile is (backend == "jax")
    assert off.phases[0].jit_compile is False
    for key in plain.history:  # XLA trains the same steps, to float32 rounding
        assert np.allclose(long.history[key], plain.history[key], **CLOSE), key
    record = long.phases[0]
    assert json.loads(json.dumps(record.to_dict()))["jit_compile"] is record.jit_compile


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("functional", [False, True])
def test_a_prefix_ending_in_a_nested_backbone(functional):
    # A `keras.applications`-style backbone (a nested model with its own pooling) right before
    # the head: its `.output` is its own graph's, not the enclosing model's.
    inner = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inner))
    backbone = keras.Model(inner, pooled, name="backbone")
    layers = [keras.layers.Rescaling(1 / 2), backbone, keras.layers.Dense(3, activation="softmax")]
    if functional:
        x = inputs = keras.Input((8, 8, 3))
        for layer in layers:
            x = layer(x)
        model = keras.Model(inputs, x)
    else:
        model = keras.Sequential([keras.Input((8, 8, 3)), *layers])
    x, y = images(48)
    x = x.repeat(3, axis=-1)
    runs = [tk.fine_tune(model, (x, y), strategy="feature_extractor", epochs=2, seed=0,
                         verbose=0, cache=cache) for cache in (True, False)]  # fmt: skip
    assert runs[0].cache.used and runs[0].cache.prefix_layers == 2, runs[0].cache.reason
    np.testing.assert_allclose(runs[0].history["loss"], runs[1].history["loss"], **CLOSE)


def test_refuses_when_nothing_is_frozen():
    x, y = blobs(64)
    result = tk.fine_tune(mlp(), (x, y), strategy=FullFineTune(), epochs=1, verbose=0)
    assert not result.cache.used
    assert "trains" in result.cache.reason and "'h1'" in result.cache.reason


def test_refuses_when_turned_off():
    x, y = blobs(64)
    result = tk.fine_tune(mlp(), (x, y), strategy="feature_extractor", epochs=1, cache=False,
                          verbose=0)  # fmt: skip
    assert not result.cache.used and "cache=False" in result.cache.reason


def test_refuses_dropout_in_the_frozen_prefix():
    x, y = blobs(64)
    model = mlp(front=[keras.layers.Dropout(0.3, name="drop")])
    result = tk.fine_tune(model, (x, y), strategy=FeatureExtractor(), epochs=1, verbose=0)
    assert not result.cache.used
    assert "'drop'" in result.cache.reason and "random" in result.cache.reason


def test_prefix_stops_before_a_dropout_layer():
    x, y = blobs(64)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(12, activation="relu", name="h1"),
            keras.layers.Dropout(0.3, name="drop"),
            keras.layers.Dense(6, activation="relu", name="h2"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    result = tk.fine_tune(model, (x, y), strategy=FeatureExtractor(), epochs=1, verbose=0)
    assert result.cache.used
    assert result.cache.prefix_layers == 1 and result.cache.feature_shape == (12,)
    assert "'drop'" in result.cache.reason


def test_refuses_random_augmentation_in_the_frozen_prefix():
    x, y = images(64)
    model = tiny_cnn(front=[keras.layers.RandomFlip("horizontal", name="flip")])
    result = tk.fine_tune(model, (x, y), strategy=PartialFreeze(upto=3), epochs=1, verbose=0)
    assert not result.cache.used
    assert "'flip'" in result.cache.reason and "augmentation" in result.cache.reason


@pytest.mark.parametrize("train_bn", [True, False])
def test_trainable_batch_normalization_in_the_prefix(train_bn):
    x, y = images(64)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    strategy = PartialFreeze(upto=2, train_bn=train_bn)
    result = tk.fine_tune(model, (x, y), strategy=strategy, epochs=1, verbose=0)
    if train_bn:
        assert not result.cache.used
        assert "'bn'" in result.cache.reason and "trains" in result.cache.reason
    else:
        assert result.cache.used and result.cache.prefix_layers == 3


def test_refuses_a_py_dataset():
    x, y = images(64)

    model = tiny_cnn()
    result = tk.fine_tune(model, ArraySequence(x, y, 32), strategy="feature_extractor",
                          epochs=1, verbose=0)  # fmt: skip
    assert not result.cache.used and "not NumPy arrays" in result.cache.reason
    assert "`transferkit.datasets.from_directory(...)`" in result.cache.reason  # the way out
    # Arrays for training and a dataset for validation: the dataset is read into arrays once,
    # so the cache is used (tests/test_dataset_forms.py compares the numbers).
    result = tk.fine_tune(model, (x, y), validation=ArraySequence(x, y, 32),
                          strategy="feature_extractor", epochs=1, verbose=0)  # fmt: skip
    assert result.cache.used and "val_loss" in result.history


def test_refuses_when_over_the_memory_budget():
    x, y = images(64)
    store = FeatureCache(budget_bytes=1000, spill=False)  # spilling: see test_spill.py
    result = tk.fine_tune(tiny_cnn(), (x, y), strategy=FeatureExtractor(), epochs=1,
                          cache=store, verbose=0)  # fmt: skip
    assert not result.cache.used
    assert "budget" in result.cache.reason and "spill=False" in result.cache.reason
    assert result.cache.prefix_layers == 4 and result.cache.feature_shape == (8,)
    assert store.entries == {} and store.nbytes == 0
    assert len(result.history["loss"]) == 1


def test_refuses_a_model_that_is_not_a_chain():
    x, y = blobs(64)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8, activation="relu", name="h")(inputs)
    skip = keras.layers.Add(name="skip")([inputs, h])
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(skip)
    model = keras.Model(inputs, outputs)
    result = tk.fine_tune(model, (x, y), strategy=FeatureExtractor(), epochs=1, verbose=0)
    assert not result.cache.used and "chain" in result.cache.reason


# --------------------------------------------------------------------------- sharing


def test_a_feature_cache_is_shared_between_runs_with_the_same_prefix():
    x, y = images(96)
    train, validation = split(x, y, 64, 32)
    model = tiny_cnn()
    store = FeatureCache()
    first = tk.fine_tune(model, train, validation=validation, strategy=PartialFreeze(upto=1),
                         epochs=1, seed=0, cache=store, verbose=0)  # fmt: skip
    assert first.cache.used and not first.cache.shared and first.cache.seconds > 0
    assert len(store.entries) == 1
    assert store.nbytes == first.cache.nbytes == 96 * 64 * 4  # flatten: 4x4x4 floats

    # Another strategy with the same frozen prefix (conv frozen, pool+flatten weightless).
    second = tk.fine_tune(model, train, validation=validation,
                          strategy=PartialFreeze(upto=2, learning_rate=0.01), epochs=1, seed=0,
                          cache=store, verbose=0)  # fmt: skip
    assert second.cache.used and second.cache.shared and second.cache.seconds == 0.0
    assert len(store.entries) == 1
    assert second.history["loss"] != first.history["loss"]  # a different run all the same

    # Different data (or different prefix weights) is a different entry.
    third = tk.fine_tune(model, (x[:64] * 0.5, y[:64]), strategy=PartialFreeze(upto=1),
                         epochs=1, seed=0, cache=store, verbose=0)  # fmt: skip
    assert third.cache.used and not third.cache.shared
    assert len(store.entries) == 2


def test_cache_info_is_json():
    x, y = blobs(64)
    info = tk.fine_tune(mlp(), (x, y), strategy="feature_extractor", epochs=1, verbose=0).cache
    d = json.loads(json.dumps(info.to_dict()))
    assert d["used"] is True and d["feature_shape"] == [6] and d["prefix_layers"] == 2
    assert tk.CacheInfo(**{**d, "feature_shape": tuple(d["feature_shape"])}) == info


def test_cached_run_leaves_the_callers_model_alone():
    x, y = blobs(64)
    model = mlp()
    before = weights_of(model)
    result = tk.fine_tune(model, (x, y), strategy="feature_extractor", epochs=1, verbose=0)
    assert result.cache.used
    assert same_weights(weights_of(model), before)
    assert all(layer.trainable for layer in model.layers)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="PyTorch's thread setting")
def test_torch_trains_a_cached_remainder_on_one_thread_and_restores_the_setting():
    import torch

    class Threads(keras.callbacks.Callback):
        seen: list[int] = []

        def on_train_batch_end(self, batch, logs=None):
            self.seen.append(torch.get_num_threads())

    x, y = blobs(64)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cached = tk.fine_tune(mlp(), (x, y), strategy="feature_extractor", epochs=1, verbose=0,
                              callbacks=[Threads()])  # fmt: skip
        assert cached.cache.used and set(Threads.seen) == {1}
        assert torch.get_num_threads() == 2  # the caller's setting is back
        Threads.seen.clear()
        tk.fine_tune(mlp(), (x, y), strategy="full", epochs=1, verbose=0, callbacks=[Threads()])
        assert set(Threads.seen) == {2}  # the full model keeps the caller's threads
    finally:
        torch.set_num_threads(before)


def test_evaluation_batches_match_keras_predict():
    x, y = blobs(70)  # 70 samples: a last, partial batch of 6 at batch size 64
    model = mlp()
    metrics = tk.metrics.evaluate(model, x, y, batch_size=64)
    expected = np.argmax(model.predict(x, batch_size=64, verbose=0), axis=1)
    assert metrics.accuracy == pytest.approx(float(np.mean(expected == y)))


def test_cached_run_returns_a_model_compiled_with_the_users_optimizer():
    x, y = blobs(64)
    sgd = keras.optimizers.SGD(learning_rate=0.03, momentum=0.5)
    result = tk.fine_tune(
        mlp(), (x, y), strategy=FeatureExtractor(), epochs=1, optimizer=sgd, verbose=0
    )
    assert result.cache.used
    opt = result.model.optimizer
    assert isinstance(opt, keras.optimizers.SGD) and opt is not sgd
    assert math.isclose(float(opt.learning_rate), 0.03, rel_tol=1e-6)
    assert math.isclose(float(opt.momentum), 0.5)
