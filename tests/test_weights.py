"""Model soups, WiSE-FT interpolation: `soup`, `interpolate`, `wise_ft`."""

from __future__ import annotations

import json
from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import assert_weights_equal, weights_snapshot
from transferkit.metrics import evaluate


def _np(x: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def bn_net(num_classes: int = 3, *, head: str = "out") -> keras.Model:
    """Dense -> BatchNormalization -> Dense: weights and non-trainable statistics."""
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(num_classes, activation="softmax", name=head),
        ],
        name="bn_net",
    )


def randomized(model: keras.Model, seed: int) -> keras.Model:
    """A copy of `model` with every variable (BatchNormalization statistics too) random."""
    rng = np.random.default_rng(seed)
    twin = tk.copy_model(model)
    for v in twin.weights:
        value = rng.normal(size=tuple(v.shape))
        if "variance" in v.path:
            value = np.abs(value) + 0.5
        v.assign(value.astype("float32"))
    return twin


def linear_task(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, labels and the weights `w` of a linear classifier that gets them all right."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 3)).astype("float32")
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, np.argmax(x @ w, axis=1), w


def linear_model(kernel: np.ndarray) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax", name="out")], name="lin"
    )
    model.get_layer("out").kernel.assign(kernel)
    model.get_layer("out").bias.assign(np.zeros(3, "float32"))
    return model


def by_path(model: keras.Model) -> dict[str, np.ndarray]:
    """Every variable's value by `leaf path/variable name` (what the library matches on)."""
    return {
        f"{leaf.path}/{v.name}": _np(v)
        for leaf in tk.leaf_layers(model)
        for v in leaf.layer.weights
    }


# --------------------------------------------------------------------------- soup


def test_uniform_soup_is_the_mean_of_every_variable():
    base = bn_net()
    a, b = randomized(base, 1), randomized(base, 2)
    before = weights_snapshot(a), weights_snapshot(b)
    mixed = tk.soup([a, b])
    assert mixed is not a and mixed is not b
    got, va, vb = by_path(mixed), by_path(a), by_path(b)
    assert set(got) >= {"bn/moving_mean", "bn/moving_variance", "hidden/kernel"}
    for path, value in got.items():
        np.testing.assert_allclose(value, (va[path] + vb[path]) / 2, rtol=1e-6, err_msg=path)
    assert_weights_equal(before[0], weights_snapshot(a))
    assert_weights_equal(before[1], weights_snapshot(b))
    ids = {id(v) for v in a.weights} | {id(v) for v in b.weights}
    assert not ids & {id(v) for v in mixed.weights}  # nothing shared with the ingredients


def test_soup_of_one_model_is_an_identical_copy():
    a = randomized(bn_net(), 3)
    mixed = tk.soup([a])
    assert_weights_equal(weights_snapshot(a), weights_snapshot(mixed))


def test_greedy_soup_keeps_what_helps_and_never_loses_accuracy():
    x, y, w = linear_task()
    best, good, bad = linear_model(w), linear_model(2 * w), linear_model(-3 * w)
    # `bad` alone is always wrong; averaged with the others it cancels them (kernel 0).
    snapshots = [weights_snapshot(m) for m in (bad, good, best)]
    mixed = tk.soup([bad, good, best], method="greedy", validation=(x, y))
    accuracy = evaluate(mixed, x, y).accuracy
    first = max(evaluate(m, x, y).accuracy for m in (bad, good, best))
    assert accuracy >= first == 1.0
    np.testing.assert_allclose(_np(mixed.get_layer("out").kernel), 1.5 * w, rtol=1e-6)
    uniform = tk.soup([bad, good, best])
    np.testing.assert_allclose(_np(uniform.get_layer("out").kernel), 0.0, atol=1e-6)
    assert evaluate(uniform, x, y).accuracy < accuracy
    for model, snapshot in zip((bad, good, best), snapshots, strict=True):
        assert_weights_equal(snapshot, weights_snapshot(model))


def test_greedy_soup_on_trained_models(small_task):
    """Fine-tuned copies of one model (BatchNormalization included): at least as accurate on
    validation as the best ingredient, which is where the greedy soup starts."""
    x, y = small_task
    start = bn_net()
    models = [tk.fine_tune(start, (x, y), epochs=2, seed=s, verbose=0).model for s in range(3)]
    mixed = tk.soup(models, method="greedy", validation=(x, y))
    best = max(evaluate(m, x, y).accuracy for m in models)
    assert evaluate(mixed, x, y).accuracy >= best


@pytest.fixture
def small_task() -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = linear_task(96, seed=5)
    return x, y


