"""Reading arrays larger than memory piece by piece, without keeping them resident.

A `np.memmap` read through once still counts its pages in the process's resident memory until
the kernel needs them back; over a data set larger than memory that looks (and, on a shared
machine, acts) like holding the data in RAM. `release_pages` hands pages of a file-backed
array back to the page cache after a chunk has been used, so a pass over a memmap costs one
chunk of resident memory. Nothing here imports Keras.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Iterator, Sequence
from contextlib import suppress
from typing import Any, TypeAlias

import numpy as np

Array: TypeAlias = "np.ndarray[Any, Any]"
"""A NumPy array of any shape and dtype (memmaps included)."""

CHUNK_BYTES = 64 * 2**20
"""Bytes of an array read per step when hashing or checking it."""


def _backing_mmap(array: Any) -> mmap.mmap | None:
    """The shared file mapping behind `array` (a memmap or a view of one), else None."""
    while array is not None:
        if isinstance(array, np.memmap):
            # mode "c" is a private (copy-on-write) mapping: dropping its pages would discard
            # the caller's unsaved changes. Shared mappings keep them in the page cache.
            mapping = getattr(array, "_mmap", None)
            if array.mode != "c" and isinstance(mapping, mmap.mmap):
                return mapping
        array = getattr(array, "base", None)
    return None


def release_pages(array: Any) -> None:
    """Drop `array`'s file-backed pages from this process's resident memory (data kept).

    A no-op for in-memory arrays, copy-on-write memmaps and platforms without `madvise`.
    """
    mapping = _backing_mmap(array)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mapping is None or advice is None or mapping.closed:
        return
    with suppress(OSError, ValueError):  # an unsupported mapping: the pages stay, nothing breaks
        mapping.madvise(advice)


def return_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc `malloc_trim`); else a no-op.

    Training and prediction free many large temporary buffers; glibc keeps them mapped, so
    the process's resident memory only grows, and the cached activations of the next strategy
    would stack on top of the previous strategy's freed buffers.
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018  (absent outside glibc: AttributeError)
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None


def row_chunks(array: np.ndarray[Any, Any], max_bytes: int = CHUNK_BYTES) -> Iterator[slice]:
    """Slices of consecutive rows of `array`, each at most `max_bytes` (at least one row)."""
    n = len(array) if array.ndim else 1
    row = max(array.nbytes // max(n, 1), 1)
    step = max(max_bytes // row, 1)
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def count_nonfinite(x: np.ndarray[Any, Any]) -> int:
    """NaN and infinite values in a float array, counted chunk by chunk (no full-size mask)."""
    if x.ndim == 0:
        return int(not np.isfinite(x))
    bad = 0
    for rows in row_chunks(x):
        bad += int(np.count_nonzero(~np.isfinite(x[rows])))
        release_pages(x)
    return bad


def update_hash(h: Any, array: np.ndarray[Any, Any]) -> None:
    """Feed every byte of `array` to the hash `h` in chunks (the same digest as all at once)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    for start in range(0, len(flat), CHUNK_BYTES):
        h.update(flat[start : start + CHUNK_BYTES])
        release_pages(array)


def hash_arrays(h: Any, arrays: Sequence[np.ndarray[Any, Any]]) -> None:
    """Feed every byte of `arrays` (with their shapes and dtypes) into the hash `h`."""
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        update_hash(h, a)  # in chunks: no copy of a large array, a memmap never all resident
