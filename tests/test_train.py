"""`fine_tune`: data forms, losses, history, timing, seeds, copies, frozen weights, bad input."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import COMPILED
from _train_helpers import (
    ArraySequence,
    TopLayersOnly,
    TrainingProbe,
    assert_untouched,
    blobs,
    count_params,
    flags_of,
    images,
    leaf_weights,
    mlp,
    same_weights,
    tiny_cnn,
    weights_of,
)
from transferkit import FeatureExtractor, FullFineTune, PartialFreeze
from transferkit.metrics import evaluate


def leaf_flags(model):
    return [bool(leaf.layer.trainable) for leaf in tk.leaf_layers(model)]


def one_hot(y, classes):
    return np.eye(classes, dtype=np.float32)[y]


# --------------------------------------------------------------------------- data and losses


@pytest.mark.parametrize(
    ("labels", "loss_type"),
    [
        ("int", keras.losses.SparseCategoricalCrossentropy),
        ("one_hot", keras.losses.CategoricalCrossentropy),
    ],
)
def test_trains_on_arrays_and_loss_decreases(labels, loss_type):
    x, y = blobs(128)
    target = y if labels == "int" else one_hot(y, 3)
    result = tk.fine_tune(
        mlp(), (x, target), epochs=3, learning_rate=0.01, batch_size=16, seed=0, verbose=0
    )
    loss = result.history["loss"]
    assert len(loss) == 3
    assert loss[0] > loss[1] > loss[2], loss
    assert loss[2] < 0.9 * loss[0]
    assert isinstance(result.model.loss, loss_type)
    assert not result.model.loss.from_logits
    accuracy = evaluate(result.model, x, y).accuracy
    assert accuracy > 0.6


def test_logits_head_gets_a_from_logits_loss():
    x, y = blobs(64)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)]
    )
    result = tk.fine_tune(model, (x, y), epochs=2, learning_rate=0.01, seed=0, verbose=0)
    assert isinstance(result.model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert result.model.loss.from_logits
    assert result.history["loss"][1] < result.history["loss"][0]


def test_explicit_loss_is_used():
    x, y = blobs(64)
    loss = keras.losses.SparseCategoricalCrossentropy(name="my_loss")
    result = tk.fine_tune(mlp(), (x, y), epochs=1, loss=loss, cache=False, verbose=0)
    assert result.model.loss is loss


def test_history_is_plain_lists_of_floats_with_validation():
    x, y = blobs(128)
    probe = TrainingProbe()
    result = tk.fine_tune(
        mlp(), (x[:96], y[:96]), validation=(x[96:], y[96:]), epochs=2, seed=0, verbose=0,
        callbacks=[probe],
    )  # fmt: skip
    assert probe.fits == 1 and probe.batches > 0
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "phase"}
    assert result.history["phase"] == [0.0, 0.0]  # one phase
    for key, values in result.history.items():
        assert type(values) is list and len(values) == 2, key
        assert all(type(v) is float and math.isfinite(v) for v in values), key
    assert json.loads(json.dumps(result.to_dict()))["history"] == result.history
    assert result.epochs == 2 and result.seed == 0 and result.strategy == "full"


def test_trains_on_a_py_dataset():
    x, y = images(96)
    train = ArraySequence(x[:64], y[:64], batch_size=16)
    validation = ArraySequence(x[64:], y[64:], batch_size=16)
    model = tiny_cnn()
    result = tk.fine_tune(
        model, train, validation=validation, strategy=PartialFreeze(upto=1), epochs=2,
        learning_rate=0.01, seed=0, verbose=0,
    )  # fmt: skip
    assert train.served >= 2 * 4
    assert len(result.history["loss"]) == 2 and len(result.history["val_loss"]) == 2
    assert result.history["loss"][1] < result.history["loss"][0]
    assert not result.cache.used and "not NumPy" in result.cache.reason
    assert result.timing.samples_per_second is None
    assert len(result.timing.epoch_seconds) == 2
    before, after = leaf_weights(model), leaf_weights(result.model)
    assert same_weights(before[0], after[0])  # frozen conv
    assert not same_weights(before[3], after[3])  # trained dense


# --------------------------------------------------------------------------- seeds


def test_same_seed_same_history():
    strategy = "full"
    x, y = images(64)
    data = dict(epochs=2, batch_size=16, verbose=0)
    model = tiny_cnn()
    a = tk.fine_tune(model, (x, y), strategy=strategy, seed=7, **data)
    b = tk.fine_tune(model, (x, y), strategy=strategy, seed=7, **data)
    c = tk.fine_tune(model, (x, y), strategy=strategy, seed=8, **data)
    assert a.history == b.history
    assert same_weights(weights_of(a.model), weights_of(b.model))
    assert a.history["loss"] != c.history["loss"]  # the seed matters (shuffling)


def test_seed_fixes_a_new_head_initialisation():
    x, y = images(64)
    model = tiny_cnn()
    strategy = FeatureExtractor(cut="flatten", hidden=(5,))
    a = tk.fine_tune(model, (x, y), strategy=strategy, epochs=1, seed=3, verbose=0)
    b = tk.fine_tune(model, (x, y), strategy=strategy, epochs=1, seed=3, verbose=0)
    assert a.history == b.history
    assert same_weights(weights_of(a.model), weights_of(b.model))


# --------------------------------------------------------------------------- the caller's model


@pytest.mark.parametrize(
    "strategy", [FeatureExtractor(hidden=(4,)), TopLayersOnly(n=1)], ids=lambda s: s.name
)
def test_callers_model_is_untouched(strategy):
    x, y = images(64)
    model = tiny_cnn(bn=True)
    tk.freeze(model, 1)  # the caller's own flags: conv frozen, the rest trainable
    weights, flags = weights_of(model), flags_of(model)
    result = tk.fine_tune(model, (x, y), strategy=strategy, epochs=1, verbose=0)
    assert result.model is not model
    assert_untouched(model, weights, flags)
    assert not model.compiled
    assert not same_weights(weights_of(result.model), weights)  # the copy did train


@pytest.mark.compiled
@pytest.mark.parametrize(
    ("strategy", "frozen", "trainable", "cache"),
    [
        (FullFineTune(), 0, 595, True),
        (PartialFreeze(upto=2), 2, 547, True),  # conv, bn frozen
        (PartialFreeze(upto=2), 2, 547, False),
        (FeatureExtractor(), 5, 27, True),  # all but the classifier frozen
        (FeatureExtractor(), 5, 27, False),
    ],
    ids=["full", "partial-cache", "partial-no_cache", "fe-cache", "fe-no_cache"],
)
def test_frozen_layers_bit_identical_trainable_layers_changed(strategy, frozen, trainable, cache):
    x, y = images(64)
    model = tiny_cnn(bn=True)  # conv 40, bn 16 (8 trainable), pool, flatten, dense 520, out 27
    tk.freeze(model, 1)  # the caller's own flags, which the strategies must not touch
    before, flags = leaf_weights(model), flags_of(model)
    result = tk.fine_tune(
        model, (x, y), strategy=strategy, epochs=2, batch_size=16, learning_rate=0.01,
        cache=cache, seed=0, verbose=0,
    )  # fmt: skip
    # The caller's model: every weight and flag as before.
    assert result.model is not model
    assert_untouched(model, [w for leaf in before for w in leaf], flags)
    # The trained copy: frozen leaves bit-identical (BatchNormalization statistics too),
    # every weight of every trainable leaf changed.
    assert result.cache.used == (cache and frozen > 0)
    after = leaf_weights(result.model)
    assert leaf_flags(result.model) == [i >= frozen for i in range(6)]
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        if not old:
            continue  # pool, flatten
        if i < frozen:
            assert same_weights(old, new), f"frozen leaf {i} changed"
        else:
            assert not any(np.array_equal(a, b) for a, b in zip(old, new, strict=True)), (
                f"trainable leaf {i} has a weight that did not change"
            )
    # Timing: epochs recorded, total covers them, counts are those of the frozen model.
    timing = result.timing
    assert len(timing.epoch_seconds) == 2 and all(s > 0 for s in timing.epoch_seconds)
    assert timing.train_seconds >= sum(timing.epoch_seconds) > 0
    assert timing.samples_per_second == pytest.approx(64 * 2 / sum(timing.epoch_seconds))
    assert timing.trainable_params == trainable
    assert timing.trainable_params == count_params(result.model.trainable_weights)
    assert timing.total_params == 603 == count_params(result.model.weights)


@pytest.mark.compiled
@pytest.mark.parametrize("upto", [2, 4], ids=["same_boundary", "other_boundary"])
def test_compile_then_freeze_is_handled(upto):
    """The lab bug: compile (and fit), then freeze, then train: frozen weights must stay."""
    x, y = images(64)
    model = tiny_cnn()  # conv, pool, flatten, dense, out
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    with pytest.warns(tk.RecompileWarning):
        tk.freeze(model, 2)
    before = leaf_weights(model)
    result = tk.fine_tune(
        model, (x, y), strategy=PartialFreeze(upto=upto), copy=False, epochs=2,
        learning_rate=0.01, verbose=0,
    )  # fmt: skip
    assert result.model is model
    after = leaf_weights(model)
    assert same_weights(before[0], after[0]), "the frozen conv layer trained"
    if upto == 4:
        assert same_weights(before[3], after[3]), "the frozen dense layer trained"
    assert not same_weights(before[4], after[4])


# --------------------------------------------------------------------------- bad input


def _bad_input_cases():
    x, y = blobs(32)
    nan_x = x.copy()
    nan_x[3, 2] = np.nan
    inf_x = x.copy()
    inf_x[5, 0] = -np.inf
    bad_one_hot = one_hot(y, 3)
    bad_one_hot[0, 1] = 1.0
    return [
        ("label_too_high", {"train": (x, np.where(y == 0, 3, y))}, r"labels must be in \[0, 2\]"),
        ("negative_label", {"train": (x, np.where(y == 0, -1, y))}, r"labels must be in \[0, 2\]"),
        ("float_labels", {"train": (x, y + 0.5)}, "integer class ids"),
        ("bad_one_hot", {"train": (x, bad_one_hot)}, "one-hot"),
        ("val_label", {"validation": (x, np.full(32, 7))}, r"`validation` labels must be in"),
        ("lengths", {"train": (x, y[:-1])}, "same number of samples"),
        ("val_lengths", {"validation": (x[:10], y[:9])}, "same number of samples"),
        ("empty", {"train": (x[:0], y[:0])}, "empty"),
        ("nan", {"train": (nan_x, y)}, "NaN or infinite"),
        ("inf", {"train": (inf_x, y)}, "NaN or infinite"),
        ("val_nan", {"validation": (nan_x, y)}, "NaN or infinite"),
        ("wrong_width", {"train": (np.zeros((32, 9), "float32"), y)}, "expects"),
        ("wrong_rank", {"train": (x.reshape(32, 2, 4), y)}, "expects"),
        ("epochs_0", {"epochs": 0}, "epochs"),
        ("epochs_float", {"epochs": 1.5}, "epochs"),
        ("batch_size_0", {"batch_size": 0}, "batch_size"),
        ("seed_float", {"seed": 1.5}, "seed"),
        ("steps_per_execution", {"steps_per_execution": 0}, "steps_per_execution"),
        ("unknown_strategy", {"strategy": "fine"}, "Known strategy names: 'full', 'partial'"),
        ("bad_boundary", {"strategy": PartialFreeze(upto=9)}, "between"),
        ("unknown_optimizer", {"optimizer": "adamm"}, "Unknown `optimizer` 'adamm'"),
    ]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [case[1:] for case in _bad_input_cases()],
    ids=[case[0] for case in _bad_input_cases()],
)
def test_bad_input_is_rejected_before_training(overrides, match):
    x, y = blobs(32)
    model = mlp()
    weights, flags = weights_of(model), flags_of(model)
    probe = TrainingProbe()
    kwargs = {"train": (x, y), "epochs": 1, "verbose": 0, "callbacks": [probe], **overrides}
    train = kwargs.pop("train")
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(model, train, **kwargs)
    assert probe.fits == 0 and probe.batches == 0
    assert_untouched(model, weights, flags)


def test_wrong_image_shape_is_rejected_before_training():
    x, y = images(16)
    model = tiny_cnn()
    probe = TrainingProbe()
    for bad in (x.reshape(16, 64), np.zeros((16, 9, 9, 1), "float32"), np.repeat(x, 3, -1)):
        with pytest.raises(ValueError, match=r"expects \(8, 8, 1\)"):
            tk.fine_tune(model, (bad, y), epochs=1, callbacks=[probe], verbose=0)
    assert probe.fits == 0


def test_missing_channel_axis_is_accepted_like_keras_does():
    x, y = images(32)
    result = tk.fine_tune(tiny_cnn(), (x[..., 0], y), epochs=1, verbose=0)
    assert len(result.history["loss"]) == 1


def test_not_a_model_or_unbuilt_model():
    x, y = blobs(16)
    with pytest.raises(TypeError, match="keras.Model"):
        tk.fine_tune("model", (x, y), epochs=1, verbose=0)
    unbuilt = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="not built"):
        tk.fine_tune(unbuilt, (x, y), epochs=1, verbose=0)


# --------------------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("strategy", ["full", "feature_extractor"])
def test_mixed_bfloat16_trains_a_copy_in_bfloat16_with_float32_variables(strategy):
    model = tiny_cnn()
    weights, flags = weights_of(model), flags_of(model)
    x, y = images(64)
    result = tk.fine_tune(
        model,
        (x, y),
        strategy=strategy,
        epochs=2,
        batch_size=16,
        seed=0,
        verbose=0,
        precision="mixed_bfloat16",
    )
    leaves = [leaf.layer for leaf in tk.leaf_layers(result.model)]
    assert all(layer.compute_dtype == "bfloat16" for layer in leaves[:-1] if layer.weights)
    assert leaves[-1].compute_dtype == "float32"  # a numerically stable softmax
    assert all(v.dtype == "float32" for v in result.model.weights)
    assert result.model.predict(x[:4], verbose=0).dtype == np.float32
    assert all(math.isfinite(v) for v in result.history["loss"])
    assert_untouched(model, weights, flags)  # the caller's model keeps its float32 policy
    assert all(leaf.layer.compute_dtype == "float32" for leaf in tk.leaf_layers(model))


def test_copy_model_with_a_dtype_policy_carries_the_weights_over_exactly():
    model = tiny_cnn()
    twin = tk.copy_model(model, dtype_policy="mixed_bfloat16")
    assert same_weights(weights_of(model), weights_of(twin))
    assert twin.layers[0].compute_dtype == "bfloat16"
    assert model.layers[0].compute_dtype == "float32"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"precision": "float16"}, "`precision` must be None, 'float32', 'mixed_bfloat16'"),
        ({"precision": "mixed_bfloat16", "copy": False}, "`precision` needs `copy=True`"),
    ],
)
def test_bad_precision_is_refused_before_training(kwargs, match):
    model = mlp()
    weights, flags = weights_of(model), flags_of(model)
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(model, blobs(32), epochs=1, verbose=0, **kwargs)
    assert_untouched(model, weights, flags)


def test_numpy_validation_runs_in_big_forward_batches():
    class CountValidationBatches(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_test_batch_end(self, batch, logs=None):
            self.batches += 1

    x, y = blobs(300)
    counter = CountValidationBatches()
    common = dict(epochs=2, batch_size=16, seed=0, verbose=0, steps_per_execution=1)
    result = tk.fine_tune(mlp(), (x, y), validation=(x, y), callbacks=[counter], **common)
    assert counter.batches == 2 * 2  # ceil(300 / 256) batches per epoch, not ceil(300 / 16)
    assert len(result.history["val_loss"]) == 2


def _compiled_call(x: Any) -> bool:
    """Whether the backend is compiling the code that sees `x`, not running it op by op."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return not tf.executing_eagerly()  # inside a traced `tf.function`
    if backend == "jax":
        import jax

        return isinstance(x, jax.core.Tracer)  # inside `jax.jit`
    import torch

    return bool(torch.compiler.is_compiling())


