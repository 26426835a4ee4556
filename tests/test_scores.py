"""Transferability before training: `logme`, `hscore` and `transferability`."""

from __future__ import annotations

import json
import math
from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _fixtures import assert_weights_equal, weights_snapshot
from transferkit.scores import _transferability

# --------------------------------------------------------------------------- references


def reference_logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME as You et al. (ICML 2021) write Algorithm 1, with no decomposition tricks: for
    each class, `A = alpha I + beta F^T F` is formed and inverted at every step. The `1e-5`
    added to the two squared norms and the normalisation by n are the reference code's."""
    f = features.astype(np.float64)
    n, d = f.shape
    ftf = f.T @ f
    evidences = []
    for c in np.unique(labels):
        y = (labels == c).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(10_000):
            a_inv = np.linalg.inv(alpha * np.eye(d) + beta * ftf)
            m = beta * a_inv @ f.T @ y
            gamma = d - alpha * np.trace(a_inv)  # = sum(beta sigma / (alpha + beta sigma))
            m2 = float(m @ m)
            residual = float(np.sum((y - f @ m) ** 2))
            new_alpha, new_beta = gamma / (m2 + 1e-5), (n - gamma) / (residual + 1e-5)
            change = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta)
            alpha, beta = new_alpha, new_beta
            if change < 1e-12:
                break
        log_det = np.linalg.slogdet(alpha * np.eye(d) + beta * ftf)[1]
        evidence = (
            d / 2 * math.log(alpha)
            + n / 2 * math.log(beta)
            - log_det / 2
            - beta / 2 * (residual + 1e-5)
            - alpha / 2 * (m2 + 1e-5)
            - n / 2 * math.log(2 * math.pi)
        )
        evidences.append(evidence / n)
    return float(np.mean(evidences))


def reference_hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """Bao et al. (2019): tr(cov(f)^-1 cov(E[f | y])), with covariances as written."""
    f = features.astype(np.float64)
    class_means = np.stack([f[labels == c].mean(axis=0) for c in labels])
    cov_f = np.cov(f, rowvar=False, bias=True)
    cov_g = np.cov(class_means, rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f) @ cov_g))


def problem(n: int, d: int, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features whose first dimensions carry the class (plus noise), the rest noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    signal = np.eye(classes)[labels] @ rng.normal(size=(classes, min(d, 3)))
    f = rng.normal(size=(n, d))
    f[:, : signal.shape[1]] += 2 * signal
    return f.astype(np.float32), labels


# --------------------------------------------------------------------------- logme, hscore


@pytest.mark.parametrize(
    ("n", "d"), [(150, 12), (40, 60), (64, 64)], ids=["tall", "wide", "square"]
)
def test_logme_agrees_with_the_papers_algorithm(n, d):
    f, y = problem(n, d)
    assert tk.logme(f, y) == pytest.approx(reference_logme(f, y), rel=1e-6)


def test_logme_ranks_informative_features_above_noise():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 400)
    informative = np.eye(5)[y] @ rng.normal(size=(5, 16)) + 0.5 * rng.normal(size=(400, 16))
    noise = rng.normal(size=(400, 16))
    partly = np.concatenate([informative[:, :4], noise[:, :12]], axis=1)
    scores = [tk.logme(f, y) for f in (informative, partly, noise)]
    assert scores[0] > scores[1] > scores[2]


def test_logme_takes_one_hot_labels_and_ignores_label_values():
    f, y = problem(100, 8)
    assert tk.logme(f, np.eye(4)[y]) == pytest.approx(tk.logme(f, y), rel=1e-12)
    assert tk.logme(f, y + 5) == pytest.approx(tk.logme(f, y), rel=1e-12)  # classes 5..8


@pytest.mark.parametrize(("n", "d"), [(200, 10), (30, 50)], ids=["tall", "wide"])
def test_hscore_agrees_with_its_definition(n, d):
    f, y = problem(n, d)
    assert tk.hscore(f, y) == pytest.approx(reference_hscore(f, y), rel=1e-6)


def test_scores_of_all_zero_features_are_finite():
    y = np.array([0, 1] * 10)
    assert math.isfinite(tk.logme(np.zeros((20, 5)), y))
    assert tk.hscore(np.zeros((20, 5)), y) == 0.0


