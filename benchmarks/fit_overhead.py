"""Benchmark, paired: Keras's own training loop against a lean one, on a cached head.

On cached activations the feature extractor trains only the lab CNN's 3136x128 and 128x10
Dense layers, so each step is small and `fit`'s per-step machinery may weigh. On TensorFlow
with XLA, Keras's `train_function` asks its iterator for an *optional* next batch and branches
on it at every step; the lean loop here (`lean_train`) runs the same compiled `train_step` on
the same batches of the same epoch iterator, with each call's step count known in Python. Both
sides run `model.fit` (callbacks, validation, history unchanged) on a fresh model from the same
initial weights and seed; only `model.train_function` differs.

transferkit does not use the lean loop: an earlier experiment of the same kind measured 1.2 s
-> 1.0 s per epoch on an AVX-512 EPYC, but this script measured no gain on an AVX2 EPYC
(keras / lean 0.90, 0.49-1.01, 5 pairs), where the epoch is bound by its matrix products and
Adam's update. This script is kept to re-measure it on other CPUs (see
docs/guide/performance.md).

The script first checks that both give the same history (bitwise, as the batches and the
compiled step are the same), then times `--pairs` pairs, alternating the order (A B, B A, ...),
each side a fit of `1 + --epochs` epochs of which the median of the last `--epochs` counts
(the first compiles), and prints the median of the per-pair ratios `keras / lean` with min and
max, and the CPU. The features are random: the cost does not depend on their values.

Usage:

    python benchmarks/fit_overhead.py                 # 50000 + 10000 samples, 5 pairs
    python benchmarks/fit_overhead.py --quick         # CI smoke run (seconds)

Writes `fit_overhead.md` and `fit_overhead.json` to `--output-dir` (default
`runs/fit_overhead`). TensorFlow only (the lean loop is TensorFlow's).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402
import numpy as np  # noqa: E402

from transferkit.timing import EpochTimer, machine_info  # noqa: E402
from transferkit.training._feed import aligned_empty, cached_input, distributed  # noqa: E402


def lean_train(model: Any, batches: int) -> None:
    """Give `model`, compiled with XLA on TensorFlow, a leaner `train_function` (in place):
    the same compiled `train_step` on the same batches of `fit`'s own epoch iterator
    (`batches` per epoch), `steps_per_execution` steps per call, each call's count known in
    Python, no optional batches. Call it after `compile`, which resets the function."""
    if keras.backend.backend() != "tensorflow" or not model.jit_compile or distributed():
        return
    import tensorflow as tf  # only reached on the TensorFlow backend

    step = tf.function(model.train_step, jit_compile=True, reduce_retracing=True)

    def loop(iterator: Any, count: Any) -> Any:
        logs = step(next(iterator))
        body = lambda i, _: (i + 1, step(next(iterator)))  # noqa: E731
        return tf.while_loop(lambda i, _: i < count, body, (tf.constant(1), logs))[1]

    steps = tf.function(loop, reduce_retracing=True)

    done = 0

    def train_function(iterator: Any) -> Any:
        nonlocal done
        count = min(model.steps_per_execution, batches - done)
        done = (done + count) % batches
        return steps(iterator, tf.constant(count))

    model.train_function = train_function


def head(weights: list[Any] | None) -> keras.Model:
    """The lab CNN's classifier on its 3136 cached features, compiled as transferkit does."""
    model = keras.Sequential([
        keras.Input((3136,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    if weights is not None:
        model.set_weights(weights)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
        metrics=["accuracy"], steps_per_execution=64, jit_compile=True,
    )  # fmt: skip
    return model


def train(lean: bool, epochs: int, data: dict[str, Any], weights: list[Any]) -> tuple[float, Any]:
    """The median seconds of the epochs after the first of a seeded `fit` of a fresh head
    (validation included), and its history."""
    model = head(weights)
    if lean:
        lean_train(model, -(-len(data["y"]) // 64))
    timer = EpochTimer()
    keras.utils.set_random_seed(1)
    history = model.fit(
        data["x"], data["y"], batch_size=64, epochs=epochs, verbose=0, callbacks=[timer],
        validation_data=(data["x_val"], data["y_val"]), validation_batch_size=2000,
    )  # fmt: skip
    return statistics.median(timer.epoch_seconds[1:] or [math.nan]), history.history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50000, help="training samples")
    parser.add_argument("--val-samples", type=int, default=10000, help="validation samples")
    parser.add_argument("--pairs", type=int, default=5, help="A B measurement pairs")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per side and pair")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 2000/500 samples")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "fit_overhead")
    args = parser.parse_args(argv)
    if args.quick:
        args.samples, args.val_samples, args.pairs, args.epochs = 2000, 500, 1, 1
    if min(args.samples, args.val_samples, args.pairs, args.epochs) < 1:
        parser.error("--samples, --val-samples, --pairs and --epochs must be >= 1")

    rng = np.random.default_rng(0)
    features = np.abs(rng.standard_normal((args.samples + args.val_samples, 3136), np.float32))
    train_x = aligned_empty((args.samples, 3136))  # as the cache holds it: shared, not copied
    train_x[:] = features[: args.samples]
    data = {
        "x": cached_input(train_x), "y": rng.integers(0, 10, args.samples),
        "x_val": features[args.samples :], "y_val": rng.integers(0, 10, args.val_samples),
    }  # fmt: skip
    keras.utils.set_random_seed(0)
    weights = head(None).get_weights()
    same = train(False, 2, data, weights)[1] == train(True, 2, data, weights)[1]
    print(f"same history (2 epochs): {same}", flush=True)

    keras_s: list[float] = []
    lean_s: list[float] = []
    for pair in range(args.pairs):
        for lean in (False, True) if pair % 2 == 0 else (True, False):
            epoch = train(lean, 1 + args.epochs, data, weights)[0]
            (lean_s if lean else keras_s).append(epoch)
        print(f"pair {pair + 1}/{args.pairs}: keras {keras_s[-1]:.3f} s/epoch, "
              f"lean {lean_s[-1]:.3f} s/epoch", flush=True)  # fmt: skip
    ratios = [a / b for a, b in zip(keras_s, lean_s, strict=True)]
    median = statistics.median(ratios)
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    text = "\n".join([
        f"One steady epoch of the cached lab-CNN head ({args.samples} + {args.val_samples} "
        f"samples, batch 64, Adam, XLA, 64 steps per call, validation at batch 2000), "
        f"{args.pairs} pair(s), TensorFlow:",
        "",
        "| loop | s/epoch (median) |",
        "|---|---:|",
        f"| Keras `train_function` | {statistics.median(keras_s):.3f} |",
        f"| transferkit `lean_train` | {statistics.median(lean_s):.3f} |",
        "",
        f"keras / lean: {median:.2f} ({min(ratios):.2f}-{max(ratios):.2f}); same history: "
        f"{same}.",
        "",
        f"Produced by `{command}` on {machine_info()}.",
    ])  # fmt: skip
    print("\n" + text)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "fit_overhead.md").write_text(text + "\n")
    summary = {"keras_seconds": keras_s, "lean_seconds": lean_s, "ratios": ratios,
               "median_ratio": median, "same_history": same}  # fmt: skip
    (args.output_dir / "fit_overhead.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if same and np.isfinite(median) else 1


if __name__ == "__main__":
    raise SystemExit(main())
