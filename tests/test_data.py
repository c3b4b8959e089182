"""DataModules: real Fashion-MNIST, CIFAR-10 from small files in its own pickle format, errors."""

from __future__ import annotations

import gzip
import inspect
import math
import os
import pickle
import socket
import struct
import threading
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from dsnn.data import (
    CIFAR10DataModule,
    DatasetCorruptError,
    DatasetNotFoundError,
    FashionMNISTDataModule,
)
from dsnn.data.cifar10 import read_batch

REPO = Path(__file__).resolve().parents[1]
FMNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FMNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
needs_fmnist = pytest.mark.skipif(
    not all((FMNIST_ROOT / name).is_file() for name in FMNIST_FILES),
    reason="Fashion-MNIST missing: apt-get install dataset-fashion-mnist",
)


def make_fmnist(**kwargs) -> FashionMNISTDataModule:
    dm = FashionMNISTDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def fmnist() -> FashionMNISTDataModule:
    if not all((FMNIST_ROOT / name).is_file() for name in FMNIST_FILES):
        pytest.skip("Fashion-MNIST missing: apt-get install dataset-fashion-mnist")
    return make_fmnist(seed=0)


def denormalise(x: torch.Tensor, dm) -> torch.Tensor:
    """Normalised float image (C x H x W) back to uint8 pixel values."""
    mean = torch.tensor(dm.mean).view(-1, 1, 1)
    std = torch.tensor(dm.std).view(-1, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.uint8)


# --------------------------------------------------------------------- Fashion-MNIST, real


@needs_fmnist
def test_fmnist_counts_shapes_labels(fmnist):
    assert (len(fmnist.data_train), len(fmnist.data_val), len(fmnist.data_test)) == (
        55000,
        5000,
        10000,
    )
    assert (fmnist.in_channels, fmnist.num_classes, fmnist.image_size) == (1, 10, 28)
    x, y = fmnist.data_train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    for ds, n in ((fmnist.data_train, 55000), (fmnist.data_val, 5000), (fmnist.data_test, 10000)):
        assert sorted(torch.unique(ds.labels).tolist()) == list(range(10))
        assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
    # the official test set has exactly 1000 images per class
    assert torch.bincount(fmnist.data_test.labels).tolist() == [1000] * 10


@needs_fmnist
def test_fmnist_normalised_train_split(fmnist):
    loader = torch.utils.data.DataLoader(fmnist.data_train, batch_size=55000)
    x, _ = next(iter(loader))  # every train image through the dataset's own __getitem__
    assert x.shape == (55000, 1, 28, 28)
    assert abs(x.mean().item()) < 0.01
    assert abs(x.std().item() - 1.0) < 0.01


@needs_fmnist
def test_fmnist_split_deterministic_disjoint(fmnist):
    again = make_fmnist(seed=0)
    other = make_fmnist(seed=1)
    assert torch.equal(again.val_indices, fmnist.val_indices)
    assert torch.equal(again.train_indices, fmnist.train_indices)
    assert torch.equal(again.data_val.images, fmnist.data_val.images)
    assert not torch.equal(other.val_indices, fmnist.val_indices)
    train, val = set(fmnist.train_indices.tolist()), set(fmnist.val_indices.tolist())
    assert not train & val
    assert train | val == set(range(60000))
    # the same seed gives the same shuffled batch order
    y1 = next(iter(fmnist.train_dataloader()))[1]
    y2 = next(iter(again.train_dataloader()))[1]
    assert torch.equal(y1, y2)


@needs_fmnist
def test_fmnist_fraction_stratified_val_test_unchanged(fmnist):
    sub = make_fmnist(seed=0, fraction=0.1)
    assert torch.equal(sub.val_indices, fmnist.val_indices)
    assert torch.equal(sub.data_val.images, fmnist.data_val.images)
    assert torch.equal(sub.data_test.images, fmnist.data_test.images)
    assert torch.equal(sub.data_test.labels, fmnist.data_test.labels)
    # a subset of the full train split, class counts within 1 of proportional
    assert set(sub.train_indices.tolist()) <= set(fmnist.train_indices.tolist())
    full_counts = torch.bincount(fmnist.data_train.labels, minlength=10)
    sub_counts = torch.bincount(sub.data_train.labels, minlength=10)
    for full, part in zip(full_counts.tolist(), sub_counts.tolist(), strict=True):
        assert abs(part - 0.1 * full) <= 1
    assert abs(len(sub.data_train) - 5500) <= 10
    # deterministic, and nested: a smaller fraction's subset lies inside a larger one's
    assert torch.equal(make_fmnist(seed=0, fraction=0.1).train_indices, sub.train_indices)
    smaller = make_fmnist(seed=0, fraction=0.05)
    assert set(smaller.train_indices.tolist()) <= set(sub.train_indices.tolist())


