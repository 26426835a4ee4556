"""Benchmark: what `learning_rates="auto"` costs next to no search, per strategy, paired.

A search trains every strategy at each rate of its grid (3 rates for strategies that train
the body, 4 for the feature extractor and LP-FT): without sharing, it would cost 3-4x. The
strategies whose frozen prefix is cached compute it once for every rate, so their search
costs a few trainings of the head, not a few full runs. This script measures it on the lab
CNN and Fashion-MNIST (Adam, batch 64): each pair runs `compare_strategies` once without a
search and once with `learning_rates="auto"` for each strategy, in an order that rotates from
pair to pair, and prints the median of the per-pair ratios `auto seconds / plain seconds`
with their min and max, next to the number of rates (the cost without any sharing).

Usage:

    python benchmarks/search_cost.py                 # 10000 images, 3 epochs, 2 pairs
    python benchmarks/search_cost.py --quick         # CI smoke run (seconds)

Writes `search_cost.md` and `search_cost.json` to `--output-dir` (default `runs/search_cost`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _paired import cpu_model, ratios, rotation, spread  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import lab_split  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402

STRATEGIES = ("full", "feature_extractor", "lp_ft")


def _seconds(
    model: keras.Model, strategy: str, data: dict, rates: str | None, epochs: int
) -> float:
    start = time.perf_counter()
    tk.compare_strategies(
        model, [strategy], **data, epochs=epochs, batch_size=64, verbose=0,
        learning_rates=rates, keep_models="none",
    )  # fmt: skip
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10000, help="training images")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of every run")
    parser.add_argument("--pairs", type=int, default=2, help="measurement rounds")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 500 images")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "search_cost")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.epochs, args.pairs = 500, 2, 1
    if min(args.samples, args.pairs) < 1 or args.epochs < 2:
        parser.error("--samples and --pairs must be >= 1, --epochs >= 2 (LP-FT has 2 phases)")

    split = lab_split()
    n_eval = max(500, args.samples // 5)
    data = {
        "train": (split.train[0][: args.samples], split.train[1][: args.samples]),
        "validation": (split.validation[0][:n_eval], split.validation[1][:n_eval]),
        "test": (split.test[0][:n_eval], split.test[1][:n_eval]),
    }
    keras.utils.set_random_seed(0)
    model = lab_cnn()  # random weights stand in for pretrained ones: cost does not depend on them
    rows, results = [], {}
    for strategy in STRATEGIES:
        grid = tk.compare_strategies(
            model,
            [strategy],
            **data,
            epochs=2,
            batch_size=64,
            verbose=0,
            keep_models="none",
            learning_rates="auto",
            search="grid",
        ).config["learning_rates"]  # fmt: skip  (a warm-up that also reads the grid)
        (grid,) = grid.values()  # the one strategy's grid, whatever its label
        seconds: dict[str | None, list[float]] = {None: [], "auto": []}
        for pair in range(args.pairs):
            for rates in rotation([None, "auto"], pair):
                seconds[rates].append(_seconds(model, strategy, data, rates, args.epochs))
        r = ratios(seconds["auto"], seconds[None])
        results[strategy] = {
            "rates": grid,
            "plain_s": seconds[None],
            "auto_s": seconds["auto"],
            **r,
        }
        rows.append(f"| {strategy} | {len(grid)} | {spread(r)} |")
        print(rows[-1], flush=True)

    table = "\n".join(
        [
            f"CPU: {cpu_model()}; Keras {keras.__version__} ({keras.backend.backend()}); "
            f"{args.samples} images, {args.epochs} epochs, batch 64, 1 seed.",
            "",
            "| strategy | rates in its grid | auto / no search (median, min-max) |",
            "|---|---:|---|",
            *rows,
            "",
            f"Command: `{shlex.join(['python', *sys.argv])}`",
        ]
    )
    print("\n" + table)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "search_cost.md").write_text(table + "\n")
    (args.output_dir / "search_cost.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
