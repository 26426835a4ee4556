"""Benchmark, paired: the lab's hand-written Keras code against the protocol through transferkit.

Both sides run the lab's protocol on the same machine, from the same initial weights:

* **lab**: the lab's code as written (`create_model_fine_tuning`, `create_model_freezing_layers`
  with `for layer in base_model.layers[:4]: layer.trainable = False`, the corrected
  `create_model_feature_extractor` of cell [2]: a frozen `Sequential` conv body plus new
  `Dense(128)` and `Dense(10)`), one-hot labels, `categorical_crossentropy`, Adam, batch size
  64, 10 epochs (20 for the feature extractor), plain `model.compile` / `model.fit` /
  `model.evaluate`, the three strategies one after another in one process.
* **transferkit**: ONE `compare_strategies(model, ["full", PartialFreeze(upto=4),
  FeatureExtractor(cut="flatten", epochs=20)], ...)` call, integer labels, the same optimizer,
  batch size and epochs; it also computes precision, recall, F1 and the confusion matrix.

**Paired.** This machine's speed drifts by up to 2x within minutes, so one pass of each side
cannot tell 0.9x from 1.1x. The benchmark runs `--pairs` pairs, each side in a fresh child
process, alternating the order (lab tk, tk lab, ...), and reports the median of the per-pair
ratios with their min and max. `--one-pass` runs one pair (for long runs; says so).

A side's *seconds*: for the lab, compile + fit + evaluate of each strategy, summed; for
transferkit, the whole `compare_strategies` call (copying the model, caching frozen
activations, training, all test metrics). Per strategy, transferkit's seconds are its run's
phases (caching included) and the lab's its compile + fit. Peak memory is each child's whole
process `ru_maxrss`.

The initial weights are drawn once, in NumPy, exactly as Keras initialises the lab's layers by
default (Glorot-uniform kernels, zero biases), and loaded into both sides' models.

Also reported: the achieved GFLOP/s of full fine-tuning. Forward FLOPs of the lab CNN per
image are counted analytically (convolution 2*H*W*k*k*Cin*Cout, dense 2*in*out; biases,
activations and pooling ignored); training is taken as 3x forward; validation adds one forward
pass per validation image per epoch. The CPU's peak is estimated as cores x GHz (from
/proc/cpuinfo) x FP32 FLOPs per cycle per core (assumed; see `--flops-per-cycle`).

Usage:

    python benchmarks/lab_protocol.py                        # 3 pairs, full protocol (~1 h)
    python benchmarks/lab_protocol.py --pairs 2 --epochs 3 --fe-epochs 6
    python benchmarks/lab_protocol.py --one-pass             # one pair
    python benchmarks/lab_protocol.py --quick                # CI smoke run (1 small pair)
    python benchmarks/lab_protocol.py --pairs 1 --samples 10000 \
        --strategies partial feature_extractor            # a reduced run of the frozen two

The transferkit side also reports the **time budget** of each frozen run (activation pass,
compilation, training epochs, validation, test evaluation, everything else) next to each
item's arithmetic floor; `_budget.py` says how each is measured and estimated.

Writes `lab_protocol.json` and `lab_protocol.md` to `--output-dir` (default
`runs/lab_protocol`; `--quick` writes to its `quick/` subfolder), and to `--json PATH` too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _budget  # noqa: E402
from _paired import cpu_model, ratios, rotation, spread, verdict  # noqa: E402

if TYPE_CHECKING:
    import keras

SCRIPT = Path(__file__).stem
STRATEGIES = ("full", "partial", "feature_extractor")
SIDES = ("lab", "tk")
TARGET_TOTAL = 0.45  # transferkit / lab seconds, whole protocol (median of pairs)
TARGET_FULL = 1.0  # transferkit / lab seconds, full fine-tuning (median of pairs)
TARGET_FROZEN_SPEEDUP = 5.0  # lab / transferkit seconds, partial and feature extractor
TARGET_ACCURACY_PP = 1.0  # |transferkit - lab| mean test accuracy, percentage points
TARGET_MEMORY = 1.5  # transferkit / lab whole-process peak RSS (median of pairs)


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


def run_child(args: argparse.Namespace, side: str, pair: int, init: Path) -> dict[str, Any]:
    """Run one side of the protocol in a fresh Python process; return its JSON result."""
    result = args.output_dir / "children" / f"{side}_{pair}.json"
    result.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--side", side,
        "--strategies", *args.strategies,
        "--init", str(init),
        "--result", str(result),
        "--epochs", str(args.epochs),
        "--fe-epochs", str(args.fe_epochs),
        "--batch-size", str(args.batch_size),
        "--seed", str(args.seed),
        "--samples", str(args.samples),
    ]  # fmt: skip
    if args.data_dir is not None:
        command += ["--data-dir", str(args.data_dir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0 or not result.exists():
        sys.exit(f"The {side} side of pair {pair + 1} failed (exit code {completed.returncode}).")
    loaded: dict[str, Any] = json.loads(result.read_text())
    return loaded


def summarise(args: argparse.Namespace, sides: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per-pair ratios (transferkit / lab) per strategy, of the whole protocol and of memory."""
    lab, tk = sides["lab"], sides["tk"]
    per_strategy = {}
    for strategy in args.strategies:
        seconds = ratios(
            [p["runs"][strategy]["seconds"] for p in tk],
            [p["runs"][strategy]["fit_seconds"] for p in lab],
        )
        accuracy = {
            side: statistics.mean(p["runs"][strategy]["test_accuracy"] for p in sides[side])
            for side in SIDES
        }
        diff = 100 * (accuracy["tk"] - accuracy["lab"])
        if strategy == "full":
            ok, target = seconds["median"] <= TARGET_FULL, f"<= {TARGET_FULL:.2f}x"
        else:
            ok = 1 / seconds["median"] >= TARGET_FROZEN_SPEEDUP
            target = f">= {TARGET_FROZEN_SPEEDUP:.0f}x faster (is {1 / seconds['median']:.1f}x)"
        per_strategy[strategy] = {
            "seconds_ratio": seconds,
            "time_target": target,
            "time_met": ok,
            "lab_accuracy": accuracy["lab"],
            "tk_accuracy": accuracy["tk"],
            "accuracy_diff_pp": diff,
            "accuracy_met": abs(diff) <= TARGET_ACCURACY_PP,
            "tk_cache": tk[-1]["runs"][strategy].get("cache"),
        }
    total = ratios([p["seconds"] for p in tk], [p["seconds"] for p in lab])
    memory = ratios([p["peak_rss_mib"] for p in tk], [p["peak_rss_mib"] for p in lab])
    return {
        "strategies": per_strategy,
        "total_ratio": total,
        "total_met": total["median"] <= TARGET_TOTAL,
        "memory_ratio": memory,
        "memory_met": memory["median"] <= TARGET_MEMORY,
    }


