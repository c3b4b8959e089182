"""Optimizers that need a fix to follow torch's `Optimizer.step(closure)` contract."""

import torch
from torch_optimizer import Ranger as _Ranger


class Ranger(_Ranger):
    """Ranger (RAdam + Lookahead) from torch-optimizer, calling the closure it is given.

    Its `step` ignores `closure` (the call is commented out upstream), but Lightning runs
    forward and backward inside that closure: without this, training stops at the first
    step ("The closure hasn't been executed").
    """

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        super().step()
        return loss
