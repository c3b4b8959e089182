"""Straight-through quantizers of DeepShift (Elhoushi et al. 2021; Hennig et al., section 2.1).

Three tiny autograd Functions; forward quantizes, backward is the straight-through
estimator (STE) the paper uses:

* `round_to_fixed`      activations/bias, fixed point Q(I, F):
                        x_q = clamp(floor(x * 2^F) * 2^-F, -2^(I-1), 2^(I-1) - 2^-F)
                        dL/dx = dL/dx_q
* `round_power_of_two`  DeepShift-Q:   W_q = sign(W) * 2^R(log2 |W|),
                        |W| clamped to [2^min_shift, 1] first, W = 0 stays 0
                        dL/dW = dL/dW_q
* `weight_from_shift_sign`  DeepShift-PS:  W_ps = sign(round(S)) * 2^R(P),
                        P clamped to [min_shift, 0]
                        dL/dP = dL/dW_ps * W_ps * ln 2,   dL/dS = dL/dW_ps

R is round-to-nearest (ties to even, `torch.round`), or, with `stochastic=True`,
floor(x + u), u ~ U[0, 1): rounds up with probability frac(x), so E[R(x)] = x. The layers
pass `stochastic=True` only in training mode. Nothing here takes log2(0) (the Q clamp
keeps |W| >= 2^min_shift), so zero weights never give NaN, whatever the rounding.

Cost: the activation quantizer is four passes over a fresh tensor (in place after the
first) and saves nothing for backward; the weight quantizers touch only the (small)
weights. Fixed-point bounds are exact while I + F <= 25 (float32 has a 24-bit
significand); beyond that they are the nearest float32.
"""

import math

import torch
from torch import Tensor

LN2 = math.log(2.0)


def _round_integer(x: Tensor, stochastic: bool) -> Tensor:
    """Round `x` in place to integers: nearest (ties to even) or unbiased stochastic."""
    if stochastic:
        return x.add_(torch.rand_like(x)).floor_()
    return x.round_()


class _RoundToFixed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, integer_bits: int, fraction_bits: int) -> Tensor:
        scale = 2.0**fraction_bits
        # In units of the step 2^-F, the bounds are the integers -2^(I+F-1), 2^(I+F-1) - 1;
        # floor and clamp commute because the bounds are on the grid.
        bound = 2.0 ** (integer_bits + fraction_bits - 1)
        steps = torch.mul(x, scale).floor_().clamp_(-bound, bound - 1.0)
        return steps.mul_(1.0 / scale)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return grad_output, None, None


class _RoundPowerOfTwo(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, min_shift: int, stochastic: bool) -> Tensor:
        shift = weight.abs().clamp_(2.0**min_shift, 1.0).log2_()  # in [min_shift, 0]
        # floor(p + u) and round(p) stay inside [min_shift, 0] for p inside it.
        magnitude = _round_integer(shift, stochastic).exp2_()
        return magnitude.mul_(torch.sign(weight))  # sign(0) = 0 keeps zeros at zero

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return grad_output, None, None


class _WeightFromShiftSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, shift: Tensor, sign: Tensor, min_shift: int, stochastic: bool) -> Tensor:
        magnitude = _round_integer(shift.clamp(min_shift, 0.0), stochastic).exp2_()
        # sign(round(clamp(S, -1, 1))) == sign(round(S)) for every S, so the clamp of S to
        # [-1, 1] needs no pass of its own here; `project_` clamps the parameter itself.
        weight = magnitude.mul_(torch.round(sign).sign_())
        ctx.save_for_backward(weight)
        return weight

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (weight,) = ctx.saved_tensors
        grad_shift = grad_sign = None
        if ctx.needs_input_grad[0]:
            # d(s * 2^p)/dp = s * 2^p * ln 2, through the straight-through rounding of p.
            grad_shift = torch.mul(grad_output, weight).mul_(LN2)
        if ctx.needs_input_grad[1]:
            grad_sign = grad_output
        return grad_shift, grad_sign, None, None


def round_to_fixed(x: Tensor, integer_bits: int, fraction_bits: int) -> Tensor:
    """Fixed point with `integer_bits` (sign included) and `fraction_bits`; STE gradient."""
    return _RoundToFixed.apply(x, integer_bits, fraction_bits)


def round_power_of_two(weight: Tensor, min_shift: int, stochastic: bool = False) -> Tensor:
    """DeepShift-Q weight: sign(W) * 2^R(log2 |W|) with R(.) in [min_shift, 0]; STE gradient."""
    return _RoundPowerOfTwo.apply(weight, min_shift, stochastic)


def weight_from_shift_sign(
    shift: Tensor, sign: Tensor, min_shift: int, stochastic: bool = False
) -> Tensor:
    """DeepShift-PS weight: sign(round(S)) * 2^R(clamp(P, min_shift, 0))."""
    return _WeightFromShiftSign.apply(shift, sign, min_shift, stochastic)
