"""Shared helpers for the training tests: small data, tiny models, snapshots, probes.

Used by test_strategies, test_train, test_cache, test_compare and test_comparison. Everything
here is backend-agnostic (NumPy and Keras only, never TensorFlow directly) and cheap: data are
cached per process, models are tiny unless a test needs the lab CNN.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

import transferkit as tk
from transferkit.models import lab_cnn as lab_cnn  # re-exported for the tests

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

# --------------------------------------------------------------------------- data


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=1)
def _fashion_head(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    try:
        from transferkit.datasets import load_fashion_mnist

        (x, y), _ = load_fashion_mnist(download=False)
    except ImportError:  # the datasets module is not importable: read the IDX files directly
        x = _read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
        y = _read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    x = (x[:n].astype(np.float32) / 255.0)[..., None]
    return x, y[:n].astype(np.int64)


def fashion(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` real Fashion-MNIST training images (float32 in [0, 1], shape (n, 28, 28, 1))."""
    x, y = _fashion_head()
    assert offset + n <= len(x)
    return x[offset : offset + n].copy(), y[offset : offset + n].copy()


@functools.lru_cache(maxsize=8)
def _blobs(n: int, dim: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0.0, 0.7, size=(n, dim))
    return x.astype(np.float32), y.astype(np.int64)


def blobs(n: int = 128, dim: int = 8, classes: int = 3, seed: int = 0):
    """Learnable synthetic data: Gaussian clusters, one per class (fresh copies)."""
    x, y = _blobs(n, dim, classes, seed)
    return x.copy(), y.copy()


def split(x: np.ndarray, y: np.ndarray, *parts: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive `(x, y)` slices of the given sizes."""
    out, start = [], 0
    for n in parts:
        out.append((x[start : start + n], y[start : start + n]))
        start += n
    assert start <= len(x)
    return out


class ArraySequence(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` over NumPy arrays (no tf.data anywhere); counts batches."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.served = 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        self.served += 1
        s = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.x[s], self.y[s]


# --------------------------------------------------------------------------- models


def mlp(dim: int = 8, classes: int = 3, *, front: list[Any] | None = None) -> keras.Model:
    """A tiny MLP: [front layers] -> Dense(12) -> Dense(6) -> Dense(classes, softmax).

    Leaf layers (without `front`): h1, h2, out. Parameters: 108, 78, 7 * classes.
    """
    return keras.Sequential(
        [
            keras.Input((dim,)),
            *(front or []),
            keras.layers.Dense(12, activation="relu", name="h1"),
            keras.layers.Dense(6, activation="relu", name="h2"),
            keras.layers.Dense(classes, activation="softmax", name="out"),
        ],
        name="mlp",
    )


def tiny_cnn(classes: int = 3, *, front: list[Any] | None = None, bn: bool = False):
    """A tiny CNN for 8x8x1 inputs: conv, [bn], pool, flatten, dense, out."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            *(front or []),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
            *([keras.layers.BatchNormalization(name="bn")] if bn else []),
            keras.layers.MaxPooling2D(name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(8, activation="relu", name="dense"),
            keras.layers.Dense(classes, activation="softmax", name="out"),
        ],
        name="tiny_cnn",
    )


def images(n: int = 64, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """8x8x1 images whose class is which quadrant is brightest (learnable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.random((n, 8, 8, 1), dtype=np.float32) * 0.3
    for i, label in enumerate(y):
        r, c = divmod(int(label), 2)
        x[i, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4, 0] += 0.7
    return x, y.astype(np.int64)


# --------------------------------------------------------------------------- snapshots


def weights_of(model_or_layer: Any) -> list[np.ndarray]:
    """Copies of all weights (trainable and not) as NumPy arrays."""
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in model_or_layer.weights]


def flags_of(model: Any) -> list[tuple[str, bool]]:
    """Every trainable flag: each layer (nested ones too) and each variable, in order."""
    out: list[tuple[str, bool]] = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        out.append((f"layer:{layer.name}", bool(layer.trainable)))
    for v in model.weights:
        out.append((f"var:{v.path}", bool(v.trainable)))
    return out


def same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Bit-identical lists of arrays (same count, shapes, dtypes, values)."""
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
        for x, y in zip(a, b, strict=True)
    )


def assert_untouched(model: Any, weights: list[np.ndarray], flags: list[tuple[str, bool]]):
    """`model` still has exactly these weights and trainable flags."""
    assert same_weights(weights_of(model), weights), "the caller's weights changed"
    assert flags_of(model) == flags, "the caller's trainable flags changed"


def leaf_weights(model: Any) -> list[list[np.ndarray]]:
    """Weights of each leaf layer, in leaf order."""
    return [weights_of(leaf.layer) for leaf in tk.leaf_layers(model)]


# --------------------------------------------------------------------------- probes


class TrainingProbe(keras.callbacks.Callback):
    """Counts `fit` calls and trained batches; optionally interrupts the n-th `fit`."""

    def __init__(self, interrupt_on_fit: int | None = None) -> None:
        super().__init__()
        self.fits = 0
        self.batches = 0
        self.interrupt_on_fit = interrupt_on_fit

    def on_train_begin(self, logs: Any = None) -> None:
        self.fits += 1
        if self.fits == self.interrupt_on_fit:
            raise KeyboardInterrupt(f"simulated interruption in fit #{self.fits}")

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1


@dataclass(frozen=True)
class TopLayersOnly:
    """A custom strategy, written against the `Strategy` protocol only: train the top n
    leaf layers, freeze the rest. It subclasses nothing from transferkit."""

    n: int = 2
    epochs: int | None = None
    optimizer: Any = None
    learning_rate: float | None = None

    @property
    def name(self) -> str:
        return f"top{self.n}"

    def validate(self, model: Any) -> None:
        if not 0 < self.n <= len(tk.leaf_layers(model)):
            raise ValueError(f"top{self.n}: the model has too few layers")

    def prepare(self, model: Any) -> Any:
        for i, leaf in enumerate(tk.leaf_layers(model)):
            leaf.layer.trainable = i >= len(tk.leaf_layers(model)) - self.n
        return model

    def to_dict(self) -> dict[str, Any]:
        return {"type": "TopLayersOnly", "n": self.n, "epochs": self.epochs}


@dataclass(eq=False)
class Recording:
    """A custom strategy that delegates to another and records what `prepare` receives.

    Mutable on purpose (it is a probe): `received` holds a weight snapshot per `prepare`
    call, `calls` counts them. `to_dict` is the inner strategy's, so resuming works.
    """

    inner: Any
    received: list[list[np.ndarray]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def epochs(self) -> int | None:
        return self.inner.epochs

    @property
    def optimizer(self) -> Any:
        return self.inner.optimizer

    @property
    def learning_rate(self) -> float | None:
        return self.inner.learning_rate

    @property
    def calls(self) -> int:
        return len(self.received)

    def validate(self, model: Any) -> None:
        self.inner.validate(model)

    def prepare(self, model: Any) -> Any:
        self.received.append(weights_of(model))
        return self.inner.prepare(model)

    def to_dict(self) -> dict[str, Any]:
        return self.inner.to_dict()


def count_params(weights: Any) -> int:
    """Number of scalars in a list of variables."""
    return int(sum(int(np.prod(v.shape)) for v in weights))
