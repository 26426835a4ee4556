"""Benchmark: the lab CNN through `fine_tune` on each Keras backend, side by side.

For every backend asked for (TensorFlow, JAX, PyTorch), a child process started with
`KERAS_BACKEND` set trains the lab's CNN on the lab's Fashion-MNIST split (batch 64, Adam) with
transferkit's per-backend defaults (`steps_per_execution`, `jit_compile`):

* **full fine-tune**: every layer trains; the first epoch includes tracing/compilation, so the
  steady-state figure is the median of the later epochs;
* **feature extractor**: `FeatureExtractor(cut="flatten")`, whose frozen body's activations are
  computed once (the frozen-prefix cache) and the head trains on them;
* **inference**: `transferkit.timing.measure_inference` on the test images.

With `--precisions float32 mixed_bfloat16` each backend also runs with transferkit's opt-in
mixed precision (`fine_tune(precision=...)`), to measure its effect on time and test accuracy.

**Paired.** The machine's speed drifts by up to 2x within minutes, so the backends run in
`--rounds` rounds, each backend once per round in a fresh process, the order rotating from round
to round (TF JAX torch, JAX torch TF, ...). A backend's ratio to TensorFlow is the median of its
per-round ratios, shown with their min and max; its seconds are medians over the rounds.

It prints one table (seconds per epoch, images per second, ratio to TensorFlow float32, test
accuracy after the last epoch) and writes it as `backends.md` and `backends.json` to
`--output-dir`. A backend that is not installed is reported as such, not as a failure.

Usage:

    python benchmarks/backends.py                       # full: 50000 images, 3 epochs, 3 rounds
    python benchmarks/backends.py --backends tensorflow jax
    python benchmarks/backends.py --backends tensorflow --precisions float32 mixed_bfloat16
    python benchmarks/backends.py --quick               # CI smoke run (seconds per backend)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paired import cpu_model, ratios, rotation, spread  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
PRECISIONS = ("float32", "mixed_bfloat16")
SCRIPT = Path(__file__).stem


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run on the backend this process was started with; return its figures."""
    import keras

    import transferkit as tk
    from transferkit.datasets import lab_split
    from transferkit.metrics import evaluate
    from transferkit.models import lab_cnn
    from transferkit.timing import measure_inference

    (x_train, y_train), _, (x_test, y_test) = lab_split(args.data_dir)
    x_train, y_train = x_train[: args.train_samples], y_train[: args.train_samples]
    x_test, y_test = x_test[: args.train_samples], y_test[: args.train_samples]
    keras.utils.set_random_seed(0)
    model = lab_cnn()
    precision = None if args.precision == "float32" else args.precision
    figures: dict[str, Any] = {
        "backend": keras.backend.backend(),
        "precision": args.precision,
        "keras": keras.__version__,
    }
    for key, strategy in (
        ("full", "full"),
        ("feature_extractor", tk.FeatureExtractor(cut="flatten")),
    ):
        started = time.perf_counter()
        result = tk.fine_tune(
            model,
            (x_train, y_train),
            strategy=strategy,
            epochs=args.epochs,
            batch_size=64,
            seed=0,
            verbose=0,
            precision=precision,
        )
        epochs = list(result.timing.epoch_seconds)
        steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
        figures[key] = {
            "total_seconds": time.perf_counter() - started,
            "first_epoch_seconds": epochs[0],
            "epoch_seconds": steady,
            "images_per_second": len(x_train) / steady,
            "cache": result.cache.used,
            "test_accuracy": evaluate(result.model, x_test, y_test).accuracy,
        }
        trained = result.model
    inference = measure_inference(trained, x_test, batch_size=256)
    figures["inference_images_per_second"] = inference.samples_per_second
    return figures


