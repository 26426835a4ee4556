"""Benchmark: the lab's hand-written Keras code against the same protocol through transferkit.

Both sides run the lab's protocol on the same machine, from the same initial weights:

* **lab**: the lab's code as written (`create_model_fine_tuning`, `create_model_freezing_layers`
  with `for layer in base_model.layers[:4]: layer.trainable = False`, the corrected
  `create_model_feature_extractor` of cell [2]: a frozen `Sequential` conv body plus new
  `Dense(128)` and `Dense(10)`), one-hot labels, `categorical_crossentropy`, Adam, batch size
  64, 10 epochs (20 for the feature extractor), plain `model.compile` / `model.fit` /
  `model.evaluate`.
* **transferkit**: `compare_strategies(model, [strategy], ...)` with `"full"`,
  `PartialFreeze(upto=4)` or `FeatureExtractor(cut="flatten", epochs=20)`, integer labels, the
  same optimizer, batch size and epochs; it also computes precision, recall, F1 and the
  confusion matrix on the test set.

The sides alternate per strategy (lab full, transferkit full, lab partial, ...), each in its
own child process (this script started with `--side`), so each side's peak memory is its own
`ru_maxrss` and neither inherits the other's caches. A side's *seconds* run from a built model
with its initial weights and the data in memory, to the test accuracy in hand: compile, fit
and evaluate for the lab; the whole `compare_strategies` call for transferkit (copying the
model, caching frozen activations, training and all the test metrics). Both print one line
per epoch (the lab's `fit(verbose=2)`; in a non-terminal the notebook's default progress bar
would print a line every 0.05 s).

The initial weights are drawn once, in NumPy, exactly as Keras initialises the lab's layers by
default (Glorot-uniform kernels, zero biases), and loaded into both sides' models.

Also reported: the achieved GFLOP/s of full fine-tuning. Forward FLOPs of the lab CNN per
image are counted analytically (convolution 2*H*W*k*k*Cin*Cout, dense 2*in*out; biases,
activations and pooling ignored); training is taken as 3x forward; validation adds one forward
pass per validation image per epoch. The CPU's peak is estimated as cores x GHz (from
/proc/cpuinfo) x FP32 FLOPs per cycle per core (assumed; see `--flops-per-cycle`).

Usage:

    python benchmarks/lab_protocol.py                        # full protocol (about 20 min)
    python benchmarks/lab_protocol.py --json bench.json
    python benchmarks/lab_protocol.py --quick                # CI smoke run (< 1 min idle)

Writes `lab_protocol.json` and `lab_protocol.md` to `--output-dir` (default
`runs/lab_protocol`; `--quick` writes to its `quick/` subfolder), and to `--json PATH` too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras

SCRIPT = Path(__file__).stem
STRATEGIES = ("full", "partial", "feature_extractor")
SIDES = ("lab", "tk")
TARGET_TOTAL = 0.5  # transferkit / lab seconds, whole protocol
TARGET_FULL = 0.9  # transferkit / lab seconds, full fine-tuning
TARGET_FROZEN_SPEEDUP = 3.0  # lab / transferkit seconds, partial and feature extractor
TARGET_ACCURACY_PP = 1.0  # |transferkit - lab| test accuracy, percentage points
TARGET_MEMORY = 1.5  # transferkit / lab peak RSS


# ------------------------------------------------------------------------------------ parent


def lab_layer_shapes() -> list[tuple[int, ...]]:
    """Shapes of the lab CNN's weights, in `model.get_weights()` order."""
    return [
        (3, 3, 1, 32), (32,),  # conv2d
        (3, 3, 32, 64), (64,),  # conv2d_1
        (3136, 128), (128,),  # dense
        (128, 10), (10,),  # dense_1
    ]  # fmt: skip


def initial_weights(seed: int) -> list[np.ndarray[Any, Any]]:
    """Keras's default initialisation of the lab CNN: Glorot-uniform kernels, zero biases."""
    rng = np.random.default_rng(seed)
    weights = []
    for shape in lab_layer_shapes():
        if len(shape) == 1:
            weights.append(np.zeros(shape, dtype=np.float32))
            continue
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=shape).astype(np.float32))
    return weights


def forward_flops_per_image() -> int:
    """Analytic forward FLOPs of the lab CNN for one 28x28x1 image (multiply-add = 2)."""
    conv1 = 2 * 28 * 28 * 3 * 3 * 1 * 32
    conv2 = 2 * 14 * 14 * 3 * 3 * 32 * 64
    dense1 = 2 * 3136 * 128
    dense2 = 2 * 128 * 10
    return conv1 + conv2 + dense1 + dense2