def _other_shape() -> keras.Model:
    return bn_net(5)


def _other_layers() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", name="hidden"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )


SOUP_ERRORS = [
    (lambda m: tk.soup([]), r"`models` must be a non-empty list"),
    (lambda m: tk.soup(m), r"`models` must be a non-empty list"),  # one model, not a list
    (
        lambda m: tk.soup([m, _other_shape()]),
        r"`models\[1\]` .* differs from `models\[0\]`.*variable 'out/kernel' has shape "
        r"\(6, 3\) in `models\[0\]` and \(6, 5\) in `models\[1\]`",
    ),
    (
        lambda m: tk.soup([m, _other_layers()]),
        r"leaf layer 1 is 'bn' \(BatchNormalization\) in `models\[0\]` and 'out' \(Dense\)",
    ),
    (
        lambda m: tk.soup([m, bn_net(head="head")]),
        r"leaf layer 2 is 'out' \(Dense\) in `models\[0\]` and 'head' \(Dense\)",
    ),
    (lambda m: tk.soup([m, m], method="unifrom"), r"Did you mean 'uniform'\? Received: method"),
    (lambda m: tk.soup([m], method="mean"), r"one of 'uniform', 'greedy'\. Received"),
    (lambda m: tk.soup([m, m], method="greedy"), r"needs `validation=\(x, y\)`"),
    (
        lambda m: tk.soup([m], method="greedy", validation=np.zeros((4, 4))),
        r"`validation` must be a pair `\(x, y\)`",
    ),
    (lambda m: tk.soup([m], batch_size=0), r"`batch_size` must be a positive int"),
]


@pytest.mark.parametrize(("call", "match"), SOUP_ERRORS)
def test_soup_bad_input_is_refused_before_anything_changes(call, match):
    model = randomized(bn_net(), 4)
    before = weights_snapshot(model)
    with pytest.raises(ValueError, match=match):
        call(model)
    assert_weights_equal(before, weights_snapshot(model))


def test_soup_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match=r"`models\[1\]` must be a `keras.Model`"):
        tk.soup([bn_net(), "model"])


# --------------------------------------------------------------------------- interpolate


@pytest.mark.parametrize("alpha", [0, 1])
def test_interpolate_endpoints_are_bit_identical(alpha):
    x, _, _ = linear_task(16)
    start = randomized(bn_net(), 6)
    tuned = randomized(bn_net(), 7)
    snapshots = weights_snapshot(start), weights_snapshot(tuned)
    model = tk.interpolate(start, tuned, alpha)
    end = (start, tuned)[alpha]
    assert_weights_equal(weights_snapshot(end), weights_snapshot(model))
    np.testing.assert_array_equal(_np(model(x)), _np(end(x)))
    assert_weights_equal(snapshots[0], weights_snapshot(start))
    assert_weights_equal(snapshots[1], weights_snapshot(tuned))


def test_interpolate_mixes_every_shared_variable():
    start, tuned = randomized(bn_net(), 8), randomized(bn_net(), 9)
    got = by_path(tk.interpolate(start, tuned, 0.25))
    s, t = by_path(start), by_path(tuned)
    assert "bn/moving_variance" in got
    for path, value in got.items():
        np.testing.assert_allclose(value, 0.75 * s[path] + 0.25 * t[path], rtol=1e-5, atol=1e-6)


def test_interpolate_matches_a_fine_tuned_copy_by_layer_path(small_task):
    """`replace_head` builds a Functional copy whose variables were built under another name
    scope than the Sequential original's (Keras's `Variable.path` differs); they still pair
    up by layer path."""
    x, y = small_task
    start = bn_net()
    tuned = tk.fine_tune(tk.replace_head(start, 3), (x, y), epochs=1, verbose=0).model
    assert start.weights[0].path != tuned.weights[0].path
    got, s = by_path(tk.interpolate(start, tuned, 0)), by_path(start)
    for path in ("hidden/kernel", "bn/moving_variance"):
        np.testing.assert_array_equal(got[path], s[path])


def test_new_head_keeps_the_tuned_values_on_interpolated_body():
    start = randomized(bn_net(3), 10)
    tuned = randomized(tk.replace_head(start, 5), 11)  # a 5-class head, no starting counterpart
    model = tk.interpolate(start, tuned, 0.5)
    assert model.output_shape == (None, 5)
    got, s, t = by_path(model), by_path(start), by_path(tuned)
    for path in ("head_classifier/kernel", "head_classifier/bias"):
        np.testing.assert_array_equal(got[path], t[path])
    for path in ("hidden/kernel", "bn/moving_mean"):
        np.testing.assert_allclose(got[path], (s[path] + t[path]) / 2, rtol=1e-5, atol=1e-6)
    at_zero = by_path(tk.interpolate(start, tuned, 0))  # the starting body, the tuned head
    np.testing.assert_array_equal(at_zero["hidden/kernel"], s["hidden/kernel"])
    np.testing.assert_array_equal(at_zero["head_classifier/kernel"], t["head_classifier/kernel"])


