"""Offline-first loader for the Fashion-MNIST dataset.

The four IDX files (``train-images-idx3-ubyte.gz`` and friends) are looked up on disk before
anything is downloaded, so the loader works on machines without internet access as long as
the Debian/Ubuntu package ``dataset-fashion-mnist`` is installed, the files sit in the Keras
cache, or ``$TRANSFERKIT_DATA_DIR`` points at them.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "find_fashion_mnist",
    "load_fashion_mnist",
]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Human-readable names of the ten Fashion-MNIST classes, indexed by integer label."""

ENV_VAR = "TRANSFERKIT_DATA_DIR"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

_TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
_TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
_TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
_TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
_FILES: tuple[str, ...] = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)

_LABELS_MAGIC = 2049
_IMAGES_MAGIC = 2051
_IMAGE_SHAPE = (28, 28)
_NUM_CLASSES = 10
_DEFAULT_COUNTS = (60000, 10000)

_FIX_HINT = (
    "To fix this, do one of:\n"
    "  * Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` "
    f"(installs the files into {SYSTEM_DIR});\n"
    f"  * put the four files ({', '.join(_FILES)}) in a directory and run "
    f"`export {ENV_VAR}=/dir/with/files`, or pass `path=` to `load_fashion_mnist`;\n"
    "  * with internet access, call `load_fashion_mnist()` without `path` (`download=True` is "
    "the default): it runs `keras.datasets.fashion_mnist.load_data()`, which caches the files "
    "in `$KERAS_HOME/datasets/fashion-mnist`."
)

_Arrays = tuple[
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
]


