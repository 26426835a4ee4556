"""Benchmark: a comparison's runs serially vs on 2 local processes vs on a 2-worker Dask cluster.

The transfer task of `examples/fashion_mnist_transfer.py`: the lab CNN pretrained on
Fashion-MNIST classes 0-4, a new 5-way head (`replace_head`), 500 labelled images of classes
5-9. The comparison is 12 runs: `full`, `partial`, `feature_extractor` and `lp_ft` with 3 seeds,
each `--epochs` epochs at batch 32. Each pair measures, in a fresh Python process each and in
an order that rotates from pair to pair:

* `serial`: `compare_strategies(...)` in one process (TensorFlow's default threads);
* `processes`: the same with `executor="processes"` (a spawned pool, one worker per core, one
  intra-op thread each; the workers' start and imports are inside the time);
* `dask`: the same with `executor=client` on `distributed.LocalCluster(n_workers=2,
  threads_per_worker=1)`, started before the clock (a cluster outlives comparisons); its
  workers import transferkit on their first run, inside the time.

It prints the median of the per-pair ratios `parallel wall / serial wall` (target <= 0.7 on 2
cores) with min-max, and what bounds it: the mean training seconds per run in a worker
against serially (one thread against all), the seconds outside training spread over the
workers (`wall - sum of run seconds / workers`: worker start, imports, evaluation, the last
runs' imbalance), and the efficiency
`serial wall / (workers x parallel wall)`. It also checks that every run has the
same test accuracy as serially (the largest difference is printed).

Usage:

    python benchmarks/parallel.py                 # 12 runs, 10 epochs, 2 pairs
    python benchmarks/parallel.py --quick         # CI smoke run

Writes `parallel.md` and `parallel.json` to `--output-dir` (default `runs/parallel`), with the
pretrained model (`start.keras`), reused by a second call.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from _paired import cpu_model, ratios, rotation, spread, verdict  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import stratified_subsample  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_scores import TARGET, pretrain, tasks  # noqa: E402

STRATEGIES = ["full", "partial", "feature_extractor", "lp_ft"]
MODES = ("serial", "processes", "dask")
WORKERS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=500, help="labelled target images")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per strategy")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every run")
    parser.add_argument("--pairs", type=int, default=2, help="measurement rounds")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--source-epochs", type=int, default=2, help="pretraining epochs")
    parser.add_argument("--test-size", type=int, default=2000, help="target test images")
    parser.add_argument("--quick", action="store_true", help="CI smoke run")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "parallel")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # a measured process
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.seeds, args.epochs, args.pairs = 50, 1, 2, 1
        args.source_epochs, args.test_size = 1, 250
    return args


def _data(args: argparse.Namespace) -> dict[str, Any]:
    data = tasks(args)
    train = stratified_subsample(*data["pool"], args.budget, seed=0)
    return {"train": train, "validation": data["validation"], "test": data["test"]}


def _measure(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process: one comparison in mode `args.one`, timed."""
    start = keras.saving.load_model(args.output_dir / "start.keras")
    data, cluster, executor = _data(args), None, None
    if args.one == "processes":
        executor = "processes"
    elif args.one == "dask":
        from distributed import Client, LocalCluster

        env = {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}
        cluster = LocalCluster(n_workers=WORKERS, threads_per_worker=1, env=env)
        executor = Client(cluster)
    began = time.perf_counter()
    comparison = tk.compare_strategies(
        start, STRATEGIES, **data, epochs=args.epochs, batch_size=32, seeds=args.seeds,
        verbose=0, keep_models="none", executor=executor,
    )  # fmt: skip
    wall = time.perf_counter() - began
    if cluster is not None:
        executor.close()
        cluster.close()
    return {
        "wall_s": wall,
        "run_s": [r.timing.train_seconds for r in comparison.runs],
        "accuracy": {f"{r.strategy}/{r.seed}": r.metrics.accuracy for r in comparison.runs},
    }


def _fresh(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    out = args.output_dir / f"one_{mode}.json"
    command = [sys.executable, __file__, "--one", mode, "--output-dir", str(args.output_dir)]
    command += ["--budget", str(args.budget), "--seeds", str(args.seeds)]
    command += ["--epochs", str(args.epochs), "--test-size", str(args.test_size)]
    subprocess.run(command + ["--quick"] * args.quick, check=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        result = _measure(args)
        (args.output_dir / f"one_{args.one}.json").write_text(json.dumps(result))
        return 0
    saved = args.output_dir / "start.keras"
    if not saved.exists():
        keras.utils.set_random_seed(0)
        source = pretrain(args, tasks(args)["source"])
        tk.replace_head(source, len(TARGET)).save(saved)
    modes = ["serial", *[m for m in args.modes if m != "serial"]]
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for pair in range(args.pairs):
        for mode in rotation(modes, pair):
            results[mode].append(_fresh(args, mode))
            print(f"pair {pair}: {mode} {results[mode][-1]['wall_s']:.1f} s", flush=True)
    serial = results["serial"]
    serial_outside = statistics.median(s["wall_s"] - sum(s["run_s"]) for s in serial)
    rows, summary = [], {}
    for mode in modes[1:]:
        r = ratios([m["wall_s"] for m in results[mode]], [s["wall_s"] for s in serial])
        per_run = ratios(
            [statistics.mean(m["run_s"]) for m in results[mode]],
            [statistics.mean(s["run_s"]) for s in serial],
        )
        efficiency = [1 / (WORKERS * x) for x in r["ratios"]]
        outside = statistics.median(m["wall_s"] - sum(m["run_s"]) / WORKERS for m in results[mode])
        drift = max(
            abs(m["accuracy"][k] - s["accuracy"][k])
            for m, s in zip(results[mode], serial, strict=True)
            for k in s["accuracy"]
        )
        summary[mode] = {
            "wall": r, "run_seconds": per_run, "efficiency": efficiency,
            "outside_training_s": outside, "max_accuracy_difference": drift,
        }  # fmt: skip
        rows.append(
            f"| {mode} | {spread(r)} | {verdict(r['median'] <= 0.7)} | {spread(per_run)} | "
            f"{outside:.1f} | {statistics.median(efficiency):.2f} | {drift:.4f} |"
        )
    n_runs = len(serial[0]["run_s"])
    walls = ", ".join(f"{s['wall_s']:.1f}" for s in serial)
    table = "\n".join([
        f"CPU: {cpu_model()}; Keras {keras.__version__} ({keras.backend.backend()}); "
        f"{n_runs} runs ({', '.join(STRATEGIES)} x {args.seeds} seeds), {args.budget} labels, "
        f"{args.epochs} epochs, batch 32, {WORKERS} workers. Serial wall: {walls} s "
        f"({serial_outside:.1f} s outside training).",
        "",
        "| executor | wall / serial (median, min-max) | target <= 0.7 | seconds per run / "
        "serial | s outside training | efficiency | largest test-accuracy difference |",
        "|---|---|---|---|---:|---:|---:|",
        *rows,
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`",
    ])  # fmt: skip
    print("\n" + table)
    (args.output_dir / "parallel.md").write_text(table + "\n")
    (args.output_dir / "parallel.json").write_text(
        json.dumps({"results": results, "summary": summary}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
