"""Benchmark: what each multi-phase recipe costs next to full fine-tuning, paired.

LP-FT and gradual unfreezing train the same number of epochs as full fine-tuning, but their
first phases freeze the convolutional body, whose activations transferkit computes once (the
frozen-prefix cache) instead of every batch. They should therefore cost no more than full
fine-tuning for the same total epochs. This script measures it on the lab CNN and Fashion-MNIST
(batch 64, Adam), in one process, pair by pair: each pair trains `full`, `lp_ft` and `gradual`
once, in an order that rotates from pair to pair, so slow and fast stretches of a noisy machine
fall on every side alike. It prints, per recipe, the median of the per-pair ratios
`recipe seconds / full seconds` with their min and max, and whether the target (<= 1.0) is met.

Usage:

    python benchmarks/recipes.py                   # 20000 images, 4 epochs, 3 pairs
    python benchmarks/recipes.py --samples 50000 --epochs 10 --pairs 3
    python benchmarks/recipes.py --quick           # CI smoke run (seconds)

Writes `recipes.md` and `recipes.json` to `--output-dir` (default `runs/recipes`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import lab_split  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402
from transferkit.timing import machine_info  # noqa: E402

RECIPES = ("lp_ft", "gradual")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000, help="training images")
    parser.add_argument("--epochs", type=int, default=4, help="total epochs of every recipe")
    parser.add_argument("--pairs", type=int, default=3, help="measurement rounds")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1000 images")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "recipes")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.epochs, args.pairs = 1000, 4, 1
    if min(args.samples, args.pairs) < 1 or args.epochs < 4:
        parser.error("--samples and --pairs must be >= 1, --epochs >= 4 (gradual has 4 phases)")

    split = lab_split()
    train = (split.train[0][: args.samples], split.train[1][: args.samples])
    keras.utils.set_random_seed(0)
    model = lab_cnn()  # random weights stand in for pretrained ones: cost does not depend on them
    names = ("full", *RECIPES)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for pair in range(args.pairs):
        order = names[pair % 3 :] + names[: pair % 3]
        for name in order:
            result = tk.fine_tune(
                model, train, strategy=name, epochs=args.epochs, batch_size=64, seed=pair,
                verbose=0,
            )  # fmt: skip
            seconds[name].append(result.timing.train_seconds)
            print(f"pair {pair + 1}/{args.pairs}: {name:8s} {seconds[name][-1]:7.1f} s", flush=True)

    rows = []
    for name in RECIPES:
        ratios = [r / f for r, f in zip(seconds[name], seconds["full"], strict=True)]
        median = statistics.median(ratios)
        rows.append(
            {
                "recipe": name,
                "median_ratio": median,
                "min_ratio": min(ratios),
                "max_ratio": max(ratios),
                "seconds": seconds[name],
                "full_seconds": seconds["full"],
                "met": median <= 1.0,
            }
        )
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    lines = [
        f"Cost of each recipe relative to full fine-tuning, {args.epochs} epochs on "
        f"{args.samples} images, batch 64, {args.pairs} pair(s), {keras.backend.backend()}.",
        "",
        "| recipe | median ratio to full | min | max | target <= 1.0 |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['recipe']} | {row['median_ratio']:.2f} | {row['min_ratio']:.2f} "
            f"| {row['max_ratio']:.2f} | {'met' if row['met'] else 'missed'} |"
        )
    lines += ["", f"Produced by `{command}` on {machine_info()}."]
    text = "\n".join(lines)
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "recipes.md").write_text(text + "\n")
    (args.output_dir / "recipes.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
