"""Tests of `transferkit.datasets`: the offline Fashion-MNIST loader and preprocessing helpers.

Everything runs on real files: the installed Fashion-MNIST (tests that need it are skipped when
it is absent) and small, valid (or deliberately broken) IDX files written into `tmp_path`.
"""

from __future__ import annotations

import gzip
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transferkit.datasets as datasets
from transferkit.datasets import (
    FASHION_MNIST_CLASSES,
    DatasetCorruptError,
    DatasetError,
    DatasetNotFoundError,
    Split,
    _fashion_mnist,
    augmentation,
    find_fashion_mnist,
    lab_split,
    load_fashion_mnist,
    normalize,
    resize_images,
    stratified_subsample,
    subset_classes,
    to_float_images,
    train_val_test_split,
)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
FIX_COMMAND = "apt-get install dataset-fashion-mnist"

# --------------------------------------------------------------------------------------------
# Helpers: write real IDX files
# --------------------------------------------------------------------------------------------


def idx_bytes(array: npt.NDArray[np.uint8], magic: int | None = None) -> bytes:
    """Serialize a uint8 array in IDX format (big-endian header: magic, then each dimension)."""
    if magic is None:
        magic = 2049 if array.ndim == 1 else 2051
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(file: Path, array: npt.NDArray[np.uint8], magic: int | None = None) -> None:
    """Write `array` as a gzip-compressed IDX file."""
    file.write_bytes(gzip.compress(idx_bytes(array, magic), compresslevel=1))


def write_dataset(directory: Path, *, marker: int = 0, n_train: int = 20, n_test: int = 10) -> Path:
    """Write a small valid Fashion-MNIST look-alike; every pixel equals `marker`."""
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / TRAIN_IMAGES, np.full((n_train, 28, 28), marker, dtype=np.uint8))
    write_idx(directory / TRAIN_LABELS, (np.arange(n_train) % 10).astype(np.uint8))
    write_idx(directory / TEST_IMAGES, np.full((n_test, 28, 28), marker, dtype=np.uint8))
    write_idx(directory / TEST_LABELS, (np.arange(n_test) % 10).astype(np.uint8))
    return directory


def to_numpy(tensor: Any) -> npt.NDArray[Any]:
    return np.asarray(keras.ops.convert_to_numpy(tensor))


def load_small(path: Path | None = None, **kwargs: Any) -> Any:
    return load_fashion_mnist(path, expected_counts=None, **kwargs)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No `$TRANSFERKIT_DATA_DIR` and an empty Keras home; returns that Keras home."""
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.delenv("TRANSFERKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return keras_home


@pytest.fixture
def no_system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the system location at an empty directory (as on a machine without the package)."""
    empty = tmp_path / "no_system_package"
    monkeypatch.setattr(_fashion_mnist, "SYSTEM_DIR", empty)
    return empty


@pytest.fixture(scope="module")
def real() -> Any:
    if find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed (sudo apt-get install dataset-fashion-mnist)")
    return load_fashion_mnist(download=False)


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


def test_real_data_shapes_dtypes_and_balance(real: Any) -> None:
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.max() == 255 and x_train.min() == 0
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert FASHION_MNIST_CLASSES[y_train[0]] == "Ankle boot"  # well-known first label (9)
    assert len(FASHION_MNIST_CLASSES) == 10


def test_returns_fresh_writable_copies(real: Any) -> None:
    (x_train, y_train), _ = load_fashion_mnist(download=False)
    assert x_train.flags.writeable
    x_train[:] = 0
    y_train[:] = 0
    (x_again, y_again), _ = load_fashion_mnist(download=False)
    np.testing.assert_array_equal(x_again, real[0][0])
    np.testing.assert_array_equal(y_again, real[0][1])


def test_lab_split_matches_lab_protocol(real: Any) -> None:
    (x_train, y_train), (x_test, y_test) = real
    split = lab_split()
    assert isinstance(split, Split)
    (xt, yt), (xv, yv), (xs, ys) = split
    assert xt.shape == (50000, 28, 28, 1) and xv.shape == (10000, 28, 28, 1)
    assert xs.shape == (10000, 28, 28, 1)
    assert {a.dtype for a in (xt, xv, xs)} == {np.dtype(np.float32)}
    assert {a.dtype for a in (yt, yv, ys)} == {np.dtype(np.int64)}
    # The lab: x_val = x_train[-10000:], unshuffled, divided by 255.
    np.testing.assert_array_equal(xv[..., 0], x_train[-10000:].astype("float32") / 255)
    np.testing.assert_array_equal(xt[..., 0], x_train[:50000].astype("float32") / 255)
    np.testing.assert_array_equal(xs[..., 0], x_test.astype("float32") / 255)
    np.testing.assert_array_equal(yv, y_train[-10000:])
    np.testing.assert_array_equal(ys, y_test)
    assert 0.0 <= xt.min() and xt.max() == 1.0
    assert "train=50000" in repr(split)


