"""Offline-first Fashion-MNIST loader: files on disk first, a download only as a last resort."""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .._validate import is_int

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
"""Human-readable names of the ten Fashion-MNIST classes, indexed by integer label."""

ENV_VAR = "TRANSFERKIT_DATA_DIR"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

_FILES = tuple(
    f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")
)

_LABELS_MAGIC, _IMAGES_MAGIC = 2049, 2051

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
    from transferkit.datasets import DatasetCorruptError, DatasetError, DatasetNotFoundError

    assert issubclass(DatasetNotFoundError, (DatasetError, FileNotFoundError))
    assert issubclass(DatasetCorruptError, (DatasetError, ValueError))
    ```
    """


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No searched directory holds the files (the message lists them), and no download happened.

    Example:

    ```python
    from transferkit.datasets import DatasetNotFoundError, load_fashion_mnist

    try:
        load_fashion_mnist("/no/such/directory")
    except DatasetNotFoundError as error:
        message = str(error)
    assert "/no/such/directory (`path=` argument): directory does not exist" in message
    ```
    """


class DatasetCorruptError(DatasetError, ValueError):
    """A dataset file is truncated, has the wrong format or invalid content.

    Example:

    ```python
    import tempfile
    from pathlib import Path
    from transferkit.datasets import DatasetCorruptError, load_fashion_mnist

    names = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    with tempfile.TemporaryDirectory() as bad_dir:
        for name in names:
            Path(bad_dir, f"{name}-ubyte.gz").write_bytes(b"not gzip")
        message = ""
        try:
            load_fashion_mnist(bad_dir)
        except DatasetCorruptError as error:  # also a ValueError
            message = str(error)
    assert "Cannot decompress" in message
    ```
    """


class _Candidate(NamedTuple):
    directory: Path
    origin: str


def _candidates(path: str | os.PathLike[str] | None) -> list[_Candidate]:
    if path is not None:
        return [_Candidate(Path(path).expanduser(), "`path=` argument")]
    candidates: list[_Candidate] = []
    if env_dir := os.environ.get(ENV_VAR):
        candidates.append(_Candidate(Path(env_dir).expanduser(), f"${ENV_VAR}"))
    keras_home = Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()
    candidates.append(_Candidate(keras_home / "datasets" / "fashion-mnist", "Keras cache"))
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


def _not_found_message(candidates: list[_Candidate], extra: str) -> str:
    searched = "\n".join(_describe(candidate) for candidate in candidates)
    intro = "Fashion-MNIST was not found. Searched these directories, in order:"
    return f"{intro}\n{searched}\n{extra}\n{_FIX_HINT}"


def find_fashion_mnist(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The directory `load_fashion_mnist` would read (it holds the four files), or `None`.

    Args:
        path: str or Path. The only directory to consider. Defaults to `None` (the standard
            locations, in `load_fashion_mnist`'s order).

    Returns:
        The absolute directory, or `None` (`load_fashion_mnist` would download or fail).

    Example:

    ```python
    import tempfile
    from transferkit.datasets import find_fashion_mnist

    with tempfile.TemporaryDirectory() as empty_dir:
        assert find_fashion_mnist(empty_dir) is None
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


