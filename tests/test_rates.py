"""Per-layer learning rates: `LayerRates`, `lr_mult` and `layer_decay` on phases and strategies.

Exactness is checked on one SGD step (one batch), where a layer with multiplier m must move by
m times its unscaled step and a layer with multiplier 0 must not move at all; on each backend
(JAX through its stateless optimizer path, PyTorch through its fused one).
"""

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
    leaf_weights,
    mlp,
    same_weights,
    tiny_cnn,
    weights_of,
)
from transferkit.strategies._rates import block_multipliers

# mlp leaves: h1(0) h2(1) out(2); blocks=[1, 2] makes each its own block.
BLOCKS = [1, 2]
FAST = {"verbose": 0, "seed": 0, "jit_compile": False}


@pytest.fixture(scope="module")
def data():
    return blobs(64, dim=8, classes=3, seed=0)


def _step(model, data, strategy, optimizer):
    """One SGD/Adam step on the whole batch; the start and end leaf weights."""
    start = leaf_weights(model)
    result = tk.fine_tune(
        model, data, strategy=strategy, epochs=1, batch_size=len(data[0]), optimizer=optimizer,
        **FAST,
    )  # fmt: skip
    return start, leaf_weights(result.model), result


def _assert_scaled(start, plain, scaled, factor):
    for w0, a, b in zip(start, plain, scaled, strict=True):
        if factor == 0:
            assert same_weights([b], [w0])  # frozen by rate: bit-identical
            continue
        ulp = 4 * float(np.spacing(np.abs(w0).max()))  # a few float32 ulps of the weights
        np.testing.assert_allclose(b - w0, factor * (a - w0), rtol=1e-5, atol=ulp)
        assert not np.array_equal(b, w0)


@pytest.fixture(scope="module")
def plain_sgd_step(data):
    model = mlp()
    start, plain, _ = _step(model, data, tk.FullFineTune(), keras.optimizers.SGD(0.1))
    return model, start, plain


@pytest.mark.parametrize(
    "rates, user, factors",
    [
        ({"layer_decay": 0.5}, None, [0.25, 0.5, 1.0]),
        ({"layer_decay": 0.0}, None, [0.0, 0.0, 1.0]),
        ({"lr_mult": 16.0}, None, [1 / 16, 1 / 4, 1.0]),
        ({"layer_decay": 0.5}, {"h1": 0.0, "out": 2.0}, [0.0, 0.5, 2.0]),  # rates multiply
    ],
)
def test_sgd_step_scales_exactly_per_block(data, plain_sgd_step, rates, user, factors):
    model, start, plain = plain_sgd_step
    weights, flags = weights_of(model), flags_of(model)
    rated = tk.FullFineTune(blocks=BLOCKS, **rates)
    sgd = keras.optimizers.SGD(0.1)
    optimizer = sgd if user is None else tk.LayerRates(sgd, user)
    _, scaled, result = _step(model, data, rated, optimizer)
    for block, factor in enumerate(factors):
        _assert_scaled(start[block], plain[block], scaled[block], factor)
    groups = result.model.optimizer.groups  # the user's SGD, one copy per multiplier
    assert all(type(g).__name__ == "SGD" for g in groups)
    if keras.backend.backend() == "torch":  # each copy runs Keras's fused PyTorch update
        assert all(type(g).__module__.endswith("torch_sgd") for g in groups)
    assert_untouched(model, weights, flags)


def test_layer_rates_optimizer_scales_any_layer_and_skips_zero(data):
    x, y = data
    results = []
    for multipliers in ({}, {"h1": 0.0, "h2": 3.0, "out/bias": 0.5}):
        keras.utils.set_random_seed(0)
        model = mlp()
        start = weights_of(model)
        opt = tk.LayerRates(keras.optimizers.SGD(0.05), multipliers)
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
        results.append(weights_of(model))
    plain, scaled = results
    for w0, a, b, factor in zip(start, plain, scaled, [0, 0, 3, 3, 1, 0.5], strict=True):
        _assert_scaled([w0], [a], [b], factor)