def cpu_peak(flops_per_cycle: int | None) -> dict[str, Any]:
    """Estimated FP32 peak of this machine, and the assumptions behind it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mhz: list[float] = []
    flags: set[str] = set()
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "cpu MHz":
                mhz.append(float(value))
            elif key == "flags" and not flags:
                flags = set(value.split())
            elif key == "model name" and model == "unknown":
                model = value.strip()
    except OSError:
        pass
    ghz = max(mhz) / 1000 if mhz else float("nan")
    avx512 = "avx512f" in flags
    if flops_per_cycle is None:
        per_cycle = 32 if avx512 or {"avx2", "fma"} <= flags else 8
        assumption = (
            f"{per_cycle} FP32 FLOPs/cycle/core (assumed: 2 FMA units x 8 FP32 lanes x 2 "
            "FLOPs per FMA, e.g. AMD Zen 4 executing AVX-512 on 256-bit pipes; Intel cores "
            "with two full 512-bit FMA units reach 64, pass --flops-per-cycle 64)"
            if per_cycle == 32
            else f"{per_cycle} FP32 FLOPs/cycle/core (assumed: no AVX2/FMA)"
        )
    else:
        per_cycle = flops_per_cycle
        assumption = f"{per_cycle} FP32 FLOPs/cycle/core (given by --flops-per-cycle)"
    return {
        "cpu": model,
        "cores": cores,
        "ghz": ghz,
        "avx512": avx512,
        "flops_per_cycle": per_cycle,
        "peak_gflops": (cores or 1) * ghz * per_cycle,
        "assumption": f"{cores} cores x {ghz:.2f} GHz (/proc/cpuinfo) x {assumption}",
    }


def run_child(args: argparse.Namespace, side: str, strategy: str, init: Path) -> dict[str, Any]:
    """Run one side of one strategy in a fresh Python process; return its JSON result."""
    result = args.output_dir / "children" / f"{side}_{strategy}.json"
    result.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--side", side,
        "--strategy", strategy,
        "--init", str(init),
        "--result", str(result),
        "--epochs", str(args.epochs),
        "--fe-epochs", str(args.fe_epochs),
        "--batch-size", str(args.batch_size),
        "--seed", str(args.seed),
    ] + (["--quick"] if args.quick else [])  # fmt: skip
    if args.data_dir is not None:
        command += ["--data-dir", str(args.data_dir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0 or not result.exists():
        sys.exit(f"The {side} side of {strategy!r} failed (exit code {completed.returncode}).")
    loaded: dict[str, Any] = json.loads(result.read_text())
    return loaded


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def report(args: argparse.Namespace, results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The human-readable tables (Markdown)."""
    lines = [
        "| strategy | lab s | transferkit s | tk/lab | target | lab acc | tk acc | diff pp | "
        "lab peak MiB | tk peak MiB | tk/lab mem |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for strategy, sides in results.items():
        lab, tk = sides["lab"], sides["tk"]
        ratio = tk["seconds"] / lab["seconds"]
        if strategy == "full":
            target = f"<= {TARGET_FULL}x: {verdict(ratio <= TARGET_FULL)}"
        else:
            speedup = 1 / ratio
            target = (
                f">= {TARGET_FROZEN_SPEEDUP:.0f}x faster (is {speedup:.1f}x): "
                f"{verdict(speedup >= TARGET_FROZEN_SPEEDUP)}"
            )
        diff = 100 * (tk["test_accuracy"] - lab["test_accuracy"])
        mem = tk["peak_rss_mib"] / lab["peak_rss_mib"]
        lines.append(
            f"| {strategy} | {lab['seconds']:.1f} | {tk['seconds']:.1f} | {ratio:.2f} | "
            f"{target} | {lab['test_accuracy']:.4f} | {tk['test_accuracy']:.4f} | "
            f"{diff:+.2f} | {lab['peak_rss_mib']:.0f} | {tk['peak_rss_mib']:.0f} | {mem:.2f} |"
        )
    lab_total = sum(s["lab"]["seconds"] for s in results.values())
    tk_total = sum(s["tk"]["seconds"] for s in results.values())
    total_ratio = tk_total / lab_total
    worst_diff = max(
        abs(100 * (s["tk"]["test_accuracy"] - s["lab"]["test_accuracy"])) for s in results.values()
    )
    worst_mem = max(s["tk"]["peak_rss_mib"] / s["lab"]["peak_rss_mib"] for s in results.values())
    lines += [
        "",
        f"Whole protocol: lab {lab_total:.1f} s, transferkit {tk_total:.1f} s, ratio "
        f"{total_ratio:.2f} (target <= {TARGET_TOTAL}x: {verdict(total_ratio <= TARGET_TOTAL)}).",
        f"Accuracy: largest difference {worst_diff:.2f} pp (target within "
        f"{TARGET_ACCURACY_PP:.0f} pp: {verdict(worst_diff <= TARGET_ACCURACY_PP)}; one seed "
        "per side, so run-to-run noise of a few tenths of a point is expected).",
        f"Peak memory: largest ratio {worst_mem:.2f} (target <= {TARGET_MEMORY}x: "
        f"{verdict(worst_mem <= TARGET_MEMORY)}). Peak RSS is the child's `ru_maxrss`, "
        "including the Python, TensorFlow and data baseline that both sides share:",
    ]
    for strategy, sides in results.items():
        lines.append(
            f"  - {strategy}: above the baseline after loading the data, lab "
            f"{sides['lab']['peak_rss_mib'] - sides['lab']['baseline_rss_mib']:.0f} MiB, "
            f"transferkit {sides['tk']['peak_rss_mib'] - sides['tk']['baseline_rss_mib']:.0f} MiB"
        )
    return "\n".join(lines)


def throughput(results: dict[str, dict[str, dict[str, Any]]], peak: dict[str, Any]) -> str:
    lines = []
    if "full" not in results:
        return ""
    flops = forward_flops_per_image()
    for side in SIDES:
        r = results["full"][side]
        work = (3 * r["train_samples"] + r["val_samples"]) * flops * r["epochs"]
        gflops = work / r["fit_seconds"] / 1e9
        r["achieved_gflops"] = gflops
        lines.append(
            f"  - {side}: {work / 1e12:.2f} TFLOP in {r['fit_seconds']:.1f} s of fit = "
            f"{gflops:.1f} GFLOP/s = {100 * gflops / peak['peak_gflops']:.1f}% of peak"
        )
    return "\n".join(
        [
            f"Full fine-tuning throughput (forward {flops / 1e6:.2f} MFLOP/image analytically; "
            "3x forward per training image + 1x per validation image, per epoch):",
            *lines,
            f"  CPU peak estimate: {peak['peak_gflops']:.0f} GFLOP/s = {peak['assumption']}.",
        ]
    )


def parent(args: argparse.Namespace) -> None:
    out: Path = args.output_dir
    (out / "children").mkdir(parents=True, exist_ok=True)
    init = out / "children" / "initial_weights.npz"
    np.savez(init, *initial_weights(args.seed))
    peak = cpu_peak(args.flops_per_cycle)
    size = "quick: 2000/500/500 images" if args.quick else "50000/10000/10000 images"
    print(
        f"Lab protocol benchmark ({size}): "
        f"{args.epochs} epoch(s) ({args.fe_epochs} for the feature extractor), batch size "
        f"{args.batch_size}, seed {args.seed}; strategies {', '.join(args.strategies)}",
        flush=True,
    )
    print(f"CPU: {peak['cpu']}, {peak['cores']} cores, AVX-512: {peak['avx512']}", flush=True)
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for strategy in args.strategies:
        results[strategy] = {}
        for side in SIDES:
            print(f"\n--- {side} side, {strategy} ---", flush=True)
            results[strategy][side] = run_child(args, side, strategy, init)
            r = results[strategy][side]
            print(
                f"--- {side} {strategy}: {r['seconds']:.1f} s, test accuracy "
                f"{r['test_accuracy']:.4f}, peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    table = report(args, results)
    flops_text = throughput(results, peak)
    elapsed = time.perf_counter() - started
    text = f"{table}\n\n{flops_text}\n\nBenchmark wall time (incl. process starts): {elapsed:.0f} s"
    print(f"\n{text}")
    figures = {
        "config": {
            "quick": args.quick,
            "epochs": args.epochs,
            "fe_epochs": args.fe_epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "strategies": list(args.strategies),
        },
        "cpu": peak,
        "forward_flops_per_image": forward_flops_per_image(),
        "results": results,
        "totals": {
            "lab_seconds": sum(s["lab"]["seconds"] for s in results.values()),
            "tk_seconds": sum(s["tk"]["seconds"] for s in results.values()),
        },
        "targets": {
            "whole_protocol_ratio_max": TARGET_TOTAL,
            "full_ratio_max": TARGET_FULL,
            "frozen_speedup_min": TARGET_FROZEN_SPEEDUP,
            "accuracy_pp_max": TARGET_ACCURACY_PP,
            "memory_ratio_max": TARGET_MEMORY,
        },
        "wall_seconds": elapsed,
    }
    figures["totals"]["ratio"] = figures["totals"]["tk_seconds"] / figures["totals"]["lab_seconds"]
    payload = json.dumps(figures, indent=2) + "\n"
    (out / f"{SCRIPT}.json").write_text(payload)
    from transferkit.timing import machine_info  # imports Keras: only after the children ran

    provenance = f"Produced by `python {' '.join(sys.argv)}` on {machine_info()}."
    (out / f"{SCRIPT}.md").write_text(
        f"## Lab protocol: lab code vs transferkit\n\n{text}\n\n{provenance}\n"
    )
    written = [str(out / f"{SCRIPT}.json"), str(out / f"{SCRIPT}.md")]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(payload)
        written.append(str(args.json))
    print(f"Wrote {', '.join(written)}")


# ------------------------------------------------------------------------------------- child


def rss_mib() -> float:
    """Current resident set size of this process (VmRSS), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (`ru_maxrss`, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_data(args: argparse.Namespace) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    from transferkit.datasets import lab_split

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = lab_split(args.data_dir)
    if args.quick:
        x_train, y_train = x_train[:2000], y_train[:2000]
        x_val, y_val = x_val[:500], y_val[:500]
        x_test, y_test = x_test[:500], y_test[:500]
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def epoch_printer(tag: str) -> Any:
    """A callback printing one line per epoch (used identically by both sides)."""
    import keras

    class EpochLine(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(
                f"  [{tag}] epoch {epoch + 1}: {time.perf_counter() - self.t0:.1f} s - {shown}",
                flush=True,
            )

    return EpochLine()


def lab_side(args: argparse.Namespace, weights: list[np.ndarray[Any, Any]]) -> dict[str, Any]:
    """The lab's code, verbatim apart from the initial weights, seed and fit verbosity."""
    import keras
    from keras import layers, models, optimizers
    from keras.utils import to_categorical

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_data(args)
    y_train = to_categorical(y_train, num_classes=10)
    y_val = to_categorical(y_val, num_classes=10)
    y_test = to_categorical(y_test, num_classes=10)

    def create_model_fine_tuning(num_classes: int) -> keras.Model:
        base_model = models.Sequential(
            [
                layers.Input(shape=(28, 28, 1)),
                layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
                layers.MaxPooling2D(),
                layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
                layers.MaxPooling2D(),
                layers.Flatten(),
                layers.Dense(128, activation="relu"),
                layers.Dense(num_classes, activation="softmax"),
            ]
        )
        return base_model

    def create_model_freezing_layers(num_classes: int) -> keras.Model:
        base_model = create_model_fine_tuning(num_classes)
        for layer in base_model.layers[:4]:
            layer.trainable = False
        return base_model

    def create_model_feature_extractor(num_classes: int) -> keras.Model:  # cell [2]
        base_model = models.Sequential(
            [
                layers.Input(shape=(28, 28, 1)),
                layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
                layers.MaxPooling2D(),
                layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
                layers.MaxPooling2D(),
                layers.Flatten(),
            ]
        )
        for layer in base_model.layers:
            layer.trainable = False
        model = models.Sequential()
        model.add(base_model)
        model.add(layers.Dense(128, activation="relu"))
        model.add(layers.Dense(num_classes, activation="softmax"))
        return model

    def train_model(
        model: keras.Model, x_train: Any, y_train: Any, x_val: Any, y_val: Any,
        epochs: int = 10, batch_size: int = 64,
    ) -> Any:  # fmt: skip
        model.compile(
            loss="categorical_crossentropy", optimizer=optimizers.Adam(), metrics=["accuracy"]
        )
        history = model.fit(
            x_train, y_train, epochs=epochs, batch_size=batch_size,
            validation_data=(x_val, y_val), verbose=0, callbacks=[epoch_printer("lab")],
        )  # fmt: skip
        return history

    def evaluate_model(model: keras.Model, x_test: Any, y_test: Any) -> tuple[float, float]:
        test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
        return test_loss, test_acc

    num_classes = 10
    epochs = args.fe_epochs if args.strategy == "feature_extractor" else args.epochs
    create = {
        "full": create_model_fine_tuning,
        "partial": create_model_freezing_layers,
        "feature_extractor": create_model_feature_extractor,
    }[args.strategy]
    model = create(num_classes)
    if args.strategy == "feature_extractor":
        model.build((None, 28, 28, 1))
    model.set_weights(weights)
    keras.utils.set_random_seed(args.seed)
    baseline = rss_mib()

    t0 = time.perf_counter()
    history = train_model(
        model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=args.batch_size
    )
    t_fit = time.perf_counter()
    _, test_acc = evaluate_model(model, x_test, y_test)
    t1 = time.perf_counter()
    return {
        "seconds": t1 - t0,
        "fit_seconds": t_fit - t0,
        "test_accuracy": float(test_acc),
        "epochs": epochs,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "train_samples": len(x_train),
        "val_samples": len(x_val),
        "baseline_rss_mib": baseline,
    }


def tk_side(args: argparse.Namespace, weights: list[np.ndarray[Any, Any]]) -> dict[str, Any]:
    """The same protocol through `transferkit.compare_strategies`."""
    import transferkit as tk
    from transferkit.models import lab_cnn

    train, validation, test = load_data(args)
    model = lab_cnn()  # the lab's architecture, its initial weights
    model.set_weights(weights)
    strategy: Any = {
        "full": "full",
        "partial": tk.PartialFreeze(upto=4),
        "feature_extractor": tk.FeatureExtractor(cut="flatten", epochs=args.fe_epochs),
    }[args.strategy]
    baseline = rss_mib()

    t0 = time.perf_counter()
    comparison = tk.compare_strategies(
        model,
        [strategy],
        train=train,
        validation=validation,
        test=test,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seeds=[args.seed],
        optimizer="adam",
        callbacks=[epoch_printer("tk")],
        verbose=1,
    )
    t1 = time.perf_counter()
    run = comparison.runs[0]
    return {
        "seconds": t1 - t0,
        "fit_seconds": run.timing.total_seconds,
        "test_accuracy": run.metrics.accuracy,
        "f1_macro": run.metrics.f1_macro,
        "epochs": run.epochs,
        "history": run.history,
        "cache": run.cache,
        "train_samples": len(train[0]),
        "val_samples": len(validation[0]),
        "baseline_rss_mib": baseline,
    }


def child(args: argparse.Namespace) -> None:
    with np.load(args.init) as data:
        weights = [data[f"arr_{i}"] for i in range(len(data.files))]
    run = lab_side if args.side == "lab" else tk_side
    result = run(args, weights)
    import keras

    result.update(
        side=args.side,
        strategy=args.strategy,
        peak_rss_mib=peak_rss_mib(),
        backend=keras.backend.backend(),
        keras=keras.__version__,
    )
    args.result.write_text(json.dumps(result, indent=2) + "\n")


# -------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time the lab's hand-written Keras code against the same protocol through "
            "transferkit.compare_strategies (full fine-tuning, partial freezing, feature "
            "extractor), alternating the two, each side in its own process: seconds, test "
            "accuracy, peak memory, and the GFLOP/s of full fine-tuning against the CPU's "
            "estimated peak."
        )
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 2000/500/500 images, 1 epoch (2 for the feature extractor)",
    )
    parser.add_argument(
        "--epochs", type=int, default=10, help="epochs (default: %(default)s, as the lab)"
    )
    parser.add_argument(
        "--fe-epochs",
        type=int,
        default=20,
        help="epochs of the feature extractor (default: %(default)s, as the lab)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=64, help="batch size (default: %(default)s, as the lab)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and of training (default: %(default)s)",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=list(STRATEGIES),
        help="strategies to run (default: all three)",
    )
    parser.add_argument(
        "--flops-per-cycle",
        type=int,
        default=None,
        help="FP32 FLOPs per cycle per core for the peak estimate (default: 32 if the CPU has "
        "AVX-512 or AVX2+FMA, assumed)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write all figures here")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("runs") / SCRIPT,
        help="where to write results (default: %(default)s; --quick writes to OUTPUT_DIR/quick)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with the four Fashion-MNIST .gz files (default: standard locations)",
    )
    # Internal: the benchmark starts itself with these to run one side of one strategy.
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--strategy", choices=STRATEGIES, help=argparse.SUPPRESS)
    parser.add_argument("--init", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side is None:
        if args.quick:
            args.epochs, args.fe_epochs = 1, 2
            args.output_dir = args.output_dir / "quick"
    elif None in (args.strategy, args.init, args.result):
        parser.error("--side needs --strategy, --init and --result")
    for name in ("epochs", "fe_epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side is None:
        parent(args)
    else:
        child(args)


if __name__ == "__main__":
    main()
