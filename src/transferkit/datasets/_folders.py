"""`from_directory`: class folders of image files, read with Keras's own loader into arrays."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, is_int, is_real

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


@dataclass(frozen=True)
class ImageFolder:
    """Labelled images read from class folders by `from_directory`.

    Attributes:
        x: uint8 images of shape `(n, height, width, channels)`; a `np.memmap` over a
            temporary file when they are larger than `from_directory`'s `budget_bytes`.
        y: int64 class ids, indices into `class_names`.
        class_names: The class folders' names, sorted.
        paths: Each image's file, in the order of `x`.

    Example:
    ```python
    import numpy as np
    from transferkit.datasets import ImageFolder

    x, y = np.zeros((2, 4, 4, 3), dtype="uint8"), np.array([1, 0])
    folder = ImageFolder(x, y, class_names=("cat", "dog"), paths=("dog/1.png", "cat/1.png"))
    assert folder.class_names[folder.y[0]] == "dog"
    ```
    """

    x: np.ndarray[Any, Any]
    y: np.ndarray[Any, Any]
    class_names: tuple[str, ...]
    paths: tuple[str, ...]


def from_directory(
    path: str | os.PathLike[str],
    *,
    image_size: tuple[int, int],
    color_mode: str = "rgb",
    validation_split: float | None = None,
    seed: int | None = None,
    budget_bytes: int = 2**30,
) -> ImageFolder | tuple[ImageFolder, ImageFolder]:
    """Read a folder of class folders of images (PNG, JPEG, BMP, GIF) into uint8 arrays.

    `path/cat/1.png, path/dog/a.jpg, ...`: each sub-folder is a class (sorted by name, so the
    ids match `keras.utils.image_dataset_from_directory`'s), and its images (sub-folders
    included) are read with `keras.utils.load_img`, resized (bilinear) to `image_size`. As
    NumPy arrays they get the activation cache of `fine_tune` and `compare_strategies`; scale
    them (`normalize`) or start the model with a `Rescaling` layer. Nothing is written to
    `path`. Needs Pillow (`pip install pillow`), as `keras.utils.load_img` does.

    Args:
        path: The folder holding one sub-folder per class.
        image_size: `(height, width)` every image is resized to.
        color_mode: `"grayscale"`, `"rgb"` or `"rgba"` (1, 3 or 4 channels). Defaults to
            `"rgb"`.
        validation_split: float in (0, 1) or None: the fraction of each class held out as a
            validation set, drawn at random with `seed`. Defaults to `None`.
        seed: int. Needed with `validation_split`. Defaults to `None`.
        budget_bytes: int. Images larger than this in all are written to a memory-mapped
            temporary file (deleted with the array) instead of memory. Defaults to 1 GiB.

    Returns:
        An `ImageFolder`, or a `(train, validation)` pair of them with `validation_split`.

    Raises:
        ValueError: If `path` is not a directory, has no class folders or a class folder
            without images, or for a bad `image_size`, `color_mode` or `validation_split`.

    Example:
    ```python
    import tempfile
    from pathlib import Path
    from PIL import Image
    from transferkit.datasets import from_directory

    with tempfile.TemporaryDirectory() as root:
        for name in ("cat", "dog"):
            (Path(root) / name).mkdir()
            for i in range(3):
                Image.new("RGB", (20, 10), (i * 80, 0, 0)).save(Path(root, name, f"{i}.png"))
        folder = from_directory(root, image_size=(8, 8))
    assert folder.x.shape == (6, 8, 8, 3) and folder.x.dtype == "uint8"
    assert folder.class_names == ("cat", "dog") and list(folder.y) == [0, 0, 0, 1, 1, 1]
    ```
    """
    _check_arguments(image_size, color_mode, validation_split, seed)
    class_names, files, y = _list_images(Path(path))
    rng, held = np.random.default_rng(seed), np.zeros(len(y), dtype=bool)
    for label in range(len(class_names)):  # stratified: the same fraction of every class
        ids = rng.permutation(np.flatnonzero(y == label))
        held[ids[: round(len(ids) * (validation_split or 0))]] = True
    train, val = (
        ImageFolder(_read(files[p], image_size, color_mode, budget_bytes), y[p], class_names,
                    tuple(files[p].tolist()))
        for p in (np.flatnonzero(~held), np.flatnonzero(held))
    )  # fmt: skip
    return train if validation_split is None else (train, val)


def _check_arguments(image_size: Any, color_mode: Any, split: Any, seed: Any) -> None:
    """Refuse a bad `image_size`, `color_mode` or `validation_split` (or a split with no seed)."""
    check_choice(color_mode, "color_mode", list(CHANNELS))
    sides = list(image_size) if isinstance(image_size, tuple | list) else []
    if len(sides) != 2 or not all(is_int(side) and side > 0 for side in sides):
        raise ValueError(
            "`image_size` must be `(height, width)`, two positive ints. "
            f"Received: image_size={image_size!r}"
        )
    if split is not None and not (is_real(split) and 0 < split < 1 and is_int(seed)):
        raise ValueError(
            "`validation_split` must be None or a fraction in (0, 1) (exclusive) with an int "
            f"`seed`, so that every call splits alike. Received: validation_split={split!r}, "
            f"seed={seed!r}"
        )


def _list_images(root: Path) -> tuple[tuple[str, ...], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The class names, every image file (class by class, sorted) and its class id."""
    folders = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    if not folders:
        state = ("does not exist", "is not a folder", "has no class folders")
        raise ValueError(
            "`path` must be a folder with a sub-folder of images per class "
            f"({root / 'cat' / '1.png'}, ...). Received: {root}, which "
            f"{state[root.exists() + root.is_dir()]}."
        )
    files = [
        sorted(str(p) for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        for d in folders
    ]
    if empty := [d.name for d, found in zip(folders, files, strict=True) if not found]:
        raise ValueError(
            f"Class folders {empty} of {root} hold no images: the files read are "
            f"{', '.join(IMAGE_EXTENSIONS)}. Add images or remove the folders."
        )
    labels = np.repeat(np.arange(len(files)), [len(found) for found in files])
    return tuple(d.name for d in folders), np.asarray(sum(files, [])), labels


def _read(files: np.ndarray[Any, Any], size: Any, mode: str, budget: int) -> np.ndarray[Any, Any]:
    """The images of `files` as uint8 `(n, height, width, channels)`, in memory or a memmap."""
    import keras

    shape = (len(files), *size, CHANNELS[mode])
    if np.prod(shape) > budget:  # an unlinked file, kept by the mapping and freed with it
        with tempfile.TemporaryFile() as spill:
            x: np.ndarray[Any, Any] = np.memmap(spill, np.uint8, "w+", shape=shape)
    else:
        x = np.empty(shape, np.uint8)
    options = {"color_mode": mode, "target_size": tuple(size), "interpolation": "bilinear"}
    for i, file in enumerate(files):
        x[i] = keras.utils.img_to_array(keras.utils.load_img(file, **options), dtype="uint8")
    return x
