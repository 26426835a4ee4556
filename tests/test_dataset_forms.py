"""Validation and test data as tf.data and `keras.utils.PyDataset`: the same numbers as arrays."""

from __future__ import annotations

import numpy as np
import pytest

import transferkit as tk
from _train_helpers import ArraySequence, blobs, mlp, split

tf = pytest.importorskip("tensorflow")  # tf.data feeds every Keras backend


def data():
    """Train 64, validation 40, test 40 samples of learnable 3-class blobs."""
    x, y = blobs(144)
    return split(x, y, 64, 40, 40)


def as_form(pair, form):
    """`pair` as arrays, a batched tf.data pipeline or a PyDataset (batches of 16: 16, 16, 8)."""
    if form == "tf.data":
        return tf.data.Dataset.from_tensor_slices(pair).batch(16)
    return pair if form == "arrays" else ArraySequence(*pair, 16)


FORMS = ["tf.data", "PyDataset"]


@pytest.mark.parametrize("form", FORMS)
def test_fine_tune_validates_on_a_dataset_as_on_arrays(form):
    train, val, _ = data()
    model = mlp()

    def run(validation):
        return tk.fine_tune(model, train, validation=validation, strategy="feature_extractor",
                            epochs=2, seed=3, verbose=0)  # fmt: skip

    expected, got = run(val), run(as_form(val, form))
    assert len(got.history["val_accuracy"]) == 2
    for key in ("val_loss", "val_accuracy", "loss"):
        np.testing.assert_allclose(got.history[key], expected.history[key], rtol=1e-6)
    assert got.cache.used, got.cache.reason  # the validation set no longer turns the cache off


@pytest.mark.parametrize("form", FORMS)
def test_compare_validates_and_tests_on_datasets_as_on_arrays(form):
    train, val, test = data()
    model = mlp()

    def run(validation, test):
        return tk.compare_strategies(model, ["full", "feature_extractor"], train=train,
                                     validation=validation, test=test, epochs=1, seeds=2,
                                     verbose=0)  # fmt: skip

    expected, got = run(val, test), run(as_form(val, form), as_form(test, form))
    for a, b in zip(expected.runs, got.runs, strict=True):
        assert b.validation is not None and b.metrics.num_samples == len(test[1])
        assert b.validation.accuracy == pytest.approx(a.validation.accuracy, abs=1e-6)
        assert b.metrics.accuracy == pytest.approx(a.metrics.accuracy, abs=1e-6)
        assert b.metrics.f1_macro == pytest.approx(a.metrics.f1_macro, abs=1e-6)
    assert got.best() == expected.best()
    assert got.model() is not None  # `keep_models="best"` had a validation set to choose on


def _endless(pair):
    return tf.data.Dataset.from_tensor_slices(pair).batch(16).repeat()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_endless, "`validation` is an endless dataset"),
        (lambda p: tf.data.Dataset.from_tensor_slices((*p, p[1])).batch(8),
         r"`\(x, y\)` batches of arrays. Received an element of type tuple with 3 parts"),
        (lambda p: tf.data.Dataset.from_tensor_slices(p[0]).batch(8),
         "Received an element of type .*Tensor with no parts"),
        (lambda p: tf.data.Dataset.from_tensor_slices(p),  # unbatched: one sample per element
         r"cannot be joined into `\(x, y\)` arrays.*\.batch\(n\)"),
        (lambda p: tf.data.Dataset.from_tensor_slices(p).batch(8).take(0),
         "it must yield at least one batch"),
    ],
)  # fmt: skip
def test_bad_validation_datasets_are_refused_before_training(make, match):
    train, val, test = data()
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(mlp(), train, validation=make(val), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=match.replace("validation", "test")):
        tk.compare_strategies(mlp(), ["full"], train=train, test=make(test), verbose=0)


@pytest.mark.parametrize("form", FORMS)
def test_a_declared_deterministic_dataset_trains_on_cached_activations(form):
    train, val, _ = data()
    model = mlp()

    def run(data, cache):
        return tk.fine_tune(model, data, validation=val, strategy="feature_extractor", epochs=2,
                            seed=1, verbose=0, cache=cache)  # fmt: skip

    off = run(as_form(train, form), True)
    assert not off.cache.used and "FeatureCache(deterministic=True)" in off.cache.reason
    got, expected = run(as_form(train, form), tk.FeatureCache(deterministic=True)), run(train, True)
    assert got.cache.used, got.cache.reason  # read once: the prefix ran over it once
    np.testing.assert_allclose(got.history["loss"], expected.history["loss"], rtol=1e-6)
    comparison = tk.compare_strategies(
        model, ["feature_extractor"], train=as_form(train, form), validation=val, test=val,
        epochs=1, seeds=2, verbose=0, cache=tk.FeatureCache(deterministic=True),
    )  # fmt: skip
    assert all(run.cache.used for run in comparison.runs)


def test_a_declared_deterministic_dataset_of_unknown_shape_is_refused():
    def samples():
        yield np.zeros((4, 8), "float32"), np.zeros(4, "int64")

    spec = (tf.TensorSpec((None, None), tf.float32), tf.TensorSpec((None,), tf.int64))
    ragged = tf.data.Dataset.from_generator(samples, output_signature=spec)
    model = mlp()
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"deterministic=True\)` needs batches of one shape"):
        tk.fine_tune(model, ragged, strategy="feature_extractor", epochs=1, verbose=0,
                     cache=tk.FeatureCache(deterministic=True))  # fmt: skip
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights(), strict=True))
