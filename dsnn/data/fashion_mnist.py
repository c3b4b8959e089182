"""Fashion-MNIST (28 x 28 grey images, 10 classes) read from the four IDX .gz files.

The Debian package ``dataset-fashion-mnist`` installs them under
/usr/share/datasets/fashion-mnist; nothing is downloaded.  No augmentation.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import torch

from dsnn.data.base import DatasetCorruptError, DatasetNotFoundError, ImageDataModule

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
FILES = {
    True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
# IDX magic: two zero bytes, the type (0x08 = unsigned byte), the number of dimensions
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _fix(root: str) -> str:
    return f"Fix: apt-get install dataset-fashion-mnist, or set data.root=... (now {root!r})"


def read_idx(path: str, magic: int, fix: str = "") -> torch.Tensor:
    """Read one gzipped IDX file of unsigned bytes into a uint8 tensor of its dimensions."""
    if not os.path.isfile(path):
        raise DatasetNotFoundError(f"Fashion-MNIST file not found: {path}. {fix}")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DatasetCorruptError(f"Fashion-MNIST file is corrupt: {path} ({err}). {fix}") from err
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < 4 or struct.unpack(">I", raw[:4])[0] != magic:
        found = raw[:4].hex() or "empty file"
        raise DatasetCorruptError(
            f"Fashion-MNIST file is corrupt: {path} has IDX magic {found}, "
            f"expected {magic:08x}. {fix}"
        )
    if len(raw) < header:
        raise DatasetCorruptError(f"Fashion-MNIST file is corrupt: {path} header is cut. {fix}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) != header + math.prod(dims):
        raise DatasetCorruptError(
            f"Fashion-MNIST file is corrupt: {path} holds {len(raw) - header} data bytes, "
            f"its header {dims} says {math.prod(dims)}. {fix}"
        )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header).view(*dims)


class FashionMNISTDataModule(ImageDataModule):
    """Fashion-MNIST with a seeded train/val split of the 60000 training images.

    Batches are (float32 B x 1 x 28 x 28 normalised images, int64 B labels).
    """

    in_channels = 1
    num_classes = 10
    image_size = 28
    official_train_size = 60000
    # over the 60000 training images, in [0, 1] units
    mean = (0.2860,)
    std = (0.3530,)
    classes = (
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

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        batch_size: int = 128,
        val_size: int = 5000,
        fraction: float = 1.0,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        cache: bool = True,
        val_fraction: float = 1.0,
    ) -> None:
        super().__init__(
            root, batch_size, val_size, fraction, seed, num_workers, pin_memory, cache, val_fraction
        )

    def prepare_data(self) -> None:
        # fail before any training if a file is missing (nothing to download)
        for names in FILES.values():
            for name in names:
                path = os.path.join(self.root, name)
                if not os.path.isfile(path):
                    raise DatasetNotFoundError(
                        f"Fashion-MNIST file not found: {path}. {_fix(self.root)}"
                    )

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        image_file, label_file = (os.path.join(self.root, name) for name in FILES[train])
        images = read_idx(image_file, IMAGES_MAGIC, _fix(self.root))  # N x 28 x 28
        labels = read_idx(label_file, LABELS_MAGIC, _fix(self.root))  # N
        if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
            raise DatasetCorruptError(
                f"Fashion-MNIST files do not match: {image_file} has shape "
                f"{tuple(images.shape)}, {label_file} has {labels.shape[0]} labels; expected "
                f"N x 28 x 28 and N. {_fix(self.root)}"
            )
        if labels.numel() and int(labels.max()) >= self.num_classes:
            raise DatasetCorruptError(
                f"Fashion-MNIST file is corrupt: {label_file} has label {int(labels.max())}, "
                f"expected 0..9. {_fix(self.root)}"
            )
        return images.unsqueeze(1), labels.long()  # N x 1 x 28 x 28, N
