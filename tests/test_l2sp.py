"""L2-SP: zero at the start, growing as weights move, pulling them back; cache-aware; removed."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import (
    TrainingProbe,
    assert_untouched,
    blobs,
    flags_of,
    mlp,
    same_weights,
    tiny_cnn,
    weights_of,
)
from transferkit.strategies._l2sp import attach_l2sp

FAST = {"verbose": 0, "seed": 0, "jit_compile": False, "batch_size": 16}


@pytest.fixture(scope="module")
def data():
    return blobs(64, dim=8, classes=3, seed=0)


def weights_of_vars(variables):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in variables]


def _distance(a, b):
    return sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b, strict=True))


def test_penalty_is_zero_at_the_start_and_measures_the_distance():
    model = mlp()
    user_l2 = keras.regularizers.L2(0.5)
    model.get_layer("h1").kernel.regularizer = user_l2  # a layer's own regularizer stays
    own = float(keras.ops.convert_to_numpy(user_l2(model.get_layer("h1").kernel)))
    penalty = attach_l2sp(model, tk.L2SP(alpha=0.3, beta=0.0), model.weights)
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert penalty.value() == 0.0 and total == pytest.approx(own, rel=1e-6)
    start = weights_of(model)
    model.set_weights([w + 0.1 for w in start])
    expected = 0.3 * sum(0.01 * w.size for w in start)
    total = float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses))
    assert penalty.value() == pytest.approx(expected, rel=1e-5)
    own = float(keras.ops.convert_to_numpy(user_l2(model.get_layer("h1").kernel)))
    assert total == pytest.approx(expected + own, rel=1e-5)
    penalty.detach()
    assert model.get_layer("h1").kernel.regularizer is user_l2
    assert all(v.regularizer is None for v in model.weights if v.path != "mlp/h1/kernel")


def test_frozen_weights_get_a_term_for_later_phases_but_statistics_never():
    model = tiny_cnn(bn=True)
    tk.freeze(model, 3)
    flags = flags_of(model)
    penalty = attach_l2sp(model, tk.L2SP(), model.weights)
    assert flags_of(model) == flags  # trainable flags left as found
    paths = {v.path for v, _, _ in penalty.terms}
    assert "tiny_cnn/conv/kernel" in paths  # frozen now, may train in a later phase
    assert not any("moving" in p for p in paths)  # BatchNormalization statistics never train
    assert penalty.value() == 0.0
    penalty.detach()


def test_l2sp_keeps_weights_nearer_the_start_and_its_penalty_grows(data):
    model = mlp()
    weights, flags = weights_of(model), flags_of(model)
    runs = {
        reg: tk.fine_tune(
            model,
            data,
            strategy=tk.FullFineTune(regularizer=reg),
            epochs=3,
            optimizer=keras.optimizers.SGD(0.1),
            **FAST,
        )  # fmt: skip
        for reg in (None, tk.L2SP(alpha=0.2, beta=0.0))
    }
    plain, pulled = runs.values()
    assert "l2sp" not in plain.history
    penalty = pulled.history["l2sp"]
    assert 0 < penalty[0] < penalty[1] < penalty[2]
    assert _distance(weights_of(pulled.model), weights) < 0.8 * _distance(
        weights_of(plain.model), weights
    )
    expected = 0.2 * _distance(weights_of(pulled.model), weights)
    assert penalty[-1] == pytest.approx(expected, rel=1e-5)  # the last epoch's weights
    assert all(v.regularizer is None for v in pulled.model.weights)  # removed after training
    assert_untouched(model, weights, flags)


def test_new_head_pays_beta_and_the_cached_frozen_body_pays_nothing(data, tmp_path):
    model = mlp()
    strategy = tk.FeatureExtractor(hidden=(5,), regularizer=tk.L2SP(alpha=10.0, beta=0.01))
    result = tk.fine_tune(model, data, strategy=strategy, epochs=2, **FAST)
    assert result.cache.used  # the frozen body is cached
    trained = result.model
    new = trained.trainable_weights  # the new head; the frozen body pays no alpha term
    expected = 0.01 * sum(
        float(np.sum(np.asarray(keras.ops.convert_to_numpy(v)) ** 2)) for v in new
    )
    assert result.history["l2sp"][-1] == pytest.approx(expected, rel=1e-5)
    trained.save(tmp_path / "m.keras")  # plain Keras again: saves and loads
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert same_weights(weights_of(loaded), weights_of(trained))


class HeadSnapshots(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.out.append(weights_of(self.model.get_layer("out")))


def test_transferred_head_pays_alpha_in_the_cached_probe(data):
    model = mlp()
    start_out = weights_of(model.get_layer("out"))
    snaps = HeadSnapshots()
    strategy = tk.LinearProbeThenFineTune(regularizer=tk.L2SP(alpha=2.0, beta=5.0))
    result = tk.fine_tune(model, data, strategy=strategy, epochs=2, callbacks=[snaps], **FAST)
    assert result.phases[0].cache.used and not result.phases[1].cache.used
    # Only the pretrained head trained in the probe: alpha times its distance, no beta term.
    expected = 2.0 * _distance(snaps.out[0], start_out)
    assert result.history["l2sp"][0] == pytest.approx(expected, rel=1e-5) and expected > 0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tk.L2SP(alpha=-0.1), r"`alpha` must be a finite number >= 0.*alpha=-0.1"),
        (lambda: tk.L2SP(beta=float("nan")), r"`beta` must be .*beta=nan"),
        (lambda: tk.L2SP(alpha="1"), r"alpha='1'"),
    ],
)
def test_bad_strengths_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_regularizer_must_be_l2sp(data):
    with pytest.raises(TypeError, match="`regularizer` must be None or an `L2SP`"):
        tk.FullFineTune(regularizer=keras.regularizers.L2(0.1))


def test_resume_refuses_changed_l2sp(data, tmp_path):
    path = tmp_path / "runs.jsonl"
    model = mlp()
    kwargs = dict(train=data, validation=None, test=blobs(32, seed=1), epochs=1, seeds=1,
                  output=path, verbose=0)  # fmt: skip
    tk.compare_strategies(model, [tk.FullFineTune(regularizer=tk.L2SP(), label="s")], **kwargs)
    probe = TrainingProbe()
    changed = tk.FullFineTune(regularizer=tk.L2SP(alpha=0.5), label="s")
    with pytest.raises(ValueError, match="different configuration"):
        tk.compare_strategies(model, [changed], callbacks=[probe], **kwargs)
    assert probe.fits == 0
