"""The time budget of transferkit's frozen strategies in the lab protocol, against their floor.

Used by `lab_protocol.py`'s transferkit child. For each frozen run (partial, feature extractor)
it splits the run's wall time into:

* **activation pass**: computing the cached frozen-prefix activations of the training and
  validation images (`CacheInfo.seconds`, 0 when the run reused an earlier run's);
* **compilation/tracing**, *estimated* as (first epoch's training part - the median of the later
  epochs' training parts) + (first validation pass - the median of the later ones); `n/a` with
  one epoch;
* **training epochs** and **validation** (per-epoch validation inside `fit`), compilation taken
  out; read from a Keras callback (`on_epoch_begin/end`, `on_test_begin/end`);
* **test evaluation** and **final validation metrics** (`transferkit.metrics.evaluate` of the
  trained model after training: on the test images, and on the cached validation activations
  through the trained remainder when the last phase trained on them in memory, else on the
  validation images), timed by wrapping the comparison runner's calls;
* **everything else**: the run's wall (its `run_strategy` plus both evaluations) minus the
  parts: copying and preparing the model, hashing the data for the cache key, `fit`'s own
  set-up and tear-down, callbacks, Python between phases.

Each item's **floor** is its arithmetic divided by a rate measured in the same process, after
the comparison ran (so the measurement does not warm up the timed run):

* conv rate: FLOPs of the two convolutions / seconds of the lab CNN's frozen prefix (the first 4
  layers) `predict`ing 2048 images at batch size 256 or 1024 (the faster; best of 3 each);
* matmul rates: NumPy `(64, 3136) @ (3136, 128)` (a training batch: the training floor) and
  `(2048, 3136) @ (3136, 128)` (a validation batch), best of several; forward-only items
  (validation, evaluation) use the faster of the two, since they may run at any batch size;
* Adam update: NumPy, in place, on the head's 402,250 weights, seconds per step (best of 5).

FLOPs count multiply-adds as 2. The head's training step is the first Dense's forward and
weight gradient (2x forward: no gradient for its input is needed) and 3x forward of the
second Dense; convolutions are 2*H*W*k*k*Cin*Cout; biases, activations and pooling are ignored.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

CONV_FLOPS = 2 * 28 * 28 * 9 * 1 * 32 + 2 * 14 * 14 * 9 * 32 * 64  # per image, forward
DENSE = ((3136, 128), (128, 10))
HEAD_FLOPS = sum(2 * i * o for i, o in DENSE)  # per image, forward
HEAD_TRAIN_FLOPS = 2 * (2 * 3136 * 128) + 3 * (2 * 128 * 10)  # per image, one training step
ITEMS = (
    ("activation", "activation pass"),
    ("compile", "compilation/tracing (est.)"),
    ("train", "training epochs"),
    ("validation", "validation (in fit)"),
    ("test", "test evaluation"),
    ("val_metrics", "final validation metrics"),
    ("other", "everything else"),
)


def best_seconds(call: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` timed calls of `call` (after one untimed warm-up call)."""
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure_rates(model: Any, x: np.ndarray[Any, Any], batch_size: int) -> dict[str, Any]:
    """Conv and matmul rates (GFLOP/s) and the Adam step's seconds, measured in this process."""
    import keras

    prefix = keras.Model(model.inputs, model.layers[3].output)
    images = np.resize(x, (2048, *x.shape[1:]))  # 2048 images, repeated if fewer
    conv = min(
        best_seconds(lambda b=b: prefix.predict(images, batch_size=b, verbose=0), 3)
        for b in (256, 1024)
    )
    rng = np.random.default_rng(0)
    w = rng.standard_normal(DENSE[0], dtype=np.float32)
    mm = {}
    for rows in (batch_size, 2048):
        a = rng.standard_normal((rows, DENSE[0][0]), dtype=np.float32)
        seconds = best_seconds(lambda a=a: a @ w, 20 if rows < 512 else 5)
        mm[rows] = 2 * rows * w.size / seconds / 1e9
    params = [rng.standard_normal(s, dtype=np.float32) for i, o in DENSE for s in ((i, o), (o,))]
    state = [(p, np.zeros_like(p), np.zeros_like(p), np.ones_like(p)) for p in params]

    def adam() -> None:
        for p, m, v, g in state:
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= 0.001 * m / (np.sqrt(v) + 1e-7)

    return {
        "conv_gflops": len(images) * CONV_FLOPS / conv / 1e9,
        "matmul_train_gflops": mm[batch_size],
        "matmul_eval_gflops": mm[2048],
        "adam_step_seconds": best_seconds(adam, 5),
        "source": (
            "conv: the frozen prefix's predict of 2048 training images at batch 256 and 1024, "
            "best of 3 each; "
            f"matmul: NumPy ({batch_size}, 3136) @ (3136, 128) and (2048, 3136) @ (3136, 128), "
            "best of 20 and 5; Adam: NumPy in place on the head's weights, best of 5; all in "
            "the transferkit child, after its run"
        ),
    }


def epoch_clock() -> Any:
    """A Keras callback recording each epoch's wall time and its validation pass's time."""
    import keras

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.fits: list[dict[str, Any]] = []

        def on_train_begin(self, logs: Any = None) -> None:
            self.fits.append({"t0": time.perf_counter(), "epochs": [], "val": []})

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t_epoch = time.perf_counter()

        def on_test_begin(self, logs: Any = None) -> None:
            self.t_val = time.perf_counter()

        def on_test_end(self, logs: Any = None) -> None:
            self.fits[-1]["val"].append(time.perf_counter() - self.t_val)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.fits[-1]["epochs"].append(time.perf_counter() - self.t_epoch)

        def on_train_end(self, logs: Any = None) -> None:
            self.fits[-1]["wall"] = time.perf_counter() - self.fits[-1].pop("t0")

    return EpochClock()


