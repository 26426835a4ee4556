"""Measurement: does LogME, computed before training, rank cuts as trained accuracy does?

The lab CNN is pretrained on Fashion-MNIST classes 0-4 (as `examples/fashion_mnist_transfer.py`
does) and transferred to classes 5-9 with a small labelled budget. For each budget and seed
(a different stratified draw of the budget's images), at each of 5 cuts (`conv2d`,
`max_pooling2d`, `conv2d_1`, `max_pooling2d_1`, `dense`):

* **before training**: LogME of the activations at the cut on the budget's labelled images
  (`transferability`, one forward pass for the 5 cuts), the only data one would have:
  flattened (`--pooling none`, the default here) or averaged over the spatial axes
  (`--pooling avg`, one value per channel);
* **after training**: the target test accuracy of a linear probe on the frozen features at the
  cut (`FeatureExtractor(cut=..., hidden=())`: a new 5-way softmax right after the cut, early
  stopping on the target validation set).

It reports, per budget, Kendall's tau between the two over the cuts (per seed, of the seed
means, and over the cuts other than `dense`, whose probe trails the others here), and what
choosing the cut by LogME gives against the best cut in hindsight and against the default
cut (`dense`, the feature extractor's default), in test accuracy, with the seconds both sides
cost. Read tau over 5 cuts with care: its values step by 0.2, and one swap
of two close cuts moves it by 0.2.

Usage:

    python benchmarks/transfer_scores.py                            # budgets 50 500, 5 seeds
    python benchmarks/transfer_scores.py --budgets 50 --seeds 3 --source-epochs 2
    python benchmarks/transfer_scores.py --pooling avg              # LogME of pooled features
    python benchmarks/transfer_scores.py --quick                    # CI smoke run

Writes `transfer_scores.md` and `transfer_scores.json` to `--output-dir` (default
`runs/transfer_scores`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import (  # noqa: E402
    load_fashion_mnist,
    stratified_subsample,
    subset_classes,
    to_float_images,
    train_val_test_split,
)
from transferkit.metrics import evaluate  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402
from transferkit.timing import machine_info  # noqa: E402

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
CUTS = ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "dense")
DEFAULT_CUT = "dense"
POOLINGS = {"none": None, "avg": "avg", "max": "max"}
Pair = tuple[np.ndarray, np.ndarray]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--seeds", type=int, default=5, help="draws of each budget")
    parser.add_argument("--source-epochs", type=int, default=5, help="pretraining epochs")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience")
    parser.add_argument("--test-size", type=int, default=5000, help="target test images")
    parser.add_argument(
        "--pooling", choices=POOLINGS, default="none", help="`transferability(pooling=...)`"
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run (seconds)")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "transfer_scores")
    args = parser.parse_args(argv)
    if args.quick:
        args.budgets, args.seeds, args.source_epochs, args.test_size = [50], 1, 1, 250
    if min(args.seeds, args.source_epochs, args.test_size) < 1 or min(args.budgets) < 5:
        parser.error("--seeds, --source-epochs, --test-size >= 1; --budgets >= 5 each")
    return args


def tasks(args: argparse.Namespace) -> dict[str, Pair]:
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, x_test = to_float_images(x_train), to_float_images(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)
    source = subset_classes(x_train, y_train, SOURCE)
    if args.quick:
        source = stratified_subsample(*source, 1000, seed=0)
    target = train_val_test_split(*subset_classes(x_train, y_train, TARGET), val_size=1000, seed=0)
    test = subset_classes(x_test, y_test, TARGET)
    if args.test_size < len(test[0]):
        test = stratified_subsample(*test, args.test_size, seed=0)
    return {"source": source, "pool": target.train, "validation": target.validation, "test": test}


def pretrain(args: argparse.Namespace, source: Pair) -> keras.Model:
    print(f"pretraining on classes 0-4: {len(source[0])} images, {args.source_epochs} epoch(s)")
    result = tk.fine_tune(
        lab_cnn(len(SOURCE), name="source_cnn"), source, epochs=args.source_epochs,
        batch_size=64, seed=0, verbose=0,
    )  # fmt: skip
    return result.model


def schedule(budget: int) -> tuple[int, int]:
    """(epochs, batch size) as in `examples/fashion_mnist_transfer.py`."""
    return (30, 16) if budget <= 100 else (15, 32) if budget <= 1000 else (10, 64)


def probe(
    model: keras.Model,
    cut: str,
    train: Pair,
    data: dict[str, Pair],
    budget: int,
    seed: int,
    patience: int,
) -> tuple[float, float]:
    """Test accuracy and training seconds of a linear probe on the features at `cut`."""
    epochs, batch_size = schedule(budget)
    result = tk.fine_tune(
        model, train, validation=data["validation"],
        strategy=tk.FeatureExtractor(cut=cut, hidden=()), epochs=epochs,
        batch_size=batch_size, seed=seed, early_stopping=patience or None, verbose=0,
    )  # fmt: skip
    return evaluate(result.model, *data["test"]).accuracy, result.timing.train_seconds


def run_budget(
    model: keras.Model, data: dict[str, Pair], budget: int, args: argparse.Namespace
) -> list[Any]:
    """One record per seed: LogME, test accuracy and seconds per cut."""
    records = []
    for seed in range(args.seeds):
        train = stratified_subsample(*data["pool"], budget, seed=seed)
        pooling = POOLINGS[args.pooling]
        table = tk.transferability(model, train, cuts=list(CUTS), pooling=pooling)
        scores = {row.cut: row.score for row in table.rows}
        runs = {cut: probe(model, cut, train, data, budget, seed, args.patience) for cut in CUTS}
        records.append({
            "seed": seed, "logme": scores, "accuracy": {c: runs[c][0] for c in CUTS},
            "train_seconds": {c: runs[c][1] for c in CUTS}, "logme_seconds": table.seconds,
        })  # fmt: skip
        records[-1]["tau"] = tau(records[-1], CUTS)
        print(f"budget {budget} seed {seed}: tau {records[-1]['tau']:+.2f}; " + ", ".join(
            f"{c} {scores[c]:.3f}/{runs[c][0]:.3f}" for c in CUTS), flush=True)  # fmt: skip
    return records


def tau(record: dict[str, Any], cuts: Sequence[str]) -> float:
    """Kendall's tau between LogME and test accuracy over `cuts`."""
    scores = [record["logme"][c] for c in cuts]
    return float(kendalltau(scores, [record["accuracy"][c] for c in cuts])[0])


