"""Integer-only reference forward of the shift layers (DeepShift inference without a
multiplication; Elhoushi et al. 2021, Hennig et al. section 2.1), and its check against
the fake-quant forward of dsnn/shift/layers.py.

A shift layer with I integer and F fraction bits and weights s * 2^p (s in {-1, 0, +1},
p in [min_shift, 0], m = -min_shift) computes, on integers only:

    X = clamp(floor(x * 2^F), -2^(I+F-1), 2^(I+F-1) - 1)   input in units of 2^-F
    B = the same for the bias
    accumulator with A = F + e fraction bits, e = min(m, headroom of a 64-bit int):
        G_p = sum of s * X over the weights with shift p      integer adds (and negations)
        Y   = sum over p of (G_p << (p + e))  + (B << e)       arithmetic shifts, integer adds
    (a group with p + e < 0 is shifted right instead, rounding down)
    y = Y * 2^-A

With e = m (the accumulator holds all fraction bits) every shift is a left shift and Y is
the exact sum that the fake-quant forward approximates in floating point: it equals the
fake-quant forward evaluated in float64 bit for bit (while that is exact, i.e. Y has at
most 53 significant bits). The float32 fake-quant forward (what training runs) differs
from it by the float32 rounding of its sums: within one LSB (2^-F) for narrow formats
(4/4, 8/8), a few LSB at 16/16 (float32 keeps 24 significant bits, fewer than the
accumulator's), which `verify_integer_forward` reports. With e < m
(large weight_bits and wide activations) the groups with the smallest shifts are
truncated, each by less than 2^-A; `IntegerOutput.exact` says which case a layer was in.
At saturation with I + F > 25 the fake-quant clamp (float32) may sit one LSB off the
integer bound.

Summing the inputs that share a shift before shifting them is the same as shifting each
product (left shifts distribute over sums), and needs one shift per group instead of one
per weight. The group sums run as integer convolutions whose kernels are 0/±1 masks: a mask
only selects which inputs are added or subtracted, no product of two variables is formed.
CPU only (CUDA has no integer convolution).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsnn.shift.convert import eval_mode, export_quantized, named_shift_layers, shift_layers
from dsnn.shift.layers import ShiftConv2d, ShiftLayer, ShiftLinear


@dataclass
class IntegerOutput:
    value: Tensor  # int64, the accumulator Y
    fraction_bits: int  # A: y = Y * 2^-A
    exact: bool  # all products kept (e = m)

    def to_float(self, dtype=torch.float32) -> Tensor:
        return self.value.to(torch.float64).mul_(2.0**-self.fraction_bits).to(dtype)


def to_fixed_integer(x: Tensor, integer_bits: int, fraction_bits: int) -> Tensor:
    """floor(x * 2^F) clamped to the I + F bit two's-complement range, as int64."""
    total = integer_bits + fraction_bits
    # float64 holds x * 2^F and its floor exactly; clamp there to +-2^62 first so the
    # cast cannot overflow, then to the format's own bounds (exact Python ints)
    scaled = torch.floor(x.to(torch.float64) * 2.0**fraction_bits)
    limit = 2.0 ** min(total - 1, 62)
    steps = scaled.clamp_(-limit, limit).to(torch.int64)
    return steps.clamp_(-(2 ** (total - 1)), 2 ** (total - 1) - 1)


@torch.no_grad()
def _shift_and_sign(layer: ShiftLayer) -> tuple[Tensor, Tensor]:
    """(p, s) as int64, from the weight evaluation uses (rounding to nearest)."""
    weight = layer.exact_weight().cpu().to(torch.float64)
    sign = torch.sign(weight).to(torch.int64)
    shift = torch.log2(weight.abs().clamp_min(2.0**layer.config.min_shift)).round()
    return shift.to(torch.int64), sign


def _signed_sum(layer: ShiftLayer, inputs: Tensor, mask: Tensor) -> Tensor:
    """Sum of inputs selected by a 0/±1 mask over each receptive field (int64)."""
    if isinstance(layer, ShiftConv2d):
        if layer.padding_mode != "zeros":
            raise NotImplementedError(f"padding_mode={layer.padding_mode!r}")
        return F.conv2d(
            inputs, mask, None, layer.stride, layer.padding, layer.dilation, layer.groups
        )
    if isinstance(layer, ShiftLinear):
        return F.linear(inputs, mask)
    raise TypeError(f"not a shift layer: {type(layer).__name__}")


