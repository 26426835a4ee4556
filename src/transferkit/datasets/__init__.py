"""Datasets: Fashion-MNIST offline, image folders as arrays, preprocessing and splits."""

from __future__ import annotations

from ._fashion_mnist import FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES
from ._fashion_mnist import DatasetCorruptError as DatasetCorruptError
from ._fashion_mnist import DatasetError as DatasetError
from ._fashion_mnist import DatasetNotFoundError as DatasetNotFoundError
from ._fashion_mnist import find_fashion_mnist as find_fashion_mnist
from ._fashion_mnist import load_fashion_mnist as load_fashion_mnist
from ._folders import ImageFolder, from_directory
from ._images import augmentation, normalize, resize_images, to_float_images
from ._splits import Split, lab_split, stratified_subsample, subset_classes, train_val_test_split

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "ImageFolder",
    "Split",
    "augmentation",
    "find_fashion_mnist",
    "from_directory",
    "lab_split",
    "load_fashion_mnist",
    "normalize",
    "resize_images",
    "stratified_subsample",
    "subset_classes",
    "to_float_images",
    "train_val_test_split",
]
