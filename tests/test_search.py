"""The learning-rate search of `compare_strategies`, the winner as a model and as a strategy,
and `load_comparison` (issue 23)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import keras
import numpy as np
import pytest

import transferkit as tk
from transferkit import metrics as tkm
from transferkit.timing import TrainingTiming


def _model() -> keras.Model:
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu", name="body")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="head")(hidden))


def _data(n: int = 96, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)  # learnable: 3 classes
    return x, y


def _compare(strategies, model=None, **kwargs):
    x, y = _data(144)
    options = dict(
        train=(x[:64], y[:64]), validation=(x[64:104], y[64:104]), test=(x[104:], y[104:]),
        epochs=2, batch_size=16, verbose=0,
    )  # fmt: skip
    return tk.compare_strategies(model or _model(), strategies, **{**options, **kwargs})


def test_grid_trains_every_strategy_at_every_rate_and_seed() -> None:
    rates = [1e-3, 1e-2]
    comparison = _compare(["full", "feature_extractor"], learning_rates=rates, seeds=2)
    keys = [(r.strategy, r.learning_rate, r.seed) for r in comparison.runs]
    assert keys == [(s, lr, seed) for s in ("full", "feature_extractor") for lr in rates
                    for seed in (0, 1)]  # fmt: skip
    assert {r.strategy for r in comparison.runs} == {"full", "feature_extractor"}
    # the run trained at its rate: the phase record holds it
    assert all(r.phases[0].learning_rate == pytest.approx(r.learning_rate) for r in comparison.runs)
    assert comparison.config["learning_rates"] == {"full": rates, "feature_extractor": rates}


def test_auto_grid_searches_head_only_strategies_higher_and_keeps_a_fixed_rate() -> None:
    fixed = tk.FullFineTune(learning_rate=5e-4, label="fixed")
    comparison = _compare(["full", "feature_extractor", fixed], learning_rates="auto")
    grids = comparison.config["learning_rates"]
    assert grids["full"] == [3e-4, 1e-3, 3e-3]
    assert grids["feature_extractor"] == [1e-3, 3e-3, 1e-2, 3e-2]
    assert grids["fixed"] == [None]
    assert [r.learning_rate for r in comparison.runs_of("fixed", all_rates=True)] == [None]
    assert comparison.runs_of("fixed")[0].phases[0].learning_rate == pytest.approx(5e-4)


def test_each_strategy_is_chosen_at_its_best_mean_validation_rate() -> None:
    comparison = _compare(["full", "feature_extractor"], learning_rates=[1e-4, 3e-2], seeds=2)
    for strategy, chosen in comparison.chosen_rates().items():
        means = {}
        for rate in (1e-4, 3e-2):
            runs = [
                r for r in comparison.runs if r.strategy == strategy and r.learning_rate == rate
            ]
            means[rate] = np.mean([r.validation.accuracy for r in runs])
        assert chosen == max(means, key=lambda rate: (means[rate], -[1e-4, 3e-2].index(rate)))
        assert {r.learning_rate for r in comparison.runs_of(strategy)} == {chosen}
        summary = {row.metric: row for row in comparison.summary() if row.strategy == strategy}
        assert summary["accuracy"].n == 2  # the chosen rate's seeds only


def _record(strategy: str, rate: float, val_acc: float, test_acc: float) -> tk.RunRecord:
    """A run record whose validation and test accuracy are exactly `val_acc` and `test_acc`."""

    def metrics(acc: float) -> tkm.ClassificationMetrics:
        y_true = np.array([0, 1] * 50)
        y_pred = y_true.copy()
        y_pred[: round((1 - acc) * 100)] = 1 - y_pred[: round((1 - acc) * 100)]
        return tkm.metrics_from_predictions(y_true, y_pred)

    timing = TrainingTiming(
        train_seconds=1.0, epoch_seconds=(1.0,), samples_per_second=None,
        trainable_params=1, total_params=1,
    )  # fmt: skip
    return tk.RunRecord(
        strategy=strategy, seed=0, epochs=1, metrics=metrics(test_acc), timing=timing,
        history={}, validation=metrics(val_acc), learning_rate=rate,
    )  # fmt: skip


def test_the_choice_uses_validation_never_test_metrics() -> None:
    # At 1e-3 validation is best, at 1e-2 the test set is: the choice must follow validation,
    # for the rate and for the strategy.
    runs = (
        _record("a", 1e-3, val_acc=0.9, test_acc=0.5),
        _record("a", 1e-2, val_acc=0.6, test_acc=0.99),
        _record("b", 1e-3, val_acc=0.7, test_acc=0.98),
    )
    comparison = tk.Comparison(runs=runs)
    assert comparison.chosen_rates() == {"a": 1e-3, "b": 1e-3}
    assert comparison.best() == "a"
    assert comparison.best_run().learning_rate == 1e-3
    acc = {row.strategy: row.mean for row in comparison.summary() if row.metric == "accuracy"}
    assert acc["a"] == pytest.approx(0.5)  # the chosen run's test accuracy, not the best one


def test_a_search_without_validation_is_refused_before_training() -> None:
    x, y = _data()
    model = _model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="chooses each strategy's rate on validation data"):
        tk.compare_strategies(
            model, ["full"], train=(x, y), test=(x, y), learning_rates="auto", verbose=0
        )
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"learning_rates": [1e-3, -1e-3]}, "finite learning rates > 0"),
        ({"learning_rates": [1e-3, float("nan")]}, "finite learning rates > 0"),
        ({"learning_rates": [float("inf")]}, "finite learning rates > 0"),
        ({"learning_rates": []}, "non-empty list of learning rates"),
        ({"learning_rates": [1e-3, 1e-3]}, "repeats a rate"),
        ({"learning_rates": {"ful": [1e-3]}}, "Did you mean 'full'"),
        ({"learning_rates": {"full": []}}, "non-empty list"),
        ({"learning_rates": "automatic"}, 'must be None, "auto"'),
        ({"keep_models": "bset"}, "Did you mean 'best'"),
        ({"search": "halve", "learning_rates": [1e-3]}, "Did you mean 'halving'"),
    ],
)
def test_bad_search_settings_fail_before_training(options, match, tmp_path) -> None:
    log = tmp_path / "runs.jsonl"
    with pytest.raises(ValueError, match=match):
        _compare(["full"], output=log, **options)
    assert not log.exists()  # refused before the log was even created


def test_halving_trains_fewer_epochs_than_the_full_grid() -> None:
    rates = [1e-3, 3e-3, 1e-2, 3e-2]
    grid = _compare(["feature_extractor"], learning_rates=rates, epochs=9)
    halving = _compare(["feature_extractor"], learning_rates=rates, epochs=9, search="halving")
    assert sum(r.epochs for r in grid.runs) == 36
    assert [(r.rung, r.epochs) for r in halving.runs] == [(0, 1)] * 4 + [(1, 3)] * 2 + [(None, 9)]
    assert sum(r.epochs for r in halving.runs) == 19
    # the survivors of each rung are the best third on validation
    first = halving.runs[:4]
    best_two = sorted(first, key=lambda r: -r.validation.accuracy)[:2]
    assert {r.learning_rate for r in halving.runs[4:6]} == {r.learning_rate for r in best_two}
    (last,) = halving.runs_of("feature_extractor")
    assert halving.chosen_rates() == {"feature_extractor": last.learning_rate}


def test_strategy_of_best_reproduces_its_run() -> None:
    start = _model()
    comparison = _compare(["full", "lp_ft"], start, learning_rates=[1e-3, 1e-2], seeds=2)
    run = comparison.best_run()
    strategy = comparison.strategy(comparison.best())
    assert strategy.name == run.strategy
    assert strategy.learning_rate == run.learning_rate
    x, y = _data(144)
    again = tk.fine_tune(
        start, (x[:64], y[:64]), validation=(x[64:104], y[64:104]), strategy=strategy,
        epochs=2, batch_size=16, seed=run.seed, verbose=0,
    )  # fmt: skip
    for key, values in run.history.items():
        np.testing.assert_allclose(again.history[key], values, rtol=1e-5, atol=1e-6)


def test_every_label_best_returns_is_a_strategy() -> None:
    comparison = _compare(["lp_ft", tk.GradualUnfreeze(every=1)], learning_rates=[1e-3, 1e-2])
    for label in comparison.strategies:
        assert comparison.strategy(label).name == label
    with pytest.raises(ValueError, match=r"Did you mean 'lp_ft\(probe_epochs=1\)'"):
        comparison.strategy("lp_ft(probe_epochs=2)")


def test_kept_models_reload_in_a_keras_only_process(tmp_path) -> None:
    log = tmp_path / "runs.jsonl"
    comparison = _compare(["full", "feature_extractor"], learning_rates=[1e-3, 1e-2],
                          keep_models="all", output=log)  # fmt: skip
    files = sorted((tmp_path / "runs.models").glob("*.keras"))
    assert len(files) == 4  # every full-length run of the two strategies, one file each
    x, _ = _data(8, seed=1)
    np.save(tmp_path / "x.npy", x)
    best = comparison.model()
    expected = np.asarray(best.predict(x, verbose=0))
    path = comparison.kept[comparison.best_run().key]
    code = (
        "import sys, numpy as np, keras\n"
        "assert 'transferkit' not in sys.modules\n"
        f"m = keras.saving.load_model({str(path)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}),"
        " verbose=0))\n"
        "assert 'transferkit' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)


def test_keep_best_keeps_one_model_and_none_keeps_none(tmp_path) -> None:
    log = tmp_path / "runs.jsonl"
    best = _compare(["full", "feature_extractor"], seeds=2, output=log)
    assert list(best.kept) == [best.best_run().key]
    assert [p.name for p in (tmp_path / "runs.models").iterdir()] == [
        best.kept[best.best_run().key].name
    ]
    assert best.model().count_params() == _model().count_params()
    none = _compare(["full"], keep_models="none")
    assert none.kept == {}
    with pytest.raises(ValueError, match="was not kept"):
        none.model()


def test_load_comparison_round_trips_and_finds_kept_models(tmp_path) -> None:
    log, start = tmp_path / "runs.jsonl", _model()
    first = _compare(
        ["full", "lp_ft"], start, learning_rates=[1e-3, 1e-2], keep_models="all", output=log
    )
    before = log.read_bytes()
    again = tk.load_comparison(log)
    assert log.read_bytes() == before  # read only
    assert again.to_dict() == first.to_dict()
    assert again.chosen_rates() == first.chosen_rates()
    assert again.best() == first.best()
    assert set(again.kept) == set(first.kept)
    label = "lp_ft(probe_epochs=1)"
    assert again.strategy(label) == first.strategy(label)
    x, _ = _data(4)
    np.testing.assert_allclose(
        again.model("full").predict(x, verbose=0),
        first.model("full").predict(x, verbose=0),
        rtol=1e-6,
    )
    # a resumed comparison finds the same runs and models without training
    resumed = _compare(
        ["full", "lp_ft"], start, learning_rates=[1e-3, 1e-2], keep_models="all", output=log
    )
    assert all(r.resumed for r in resumed.runs)
    assert set(resumed.kept) == set(first.kept)


def test_load_comparison_refuses_foreign_and_damaged_files_unchanged(tmp_path) -> None:
    foreign = tmp_path / "notes.jsonl"
    foreign.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError, match="not a transferkit comparison log"):
        tk.load_comparison(foreign)
    assert foreign.read_text() == '{"hello": 1}\n'
    log = tmp_path / "runs.jsonl"
    _compare(["full"], output=log, keep_models="none")
    lines = log.read_text().splitlines()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join([lines[0], lines[1][:40], *lines[1:]]) + "\n")
    before = damaged.read_bytes()
    with pytest.raises(ValueError, match="line 2 is not a complete run record"):
        tk.load_comparison(damaged)
    assert damaged.read_bytes() == before


def test_a_rate_of_a_searched_run_is_its_own_field_and_label_stays() -> None:
    comparison = _compare([tk.LinearProbeThenFineTune(probe_epochs=1)], learning_rates=[1e-3, 1e-2])
    labels = {r.strategy for r in comparison.runs}
    assert labels == {"lp_ft(probe_epochs=1)"}
    record = replace(comparison.runs[0])
    assert record.to_dict()["learning_rate"] == record.learning_rate
    assert tk.RunRecord.from_dict(record.to_dict()) == record


def test_soup_of_a_strategy_averages_its_kept_models() -> None:
    comparison = _compare(["full"], seeds=2, keep_models="all", learning_rates=[1e-3, 1e-2])
    models = [comparison.model("full", seed=s) for s in (0, 1)]  # the chosen rate's two seeds
    kept = [comparison.kept[r.key] for r in comparison.runs]
    assert len(kept) == 4  # every seed at every rate
    souped = comparison.soup("full")
    everything = [np.mean([m.get_weights()[i] for m in map(tk.comparison._models.load, kept)],
                          axis=0) for i in range(len(models[0].get_weights()))]  # fmt: skip
    for got, want in zip(souped.get_weights(), everything, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="No model of 'full' was kept"):
        _compare(["full"], keep_models="none").soup("full")
