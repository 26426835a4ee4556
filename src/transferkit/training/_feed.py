"""How cached activations are fed to the trainable remainder: few host-to-tensor copies, few
dispatches per step, validation in large batches. None of it changes the batches or updates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np

from .._chunks import Array, release_pages, return_free_memory

CACHED_VALIDATION_BATCH_SIZE = 2048
"""Most samples per batch the remainder is validated with on cached activations (forward only;
the training batch size if larger), in batches of equal size."""

CACHED_STEPS_PER_EXECUTION = 64
"""`steps_per_execution` of `"auto"` for a remainder on cached activations (TensorFlow, JAX)."""


CACHED_XLA_MIN_STEPS = 2000
"""Fewest training steps of a phase on cached activations that `jit_compile="auto"` compiles
with XLA on TensorFlow (its compilation costs about as much as 2,000 steps save)."""

PREDICT_CHUNK = 4096
"""Samples per `predict` call when computing cached activations under `tf.distribute`."""


def distributed() -> bool:
    """Whether a TensorFlow distribution strategy is active (then `predict` must be used)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf  # only reached on the TensorFlow backend

    return bool(tf.distribute.has_strategy())


def aligned_empty(shape: tuple[int, ...]) -> Array:
    """An uninitialised float32 array whose data start on a 64-byte boundary.

    TensorFlow can then use the very buffer as a tensor (see `cached_input`) instead of copying
    it, which would hold the cached activations twice while training.
    """
    count = int(np.prod(shape))
    buffer = np.empty(count + 16, dtype=np.float32)
    offset = (-buffer.ctypes.data % 64) // 4
    return buffer[offset : offset + count].reshape(shape)


def predict_into(model: Any, x: Array, out: Array | tuple[int, ...], batch_size: int) -> Array:
    """`model`'s outputs for `x`, batch by batch, written into `out` (or a new aligned array
    of `len(x)` samples when `out` is the shape of one sample's output).

    `predict_on_batch` runs the same compiled predict step as `predict` without building a
    dataset per call: measured 20-30% faster for the lab CNN's convolutions on 2 CPU cores.
    Under a `tf.distribute` strategy `predict` is used, chunk by chunk, to keep it working.
    When `out` is a memmap its pages (and `x`'s) are handed back after each chunk. bfloat16
    outputs are widened to float32 exactly.
    """
    if isinstance(out, tuple):
        out = aligned_empty((len(x), *out))
    chunk = max(batch_size, PREDICT_CHUNK // batch_size * batch_size)
    whole = distributed()
    for start in range(0, len(x), chunk):
        stop = min(start + chunk, len(x))
        if whole:
            out[start:stop] = model.predict(x[start:stop], batch_size=batch_size, verbose=0)
        else:
            for i in range(start, stop, batch_size):
                j = min(i + batch_size, stop)
                out[i:j] = model.predict_on_batch(x[i:j])
        if isinstance(out, np.memmap):
            release_pages(out)
            release_pages(x)
    return out


def predict(model: Any, x: Any, batch_size: int, verbose: Any = 0) -> Any:
    """`model.predict(x)`, batch by batch with `predict_on_batch` for a silent single-output
    prediction on a NumPy array (no dataset built around `x`: faster, less memory)."""
    if verbose or not isinstance(x, np.ndarray) or distributed() or len(x) == 0:
        return model.predict(x, batch_size=batch_size, verbose=verbose)
    first = model.predict_on_batch(x[:batch_size])
    if not isinstance(first, np.ndarray):
        return model.predict(x, batch_size=batch_size, verbose=verbose)
    out = np.empty((len(x), *first.shape[1:]), dtype=first.dtype)
    out[: len(first)] = first
    predict_into(model, x[len(first) :], out[len(first) :], batch_size)  # a view: fills `out`
    return_free_memory()
    return out


def even_batch(n: int, most: int = CACHED_VALIDATION_BATCH_SIZE) -> int:
    """The batch size that splits `n` samples into equal batches of at most `most` (10,000 at
    2,048: 5 x 2,000), so a compiled forward pass sees one batch shape and compiles once."""
    return -(-n // -(-n // most))


def cached_compile(settings: Any, kwargs: dict[str, Any], steps: int) -> Any:
    """What a remainder on cached activations compiles with, over `kwargs`, for `steps`
    training steps under `settings` (`TrainSettings`): with `"auto"`, more steps per call
    and, on TensorFlow, XLA.

    A remainder's step is a few small matrix products, so the per-call cost of the training
    loop weighs more than on the full model; the batches and updates are the same. XLA fuses
    the step: the lab CNN's cached head trained 1.3-1.5x faster per epoch on 2 CPU cores
    (`benchmarks/lab_protocol.py`), after about a second of compilation, so a phase of fewer
    than `CACHED_XLA_MIN_STEPS` steps is left without it. PyTorch, and TensorFlow under a
    `tf.distribute` strategy, keep one step per call and no XLA.
    """
    per_call, backend = kwargs["steps_per_execution"], keras.backend.backend()
    if settings.auto_steps and per_call > 1:
        kwargs = {**kwargs, "steps_per_execution": max(per_call, CACHED_STEPS_PER_EXECUTION)}
    xla = backend == "tensorflow" and steps >= CACHED_XLA_MIN_STEPS and not distributed()
    return {**kwargs, "jit_compile": True} if settings.jit_compile == "auto" and xla else kwargs


@contextmanager
def remainder_threads() -> Iterator[None]:
    """PyTorch trains a cached remainder on one intra-op thread, then restores the setting.

    A remainder's step is a few small matrix products. PyTorch's OpenMP workers spin while
    they wait; on a small or busy machine they fight each other and every other thread for
    the cores: a cached feature-extractor epoch took 29-53 s with 2 threads and 2.7-2.9 s with
    1 (10,000 images, 2 busy cores, the lab CNN's head). Other backends are left as they are.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch  # only reached on the PyTorch backend

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cached_input(features: Array) -> Any:
    """Cached activations as `fit` should get them, without a copy where the backend allows.

    On TensorFlow, Keras copies NumPy inputs into a tensor for every `fit`; a tensor sharing
    the NumPy buffer (DLPack, when it is 64-byte aligned) avoids that copy. PyTorch gets a CPU
    tensor sharing it (`torch.from_numpy`), so each batch is one `index_select` instead of a
    NumPy gather plus a host-to-tensor conversion; the batch order comes from the same
    sampler. JAX slices NumPy arrays and gets them as they are. The caller keeps `features`
    alive while the tensor is in use.
    """
    backend = keras.backend.backend()
    if backend == "torch":
        import torch  # only reached on the PyTorch backend

        return torch.from_numpy(features)
    if backend != "tensorflow" or features.ctypes.data % 64:
        return features
    import tensorflow as tf  # only reached on the TensorFlow backend

    return tf.experimental.dlpack.from_dlpack(features.__dlpack__())
