"""What both DataModules share: errors, the uint8 tensor dataset, the seeded split and subset.

Images are held in memory as uint8 tensors (N x C x H x W) and converted per sample:
optional augmentation on uint8, then ``(x / 255 - mean) / std``.  The official training set
is split once by ``seed`` into train/validation (independent of ``fraction``); ``fraction``
then takes a seeded, stratified and nested subset of the train split only, so validation and
test objectives stay comparable across fidelities. ``val_fraction`` does the same to the
validation split (a cheaper, noisier validation for a low fidelity); the train split is the
same whatever its value. Decoded files are cached per process
(dsnn/data/cache.py, `cache=false` reads them every time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from dsnn.config_checks import ConfigError
from dsnn.data.cache import cached_load


class DatasetError(RuntimeError):
    """A data set is missing or unreadable; the message names the path and the fix."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data set file or folder is missing (and could not be downloaded)."""


class DatasetCorruptError(DatasetError):
    """A data set file exists but is truncated or not in the expected format."""


class TensorImageDataset(Dataset):
    """(image, label) pairs from uint8 images (N x C x H x W) and int64 labels (N,).

    ``transform`` (e.g. random crop/flip) acts on one uint8 image (C x H x W); normalisation
    with the per-channel ``mean``/``std`` (in [0, 1] units) follows for every sample.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 N x C x H x W, got {images.dtype} {images.shape}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
        self.images = images
        self.labels = labels.long()
        # C x 1 x 1 so that they broadcast over one image
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]  # uint8, C x H x W
        if self.transform is not None:
            image = self.transform(image)
        image = (image.float() / 255.0 - self.mean) / self.std
        return image, int(self.labels[index])


def seeded_split(num_items: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(num_items)`` into (train, val) index tensors, each sorted ascending.

    Depends only on (num_items, val_size, seed), so the validation set is the same for every
    ``fraction`` of the same run seed.
    """
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_items, generator=generator)
    return perm[val_size:].sort().values, perm[:val_size].sort().values


def stratified_subset(
    indices: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int, stream: int = 1
) -> torch.Tensor:
    """A seeded subset of ``indices`` keeping ``round(fraction * n_c)`` (>= 1) items per class.

    ``labels[indices]`` are the classes.  Per class, items are taken from the front of a seeded
    permutation, so a smaller fraction's subset is contained in a larger one's (nested
    fidelities).  Returns sorted indices; ``fraction == 1`` returns ``indices`` unchanged.
    ``stream`` (>= 1) picks the permutations: the train and validation subsets draw apart.
    """
    if fraction >= 1.0:
        return indices
    generator = torch.Generator().manual_seed(seed + stream)  # not the split's stream
    classes = labels[indices]
    keep = []
    for c in torch.unique(classes).tolist():
        members = indices[classes == c]
        count = max(1, round(fraction * members.numel()))
        order = torch.randperm(members.numel(), generator=generator)
        keep.append(members[order[:count]])
    return torch.cat(keep).sort().values


def check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise ValueError naming ``name`` unless ``low <= value`` (and ``value < high``)."""
    allowed = f"an int >= {low}" if high is None else f"an int in [{low}, {high})"
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value >= high)
    ):
        raise ValueError(f"{name}={value!r} is invalid: must be {allowed}")


def check_fraction(value: object, name: str = "fraction") -> None:
    """Raise ValueError naming ``name`` unless ``0 < value <= 1``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0.0 < value <= 1.0
    ):
        raise ValueError(f"{name}={value!r} is invalid: must be a number in (0, 1]")


class ImageDataModule(L.LightningDataModule):
    """Seeded train/val split of the official training set, official test set as test.

    Subclasses set the class attributes and implement ``_load(train)`` returning uint8 images
    (N x C x H x W) and int64 labels, and may set ``train_transform`` (uint8 augmentation).
    """

    in_channels: int
    num_classes: int
    image_size: int
    official_train_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __init__(
        self,
        root: str,
        batch_size: int,
        val_size: int,
        fraction: float,
        seed: int,
        num_workers: int,
        pin_memory: bool,
        cache: bool = True,
        val_fraction: float = 1.0,
    ) -> None:
        super().__init__()
        check_int("batch_size", batch_size, 1)
        check_fraction(fraction)
        check_fraction(val_fraction, "val_fraction")
        check_int("val_size", val_size, 0, self.official_train_size)
        check_int("num_workers", num_workers, 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed={seed!r} is invalid: must be an int")
        self.root = str(root)
        self.batch_size = batch_size
        self.val_size = val_size
        self.fraction = float(fraction)
        self.val_fraction = float(val_fraction)
        self.seed = seed
        self.num_workers = num_workers
        self.pin_memory = bool(pin_memory)
        self.cache = bool(cache)  # decoded files kept for later runs in this process
        self.train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.data_train: TensorImageDataset | None = None
        self.data_val: TensorImageDataset | None = None
        self.data_test: TensorImageDataset | None = None
        # indices into the official training set, set by setup()
        self.train_indices: torch.Tensor | None = None
        self.val_indices: torch.Tensor | None = None
        # seeded shuffling: the same run seed gives the same batch order; one generator for
        # the whole fit, saved in checkpoints (state_dict), so a continued run goes on with
        # the batch order an uninterrupted run would have had
        self.train_generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"train_generator": self.train_generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train_generator.set_state(state_dict["train_generator"])

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return  # already loaded; all splits are built at once
        images, labels = self._decoded(train=True)
        if self.val_size >= images.shape[0]:  # the files may hold fewer than the official set
            raise ConfigError(
                f"data.val_size={self.val_size} is invalid: must be an int in [0, "
                f"{images.shape[0]}), the training images in data.root={self.root!r}"
            )
        train_idx, val_idx = seeded_split(images.shape[0], self.val_size, self.seed)
        train_idx = stratified_subset(train_idx, labels, self.fraction, self.seed)
        val_idx = stratified_subset(val_idx, labels, self.val_fraction, self.seed, stream=2)
        self.train_indices, self.val_indices = train_idx, val_idx
        self.data_train = self._dataset(images[train_idx], labels[train_idx], self.train_transform)
        self.data_val = self._dataset(images[val_idx], labels[val_idx])
        self.data_test = self._dataset(*self._decoded(train=False))

    def _decoded(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.cache:
            return self._load(train)
        return cached_load(type(self).__qualname__, self.root, train, lambda: self._load(train))

    def _dataset(self, images, labels, transform=None) -> TensorImageDataset:
        return TensorImageDataset(images, labels, self.mean, self.std, transform)

    def _loader(self, dataset: TensorImageDataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before the dataloaders")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=self.train_generator if shuffle else None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data_test, shuffle=False)
