"""Benchmark: a feature extractor on data larger than its cache budget, time and peak memory.

The lab CNN (with a `Rescaling(1/255)` in front) trains as a feature extractor
(`FeatureExtractor(cut="flatten")`: 3136 cached floats, 12.25 KiB, per image) for one epoch on
N images made by repeating Fashion-MNIST's 60,000 training images with shifts and flips. The
images are a uint8 `.npy` file opened as a memmap, so the input never has to fit in RAM, and
the cache's memory budget is fixed (256 MiB by default), so above a few thousand images the
activations spill to disk and training streams them from there. Each size runs in a fresh
subprocess that reports its peak resident memory (`VmHWM`) before and after training.

Targets: time per sample flat (the largest size within 1.3x of the smallest's: linear time),
and peak memory flat (the largest size's peak at most 64 MiB above the smallest's), although the
input and the cached activations grow far beyond the budget. The table also shows how far the
peak rose above the process's footprint before training (TensorFlow's working memory, batches
and a chunk of activations).

Usage:

    python benchmarks/cache_scaling.py                       # 50k, 200k, 500k images
    python benchmarks/cache_scaling.py --sizes 20000 100000 --budget-mib 128
    python benchmarks/cache_scaling.py --quick               # CI smoke run (tiny sizes)

Writes `cache_scaling.md`, `cache_scaling.json` and `cache_scaling.png` to `--output-dir`
(default `runs/cache_scaling`). Needs about 13 KiB of free disk per image in `--work-dir`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHIFTS = ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1))
TIME_TARGET, GROWTH_TARGET_MIB = 1.3, 64


def make_images(n: int, directory: Path) -> tuple[Path, Path]:
    """N augmented Fashion-MNIST images as a uint8 `.npy` memmap, written 60,000 at a time."""
    from transferkit.datasets import load_fashion_mnist

    (x, y), _ = load_fashion_mnist()
    images, labels = directory / f"x{n}.npy", directory / f"y{n}.npy"
    out = np.lib.format.open_memmap(images, mode="w+", dtype=np.uint8, shape=(n, 28, 28, 1))
    for copy, start in enumerate(range(0, n, len(x))):
        part = x[: min(len(x), n - start)]
        dy, dx = SHIFTS[copy % len(SHIFTS)]
        part = np.roll(part, (dy, dx), axis=(1, 2))
        out[start : start + len(part), ..., 0] = part[:, :, ::-1] if copy % 2 else part
    out.flush()
    del out
    np.save(labels, np.resize(y, n).astype(np.int32))
    return images, labels


def peak_mib() -> float:
    """This process's peak resident memory so far, in MiB.

    On Linux `VmHWM`: `ru_maxrss` survives `exec` and so would include the parent's peak
    at the fork (the parent wrote the images), which grows with N.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(images: Path, labels: Path, budget_mib: int, batch_size: int, cache_dir: str) -> None:
    """One measurement in this (fresh) process; prints one JSON line."""
    import keras

    import transferkit as tk
    from transferkit.models import lab_cnn

    x = np.load(images, mmap_mode="r")
    y = np.load(labels)
    keras.utils.set_random_seed(0)
    base = lab_cnn()
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Rescaling(1 / 255), *base.layers]
    )
    store = tk.FeatureCache(budget_bytes=budget_mib * 2**20, cache_dir=cache_dir)
    before = peak_mib()
    start = time.perf_counter()
    result = tk.fine_tune(
        model, (x, y), strategy=tk.FeatureExtractor(cut="flatten"), epochs=1,
        batch_size=batch_size, seed=0, verbose=0, cache=store,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    store.close()
    leftover = os.listdir(cache_dir)
    print(json.dumps({
        "samples": len(x), "seconds": seconds, "cache_seconds": result.cache.seconds,
        "epoch_seconds": result.timing.epoch_seconds[0], "peak_before_mib": before,
        "peak_mib": peak_mib(), "cache_location": result.cache.location,
        "cache_mib": result.cache.nbytes / 2**20, "input_mib": x.nbytes / 2**20,
        "loss": result.history["loss"][0], "accuracy": result.history["accuracy"][0],
        "files_left": leftover,
    }))  # fmt: skip


def measure(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    images, labels = make_images(n, work)
    cache_dir = work / "cache"
    cache_dir.mkdir(exist_ok=True)
    command = [
        sys.executable,
        __file__,
        "--child",
        str(images),
        str(labels),
        str(cache_dir),
        "--budget-mib",
        str(args.budget_mib),
        "--batch-size",
        str(args.batch_size),
    ]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    images.unlink()
    labels.unlink()
    row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    row["us_per_sample"] = row["seconds"] / n * 1e6
    return row


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    import keras

    from transferkit.timing import machine_info

    first, last = rows[0], rows[-1]
    time_ratio = last["us_per_sample"] / first["us_per_sample"]
    growth = last["peak_mib"] - first["peak_mib"]
    over = max(r["peak_mib"] - r["peak_before_mib"] for r in rows)
    verdict = {
        "time_ratio": time_ratio,
        "time_met": time_ratio <= TIME_TARGET,
        "peak_growth_mib": growth,
        "max_peak_over_before_mib": over,
        "memory_met": growth <= GROWTH_TARGET_MIB,
    }
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    lines = [
        f"Feature extractor of the lab CNN (`cut='flatten'`), 1 epoch, batch {args.batch_size}, "
        f"cache budget {args.budget_mib} MiB, {keras.backend.backend()}, input a uint8 memmap.",
        "",
        "| images | input MiB | cache MiB (where) | total s | of which caching s | "
        "us / image | peak RSS before fit MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['samples']:,} | {r['input_mib']:.0f} | {r['cache_mib']:.0f} "
            f"({r['cache_location']}) | {r['seconds']:.1f} | {r['cache_seconds']:.1f} "
            f"| {r['us_per_sample']:.0f} | {r['peak_before_mib']:.0f} | {r['peak_mib']:.0f} |"
        )
    lines += [
        "",
        f"- Time per image, largest over smallest size: {time_ratio:.2f}x (target <= "
        f"{TIME_TARGET}, linear time): {'met' if verdict['time_met'] else 'missed'}.",
        f"- Peak RSS growth from smallest to largest size: {growth:.0f} MiB (target <= "
        f"{GROWTH_TARGET_MIB}, flat): {'met' if verdict['memory_met'] else 'missed'}. The peak "
        f"rose at most {over:.0f} MiB above the footprint before training (budget "
        f"{args.budget_mib} MiB).",
        "",
        f"Produced by `{command}` on {machine_info()}.",
    ]
    return "\n".join(lines), verdict


def plot(rows: list[dict[str, Any]], budget_mib: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["samples"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(n, [r["us_per_sample"] for r in rows], "o-")
    left.set(
        xlabel="images", ylabel="microseconds per image", title="Time per image", ylim=(0, None)
    )
    right.plot(n, [r["peak_mib"] for r in rows], "o-", label="peak RSS")
    right.plot(n, [r["cache_mib"] for r in rows], "s--", label="cached activations (disk)")
    right.axhline(rows[0]["peak_before_mib"] + budget_mib, color="grey", ls=":",
                  label="footprint before fit + budget")  # fmt: skip
    right.set(xlabel="images", ylabel="MiB", title="Memory", yscale="log")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 500_000])
    parser.add_argument("--budget-mib", type=int, default=256, help="the cache's memory budget")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: 1000 and 2000 images")
    parser.add_argument("--output-dir", type=Path, default=Path("runs") / "cache_scaling")
    parser.add_argument("--work-dir", type=Path, default=None, help="for the inputs and cache")
    parser.add_argument("--child", nargs=3, metavar=("IMAGES", "LABELS", "CACHE_DIR"))
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.budget_mib, args.batch_size,
              args.child[2])  # fmt: skip
        return 0
    if args.quick:
        args.sizes, args.budget_mib = [1000, 2000], 4
    if min(args.sizes) < 1 or args.budget_mib < 0 or args.sizes != sorted(args.sizes):
        parser.error("--sizes must be positive and ascending, --budget-mib >= 0")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work_dir, prefix="cache-scaling-") as work:
        for n in args.sizes:
            rows.append(measure(n, args, Path(work)))
            r = rows[-1]
            print(
                f"{n:>8,} images: {r['seconds']:7.1f} s, {r['us_per_sample']:6.0f} us/image, "
                f"peak {r['peak_mib']:6.0f} MiB, cache {r['cache_location']}",
                flush=True,
            )
            if r["files_left"]:
                raise SystemExit(f"spilled files were left behind: {r['files_left']}")
            text = write(rows, args)  # after every size: a long run interrupted keeps its rows
    print("\n" + text)
    return 0


def write(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The table, JSON and plot of the sizes measured so far, in `--output-dir`."""
    text, verdict = report(rows, args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "cache_scaling.md").write_text(text + "\n")
    payload = {"budget_mib": args.budget_mib, "rows": rows, **verdict}
    (args.output_dir / "cache_scaling.json").write_text(json.dumps(payload, indent=2) + "\n")
    plot(rows, args.budget_mib, args.output_dir / "cache_scaling.png")
    return text


if __name__ == "__main__":
    raise SystemExit(main())
