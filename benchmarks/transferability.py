"""Benchmark: what `transferability` costs next to one epoch of a feature extractor, paired.

A transferability score is worth computing before training only if it costs less than the
training it helps to avoid. This script measures, on the lab CNN (random weights: the cost
does not depend on them) and `--samples` Fashion-MNIST training images, in one process:

* `transferability` at 3 cuts, LogME, flattened activations (the default): the lab CNN's
  default cuts, `max_pooling2d` (6272 features), `max_pooling2d_1` (3136) and `dense` (128),
  one forward pass for the three;
* the same with `pooling="avg"` (32, 64 and 128 features);
* one epoch of `fine_tune(..., strategy="feature_extractor", epochs=1, cache=False)`
  (batch 64, Adam): the frozen body runs forward on every batch and the head trains.

Every call is timed whole, as a user waits for it (copies, compilation and the forward pass
included). The three sides run once per pair in an order that rotates from pair to pair (A B
C, B C A, ...), after one untimed warm-up of each on 256 images; the script prints the median
of the per-pair ratios `transferability seconds / epoch seconds` with their min and max, and
the per-cut breakdown (forward pass, scoring seconds, feature dimension) of the last pair.

NumPy's and SciPy's OpenBLAS start one thread per core, which spin while they wait: when
other work shares the cores, a 1000x1000 eigendecomposition took 12 s with 2 threads and
0.25 s with 1 on this 2-core machine. `--blas-threads N` limits them (threadpoolctl) for the
whole measurement; the default leaves them as they are, as a user's process would.

Usage:

    python benchmarks/transferability.py                  # 10000 images, 3 pairs
    python benchmarks/transferability.py --blas-threads 1 # on a busy machine
    python benchmarks/transferability.py --samples 5000 --pairs 5
    python benchmarks/transferability.py --quick          # CI smoke run (seconds)

Writes `transferability.md` and `transferability.json` to `--output-dir` (default
`runs/transferability`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _paired import cpu_model, ratios, rotation, spread  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import load_fashion_mnist, to_float_images  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402
from transferkit.timing import Timer, machine_info  # noqa: E402

CUTS = ("max_pooling2d", "max_pooling2d_1", "dense")
SIDES = ("flattened", "pooled", "epoch")


def sides(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], Any]]:
    """The three measured calls, by name."""
    return {
        "flattened": lambda: tk.transferability(model, (x, y), cuts=CUTS),
        "pooled": lambda: tk.transferability(model, (x, y), cuts=CUTS, pooling="avg"),
        "epoch": lambda: tk.fine_tune(
            model,
            (x, y),
            strategy="feature_extractor",
            epochs=1,
            batch_size=64,
            cache=False,
            verbose=0,
        ),  # fmt: skip
    }


def measure(model: keras.Model, x: np.ndarray, y: np.ndarray, pairs: int) -> dict[str, Any]:
    """Seconds of each side per pair, and the last tables."""
    for call in sides(model, x[:256], y[:256]).values():
        call()  # warm-up: the backend's first compilations, off the clock
    calls = sides(model, x, y)
    seconds: dict[str, list[float]] = {name: [] for name in SIDES}
    tables: dict[str, Any] = {}
    for pair in range(pairs):
        for name in rotation(SIDES, pair):
            with Timer() as timer:
                out = calls[name]()
            seconds[name].append(timer.seconds)
            if name != "epoch":
                tables[name] = out
        print(
            f"pair {pair + 1}/{pairs}: " + ", ".join(f"{n} {seconds[n][-1]:.1f} s" for n in SIDES),
            flush=True,
        )
    return {"seconds": seconds, "tables": tables}


def report(args: argparse.Namespace, result: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    seconds, tables = result["seconds"], result["tables"]
    backend = keras.backend.backend()
    r = {name: ratios(seconds[name], seconds["epoch"]) for name in ("flattened", "pooled")}
    lines = [
        f"`transferability` (LogME, cuts {', '.join(CUTS)} of the lab CNN, one forward pass) "
        f"against one epoch of `fine_tune(strategy='feature_extractor', cache=False)`, "
        f"{args.samples} Fashion-MNIST images, {args.pairs} pair(s), {backend}, "
        f"{cpu_model()}, BLAS threads: {blas_threads()}.",
        "",
        "| side | median seconds | transferability / epoch, median (min-max) |",
        "|---|---:|---|",
        f"| transferability, flattened | {statistics.median(seconds['flattened']):.1f} "
        f"| {spread(r['flattened'])} |",
        f"| transferability, `pooling='avg'` | {statistics.median(seconds['pooled']):.1f} "
        f"| {spread(r['pooled'])} |",
        f"| one feature-extractor epoch | {statistics.median(seconds['epoch']):.1f} | 1 |",
        "",
        "Breakdown of the last pair (the forward pass is shared by the three cuts):",
        "",
        "| side | cut | features | scoring seconds | LogME |",
        "|---|---|---:|---:|---:|",
    ]
    for name, table in tables.items():
        for row in table.rows:
            lines.append(
                f"| {name} | {row.cut} | {row.feature_dim} | {row.seconds:.2f} | {row.score:.4f} |"
            )
        lines.append(f"| {name} | forward pass | | {table.rows[0].forward_seconds:.2f} | |")
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    lines += ["", f"Produced by `{command}` (KERAS_BACKEND={backend}) on {machine_info()}."]
    summary = {
        "backend": backend,
        "samples": args.samples,
        "blas_threads": blas_threads(),
        "cuts": list(CUTS),
        "seconds": seconds,
        "ratios": r,
        "tables": {name: table.to_dict() for name, table in tables.items()},
    }
    return "\n".join(lines), summary


def blas_threads() -> str:
    """The thread counts of the BLAS libraries loaded (NumPy's, SciPy's), e.g. `"1, 1"`."""
    return ", ".join(str(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10000, help="Fashion-MNIST images")
    parser.add_argument("--pairs", type=int, default=3, help="measurement rounds")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1000 images")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "transferability")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.pairs = 1000, 1
    if min(args.samples, args.pairs) < 1 or args.samples > 60000:
        parser.error("--samples must be in [1, 60000] and --pairs >= 1")

    (x_train, y_train), _ = load_fashion_mnist()
    x = to_float_images(x_train[: args.samples])
    y = y_train[: args.samples].astype(np.int64)
    keras.utils.set_random_seed(0)
    model = lab_cnn()
    limit = nullcontext() if args.blas_threads is None else threadpool_limits(args.blas_threads)
    with limit:
        text, summary = report(args, measure(model, x, y, args.pairs))
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "transferability.md").write_text(text + "\n")
    (args.output_dir / "transferability.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if np.isfinite([r["median"] for r in summary["ratios"].values()]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
