"""One activation pass per comparison: strategies and phases with the same frozen activations
share one cached array, and longer prefixes extend a shorter one's; training is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import transferkit as tk
from _train_helpers import images, leaf_weights, split, tiny_cnn
from transferkit import FeatureCache, FeatureExtractor, PartialFreeze
from transferkit.metrics import evaluate

CLOSE = {"rtol": 1e-4, "atol": 1e-5}
FAST = {"epochs": 2, "batch_size": 16, "seed": 0, "verbose": 0}
# tiny_cnn leaves: conv(0) pool(1) flatten(2) dense(3) out(4); conv+pool give 4x4x4 = 64 floats


@pytest.fixture(scope="module")
def data():
    x, y = images(96, classes=3, seed=1)
    return split(x, y, 64, 32)


def _same_training(a: tk.FitResult, b: tk.FitResult) -> None:
    assert set(a.history) == set(b.history)
    for key in a.history:
        assert np.allclose(a.history[key], b.history[key], **CLOSE), key
    for u, v in zip(leaf_weights(a.model), leaf_weights(b.model), strict=True):
        assert all(np.allclose(p, q, **CLOSE) for p, q in zip(u, v, strict=True))


def test_partial_and_feature_extractor_share_one_pass_in_a_comparison(data):
    train, validation = data
    strategies = [PartialFreeze(upto=2), FeatureExtractor(cut="flatten")]
    comparison = tk.compare_strategies(
        tiny_cnn(), strategies, train=train, validation=validation, test=validation, epochs=2,
        batch_size=16, seeds=[0], verbose=0,
    )  # fmt: skip
    first, second = (run.cache for run in comparison.runs)
    assert first.used and not first.shared and first.seconds > 0
    assert second.used and second.shared and second.seconds == 0.0
    assert first.feature_shape == second.feature_shape == (64,)
    # The second strategy trains as it does on its own, without any cache.
    model = tiny_cnn()
    alone = tk.fine_tune(model, train, validation=validation, strategy=strategies[1], **FAST)
    assert alone.cache.used and not alone.cache.shared
    assert all(
        np.allclose(comparison.runs[1].history[k], alone.history[k], **CLOSE) for k in alone.history
    )


@pytest.mark.parametrize("strategy", ["lp_ft", "gradual"])
def test_multi_phase_recipes_reuse_the_shared_activations(data, strategy):
    train, validation = data
    model = tiny_cnn()
    store = FeatureCache()
    tk.fine_tune(model, train, validation=validation, strategy=PartialFreeze(upto=2),
                 cache=store, **FAST)  # fmt: skip
    assert len(store.entries) == 1
    kwargs = dict(validation=validation, strategy=strategy, **{**FAST, "epochs": 3})
    shared = tk.fine_tune(model, train, cache=store, **kwargs)
    # The probe / head phase freezes conv..dense: its activations come from the cached
    # conv+pool(+flatten) ones through the frozen dense layer, not from the images.
    head = shared.phases[0].cache
    assert head.used and head.prefix_layers == 4 and head.feature_shape == (8,)
    assert "from the cached activations of the first 3" in head.reason
    assert len(store.entries) == 2 and store.nbytes == 96 * (64 + 8) * 4
    if strategy == "gradual":  # its next stage freezes conv+pool: exactly the shared array
        middle = shared.phases[1].cache
        assert middle.used and middle.shared and middle.seconds == 0.0
    _same_training(shared, tk.fine_tune(model, train, cache=False, **kwargs))
    _same_training(shared, tk.fine_tune(model, train, cache=FeatureCache(), **kwargs))


def test_a_comparison_scores_cached_runs_as_their_models_score(monkeypatch):
    """Validation metrics of cached runs come from the cached validation activations, through
    the trained remainder: they are the numbers the kept models give on the images."""
    from transferkit.comparison import _runner

    inputs = []  # the shape of each evaluated input, in order: test, validation per run
    spy = lambda model, x, *a, **k: inputs.append(x.shape[1:]) or evaluate(model, x, *a, **k)  # noqa: E731
    monkeypatch.setattr(_runner, "evaluate", spy)
    x, y = images(160, classes=3, seed=2)
    train, validation, test = split(x, y, 64, 48, 48)
    strategies = [PartialFreeze(upto=2), FeatureExtractor(cut="flatten"), "full"]
    comparison = tk.compare_strategies(
        tiny_cnn(), strategies, train=train, validation=validation, test=test, epochs=2,
        batch_size=16, seeds=[0], verbose=0, keep_models="all",
    )  # fmt: skip
    partial, extractor, full = comparison.runs
    assert partial.cache.used and extractor.cache.shared and not full.cache.used
    image, features = x.shape[1:], (64,)
    assert inputs == [image, features, image, features, image, image]
    for run in comparison.runs:
        model = comparison.model(run.strategy, seed=0)
        for data, recorded in ((test, run.metrics), (validation, run.validation)):
            again = evaluate(model, *data)
            assert again.confusion_matrix == recorded.confusion_matrix, run.strategy
            assert np.isclose(again.f1_macro, recorded.f1_macro), run.strategy
