"""CIFAR-10 (32 x 32 colour images, 10 classes) from its python-pickle batches.

``prepare_data`` downloads the archive with torchvision (md5-checked, every socket operation
bounded by ``DOWNLOAD_TIMEOUT_S``) when the batches are missing; ``setup`` reads
``cifar-10-batches-py/data_batch_1..5`` and ``test_batch`` itself, so small files in the same
format (tests) load too.  The batches are data, never code: a restricted unpickler admits only
what the official files hold (dicts, lists, str/bytes, ints and numpy uint8/int arrays), and
the result is checked before use.  Training images get the standard random crop (padding 4)
and horizontal flip; all splits are normalised with CIFAR-10's mean/std.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torchvision.transforms import v2

from dsnn.data.base import DatasetCorruptError, DatasetNotFoundError, ImageDataModule

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
# seconds one socket operation of the download may stall (connect, each read)
DOWNLOAD_TIMEOUT_S = 60.0
# numpy's array rebuilder, named numpy.core.multiarray._reconstruct in the official files
_RECONSTRUCT = np.zeros(0).__reduce__()[0]


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes bytes under pickle protocol 2 as _codecs.encode(text, "latin1")
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"bytes encoded as {encoding!r}, expected 'latin1'")
    return text.encode("latin1")


class BatchUnpickler(pickle.Unpickler):
    """Admits only the globals of a numpy array (the official files are Python 2 pickles of a
    dict with str/bytes keys, a uint8 array and lists), refuses everything else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy >= 2 writes this
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def _get(batch: object, key: str):
    # the official files are Python 2 pickles: str keys under encoding="latin1"; files written
    # by Python 3 with bytes keys keep them as bytes
    if not isinstance(batch, dict):
        raise TypeError(f"the file holds a {type(batch).__name__}, expected a dict")
    return batch[key] if key in batch else batch[key.encode()]


def _labels(value: object) -> np.ndarray | None:
    """The labels as an int64 array, or None unless a list of ints or a 1-d int array."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu":
        return value.astype(np.int64)
    if isinstance(value, list) and all(type(v) is int for v in value):
        return np.array(value, dtype=np.int64)
    return None


def read_batch(path: str, fix: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """One pickle batch -> uint8 images (N x 3 x 32 x 32) and int64 labels (N,)."""
    try:
        with open(path, "rb") as f:
            batch = BatchUnpickler(f, encoding="latin1").load()
        data, labels = _get(batch, "data"), _labels(_get(batch, "labels"))
    except FileNotFoundError as err:
        raise DatasetNotFoundError(f"CIFAR-10 file not found: {path}. {fix}") from err
    except Exception as err:  # a damaged pickle fails in many ways (numpy's too): all corrupt
        raise DatasetCorruptError(f"CIFAR-10 file is corrupt: {path} ({err!r}). {fix}") from err
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (3072,):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data)
        raise DatasetCorruptError(
            f"CIFAR-10 file is corrupt: {path} has data {found}, expected uint8 N x 3072. {fix}"
        )
    if labels is None or labels.shape != (len(data),) or not np.all((0 <= labels) & (labels <= 9)):
        raise DatasetCorruptError(
            f"CIFAR-10 file is corrupt: {path} needs {data.shape[0]} int labels in 0..9, one "
            f"per image. {fix}"
        )
    # each row is 1024 red, then 1024 green, then 1024 blue values, row-major
    images = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)
    return images, torch.from_numpy(labels)


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every new socket's operations (torchvision's urlopen passes no timeout)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 with a seeded train/val split of the 50000 training images.

    Batches are (float32 B x 3 x 32 x 32 normalised images, int64 B labels).
    """

    in_channels = 3
    num_classes = 10
    image_size = 32
    official_train_size = 50000
    # per channel over the 50000 training images, in [0, 1] units
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    classes = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )

    def __init__(
        self,
        root: str = "data/cifar10",
        batch_size: int = 128,
        val_size: int = 5000,
        fraction: float = 1.0,
        seed: int = 0,
        num_workers: int = 2,
        pin_memory: bool = False,
        download: bool = True,
        augment: bool = True,
        cache: bool = True,
        val_fraction: float = 1.0,
    ) -> None:
        super().__init__(
            root, batch_size, val_size, fraction, seed, num_workers, pin_memory, cache, val_fraction
        )
        self.download = bool(download)
        self.augment = bool(augment)
        if self.augment:
            # on one uint8 image (3 x 32 x 32); zero padding = black, as with PIL
            self.train_transform = v2.Compose(
                [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(p=0.5)]
            )

    @property
    def folder(self) -> str:
        return os.path.join(self.root, FOLDER)

    def _fix(self) -> str:
        return (
            "Fix: set data.download=true with internet, or place cifar-10-batches-py under "
            f"data.root=... (now {self.root!r})"
        )

    def _missing(self) -> list[str]:
        paths = (os.path.join(self.folder, name) for name in TRAIN_FILES + TEST_FILES)
        return [path for path in paths if not os.path.isfile(path)]

    def _not_found(self, missing: list[str], reason: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(
            f"CIFAR-10 not found: missing {', '.join(missing)} ({reason}). {self._fix()}"
        )

    def prepare_data(self) -> None:
        missing = self._missing()
        if not missing:
            return
        if not self.download:
            raise self._not_found(missing, "data.download=false")
        from torchvision.datasets import CIFAR10  # only needed to download

        try:
            # fetches the archive and checks the md5 of it and of every batch; torchvision
            # unpickles only files whose md5 matches the official ones
            with socket_timeout(DOWNLOAD_TIMEOUT_S):
                CIFAR10(self.root, train=True, download=True)
        except Exception as err:  # no network, HTTP errors, md5 mismatch: all mean "not here"
            raise self._not_found(missing, f"download failed: {err!r}") from err
        missing = self._missing()
        if missing:
            raise self._not_found(missing, "not in the downloaded archive")

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        missing = self._missing()
        if missing:  # setup() called without prepare_data()
            raise self._not_found(missing, "prepare_data() did not provide them")
        batches = [
            read_batch(os.path.join(self.folder, name), self._fix())
            for name in (TRAIN_FILES if train else TEST_FILES)
        ]
        return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
