"""Matplotlib plots of a `Comparison` (needs the `plot` extra)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._records import RunRecord, by_strategy


def _pyplot() -> Any:
    """`matplotlib.pyplot`, or an `ImportError` saying how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "Plotting needs matplotlib: `pip install transferkit[plot]` (or `pip install "
            "matplotlib`)."
        ) from err
    return plt


def _save(fig: Any, path: str | Path | None) -> Any:
    """`fig`, saved to `path` first unless `path` is None."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_history(runs: Sequence[RunRecord], path: str | Path | None, *, metric: str) -> Any:
    """Train/validation `metric` per epoch, one panel per strategy (mean over seeds)."""
    plt = _pyplot()
    groups = by_strategy(runs)
    strategies = list(groups)
    # A grid of at most 3 columns: readable at page width (1200 px) for ten strategies too.
    cols = min(3, len(strategies))
    rows = math.ceil(len(strategies) / cols)
    fig, grid = plt.subplots(
        rows, cols, figsize=(3.9 * cols, 3.2 * rows), squeeze=False, sharey=True
    )
    axes = list(grid.flat)
    for ax in axes[len(strategies) :]:
        ax.set_visible(False)
    for ax, strategy in zip(axes, strategies, strict=False):
        group = groups[strategy]
        for key, label in ((metric, f"train {metric}"), (f"val_{metric}", f"val {metric}")):
            if curves := [run.history[key] for run in group if key in run.history]:
                mean = [sum(points) / len(points) for points in zip(*curves, strict=False)]
                ax.plot(range(1, len(mean) + 1), mean, marker="o", ms=3, label=label)
        ax.set_title(f"{strategy} (n={len(group)})")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[::cols]:
        ax.set_ylabel(metric)
    axes[0].legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_tradeoff(runs: Sequence[RunRecord], path: str | Path | None, *, metric: str) -> Any:
    """Test `metric` against training seconds: a point per run, a cross per strategy mean."""
    fig, ax = _pyplot().subplots(figsize=(5.5, 4))
    for strategy, group in by_strategy(runs).items():
        xs, ys = [run.timing.train_seconds for run in group], [run.value(metric) for run in group]
        points = ax.scatter(xs, ys, alpha=0.5, label=strategy)
        ax.scatter(
            [sum(xs) / len(xs)], [sum(ys) / len(ys)], marker="X", s=120,
            color=points.get_facecolor()[0], edgecolors="black",
        )  # fmt: skip
    ax.set_xlabel("training time (s)")
    ax.set_ylabel(f"test {metric}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)
