"""`Comparison`: the runs of `compare_strategies`, their summary statistics and exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .._validate import did_you_mean
from ..strategies._resolve import strategy_from_dict, with_learning_rate
from ..strategies._strategy import Strategy
from ..types import Model
from ..weights._soup import soup
from ._models import load
from ._records import BASELINE, SUMMARY_METRICS, RunKey, RunRecord, SummaryRow, summary_row
from ._search import best_rates, mean_validation


@dataclass(frozen=True)
class Comparison:
    """All runs of a strategy comparison, with summaries, exports and plots.

    With a learning-rate search (`compare_strategies(learning_rates=...)`) each strategy is
    summarised, compared and chosen at its own rate, the one with the best mean validation
    accuracy (`chosen_rates()`); `runs` still holds every run.

    Attributes:
        runs: One `RunRecord` per strategy, seed and learning rate, in the order they ran.
        config: The comparison's configuration (strategies, epochs, batch size, data shapes,
            and with a search each strategy's grid).
        kept: The trained models `keep_models` kept, by run key (in memory or `.keras`
            files); `model()` returns them.
        strategy_objects: The strategies by label, as passed (`strategy()` rebuilds them from
            `config` when absent, e.g. for a comparison read back by `load_comparison`).

    Example:
    ```python
    import tempfile
    from pathlib import Path

    import keras
    import numpy as np
    from transferkit import compare_strategies

    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    rng = np.random.default_rng(0)
    x, y = rng.random((48, 8), dtype="float32"), rng.integers(0, 3, 48)
    comparison = compare_strategies(
        model, ["full", "feature_extractor"], train=(x[:32], y[:32]), validation=None,
        test=(x[32:], y[32:]), epochs=1, seeds=2, verbose=0,
    )
    assert comparison.strategies == ("full", "feature_extractor")
    assert [row.n for row in comparison.summary()] == [2] * 10
    assert "feature_extractor" in comparison.to_markdown()
    page = comparison.to_html(Path(tempfile.mkdtemp()) / "report.html").read_text()
    assert "<table" in page
    ```
    """

    runs: tuple[RunRecord, ...]
    config: dict[str, Any] = field(default_factory=dict)
    kept: Mapping[RunKey, Any] = field(default_factory=dict, repr=False, compare=False)
    strategy_objects: Mapping[str, Strategy] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def strategies(self) -> tuple[str, ...]:
        """Strategy names in order of first appearance."""
        return tuple(dict.fromkeys(run.strategy for run in self.runs))

    @cached_property
    def _chosen(self) -> dict[str, float | None]:
        chosen: dict[str, float | None] = {}
        for strategy in self.strategies:
            full = [r for r in self.runs if r.strategy == strategy and r.rung is None]
            rates = list(dict.fromkeys(r.learning_rate for r in full))
            chosen[strategy] = best_rates(full, rates, 1)[0] if len(rates) > 1 else rates[0]
        return chosen

    def chosen_rates(self) -> dict[str, float | None]:
        """Each strategy's learning rate with the best mean validation accuracy over its seeds
        (`None`: the strategy was not searched). Test metrics never take part."""
        return dict(self._chosen)

    def runs_of(self, strategy: str, *, all_rates: bool = False) -> tuple[RunRecord, ...]:
        """The runs of one strategy at its chosen rate (`all_rates=True`: every run of it)."""
        if all_rates:
            return tuple(run for run in self.runs if run.strategy == strategy)
        rate = self._chosen.get(strategy)
        return tuple(
            run
            for run in self.runs
            if run.strategy == strategy and run.rung is None and run.learning_rate == rate
        )

    @property
    def chosen_runs(self) -> tuple[RunRecord, ...]:
        """Every strategy's runs at its chosen rate (all runs when nothing was searched)."""
        return tuple(run for s in self.strategies for run in self.runs_of(s))

    def rate_text(self, strategy: str) -> str:
        """`"3e-03 of [1e-03, 3e-03, 1e-02]"`: a strategy's chosen rate and its grid."""
        grid = (self.config.get("learning_rates") or {}).get(strategy) or [None]
        rate = self._chosen.get(strategy)
        if len(grid) < 2:
            return "not searched" if rate is None else f"{rate:.0e}"
        return f"{rate:.0e} of [{', '.join(f'{r:.0e}' for r in grid)}]"

    def _check_label(self, label: str | None) -> str:
        """`label`, or the best strategy when None; raises if it names no strategy."""
        label = self.best() if label is None else label
        if label not in self.strategies:
            raise ValueError(
                f"{label!r} is not a strategy of this comparison. Strategies: "
                f"{list(self.strategies)}.{did_you_mean(label, self.strategies)}"
            )
        return label

    def best_run(self, label: str | None = None) -> RunRecord:
        """The run of `label` (default: `best()`) at its chosen rate with the best validation
        accuracy: the run whose model `model()` returns by default."""
        label = self._check_label(label)
        return max(self.runs_of(label), key=lambda run: mean_validation([run]))

    def strategy(self, label: str) -> Strategy:
        """The strategy behind `label`, at its chosen learning rate, to train again.

        `fine_tune(model, train, strategy=comparison.strategy(comparison.best()), seed=...)`
        with the comparison's settings and a run's seed reproduces that run.

        Raises:
            ValueError: If `label` is not a strategy of this comparison, or a strategy of a
                comparison read back from a log cannot be rebuilt (a user-defined class).
        """
        self._check_label(label)
        strategy = self.strategy_objects.get(label)
        if strategy is None:
            configs = {d.get("name"): d for d in self.config.get("strategies", [])}
            strategy = strategy_from_dict(configs.get(label, {"name": label}))
        rate = self._chosen.get(label)
        return strategy if rate is None else with_learning_rate(strategy, rate)

    def model(self, label: str | None = None, seed: int | None = None) -> Model:
        """A kept trained model: `label`'s run at its chosen rate, best-validation seed first.

        Without arguments, the best strategy's best-validation seed (`best_run()`).

        Raises:
            ValueError: If `label` is unknown, or that run's model was not kept (pass
                `keep_models="all"` to `compare_strategies` to keep every run's).
        """
        if seed is None:
            run = self.best_run(label)
        else:
            label = self._check_label(label)
            runs = {r.seed: r for r in self.runs_of(label)}  # one run per seed at the chosen rate
            if seed not in runs:
                raise ValueError(f"{label!r} has no run with seed {seed}. Seeds: {sorted(runs)}.")
            run = runs[seed]
        if run.key not in self.kept:
            raise ValueError(
                f"The model of {run.strategy!r} (seed {run.seed}) was not kept. Kept: "
                f"{len(self.kept)} model(s). Pass `keep_models='all'` to `compare_strategies` "
                "to keep every run's model."
            )
        return load(self.kept[run.key])

    def summary(self, metrics: Sequence[str] = SUMMARY_METRICS) -> tuple[SummaryRow, ...]:
        """Mean, std and 95% CI per strategy and metric (`ClassificationMetrics` fields or
        `"train_seconds"`), strategy-major; with a `"scratch"` run, the gains over it too."""
        rows = []
        for strategy in self.strategies:
            runs = self.runs_of(strategy)
            for metric in metrics:
                rows.append(summary_row(strategy, metric, [run.value(metric) for run in runs]))
        if BASELINE in self.strategies and metrics == SUMMARY_METRICS:
            rows.extend(self.gains())
        return tuple(rows)

    def gains(self, baseline: str = BASELINE, metric: str = "accuracy") -> tuple[SummaryRow, ...]:
        """Each strategy's test `metric` minus `baseline`'s, paired by seed, with its 95% CI.

        With `"scratch"` (the from-scratch control) as the baseline, a negative gain is
        negative transfer. Rows are named `"<metric>_gain_vs_<baseline>"`.

        Raises:
            ValueError: If `baseline` is not a strategy of this comparison.
        """
        if baseline not in self.strategies:
            raise ValueError(
                f"`baseline` must be a strategy of this comparison, one of {self.strategies}. "
                f"Received: baseline={baseline!r}"
            )
        base = {run.seed: run.value(metric) for run in self.runs_of(baseline)}
        rows = []
        for s in self.strategies:
            diffs = [r.value(metric) - base[r.seed] for r in self.runs_of(s) if r.seed in base]
            if s != baseline and diffs:
                rows.append(summary_row(s, f"{metric}_gain_vs_{baseline}", diffs))
        return tuple(rows)

    def soup(
        self, label: str | None = None, *, method: str = "uniform", validation: Any = None
    ) -> Model:
        """`transferkit.soup` of the kept models of `label` (default: `best()`): all its
        seeds and rates. Keep them with `compare_strategies(..., keep_models="all")`.

        Raises:
            ValueError: If none of its models was kept, and as `transferkit.soup`.
        """
        label = self._check_label(label)
        keys = [r.key for r in self.runs_of(label, all_rates=True) if r.key in self.kept]
        if not keys:
            raise ValueError(
                f"No model of {label!r} was kept: pass `keep_models='all'` to "
                "`compare_strategies` to soup its seeds and rates."
            )
        return soup([load(self.kept[key]) for key in keys], method=method, validation=validation)

    def best(self, metric: str = "accuracy") -> str:
        """The strategy with the highest mean *validation* `metric` (never the test set's).

        Raises:
            ValueError: If the runs have no validation metrics (pass `validation=` to
                `compare_strategies`), or `metric` is not a metric.
        """
        if not self.runs or any(run.validation is None for run in self.runs):
            raise ValueError(
                "`best` chooses on validation results, and these runs have none: pass "
                "`validation=(x_val, y_val)` to `compare_strategies`. (Choosing on the test set "
                "would make its numbers optimistic.)"
            )
        if not hasattr(self.runs[0].validation, metric):
            raise ValueError(f"Unknown `metric`. Received: metric={metric!r}")

        return max(self.strategies, key=lambda s: mean_validation(self.runs_of(s), metric))

    def to_dict(self) -> dict[str, Any]:
        """Config, runs and summary as one JSON-serialisable dict."""
        return {
            "config": self.config,
            "runs": [run.to_dict() for run in self.runs],
            "summary": [row.to_dict() for row in self.summary()],
        }

    def to_json(self, path: str | Path | None = None, *, indent: int = 2) -> str:
        """The comparison as JSON text; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """One CSV row per run (strategy, seed, headline metrics, timing); also to `path`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([
            "strategy", "seed", "epochs", "accuracy", "precision_macro", "recall_macro",
            "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
            "train_seconds", "seconds_per_epoch", "samples_per_second",
            "trainable_params", "total_params", "cache_used", "learning_rate", "rung",
        ])  # fmt: skip
        for run in self.runs:
            m, t = run.metrics, run.timing
            writer.writerow([
                run.strategy, run.seed, run.epochs, m.accuracy, m.precision_macro,
                m.recall_macro, m.f1_macro, m.precision_weighted, m.recall_weighted,
                m.f1_weighted, t.train_seconds, t.seconds_per_epoch, t.samples_per_second,
                t.trainable_params, t.total_params, run.cache.used, run.learning_rate, run.rung,
            ])  # fmt: skip
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_markdown(
        self, metrics: Sequence[str] = ("accuracy", "f1_macro", "train_seconds")
    ) -> str:
        """Markdown: the HTML report's table (one row per strategy: test and validation
        accuracy, F1, gain, time, parameters, ★ on `best()`, chosen rates), then a table of
        `mean ± std [95% CI]` per strategy and metric of `metrics`."""
        from ._report import lead_rows

        header, rows = lead_rows(self)
        lead = [f"| {' | '.join(row)} |" for row in [header, ["---"] * len(header), *rows]]
        summary = {(r.strategy, r.metric): r for r in self.summary(metrics)}
        metrics = list(metrics)
        if BASELINE in self.strategies:  # the gain over the from-scratch control, per seed
            summary.update({(r.strategy, r.metric): r for r in self.gains()})
            metrics.append(f"accuracy_gain_vs_{BASELINE}")
        grids = self.config.get("learning_rates") or {}
        rate_column = ["learning rate (chosen of grid)"] if grids else []
        head = "| strategy | runs | " + " | ".join(rate_column + metrics) + " |"
        lines = [head, "|" + "---|" * (len(metrics) + len(rate_column) + 2)]
        for strategy in self.strategies:
            cells = [_markdown_cell(summary.get((strategy, metric)), metric) for metric in metrics]
            if grids:
                cells.insert(0, self.rate_text(strategy))
            lines.append(f"| {strategy} | {len(self.runs_of(strategy))} | {' | '.join(cells)} |")
        return "\n".join(lead) + "\n\n" + "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def to_pandas(self) -> Any:
        """One row per run as a `pandas.DataFrame` (needs pandas installed).

        Raises:
            ImportError: If pandas is not installed (the message says how to install it).
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                "`Comparison.to_pandas` needs pandas: `pip install pandas`. "
                "`to_csv`, `to_json` and `to_markdown` need nothing extra."
            ) from err
        return pd.read_csv(io.StringIO(self.to_csv()))

    def to_html(self, path: str | Path, *, title: str = "Strategy comparison") -> Path:
        """Writes one self-contained HTML report of the comparison, to hand in.

        The file holds the summary table (mean ± std and 95% confidence interval per
        strategy and metric), the per-run table, the training curves and the accuracy
        against training time plot as inline images, the machine that wrote it, the
        configuration and the command line. It needs no other file. Without matplotlib the
        report has the tables and a note on installing the `plot` extra instead of plots.

        Args:
            path: str or Path. The HTML file to write (overwritten; parent folders are
                created).
            title: str. The report's heading. Defaults to `"Strategy comparison"`.

        Returns:
            The path written, as a `Path`.

        Raises:
            ValueError: If `path` is a folder, or the comparison has no runs.
        """
        from ._report import write_html  # lazily, as the plots: it is needed only here

        return write_html(self, path, title=title)

    def plot_history(self, path: str | Path | None = None, *, metric: str = "accuracy") -> Any:
        """Train and validation `metric` per epoch for each strategy (mean over seeds).

        Needs matplotlib (`pip install transferkit[plot]`). Returns the figure; saves it to
        `path` when given.
        """
        from ._plots import plot_history

        return plot_history(self.chosen_runs, path, metric=metric)

    def plot_tradeoff(self, path: str | Path | None = None, *, metric: str = "accuracy") -> Any:
        """Test `metric` against training time, one point per run, means marked.

        Needs matplotlib (`pip install transferkit[plot]`). Returns the figure; saves it to
        `path` when given.
        """
        from ._plots import plot_tradeoff

        return plot_tradeoff(self.chosen_runs, path, metric=metric)


def _markdown_cell(row: SummaryRow | None, metric: str) -> str:
    """`mean ± std [95% CI]` of a summary row: the mean alone for one run, `—` for none."""
    if row is None:
        return "—"
    digits = 1 if metric == "train_seconds" else 4
    cell = f"{row.mean:.{digits}f}"
    if row.n < 2:
        return cell
    return f"{cell} ± {row.std:.{digits}f} [{row.ci95_low:.{digits}f}, {row.ci95_high:.{digits}f}]"