def run_backend(backend: str, precision: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start this script as a child on `backend`; its figures, or why there are none."""
    out = args.output_dir / f"{backend}_{precision}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", str(out), "--epochs", str(args.epochs)]
    cmd += ["--precision", precision]
    cmd += ["--train-samples", str(args.train_samples)]
    if args.data_dir is not None:
        cmd += ["--data-dir", str(args.data_dir)]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"[{SCRIPT}] {backend} {precision}: training ...", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        if any("No module named" in line for line in tail):
            return {
                "backend": backend,
                "precision": precision,
                "skipped": f"not installed ({tail[-1].strip()})",
            }
        raise SystemExit(f"{backend} child failed:\n" + "\n".join(tail))
    figures: dict[str, Any] = json.loads(out.read_text())
    return figures


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One backend's figures over the rounds: the medians of the numbers."""
    first = runs[0]
    if "skipped" in first:
        return first
    merged: dict[str, Any] = {"backend": first["backend"], "precision": first["precision"]}
    for key in ("full", "feature_extractor"):
        merged[key] = {
            k: statistics.median(r[key][k] for r in runs)
            for k in first[key]
            if isinstance(first[key][k], int | float) and not isinstance(first[key][k], bool)
        }
    merged["inference_images_per_second"] = statistics.median(
        r["inference_images_per_second"] for r in runs
    )
    merged["rounds"] = runs
    return merged


def table(results: dict[tuple[str, str], list[dict[str, Any]]], args: argparse.Namespace) -> str:
    """The Markdown table of all backends, with paired ratios to TensorFlow float32."""
    base = results.get(("tensorflow", "float32"))
    if base is not None and "skipped" in base[0]:
        base = None
    lines = [
        f"Lab CNN, {args.train_samples} training images, batch 64, Adam, {args.epochs} epochs "
        f"per strategy, {args.rounds} round(s) with rotating order; CPU: {cpu_model()}, "
        f"Python {platform.python_version()}. Seconds are medians over the rounds; the ratio is "
        "the median (min-max) of the per-round ratios.",
        "",
        "| backend | precision | full FT s/epoch (steady) | first epoch s | images/s | vs TF "
        "float32 | full FT test acc | feature extractor s/epoch (cached) | FE test acc | "
        "inference images/s |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for runs in results.values():
        r = _median_run(runs)
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['precision']} | {r['skipped']} |" + " |" * 7)
            continue
        full, fe = r["full"], r["feature_extractor"]
        ratio = "n/a"
        if base is not None:
            ratio = spread(
                ratios(
                    [x["full"]["epoch_seconds"] for x in runs],
                    [x["full"]["epoch_seconds"] for x in base],
                ),
                unit="round",
            )
        lines.append(
            f"| {r['backend']} | {r['precision']} | {full['epoch_seconds']:.2f} "
            f"| {full['first_epoch_seconds']:.2f} | {full['images_per_second']:.0f} "
            f"| {ratio} | {full['test_accuracy']:.4f} | {fe['epoch_seconds']:.3f} "
            f"| {fe['test_accuracy']:.4f} | {r['inference_images_per_second']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time the lab CNN (full fine-tune, cached feature extractor, inference) through "
            "transferkit on each Keras backend, each in its own process, and print a table."
        )
    )
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="default: all"
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=["float32"],
        help="precisions to run per backend (default: float32)",
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per strategy (default: %(default)s)"
    )
    parser.add_argument(
        "--train-samples",
        type=int,
        default=50000,
        help="training images (default: %(default)s, the lab's training set)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds, order rotating (default: %(default)s)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke run: 256 images, 2 epochs, 1 round"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("runs") / SCRIPT,
        help="where to write backends.md/.json (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="directory with the Fashion-MNIST .gz files"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32", help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.train_samples, args.epochs, args.rounds = 256, 2, 1
        args.output_dir = args.output_dir / "quick"
    if min(args.epochs, args.rounds) < 1 or args.train_samples < 64:
        parser.error("--epochs and --rounds must be at least 1 and --train-samples at least 64")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        args.child.write_text(json.dumps(child(args), indent=2) + "\n")
        return
    args.output_dir.mkdir(parents=True, exist_ok=True)
    configs = [(b, p) for b in args.backends for p in args.precisions]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in configs}
    for round_ in range(args.rounds):
        for backend, precision in rotation(configs, round_):
            if results[(backend, precision)] and "skipped" in results[(backend, precision)][0]:
                continue
            figures = run_backend(backend, precision, args)
            results[(backend, precision)].append(figures)
            if "full" in figures:
                print(
                    f"[{SCRIPT}] round {round_ + 1}/{args.rounds} {backend} {precision}: full "
                    f"fine-tune {figures['full']['epoch_seconds']:.2f} s/epoch, feature "
                    f"extractor {figures['feature_extractor']['epoch_seconds']:.3f} s/epoch",
                    flush=True,
                )
    text = table(results, args)
    print(text)
    from transferkit.timing import machine_info  # imports Keras: only after the children ran

    provenance = f"Produced by `python {' '.join(sys.argv)}` on {machine_info()}."
    (args.output_dir / "backends.md").write_text(f"{text}\n{provenance}\n")
    payload = [{"backend": b, "precision": p, "rounds": runs} for (b, p), runs in results.items()]
    (args.output_dir / "backends.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
