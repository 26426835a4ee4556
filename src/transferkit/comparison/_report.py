"""`Comparison.to_html`: one self-contained HTML report of a comparison, to hand in."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
import re
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..timing import machine_info
from ._records import ComparisonView, metric_bounds, summarize

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 72em;
       color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.note { background: #fff6d5; padding: 0.6em; }
"""

_NUMERIC = re.compile(r"^[-+\[\d–]")
"""Cells right-aligned in the tables: numbers, intervals and the dash of a missing value."""

RUN_COLUMNS = [
    *("strategy", "seed", "accuracy", "macro F1", "train seconds", "epochs", "cache"),
    "resumed",  # read back from the `output` log: trained by an earlier command than this one
    "learning rate",  # with a learning-rate search, the run's rate ("–": not searched)
]

PLOTS = (
    ("plot_history", "Training curves: train and validation accuracy per epoch (mean over seeds)"),
    ("plot_tradeoff", "Test accuracy against training time: a point per run, a cross per mean"),
)
"""The `Comparison` plot methods embedded in the report, with the image's alt text."""


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _cell(text: str) -> str:
    align = ' class="num"' if _NUMERIC.match(text) else ""
    return f"<td{align}>{html.escape(text)}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], css_id: str) -> str:
    """An HTML table; every header and cell is escaped here."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f'<table id="{css_id}">\n<tr>{head}</tr>\n{body}\n</table>'


def _summary_cell(row: dict[str, Any], key: str) -> str:
    digits = 2 if row["metric"] == "train_seconds" else 4
    if key == "mean":
        return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}"
    if key == "ci95_low":
        low, high = row["ci95_low"], row["ci95_high"]
        return "–" if low is None else f"[{low:.{digits}f}, {high:.{digits}f}]"
    return _number(row[key], digits)


def _summary_table(comparison: ComparisonView) -> str:
    """Every field of every `SummaryRow`, in order; mean ± std and the 95% CI each one cell."""
    rows = [row.to_dict() for row in comparison.summary()]
    names = {"mean": "mean ± std", "ci95_low": "95% CI"}
    keys = [key for key in rows[0] if key not in ("std", "ci95_high")]
    cells = [[_summary_cell(row, key) for key in keys] for row in rows]
    return _table([names.get(key, key) for key in keys], cells, "summary")


def _mean_ci(values: Sequence[float], metric: str, digits: int = 4) -> str:
    """`0.9123 [0.9001, 0.9245]`: mean and clipped 95% CI (– for one value or none)."""
    if not values:
        return "–"
    mean, _, low, high = summarize(values, metric_bounds(metric))
    if math.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def lead_rows(comparison: ComparisonView) -> tuple[list[str], list[list[str]]]:
    """The header and one row per strategy: what a reader compares first (HTML and Markdown)."""
    try:
        chosen = comparison.best()
    except ValueError:  # no validation metrics: nothing was chosen
        chosen = None
    gains = {r.strategy: r for r in comparison.summary() if "_gain_vs_" in r.metric}
    searched = bool(comparison.config.get("learning_rates"))
    header = ["strategy", "n", *(["learning rate"] if searched else [])]
    header += ["test accuracy", "validation accuracy", "macro F1", "gain over scratch"]
    header += ["train seconds", "trainable params"]
    rows = []
    for strategy in comparison.strategies:
        runs = comparison.runs_of(strategy)
        rows.append([
            f"★ {strategy}" if strategy == chosen else strategy,
            str(len(runs)),
            *([comparison.rate_text(strategy)] if searched else []),
            _mean_ci([r.metrics.accuracy for r in runs], "accuracy"),
            _mean_ci([r.validation.accuracy for r in runs if r.validation is not None], "accuracy"),
            _mean_ci([r.metrics.f1_macro for r in runs], "f1_macro"),
            _mean_ci_row(gains[strategy]) if strategy in gains else "–",
            _mean_ci([r.timing.train_seconds for r in runs], "train_seconds", 1),
            f"{max(r.timing.trainable_params for r in runs):,}",
        ])  # fmt: skip
    return header, rows


def _mean_ci_row(row: Any) -> str:
    if row.n < 2 or row.ci95_low is None or math.isnan(row.ci95_low):
        return f"{row.mean:+.4f}"
    return f"{row.mean:+.4f} [{row.ci95_low:+.4f}, {row.ci95_high:+.4f}]"


def _rates_section(comparison: ComparisonView) -> list[str]:
    """With a learning-rate search: each strategy's chosen rate and the grid it came from."""
    if not comparison.config.get("learning_rates"):
        return []
    search = comparison.config.get("search", "grid")
    rows = [[s, comparison.rate_text(s)] for s in comparison.strategies]
    return [
        "<h2>Learning rates</h2>",
        f"<p>Each strategy trained at every rate of its grid ({html.escape(str(search))} "
        "search); the summary shows it at the rate with the best mean validation accuracy "
        "over its seeds. Every run is listed below.</p>",
        _table(["strategy", "learning rate (chosen of grid)"], rows, "rates"),
    ]