def _parse_idx(file: Path, *, magic: int) -> npt.NDArray[np.uint8]:
    """Parse one gzip-compressed IDX file holding unsigned bytes."""
    data = _read_gz(file)
    ndim, kind = (1, "labels") if magic == _LABELS_MAGIC else (3, "images")
    header_size = 4 * (1 + ndim)
    if len(data) < header_size:
        raise DatasetCorruptError(
            f"{file} is too short to be an IDX {kind} file: expected a header of {header_size} "
            f"bytes, received {len(data)} bytes. Delete it and reinstall or re-download it."
        )
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if (found_magic := int(header[0])) != magic:
        raise DatasetCorruptError(
            f"{file} has IDX magic number {found_magic}; expected {magic} ({kind} file of "
            "unsigned bytes). The file is corrupt or is not the file its name says (are the "
            "images and labels files swapped?)."
        )
    dims = tuple(int(d) for d in header[1:])
    expected_size = int(np.prod(dims, dtype=np.int64))
    if (payload := len(data) - header_size) != expected_size:
        raise DatasetCorruptError(
            f"{file} declares shape {dims} ({expected_size} bytes of data) but holds "
            f"{payload} bytes after the header: the file is truncated or corrupt. Delete it "
            "and reinstall or re-download it."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def _check_expected_counts(expected_counts: tuple[int, int] | None) -> None:
    if expected_counts is not None and not (
        isinstance(expected_counts, tuple)
        and len(expected_counts) == 2
        and all(is_int(count) and count >= 0 for count in expected_counts)
    ):
        raise ValueError(
            "`expected_counts` must be a pair of non-negative ints (train, test) or None. "
            f"Received: expected_counts={expected_counts!r}. Fashion-MNIST has (60000, 10000)."
        )


@functools.lru_cache(maxsize=2)
def _load_directory(
    directory: Path, signature: tuple[tuple[int, int], ...], expected_counts: tuple[int, int] | None
) -> _Arrays:
    """Parse and validate the four files of `directory` (cached; `signature` holds file stats)."""
    del signature  # Only part of the cache key: a rewritten file invalidates the entry.
    x_train, y_train, x_test, y_test = (
        _parse_idx(directory / name, magic=_LABELS_MAGIC if "labels" in name else _IMAGES_MAGIC)
        for name in _FILES
    )
    return _validated(((x_train, y_train), (x_test, y_test)), expected_counts, str(directory))


def _validated(arrays: _Arrays, expected_counts: tuple[int, int] | None, source: str) -> _Arrays:
    """`arrays`, or a `DatasetCorruptError` for a wrong shape, count or label."""
    counts = expected_counts or (None, None)
    for split, (images, labels), count in zip(("train", "test"), arrays, counts, strict=True):
        n, top = images.shape[0], int(labels.max()) if labels.size else 0
        problems = (
            (images.shape[1:] != (28, 28), f"images of shape {images.shape}; expected (n, 28, 28)"),
            (labels.ndim != 1, f"labels of shape {labels.shape}; expected (n,)"),
            (n != len(labels), f"{n} images but {len(labels)} labels; the counts must match"),
            (count not in (None, n), f"{n} samples; expected {count}"),
            (top >= 10, f"labels in 0..9; received a maximum label of {top}"),
        )
        for problem in (text for failed, text in problems if failed):
            raise DatasetCorruptError(
                f"Fashion-MNIST {split} set from {source} has {problem}. The files are corrupt "
                "or from another dataset: delete them and reinstall or re-download them."
            )
    return arrays


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
    train, test = ((np.asarray(x, np.uint8), np.asarray(y, np.uint8)) for x, y in loaded)
    return _validated((train, test), expected_counts, "keras.datasets.fashion_mnist.load_data()")


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    expected_counts: tuple[int, int] | None = (60000, 10000),
) -> _Arrays:
    """Loads Fashion-MNIST from disk, like `keras.datasets.fashion_mnist.load_data()` offline.

    The four IDX `.gz` files are looked for in `path`, `$TRANSFERKIT_DATA_DIR`, the Keras cache
    (`$KERAS_HOME/datasets/fashion-mnist`) and `/usr/share/datasets/fashion-mnist` (package
    `dataset-fashion-mnist`), in that order; Keras downloads them only when none holds them.
    The files are validated and cached per directory; every call returns fresh copies.

    Args:
        path: str or Path. The directory of the four `.gz` files; an explicit `path` is never
            skipped. Defaults to `None` (the standard locations).
        download: bool. Whether to fall back to `keras.datasets.fashion_mnist.load_data()`.
            Defaults to `True`.
        expected_counts: tuple of two ints or None. Required (train, test) sample counts;
            `None` skips the check. Defaults to `(60000, 10000)`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images `(n, 28, 28)`, uint8 labels `(n,)`.

    Raises:
        DatasetNotFoundError: If no directory holds the files and no download happened.
        DatasetCorruptError: If a file is truncated, not gzip, or has the wrong content.
        ValueError: If `expected_counts` is not a pair of non-negative ints or None.

    Example:

    ```python
    from transferkit.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == "uint8"
    assert FASHION_MNIST_CLASSES[y_train[0]] == "Ankle boot"
    ```
    """
    _check_expected_counts(expected_counts)
    candidates, directory = _candidates(path), find_fashion_mnist(path)
    if directory is not None:
        return _copy(_load_directory(directory, _file_signature(directory), expected_counts))
    if path is None and download:
        return _download(candidates, expected_counts)
    extra = "Downloading is disabled (`download=False`)."
    if path is not None:
        extra = "An explicit `path` is never skipped: pass `path=None` to search the others."
    raise DatasetNotFoundError(_not_found_message(candidates, extra))
