"""Cached activations larger than memory: written to disk, streamed back in shuffled batches.

Over the `FeatureCache`'s memory budget, the frozen prefix's activations go chunk by chunk
into a `.npy` file opened as a `np.memmap` (`np.lib.format.open_memmap`) in a temporary
directory, and the remainder trains on a `keras.utils.PyDataset` that reads its batches from
that file. Each epoch draws a fresh permutation of all samples from the seed (so every sample
is seen once per epoch, as with in-memory shuffling); each batch is one slice of that
permutation, read in ascending row order for disk locality (the order of samples *within* a
batch does not change the batch's mean loss). The files go when the cache is closed: at the
end of `fine_tune` or `compare_strategies` for the cache they create, else by
`FeatureCache.close()` (and at exit at the latest).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .._chunks import Array, release_pages
from ..types import Model
from ._feed import predict_into


def check_cache_dir(cache_dir: Any) -> Path | None:
    """`cache_dir` as a `Path` to an existing, writable directory (None: the system's temp)."""
    if cache_dir is None:
        return None
    if not isinstance(cache_dir, str | os.PathLike):
        raise TypeError(
            f"`cache_dir` must be a path (str or os.PathLike) or None. Received: "
            f"cache_dir={cache_dir!r} of type {type(cache_dir).__name__}"
        )
    path = Path(cache_dir)
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise ValueError(
            f"`cache_dir` must be an existing directory for spilled activations, but it {what}. "
            f"Create it first or pass None for the system's temporary directory. Received: "
            f"cache_dir={str(cache_dir)!r}"
        )
    try:  # a real write: permission bits alone do not tell (root, ACLs, read-only mounts)
        handle, probe = tempfile.mkstemp(prefix=".transferkit-probe-", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(
            "`cache_dir` must be a directory this process can write to. Received: "
            f"cache_dir={str(cache_dir)!r} (not writable: {err.strerror})"
        ) from err
    return path


class SpillDir:
    """A temporary directory made on first use and removed by `remove` (or at exit)."""

    def __init__(self, parent: Path | None) -> None:
        self.parent = parent
        self.path: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def make(self) -> Path:
        """The directory, created now if it does not exist yet."""
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix="transferkit-cache-", dir=self.parent))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)
        return self.path

    def free_bytes(self) -> int:
        """Free space where the files would go."""
        return shutil.disk_usage(self.path or self.parent or tempfile.gettempdir()).free

    def remove(self) -> None:
        """Delete the directory and every file in it."""
        if self._finalizer is not None:
            self._finalizer()
        self.path, self._finalizer = None, None


def spilled_path(features: Array) -> str | None:
    """The file holding `features` if they were spilled to disk, else None."""
    name = getattr(features, "filename", None) if isinstance(features, np.memmap) else None
    return None if name is None else str(name)


def spill_features(
    prefix: Model,
    arrays: dict[str, Array],
    feature_shape: tuple[int, ...],
    batch_size: int,
    directory: Path,
    stem: str,
) -> dict[str, Array]:
    """The prefix's outputs for each array, written chunk by chunk to `.npy` files.

    Neither the inputs nor the outputs are ever whole in memory: after each chunk the pages of
    both (when they are memmaps) are handed back to the page cache.
    """
    out: dict[str, Array] = {}
    for name, x in arrays.items():
        path = directory / f"{stem}-{name}.npy"
        features = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(len(x), *feature_shape)
        )
        predict_into(prefix, x, features, batch_size)
        features.flush()
        out[name] = features
    return out


class FeatureStream(keras.utils.PyDataset):  # type: ignore[misc]
    """Batches of spilled activations and their labels, shuffled per epoch from `seed`.

    With `seed=None` the batches come in file order (validation).
    """

    def __init__(self, features: Array, labels: Array, batch_size: int, seed: int | None) -> None:
        super().__init__()
        self.features, self.labels, self.batch_size, self.seed = features, labels, batch_size, seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> Array | None:
        if self.seed is None:
            return None
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.features))

    def __len__(self) -> int:
        return -(-len(self.features) // self.batch_size)

    def batch_indices(self, index: int) -> Array | slice:
        """The rows of batch `index` this epoch: sorted indices, or a slice in file order."""
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return rows if self.order is None else np.sort(self.order[rows])

    def __getitem__(self, index: int) -> tuple[Array, Array]:
        rows = self.batch_indices(index)
        x = np.array(self.features[rows])  # a copy in memory: the mapping may drop its pages
        # After every batch: each row read maps its neighbours too (the kernel's fault-around,
        # 64 KiB), so a few batches of random rows would keep 100+ MiB of the file resident.
        release_pages(self.features)
        return x, self.labels[rows]

    def on_epoch_end(self) -> None:
        """Draw the next epoch's order."""
        self.epoch += 1
        self.order = self._order()
        release_pages(self.features)


def stream_fit_data(
    features: dict[str, Array],
    train_y: Array,
    validation_y: Array | None,
    batch_size: int,
    validation_batch_size: int,
    seed: int,
) -> tuple[FeatureStream, FeatureStream | None]:
    """`fit`'s training stream (shuffled from `seed`) and validation stream (in order)."""
    train = FeatureStream(features["train"], train_y, batch_size, seed)
    if validation_y is None:
        return train, None
    return train, FeatureStream(features["validation"], validation_y, validation_batch_size, None)