@needs_fmnist
def test_fmnist_val_fraction_stratified_train_test_unchanged(fmnist):
    """val_fraction: a seeded, stratified, nested subset of the validation split; the train
    split (and its fraction's subset) and the test set are those of val_fraction=1."""
    sub = make_fmnist(seed=0, val_fraction=0.1)
    assert torch.equal(sub.train_indices, fmnist.train_indices)
    assert torch.equal(sub.data_train.images, fmnist.data_train.images)
    assert torch.equal(sub.data_test.labels, fmnist.data_test.labels)
    assert set(sub.val_indices.tolist()) <= set(fmnist.val_indices.tolist())
    full_counts = torch.bincount(fmnist.data_val.labels, minlength=10).tolist()
    sub_counts = torch.bincount(sub.data_val.labels, minlength=10).tolist()
    assert all(abs(p - 0.1 * f) <= 1 for p, f in zip(sub_counts, full_counts, strict=True))
    assert abs(len(sub.data_val) - 500) <= 10
    assert torch.equal(make_fmnist(seed=0, val_fraction=0.1).val_indices, sub.val_indices)
    smaller = make_fmnist(seed=0, val_fraction=0.05)
    assert set(smaller.val_indices.tolist()) <= set(sub.val_indices.tolist())
    both = make_fmnist(seed=0, fraction=0.1, val_fraction=0.1)
    assert torch.equal(both.train_indices, make_fmnist(seed=0, fraction=0.1).train_indices)
    assert torch.equal(both.val_indices, sub.val_indices)


@needs_fmnist
def test_fmnist_tiny_fraction_keeps_every_class(fmnist):
    tiny = make_fmnist(seed=0, fraction=1e-6)
    assert torch.bincount(tiny.data_train.labels, minlength=10).tolist() == [1] * 10


