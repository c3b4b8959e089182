"""A process-level cache of decoded data sets: in-process sweep trials (Hydra's basic
launcher) decode the files once, not once per trial.

The key is the DataModule class, the split and a signature of the files under the data
root (path, size, modification time), so changed files are read again. Cached tensors are
shared between runs and never written to (datasets index or copy them). At most
`MAX_ENTRIES` splits are kept (the oldest is dropped).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable

import torch

MAX_ENTRIES = 4
_CACHE: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()


def cached_load(
    owner: str, root: str, train: bool, load: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`load()`'s (images, labels), from the cache when the same files were decoded before."""
    key = (owner, train, _signature(root))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = load()
    _CACHE[key] = value
    while len(_CACHE) > MAX_ENTRIES:
        _CACHE.popitem(last=False)
    return value


def clear() -> None:
    _CACHE.clear()


def _signature(root: str) -> tuple:
    files = []
    for folder, _, names in os.walk(os.path.realpath(root)):
        for name in names:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            files.append((path, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(files))