def instrument_runner() -> list[tuple[str, float]]:
    """Time the comparison runner's `run_strategy` and `evaluate` calls, in call order.

    Wraps the names in `transferkit.comparison._runner` (the benchmark's process only).
    """
    from transferkit.comparison import _runner

    calls: list[tuple[str, float]] = []

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                calls.append((name, time.perf_counter() - t0))

        return wrapper

    _runner.run_strategy = timed("run", _runner.run_strategy)  # type: ignore[attr-defined]
    _runner.evaluate = timed("evaluate", _runner.evaluate)  # type: ignore[attr-defined]
    return calls


def _steady(parts: list[float]) -> tuple[float | None, float]:
    """(first - median of the rest, sum - that) for per-epoch times; (None, sum) for one."""
    if len(parts) < 2:
        return None, sum(parts)
    extra = max(0.0, parts[0] - statistics.median(parts[1:]))
    return extra, sum(parts) - extra


def run_budget(
    run: Any, fits: list[dict[str, Any]], calls: list[tuple[str, float]], sizes: dict[str, int]
) -> dict[str, Any]:
    """Seconds per item of one run (`sizes`: n_train, n_val, n_test, batch_size)."""
    evals = [s for name, s in calls if name == "evaluate"]
    wall = sum(s for name, s in calls if name == "run") + sum(evals)
    train_parts = [e - sum(f["val"][i : i + 1]) for f in fits for i, e in enumerate(f["epochs"])]
    val_parts = [v for f in fits for v in f["val"]]
    compile_train, train = _steady(train_parts)
    compile_val, validation = _steady(val_parts)
    seconds: dict[str, float | None] = {
        "activation": sum(p.cache.seconds for p in run.phases),
        "compile": None if compile_train is None else compile_train + (compile_val or 0.0),
        "train": train,
        "validation": validation,
        "test": evals[0],
        "val_metrics": sum(evals[1:]),
    }
    seconds["other"] = wall - sum(s or 0.0 for s in seconds.values())
    last = run.phases[-1].cache  # trained on cached activations in memory: validated on them
    return {
        "seconds": seconds,
        "wall": wall,
        "epochs": len(train_parts),
        "steps_per_epoch": -(-sizes["n_train"] // sizes["batch_size"]),
        "activation_images": run.cache.nbytes // (4 * DENSE[0][0]) * bool(seconds["activation"]),
        "cached_eval": last.used and last.location == "memory",
        "shared_cache": bool(run.cache.shared),
        "fit_overhead": sum(f["wall"] - sum(f["epochs"]) for f in fits),
        **sizes,
    }


def floors(b: dict[str, Any], rates: dict[str, Any]) -> dict[str, float]:
    """The arithmetic floor of each item of budget `b`, in seconds, at the measured `rates`."""
    conv, mm = rates["conv_gflops"] * 1e9, rates["matmul_train_gflops"] * 1e9
    mm_eval = max(rates["matmul_eval_gflops"], rates["matmul_train_gflops"]) * 1e9
    per_eval_image = CONV_FLOPS / conv + HEAD_FLOPS / mm_eval
    per_val_image = HEAD_FLOPS / mm_eval if b.get("cached_eval") else per_eval_image
    steps = b["epochs"] * b["steps_per_epoch"]
    return {
        "activation": b["activation_images"] * CONV_FLOPS / conv,
        "compile": 0.0,
        "train": b["epochs"] * b["n_train"] * HEAD_TRAIN_FLOPS / mm
        + steps * rates["adam_step_seconds"],
        "validation": b["epochs"] * b["n_val"] * HEAD_FLOPS / mm_eval,
        "test": b["n_test"] * per_eval_image,
        "val_metrics": b["n_val"] * per_val_image,
        "other": 0.0,
    }


def table(budgets: dict[str, list[dict[str, Any]]]) -> str:
    """The budget as Markdown: per strategy and item, median seconds over pairs vs floor."""
    lines = [
        "| strategy | item | seconds (median) | floor s | seconds - floor | share of run |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for strategy, pairs in budgets.items():
        wall = statistics.median(b["wall"] for b in pairs)
        for key, label in ITEMS:
            values = [b["seconds"][key] for b in pairs if b["seconds"][key] is not None]
            floor = statistics.median(b["floors"][key] for b in pairs)
            if not values:
                lines.append(f"| {strategy} | {label} | n/a (1 epoch) | {floor:.2f} | | |")
                continue
            s = statistics.median(values)
            lines.append(
                f"| {strategy} | {label} | {s:.2f} | {floor:.2f} | {s - floor:+.2f} | "
                f"{100 * s / wall:.0f}% |"
            )
        total_floor = statistics.median(sum(b["floors"].values()) for b in pairs)
        lines.append(
            f"| {strategy} | **run wall** | **{wall:.2f}** | **{total_floor:.2f}** | "
            f"**{wall - total_floor:+.2f}** | 100% |"
        )
    return "\n".join(lines)


def rates_line(rates: list[dict[str, Any]]) -> str:
    """The measured rates (median over the transferkit children) and where they come from."""

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rates)

    return (
        f"Rates (median over the transferkit children): conv {med('conv_gflops'):.1f} GFLOP/s, "
        f"matmul {med('matmul_train_gflops'):.1f} GFLOP/s (training batch) and "
        f"{med('matmul_eval_gflops'):.1f} GFLOP/s (batch 2048), Adam "
        f"{1000 * med('adam_step_seconds'):.2f} ms/step. Source: {rates[0]['source']}."
    )