def test_source_and_target_tasks_from_real_data(real: Any) -> None:
    (x_train, y_train), _ = real
    x_src, y_src = subset_classes(x_train, y_train, range(5))
    x_tgt, y_tgt = subset_classes(x_train, y_train, [5, 6, 7, 8, 9])
    assert len(x_src) == len(x_tgt) == 30000
    assert np.bincount(y_src).tolist() == [6000] * 5
    assert np.bincount(y_tgt).tolist() == [6000] * 5
    np.testing.assert_array_equal(x_tgt, x_train[y_train >= 5])


@pytest.mark.parametrize("budget", [50, 500, 5000])
def test_label_budgets_on_real_labels(real: Any, budget: int) -> None:
    (x_train, y_train), _ = real
    x_sub, y_sub = stratified_subsample(x_train, y_train, budget, seed=1)
    assert x_sub.shape == (budget, 28, 28)
    assert np.bincount(y_sub, minlength=10).tolist() == [budget // 10] * 10


# --------------------------------------------------------------------------------------------
# Search order
# --------------------------------------------------------------------------------------------


def test_explicit_path_wins_over_everything(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = write_dataset(tmp_path / "explicit", marker=1)
    env_dir = write_dataset(tmp_path / "env", marker=2)
    write_dataset(clean_env / "datasets" / "fashion-mnist", marker=3)
    monkeypatch.setenv("TRANSFERKIT_DATA_DIR", str(env_dir))
    (x_train, y_train), (x_test, y_test) = load_small(explicit)
    assert x_train.shape == (20, 28, 28) and x_test.shape == (10, 28, 28)
    assert x_train[0, 0, 0] == 1
    np.testing.assert_array_equal(y_train, np.arange(20) % 10)
    assert find_fashion_mnist(explicit) == explicit.resolve()
    assert find_fashion_mnist(str(explicit)) == explicit.resolve()


def test_env_var_wins_over_keras_cache(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = write_dataset(tmp_path / "env", marker=2)
    write_dataset(clean_env / "datasets" / "fashion-mnist", marker=3)
    monkeypatch.setenv("TRANSFERKIT_DATA_DIR", str(env_dir))
    assert load_small()[0][0][0, 0, 0] == 2
    assert find_fashion_mnist() == env_dir.resolve()


def test_keras_cache_wins_over_system_dir(clean_env: Path, tmp_path: Path) -> None:
    cache = write_dataset(clean_env / "datasets" / "fashion-mnist", marker=3)
    assert load_small()[0][0][0, 0, 0] == 3
    assert find_fashion_mnist() == cache.resolve()


def test_env_var_without_files_falls_through(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty_env").mkdir()
    monkeypatch.setenv("TRANSFERKIT_DATA_DIR", str(tmp_path / "empty_env"))
    cache = write_dataset(clean_env / "datasets" / "fashion-mnist", marker=3)
    assert load_small()[0][0][0, 0, 0] == 3
    assert find_fashion_mnist() == cache.resolve()


def test_system_dir_is_the_last_location(clean_env: Path, real: Any) -> None:
    assert find_fashion_mnist() == Path("/usr/share/datasets/fashion-mnist").resolve()
    assert load_fashion_mnist(download=False)[0][0].shape == (60000, 28, 28)


def test_explicit_path_without_files_never_falls_through(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = write_dataset(tmp_path / "env", marker=2)
    monkeypatch.setenv("TRANSFERKIT_DATA_DIR", str(env_dir))
    missing = tmp_path / "does_not_exist"
    with pytest.raises(DatasetNotFoundError) as info:
        load_small(missing)
    message = str(info.value)
    assert str(missing) in message and "does not exist" in message
    assert FIX_COMMAND in message and "TRANSFERKIT_DATA_DIR" in message
    assert str(env_dir) not in message  # only the explicit path was considered
    assert find_fashion_mnist(missing) is None


def test_nothing_found_lists_every_directory(
    clean_env: Path, no_system_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = tmp_path / "env"
    partial = write_dataset(env_dir)
    (partial / TEST_LABELS).unlink()
    monkeypatch.setenv("TRANSFERKIT_DATA_DIR", str(env_dir))
    assert find_fashion_mnist() is None
    with pytest.raises(DatasetNotFoundError) as info:
        load_small(download=False)
    message = str(info.value)
    for directory in (env_dir, clean_env / "datasets" / "fashion-mnist", no_system_dir):
        assert str(directory) in message
    assert f"missing {TEST_LABELS}" in message
    assert FIX_COMMAND in message and "export TRANSFERKIT_DATA_DIR=" in message
    assert "keras.datasets.fashion_mnist.load_data()" in message
    assert "download=False" in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)


def test_path_that_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "not_a_dir"
    file.write_text("x")
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        load_small(file)


# --------------------------------------------------------------------------------------------
# Corrupt files
# --------------------------------------------------------------------------------------------


def _corrupt_not_gzip(directory: Path) -> None:
    (directory / TRAIN_IMAGES).write_bytes(b"definitely not gzip")


def _corrupt_truncated_gzip(directory: Path) -> None:
    data = (directory / TRAIN_IMAGES).read_bytes()
    (directory / TRAIN_IMAGES).write_bytes(data[: len(data) // 2])


def _corrupt_bad_magic(directory: Path) -> None:
    write_idx(directory / TRAIN_LABELS, np.zeros(20, dtype=np.uint8), magic=2051)


def _corrupt_swapped_files(directory: Path) -> None:
    images = (directory / TEST_IMAGES).read_bytes()
    (directory / TEST_IMAGES).write_bytes((directory / TEST_LABELS).read_bytes())
    (directory / TEST_LABELS).write_bytes(images)


def _corrupt_truncated_payload(directory: Path) -> None:
    raw = idx_bytes(np.zeros((20, 28, 28), dtype=np.uint8))
    (directory / TRAIN_IMAGES).write_bytes(gzip.compress(raw[:-5]))


def _corrupt_short_header(directory: Path) -> None:
    (directory / TEST_LABELS).write_bytes(gzip.compress(b"\x00\x00\x08"))


def _corrupt_label_11(directory: Path) -> None:
    labels = (np.arange(20) % 10).astype(np.uint8)
    labels[3] = 11
    write_idx(directory / TRAIN_LABELS, labels)


def _corrupt_count_mismatch(directory: Path) -> None:
    write_idx(directory / TEST_LABELS, np.zeros(9, dtype=np.uint8))


def _corrupt_image_shape(directory: Path) -> None:
    write_idx(directory / TEST_IMAGES, np.zeros((10, 32, 32), dtype=np.uint8))


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (_corrupt_not_gzip, "Cannot decompress .*train-images"),
        (_corrupt_truncated_gzip, "Cannot decompress .*truncated"),
        (_corrupt_bad_magic, "magic number 2051; expected 2049"),
        (_corrupt_swapped_files, "swapped"),
        (_corrupt_truncated_payload, "truncated or corrupt"),
        (_corrupt_short_header, "too short"),
        (_corrupt_label_11, "0..9; received a maximum label of 11"),
        (_corrupt_count_mismatch, "10 images but 9 labels"),
        (_corrupt_image_shape, r"\(n, 28, 28\)"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[9:] if callable(value) else "",
)
def test_corrupt_files(tmp_path: Path, corrupt: Callable[[Path], None], match: str) -> None:
    directory = write_dataset(tmp_path / "data")
    corrupt(directory)
    with pytest.raises(DatasetCorruptError, match=match) as info:
        load_small(directory)
    assert isinstance(info.value, ValueError)


def test_sample_counts_are_validated(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "data")
    with pytest.raises(DatasetCorruptError, match="has 20 samples; expected 60000"):
        load_fashion_mnist(directory)
    assert load_fashion_mnist(directory, expected_counts=(20, 10))[1][0].shape == (10, 28, 28)
    with pytest.raises(DatasetCorruptError, match="has 10 samples; expected 11"):
        load_fashion_mnist(directory, expected_counts=(20, 11))


@pytest.mark.parametrize("bad", [(1,), [60000, 10000], (1.5, 2), (-1, 3), "60000"])
def test_expected_counts_must_be_a_pair_of_ints(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(ValueError, match="`expected_counts` must be a pair"):
        load_fashion_mnist(tmp_path, expected_counts=bad)


def test_cache_is_invalidated_when_files_change(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "data", marker=4, n_train=20)
    assert load_small(directory)[0][0].shape == (20, 28, 28)
    write_dataset(directory, marker=5, n_train=30)
    (x_train, _), _ = load_small(directory)
    assert x_train.shape == (30, 28, 28) and x_train[0, 0, 0] == 5


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def test_normalize_and_to_float_images() -> None:
    pixels = np.array([[0, 51], [102, 255]], dtype=np.uint8)
    np.testing.assert_allclose(normalize(pixels), [[0, 0.2], [0.4, 1.0]], rtol=1e-6)
    assert normalize(pixels).dtype == np.float32
    assert normalize(pixels, scale=2.0, dtype="float64").dtype == np.float64
    assert normalize([2, 4], scale=2.0).tolist() == [1.0, 2.0]
    images = np.arange(2 * 28 * 28).reshape(2, 28, 28).astype(np.uint8)
    out = to_float_images(images)
    assert out.shape == (2, 28, 28, 1) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], images.astype("float32") / 255)
    assert to_float_images(np.zeros((3, 8, 8, 3), dtype=np.uint8)).shape == (3, 8, 8, 3)


def test_resize_images_shapes_and_range() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((5, 28, 28, 1), dtype=np.float32)
    out = resize_images(images, 32, rgb=True, batch_size=2)
    assert out.shape == (5, 32, 32, 3) and out.dtype == np.float32
    assert images.min() - 1e-6 <= out.min() and out.max() <= images.max() + 1e-6
    np.testing.assert_array_equal(out[..., 0], out[..., 2])  # grey repeated into RGB
    np.testing.assert_allclose(out, resize_images(images, 32, rgb=True), atol=1e-6)
    assert resize_images(images, (96, 64)).shape == (5, 96, 64, 1)
    assert resize_images(images[..., 0], 14).shape == (5, 14, 14, 1)  # (n, h, w) accepted
    np.testing.assert_array_equal(resize_images(images, 28), images)  # same size: unchanged
    assert resize_images(np.zeros((0, 28, 28, 1)), 32, rgb=True).shape == (0, 32, 32, 3)
    constant = np.full((2, 28, 28, 3), 0.25, dtype=np.float32)
    np.testing.assert_allclose(resize_images(constant, 96, rgb=True), 0.25, atol=1e-6)


def test_augmentation_layers_and_training_only() -> None:
    augment = augmentation(seed=0)
    names = [type(layer).__name__ for layer in augment.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation"]
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(to_numpy(augment(images, training=False)), images)
    trained = to_numpy(augment(images, training=True))
    assert trained.shape == images.shape and not np.allclose(trained, images)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, augment(inputs))
    np.testing.assert_allclose(model.predict(images, verbose=0), images)  # inference: identity
    only_flip = augmentation(rotation=0, zoom=0.0, translation=0)
    assert [type(layer).__name__ for layer in only_flip.layers] == ["RandomFlip"]
    nothing = augmentation(flip=False, rotation=0, zoom=0, translation=0)
    np.testing.assert_array_equal(to_numpy(nothing(images, training=True)), images)


# --------------------------------------------------------------------------------------------
# Splitting and subsampling
# --------------------------------------------------------------------------------------------


def _toy(n_per_class: int = 30, classes: int = 5) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    y = np.repeat(np.arange(classes), n_per_class)
    x = np.arange(len(y) * 2).reshape(len(y), 2)  # x[i, 0] // 2 == i identifies each sample
    return x, y


def test_train_val_test_split_sizes_stratification_and_disjointness() -> None:
    x, y = _toy()
    split = train_val_test_split(x, y, val_size=25, test_size=0.2, seed=3)
    (xt, yt), (xv, yv), (xs, ys) = split
    assert (len(xt), len(xv), len(xs)) == (95, 25, 30)
    assert np.bincount(yv).tolist() == [5] * 5 and np.bincount(ys).tolist() == [6] * 5
    ids = np.concatenate([xt[:, 0], xv[:, 0], xs[:, 0]]) // 2
    assert sorted(ids.tolist()) == list(range(150))  # a partition of the input
    np.testing.assert_array_equal(y[xv[:, 0] // 2], yv)  # x and y stay aligned
    float_val = train_val_test_split(x, y, val_size=0.1)
    assert len(float_val.validation[0]) == 15


def test_train_val_test_split_seed_reproducibility() -> None:
    x, y = _toy()
    a = train_val_test_split(x, y, val_size=20, test_size=20, seed=7)
    b = train_val_test_split(x, y, val_size=20, test_size=20, seed=7)
    c = train_val_test_split(x, y, val_size=20, test_size=20, seed=8)
    for part_a, part_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(part_a[0], part_b[0])
    assert not np.array_equal(a.validation[0], c.validation[0])


def test_train_val_test_split_without_test_set_and_unstratified() -> None:
    x, y = _toy()
    split = train_val_test_split(x, y, val_size=30)
    assert split.test[0].shape == (0, 2) and split.test[1].shape == (0,)
    assert len(split.train[0]) == 120
    y_rare = y.copy()
    y_rare[0] = 9  # a class with a single sample cannot be stratified...
    with pytest.raises(ValueError, match=r"classes \[9\] have a single sample"):
        train_val_test_split(x, y_rare, val_size=30)
    unstratified = train_val_test_split(x, y_rare, val_size=30, stratify=False)  # ...but can split
    assert len(unstratified.validation[0]) == 30


def test_subset_classes_relabels_in_given_order() -> None:
    x = np.arange(8)
    y = np.array([3, 7, 5, 7, 1, 5, 3, 0], dtype=np.uint8)
    x_sub, y_sub = subset_classes(x, y, [7, 5])
    assert x_sub.tolist() == [1, 2, 3, 5]
    assert y_sub.tolist() == [0, 1, 0, 1] and y_sub.dtype == np.uint8
    x_raw, y_raw = subset_classes(x, y, (5, 7), relabel=False)
    assert x_raw.tolist() == [1, 2, 3, 5] and y_raw.tolist() == [7, 5, 7, 5]
    x_gap, y_gap = subset_classes(x, y, [4, 0])  # class 4 has no sample: allowed
    assert x_gap.tolist() == [7] and y_gap.tolist() == [1]


def test_stratified_subsample_counts_seed_and_membership() -> None:
    y = np.repeat(np.arange(3), [70, 20, 10])
    x = np.arange(100)
    x_sub, y_sub = stratified_subsample(x, y, 10, seed=0)
    assert np.bincount(y_sub).tolist() == [7, 2, 1]
    assert len(set(x_sub.tolist())) == 10 and np.array_equal(y[x_sub], y_sub)
    again = stratified_subsample(x, y, 10, seed=0)
    np.testing.assert_array_equal(again[0], x_sub)
    assert not np.array_equal(stratified_subsample(x, y, 10, seed=1)[0], x_sub)
    assert np.bincount(stratified_subsample(x, y, 3)[1]).tolist() == [1, 1, 1]
    assert sorted(stratified_subsample(x, y, 100)[0].tolist()) == list(range(100))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8),
    fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_stratified_subsample_allocation_property(counts: list[int], fraction: float) -> None:
    y = np.repeat(np.arange(len(counts)), counts)
    n = len(counts) + round(fraction * (len(y) - len(counts)))
    _, y_sub = stratified_subsample(np.arange(len(y)), y, n, seed=0)
    per_class = np.bincount(y_sub, minlength=len(counts))
    assert per_class.sum() == n
    assert (per_class >= 1).all() and (per_class <= np.array(counts)).all()
    # Proportional up to the 1-per-class minimum and rounding.
    assert np.all(np.abs(per_class - n * np.array(counts) / len(y)) < len(counts) + 1)


# --------------------------------------------------------------------------------------------
# Bad inputs
# --------------------------------------------------------------------------------------------

_X, _Y = _toy()
_IMAGES = np.zeros((2, 28, 28), dtype=np.uint8)

BAD_INPUTS: list[tuple[str, Callable[[], object], str]] = [
    ("normalize-scale-0", lambda: normalize(_IMAGES, scale=0), "`scale` must be a positive"),
    ("normalize-scale-nan", lambda: normalize(_IMAGES, scale=float("nan")), "`scale`"),
    ("normalize-int-dtype", lambda: normalize(_IMAGES, dtype="int32"), "`dtype` must be a floa"),
    ("to-float-2d", lambda: to_float_images(np.zeros((28, 28))), r"received shape \(28, 28\)"),
    ("to-float-floats", lambda: to_float_images(_IMAGES / 255), "received dtype float64"),
    ("resize-size-0", lambda: resize_images(_IMAGES, 0), "`size` must be a positive int"),
    ("resize-size-triple", lambda: resize_images(_IMAGES, (1, 2, 3)), r"received \(1, 2, 3\)"),  # type: ignore[arg-type]
    ("resize-size-bool", lambda: resize_images(_IMAGES, True), "`size`"),
    ("resize-batch-0", lambda: resize_images(_IMAGES, 32, batch_size=0), "`batch_size`"),
    ("resize-5d", lambda: resize_images(np.zeros((1, 2, 3, 4, 5)), 32), "received shape"),
    (
        "resize-rgb-2ch",
        lambda: resize_images(np.zeros((1, 4, 4, 2)), 8, rgb=True),
        "received 2 channels",
    ),
    ("aug-rotation-neg", lambda: augmentation(rotation=-0.1), "`rotation` must be"),
    ("aug-zoom-1", lambda: augmentation(zoom=1.0), r"`zoom` must be a number in \[0, 1.0\)"),
    ("aug-translation-str", lambda: augmentation(translation="0.1"), "`translation`"),  # type: ignore[arg-type]
    ("aug-seed-neg", lambda: augmentation(seed=-1), "`seed` must be a non-negative int"),
    ("split-len-mismatch", lambda: train_val_test_split(_X, _Y[:-1], val_size=5), "len.x.=150"),
    ("split-2d-labels", lambda: train_val_test_split(_X, _X, val_size=5), "1-D array"),
    ("split-float-labels", lambda: train_val_test_split(_X, _Y * 1.0), "received dtype float64"),
    ("split-val-0", lambda: train_val_test_split(_X, _Y, val_size=0), "`val_size` must be a"),
    ("split-val-1.0", lambda: train_val_test_split(_X, _Y, val_size=1.0), "received 1.0"),
    ("split-test-neg", lambda: train_val_test_split(_X, _Y, test_size=-3), "`test_size`"),
    ("split-too-big", lambda: train_val_test_split(_X, _Y, val_size=100, test_size=50), "= 150"),
    ("split-val-lt-classes", lambda: train_val_test_split(_X, _Y, val_size=3), "`val_size`"),
    ("split-seed-float", lambda: train_val_test_split(_X, _Y, val_size=5, seed=1.5), "`seed`"),  # type: ignore[arg-type]
    ("subset-empty", lambda: subset_classes(_X, _Y, []), "`classes` must be a non-empty"),
    ("subset-dup", lambda: subset_classes(_X, _Y, [1, 1]), "duplicates"),
    ("subset-absent", lambda: subset_classes(_X, _Y, [7, 8]), r"None of the `classes` \[7, 8\]"),
    ("subset-str", lambda: subset_classes(_X, _Y, "01"), "`classes`"),  # type: ignore[arg-type]
    ("subsample-lt-classes", lambda: stratified_subsample(_X, _Y, 4), "received 4"),
    ("subsample-gt-len", lambda: stratified_subsample(_X, _Y, 151), "received 151"),
    ("subsample-float", lambda: stratified_subsample(_X, _Y, 10.0), "`n` must be an int"),  # type: ignore[arg-type]
    ("subsample-scalar-x", lambda: stratified_subsample(3, _Y, 10), "`x` must be an array"),
]


@pytest.mark.parametrize(
    ("call", "match"),
    [(call, match) for _, call, match in BAD_INPUTS],
    ids=[name for name, _, _ in BAD_INPUTS],
)
def test_bad_inputs_raise_clear_value_errors(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------------------------
# Public API and docstrings
# --------------------------------------------------------------------------------------------


def test_public_api_is_exported() -> None:
    assert sorted(datasets.__all__) == sorted(
        name for name in vars(datasets) if not name.startswith("_") and name != "annotations"
    )
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    assert issubclass(DatasetCorruptError, ValueError)


_DOCUMENTED = [name for name in datasets.__all__ if name != "FASHION_MNIST_CLASSES"]


@pytest.mark.parametrize("name", _DOCUMENTED)
def test_docstrings_have_sections_and_an_example(name: str) -> None:
    # The examples themselves run in test_docstrings.py.
    doc = inspect.getdoc(getattr(datasets, name)) or ""
    assert "Example:" in doc and "```python" in doc
    if inspect.isfunction(getattr(datasets, name)):
        assert "Args:" in doc and "Returns:" in doc
