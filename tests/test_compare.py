"""`compare_strategies`: same start for every run, per-strategy settings, resumable output."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import transferkit as tk
from _train_helpers import (
    Recording,
    TopLayersOnly,
    TrainingProbe,
    assert_untouched,
    blobs,
    flags_of,
    mlp,
    same_weights,
    split,
    weights_of,
)
from transferkit import FeatureExtractor, FullFineTune, PartialFreeze


def data():
    """Train 96, validation 32, test 64 samples of learnable 3-class blobs."""
    x, y = blobs(192)
    return split(x, y, 96, 32, 64)


def run_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- runs


def test_strategies_train_their_own_epochs_and_custom_strategies_work(capsys):
    train, validation, test = data()
    model = mlp()
    strategies = [
        FullFineTune(),
        PartialFreeze(upto=1),
        FeatureExtractor(epochs=3),
        FeatureExtractor(learning_rate=0.01, label="fe_fast"),  # same prefix: shared cache
        TopLayersOnly(n=2),  # a custom strategy: no transferkit base class
    ]
    comparison = tk.compare_strategies(
        model, strategies, train=train, validation=validation, test=test, epochs=2,
        batch_size=32, seeds=1, verbose=0,
    )  # fmt: skip
    assert capsys.readouterr().out == ""  # verbose=0 prints nothing
    assert isinstance(comparison, tk.Comparison)
    names = ["full", "partial(upto=1)", "feature_extractor", "fe_fast", "top2"]
    assert comparison.strategies == tuple(names)
    assert [run.strategy for run in comparison.runs] == names
    assert [run.seed for run in comparison.runs] == [0] * 5
    assert [run.epochs for run in comparison.runs] == [2, 2, 3, 2, 2]
    for run in comparison.runs:
        assert len(run.history["loss"]) == run.epochs
        assert len(run.history["val_accuracy"]) == run.epochs
        assert len(run.timing.epoch_seconds) == run.epochs
        assert run.metrics.num_samples == 64
        assert 0.0 <= run.metrics.accuracy <= 1.0
        assert not run.resumed
    by_name = {run.strategy: run for run in comparison.runs}
    assert by_name["top2"].timing.trainable_params == 78 + 21
    assert by_name["feature_extractor"].timing.trainable_params == 21
    assert by_name["full"].timing.trainable_params == 108 + 78 + 21
    assert by_name["full"].cache.used is False
    assert by_name["partial(upto=1)"].cache.used is True
    assert by_name["feature_extractor"].cache.shared is False
    assert by_name["fe_fast"].cache.shared is True
    assert comparison.config["epochs"] == 2
    assert [s["name"] for s in comparison.config["strategies"][:4]] == names[:4]
    assert comparison.config["strategies"][4] == TopLayersOnly(n=2).to_dict()
    for run in comparison.runs:  # metrics are consistent with their confusion matrix
        matrix = np.array(run.metrics.confusion_matrix)
        assert matrix.sum() == 64
        assert run.metrics.accuracy == pytest.approx(np.trace(matrix) / 64)


def test_every_run_starts_from_the_same_weights_and_the_callers_model_is_untouched(capsys):
    train, validation, test = data()
    model = mlp()
    tk.freeze(model, 1)  # the caller's own flags
    start, flags = weights_of(model), flags_of(model)
    strategies = [
        Recording(FullFineTune()),
        Recording(PartialFreeze(upto=2)),
        Recording(FeatureExtractor()),
    ]
    comparison = tk.compare_strategies(
        model, strategies, train=train, validation=validation, test=test, epochs=1, seeds=2,
        verbose=1,
    )  # fmt: skip
    assert [s.calls for s in strategies] == [2, 2, 2]
    for strategy in strategies:
        for received in strategy.received:
            assert same_weights(received, start)
    assert_untouched(model, start, flags)
    assert len(comparison.runs) == 6
    assert [(r.strategy, r.seed) for r in comparison.runs] == [
        (name, seed) for name in ("full", "partial(upto=2)", "feature_extractor")
        for seed in (0, 1)
    ]  # fmt: skip
    # Seeds change the runs (shuffling), so the seeds are really different runs.
    full = comparison.runs_of("full")
    assert full[0].history["loss"] != full[1].history["loss"]

    # One progress line per run, naming the strategy and the seed.
    lines = [line for line in capsys.readouterr().out.splitlines() if "test accuracy" in line]
    assert len(lines) == 6
    for i, run in enumerate(comparison.runs):
        assert f"{run.strategy} seed={run.seed}" in lines[i]
        assert f"[{i + 1}/6]" in lines[i]
        assert f"{run.metrics.accuracy:.4f}" in lines[i]


def test_model_factory_is_called_once():
    train, _, test = data()
    calls = []

    def factory():
        calls.append(1)
        return mlp()

    comparison = tk.compare_strategies(
        factory, ["feature_extractor"], train=train, validation=None, test=test, epochs=1,
        verbose=0,
    )  # fmt: skip
    assert len(calls) == 1
    assert len(comparison.runs) == 1
    assert "val_loss" not in comparison.runs[0].history


# --------------------------------------------------------------------------- output and resume


def test_output_file_and_resume_with_more_seeds(tmp_path, capsys):
    train, _, test = data()
    model = mlp()
    path = tmp_path / "runs.jsonl"
    kwargs = dict(train=train, validation=None, test=test, epochs=1, output=path)
    first_strategies = [Recording(FullFineTune()), Recording(FeatureExtractor())]
    first = tk.compare_strategies(model, first_strategies, seeds=1, verbose=0, **kwargs)
    assert [s.calls for s in first_strategies] == [1, 1]
    lines = run_lines(path)
    assert len(lines) == 3
    assert lines[0]["kind"] == "header" and lines[0]["epochs"] == 1
    assert [line["kind"] for line in lines[1:]] == ["run", "run"]
    assert [(line["strategy"], line["seed"]) for line in lines[1:]] == [
        ("full", 0),
        ("feature_extractor", 0),
    ]
    assert tk.RunRecord.from_dict(lines[1]) == first.runs[0]

    strategies = [Recording(FullFineTune()), Recording(FeatureExtractor())]
    second = tk.compare_strategies(model, strategies, seeds=2, verbose=1, **kwargs)
    assert [s.calls for s in strategies] == [1, 1]  # only seed 1 trained
    assert [(r.strategy, r.seed, r.resumed) for r in second.runs] == [
        ("full", 0, True),
        ("full", 1, False),
        ("feature_extractor", 0, True),
        ("feature_extractor", 1, False),
    ]
    for old, new in ((first.runs[0], second.runs[0]), (first.runs[1], second.runs[2])):
        assert new.metrics == old.metrics
        assert new.history == old.history
        assert new.timing == old.timing
        assert new.cache == old.cache
    out = capsys.readouterr().out
    assert len(re.findall(r"resumed from .*runs\.jsonl", out)) == 2
    assert len(re.findall(r"seed=1: test accuracy", out)) == 2
    lines = run_lines(path)
    assert len(lines) == 5 and [line["kind"] for line in lines].count("header") == 1

    # A third call has nothing left to train.
    again = [Recording(FullFineTune()), Recording(FeatureExtractor())]
    third = tk.compare_strategies(model, again, seeds=2, verbose=0, **kwargs)
    assert [s.calls for s in again] == [0, 0]
    assert all(run.resumed for run in third.runs)
    assert [run.metrics for run in third.runs] == [run.metrics for run in second.runs]


def test_interruption_loses_no_finished_run_and_a_partial_line_is_tolerated(tmp_path):
    train, _, test = data()
    model = mlp()
    path = tmp_path / "runs.jsonl"
    strategies = ["full", "partial", "feature_extractor"]
    kwargs = dict(train=train, validation=None, test=test, epochs=1, output=path, verbose=0)
    probe = TrainingProbe(interrupt_on_fit=3)
    with pytest.raises(KeyboardInterrupt):
        tk.compare_strategies(model, strategies, callbacks=[probe], **kwargs)
    assert probe.fits == 3
    lines = run_lines(path)
    assert [line["kind"] for line in lines] == ["header", "run", "run"]
    assert [line["strategy"] for line in lines[1:]] == ["full", "partial"]

    with open(path, "a") as f:  # a write cut off mid-line
        f.write('{"kind": "run", "strategy": "feature_extractor", "se')

    probe = TrainingProbe()
    with warnings.catch_warnings(record=True) as caught:  # the cut-off line is moved aside
        warnings.simplefilter("always")
        comparison = tk.compare_strategies(model, strategies, callbacks=[probe], **kwargs)
    assert any("moved to" in str(w.message) for w in caught)
    assert probe.fits == 1  # only the interrupted run
    assert [run.resumed for run in comparison.runs] == [True, True, False]
    assert [run.strategy for run in comparison.runs] == strategies
    lines = run_lines(path)  # every line parses: the partial one was dropped
    assert [line["kind"] for line in lines] == ["header"] + ["run"] * 3
    assert path.read_text().endswith("\n")


def test_output_from_a_different_configuration_is_refused(tmp_path):
    train, validation, test = data()
    model = mlp()
    path = tmp_path / "runs.jsonl"
    kwargs = dict(train=train, validation=validation, test=test, seeds=1, output=path, verbose=0)
    tk.compare_strategies(model, ["feature_extractor"], epochs=1, **kwargs)
    content = path.read_text()
    probe = TrainingProbe()
    for change in (
        {"epochs": 2},
        {"epochs": 1, "batch_size": 8},
        {"epochs": 1, "learning_rate": 0.1},
        {"epochs": 1, "test": (test[0] + 1.0, test[1])},
    ):
        args = {**kwargs, **change}
        with pytest.raises(ValueError, match="different configuration"):
            tk.compare_strategies(model, ["feature_extractor"], callbacks=[probe], **args)
    other_start = tk.copy_model(model)
    other_start.set_weights([w + 0.01 for w in model.get_weights()])
    with pytest.raises(ValueError, match="different configuration"):
        tk.compare_strategies(other_start, ["feature_extractor"], epochs=1, callbacks=[probe],
                              **kwargs)  # fmt: skip
    with pytest.raises(ValueError, match="different configuration"):
        tk.compare_strategies(model, ["feature_extractor", "full"], epochs=1,
                              callbacks=[probe], **kwargs)  # fmt: skip
    assert probe.fits == 0
    assert path.read_text() == content  # the file is left as it was

    other = tmp_path / "notes.jsonl"
    other.write_text('{"hello": "world"}\n')
    with pytest.raises(ValueError, match="not a transferkit comparison log"):
        tk.compare_strategies(model, ["feature_extractor"], epochs=1, callbacks=[probe],
                              **{**kwargs, "output": other})  # fmt: skip
    assert probe.fits == 0


# --------------------------------------------------------------------------- bad input


def _bad_cases():
    train, validation, test = data()
    (x, y), (xt, yt) = train, test
    nan_x = x.copy()
    nan_x[0, 0] = np.nan
    return [
        ("empty", {"strategies": []}, "empty"),
        ("a_string", {"strategies": "full"}, "list of strategies"),
        ("duplicates", {"strategies": ["full", "full"]}, "duplicates"),
        ("same_name", {"strategies": [PartialFreeze(upto=2), "partial:2"]}, "duplicates"),
        ("unknown", {"strategies": ["full", "partail"]}, "Known strategy names"),
        ("bad_boundary", {"strategies": [PartialFreeze(upto=12)]}, "between"),
        ("test_none", {"test": None}, "`test` is required"),
        ("seeds_0", {"seeds": 0}, "seeds"),
        ("seeds_empty", {"seeds": []}, "seeds"),
        ("seeds_repeat", {"seeds": [1, 1]}, "repeat"),
        ("epochs_0", {"epochs": 0}, "epochs"),
        ("batch_size_0", {"batch_size": 0}, "batch_size"),
        ("train_labels", {"train": (x, np.where(y == 1, 5, y))}, r"`train` labels must be in"),
        ("test_labels", {"test": (xt, np.where(yt == 1, 3, yt))}, r"`test` labels must be in"),
        ("val_labels", {"validation": (validation[0], validation[1] - 1)}, "labels must be in"),
        ("lengths", {"train": (x, y[:-3])}, "same number of samples"),
        ("test_lengths", {"test": (xt[:5], yt)}, "same number of samples"),
        ("nan", {"train": (nan_x, y)}, "NaN or infinite"),
        ("test_nan", {"test": (nan_x, y)}, "NaN or infinite"),
        ("shape", {"train": (x[:, :5], y)}, "expects"),
    ]


@pytest.mark.parametrize(
    ("change", "match"), [c[1:] for c in _bad_cases()], ids=[c[0] for c in _bad_cases()]
)
def test_bad_input_is_rejected_before_training(change, match, tmp_path):
    train, validation, test = data()
    model = mlp()
    start, flags = weights_of(model), flags_of(model)
    probe = TrainingProbe()
    args = dict(
        strategies=["full", "feature_extractor"], train=train, validation=validation,
        test=test, epochs=1, seeds=1, callbacks=[probe], verbose=0,
        output=tmp_path / "runs.jsonl",
    )  # fmt: skip
    args.update(change)
    strategies = args.pop("strategies")
    with pytest.raises(ValueError, match=match):
        tk.compare_strategies(model, strategies, **args)
    assert probe.fits == 0
    assert_untouched(model, start, flags)
    assert not (tmp_path / "runs.jsonl").exists()


def test_not_a_model(tmp_path):
    train, validation, test = data()
    calls = []

    def factory():
        calls.append(None)
        return "model"

    probe, output = TrainingProbe(), tmp_path / "runs.jsonl"
    common = dict(train=train, validation=validation, test=test, epochs=1, verbose=0,
                  callbacks=[probe], output=output)  # fmt: skip
    expected = r"`model` must be a built `keras\.Model` or a zero-argument factory returning one\."
    with pytest.raises(TypeError, match=expected + " Received: str$"):
        tk.compare_strategies(factory, ["full"], **common)
    assert len(calls) == 1  # the factory is called once
    with pytest.raises(TypeError, match=expected + " Received: NoneType$"):
        tk.compare_strategies(None, ["full"], **common)  # neither a model nor callable
    assert probe.fits == 0 and not output.exists()


def test_a_feature_cache_with_a_memory_budget_is_respected():
    train, validation, test = data()
    common = dict(train=train, validation=validation, test=test, epochs=1, batch_size=16)
    starved = tk.compare_strategies(
        mlp(),
        ["feature_extractor"],
        cache=tk.FeatureCache(budget_bytes=0, spill=False),
        verbose=0,
        **common,
    )
    (run,) = starved.runs
    assert run.cache.used is False
    assert "over the cache's memory budget of 0 MiB" in run.cache.reason
    store = tk.FeatureCache()
    roomy = tk.compare_strategies(mlp(), ["feature_extractor"], cache=store, verbose=0, **common)
    assert roomy.runs[0].cache.used is True
    assert store.nbytes == roomy.runs[0].cache.nbytes > 0  # the caller's store holds them


@pytest.mark.parametrize("verbose", [3, -1, "yes", True])
def test_bad_verbose_is_refused_before_training(verbose):
    train, _, test = data()
    model = mlp()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r'`verbose` must be 0, 1, 2 or "auto"'):
        tk.compare_strategies(model, ["full"], train=train, test=test, verbose=verbose)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_validation_and_verbose_default_like_fine_tune(capsys):
    train, _, test = data()
    comparison = tk.compare_strategies(mlp(), ["full"], train=train, test=test, epochs=1)
    assert comparison.runs[0].validation is None  # no validation data given
    assert "[1/1]" in capsys.readouterr().out  # "auto": the overall progress lines