def test_a_head_of_another_shape_under_the_same_name_is_taken_from_tuned():
    start, tuned = randomized(bn_net(3), 12), randomized(bn_net(5), 13)
    got, t = by_path(tk.interpolate(start, tuned, 0.0)), by_path(tuned)
    np.testing.assert_array_equal(got["out/kernel"], t["out/kernel"])
    np.testing.assert_array_equal(got["hidden/kernel"], by_path(start)["hidden/kernel"])


INTERPOLATE_ERRORS = [
    (lambda s, t: tk.interpolate(s, t, -0.1), r"`alpha` must be a number in \[0, 1\]"),
    (lambda s, t: tk.interpolate(s, t, 1.5), r"\(0 gives `start`'s weights.*alpha=1.5"),
    (lambda s, t: tk.interpolate(s, t, float("nan")), r"`alpha` must be.*alpha=nan"),
    (lambda s, t: tk.interpolate(s, t, "0.5"), r"`alpha` must be.*alpha='0.5'"),
    (lambda s, t: tk.interpolate(s, t, True), r"`alpha` must be.*alpha=True"),
    (
        lambda s, t: tk.interpolate(s, _other_names(), 0.5),
        r"share no variable by path and shape.*'hidden/kernel'.*'a/kernel'",
    ),
    (lambda s, t: tk.wise_ft(s, t, _val(), alphas=()), r"`alphas` must be a non-empty list"),
    (lambda s, t: tk.wise_ft(s, t, _val(), alphas=(0, 2)), r"`alphas\[1\]` must be.*=2"),
    (lambda s, t: tk.wise_ft(s, t, _val()[0]), r"`validation` must be a pair"),
    (lambda s, t: tk.wise_ft(s, t, _val(), batch_size=-1), r"`batch_size` must be"),
]


def _other_names() -> keras.Model:
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a")])


def _val() -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = linear_task(16)
    return x, y


@pytest.mark.parametrize(("call", "match"), INTERPOLATE_ERRORS)
def test_interpolation_bad_input_is_refused_before_anything_changes(call, match):
    start, tuned = randomized(bn_net(), 14), randomized(bn_net(), 15)
    snapshots = weights_snapshot(start), weights_snapshot(tuned)
    with pytest.raises(ValueError, match=match):
        call(start, tuned)
    assert_weights_equal(snapshots[0], weights_snapshot(start))
    assert_weights_equal(snapshots[1], weights_snapshot(tuned))


# --------------------------------------------------------------------------- wise_ft


def test_wise_ft_picks_the_best_alpha_on_validation():
    x, y, w = linear_task()
    start = linear_model(-w)  # always wrong
    tuned = linear_model(w)  # always right
    snapshots = weights_snapshot(start), weights_snapshot(tuned)
    result = tk.wise_ft(start, tuned, (x, y), alphas=(0.0, 0.25, 1.0, 0.75))
    assert result.alphas == (0.0, 0.25, 1.0, 0.75)
    assert result.accuracies[0] == 0.0 and result.accuracies[2] == 1.0
    assert result.alpha == 1.0 and result.accuracy == 1.0  # the first of the ties (1.0, 0.75)
    assert_weights_equal(weights_snapshot(tuned), weights_snapshot(result.model))
    assert result.tuned_only == ()
    d = json.loads(json.dumps(result.to_dict()))
    assert d["alphas"] == [0.0, 0.25, 1.0, 0.75] and "model" not in d
    assert_weights_equal(snapshots[0], weights_snapshot(start))
    assert_weights_equal(snapshots[1], weights_snapshot(tuned))


def test_wise_ft_model_is_the_interpolation_at_its_alpha():
    x, y, _ = linear_task(64, seed=3)
    start = randomized(bn_net(), 16)
    tuned = randomized(tk.replace_head(start, 3), 17)
    result = tk.wise_ft(start, tuned, (x, y))
    assert result.alphas == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert result.accuracy == max(result.accuracies)
    assert result.tuned_only == ("head_classifier/kernel", "head_classifier/bias")
    expected = tk.interpolate(start, tuned, result.alpha)
    assert_weights_equal(weights_snapshot(expected), weights_snapshot(result.model))