def test_adam_smaller_multiplier_moves_the_layer_less(data):
    model = mlp()
    adam = keras.optimizers.Adam(0.01)
    start, plain, _ = _step(model, data, tk.FullFineTune(), adam)
    _, rated, _ = _step(model, data, tk.FullFineTune(lr_mult=10.0, blocks=BLOCKS), adam)

    def moved(weights, block):
        return sum(
            float(np.abs(w - s).sum()) for w, s in zip(weights[block], start[block], strict=True)
        )

    # Adam's first step is about lr * sign(g): its size scales with the rate, not the gradient.
    assert moved(rated, 0) == pytest.approx(0.1 * moved(plain, 0), rel=0.02)
    assert moved(rated, 1) == pytest.approx(10**-0.5 * moved(plain, 1), rel=0.02)
    assert moved(rated, 0) < moved(rated, 1) < moved(plain, 1)
    assert moved(rated, 2) == pytest.approx(moved(plain, 2), rel=1e-5)


def test_save_load_and_resume_training_match_uninterrupted(data, tmp_path):
    x, y = data
    keras.utils.set_random_seed(0)
    model = mlp()
    start_h2 = weights_of(model.get_layer("h2"))
    model.compile(
        optimizer=tk.LayerRates(keras.optimizers.Adam(0.01), {"h1": 0.1, "h2": 0.0}),
        loss="sparse_categorical_crossentropy",
    )
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, tk.LayerRates)
    assert loaded.optimizer.multipliers == {"h1": 0.1, "h2": 0.0}
    assert same_weights(
        [np.asarray(v) for v in loaded.optimizer.variables],
        [np.asarray(v) for v in model.optimizer.variables],
    )
    for m in (model, loaded):
        m.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(weights_of(model), weights_of(loaded), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert same_weights(weights_of(loaded.get_layer("h2")), start_h2)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 8


def test_learning_rate_and_schedules_scale_per_group():
    model = mlp()
    opt = tk.LayerRates(keras.optimizers.SGD(0.1), {"h1": 0.5})
    opt.build(model.trainable_variables)
    assert [float(g.learning_rate) for g in opt.groups] == pytest.approx([0.05, 0.1])
    opt.learning_rate = 0.2  # as ReduceLROnPlateau does
    assert float(opt.learning_rate) == pytest.approx(0.2)
    assert [float(g.learning_rate) for g in opt.groups] == pytest.approx([0.1, 0.2])
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    opt = tk.LayerRates(keras.optimizers.SGD(schedule), {"h1": 0.5})
    opt.build(model.trainable_variables)
    assert [float(g.learning_rate) for g in opt.groups] == pytest.approx([0.05, 0.1])
    back = tk.LayerRates.from_config(opt.get_config())
    back.build(mlp().trainable_variables)
    assert [float(g.learning_rate) for g in back.groups] == pytest.approx([0.05, 0.1])


def test_recipes_and_phases_carry_the_rates():
    model = tiny_cnn()  # blocks: conv, pool | flatten, dense | out
    assert tk.resolve_strategy("discriminative") == tk.LinearProbeThenFineTune(
        lr_mult=100.0, label="discriminative"
    )
    assert tk.resolve_strategy("layer_decay") == tk.FullFineTune(
        layer_decay=0.75, label="layer_decay"
    )
    probe, tune = tk.resolve_strategy("discriminative").phases(model, epochs=3)
    assert (probe.lr_mult, tune.lr_mult, tune.lr_scale) == (None, 100.0, 0.5)
    head, *rest = tk.GradualUnfreeze(layer_decay=0.5).phases(model, epochs=3)
    assert head.layer_decay is None and all(p.layer_decay == 0.5 for p in rest)
    assert tk.GradualUnfreeze(lr_mult=10.0).name == "gradual(every=1, lr_mult=10.0)"
    assert tk.FullFineTune(layer_decay=0.5).to_dict()["layer_decay"] == 0.5


def test_cnn_blocks_are_the_pooling_stages_and_the_head():
    model = tiny_cnn()  # blocks: conv, pool | flatten, dense | out
    rates = block_multipliers(model, lr_mult=100.0, layer_decay=None)
    assert rates == pytest.approx({
        "tiny_cnn/conv/kernel": 0.01, "tiny_cnn/conv/bias": 0.01,
        "tiny_cnn/dense/kernel": 0.1, "tiny_cnn/dense/bias": 0.1,
        "tiny_cnn/out/kernel": 1.0, "tiny_cnn/out/bias": 1.0,
    })  # fmt: skip


def test_discriminative_recipe_probes_on_the_cache_then_trains_with_rates(data):
    result = tk.fine_tune(mlp(), data, strategy="discriminative", epochs=2, **FAST)
    probe, tune = result.phases
    assert probe.cache.used and not tune.cache.used
    assert tune.learning_rate == pytest.approx(0.0005)  # Adam's default, halved
    assert result.model.optimizer.multipliers == pytest.approx({
        "mlp/h1/kernel": 0.01, "mlp/h1/bias": 0.01, "mlp/h2/kernel": 0.01,
        "mlp/h2/bias": 0.01, "mlp/out/kernel": 1.0, "mlp/out/bias": 1.0,
    })  # fmt: skip


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tk.Phase(lr_mult=-1.0), r"`lr_mult` must be a finite number > 0.*lr_mult=-1.0"),
        (lambda: tk.Phase(lr_mult=0), r"`lr_mult` must be .*lr_mult=0"),
        (lambda: tk.FullFineTune(lr_mult=float("inf")), r"lr_mult=inf"),
        (lambda: tk.Phase(layer_decay=-0.1), r"`layer_decay` must be .*layer_decay=-0.1"),
        (lambda: tk.FullFineTune(layer_decay=1.5), r"between 0 and 1.*layer_decay=1.5"),
        (lambda: tk.Phase(layer_decay="0.5"), r"layer_decay='0.5'"),
        (lambda: tk.FullFineTune(lr_mult=2.0, layer_decay=0.5), r"either `lr_mult` or"),
        (lambda: tk.GradualUnfreeze(blocks=[1]), r"pass `boundaries` instead"),
        (lambda: tk.LayerRates(keras.optimizers.SGD(), {"h1": -0.5}), r"multipliers\['h1'\]"),
        (lambda: tk.LayerRates(tk.LayerRates(keras.optimizers.SGD(), {}), {}), r"not a wrapper"),
    ],
)
def test_bad_settings_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_layer_rates_needs_an_optimizer_instance():
    with pytest.raises(TypeError, match="`optimizer` must be a `keras.optimizers.Optimizer`"):
        tk.LayerRates("sgd", {})


