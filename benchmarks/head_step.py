"""Benchmark: one epoch of the cached head against the lab's plain Keras epoch, paired.

The lab's "freeze some layers" and "feature extractor" methods run the frozen convolutional
body forward on every batch of every epoch. transferkit computes its output once and trains
only the 3136x128 and 128x10 Dense layers on the cached vectors. This script times one steady
training epoch (the last of a 3-epoch `fit`, validation included, as in the lab's `fit`) of
each side on the lab CNN and Fashion-MNIST (batch 64, Adam), for `PartialFreeze(upto=4)` and
`FeatureExtractor(cut="flatten")`. The sides alternate A B A B over `--pairs` pairs in one
process, from the same initial weights; the activations are computed once before timing (a
shared `FeatureCache`). It prints, per strategy, the median of the per-pair ratios
`lab epoch seconds / transferkit epoch seconds` with their min and max, the cached-epoch seconds
on this backend (run it once per `KERAS_BACKEND`), the CPU, whether the target (>= 5x) is
met, and the arithmetic floor: the seconds of one epoch's two large matrix products alone on
NumPy's BLAS, which no training step can go below.

Usage:

    python benchmarks/head_step.py                  # 50000/10000 images, 3 pairs
    python benchmarks/head_step.py --samples 10000 --pairs 5
    python benchmarks/head_step.py --quick          # CI smoke run (seconds)

Writes `head_step.md` and `head_step.json` to `--output-dir` (default `runs/head_step`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import transferkit as tk  # noqa: E402
from transferkit.datasets import lab_split  # noqa: E402
from transferkit.models import lab_cnn  # noqa: E402
from transferkit.timing import EpochTimer, machine_info  # noqa: E402

EPOCHS = 3  # each side times its last epoch: steady, no tracing, no first partial batch
TARGET = 5.0  # lab epoch seconds / cached-head epoch seconds, each strategy
STRATEGIES: dict[str, Any] = {
    "partial": tk.PartialFreeze(upto=4),
    "feature_extractor": tk.FeatureExtractor(cut="flatten"),
}


def lab_model(strategy: str, weights: list[Any]) -> keras.Model:
    """The lab's model for `strategy`, as its code builds it (cell [2] for the extractor)."""
    layers = keras.layers
    body = [
        layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D(),
        layers.Flatten(),
    ]
    head = [layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")]
    if strategy == "partial":
        model = keras.Sequential([keras.Input(shape=(28, 28, 1)), *body, *head])
        for layer in model.layers[:4]:
            layer.trainable = False
    else:
        base = keras.Sequential([keras.Input(shape=(28, 28, 1)), *body])
        for layer in base.layers:
            layer.trainable = False
        model = keras.Sequential([base, *head])
        model.build((None, 28, 28, 1))
    model.set_weights(weights)
    return model


def lab_epoch(strategy: str, weights: list[Any], data: dict[str, Any]) -> float:
    """Seconds of the lab's last epoch (`model.fit` with frozen layers on the images)."""
    model = lab_model(strategy, weights)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(
        data["x"], data["y_onehot"], epochs=EPOCHS, batch_size=64,
        validation_data=(data["x_val"], data["y_val_onehot"]), verbose=0, callbacks=[timer],
    )  # fmt: skip
    return float(timer.epoch_seconds[-1])


def tk_epoch(strategy: str, model: keras.Model, data: dict[str, Any], store: Any) -> float:
    """Seconds of transferkit's last epoch (the cached head; activations already cached)."""
    result = tk.fine_tune(
        model, (data["x"], data["y"]), validation=(data["x_val"], data["y_val"]),
        strategy=STRATEGIES[strategy], epochs=EPOCHS, batch_size=64, cache=store, verbose=0,
    )  # fmt: skip
    assert result.cache.used and result.cache.shared, result.cache.reason
    return float(result.timing.epoch_seconds[-1])


def matmul_floor(samples: int, features: int = 3136, units: int = 128) -> float:
    """Seconds of one epoch's large products alone, on NumPy's BLAS: per batch of 64, the
    batch times the kernel and the kernel's gradient (batch transposed times the output's
    gradient). The rest of a step (activations, loss, Adam, the data feed) is left out, so
    this is a floor no training step reaches; the median of 3 timings."""
    rng = np.random.default_rng(0)
    batch = rng.random((64, features), dtype=np.float32)
    kernel = rng.random((features, units), dtype=np.float32)
    grad = rng.random((64, units), dtype=np.float32)
    steps, times = -(-samples // 64), []
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(steps):
            batch @ kernel
            batch.T @ grad
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50000, help="training images")
    parser.add_argument("--val-samples", type=int, default=10000, help="validation images")
    parser.add_argument("--pairs", type=int, default=3, help="A B measurement pairs")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1000/250 images")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "head_step")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.val_samples, args.pairs = 1000, 250, 1
    if min(args.samples, args.val_samples, args.pairs) < 1:
        parser.error("--samples, --val-samples and --pairs must be >= 1")

    split = lab_split()
    x, y = split.train[0][: args.samples], split.train[1][: args.samples]
    x_val, y_val = split.validation[0][: args.val_samples], split.validation[1][: args.val_samples]
    data = {
        "x": x, "y": y, "x_val": x_val, "y_val": y_val,
        "y_onehot": keras.utils.to_categorical(y, 10),
        "y_val_onehot": keras.utils.to_categorical(y_val, 10),
    }  # fmt: skip
    keras.utils.set_random_seed(0)
    model = lab_cnn()  # random weights stand in for pretrained ones: cost does not depend on them
    weights = model.get_weights()
    store = tk.FeatureCache()
    tk.fine_tune(model, (x, y), validation=(x_val, y_val), strategy=STRATEGIES["partial"],
                 epochs=1, batch_size=64, cache=store, verbose=0)  # fmt: skip  # fills the cache
    backend = keras.backend.backend()
    rows = []
    for name in STRATEGIES:
        lab, ours = [], []
        for pair in range(args.pairs):
            lab.append(lab_epoch(name, weights, data))
            ours.append(tk_epoch(name, model, data, store))
            print(f"pair {pair + 1}/{args.pairs} {name}: lab {lab[-1]:.2f} s, "
                  f"transferkit {ours[-1]:.2f} s", flush=True)  # fmt: skip
        ratios = [a / b for a, b in zip(lab, ours, strict=True)]
        median = statistics.median(ratios)
        rows.append({
            "strategy": name, "median_ratio": median, "min_ratio": min(ratios),
            "max_ratio": max(ratios), "lab_seconds": lab, "transferkit_seconds": ours,
            "cached_epoch_seconds": statistics.median(ours), "met": median >= TARGET,
        })  # fmt: skip
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    lines = [
        f"One steady training epoch (validation included), lab code / transferkit's cached "
        f"head, {args.samples} + {args.val_samples} images, batch 64, Adam, {args.pairs} "
        f"pair(s), {backend}.",
        "",
        f"| strategy | median ratio | min | max | cached epoch (s, {backend}) | target >= "
        f"{TARGET:.0f}x |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {r['median_ratio']:.2f} | {r['min_ratio']:.2f} "
            f"| {r['max_ratio']:.2f} | {r['cached_epoch_seconds']:.2f} "
            f"| {'met' if r['met'] else 'missed'} |"
        )
    floor = matmul_floor(args.samples)
    gflops = 4 * 64 * 3136 * 128 * -(-args.samples // 64) / floor / 1e9
    lines += [
        "",
        f"Arithmetic floor: the 3136 x 128 kernel's two products over one epoch take "
        f"{floor:.2f} s on NumPy's BLAS here ({gflops:.0f} GFLOP/s); a cached epoch above is "
        "that plus the rest of Keras's step (activations, loss, Adam's update of 0.4 M "
        "weights, the data feed, validation).",
    ]
    lines += ["", f"Produced by `{command}` (KERAS_BACKEND={backend}) on {machine_info()}."]
    text = "\n".join(lines)
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "head_step.md").write_text(text + "\n")
    summary = {"backend": backend, "samples": args.samples, "rows": rows, "matmul_floor": floor}
    (args.output_dir / "head_step.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if np.isfinite([r["median_ratio"] for r in rows]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