def report(
    args: argparse.Namespace, sides: dict[str, list[dict[str, Any]]], s: dict[str, Any]
) -> str:
    """The human-readable tables (Markdown)."""
    n = len(sides["lab"])
    lines = [
        f"{n} pair(s), order alternating (lab tk, tk lab, ...), each side in a fresh process"
        + (" (--one-pass: a single pair cannot separate 0.9x from 1.1x here)" if n == 1 else "")
        + ".",
        "",
        "| strategy | lab s (median) | transferkit s (median) | tk/lab: median (min-max) | target "
        "| lab acc | tk acc | diff pp |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for strategy, row in s["strategies"].items():
        lab_s = statistics.median(p["runs"][strategy]["fit_seconds"] for p in sides["lab"])
        tk_s = statistics.median(p["runs"][strategy]["seconds"] for p in sides["tk"])
        lines.append(
            f"| {strategy} | {lab_s:.1f} | {tk_s:.1f} | {spread(row['seconds_ratio'])} | "
            f"{row['time_target']}: {verdict(row['time_met'])} | {row['lab_accuracy']:.4f} | "
            f"{row['tk_accuracy']:.4f} | {row['accuracy_diff_pp']:+.2f} |"
        )
    lab_total = statistics.median(p["seconds"] for p in sides["lab"])
    tk_total = statistics.median(p["seconds"] for p in sides["tk"])
    lab_mem = statistics.median(p["peak_rss_mib"] for p in sides["lab"])
    tk_mem = statistics.median(p["peak_rss_mib"] for p in sides["tk"])
    worst = max(abs(r["accuracy_diff_pp"]) for r in s["strategies"].values())
    lines += [
        "",
        f"Whole protocol: lab {lab_total:.1f} s, transferkit {tk_total:.1f} s (medians); "
        f"tk/lab {spread(s['total_ratio'])} (target <= {TARGET_TOTAL}x: "
        f"{verdict(s['total_met'])}).",
        f"Accuracy: largest difference of the mean test accuracies {worst:.2f} pp (target "
        f"within {TARGET_ACCURACY_PP:.0f} pp: {verdict(worst <= TARGET_ACCURACY_PP)}).",
        f"Peak memory (whole process): lab {lab_mem:.0f} MiB, transferkit {tk_mem:.0f} MiB "
        f"(medians); tk/lab {spread(s['memory_ratio'])} (target <= {TARGET_MEMORY}x: "
        f"{verdict(s['memory_met'])}).",
    ]
    return "\n".join(lines)


def throughput(sides: dict[str, list[dict[str, Any]]], peak: dict[str, Any]) -> str:
    if "full" not in sides["lab"][0]["runs"]:
        return ""
    flops = forward_flops_per_image()
    lines = []
    for side in SIDES:
        first = sides[side][0]
        run = first["runs"]["full"]
        fit = statistics.median(p["runs"]["full"]["fit_seconds"] for p in sides[side])
        work = (3 * first["train_samples"] + first["val_samples"]) * flops * run["epochs"]
        gflops = work / fit / 1e9
        lines.append(
            f"  - {side}: {work / 1e12:.2f} TFLOP in {fit:.1f} s of fit (median) = "
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


def budget_text(sides: dict[str, list[dict[str, Any]]]) -> str:
    """The time budget of transferkit's frozen runs against their floor (see `_budget`)."""
    frozen = [s for s in sides["tk"][0]["runs"] if s != "full"]
    if not frozen:
        return ""
    budgets = {s: [p["runs"][s]["budget"] for p in sides["tk"]] for s in frozen}
    reach = []
    for strategy in frozen:
        lab_s = statistics.median(p["runs"][strategy]["fit_seconds"] for p in sides["lab"])
        floor = statistics.median(sum(b["floors"].values()) for b in budgets[strategy])
        need = lab_s / TARGET_FROZEN_SPEEDUP
        reach.append(
            f"- {strategy}: {TARGET_FROZEN_SPEEDUP:.0f}x faster needs a run of <= {need:.1f} s "
            f"(lab {lab_s:.1f} s / {TARGET_FROZEN_SPEEDUP:.0f}); its floors sum to "
            f"{floor:.1f} s, so at most {lab_s / floor:.1f}x is reachable at these rates"
            + (" (the target is below the floor)." if floor > need else ".")
        )
    return "\n".join(
        [
            "Time budget of transferkit's frozen runs (seconds; compilation/tracing estimated "
            "as first epoch - median later epoch, training and validation parts each; floor = "
            "FLOPs / a rate measured in the same process; see benchmarks/_budget.py):",
            "",
            _budget.table(budgets),
            "",
            *reach,
            "",
            _budget.rates_line([p["rates"] for p in sides["tk"]]),
        ]
    )


def parent(args: argparse.Namespace) -> None:
    out: Path = args.output_dir
    (out / "children").mkdir(parents=True, exist_ok=True)
    init = out / "children" / "initial_weights.npz"
    np.savez(init, *initial_weights(args.seed))
    peak = cpu_peak(args.flops_per_cycle)
    print(
        f"Lab protocol benchmark ({args.samples or 'all 50000'} training images): "
        f"{args.epochs} epoch(s) ({args.fe_epochs} for the feature extractor), batch size "
        f"{args.batch_size}, seed {args.seed}; strategies {', '.join(args.strategies)}; "
        f"{args.pairs} pair(s)",
        flush=True,
    )
    print(f"CPU: {cpu_model()}, AVX-512: {peak['avx512']}", flush=True)
    started = time.perf_counter()
    sides: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for pair in range(args.pairs):
        for side in rotation(SIDES, pair):
            print(f"\n--- pair {pair + 1}/{args.pairs}: {side} side ---", flush=True)
            r = run_child(args, side, pair, init)
            sides[side].append(r)
            runs = ", ".join(
                f"{k} {v['seconds']:.1f} s acc {v['test_accuracy']:.4f}"
                for k, v in r["runs"].items()
            )
            print(
                f"--- pair {pair + 1} {side}: {r['seconds']:.1f} s ({runs}), peak RSS "
                f"{r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    summary = summarise(args, sides)
    text = report(args, sides, summary)
    flops_text = throughput(sides, peak)
    elapsed = time.perf_counter() - started
    text = "\n\n".join(t for t in (text, flops_text, budget_text(sides)) if t)
    text += f"\n\nBenchmark wall time (incl. process starts): {elapsed:.0f} s"
    print(f"\n{text}")
    figures = {
        "config": {
            "samples": args.samples,
            "epochs": args.epochs,
            "fe_epochs": args.fe_epochs,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "strategies": list(args.strategies),
            "pairs": args.pairs,
        },
        "cpu": {**peak, "model": cpu_model()},
        "forward_flops_per_image": forward_flops_per_image(),
        "summary": summary,
        "sides": sides,
        "targets": {
            "whole_protocol_ratio_max": TARGET_TOTAL,
            "full_ratio_max": TARGET_FULL,
            "frozen_speedup_min": TARGET_FROZEN_SPEEDUP,
            "accuracy_pp_max": TARGET_ACCURACY_PP,
            "memory_ratio_max": TARGET_MEMORY,
        },
        "wall_seconds": elapsed,
    }
    payload = json.dumps(figures, indent=2) + "\n"
    (out / f"{SCRIPT}.json").write_text(payload)
    from transferkit.timing import machine_info  # imports Keras: only after the children ran

    provenance = f"Produced by `python {' '.join(sys.argv)}` on {machine_info()}."
    (out / f"{SCRIPT}.md").write_text(
        f"## Lab protocol: lab code vs transferkit, paired\n\n{text}\n\n{provenance}\n"
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
    if args.samples:
        n = args.samples
        x_train, y_train = x_train[:n], y_train[:n]
        x_val, y_val = x_val[: n // 4], y_val[: n // 4]
        x_test, y_test = x_test[: n // 4], y_test[: n // 4]
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
    """The lab's code, verbatim apart from the initial weights, seed and fit verbosity.

    The strategies run one after another in this process, as in the lab's notebook.
    """
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
    create = {
        "full": create_model_fine_tuning,
        "partial": create_model_freezing_layers,
        "feature_extractor": create_model_feature_extractor,
    }
    baseline = rss_mib()
    runs: dict[str, dict[str, Any]] = {}
    for strategy in args.strategies:
        epochs = args.fe_epochs if strategy == "feature_extractor" else args.epochs
        model = create[strategy](num_classes)
        if strategy == "feature_extractor":
            model.build((None, 28, 28, 1))
        model.set_weights(weights)
        keras.utils.set_random_seed(args.seed)
        t0 = time.perf_counter()
        history = train_model(
            model, x_train, y_train, x_val, y_val, epochs=epochs, batch_size=args.batch_size
        )
        t_fit = time.perf_counter()
        _, test_acc = evaluate_model(model, x_test, y_test)
        runs[strategy] = {
            "seconds": time.perf_counter() - t0,
            "fit_seconds": t_fit - t0,
            "test_accuracy": float(test_acc),
            "epochs": epochs,
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        }
    return {
        "seconds": sum(r["seconds"] for r in runs.values()),
        "runs": runs,
        "train_samples": len(x_train),
        "val_samples": len(x_val),
        "baseline_rss_mib": baseline,
    }


def tk_side(args: argparse.Namespace, weights: list[np.ndarray[Any, Any]]) -> dict[str, Any]:
    """The same protocol through one `transferkit.compare_strategies` call."""
    import transferkit as tk
    from transferkit.models import lab_cnn

    train, validation, test = load_data(args)
    model = lab_cnn()  # the lab's architecture, its initial weights
    model.set_weights(weights)
    chosen: dict[str, Any] = {
        "full": "full",
        "partial": tk.PartialFreeze(upto=4),
        "feature_extractor": tk.FeatureExtractor(cut="flatten", epochs=args.fe_epochs),
    }
    baseline = rss_mib()
    clock, calls = _budget.epoch_clock(), _budget.instrument_runner()

    t0 = time.perf_counter()
    comparison = tk.compare_strategies(
        model,
        [chosen[s] for s in args.strategies],
        train=train,
        validation=validation,
        test=test,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seeds=[args.seed],
        optimizer="adam",
        callbacks=[epoch_printer("tk"), clock],
        verbose=1,
    )
    seconds = time.perf_counter() - t0
    rates = _budget.measure_rates(model, train[0], args.batch_size)  # after: no warm-up
    sizes = {"n_train": len(train[0]), "n_val": len(validation[0]), "n_test": len(test[0])}
    sizes["batch_size"] = args.batch_size
    fits, runs = list(clock.fits), {}
    starts = [i for i, (name, _) in enumerate(calls) if name == "run"] + [len(calls)]
    for i, (strategy, run) in enumerate(zip(args.strategies, comparison.runs, strict=True)):
        own, fits = fits[: len(run.phases)], fits[len(run.phases) :]
        budget = _budget.run_budget(run, own, calls[starts[i] : starts[i + 1]], sizes)
        budget["floors"] = _budget.floors(budget, rates) if strategy != "full" else None
        runs[strategy] = {
            "budget": budget,
            "seconds": sum(p.seconds for p in run.phases),
            "fit_seconds": run.timing.train_seconds,
            "test_accuracy": run.metrics.accuracy,
            "f1_macro": run.metrics.f1_macro,
            "epochs": run.epochs,
            "history": run.history,
            "cache": run.cache.to_dict(),
        }
    return {
        "seconds": seconds,
        "runs": runs,
        "rates": rates,
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
        peak_rss_mib=peak_rss_mib(),
        backend=keras.backend.backend(),
        keras=keras.__version__,
    )
    args.result.write_text(json.dumps(result, indent=2) + "\n")


# -------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time the lab's hand-written Keras code against the same protocol through one "
            "transferkit.compare_strategies call (full fine-tuning, partial freezing, feature "
            "extractor), in pairs of fresh processes with alternating order: median ratios, "
            "test accuracy, peak memory, and the GFLOP/s of full fine-tuning."
        )
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 500/125/125 images, 1 epoch (2 for the feature extractor), 1 pair",
    )
    parser.add_argument("--pairs", type=int, default=3, help="pairs to run (default: %(default)s)")
    parser.add_argument(
        "--one-pass", action="store_true", help="one pair only (long runs; cannot beat the noise)"
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=0,
        help="training images (validation and test get a quarter); default: the lab's 50000",
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
    # Internal: the benchmark starts itself with these to run one side.
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--init", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side is None:
        if args.quick:
            args.samples, args.epochs, args.fe_epochs, args.pairs = 500, 1, 2, 1
            args.output_dir = args.output_dir / "quick"
        if args.one_pass:
            args.pairs = 1
    elif None in (args.init, args.result):
        parser.error("--side needs --init and --result")
    for name in ("epochs", "fe_epochs", "batch_size", "pairs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.samples < 0:
        parser.error("--samples must be at least 0 (0: all)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side is None:
        parent(args)
    else:
        child(args)


if __name__ == "__main__":
    main()
