"""DeepShift layers (Elhoushi et al. 2021; Hennig et al., section 2.1).

`ShiftConv2d` / `ShiftLinear` subclass the float layers and keep their arguments, buffers
and functional call; forward only quantizes what goes in:

    y = conv2d / linear(round_to_fixed(x), W_shift, round_to_fixed(b))

    DeepShift-Q:  parameter `weight` (float W);      W_shift = flip(2^round(log2|W|), sign W)
    DeepShift-PS: parameters `shift` (P), `sign` (S); W_shift = flip(2^round(P), sign(round(S)))

A PS layer has no `weight` Parameter (the parent's is deleted). The training loop calls
`project_()` after each optimizer step (it replaces DeepShift's `.data` clamps inside
forward); `export_()` rounds the parameters to the values forward uses, so a saved model
evaluates bit for bit like the fake-quantized one.
"""

import math
from typing import Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dsnn.shift.config import ShiftConfig
from dsnn.shift.functions import round_power_of_two, round_to_fixed, weight_from_shift_sign


def converted_shift_sign(weight: Tensor, min_shift: int) -> tuple[Tensor, Tensor]:
    """The PS parameters that compute exactly like `weight` rounded to a signed power of
    two: P = round(log2|W|) clamped to [min_shift, 0], S = sign(W). log2(0) = -inf is
    clamped to min_shift and its sign is 0: no inf, no NaN."""
    return weight.abs().log2_().round_().clamp_(min_shift, 0.0), torch.sign(weight)


class ShiftLayer:
    """Mixin before nn.Conv2d / nn.Linear in the bases; `isinstance(m, ShiftLayer)` finds both."""

    config: ShiftConfig

    def _setup_shift(self, config: ShiftConfig) -> None:
        """After the parent's __init__: store the config; PS swaps `weight` for `shift`, `sign`."""
        if not isinstance(config, ShiftConfig):
            raise TypeError(f"config must be a ShiftConfig, got {type(config).__name__}")
        self.config = config
        if config.shift_type == "PS":
            weight = self.weight
            del self.weight
            # torch.empty, not empty_like: on "meta" the latter imports torch._refs (~1 s).
            factory = {"device": weight.device, "dtype": weight.dtype}
            self.shift = nn.Parameter(torch.empty(weight.shape, **factory))  # P, shape of W
            self.sign = nn.Parameter(torch.empty(weight.shape, **factory))  # S
            self._init_ps(weight.detach())  # from the parent's draw; its bias is kept

    def reset_parameters(self) -> None:
        """The start of a layer trained from scratch. Q: the float layer's (Kaiming-uniform
        weight, uniform bias); PS: `_init_ps` of a Kaiming-uniform draw, the float bias."""
        if "shift" not in self._parameters:  # Q, or PS inside the parent's __init__
            super().reset_parameters()
            return
        weight = torch.empty_like(self.shift)
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))  # as nn.Conv2d / nn.Linear
        self._init_ps(weight)
        if self.bias is not None:  # as the parent: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            fan_in = self.shift[0].numel()
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    @torch.no_grad()
    def _init_ps(self, weight: Tensor) -> None:
        """P and S of a fresh PS layer, by `config.ps_init`; `weight` is a float layer's
        Kaiming-uniform draw (a constructed layer uses its parent's, so `float` and
        `convert` start from exactly the float layer the same seed gives):

          deepshift  DeepShift's own: P ~ U(-10, -1) for convolutions and U(min_shift, 0)
                     for linear layers (its Conv2dShift / LinearShift), S ~ U(-1, 1): about
                     half of the weights start at 0 (|S| < 0.5); `weight` is not used;
          float      `weight` in the log domain: P = log2|W|, not rounded (P lies anywhere
                     between two integers, so a small step can change the rounded shift),
                     S = sign(W) * U(0.5, 1) (no zeros at the start, and inside (-1, 1), so
                     S can move to 0 or flip); the weight forward uses is W rounded to a
                     signed power of two, i.e. the float layer's distribution;
          convert    `from_float` of `weight`: P = round(log2|W|), S = sign(W) (every P and
                     S on a rounding centre, 0.5 from any change: the converted start).

        P is clamped to [min_shift, 0] in every case.
        """
        cfg = self.config
        if cfg.ps_init == "deepshift":
            low, high = (-10.0, -1.0) if isinstance(self, nn.Conv2d) else (cfg.min_shift, 0.0)
            self.shift.uniform_(low, high).clamp_(cfg.min_shift, 0.0)
            self.sign.uniform_(-1.0, 1.0)
            return
        if cfg.ps_init == "convert":
            shift, sign = converted_shift_sign(weight, cfg.min_shift)
        else:  # log2(0) = -inf is clamped to min_shift
            shift = weight.abs().log2_().clamp_(cfg.min_shift, 0.0)
            sign = torch.sign(weight) * torch.empty_like(weight).uniform_(0.5, 1.0)
        self.shift.copy_(shift)
        self.sign.copy_(sign)

    @classmethod
    def from_float(cls, layer: nn.Module, config: ShiftConfig) -> Self:
        """A shift layer computing like `layer`: Q copies W; PS sets P = round(log2|W|)
        clamped to [min_shift, 0] and S = sign(W) (S = 0 for W = 0). Bias is copied."""
        weight = layer.weight.detach()
        # Built on "meta", then every parameter replaced: no wasted init, no draw from the
        # global RNG (so conversion leaves later random streams alone).
        new = cls(**cls._float_kwargs(layer), config=config, device="meta", dtype=weight.dtype)
        if config.shift_type == "Q":
            new.weight = nn.Parameter(weight.clone())
        else:
            shift, sign = converted_shift_sign(weight, config.min_shift)
            new.shift, new.sign = nn.Parameter(shift), nn.Parameter(sign)
        if layer.bias is not None:
            new.bias = nn.Parameter(layer.bias.detach().clone())
        new.train(layer.training)
        return new

    def quantized_weight(self) -> Tensor:
        """The weight forward uses: ±2^p (or 0 for PS) with p in [min_shift, 0].

        With stochastic rounding in training mode every call draws a new rounding. In
        evaluation mode without autograd (validation, testing) it is computed once and
        reused while the parameters stay the same (see `_frozen_weight`).
        """
        # Under torch.compile the quantizer is fused anyway; the cache would break graphs.
        if not (self.training or torch.is_grad_enabled() or torch.compiler.is_compiling()):
            return self._frozen_weight()
        return self._quantize(stochastic=self.training and self.config.rounding == "stochastic")

    @torch.no_grad()
    def exact_weight(self) -> Tensor:
        """The weight evaluation uses (rounding to nearest), whatever the training flag;
        detached, for export and the integer forward."""
        return self._quantize(stochastic=False).detach()

    def _quantize(self, stochastic: bool) -> Tensor:
        cfg = self.config
        if cfg.shift_type == "Q":
            return round_power_of_two(self.weight, cfg.min_shift, stochastic)
        return weight_from_shift_sign(self.shift, self.sign, cfg.min_shift, stochastic)

    def _frozen_weight(self) -> Tensor:
        """The quantized weight, cached for forwards that cannot change it.

        On a GPU the quantizer's small kernels cost more than the layer's own (see
        benchmarks/). The cache key holds each parameter's version counter, which every
        in-place update bumps (optimizer steps, load_state_dict, project_, export_), and
        its storage, dtype and device (.to(), copies). Updates through `.data` bump no
        counter; switching between `train()` and `eval()` drops the cache, so a training
        loop that writes `.data` (as some optimizers do) still evaluates fresh weights.
        """
        params = (self.weight,) if self.config.shift_type == "Q" else (self.shift, self.sign)
        key = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in params)
        cached = self.__dict__.get("_weight_cache")  # a plain attribute: not in state_dict
        if cached is None or cached[0] != key:
            cached = self.__dict__["_weight_cache"] = (key, self._quantize(stochastic=False))
        return cached[1]

    def train(self, mode: bool = True) -> Self:
        if mode != self.training:  # a switch between training and evaluation
            self.__dict__.pop("_weight_cache", None)
        return super().train(mode)

    def _to_fixed(self, x: Tensor) -> Tensor:
        cfg = self.config
        return round_to_fixed(x, cfg.activation_integer_bits, cfg.activation_fraction_bits)

    def _fixed_bias(self) -> Tensor | None:
        return None if self.bias is None else self._to_fixed(self.bias)

    @torch.no_grad()
    def project_(self) -> Self:
        """Clamp the trained parameters into their domain (after each optimizer step).

        Q: |W| into [2^min_shift, 1], sign kept, exact zeros stay 0. PS: P into
        [min_shift, 0], S into [-1, 1].
        """
        cfg = self.config
        if cfg.shift_type == "Q":
            sign = torch.sign(self.weight)
            self.weight.copy_(self.weight.abs().clamp_(2.0**cfg.min_shift, 1.0).mul_(sign))
        else:
            self.shift.clamp_(cfg.min_shift, 0.0)
            self.sign.clamp_(-1.0, 1.0)
        return self

    @torch.no_grad()
    def export_(self) -> Self:
        """Round the parameters to exactly what forward uses (rounding to nearest).

        Q: W := W_q. PS: P := round(clamp(P, min_shift, 0)), S := sign(round(S)).
        Bias := round_to_fixed(bias). Forward of the result equals forward before, in
        evaluation mode, bit for bit.
        """
        cfg = self.config
        if cfg.shift_type == "Q":
            self.weight.copy_(round_power_of_two(self.weight, cfg.min_shift))
        else:
            self.shift.copy_(self.shift.clamp(cfg.min_shift, 0.0).round_())
            self.sign.copy_(self.sign.round().sign_())
        if self.bias is not None:
            self.bias.copy_(self._to_fixed(self.bias))
        return self

    def extra_repr(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.config.as_dict().items())
        return f"{super().extra_repr()}, {settings}"