@pytest.mark.parametrize(
    "strategy",
    [tk.PartialFreeze(upto=-1, lr_mult=10.0), tk.FullFineTune(layer_decay=0.5, blocks=[0])],
)
def test_rates_where_only_the_head_trains_fail_before_training(data, strategy):
    model = mlp()
    weights, flags = weights_of(model), flags_of(model)
    probe = TrainingProbe()
    with pytest.raises(ValueError, match="only one block trains"):
        tk.fine_tune(model, data, strategy=strategy, epochs=1, callbacks=[probe], **FAST)
    assert probe.fits == 0
    assert_untouched(model, weights, flags)


def test_resume_refuses_a_changed_lr_mult(data, tmp_path):
    path = tmp_path / "runs.jsonl"
    train, test = data, blobs(32, seed=1)
    kwargs = dict(
        train=train, validation=None, test=test, epochs=1, seeds=1, output=path, verbose=0
    )
    first = tk.FullFineTune(lr_mult=10.0, blocks=BLOCKS, label="rated")
    model = mlp()
    tk.compare_strategies(model, [first], **kwargs)
    header = path.read_text().splitlines()[0]
    assert '"lr_mult": 10.0' in header
    probe = TrainingProbe()
    changed = tk.FullFineTune(lr_mult=100.0, blocks=BLOCKS, label="rated")
    with pytest.raises(ValueError, match="different configuration"):
        tk.compare_strategies(model, [changed], callbacks=[probe], **kwargs)
    assert probe.fits == 0