@torch.no_grad()
def integer_layer_forward(layer: ShiftLayer, x: Tensor) -> IntegerOutput:
    """The integer-only forward of one shift layer (see the module docstring)."""
    cfg = layer.config
    bits_i, bits_f, m = cfg.activation_integer_bits, cfg.activation_fraction_bits, -cfg.min_shift
    inputs = to_fixed_integer(x.detach().cpu(), bits_i, bits_f)
    shift, sign = _shift_and_sign(layer)
    bias = None
    if layer.bias is not None:
        bias = to_fixed_integer(layer.bias.detach().cpu(), bits_i, bits_f)
    # headroom: |Y| <= (max|X| * fan_in + max|B|) * 2^e must stay below 2^62
    fan_in = shift[0].numel()
    largest = int(inputs.abs().max()) if inputs.numel() else 0
    bound = largest * fan_in + (int(bias.abs().max()) if bias is not None else 0)
    e = min(m, 62 - bound.bit_length())
    if e < 0:
        raise OverflowError(f"activations up to {largest} * 2^-{bits_f} overflow 64 bits")
    # group sums fit int32 when max|X| * fan_in does: int32 convolutions are ~7x faster
    work = inputs.to(torch.int32) if largest * fan_in < 2**31 else inputs
    total = None
    for p in torch.unique(shift[sign != 0]).tolist():
        mask = torch.where(shift == p, sign, 0).to(work.dtype)
        group = _signed_sum(layer, work, mask).to(torch.int64)  # sum of ±X with shift p
        k = p + e  # into the accumulator's units 2^-(F + e)
        group = group << k if k >= 0 else group >> -k
        total = group if total is None else total.add_(group)
    if total is None:  # every weight is 0
        total = _signed_sum(layer, inputs, torch.zeros_like(sign))
    if bias is not None:
        view = (-1, 1, 1) if isinstance(layer, ShiftConv2d) else (-1,)
        total = total.add_((bias << e).view(view))
    return IntegerOutput(total, bits_f + e, exact=e == m)


@contextmanager
def integer_shift_layers(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every shift layer of `model` runs `integer_layer_forward` (its
    output converted back to the input's dtype and device); other layers run as before."""
    layers = list(shift_layers(model))

    def run(layer: ShiftLayer, x: Tensor) -> Tensor:
        return integer_layer_forward(layer, x).to_float(x.dtype).to(x.device)

    for layer in layers:
        layer.forward = run.__get__(layer)  # instance attribute shadows the class method
    try:
        yield model
    finally:
        for layer in layers:
            del layer.forward


@torch.no_grad()
def compare_layers(model: nn.Module, x: Tensor) -> dict[str, dict[str, float]]:
    """Per shift layer, on the inputs it receives in a fake-quant forward of `x` (eval
    mode): the largest |integer - fake quant| output difference in LSBs (2^-F), against
    the float32 and the float64 fake-quant forward, and whether the accumulator was exact."""
    captured: dict[str, tuple[ShiftLayer, Tensor, Tensor]] = {}

    def keep(name: str):
        def hook(module, args, output) -> None:  # None: the output is left as it is
            captured.setdefault(name, (module, args[0], output))

        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in named_shift_layers(model).items()]
    try:
        with eval_mode(model):
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    report = {}
    for name, (layer, inputs, output) in captured.items():
        result = integer_layer_forward(layer, inputs)
        exact = result.value.to(torch.float64) * 2.0**-result.fraction_bits
        lsb = 2.0**-layer.config.activation_fraction_bits
        fake64 = _float64_forward(layer, inputs)
        report[name] = {
            "lsb_diff_float32": float((exact - output.cpu().double()).abs().max()) / lsb,
            "lsb_diff_float64": float((exact - fake64).abs().max()) / lsb,
            "exact_accumulator": float(result.exact),
        }
    return report


def _float64_forward(layer: ShiftLayer, x: Tensor) -> Tensor:
    """The fake-quant forward of `layer` in float64 on the CPU (the layer is unchanged)."""
    # rounded in the layer's own dtype first, so float64 sees the very same weights
    twin = copy.deepcopy(layer).cpu().export_().double().eval()
    return twin(x.detach().cpu().double())


@torch.no_grad()
def verify_integer_forward(model: nn.Module, x: Tensor) -> dict[str, float]:
    """The integer forward against the fake-quant forward on a batch `x` (CPU).

    Per layer (on the inputs of a fake-quant pass): the largest output difference in LSBs
    against the float64 and the float32 fake-quant forward. End to end: the network with
    integer shift layers (other layers in float64) against the float64 fake-quant network
    (logits bit for bit) and against the float32 network as trained (predictions).
    """
    model = copy.deepcopy(model).cpu().eval()
    x = x.cpu()
    layers = compare_layers(model, x)
    fake32 = model(x)
    # parameters rounded in float32 first: float64 then computes with the very same weights
    twin = export_quantized(copy.deepcopy(model)).double()
    fake64 = twin(x.double())
    with integer_shift_layers(twin):
        integer = twin(x.double())
    worst = {
        k: max((r[k] for r in layers.values()), default=0.0)
        for k in ("lsb_diff_float64", "lsb_diff_float32")
    }
    return {
        "integer/images": float(len(x)),
        "integer/layers": float(len(layers)),
        "integer/exact_accumulator_layers": float(
            sum(r["exact_accumulator"] for r in layers.values())
        ),
        "integer/max_lsb_diff_float64": worst["lsb_diff_float64"],
        "integer/max_lsb_diff_float32": worst["lsb_diff_float32"],
        "integer/identical_logits_float64": float(torch.equal(integer, fake64)),
        "integer/prediction_agreement_float64": float(
            (integer.argmax(1) == fake64.argmax(1)).double().mean()
        ),
        "integer/prediction_agreement_float32": float(
            (integer.argmax(1) == fake32.argmax(1)).double().mean()
        ),
    }
