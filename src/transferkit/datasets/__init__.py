"""Datasets: Fashion-MNIST offline, image folders as arrays, preprocessing and splits."""

from __future__ import annotations

from ._fashion_mnist import FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES
from ._fashion_mnist import DatasetCorruptError as DatasetCorruptError
from ._fashion_mnist import DatasetError as DatasetError
from ._fashion_mnist import DatasetNotFoundError as DatasetNotFoundError
from ._fashion_mnist import find_fashion_mnist as find_fashion_mnist
from ._fashion_mnist import load_fashion_mnist as load_fashion_mnist
from ._folders import ImageFolder as ImageFolder
from ._folders import from_directory as from_directory
from ._images import augmentation as augmentation
from ._images import normalize as normalize
from ._images import resize_images as resize_images
from ._images import to_float_images as to_float_images
from ._splits import Split as Split
from ._splits import lab_split as lab_split
from ._splits import stratified_subsample as stratified_subsample
from ._splits import subset_classes as subset_classes
from ._splits import train_val_test_split as train_val_test_split

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
