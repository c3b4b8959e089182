"""Lightning DataModules: Fashion-MNIST (Debian IDX files) and CIFAR-10 (python pickles)."""

from dsnn.data.base import DatasetCorruptError, DatasetError, DatasetNotFoundError
from dsnn.data.cifar10 import CIFAR10DataModule
from dsnn.data.fashion_mnist import FashionMNISTDataModule

# The data modules an export may name (conf/data/ option name -> class)
DATA = {"cifar10": CIFAR10DataModule, "fashion_mnist": FashionMNISTDataModule}

__all__ = [
    "DATA",
    "CIFAR10DataModule",
    "DatasetCorruptError",
    "DatasetError",
    "DatasetNotFoundError",
    "FashionMNISTDataModule",
]