class DatasetError(Exception):
    """Base class of the errors raised when a dataset cannot be found or read.

    Example:
        ```python
        from transferkit.datasets import (
            DatasetCorruptError,
            DatasetError,
            DatasetNotFoundError,
        )

        assert issubclass(DatasetNotFoundError, DatasetError)
        assert issubclass(DatasetNotFoundError, FileNotFoundError)
        assert issubclass(DatasetCorruptError, ValueError)
        ```
    """


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset files are in none of the searched directories and could not be downloaded.

    The message lists every directory that was searched and how to fix the problem.

    Example:
        ```python
        import tempfile

        from transferkit.datasets import DatasetNotFoundError, load_fashion_mnist

        with tempfile.TemporaryDirectory() as empty_dir:
            try:
                load_fashion_mnist(empty_dir)
            except DatasetNotFoundError as error:
                assert "apt-get install dataset-fashion-mnist" in str(error)
        ```
    """


class DatasetCorruptError(DatasetError, ValueError):
    """A dataset file exists but is truncated, has the wrong format or has invalid content.

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from transferkit.datasets import DatasetCorruptError, load_fashion_mnist

        names = [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ]
        with tempfile.TemporaryDirectory() as bad_dir:
            for name in names:
                Path(bad_dir, name).write_bytes(b"not a gzip file")
            try:
                load_fashion_mnist(bad_dir)
            except DatasetCorruptError as error:
                assert "train-images-idx3-ubyte.gz" in str(error)
        ```
    """


class _Candidate(NamedTuple):
    directory: Path
    origin: str


def _keras_cache_dir() -> Path:
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(keras_home).expanduser() / "datasets" / "fashion-mnist"


def _candidates(path: str | os.PathLike[str] | None) -> list[_Candidate]:
    if path is not None:
        return [_Candidate(Path(path).expanduser(), "`path=` argument")]
    candidates: list[_Candidate] = []
    env_dir = os.environ.get(ENV_VAR)
    if env_dir:
        candidates.append(_Candidate(Path(env_dir).expanduser(), f"${ENV_VAR}"))
    candidates.append(_Candidate(_keras_cache_dir(), "Keras cache"))
    candidates.append(_Candidate(SYSTEM_DIR, "system package dataset-fashion-mnist"))
    return candidates


def _missing_files(directory: Path) -> list[str]:
    if not directory.is_dir():
        return list(_FILES)
    return [name for name in _FILES if not (directory / name).is_file()]


def _describe(candidate: _Candidate) -> str:
    directory = candidate.directory
    if not directory.exists():
        status = "directory does not exist"
    elif not directory.is_dir():
        status = "not a directory"
    else:
        status = "missing " + ", ".join(_missing_files(directory))
    return f"  * {directory} ({candidate.origin}): {status}"


def _not_found_message(candidates: list[_Candidate], extra: str = "") -> str:
    searched = "\n".join(_describe(candidate) for candidate in candidates)
    message = f"Fashion-MNIST was not found. Searched these directories, in order:\n{searched}\n"
    if extra:
        message += extra + "\n"
    return message + _FIX_HINT


def find_fashion_mnist(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the directory `load_fashion_mnist` would read the Fashion-MNIST files from.

    The search order is: the explicit `path`, `$TRANSFERKIT_DATA_DIR`, the Keras cache
    (`$KERAS_HOME/datasets/fashion-mnist`, `KERAS_HOME` defaulting to `~/.keras`) and finally
    `/usr/share/datasets/fashion-mnist` (Debian/Ubuntu package `dataset-fashion-mnist`). A
    directory qualifies when it holds all four `.gz` files; their content is not checked here.
    When `path` is given, only `path` is considered.

    Args:
        path: str or Path. A directory holding the four Fashion-MNIST `.gz` files. Defaults to
            `None` (search the standard locations).

    Returns:
        The absolute directory holding all four files, or `None` when no searched directory
        holds them (`load_fashion_mnist` would then download or fail).

    Example:
        ```python
        from transferkit.datasets import find_fashion_mnist

        directory = find_fashion_mnist()
        print(directory)  # e.g. /usr/share/datasets/fashion-mnist, or None
        ```
    """
    for candidate in _candidates(path):
        if not _missing_files(candidate.directory):
            return candidate.directory.resolve()
    return None


def _read_gz(file: Path) -> bytes:
    try:
        with gzip.open(file, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetCorruptError(
            f"Cannot decompress {file}: {type(error).__name__}: {error}. The file is truncated "
            f"or not gzip-compressed; delete it and reinstall or re-download it.\n{_FIX_HINT}"
        ) from error


def _parse_idx(file: Path, *, magic: int, ndim: int) -> npt.NDArray[np.uint8]:
    """Parse one gzip-compressed IDX file holding unsigned bytes."""
    data = _read_gz(file)
    header_size = 4 * (1 + ndim)
    kind = "labels" if magic == _LABELS_MAGIC else "images"
    if len(data) < header_size:
        raise DatasetCorruptError(
            f"{file} is too short to be an IDX {kind} file: expected a header of {header_size} "
            f"bytes, received {len(data)} bytes. Delete it and reinstall or re-download it."
        )
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    found_magic = int(header[0])
    if found_magic != magic:
        raise DatasetCorruptError(
            f"{file} has IDX magic number {found_magic}; expected {magic} ({kind} file of "
            "unsigned bytes). The file is corrupt or is not the file its name says (are the "
            "images and labels files swapped?)."
        )
    dims = tuple(int(d) for d in header[1:])
    expected_size = int(np.prod(dims, dtype=np.int64))
    payload = len(data) - header_size
    if payload != expected_size:
        raise DatasetCorruptError(
            f"{file} declares shape {dims} ({expected_size} bytes of data) but holds "
            f"{payload} bytes after the header: the file is truncated or corrupt. Delete it "
            "and reinstall or re-download it."
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)
    return array


def _validate(
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.uint8],
    *,
    split: str,
    expected_count: int | None,
    source: str,
) -> None:
    if images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise DatasetCorruptError(
            f"Fashion-MNIST {split} images from {source} have shape {images.shape}; expected "
            f"(n, 28, 28). Delete the file and reinstall or re-download it."
        )
    if labels.ndim != 1:
        raise DatasetCorruptError(
            f"Fashion-MNIST {split} labels from {source} have shape {labels.shape}; expected "
            "(n,). Delete the file and reinstall or re-download it."
        )
    if images.shape[0] != labels.shape[0]:
        raise DatasetCorruptError(
            f"Fashion-MNIST {split} set from {source} has {images.shape[0]} images but "
            f"{labels.shape[0]} labels; the counts must match. One of the files is from a "
            "different dataset or is corrupt."
        )
    if expected_count is not None and images.shape[0] != expected_count:
        raise DatasetCorruptError(
            f"Fashion-MNIST {split} set from {source} has {images.shape[0]} samples; expected "
            f"{expected_count}. The files are from a different dataset or are corrupt."
        )
    if labels.size and int(labels.max()) >= _NUM_CLASSES:
        raise DatasetCorruptError(
            f"Fashion-MNIST {split} labels from {source} must lie in 0..{_NUM_CLASSES - 1}; "
            f"received a maximum label of {int(labels.max())}. The labels file is corrupt."
        )


def _check_expected_counts(expected_counts: tuple[int, int] | None) -> None:
    if expected_counts is None:
        return
    ok = (
        isinstance(expected_counts, tuple)
        and len(expected_counts) == 2
        and all(
            isinstance(count, int) and not isinstance(count, bool) and count >= 0
            for count in expected_counts
        )
    )
    if not ok:
        raise ValueError(
            "`expected_counts` must be a pair of non-negative ints (train, test) or None; "
            f"received {expected_counts!r}. Use the default (60000, 10000) for Fashion-MNIST."
        )


@functools.lru_cache(maxsize=2)
def _load_directory(
    directory: Path,
    signature: tuple[tuple[int, int], ...],
    expected_counts: tuple[int, int] | None,
) -> _Arrays:
    """Parse and validate the four files of `directory` (cached; `signature` holds file stats)."""
    del signature  # Only part of the cache key: a rewritten file invalidates the entry.
    x_train = _parse_idx(directory / _TRAIN_IMAGES, magic=_IMAGES_MAGIC, ndim=3)
    y_train = _parse_idx(directory / _TRAIN_LABELS, magic=_LABELS_MAGIC, ndim=1)
    x_test = _parse_idx(directory / _TEST_IMAGES, magic=_IMAGES_MAGIC, ndim=3)
    y_test = _parse_idx(directory / _TEST_LABELS, magic=_LABELS_MAGIC, ndim=1)
    train_count, test_count = expected_counts if expected_counts is not None else (None, None)
    _validate(x_train, y_train, split="train", expected_count=train_count, source=str(directory))
    _validate(x_test, y_test, split="test", expected_count=test_count, source=str(directory))
    return (x_train, y_train), (x_test, y_test)


def _file_signature(directory: Path) -> tuple[tuple[int, int], ...]:
    stats = [(directory / name).stat() for name in _FILES]
    return tuple((stat.st_mtime_ns, stat.st_size) for stat in stats)


def _copy(arrays: _Arrays) -> _Arrays:
    (x_train, y_train), (x_test, y_test) = arrays
    return (x_train.copy(), y_train.copy()), (x_test.copy(), y_test.copy())


def _download(candidates: list[_Candidate], expected_counts: tuple[int, int] | None) -> _Arrays:
    try:
        import keras

        loaded: Any = keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # Network, SSL, HTTP or disk errors: all mean "not available".
        extra = (
            "Downloading with `keras.datasets.fashion_mnist.load_data()` failed too: "
            f"{type(error).__name__}: {error}"
        )
        raise DatasetNotFoundError(_not_found_message(candidates, extra)) from error
    (x_train, y_train), (x_test, y_test) = loaded
    arrays: _Arrays = (
        (np.asarray(x_train, dtype=np.uint8), np.asarray(y_train, dtype=np.uint8)),
        (np.asarray(x_test, dtype=np.uint8), np.asarray(y_test, dtype=np.uint8)),
    )
    train_count, test_count = expected_counts if expected_counts is not None else (None, None)
    source = "keras.datasets.fashion_mnist.load_data()"
    _validate(*arrays[0], split="train", expected_count=train_count, source=source)
    _validate(*arrays[1], split="test", expected_count=test_count, source=source)
    return arrays


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    expected_counts: tuple[int, int] | None = _DEFAULT_COUNTS,
) -> tuple[
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
    tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]],
]:
    """Load Fashion-MNIST from disk, like `keras.datasets.fashion_mnist.load_data()` but offline.

    The four gzip-compressed IDX files are looked for, in order, in: the explicit `path`,
    `$TRANSFERKIT_DATA_DIR`, the Keras cache (`$KERAS_HOME/datasets/fashion-mnist`,
    `KERAS_HOME` defaulting to `~/.keras`) and `/usr/share/datasets/fashion-mnist` (Debian/Ubuntu
    package `dataset-fashion-mnist`). The first directory holding all four files is used. Only
    when none does and `download` is true is `keras.datasets.fashion_mnist.load_data()` called.
    An explicit `path` is never silently skipped: if its files are missing, the call fails.

    The files are parsed with NumPy and validated (IDX magic numbers, 28x28 images, sample
    counts, labels in 0..9, matching image/label counts). Parsed arrays are cached in-process per
    directory (invalidated when a file changes); every call returns fresh copies, so callers may
    modify the result freely.

    Args:
        path: str or Path. A directory holding `train-images-idx3-ubyte.gz`,
            `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz` and
            `t10k-labels-idx1-ubyte.gz`. Defaults to `None` (search the standard locations).
        download: bool. Whether to fall back to `keras.datasets.fashion_mnist.load_data()`
            (which needs internet access) when no searched directory holds the files. Ignored
            when `path` is given. Defaults to `True`.
        expected_counts: tuple of two ints, or None. Required numbers of (train, test) samples;
            `None` skips this check (useful for small test fixtures). Defaults to
            `(60000, 10000)`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape `(n, 28, 28)` with
        values 0..255 and uint8 labels of shape `(n,)` with values 0..9 (see
        `FASHION_MNIST_CLASSES`).

    Raises:
        DatasetNotFoundError: (a `FileNotFoundError`) no searched directory holds the four files
            and downloading is disabled or failed. The message lists every directory searched
            and the fix (`sudo apt-get install dataset-fashion-mnist`, `$TRANSFERKIT_DATA_DIR`
            or a Keras download).
        DatasetCorruptError: (a `ValueError`) a file is truncated, not gzip, has a wrong IDX
            magic number or shape, the wrong number of samples, or labels outside 0..9.
        ValueError: `expected_counts` is not a pair of non-negative ints or None.

    Example:
        ```python
        from transferkit.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

        (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
        assert x_train.shape == (60000, 28, 28) and x_train.dtype == "uint8"
        assert y_test.shape == (10000,)
        print(FASHION_MNIST_CLASSES[y_train[0]])  # Ankle boot
        ```
    """
    _check_expected_counts(expected_counts)
    candidates = _candidates(path)
    for candidate in candidates:
        if _missing_files(candidate.directory):
            continue
        directory = candidate.directory.resolve()
        arrays = _load_directory(directory, _file_signature(directory), expected_counts)
        return _copy(arrays)
    if path is not None:
        raise DatasetNotFoundError(
            _not_found_message(
                candidates,
                "The explicit `path` argument is never skipped; pass `path=None` to search "
                "the standard locations instead.",
            )
        )
    if not download:
        raise DatasetNotFoundError(
            _not_found_message(candidates, "Downloading is disabled (`download=False`).")
        )
    return _download(candidates, expected_counts)
