"""Multi-phase strategies: which weights move in which phase, scratch, early stopping, choice.

Every test trains a tiny CNN on 8x8 images for a few epochs, on each backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pytest

import transferkit as tk
from _train_helpers import (
    TopLayersOnly,
    assert_untouched,
    flags_of,
    images,
    leaf_weights,
    same_weights,
    tiny_cnn,
    weights_of,
)

# tiny_cnn leaves: conv(0) pool(1) flatten(2) dense(3) out(4)
FAST = {"verbose": 0, "batch_size": 16, "jit_compile": False}


class EpochSnapshots(keras.callbacks.Callback):
    """Leaf weights of the model the callback sees, at the end of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[list[list[np.ndarray]]] = []
        self.input_shapes: list[Any] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epochs.append(leaf_weights(self.model))
        self.input_shapes.append(tuple(self.model.input_shape))


@pytest.fixture(scope="module")
def data():
    return images(64, classes=3, seed=0)


def _frozen_up_to(snapshot, start, k) -> bool:
    return all(same_weights(a, b) for a, b in zip(snapshot[:k], start[:k], strict=True))


def test_lp_ft_probe_moves_only_the_head_then_everything_moves(data):
    model = tiny_cnn()
    start, weights, flags = leaf_weights(model), weights_of(model), flags_of(model)
    snaps = EpochSnapshots()
    result = tk.fine_tune(
        model, data, strategy=tk.LinearProbeThenFineTune(probe_epochs=2), epochs=3, seed=0,
        learning_rate=0.01, callbacks=[snaps], **FAST,
    )  # fmt: skip
    probe, tune = result.phases
    assert (probe.name, probe.epochs, tune.name, tune.epochs) == ("probe", 2, "fine_tune", 1)
    assert probe.learning_rate == pytest.approx(0.01) and tune.learning_rate == pytest.approx(0.005)
    assert probe.cache.used and not tune.cache.used  # the probe trains on cached features
    assert result.history["phase"] == [0.0, 0.0, 1.0]
    assert snaps.input_shapes == [(None, 8, 8, 1)] * 3  # callbacks see the full model
    for epoch in (0, 1):  # the body is bit-identical during the probe, the head moves
        assert _frozen_up_to(snaps.epochs[epoch], start, 4)
        assert not same_weights(snaps.epochs[epoch][4], start[4])
    assert not same_weights(snaps.epochs[2][0], start[0])  # the conv moves when fine-tuning
    assert result.epochs == 3 and len(result.timing.epoch_seconds) == 3
    assert sum(p.seconds for p in result.phases) <= result.timing.train_seconds + 1e-6
    assert_untouched(model, weights, flags)


def test_gradual_unfreezes_one_block_per_phase(data):
    model = tiny_cnn()
    start = leaf_weights(model)
    snaps = EpochSnapshots()
    result = tk.fine_tune(
        model, data, strategy="gradual", epochs=4, seed=1, learning_rate=0.01,
        callbacks=[snaps], **FAST,
    )  # fmt: skip
    assert [p.name for p in result.phases] == ["head", "unfreeze1", "unfreeze2"]
    assert [p.epochs for p in result.phases] == [1, 1, 2]
    trainable = [p.trainable_params for p in result.phases]
    assert trainable[0] < trainable[1] < trainable[2] == sum(w.size for w in weights_of(model))
    # phase 0 freezes conv..dense (4 leaves), phase 1 conv and pool (2), phase 2 nothing
    assert _frozen_up_to(snaps.epochs[0], start, 4)
    assert _frozen_up_to(snaps.epochs[1], start, 2) and not _frozen_up_to(snaps.epochs[1], start, 4)
    assert not same_weights(snaps.epochs[3][0], start[0])


def test_gradual_named_boundaries_and_bad_ones():
    model = tiny_cnn()
    phases = tk.GradualUnfreeze(boundaries=["flatten"], every=2).phases(model, epochs=5)
    assert [(p.freeze_upto, p.epochs) for p in phases] == [(4, 2), (3, 2), (0, 1)]
    with pytest.raises(ValueError, match="No leaf layer named 'flaten'.*'flatten'"):
        tk.fine_tune(model, images(16), strategy=tk.GradualUnfreeze(boundaries=["flaten"]))
    with pytest.raises(ValueError, match="needs at least 3 epochs. Received: epochs=2"):
        tk.fine_tune(model, images(16), strategy="gradual", epochs=2)


