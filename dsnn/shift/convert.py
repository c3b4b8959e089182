"""Turn a float network into a DSNN, and the model-wide helpers of DeepShift
(Elhoushi et al. 2021; Hennig et al., sections 2.1 and 3).

`shift_depth` d is the fidelity of the paper's multi-fidelity search: the last d weight
layers in `named_modules()` order (the classifier first, then backwards to the stem)
become shift layers; d = 0 is the float network, d = count converts all (20 for
ResNet20). Unlike DeepShift's `convert_to_shift`, the classifier counts as one of the d
layers (DeepShift converted every nn.Linear regardless of d and counted convolutions).

Weight layers are modules whose type is exactly nn.Conv2d or nn.Linear: subclasses (shift
layers, nn.MultiheadAttention's out_proj, ...) have their own forward and are skipped.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from dsnn.shift.config import ShiftConfig
from dsnn.shift.layers import ShiftConv2d, ShiftLayer, ShiftLinear

# float type -> its shift layer
SHIFT_LAYER_FOR = {nn.Conv2d: ShiftConv2d, nn.Linear: ShiftLinear}

Filter = Callable[[nn.Module, str], bool]


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Convertible layers in named_modules() order (shared modules once)."""
    return [(n, m) for n, m in model.named_modules() if type(m) in SHIFT_LAYER_FOR]


def count_weight_layers(model: nn.Module) -> int:
    """Number of float nn.Conv2d / nn.Linear layers: the largest valid shift_depth."""
    return len(_weight_layers(model))


def shift_layers(model: nn.Module) -> Iterator[ShiftLayer]:
    """The shift layers of `model`, in named_modules() order."""
    return (m for m in model.modules() if isinstance(m, ShiftLayer))


def named_shift_layers(model: nn.Module) -> dict[str, ShiftLayer]:
    """Fully qualified name -> shift layer, in named_modules() order (shared layers once)."""
    return {n: m for n, m in model.named_modules() if isinstance(m, ShiftLayer)}


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block `model` is in evaluation mode; after it every module's training
    flag is as before (so BatchNorm statistics and stochastic rounding are untouched)."""
    flags = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield model
    finally:
        for module, training in flags.items():
            module.training = training


class ShiftDepthError(ValueError):
    """shift_depth is not an integer in [0, the model's number of weight layers]."""


def last_layers_filter(model: nn.Module, shift_depth: int) -> Filter:
    """The policy: select the last `shift_depth` weight layers (by identity, so a module
    shared under two names is converted once and stays shared)."""
    layers = _weight_layers(model)
    if isinstance(shift_depth, bool) or not isinstance(shift_depth, int):
        raise ShiftDepthError(f"shift_depth must be an integer, got {shift_depth!r}")
    if not 0 <= shift_depth <= len(layers):
        raise ShiftDepthError(
            f"shift_depth must be in [0, {len(layers)}] (the model's weight layers), "
            f"got {shift_depth}"
        )
    chosen = {id(m) for _, m in layers[len(layers) - shift_depth :]}
    return lambda module, fqn: id(module) in chosen


def _replace_if(
    module: nn.Module, replace: Callable[[nn.Module], nn.Module], keep: Filter, prefix: str = ""
) -> nn.Module:
    """Swap every submodule `m` (at fully qualified name `fqn`) with keep(m, fqn) true."""
    if keep(module, prefix):
        return replace(module)
    # _modules, not named_children(): a child registered under two names is seen twice.
    for name, child in list(module._modules.items()):
        if child is None:  # register_module(name, None) placeholders
            continue
        new = _replace_if(child, replace, keep, f"{prefix}.{name}" if prefix else name)
        if new is not child:
            setattr(module, name, new)
    return module


def convert_to_shift(
    model: nn.Module, shift_depth: int, config: ShiftConfig, *, convert_weights: bool = True
) -> nn.Module:
    """Make the last `shift_depth` weight layers shift layers, in place; returns the model.

    convert_weights=True builds them with `from_float` (start from the float weights,
    e.g. a pre-trained network); False gives freshly initialised shift layers, like
    DeepShift's training from scratch.
    """
    keep = last_layers_filter(model, shift_depth)
    converted: dict[int, nn.Module] = {}  # id(float layer) -> its shift layer

    def replace(layer: nn.Module) -> nn.Module:
        if id(layer) not in converted:
            cls = SHIFT_LAYER_FOR[type(layer)]
            if convert_weights:
                new = cls.from_float(layer, config)
            else:
                factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
                new = cls(**cls._float_kwargs(layer), config=config, **factory)
                new.train(layer.training)
            converted[id(layer)] = new
        return converted[id(layer)]

    return _replace_if(model, replace, keep)


def project_shift_parameters(model: nn.Module) -> None:
    """`project_()` every shift layer; call after each optimizer step."""
    for layer in shift_layers(model):
        layer.project_()


def export_quantized(model: nn.Module) -> nn.Module:
    """`export_()` every shift layer (in place): parameters become their quantized values."""
    for layer in shift_layers(model):
        layer.export_()
    return model


def shift_penalty(model: nn.Module) -> Tensor:
    """0.5 * sum over PS layers of sum((2^P)^2): DeepShift's weight decay of the shifts.

    The caller multiplies by the coefficient `shift_penalty` (conf/config.yaml; it follows
    the optimizer's weight decay unless set) and adds it to the loss; P gets no plain weight
    decay. As DeepShift's training script (`shift_l2_norm`) it uses the raw, unrounded P,
    i.e. the L2 norm of |W| = 2^P; there it was found as `optimizer.param_groups[2]`,
    here by layer type. A float scalar 0 when there are no PS layers.
    """
    shifts = [m.shift for m in shift_layers(model) if m.config.shift_type == "PS"]
    if not shifts:
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        return torch.zeros((), device=device)
    return 0.5 * sum(torch.exp2(2.0 * p).sum() for p in shifts)
