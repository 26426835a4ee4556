"""Measurement: do model soups and WiSE-FT beat the best single fine-tuned model?

The lab CNN is pretrained on Fashion-MNIST classes 0-4 and given a new 5-way head for classes
5-9 (`replace_head`), as `benchmarks/transfer_scores.py` and `examples/fashion_mnist_transfer.py`
do. For each label budget and draw (a different stratified draw of the budget's images), one
`compare_strategies(..., keep_models="all")` call fine-tunes the whole network (`"full"`,
Adam's default rate, early stopping on the target validation set) with `--ingredients` seeds
(every run starts from the same weights, the new head included; the seed changes the batch
order and any dropout masks). From those runs:

* **best single**: the run with the best validation accuracy (what `Comparison.model()` gives);
* **uniform soup**: `Comparison.soup("full")`, the mean of every run's weights;
* **greedy soup**: `Comparison.soup("full", method="greedy", validation=...)` (Wortsman et al.
  2022: runs sorted by validation accuracy, each added only if validation accuracy does not drop);
* **WiSE-FT**: for every run, `wise_ft(source, run, validation)` (alpha in 0, 0.1, ..., 1
  chosen on validation) against the run itself (its fine-tuned end point, alpha = 1), where
  `source` is the pretrained model with its source head. The new head has no counterpart in
  it, so it keeps the tuned values: the tuned head on interpolated body weights.

All accuracies are on the target test set. It reports the mean over draws with a 95% t
interval, and the paired difference (soup minus best single, WiSE-FT minus end point) per draw
with its interval.

Usage:

    python benchmarks/soups.py                       # budgets 50 500, 5 draws, 5 ingredients
    python benchmarks/soups.py --budgets 500 --draws 3
    python benchmarks/soups.py --quick               # CI smoke run

Writes `soups.md` and `soups.json` to `--output-dir` (default `runs/soups`). The pretrained
model (`source_model.keras`) and each draw's runs (`runs_budget<B>_draw<D>.jsonl`, with their
models) are kept there, so a second run resumes; delete the folder to measure afresh.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from scipy import stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_scores import TARGET, Pair, pretrain, schedule, tasks  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import stratified_subsample  # noqa: E402
from transferkit.metrics import evaluate  # noqa: E402
from transferkit.timing import machine_info  # noqa: E402

SIDES = ("best_single", "uniform_soup", "greedy_soup")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--draws", type=int, default=5, help="draws of each budget")
    parser.add_argument("--ingredients", type=int, default=5, help="seeds (models) per draw")
    parser.add_argument("--source-epochs", type=int, default=5, help="pretraining epochs")
    parser.add_argument("--patience", type=int, default=5, help="early stopping patience")
    parser.add_argument("--test-size", type=int, default=5000, help="target test images")
    parser.add_argument("--quick", action="store_true", help="CI smoke run (seconds)")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "soups")
    args = parser.parse_args(argv)
    if args.quick:
        args.budgets, args.draws, args.ingredients = [50], 1, 2
        args.source_epochs, args.test_size = 1, 250
    if min(args.draws, args.source_epochs, args.test_size) < 1 or min(args.budgets) < 5:
        parser.error("--draws, --source-epochs, --test-size >= 1; --budgets >= 5 each")
    if args.ingredients < 2:
        parser.error("--ingredients >= 2: a soup needs at least two models")
    return args


def run_draw(
    source: keras.Model, data: dict[str, Pair], budget: int, draw: int, args: argparse.Namespace
) -> dict[str, Any]:
    """One draw: `--ingredients` fine-tuned runs, their soups and their WiSE-FT models."""
    epochs, batch_size = schedule(budget)
    train = stratified_subsample(*data["pool"], budget, seed=draw)
    val, test = data["validation"], data["test"]
    keras.utils.set_random_seed(0)  # the same new head for every draw
    start = tk.replace_head(source, len(TARGET))
    comparison = tk.compare_strategies(
        start, ["full"], train=train, validation=val, test=test, epochs=epochs,
        batch_size=batch_size, seeds=[100 * draw + i for i in range(args.ingredients)],
        early_stopping=args.patience or None, keep_models="all", verbose=0,
        output=args.output_dir / f"runs_budget{budget}_draw{draw}.jsonl",
    )  # fmt: skip
    runs = comparison.runs_of("full")
    best = comparison.best_run("full")
    soups = {m: comparison.soup("full", method=m, validation=val) for m in ("uniform", "greedy")}
    record: dict[str, Any] = {
        "draw": draw,
        "runs": [
            {"seed": r.seed, "validation": r.validation.accuracy, "test": r.metrics.accuracy}
            for r in runs
            if r.validation is not None
        ],
        "best_single": best.metrics.accuracy,
        "best_seed": best.seed,
    }
    for method, model in soups.items():
        record[f"{method}_soup"] = evaluate(model, *test).accuracy
        record[f"{method}_soup_validation"] = evaluate(model, *val).accuracy
    wise = []
    for r in runs:
        tuned = comparison.model("full", seed=r.seed)
        result = tk.wise_ft(source, tuned, val)
        wise.append({
            "seed": r.seed, "alpha": result.alpha, "end_point": r.metrics.accuracy,
            "tuned_only": list(result.tuned_only),
            "wise_ft": evaluate(result.model, *test).accuracy,
            "validation_by_alpha": list(result.accuracies),
        })  # fmt: skip
    record["wise_ft"] = wise
    print(
        f"budget {budget} draw {draw}: best single {record['best_single']:.4f}, uniform "
        f"{record['uniform_soup']:.4f}, greedy {record['greedy_soup']:.4f}; WiSE-FT "
        f"{statistics.mean(w['wise_ft'] for w in wise):.4f} (alphas "
        f"{[w['alpha'] for w in wise]}) vs end points "
        f"{statistics.mean(w['end_point'] for w in wise):.4f}",
        flush=True,
    )
    return record


def interval(values: list[float]) -> dict[str, float]:
    """Mean and 95% t-interval half-width (0 for one value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return {"mean": mean, "half_width": 0.0, "n": len(values)}
    sem = statistics.stdev(values) / len(values) ** 0.5
    return {"mean": mean, "half_width": float(stats.t.ppf(0.975, len(values) - 1) * sem),
            "n": len(values)}  # fmt: skip


def difference(a: list[float], b: list[float]) -> dict[str, float]:
    """The paired differences `a - b`, as `interval`."""
    return interval([x - y for x, y in zip(a, b, strict=True)])


def summarise(budget: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per side: mean and CI over draws; paired differences against the reference."""
    wise = [statistics.mean(w["wise_ft"] for w in r["wise_ft"]) for r in records]
    ends = [statistics.mean(w["end_point"] for w in r["wise_ft"]) for r in records]
    alphas = [w["alpha"] for r in records for w in r["wise_ft"]]
    side = {s: [r[s] for r in records] for s in SIDES}
    return {
        "budget": budget,
        "draws": len(records),
        **{s: interval(v) for s, v in side.items()},
        "uniform_minus_best": difference(side["uniform_soup"], side["best_single"]),
        "greedy_minus_best": difference(side["greedy_soup"], side["best_single"]),
        "wise_ft": interval(wise),
        "end_point": interval(ends),
        "wise_minus_end": difference(wise, ends),
        "alphas": alphas,
    }


def cell(i: dict[str, float], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{i['mean']:{sign}.4f} ± {i['half_width']:.4f}"


def markdown(args: argparse.Namespace, summaries: list[dict[str, Any]]) -> str:
    lines = [
        f"Soups and WiSE-FT of full fine-tuning: lab CNN pretrained on Fashion-MNIST classes 0-4 "
        f"({args.source_epochs} epoch(s)), new 5-way head for classes 5-9; per budget, "
        f"{args.draws} draw(s) of the labelled images, {args.ingredients} fine-tuned runs "
        f"(seeds) per draw, {args.test_size} test images. Test accuracy, mean over draws "
        "± 95% t-interval half-width; differences are paired by draw.",
        "",
        "| budget | draws | best single (by validation) | uniform soup | greedy soup "
        "| uniform − best | greedy − best |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['budget']} | {s['draws']} | {cell(s['best_single'])} "
            f"| {cell(s['uniform_soup'])} | {cell(s['greedy_soup'])} "
            f"| {cell(s['uniform_minus_best'], True)} | {cell(s['greedy_minus_best'], True)} |"
        )
    lines += [
        "",
        "WiSE-FT of every run (alpha chosen on validation; the tuned head on interpolated body "
        "weights) against the run itself (alpha = 1); per draw, the mean over its runs:",
        "",
        "| budget | fine-tuned end point | WiSE-FT | WiSE-FT − end point | alphas chosen |",
        "|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        counts = {a: s["alphas"].count(a) for a in sorted(set(s["alphas"]))}
        chosen = ", ".join(f"{a:g} x{n}" for a, n in counts.items())
        lines.append(
            f"| {s['budget']} | {cell(s['end_point'])} | {cell(s['wise_ft'])} "
            f"| {cell(s['wise_minus_end'], True)} | {chosen} |"
        )
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    backend = keras.backend.backend()
    lines += ["", f"Produced by `{command}` (KERAS_BACKEND={backend}) on {machine_info()}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    data = tasks(args)
    saved = args.output_dir / "source_model.keras"
    if saved.exists():
        source = keras.saving.load_model(saved)
    else:
        keras.utils.set_random_seed(0)
        source = pretrain(args, data["source"])
        source.save(saved)
    summaries, records = [], {}
    for budget in sorted(args.budgets):
        records[budget] = [run_draw(source, data, budget, d, args) for d in range(args.draws)]
        summaries.append(summarise(budget, records[budget]))
        partial = {"records": {str(b): r for b, r in records.items()}}
        (args.output_dir / "soups.json").write_text(json.dumps(partial, indent=2) + "\n")
    text = markdown(args, summaries)
    print("\n" + text)
    (args.output_dir / "soups.md").write_text(text + "\n")
    payload = {"summaries": summaries, "records": {str(b): r for b, r in records.items()}}
    (args.output_dir / "soups.json").write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