def test_one_phase_strategies_give_exactly_the_same_training(data):
    """`PartialFreeze`, a custom strategy without `phases`, and an explicit one-phase
    strategy train identically (same seed, same batches, same updates)."""

    @dataclass(frozen=True)
    class ExplicitPhase(TopLayersOnly):
        def phases(self, model: Any, epochs: int) -> tuple[tk.Phase, ...]:
            return (tk.Phase(freeze_upto=3),)

    kwargs = dict(epochs=2, seed=3, cache=False, **FAST)
    model = tiny_cnn()
    a = tk.fine_tune(model, data, strategy=tk.PartialFreeze(upto=3), **kwargs)
    b = tk.fine_tune(model, data, strategy=TopLayersOnly(n=2), **kwargs)
    c = tk.fine_tune(model, data, strategy=ExplicitPhase(n=5), **kwargs)
    for other in (b, c):
        assert other.history == a.history
        assert same_weights(weights_of(other.model), weights_of(a.model))
    assert [p.name for p in b.phases] == ["phase0"]


def test_scratch_reinitialises_reproducibly(data):
    model = tiny_cnn(bn=False)
    start, flags = weights_of(model), flags_of(model)
    one = tk.fine_tune(model, data, strategy="scratch", epochs=1, seed=5, **FAST)
    two = tk.fine_tune(model, data, strategy=tk.Scratch(), epochs=1, seed=5, **FAST)
    other = tk.fine_tune(model, data, strategy="scratch", epochs=1, seed=6, **FAST)
    assert same_weights(weights_of(one.model), weights_of(two.model))
    assert not same_weights(weights_of(one.model), weights_of(other.model))
    kernel = np.asarray(keras.ops.convert_to_numpy(one.model.get_layer("conv").kernel))
    assert not np.allclose(kernel, start[0], atol=0.05)  # far from the pretrained start
    assert one.phases[0].trainable_params == sum(int(np.prod(w.shape)) for w in start)
    assert_untouched(model, start, flags)


def test_scratch_redraws_batchnorm_statistics():
    model = tiny_cnn(bn=True)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 3.0, "float32"))  # "pretrained" statistics
    fresh = tk.Scratch().prepare(tk.copy_model(model))
    mean = keras.ops.convert_to_numpy(fresh.get_layer("bn").moving_mean)
    assert np.array_equal(mean, np.zeros(4, "float32"))


class _AllFrozen(TopLayersOnly):
    def phases(self, model: Any, epochs: int) -> tuple[tk.Phase, ...]:
        return (tk.Phase(freeze_upto=None, epochs=1), tk.Phase(freeze_upto=5, epochs=1))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: tk.Phase(epochs=0), "`epochs` must be a positive int. Received: epochs=0"),
        (lambda: tk.Phase(lr_scale=0), "`lr_scale` must be a positive number"),
        (lambda: tk.Phase(learning_rate=-0.05), "`learning_rate` must be a finite number > 0"),
        (lambda: tk.LinearProbeThenFineTune(probe_epochs=0), "`epochs` must be a positive int"),
        (lambda: tk.GradualUnfreeze(every=0), "`epochs` must be a positive int"),
        (lambda: tk.GradualUnfreeze(boundaries="flatten"), "`boundaries` must be a list"),
        (lambda: tk.FullFineTune(learning_rate=float("nan")), "`learning_rate` must be"),
    ],
)
def test_bad_phase_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"strategy": _AllFrozen(n=1), "epochs": 2}, r"Phase 1 \('phase1'\).*nothing to train"),
        ({"strategy": "lp_ft", "epochs": 1}, "needs more epochs than its 1 probe epoch"),
        ({"strategy": tk.LinearProbeThenFineTune(cut=5)}, "nothing would train"),
        ({"learning_rate": -0.05}, "`learning_rate` must be a finite number > 0"),
        ({"early_stopping": 2}, "'val_loss', which needs validation data"),
        ({"early_stopping": 0}, "must be at least 1"),
        ({"early_stopping": keras.callbacks.EarlyStopping("val_auc")}, "does not log"),
    ],
)
def test_bad_settings_fail_before_training(kwargs, match):
    model = tiny_cnn()
    weights, flags = weights_of(model), flags_of(model)
    with pytest.raises(ValueError, match=match):
        tk.fine_tune(model, images(16), **{"verbose": 0, **kwargs})
    assert_untouched(model, weights, flags)