SCORE_ERRORS = [
    (np.zeros(10), np.zeros(10), r"`features` must be a numeric array of shape"),
    (np.full((4, 2), np.nan), np.array([0, 1, 0, 1]), r"`features` must be finite"),
    (np.zeros((4, 2)), np.array([0, 1, 0]), r"same number of samples.*=4.*=3"),
    (np.zeros((4, 2)), np.array([1, 1, 1, 1]), r"at least two classes.*only class 1"),
]


@pytest.mark.parametrize("score", [tk.logme, tk.hscore], ids=["logme", "hscore"])
@pytest.mark.parametrize(("features", "labels", "match"), SCORE_ERRORS)
def test_score_bad_input(score, features, labels, match):
    with pytest.raises(ValueError, match=match):
        score(features, labels)


# --------------------------------------------------------------------------- transferability


def cnn(name: str = "cnn") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(16, activation="relu", name="dense"),
            keras.layers.Dense(3, activation="softmax", name="classifier"),
        ],
        name=name,
    )


def images(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the bright quadrant (learnable), with noise."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, n)
    for i, label in enumerate(y):
        x[i, 4 * (label // 2) : 4 * (label // 2) + 4, 4 * (label % 2) : 4 * (label % 2) + 4] += 1
    return x, y


def test_default_cuts_are_the_extractor_cut_and_the_pooling_layers():
    model, (x, y) = cnn(), images()
    before = weights_snapshot(model)
    table = tk.transferability(model, (x, y))
    assert [(r.model, r.cut, r.index, r.feature_dim) for r in table.rows] == [
        ("cnn", "pool", 2, 36),
        ("cnn", "dense", 4, 16),
    ]
    assert (table.method, table.pooling, table.num_samples, table.num_classes) == (
        "logme",
        None,
        96,
        3,
    )
    for row in table.rows:  # the features `as_feature_extractor(cut=row.index)` gives
        features = tk.as_feature_extractor(model, cut=row.index).predict(x, verbose=0)
        assert row.score == pytest.approx(tk.logme(features, y), rel=1e-5)
        assert row.seconds >= 0 and row.forward_seconds == table.rows[0].forward_seconds
    assert_weights_equal(before, weights_snapshot(model))


def test_every_cut_comes_from_one_forward_pass(monkeypatch):
    calls: list[int] = []
    original = _transferability.cut_outputs

    def counting(*args: Any) -> keras.Model:
        extractor = original(*args)
        predict = extractor.predict_on_batch

        def counted(batch: Any) -> Any:
            calls.append(len(batch))
            return predict(batch)

        extractor.predict_on_batch = counted
        return extractor

    monkeypatch.setattr(_transferability, "cut_outputs", counting)
    x, y = images(100)
    table = tk.transferability(cnn(), (x, y), cuts=[1, "pool", 3, "dense"], batch_size=32)
    assert [r.cut for r in table.rows] == ["conv", "pool", "flatten", "dense"]
    assert calls == [32, 32, 32, 4]  # one pass over the data for the four cuts


def test_cuts_are_distinct_and_in_layer_order():
    x, y = images()
    table = tk.transferability(cnn(), (x, y), cuts=["dense", 4, -3, "pool"])
    assert [(r.cut, r.index) for r in table.rows] == [("pool", 2), ("dense", 4)]
    single = tk.transferability(cnn(), (x, y), cuts="flatten")
    assert [(r.cut, r.feature_dim) for r in single.rows] == [("flatten", 36)]


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_pooling_scores_one_value_per_channel(pooling):
    model, (x, y) = cnn(), images()
    table = tk.transferability(model, (x, y), cuts=["conv", "dense"], pooling=pooling)
    assert [r.feature_dim for r in table.rows] == [4, 16] and table.pooling == pooling
    extractor = tk.as_feature_extractor(model, cut="conv", pooling=pooling)
    features = extractor.predict(x, verbose=0)
    assert table.rows[0].score == pytest.approx(tk.logme(features, y), rel=1e-5)


def test_hscore_method():
    model, (x, y) = cnn(), images()
    table = tk.transferability(model, (x, y), cuts="dense", method="hscore")
    features = tk.as_feature_extractor(model, cut="dense").predict(x, verbose=0)
    assert table.method == "hscore"
    assert table.rows[0].score == pytest.approx(tk.hscore(features, y), rel=1e-5)


def selector(columns: list[int], name: str) -> keras.Model:
    """A model whose `features` layer copies the given input columns (frozen weights)."""
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, name="features"),
            keras.layers.Dense(3, activation="softmax", name="classifier"),
        ],
        name=name,
    )
    kernel = np.zeros((8, 4), "float32")
    kernel[columns, range(4)] = 1.0
    model.get_layer("features").kernel.assign(kernel)
    return model


