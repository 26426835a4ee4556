"""`from_directory`: real PNG, JPEG, BMP and GIF files in class folders, read into arrays."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import transferkit as tk
from transferkit.datasets import ImageFolder, from_directory

Image = pytest.importorskip("PIL.Image")

COLORS = {"ant": (200, 10, 10), "bee": (10, 200, 10), "cat": (10, 10, 200)}


def write_folder(root, per_class=4, size=(12, 9)):
    """Solid-colour images, one colour per class, in every format (one file nested deeper)."""
    formats = ["png", "bmp", "gif", "PNG", "jpg"]
    for name, color in COLORS.items():
        (root / name / "more").mkdir(parents=True)
        for i in range(per_class):
            folder = root / name / ("more" if i == 0 else "")
            Image.new("RGB", size, color).save(folder / f"{i}.{formats[i % len(formats)]}")
        (root / name / "notes.txt").write_text("not an image")
    return root


def test_reads_class_folders_into_uint8_arrays(tmp_path):
    folder = from_directory(write_folder(tmp_path), image_size=(6, 5))
    assert isinstance(folder, ImageFolder) and isinstance(folder.x, np.ndarray)
    assert folder.x.shape == (12, 6, 5, 3) and folder.x.dtype == np.uint8
    assert folder.class_names == ("ant", "bee", "cat")
    assert folder.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(folder.paths) == 12 and not any(p.endswith(".txt") for p in folder.paths)
    assert sum("more" in p for p in folder.paths) == 3  # nested files are read too
    for image, label, path in zip(folder.x, folder.y, folder.paths, strict=True):
        assert Path(path).parent.name in (folder.class_names[label], "more")
        color = COLORS[folder.class_names[label]]  # GIF palettes and JPEG shift colours a bit
        assert np.abs(image.astype(int) - color).max() <= (3 if path.endswith("jpg") else 0)
        np.testing.assert_array_equal(image, keras.utils.img_to_array(  # Keras's own loader
            keras.utils.load_img(path, target_size=(6, 5), interpolation="bilinear"),
            dtype="uint8"))  # fmt: skip


@pytest.mark.parametrize(("mode", "channels"), [("grayscale", 1), ("rgba", 4)])
def test_color_modes(tmp_path, mode, channels):
    folder = from_directory(write_folder(tmp_path, 2), image_size=(4, 4), color_mode=mode)
    assert folder.x.shape == (6, 4, 4, channels)


def test_validation_split_is_stratified_and_seeded(tmp_path):
    root = write_folder(tmp_path, per_class=5)
    train, val = from_directory(root, image_size=(4, 4), validation_split=0.4, seed=1)
    assert np.bincount(train.y).tolist() == [3, 3, 3] and np.bincount(val.y).tolist() == [2] * 3
    assert sorted(train.paths + val.paths) == sorted(from_directory(root, image_size=(4, 4)).paths)
    again = from_directory(root, image_size=(4, 4), validation_split=0.4, seed=1)[1]
    other = from_directory(root, image_size=(4, 4), validation_split=0.4, seed=2)[1]
    assert again.paths == val.paths and other.paths != val.paths
    np.testing.assert_array_equal(again.x, val.x)


def test_over_the_budget_the_images_are_memory_mapped(tmp_path):
    root = write_folder(tmp_path)
    in_memory = from_directory(root, image_size=(6, 5))
    mapped = from_directory(root, image_size=(6, 5), budget_bytes=100)
    assert isinstance(mapped.x, np.memmap) and not isinstance(in_memory.x, np.memmap)
    np.testing.assert_array_equal(mapped.x, in_memory.x)


def test_folder_arrays_train_on_the_cached_fast_path(tmp_path):
    train, val = tk.from_directory(write_folder(tmp_path), image_size=(8, 8),
                                   validation_split=0.25, seed=0)  # fmt: skip
    model = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip
    result = tk.fine_tune(model, (train.x, train.y), validation=(val.x, val.y), epochs=1,
                          strategy="feature_extractor", verbose=0)  # fmt: skip
    assert result.cache.used and len(result.history["val_accuracy"]) == 1


def _no_classes(tmp_path):
    (tmp_path / "loose.png").write_bytes(b"")
    return tmp_path


def _empty_class(tmp_path):
    write_folder(tmp_path, 1)
    (tmp_path / "dog" / "sub").mkdir(parents=True)
    (tmp_path / "dog" / "readme.md").write_text("no pictures")
    return tmp_path


@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (lambda t: t / "nowhere", {}, r"Received: \S+nowhere, which does not exist"),
        (lambda t: _no_classes(t) / "loose.png", {}, "loose.png, which is not a folder"),
        (_no_classes, {}, "which has no class folders"),
        (_empty_class, {}, r"Class folders \['dog'\] of \S+ hold no images: .*\.png, \.jpg"),
        (write_folder, {"color_mode": "rgb8"}, "`color_mode` must be one of 'grayscale', 'rgb', "
         "'rgba'. Did you mean 'rgb'"),
        (write_folder, {"image_size": (0, 8)}, r"two positive ints. Received: image_size=\(0, 8\)"),
        (write_folder, {"image_size": 8}, "`image_size` must be `\\(height, width\\)`"),
        (write_folder, {"image_size": (8, 8, 3)}, "`image_size` must be"),
        (write_folder, {"validation_split": 0.0, "seed": 0}, "validation_split=0.0, seed=0"),
        (write_folder, {"validation_split": 1, "seed": 0}, "fraction in \\(0, 1\\)"),
        (write_folder, {"validation_split": 0.2}, "with an int `seed`.*seed=None"),
    ],
)  # fmt: skip
def test_bad_folders_and_arguments_are_refused(tmp_path, make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        from_directory(make(tmp_path), **{"image_size": (8, 8), **kwargs})