class ShiftConv2d(ShiftLayer, nn.Conv2d):
    """nn.Conv2d with power-of-two weights and fixed-point input and bias."""

    def __init__(self, *args, config: ShiftConfig, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._setup_shift(config)

    @staticmethod
    def _float_kwargs(layer: nn.Conv2d) -> dict:
        return {
            "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
            "kernel_size": layer.kernel_size,
            "stride": layer.stride,
            "padding": layer.padding,
            "dilation": layer.dilation,
            "groups": layer.groups,
            "bias": layer.bias is not None,
            "padding_mode": layer.padding_mode,
        }

    def forward(self, input: Tensor) -> Tensor:
        # _conv_forward handles padding_mode; (N, C_in, H, W) -> (N, C_out, H', W')
        return self._conv_forward(
            self._to_fixed(input), self.quantized_weight(), self._fixed_bias()
        )


class ShiftLinear(ShiftLayer, nn.Linear):
    """nn.Linear with power-of-two weights and fixed-point input and bias."""

    def __init__(self, *args, config: ShiftConfig, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._setup_shift(config)

    @staticmethod
    def _float_kwargs(layer: nn.Linear) -> dict:
        return {
            "in_features": layer.in_features,
            "out_features": layer.out_features,
            "bias": layer.bias is not None,
        }

    def forward(self, input: Tensor) -> Tensor:
        # (..., in_features) -> (..., out_features)
        return F.linear(self._to_fixed(input), self.quantized_weight(), self._fixed_bias())
