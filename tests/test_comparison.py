"""`Comparison` and `RunRecord`: statistics against hand-computed values, exports and plots."""

from __future__ import annotations

import csv
import io
import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.figure  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from transferkit import CacheInfo, Comparison, RunRecord, SummaryRow  # noqa: E402
from transferkit.comparison._records import summarize, t95  # noqa: E402
from transferkit.metrics import metrics_from_predictions  # noqa: E402
from transferkit.timing import TrainingTiming  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def metrics_with_accuracy(correct: int, total: int = 50):
    """Metrics of a 2-class classifier that gets exactly `correct` of `total` right."""
    y_true = np.array([0, 1] * (total // 2))
    y_pred = y_true.copy()
    y_pred[: total - correct] = 1 - y_pred[: total - correct]
    return metrics_from_predictions(y_true, y_pred, num_classes=2, class_names=["a", "b"])


def record(strategy, seed, correct, seconds=1.0, epochs=2, history=None):
    history = history or {
        "loss": [1.0, 0.5],
        "accuracy": [0.6, 0.8],
        "val_loss": [1.1, 0.7],
        "val_accuracy": [0.55, 0.75],
    }
    timing = TrainingTiming(
        train_seconds=seconds,
        epoch_seconds=(seconds / 2 - 0.01, seconds / 2 - 0.01),
        samples_per_second=1000.0 / seconds,
        trainable_params=10,
        total_params=100,
    )
    return RunRecord(
        strategy=strategy,
        seed=seed,
        epochs=epochs,
        metrics=metrics_with_accuracy(correct),
        timing=timing,
        history=history,
        cache=CacheInfo(used=strategy == "partial", reason="because"),
    )


@pytest.fixture
def comparison():
    """full: accuracies 0.90, 0.92, 0.94 (3 seeds); partial: 0.80 (1 seed)."""
    runs = (
        record("full", 0, 45, seconds=3.0),
        record("full", 1, 46, seconds=4.0),
        record("full", 2, 47, seconds=5.0),
        record("partial", 0, 40, seconds=2.0),
    )
    return Comparison(runs=runs, config={"epochs": 2, "strategies": ["full", "partial"]})


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- statistics


def test_t_critical_values():
    assert t95(1) == 12.706
    assert t95(2) == 4.303
    assert t95(4) == 2.776
    assert t95(30) == 2.042
    assert t95(31) == 1.96
    assert math.isnan(t95(0))


def test_summary_against_hand_computed_values(comparison):
    rows = {(row.strategy, row.metric): row for row in comparison.summary()}
    full = rows[("full", "accuracy")]
    assert isinstance(full, SummaryRow)
    assert full.n == 3
    assert full.mean == pytest.approx(0.92, abs=1e-12)
    assert full.std == pytest.approx(0.02, abs=1e-12)  # ddof=1: sqrt((0.02^2 * 2) / 2)
    half = 4.303 * 0.02 / math.sqrt(3)
    assert full.ci95_low == pytest.approx(0.92 - half, abs=1e-12)
    assert full.ci95_high == pytest.approx(0.92 + half, abs=1e-12)
    # The population std (ddof=0) would be 0.01633; make sure it is not that.
    assert full.std != pytest.approx(np.std([0.90, 0.92, 0.94]))

    seconds = rows[("full", "train_seconds")]
    assert seconds.mean == pytest.approx(4.0) and seconds.std == pytest.approx(1.0)
    assert seconds.ci95_high - seconds.mean == pytest.approx(4.303 / math.sqrt(3))


def test_summary_with_one_run_has_zero_std_and_no_interval(comparison):
    rows = {(row.strategy, row.metric): row for row in comparison.summary()}
    partial = rows[("partial", "accuracy")]
    assert partial.n == 1 and partial.mean == pytest.approx(0.80)
    assert partial.std == 0.0
    assert math.isnan(partial.ci95_low) and math.isnan(partial.ci95_high)
    assert partial.to_dict()["ci95_low"] is None


def test_summary_order_and_metric_selection(comparison):
    rows = comparison.summary()
    default = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "train_seconds")
    assert [(r.strategy, r.metric) for r in rows] == [
        (s, m) for s in ("full", "partial") for m in default
    ]
    only = comparison.summary(metrics=("f1_macro",))
    assert [(r.strategy, r.metric) for r in only] == [("full", "f1_macro"), ("partial", "f1_macro")]
    f1 = [run.metrics.f1_macro for run in comparison.runs_of("full")]
    assert only[0].mean == pytest.approx(np.mean(f1))
    assert only[0].std == pytest.approx(np.std(f1, ddof=1))


def test_summarize_matches_numpy():
    values = [0.5, 0.61, 0.7, 0.66, 0.58]
    mean, std, low, high = summarize(values)
    assert mean == pytest.approx(np.mean(values))
    assert std == pytest.approx(np.std(values, ddof=1))
    assert high - mean == pytest.approx(2.776 * std / math.sqrt(5))
    assert mean - low == pytest.approx(high - mean)


def test_strategies_and_runs_of(comparison):
    assert comparison.strategies == ("full", "partial")
    assert [r.seed for r in comparison.runs_of("full")] == [0, 1, 2]
    assert comparison.runs_of("nope") == ()
    assert comparison.runs[0].value("accuracy") == pytest.approx(0.90)
    assert comparison.runs[0].value("train_seconds") == 3.0


# --------------------------------------------------------------------------- records


def test_run_record_round_trip(comparison):
    for run in comparison.runs:
        d = run.to_dict()
        text = json.dumps(d)
        back = RunRecord.from_dict(json.loads(text))
        assert back == run
        assert not back.resumed
        assert RunRecord.from_dict(d, resumed=True).resumed
        assert back.metrics.confusion_matrix == run.metrics.confusion_matrix


# --------------------------------------------------------------------------- exports


def test_to_json_round_trip_and_file(comparison, tmp_path):
    text = comparison.to_json()

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    data = json.loads(text, parse_constant=no_constants)  # no NaN/Infinity in the output
    assert data["config"] == comparison.config
    assert len(data["runs"]) == 4
    assert [RunRecord.from_dict(r) for r in data["runs"]] == list(comparison.runs)
    assert len(data["summary"]) == 2 * 5
    first = data["summary"][0]
    assert first["strategy"] == "full" and first["metric"] == "accuracy"
    assert first["mean"] == pytest.approx(0.92) and first["std"] == pytest.approx(0.02)

    path = tmp_path / "out" / "comparison.json"
    path.parent.mkdir()
    assert comparison.to_json(path) == text
    assert json.loads(path.read_text()) == data


def test_to_csv(comparison, tmp_path):
    text = comparison.to_csv()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert [(r["strategy"], int(r["seed"])) for r in rows] == [
        ("full", 0), ("full", 1), ("full", 2), ("partial", 0)
    ]  # fmt: skip
    assert [float(r["accuracy"]) for r in rows] == pytest.approx([0.90, 0.92, 0.94, 0.80])
    assert [float(r["train_seconds"]) for r in rows] == [3.0, 4.0, 5.0, 2.0]
    assert [r["cache_used"] for r in rows] == ["False", "False", "False", "True"]
    assert int(rows[0]["trainable_params"]) == 10 and int(rows[0]["epochs"]) == 2
    path = tmp_path / "runs.csv"
    assert comparison.to_csv(path) == text
    assert path.read_text() == text


def test_to_markdown(comparison):
    table = comparison.to_markdown()
    lead, detail = table.split("\n\n")
    assert lead.splitlines()[0].startswith("| strategy | n | test accuracy | validation accuracy |")
    assert len(lead.splitlines()) == 2 + 2 and "| trainable params |" in lead
    lines = detail.splitlines()
    assert lines[0] == "| strategy | runs | accuracy | f1_macro | train_seconds |"
    assert len(lines) == 2 + 2
    full = next(line for line in lines if line.startswith("| full |"))
    partial = next(line for line in lines if line.startswith("| partial |"))
    assert "| 3 |" in full and "0.9200 ± 0.0200" in full and "±" in full
    half = 4.303 * 0.02 / math.sqrt(3)
    assert f"[{0.92 - half:.4f}, {0.92 + half:.4f}]" in full
    assert "| 1 |" in partial and "0.8000" in partial and "±" not in partial
    assert str(comparison) == table


def test_to_pandas(comparison):
    pd = pytest.importorskip("pandas")
    frame = comparison.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 4
    assert list(frame["strategy"]) == ["full", "full", "full", "partial"]
    assert frame.groupby("strategy")["accuracy"].mean()["full"] == pytest.approx(0.92)
    assert frame.groupby("strategy")["accuracy"].std()["full"] == pytest.approx(0.02)


# --------------------------------------------------------------------------- plots


@pytest.mark.parametrize("plot", ["plot_history", "plot_tradeoff"])
def test_plots_write_png_and_return_a_figure(comparison, tmp_path, plot):
    path = tmp_path / "plots" / f"{plot}.png"
    figure = getattr(comparison, plot)(path)
    assert isinstance(figure, matplotlib.figure.Figure)
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_plot_history_has_a_panel_per_strategy_with_mean_curves(comparison):
    figure = comparison.plot_history(metric="accuracy")
    axes = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["full (n=3)", "partial (n=1)"]
    lines = axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["train accuracy", "val accuracy"]
    assert list(lines[0].get_ydata()) == pytest.approx([0.6, 0.8])


def test_plot_tradeoff_has_a_point_per_run_and_a_mean_per_strategy(comparison):
    figure = comparison.plot_tradeoff(metric="accuracy")
    (ax,) = figure.axes
    offsets = [np.asarray(c.get_offsets()) for c in ax.collections]
    runs, means = np.concatenate(offsets[0::2]), np.concatenate(offsets[1::2])
    assert sorted(map(tuple, np.round(runs, 6))) == [
        (2.0, 0.8), (3.0, 0.9), (4.0, 0.92), (5.0, 0.94)
    ]  # fmt: skip
    assert sorted(map(tuple, np.round(means, 6))) == [(2.0, 0.8), (4.0, 0.92)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["full", "partial"]
