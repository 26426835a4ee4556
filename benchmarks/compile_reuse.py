"""Benchmark, paired: how much of a multi-seed comparison on cached activations is compilation,
and what reusing one compiled train function per remainder shape would save (Keras 3).

transferkit trains a frozen strategy's remainder (the head) on cached activations with a fresh
`compile` + `fit` per run, so each run traces its train and test functions again (the first
cached epoch costs several times a later one). This script trains the lab CNN's two frozen
heads (partial: `Flatten -> Dense(128) -> Dense(10)` on the 7x7x64 activations; feature
extractor: `Dense(128) -> Dense(10)` on the 3136 flat ones) for 3 seeds each, two ways:

* **A, fresh** (what transferkit does): per run a new remainder model, `compile`, `fit`.
* **B, reused**: one remainder per shape, compiled once; per run its weights and its
  optimizer's variables are reset to the run's start (the values right after building), and
  `fit` runs again on the train and test functions traced in the first run.

Both train the same epochs from the same initial weights with the same seeds; the script
checks that A and B end with the same weights (else the comparison would be meaningless).
Pairs run A B, B A, ... in one process (`keras.utils.clear_session()` between variants); each
run's compilation is also estimated as (first epoch - median later epoch).

Usage:

    python benchmarks/compile_reuse.py                  # 3 pairs, 10000 images, 5/10 epochs
    python benchmarks/compile_reuse.py --quick          # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _paired import cpu_model, ratios, rotation, spread  # noqa: E402

SCRIPT = Path(__file__).stem
VARIANTS = ("fresh", "reused")


def features(samples: int) -> dict[str, Any]:
    """The lab CNN's frozen-prefix activations (7x7x64) of `samples` training images."""
    import keras

    from transferkit.datasets import lab_split
    from transferkit.models import lab_cnn

    keras.utils.set_random_seed(0)
    (x, y), (xv, yv), _ = lab_split()
    x, y, xv, yv = x[:samples], y[:samples], xv[: samples // 4], yv[: samples // 4]
    model = lab_cnn()
    prefix = keras.Model(model.inputs, model.layers[3].output)
    f, fv = (prefix.predict(a, batch_size=256, verbose=0) for a in (x, xv))
    flat = (f.reshape(len(f), -1), y, fv.reshape(len(fv), -1), yv)
    return {"partial": (f, y, fv, yv), "feature_extractor": flat}


def head(shape: tuple[int, ...]) -> Any:
    import keras

    layers = [keras.layers.Flatten()] if len(shape) > 1 else []
    return keras.Sequential(
        [keras.Input(shape), *layers, keras.layers.Dense(128, activation="relu"),
         keras.layers.Dense(10, activation="softmax")]
    )  # fmt: skip


def epoch_times() -> Any:
    import keras

    class Times(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            self.epochs: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.epochs.append(time.perf_counter() - self.t0)

    return Times()


def variant(name: str, data: dict[str, Any], seeds: list[int], epochs: dict[str, int]) -> Any:
    """Train every (strategy, seed) run one way; its seconds, compile estimates and weights."""
    import keras

    keras.utils.clear_session()
    t0 = time.perf_counter()
    compile_s, weights, kept, fresh = [], [], {}, {}
    for strategy, (x, y, xv, yv) in data.items():
        for seed in seeds:
            keras.utils.set_random_seed(1000 + seed)
            start = [np.asarray(w) for w in head(x.shape[1:]).get_weights()]
            model = kept.get(strategy) if name == "reused" else None
            if model is None:
                model = head(x.shape[1:])
                model.compile(
                    optimizer="adam", loss="sparse_categorical_crossentropy",
                    metrics=["accuracy"], steps_per_execution=64,
                )  # fmt: skip
                model.optimizer.build(model.trainable_variables)
                kept[strategy] = model
                fresh[strategy] = [np.asarray(v) for v in model.optimizer.variables]
            for v, value in zip(model.optimizer.variables, fresh[strategy], strict=True):
                v.assign(value)
            model.set_weights(start)
            keras.utils.set_random_seed(seed)
            times = epoch_times()
            model.fit(
                x, y, batch_size=64, epochs=epochs[strategy], validation_data=(xv, yv),
                validation_batch_size=2048, verbose=0, callbacks=[times],
            )  # fmt: skip
            compile_s.append(times.epochs[0] - statistics.median(times.epochs[1:]))
            weights.append([np.asarray(w) for w in model.get_weights()])
    return time.perf_counter() - t0, compile_s, weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1 pair, tiny")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5, help="partial's epochs (default: 5)")
    parser.add_argument("--fe-epochs", type=int, default=10, help="feature extractor's epochs")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / SCRIPT)
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.samples, args.epochs, args.fe_epochs = 1, 512, 2, 2
        args.output_dir = args.output_dir / "quick"
    data = features(args.samples)
    epochs = {"partial": args.epochs, "feature_extractor": args.fe_epochs}
    seeds = [0, 1, 2]
    print(f"CPU: {cpu_model()}; {args.samples} images, epochs {epochs}, seeds {seeds}")
    seconds: dict[str, list[float]] = {v: [] for v in VARIANTS}
    compiles: dict[str, list[float]] = {v: [] for v in VARIANTS}
    final: dict[str, Any] = {}
    for pair in range(args.pairs):
        for name in rotation(VARIANTS, pair):
            s, c, final[name] = variant(name, data, seeds, epochs)
            seconds[name].append(s)
            compiles[name].append(sum(c))
            runs = " ".join(f"{x:.1f}" for x in c)
            print(f"pair {pair + 1} {name}: {s:.1f} s, est. compile {sum(c):.1f} s ({runs})")
    same = all(
        np.allclose(a, b, atol=1e-5)
        for wa, wb in zip(final["fresh"], final["reused"], strict=True)
        for a, b in zip(wa, wb, strict=True)
    )
    speedup = ratios(seconds["fresh"], seconds["reused"])
    share = [c / s for c, s in zip(compiles["fresh"], seconds["fresh"], strict=True)]
    text = (
        f"{args.pairs} pair(s) (A B, B A, ...), 2 strategies x 3 seeds, {args.samples} images, "
        f"epochs {epochs}, CPU {cpu_model()}.\n\n"
        f"- fresh (compile per run): {statistics.median(seconds['fresh']):.1f} s (median); "
        f"estimated compilation {statistics.median(compiles['fresh']):.1f} s = "
        f"{100 * statistics.median(share):.0f}% of it\n"
        f"- reused (one compiled function per shape): "
        f"{statistics.median(seconds['reused']):.1f} s (median); estimated compilation "
        f"{statistics.median(compiles['reused']):.1f} s\n"
        f"- fresh / reused: {spread(speedup)}; same final weights: {same}"
    )
    print(f"\n{text}")
    out: Path = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    figures = {"seconds": seconds, "compile_seconds": compiles, "speedup": speedup, "same": same}
    (out / f"{SCRIPT}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / f"{SCRIPT}.md").write_text(
        f"## Compilation in a 3-seed x 2-strategy comparison\n\n{text}\n\n"
        f"Produced by `python {' '.join(sys.argv)}`.\n"
    )
    if not same:
        sys.exit("fresh and reused runs ended with different weights")


if __name__ == "__main__":
    main()