def test_several_models_are_ranked_row_by_row():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 300)
    x = rng.normal(size=(300, 8)).astype("float32")
    x[:, :4] += 2 * (np.eye(3)[y] @ rng.normal(size=(3, 4))).astype("float32")
    good, bad = selector([0, 1, 2, 3], "good"), selector([4, 5, 6, 7], "bad")
    table = tk.transferability({"noise": bad, "signal": good}, (x, y))
    assert [(r.model, r.cut) for r in table.rows] == [("noise", "features"), ("signal", "features")]
    assert table.best().model == "signal"
    as_list = tk.transferability([bad, good], (x, y))
    assert [r.model for r in as_list.rows] == ["bad", "good"]
    assert [r.score for r in as_list.rows] == pytest.approx([r.score for r in table.rows])
    d = json.loads(json.dumps(table.to_dict()))
    assert tk.TransferabilityTable.from_dict(d) == table
    assert "| signal | features | 1 | 4 |" in table.to_markdown()


def _two_named_alike() -> list[keras.Model]:
    return [cnn("same"), cnn("same")]


TRANSFERABILITY_ERRORS = [
    (lambda m, d: tk.transferability(m, d, method="logmee"), r"Did you mean 'logme'\?"),
    (lambda m, d: tk.transferability(m, d, method="leep"), r"one of 'logme', 'hscore'"),
    (lambda m, d: tk.transferability(m, d, pooling="mean"), r"`pooling` must be one of"),
    (lambda m, d: tk.transferability(m, d, cuts=[]), r"`cuts` must hold at least one layer"),
    (lambda m, d: tk.transferability(m, d, cuts="classifier"), r"`cut` is at the output layer"),
    (lambda m, d: tk.transferability(m, d, cuts="densse"), r"Did you mean 'dense'"),
    (lambda m, d: tk.transferability(m, d, cuts=99), r"must be between -5 and 5"),
    (lambda m, d: tk.transferability(m, d[0]), r"`data` must be a pair `\(x, y\)`"),
    (lambda m, d: tk.transferability(m, (d[0], d[1][:-1])), r"same number of samples"),
    (lambda m, d: tk.transferability(m, (d[0], 0 * d[1])), r"at least two classes"),
    (lambda m, d: tk.transferability(m, d, batch_size=0), r"`batch_size` must be"),
    (lambda m, d: tk.transferability({}, d), r"at least one model"),
    (lambda m, d: tk.transferability(_two_named_alike(), d), r"Two models are named 'same'"),
    (
        lambda m, d: tk.transferability([m, _other()], d, cuts="pool"),
        r"No leaf layer named 'pool' in model 'other'",
    ),
]


def _other() -> keras.Model:
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(name="f"), keras.layers.Dense(3)],
        name="other",
    )


@pytest.mark.parametrize(("call", "match"), TRANSFERABILITY_ERRORS)
def test_transferability_bad_input_fails_before_any_forward_pass(call, match, monkeypatch):
    model, data = cnn(), images(32)
    before = weights_snapshot(model)
    monkeypatch.setattr(_transferability, "cut_outputs", _no_forward_pass)
    with pytest.raises(ValueError, match=match):
        call(model, data)
    assert_weights_equal(before, weights_snapshot(model))


def _no_forward_pass(*args: Any) -> Any:
    raise AssertionError("a forward pass started before the input was checked")


def test_transferability_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match=r"`model` must be a `keras.Model`, a mapping"):
        tk.transferability("cnn", images(8))