def test_early_stopping_records_and_restores_the_best_epoch(data):
    snaps = EpochSnapshots()
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=1, min_delta=100.0, restore_best_weights=True
    )  # nothing counts as an improvement after the first epoch
    result = tk.fine_tune(
        tiny_cnn(), data, validation=data, strategy="lp_ft", epochs=6, seed=0,
        early_stopping=stop, callbacks=[snaps], **FAST,
    )  # fmt: skip
    probe, tune = result.phases
    assert (probe.epochs, probe.best_epoch, probe.stopped_epoch) == (1, 1, None)
    assert (tune.epochs, tune.best_epoch, tune.stopped_epoch) == (2, 2, 3)
    assert result.epochs == 3 and result.history["phase"] == [0.0, 1.0, 1.0]
    assert (result.best_epoch, result.stopped_epoch) == (2, 3)
    # the weights kept are those at the end of epoch 2 (index 1), not epoch 3's
    final = leaf_weights(result.model)
    assert all(same_weights(a, b) for a, b in zip(final, snaps.epochs[1], strict=True))
    assert not same_weights(final[0], snaps.epochs[2][0])


def test_checkpoint_saves_the_full_model_with_the_cache(data, tmp_path):
    path = tmp_path / "best.keras"
    result = tk.fine_tune(
        tiny_cnn(), data, strategy="feature_extractor", epochs=2, seed=0,
        callbacks=[keras.callbacks.ModelCheckpoint(path)], **FAST,
    )  # fmt: skip
    assert result.cache.used
    loaded = keras.saving.load_model(path)
    assert tuple(loaded.input_shape) == (None, 8, 8, 1)
    expected = result.model.predict(data[0], verbose=0)
    np.testing.assert_allclose(loaded.predict(data[0], verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_comparison_with_scratch_gains_and_choice_on_validation(data, tmp_path):
    train, val = (data[0][:48], data[1][:48]), (data[0][48:], data[1][48:])
    log = tmp_path / "runs.jsonl"
    kwargs = dict(
        train=train, validation=val, test=val, epochs=2, seeds=2, batch_size=24, verbose=0,
        learning_rate=0.01, output=log, jit_compile=False,
    )  # fmt: skip
    model = tiny_cnn()
    comparison = tk.compare_strategies(model, ["scratch", "lp_ft", "full"], **kwargs)
    gains = {r.strategy: r for r in comparison.gains()}
    assert set(gains) == {"lp_ft(probe_epochs=1)", "full"}
    for name, row in gains.items():
        diffs = [
            a.metrics.accuracy - b.metrics.accuracy
            for a, b in zip(comparison.runs_of(name), comparison.runs_of("scratch"), strict=True)
        ]
        assert row.n == 2 and row.mean == pytest.approx(np.mean(diffs))
    assert "accuracy_gain_vs_scratch" in comparison.to_markdown()
    assert {r.metric for r in comparison.summary()} >= {"accuracy_gain_vs_scratch"}
    best = comparison.best()
    mean_val = {
        s: np.mean([r.validation.accuracy for r in comparison.runs_of(s)])
        for s in comparison.strategies
    }
    assert mean_val[best] == max(mean_val.values())
    lp_ft = comparison.runs_of("lp_ft(probe_epochs=1)")[0]
    assert [p.name for p in lp_ft.phases] == ["probe", "fine_tune"]
    # the second seed's probe reuses the activations the first seed's probe computed
    second = comparison.runs_of("lp_ft(probe_epochs=1)")[1].phases[0].cache
    assert lp_ft.phases[0].cache.used and not lp_ft.phases[0].cache.shared
    assert second.used and second.shared and second.seconds == 0.0
    # resume: same settings read back; other phase settings refused
    again = tk.compare_strategies(model, ["scratch", "lp_ft", "full"], **kwargs)
    assert all(run.resumed for run in again.runs)
    assert again.runs_of("lp_ft(probe_epochs=1)")[0].phases == lp_ft.phases
    with pytest.raises(ValueError, match="configuration|differ"):
        tk.compare_strategies(
            model,
            ["scratch", tk.LinearProbeThenFineTune(probe_epochs=1, lr_scale=0.25), "full"],
            **kwargs,
        )


def test_best_needs_validation(data):
    comparison = tk.compare_strategies(
        tiny_cnn(), ["feature_extractor"], train=data, validation=None, test=data, epochs=1,
        verbose=0, jit_compile=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="chooses on validation results"):
        comparison.best()