def summarise(budget: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    mean_logme = [statistics.mean(r["logme"][c] for r in records) for c in CUTS]
    mean_acc = [statistics.mean(r["accuracy"][c] for r in records) for c in CUTS]
    picked = [max(CUTS, key=lambda c, r=r: r["logme"][c]) for r in records]
    return {
        "budget": budget,
        "taus": [r["tau"] for r in records],
        # Without the default cut, whose probe is far behind the others here: does LogME
        # also order the close ones?
        "taus_without_default": [tau(r, [c for c in CUTS if c != DEFAULT_CUT]) for r in records],
        "tau_of_means": float(kendalltau(mean_logme, mean_acc)[0]),
        "mean_logme": dict(zip(CUTS, mean_logme, strict=True)),
        "mean_accuracy": dict(zip(CUTS, mean_acc, strict=True)),
        "picked": picked,
        "picked_accuracy": statistics.mean(
            r["accuracy"][p] for r, p in zip(records, picked, strict=True)
        ),
        "best_accuracy": statistics.mean(max(r["accuracy"].values()) for r in records),
        "default_accuracy": statistics.mean(r["accuracy"][DEFAULT_CUT] for r in records),
        "logme_seconds": statistics.mean(r["logme_seconds"] for r in records),
        "train_seconds": statistics.mean(sum(r["train_seconds"].values()) for r in records),
    }


def markdown(args: argparse.Namespace, summaries: list[dict[str, Any]]) -> str:
    lines = [
        f"LogME before training against the test accuracy of a linear probe at each of "
        f"{len(CUTS)} cuts ({', '.join(CUTS)}) of the lab CNN pretrained on Fashion-MNIST "
        f"classes 0-4 ({args.source_epochs} epoch(s)) and transferred to classes 5-9; LogME of "
        f"{'flattened' if args.pooling == 'none' else args.pooling + '-pooled'} activations; "
        f"{args.seeds} seed(s) (draws of the budget) per budget, {args.test_size} test images.",
        "",
        "| budget | Kendall tau per seed (mean [min, max]) | tau of seed means "
        "| tau without dense (mean) | cut LogME picks | its accuracy | best cut in hindsight "
        "| default cut (dense) | LogME s (5 cuts) | probe training s (5 cuts) |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        taus = s["taus"]
        picks = ", ".join(f"{c} x{s['picked'].count(c)}" for c in dict.fromkeys(s["picked"]))
        lines.append(
            f"| {s['budget']} | {statistics.mean(taus):+.2f} [{min(taus):+.2f}, "
            f"{max(taus):+.2f}] | {s['tau_of_means']:+.2f} "
            f"| {statistics.mean(s['taus_without_default']):+.2f} | {picks} "
            f"| {s['picked_accuracy']:.4f} | {s['best_accuracy']:.4f} "
            f"| {s['default_accuracy']:.4f} | {s['logme_seconds']:.1f} | {s['train_seconds']:.1f} |"
        )
    lines += ["", "Seed means per cut (LogME / test accuracy):", ""]
    lines += ["| budget | " + " | ".join(CUTS) + " |", "|---:|" + "---|" * len(CUTS)]
    for s in summaries:
        cells = [f"{s['mean_logme'][c]:.3f} / {s['mean_accuracy'][c]:.4f}" for c in CUTS]
        lines.append(f"| {s['budget']} | " + " | ".join(cells) + " |")
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    backend = keras.backend.backend()
    lines += ["", f"Produced by `{command}` (KERAS_BACKEND={backend}) on {machine_info()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = tasks(args)
    keras.utils.set_random_seed(0)
    model = tk.replace_head(pretrain(args, data["source"]), len(TARGET))
    summaries, records = [], {}
    for budget in sorted(args.budgets):
        records[budget] = run_budget(model, data, budget, args)
        summaries.append(summarise(budget, records[budget]))
    text = markdown(args, summaries)
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "transfer_scores.md").write_text(text + "\n")
    payload = {"summaries": summaries, "records": {str(b): r for b, r in records.items()}}
    (args.output_dir / "transfer_scores.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