@needs_fmnist
def test_fmnist_loaders_batch(fmnist):
    x, y = next(iter(fmnist.train_dataloader()))
    assert x.shape == (128, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (128,) and y.dtype == torch.int64
    # val/test are not shuffled: batches come in dataset order
    xv, yv = next(iter(fmnist.val_dataloader()))
    assert torch.equal(yv, fmnist.data_val.labels[:128])
    assert torch.equal(denormalise(xv[3], fmnist), fmnist.data_val.images[3])
    xt, yt = next(iter(fmnist.test_dataloader()))
    assert xt.shape == (128, 1, 28, 28) and torch.equal(yt, fmnist.data_test.labels[:128])


# ------------------------------------------------------------------- Fashion-MNIST, errors


def test_fmnist_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    dm = FashionMNISTDataModule(root=str(root))
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(root / "train-images-idx3-ubyte.gz") in message
    assert "apt-get install dataset-fashion-mnist" in message and "data.root=" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        dm.setup("fit")  # also without prepare_data


@pytest.fixture
def fmnist_copy(tmp_path) -> Path:
    """A folder of links to the real files, so one can be replaced by a broken one."""
    if not all((FMNIST_ROOT / name).is_file() for name in FMNIST_FILES):
        pytest.skip("Fashion-MNIST missing: apt-get install dataset-fashion-mnist")
    root = tmp_path / "fmnist"
    root.mkdir()
    for name in FMNIST_FILES:
        (root / name).symlink_to(FMNIST_ROOT / name)
    return root


def test_fmnist_truncated_gz(fmnist_copy):
    target = fmnist_copy / "train-labels-idx1-ubyte.gz"
    data = (FMNIST_ROOT / target.name).read_bytes()
    target.unlink()
    target.write_bytes(data[: len(data) // 2])
    dm = FashionMNISTDataModule(root=str(fmnist_copy))
    dm.prepare_data()  # the files exist
    with pytest.raises(DatasetCorruptError) as info:
        dm.setup("fit")
    assert str(target) in str(info.value) and "corrupt" in str(info.value)


def idx_gz(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    header = struct.pack(f">I{len(dims)}I", magic, *dims)
    path.write_bytes(gzip.compress(header + payload))


@pytest.mark.parametrize(
    ("magic", "dims", "payload", "expected"),
    [
        (0x00000801, (2, 28, 28), bytes(2 * 784), "magic 00000801"),  # labels magic on images
        (0x00000803, (2, 28, 28), bytes(784), "header (2, 28, 28)"),  # data shorter than header
    ],
)
def test_fmnist_bad_idx_file(fmnist_copy, magic, dims, payload, expected):
    target = fmnist_copy / "train-images-idx3-ubyte.gz"
    target.unlink()
    idx_gz(target, magic, dims, payload)
    with pytest.raises(DatasetCorruptError) as info:
        make_fmnist(root=str(fmnist_copy))
    assert str(target) in str(info.value) and expected in str(info.value)


def test_fmnist_not_gzip(fmnist_copy):
    target = fmnist_copy / "t10k-images-idx3-ubyte.gz"
    target.unlink()
    target.write_bytes(b"<html>not found</html>")
    with pytest.raises(DatasetCorruptError, match="t10k-images-idx3-ubyte.gz"):
        make_fmnist(root=str(fmnist_copy))


# --------------------------------------------------------------- CIFAR-10 from small files

N_PER_BATCH = 20


def write_cifar(root: Path, bytes_keys: bool = False, seed: int = 0) -> dict[str, np.ndarray]:
    """Write cifar-10-batches-py with 5 x 20 train and 20 test images; return what was written.

    The format of the real files: dicts with "batch_label", "labels" (list of int), "data"
    (uint8 N x 3072, each row R then G then B planes of 32 x 32, row-major), "filenames".
    The real files are Python 2 pickles whose keys load as str under encoding="latin1";
    Python 3 cannot write those, so str keys and bytes keys are both tested.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def key(k: str):
        return k.encode() if bytes_keys else k

    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(N_PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(N_PER_BATCH) % 10)]
        batch = {
            key("batch_label"): f"{name} of 5",
            key("labels"): labels,
            key("data"): data,
            key("filenames"): [f"img_{i}.png" for i in range(N_PER_BATCH)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        written[name] = (data, np.array(labels))
    meta = {key("num_cases_per_batch"): N_PER_BATCH, key("num_vis"): 3072}
    meta[key("label_names")] = list(CIFAR10DataModule.classes)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    train = [written[f"data_batch_{i}"] for i in range(1, 6)]
    return {
        "train_x": np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32),
        "train_y": np.concatenate([lab for _, lab in train]),
        "test_x": written["test_batch"][0].reshape(-1, 3, 32, 32),
        "test_y": written["test_batch"][1],
    }


def make_cifar(root: Path, **kwargs) -> CIFAR10DataModule:
    kwargs = {"val_size": 10, "download": False, "num_workers": 0, "batch_size": 8} | kwargs
    dm = CIFAR10DataModule(root=str(root), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_cifar_reads_files_exactly(tmp_path, bytes_keys):
    ref = write_cifar(tmp_path, bytes_keys=bytes_keys)
    dm = make_cifar(tmp_path, augment=False)
    assert (len(dm.data_train), len(dm.data_val), len(dm.data_test)) == (90, 10, 20)
    assert (dm.in_channels, dm.num_classes, dm.image_size) == (3, 10, 32)
    splits = (
        (dm.data_train, dm.train_indices, ref["train_x"], ref["train_y"]),
        (dm.data_val, dm.val_indices, ref["train_x"], ref["train_y"]),
        (dm.data_test, torch.arange(20), ref["test_x"], ref["test_y"]),
    )
    for ds, indices, images, labels in splits:
        for j, i in enumerate(indices.tolist()):
            x, y = ds[j]
            assert x.shape == (3, 32, 32) and x.dtype == torch.float32
            assert y == labels[i]
            assert torch.equal(denormalise(x, dm), torch.from_numpy(images[i]))
    # the normalisation is (x / 255 - mean) / std per channel, checked on one pixel
    x, _ = dm.data_test[0]
    for c in range(3):
        pixel = ref["test_x"][0, c, 5, 7] / 255
        assert math.isclose(x[c, 5, 7].item(), (pixel - dm.mean[c]) / dm.std[c], abs_tol=1e-5)
    assert set(dm.train_indices.tolist()) | set(dm.val_indices.tolist()) == set(range(100))
    assert not set(dm.train_indices.tolist()) & set(dm.val_indices.tolist())


def crops_and_flips(image: torch.Tensor) -> list[torch.Tensor]:
    """Every output of RandomCrop(32, padding=4) + horizontal flip on one uint8 image."""
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    out = []
    for top in range(9):
        for left in range(9):
            crop = padded[:, top : top + 32, left : left + 32]
            out += [crop, crop.flip(-1)]
    return out


def test_cifar_augmentation_train_only(tmp_path):
    ref = write_cifar(tmp_path)
    dm = make_cifar(tmp_path, augment=True)
    torch.manual_seed(0)
    changed = 0
    for j, i in enumerate(dm.train_indices.tolist()):
        x, y = dm.data_train[j]
        assert x.shape == (3, 32, 32) and y == ref["train_y"][i]
        original = torch.from_numpy(ref["train_x"][i])
        augmented = denormalise(x, dm)
        changed += not torch.equal(augmented, original)
        if j < 10:  # exactly one crop/flip of the original, zero-padded
            assert any(torch.equal(augmented, c) for c in crops_and_flips(original))
    assert changed >= 45  # 161 of 162 crop/flip choices change a random image
    # val and test: no augmentation, the same tensor every time
    for ds, indices, images in (
        (dm.data_val, dm.val_indices, ref["train_x"]),
        (dm.data_test, torch.arange(20), ref["test_x"]),
    ):
        for j, i in enumerate(indices.tolist()):
            first, second = ds[j][0], ds[j][0]
            assert torch.equal(first, second)
            assert torch.equal(denormalise(first, dm), torch.from_numpy(images[i]))


def test_cifar_split_seed_and_fraction(tmp_path):
    write_cifar(tmp_path)
    base = make_cifar(tmp_path, seed=3)
    assert torch.equal(make_cifar(tmp_path, seed=3).val_indices, base.val_indices)
    assert not torch.equal(make_cifar(tmp_path, seed=4).val_indices, base.val_indices)
    sub = make_cifar(tmp_path, seed=3, fraction=0.5)
    assert torch.equal(sub.val_indices, base.val_indices)
    assert torch.equal(sub.data_test.images, base.data_test.images)
    assert set(sub.train_indices.tolist()) <= set(base.train_indices.tolist())
    full = torch.bincount(base.data_train.labels, minlength=10).tolist()
    part = torch.bincount(sub.data_train.labels, minlength=10).tolist()
    assert all(abs(p - 0.5 * f) <= 1 for p, f in zip(part, full, strict=True))


def test_cifar_loaders_batch(tmp_path):
    write_cifar(tmp_path)
    dm = make_cifar(tmp_path, num_workers=2)  # the config's default: worker processes
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    xv, yv = next(iter(dm.val_dataloader()))
    assert torch.equal(yv, dm.data_val.labels[:8])
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 20


# ---------------------------------------------------------------------- CIFAR-10, errors


def test_cifar_missing_no_download(tmp_path):
    root = tmp_path / "cifar10"
    dm = CIFAR10DataModule(root=str(root), download=False)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert str(root / "cifar-10-batches-py" / "data_batch_1") in message
    assert "data.download=true" in message and "data.root=" in message
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        dm.setup("fit")


def test_cifar_download_failure(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    dm = CIFAR10DataModule(root=str(tmp_path / "cifar10"), download=True)
    with pytest.raises(DatasetNotFoundError) as info:
        dm.prepare_data()
    assert "download failed" in str(info.value) and "no network" in str(info.value)
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in str(info.value)


def test_cifar_present_files_need_no_download(tmp_path, monkeypatch):
    import torchvision.datasets

    write_cifar(tmp_path)

    def forbidden(*args, **kwargs):
        raise AssertionError("must not download when the batches are there")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", forbidden)
    make_cifar(tmp_path, download=True)


def test_cifar_truncated_batch(tmp_path):
    write_cifar(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    target.write_bytes(target.read_bytes()[:500])
    with pytest.raises(DatasetCorruptError) as info:
        make_cifar(tmp_path)
    assert str(target) in str(info.value)


def test_cifar_wrong_shape_batch(tmp_path):
    write_cifar(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "test_batch"
    with open(target, "wb") as f:
        pickle.dump({"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4}, f)
    with pytest.raises(DatasetCorruptError, match="test_batch.*expected uint8 N x 3072"):
        make_cifar(tmp_path)


def py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as the official files are: Python 2 cPickle, protocol 2, str (not
    unicode) keys and array bytes, numpy.core.multiarray._reconstruct (assembled by hand)."""

    def s(text: bytes) -> bytes:  # a Python 2 str
        return (
            b"U" + bytes([len(text)]) + text
            if len(text) < 256
            else (b"T" + struct.pack("<I", len(text)) + text)
        )

    def i(value: int) -> bytes:
        return b"K" + bytes([value]) if value < 256 else b"M" + struct.pack("<H", value)

    dtype = b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"
    dtype += b"(" + i(3) + s(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + i(0) + b"tb"
    array = b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85"
    array += s(b"b") + b"\x87R" + b"(" + i(1) + i(data.shape[0]) + i(data.shape[1]) + b"\x86"
    array += dtype + b"\x89" + s(data.tobytes()) + b"tb"
    items = s(b"batch_label") + s(b"training batch 1 of 5") + s(b"data") + array
    items += s(b"labels") + b"](" + b"".join(i(v) for v in labels) + b"e"
    return b"\x80\x02}(" + items + b"u."


def test_cifar_reads_a_python2_batch(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, size=(3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(py2_batch(data, [7, 0, 9]))
    images, labels = read_batch(str(path))
    assert torch.equal(images, torch.from_numpy(data).view(3, 3, 32, 32))
    assert labels.tolist() == [7, 0, 9] and labels.dtype == torch.int64


class Payload:
    """Pickles as a call of `func(*args)`: what a crafted batch file runs under pickle.load."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("kind", ["os.system", "open"])
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_cifar_crafted_batch_runs_nothing(tmp_path, kind, protocol):
    write_cifar(tmp_path)
    marker = tmp_path / "marker"
    payload = (
        Payload(os.system, f"touch {marker}")
        if kind == "os.system"
        else (Payload(open, str(marker), "w"))
    )
    blob = pickle.dumps({"data": payload, "labels": [0]}, protocol=protocol)
    target = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    target.write_bytes(blob)
    with pytest.raises(DatasetCorruptError, match="data_batch_2.*refused global") as info:
        make_cifar(tmp_path)
    assert str(target) in str(info.value)
    assert not marker.exists()
    if kind == "open":  # the payload is live: plain pickle would have run it
        pickle.loads(blob)
        assert marker.exists()


@pytest.mark.parametrize(
    "batch",
    [
        [np.zeros((2, 3072), np.uint8), [0, 1]],  # not a dict
        {"data": [[0] * 3072], "labels": [0]},  # data not an array
        {"data": np.zeros((2, 3072), np.uint8), "labels": ["1", "2"]},  # str labels
        {"data": np.zeros((2, 3072), np.uint8), "labels": np.array([0.0, 1.0])},  # floats
        {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]},  # out of 0..9
        {"data": np.zeros((2, 3072), np.uint8), "labels": [0]},  # one label short
        {"data": np.zeros((2, 3072), np.uint8)},  # no labels
    ],
)
def test_cifar_batch_structure_is_checked(tmp_path, batch):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DatasetCorruptError, match="test_batch"):
        read_batch(str(path))


def test_cifar_labels_may_be_an_int_array(tmp_path):
    path = tmp_path / "test_batch"
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": np.array([3, 4], np.int32)}
    path.write_bytes(pickle.dumps(batch, protocol=2))
    assert read_batch(str(path))[1].tolist() == [3, 4]


def test_cifar_stalled_download_times_out(tmp_path, monkeypatch):
    """A server that accepts and never answers: the download fails within the timeout."""
    import torchvision.datasets

    import dsnn.data.cifar10 as cifar10

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # the kernel completes the handshake; nothing ever answers
    port = server.getsockname()[1]
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", f"http://127.0.0.1:{port}/c.tgz")
    monkeypatch.setattr(cifar10, "DOWNLOAD_TIMEOUT_S", 1.0)
    dm = CIFAR10DataModule(root=str(tmp_path / "cifar10"), download=True)
    errors = []

    def prepare():
        try:
            dm.prepare_data()
        except DatasetNotFoundError as err:
            errors.append(err)

    start = time.monotonic()
    worker = threading.Thread(target=prepare, daemon=True)
    worker.start()
    worker.join(timeout=15)
    server.close()
    assert not worker.is_alive(), "the download hangs"
    assert time.monotonic() - start < 10
    assert len(errors) == 1 and "download failed" in str(errors[0])
    assert "timed out" in str(errors[0])
    assert socket.getdefaulttimeout() is None  # restored


# ------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("fraction", 0.0),
        ("fraction", 1.5),
        ("fraction", -0.1),
        ("fraction", float("nan")),
        ("val_fraction", 0.0),
        ("val_fraction", 1.5),
        ("val_fraction", float("nan")),
        ("val_size", -1),
        ("num_workers", -1),
    ],
)
@pytest.mark.parametrize("cls", [FashionMNISTDataModule, CIFAR10DataModule])
def test_bad_arguments(cls, name, value):
    with pytest.raises(ValueError, match=rf"{name}={value!r}.*must be"):
        cls(**{name: value})


@pytest.mark.parametrize(
    ("cls", "size"), [(FashionMNISTDataModule, 60000), (CIFAR10DataModule, 50000)]
)
def test_val_size_at_most_train_size(cls, size):
    with pytest.raises(ValueError, match=rf"val_size={size}.*\[0, {size}\)"):
        cls(val_size=size)
    cls(val_size=size - 1)  # allowed


def test_val_size_checked_against_files(tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(ValueError, match=r"val_size=100 .*\[0, 100\)"):
        make_cifar(tmp_path, val_size=100)


# ------------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    ("name", "cls"), [("fashion_mnist", FashionMNISTDataModule), ("cifar10", CIFAR10DataModule)]
)
def test_config_lists_every_argument_and_instantiates(tmp_path, name, cls):
    from hydra.utils import instantiate

    node = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    assert node._target_ == f"dsnn.data.{cls.__name__}"
    arguments = set(inspect.signature(cls.__init__).parameters) - {"self"}
    assert set(node.keys()) - {"_target_"} == arguments
    cfg = OmegaConf.create({"seed": 7, "paths": {"data_dir": str(tmp_path)}, "data": node})
    dm = instantiate(cfg.data)  # no file access, no download in __init__
    assert isinstance(dm, cls) and dm.seed == 7
    if cls is CIFAR10DataModule:
        assert dm.root == str(tmp_path / "cifar10")
        assert not any(tmp_path.iterdir())
    else:
        assert dm.root == str(FMNIST_ROOT)
    # every key is commented
    for line in (REPO / "conf" / "data" / f"{name}.yaml").read_text().splitlines():
        if line and not line.startswith(("#", "_target_")):
            assert "  # " in line, line


def test_decoded_files_are_cached_per_process_until_they_change(fmnist_copy):
    from dsnn.data import cache

    cache.clear()
    first = FashionMNISTDataModule(root=str(fmnist_copy), val_size=100)
    first.setup()
    again = FashionMNISTDataModule(root=str(fmnist_copy), val_size=100)
    again.setup()
    assert again.data_test.images is first.data_test.images  # decoded once
    assert torch.equal(again.data_train.images, first.data_train.images)
    fresh = FashionMNISTDataModule(root=str(fmnist_copy), val_size=100, cache=False)
    fresh.setup()
    assert fresh.data_test.images is not first.data_test.images
    assert torch.equal(fresh.data_test.images, first.data_test.images)
    # a changed file (here: the link replaced by a copy) is read again
    test_images = fmnist_copy / "t10k-images-idx3-ubyte.gz"
    test_images.unlink()
    test_images.write_bytes((FMNIST_ROOT / test_images.name).read_bytes())
    changed = FashionMNISTDataModule(root=str(fmnist_copy), val_size=100)
    changed.setup()
    assert changed.data_test.images is not first.data_test.images
    cache.clear()