class SeesCompilation(keras.layers.Layer):
    """Scales by a trained weight (so it trains, not cached) and records, for each training
    call, `_compiled_call`."""

    seen: ClassVar[list[bool]] = []

    def build(self, input_shape: Any) -> None:
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x: Any, training: bool | None = None) -> Any:
        if training:
            SeesCompilation.seen.append(_compiled_call(x))
        return x * self.scale


@pytest.mark.compiled
def test_fine_tune_compiles_the_train_step_as_users_code_does():
    """TensorFlow traces it (a `tf.function`) and JAX jits it; PyTorch runs it eagerly, since
    `jit_compile="auto"` leaves `torch.compile` off."""
    SeesCompilation.seen.clear()
    model = mlp(front=[SeesCompilation(name="sees")])
    result = tk.fine_tune(model, blobs(32), epochs=1, batch_size=16, verbose=0)
    assert result.model.run_eagerly is False
    compiles = keras.backend.backend() in ("tensorflow", "jax")
    assert SeesCompilation.seen and set(SeesCompilation.seen) == {compiles}


@pytest.mark.backend("tensorflow", reason="only TensorFlow's functions can run eagerly")
def test_other_tests_run_tensorflow_eagerly():
    """The suite's speed-up (tests/_fixtures.py): unmarked tests skip TensorFlow's tracing,
    unless TRANSFERKIT_TEST_COMPILED=1."""
    import tensorflow as tf

    assert tf.config.functions_run_eagerly() is not COMPILED
