"""Frozen-prefix activation cache: run a frozen, deterministic prefix once per dataset.

When the leading top-level layers of a prepared model are all frozen and behave the same in
training and inference (no dropout, noise or random augmentation, BatchNormalization frozen),
their output never changes during training. Computing it once and training only the trainable
remainder on it is the same training, minus a forward pass per batch per epoch through the
prefix. The remainder shares its layers with the full model, so the full model ends up trained.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from dataclasses import dataclass, field

import keras
import numpy as np

from .. import _serial
from .._chunks import Array, hash_arrays, return_free_memory
from ..freezing._layers import children
from ..types import Layer, Model
from ._feed import predict_into
from ._spill import SpillDir, check_cache_dir, spill_features, spilled_path

_RANDOM_LAYERS: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                 "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
    if hasattr(keras.layers, name)
)  # fmt: skip


@dataclass(frozen=True)
class CacheInfo(_serial.Record):
    """Whether a run trained on cached frozen-prefix activations, and why (not).

    Attributes:
        used: Whether the cache was used.
        reason: Why it was or was not used (a sentence for the run's record).
        prefix_layers: Number of top-level layers whose output was cached.
        feature_shape: Shape of one cached activation.
        nbytes: Bytes the cached activations take (in memory, or on disk when spilled).
        seconds: Time spent computing the activations (0 when shared from an earlier run).
        shared: Whether the activations came from an earlier run with the same prefix.
        location: `"memory"`, or `"disk"` when they were over the memory budget and training
            streamed them from a file.
        path: The file of the spilled training activations (removed after the run), or
            `None` in memory.
    """

    used: bool
    reason: str
    prefix_layers: int = 0
    feature_shape: tuple[int, ...] = ()
    nbytes: int = 0
    seconds: float = 0.0
    shared: bool = False
    location: str = "memory"
    path: str | None = None


@dataclass
class FeatureCache:
    """Activations shared between runs of one comparison (keyed by prefix weights and data).

    Activations that would take the store over `budget_bytes` of memory are spilled: written
    chunk by chunk to a `.npy` file (a `np.memmap`) in a temporary directory inside
    `cache_dir`, from which training streams shuffled batches (a fresh permutation per epoch,
    drawn from the run's seed; each batch read in ascending row order). The files are deleted
    by `close()`; `fine_tune` and `compare_strategies` close the caches they create
    themselves when they end, even on error, and at exit at the latest.

    Args:
        budget_bytes: Memory the cached activations may take in all. Defaults to a quarter of
            the memory available when the cache is created.
        cache_dir: str, `os.PathLike` or None. An existing, writable directory for spilled
            activations (a fast local disk). Defaults to `None`: the system's temporary
            directory (`tempfile.gettempdir()`).
        spill: bool. Spill activations over the budget to disk (`True`) or train without
            the cache (`False`). Defaults to `True`.
        deterministic: bool. Declares that training data given as a dataset (tf.data or a
            `keras.utils.PyDataset`) yield the same samples every time they are read (no
            per-epoch augmentation; a shuffle is fine): such data are then read once into
            memory as arrays, so the frozen prefix runs over them once and every run trains
            on cached activations, shuffled per epoch by its seed. A tf.data set whose
            element spec has an unknown dimension other than the batch is refused. Defaults
            to `False`: a dataset trains through the whole model, without the cache.

    Raises:
        ValueError: If `cache_dir` is not an existing directory or is not writable.

    Example:
    ```python
    import os
    import tempfile

    import keras
    import numpy as np
    from transferkit import FeatureCache, fine_tune

    dense = keras.layers.Dense
    model = keras.Sequential([keras.Input((8,)), dense(16, activation="relu"), dense(3)])
    x, y = np.random.rand(64, 8).astype("float32"), np.random.randint(0, 3, 64)
    with tempfile.TemporaryDirectory() as scratch:
        store = FeatureCache(budget_bytes=0, cache_dir=scratch)  # nothing fits in memory
        result = fine_tune(model, (x, y), strategy="feature_extractor", epochs=1,
                           verbose=0, cache=store)
        assert result.cache.used and result.cache.location == "disk"
        store.close()  # deletes the spilled files
        assert os.listdir(scratch) == []
    ```
    """

    budget_bytes: int = field(default_factory=lambda: available_memory() // 4)
    cache_dir: str | os.PathLike[str] | None = None
    spill: bool = True
    deterministic: bool = False
    entries: dict[str, dict[str, Array]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._disk = SpillDir(check_cache_dir(self.cache_dir))

    @property
    def nbytes(self) -> int:
        """Memory the cached activations take now (spilled ones are on disk, not counted)."""
        return sum(
            a.nbytes
            for entry in self.entries.values()
            for a in entry.values()
            if spilled_path(a) is None
        )

    def close(self) -> None:
        """Forget every cached activation and delete the spilled files."""
        self.entries.clear()
        self._disk.remove()

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable on Linux)."""
    with suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def _is_random(layer: Layer) -> bool:
    if isinstance(layer, _RANDOM_LAYERS):
        # A zero rate is the identity (keras-hub's `ImageClassifier` has `Dropout(0.0)`).
        return getattr(layer, "rate", None) != 0
    name = type(layer).__name__
    return name.startswith("Random") or name in ("RandAugment", "AugMix", "MixUp", "CutMix")


def _linear_chain(model: Model) -> list[Layer] | None:
    """The top-level layers if the model is a simple chain (each feeds only the next)."""
    if not isinstance(model, keras.Model) or not hasattr(model, "inputs"):
        return None
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    layers = children(model)
    if isinstance(model, keras.Sequential):
        return layers
    previous = inputs[0]
    for layer in layers:
        nodes = layer._inbound_nodes
        if len(nodes) != 1 or len(nodes[0].input_tensors) != 1 or len(nodes[0].output_tensors) != 1:
            return None
        if nodes[0].input_tensors[0] is not previous:
            return None
        previous = nodes[0].output_tensors[0]
    return layers if previous is model.outputs[0] else None


def frozen_prefix(model: Model) -> tuple[int, str]:
    """How many leading top-level layers can be cached, and the reason for that number."""
    if (layers := _linear_chain(model)) is None:
        return 0, "the model is not a single-input chain of layers, so no prefix can be cut off"
    k = 0
    reason = "every layer is frozen"
    for layer in layers:
        subs = list(layer._flatten_layers(include_self=True, recursive=True))
        if any(sub.trainable and sub.weights for sub in subs) or (
            layer.trainable and layer.trainable_weights
        ):
            reason = f"layer {layer.name!r} trains"
            break
        if any(_is_random(sub) for sub in subs):
            reason = (
                f"layer {layer.name!r} is random in training (dropout, noise or augmentation), "
                "so caching it would change training"
            )
            break
        if any(isinstance(sub, keras.layers.BatchNormalization) and sub.trainable for sub in subs):
            reason = f"layer {layer.name!r} has trainable BatchNormalization"
            break
        k += 1
    return (0, "nothing trains") if k == len(layers) else (k, reason)


def _is_reshape(layer: Layer) -> bool:
    """Whether `layer` only reshapes its input (same values, same order): free on a cache."""
    flatten = isinstance(layer, keras.layers.Flatten) and layer.data_format == "channels_last"
    return flatten or isinstance(layer, keras.layers.Reshape)


def _prefix_keys(layers: list[Layer], arrays: dict[str, Array]) -> list[str]:
    """`keys[j]`: the key of the activations of `layers[: j + 1]` on *every byte* of the data.

    Keys chain the data, then each layer's type and weights. Layers that only reshape
    (`Flatten`, `Reshape`) add nothing, so prefixes that differ only by them share a key (and
    one array, reshaped). Hashing the full arrays (not their `id` or a sample of rows) means an
    array changed in place, or a new array at a recycled address, never gets stale activations.
    It costs about 0.2 s per 50,000 28x28 float32 images, once per run.
    """
    h = hashlib.sha256()
    for name, x in arrays.items():
        h.update(name.encode())
        hash_arrays(h, [x])
    keys = []
    for layer in layers:
        if not _is_reshape(layer):
            h.update(type(layer).__name__.encode())
            hash_arrays(h, [np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.weights])
        keys.append(h.copy().hexdigest())
    return keys


def _reshaped(a: Array, shape: tuple[int, ...]) -> Array:
    """`a` as `(len(a), *shape)`: a view (same buffer), since cached arrays are contiguous."""
    return a if a.shape[1:] == shape else a.reshape(len(a), *shape)


@dataclass(frozen=True)
class CachePlan:
    """A model split into a cached prefix and a trainable remainder."""

    prefix: Model
    remainder: Model
    info: CacheInfo
    features: dict[str, Array]


def plan_cache(
    model: Model, arrays: dict[str, Array], *, cache: FeatureCache | None, batch_size: int
) -> CachePlan | CacheInfo:
    """Split `model` and compute (or reuse) the prefix activations for each array.

    Returns a `CachePlan`, or a `CacheInfo` saying why the cache is not used.
    """
    k, reason = frozen_prefix(model)
    if k == 0:
        return CacheInfo(used=False, reason=f"no cacheable frozen prefix: {reason}")
    layers = children(model)
    prefix_layers, rest = layers[:k], layers[k:]
    feature_shape = tuple(int(d) for d in prefix_layers[-1].output.shape[1:])
    total = sum(len(a) for a in arrays.values()) * int(np.prod(feature_shape)) * 4
    store = cache if cache is not None else FeatureCache()
    keys = _prefix_keys(prefix_layers, arrays)
    shared = keys[-1] in store.entries  # the same activations, maybe before a Flatten or Reshape
    spill = not shared and store.nbytes + total > store.budget_bytes
    over = (
        f"the activations take {total / 2**20:.0f} MiB, over the cache's memory budget of "
        f"{store.budget_bytes / 2**20:.0f} MiB"
    )
    if refusal := _refusal(store, spill, over, total):
        return CacheInfo(used=False, reason=refusal, prefix_layers=k, feature_shape=feature_shape)
    # The last layer's output in `model`'s graph: a nested model's `.output` is its own graph's.
    end = prefix_layers[-1]._inbound_nodes[0].output_tensors[0]
    prefix = keras.Model(model.inputs, end, name=f"{model.name}_prefix")
    remainder = keras.Sequential(
        [keras.Input(shape=feature_shape), *rest], name=f"{model.name}_remainder"
    )
    base = next((j for j in range(k, 0, -1) if keys[j - 1] in store.entries), 0)
    seconds = 0.0
    if not shared:
        # Run the data through the whole prefix, or the cached activations of its first `base`
        # layers through the layers after them (a shorter prefix cached by an earlier run).
        source = arrays, prefix
        if base:
            shape = tuple(int(d) for d in prefix_layers[base - 1].output.shape[1:])
            cached = {n: _reshaped(a, shape) for n, a in store.entries[keys[base - 1]].items()}
            source = cached, keras.Sequential([keras.Input(shape=shape), *prefix_layers[base:]])
        seconds = _fill(store, keys[-1], source, feature_shape, max(batch_size, 256), spill)
    return_free_memory()
    features = {name: _reshaped(a, feature_shape) for name, a in store.entries[keys[-1]].items()}
    extended = f" (from the cached activations of the first {base})" if 0 < base < k else ""
    path = spilled_path(features["train"])
    where = f"; {over}, so they were written to {path} and streamed from there" if path else ""
    done = f"the first {k} top-level layers are frozen and deterministic{extended}; {reason} next"
    info = CacheInfo(
        used=True,
        reason=done + where,
        prefix_layers=k,
        feature_shape=feature_shape,
        nbytes=total,
        seconds=seconds,
        shared=shared,
        location="memory" if path is None else "disk",
        path=path,
    )
    return CachePlan(prefix=prefix, remainder=remainder, info=info, features=features)


def _refusal(store: FeatureCache, spill: bool, over: str, total: int) -> str:
    """Why activations over the memory budget cannot be spilled to disk (`""` if they can)."""
    if spill and not store.spill:
        return f"{over}, and spilling to disk is off (spill=False)"
    if spill and store._disk.free_bytes() < total + 2**26:
        return f"{over}, and the disk has only {store._disk.free_bytes() / 2**20:.0f} MiB free"
    return ""


def _fill(
    store: FeatureCache,
    key: str,
    source: tuple[dict[str, Array], Model],
    feature_shape: tuple[int, ...],
    batch_size: int,
    spill: bool,
) -> float:
    """Compute the activations of `source` into `store` (memory or disk); the seconds taken."""
    from ..timing import Timer

    arrays, model = source
    with Timer() as timer:
        if spill:
            store.entries[key] = spill_features(
                model, arrays, feature_shape, batch_size, store._disk.make(), key[:16]
            )
        else:
            store.entries[key] = {
                name: predict_into(model, a, feature_shape, batch_size)
                for name, a in arrays.items()
            }
    return timer.seconds