def _runs_table(comparison: ComparisonView) -> str:
    rows = [
        [
            run.strategy,
            str(run.seed),
            _number(run.metrics.accuracy),
            _number(run.metrics.f1_macro),
            _number(run.timing.train_seconds, 2),
            str(run.epochs),
            "used" if run.cache.used else "not used",
            _number(run.resumed),
            "–" if run.learning_rate is None else f"{run.learning_rate:g}",
        ]
        for run in comparison.runs
    ]
    return _table(RUN_COLUMNS, rows, "runs")


def _png(figure: Any, close: Callable[[Any], None]) -> str:
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    finally:
        close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(comparison: ComparisonView) -> str:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return (
            '<p class="note">The plots need matplotlib: <code>pip install '
            "transferkit[plot]</code>, then write the report again.</p>"
        )
    images = []
    for method, alt in PLOTS:
        data = _png(getattr(comparison, method)(), plt.close)
        images.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
    return "\n".join(images)


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def render_html(comparison: ComparisonView, *, title: str) -> str:
    """The report as one HTML document (images inline, no external files)."""
    if not comparison.runs:
        raise ValueError("The comparison has no runs: there is nothing to report.")
    written = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    meta = (
        f"{len(comparison.strategies)} strategies × {len({r.seed for r in comparison.runs})} "
        f"seed(s), {len(comparison.runs)} runs. Written {written} by transferkit {__version__}."
    )
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(meta)}</p>',
        "<h2>Strategies</h2>",
        "<p>One row per strategy, at its chosen learning rate: the mean over its n seeds with "
        "the 95% Student-t confidence interval of the mean, clipped to the metric's range "
        "(– for a single run). ★ marks the strategy chosen on validation accuracy "
        "(<code>Comparison.best()</code>).</p>",
        _table(*lead_rows(comparison), "strategies"),
        "<h2>Summary</h2>",
        "<p>Per strategy and metric over its seeds: mean ± sample standard deviation and the "
        "95% Student-t confidence interval of the mean (– for a single run).</p>",
        _summary_table(comparison),
        *_rates_section(comparison),
        "<h2>Plots</h2>",
        _plots(comparison),
        "<h2>Runs</h2>",
        _runs_table(comparison),
        "<h2>Machine</h2>",
        "<p>The machine that wrote this report.</p>",
        _pre(str(machine_info())),
        "<h2>Configuration</h2>",
        _pre(json.dumps(comparison.config, indent=2, sort_keys=True, default=str)),
        "<h2>Command</h2>",
        _pre(shlex.join(sys.argv)),
    ]
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_html(comparison: ComparisonView, path: str | Path, *, title: str) -> Path:
    """Renders the report and writes it to `path` (parent folders created)."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"`path` must be a file name, e.g. {str(out / 'report.html')!r}, but it is a "
            f"folder. Received: path={str(path)!r}"
        )
    text = render_html(comparison, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
