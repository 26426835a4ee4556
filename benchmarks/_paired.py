"""Paired measurement helpers shared by the benchmarks.

This machine's speed drifts by up to 2x within minutes, so a benchmark never compares one run
of A with one run of B. It runs pairs, alternating or rotating the order from pair to pair
(A B, B A, ...), computes one ratio per pair, and reports the median with the min and max.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def rotation(names: Sequence[T], pair: int) -> list[T]:
    """The order of `names` in pair number `pair`: rotated by one each pair (A B, B A, ...)."""
    k = pair % len(names)
    return list(names[k:]) + list(names[:k])


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """Per-pair ratios and their median, min and max."""
    values = [n / d for n, d in zip(numerators, denominators, strict=True)]
    return {
        "ratios": values,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def spread(r: dict[str, Any], unit: str = "pair") -> str:
    """`0.78 (0.71-0.92, 3 pairs)`."""
    n = len(r["ratios"])
    return f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}, {n} {unit}{'s' * (n != 1)})"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, with the number of usable cores."""
    import os

    name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name}, {cores} cores"
