"""Analytic energy per inference from operation counts (a deterministic proxy, next to the
CodeCarbon measurements of dsnn/energy/measured.py).

Operation energies: M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, p. 10-14, 45 nm process at 0.9 V:

    integer add     8 bit 0.03 pJ     32 bit 0.1 pJ
    integer mult    8 bit 0.2 pJ      32 bit 3.1 pJ
    float add      16 bit 0.4 pJ      32 bit 0.9 pJ
    float mult     16 bit 1.1 pJ      32 bit 3.7 pJ
    64-bit read    8 KB SRAM 10 pJ, 32 KB SRAM 20 pJ, 1 MB SRAM 100 pJ, DRAM 1.3-2.6 nJ

Counting rules, per image (one forward pass on a 1-image sample input, via forward hooks):

* float nn.Conv2d / nn.Linear: one float32 MAC (mult + add) per weight use,
  out_positions * weight.numel(); plus one float32 add per output for a bias.
* shift layer (Q or PS, dsnn.shift): per non-zero weight use one shift and one integer
  add, both at the activation width I + F bits; plus one add per output for a bias. A PS
  weight of 0 costs nothing (it is skipped).
* BatchNorm (folded to y = a * x + c at inference): one float32 MAC per element.
* memory: every stored parameter is read once per image, at its stored width: float32
  weights and BN (a, c) 32 bits, shift weights `weight_bits`, shift biases I + F bits.

Horowitz has no shift. A barrel shifter of b bits is log2(b) rows of b multiplexers, of the
order of a b-bit adder, so a shift costs an integer add of the same width here. Integer
adds at other widths than 8 and 32 bits are interpolated linearly in the width (adder
energy grows about linearly with it) and extrapolated the same way. Activations, ReLU,
pooling and residual adds are not counted (they are the same in float and shift networks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from dsnn.objectives import MODEL_ENERGY_UJ
from dsnn.shift import ShiftLayer, eval_mode

# Horowitz (ISSCC 2014), 45 nm, pJ per operation
FP32_MULT_PJ = 3.7
FP32_ADD_PJ = 0.9
INT_ADD_PJ = {8: 0.03, 32: 0.1}
# pJ per 64-bit read, by where the weights live
MEMORY_PJ_PER_64_BITS = {"sram_8kb": 10.0, "sram_32kb": 20.0, "sram_1mb": 100.0, "dram": 2600.0}
DEFAULT_MEMORY = "sram_1mb"  # ResNet20's 270k float32 parameters are about 1 MB


def int_add_pj(bits: int) -> float:
    """Energy of a `bits`-wide integer add: the line through Horowitz's 8- and 32-bit adds."""
    (b0, e0), (b1, e1) = sorted(INT_ADD_PJ.items())
    return e0 + (bits - b0) * (e1 - e0) / (b1 - b0)


def shift_pj(bits: int) -> float:
    """Energy of a `bits`-wide arithmetic shift: taken as an add of the same width."""
    return int_add_pj(bits)


@dataclass
class OpCounts:
    """Operations and parameter bits read for one image."""

    float_macs: int = 0  # float32 multiply-accumulates (mult + add)
    float_adds: int = 0  # float32 adds (biases of float layers)
    shifts: dict[int, int] = field(default_factory=dict)  # bit width -> count
    int_adds: dict[int, int] = field(default_factory=dict)  # bit width -> count
    bits_read: int = 0  # parameter bits read from memory

    def add_int(self, table: dict[int, int], bits: int, count: int) -> None:
        table[bits] = table.get(bits, 0) + count

    def __iadd__(self, other: OpCounts) -> OpCounts:
        self.float_macs += other.float_macs
        self.float_adds += other.float_adds
        self.bits_read += other.bits_read
        for mine, theirs in ((self.shifts, other.shifts), (self.int_adds, other.int_adds)):
            for bits, n in theirs.items():
                self.add_int(mine, bits, n)
        return self


@dataclass
class EnergyEstimate:
    """Per-image energy in pJ, by kind of operation, with the counts behind it."""

    float_pj: float
    shift_pj: float
    int_add_pj: float
    memory_pj: float
    counts: OpCounts
    layers: dict[str, OpCounts]  # module name -> its counts

    @property
    def total_pj(self) -> float:
        return self.float_pj + self.shift_pj + self.int_add_pj + self.memory_pj

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6

    def as_dict(self) -> dict[str, float]:
        c = self.counts
        return {
            MODEL_ENERGY_UJ: self.total_uj,  # the objective; its breakdown follows
            "energy_model/float_uj": self.float_pj * 1e-6,
            "energy_model/shift_uj": self.shift_pj * 1e-6,
            "energy_model/int_add_uj": self.int_add_pj * 1e-6,
            "energy_model/memory_uj": self.memory_pj * 1e-6,
            "energy_model/float_macs": float(c.float_macs),
            "energy_model/shifts": float(sum(c.shifts.values())),
            "energy_model/int_adds": float(sum(c.int_adds.values())),
            "energy_model/weight_bits_read": float(c.bits_read),
        }


def layer_counts(module: nn.Module, output: torch.Tensor) -> OpCounts | None:
    """Counts of one module for one image, from its output (batch of 1); None: not counted."""
    counts = OpCounts()
    if isinstance(module, ShiftLayer):
        cfg = module.config
        act_bits = cfg.activation_integer_bits + cfg.activation_fraction_bits
        with torch.no_grad():
            weight = module.quantized_weight()  # (C_out, ...) or (out, in)
        positions = output[0].numel() // weight.shape[0]  # H' * W' (conv) or 1 (linear)
        uses = positions * int(torch.count_nonzero(weight))
        counts.add_int(counts.shifts, act_bits, uses)
        bias_adds = output[0].numel() if module.bias is not None else 0
        counts.add_int(counts.int_adds, act_bits, uses + bias_adds)
        counts.bits_read = weight.numel() * cfg.weight_bits
        if module.bias is not None:
            counts.bits_read += module.bias.numel() * act_bits
    elif type(module) in (nn.Conv2d, nn.Linear):
        positions = output[0].numel() // module.weight.shape[0]
        counts.float_macs = positions * module.weight.numel()
        counts.float_adds = output[0].numel() if module.bias is not None else 0
        counts.bits_read = 32 * (module.weight.numel() + _numel(module.bias))
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        counts.float_macs = output[0].numel()
        counts.bits_read = 32 * 2 * module.num_features  # folded scale and offset
    else:
        return None
    return counts


def count_ops(model: nn.Module, input_shape: Sequence[int]) -> dict[str, OpCounts]:
    """Per-module counts for one image of shape `input_shape` (C, H, W), by forward hooks.

    Runs one forward pass in evaluation mode without gradients; the training flags of all
    modules are restored, so BatchNorm statistics and stochastic rounding are untouched.
    """
    layers: dict[str, OpCounts] = {}
    handles = []
    for name, module in model.named_modules():

        def hook(mod, args, output, name=name):
            counts = layer_counts(mod, output)
            if counts is not None:
                layers[name] = counts  # a module called twice is counted for its last call

        handles.append(module.register_forward_hook(hook))
    param = next(model.parameters(), None)
    device = param.device if param is not None else None
    try:
        # eagerly even for a compiled network (trainer.compile): the hooks run as Python
        with eval_mode(model), torch.no_grad(), torch.compiler.set_stance("force_eager"):
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return layers


def estimate_energy(
    model: nn.Module, input_shape: Sequence[int], memory: str = DEFAULT_MEMORY
) -> EnergyEstimate:
    """Analytic energy of one inference of `model` on one image of shape (C, H, W)."""
    if memory not in MEMORY_PJ_PER_64_BITS:
        raise ValueError(f"memory={memory!r}; allowed: {', '.join(MEMORY_PJ_PER_64_BITS)}")
    layers = count_ops(model, input_shape)
    total = OpCounts()
    for counts in layers.values():
        total += counts
    return EnergyEstimate(
        float_pj=total.float_macs * (FP32_MULT_PJ + FP32_ADD_PJ) + total.float_adds * FP32_ADD_PJ,
        shift_pj=sum(n * shift_pj(b) for b, n in total.shifts.items()),
        int_add_pj=sum(n * int_add_pj(b) for b, n in total.int_adds.items()),
        memory_pj=total.bits_read * MEMORY_PJ_PER_64_BITS[memory] / 64.0,
        counts=total,
        layers=layers,
    )


def _numel(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel()


def config_energy_uj(cfg: Any) -> float:
    """The analytic energy (µJ) of one inference of the network a run config describes,
    before training: built from `cfg.model`, `cfg.shift_depth` and `cfg.quantization` on
    the image shape of `cfg.data`'s registered data module (no data is read). What training
    reports is the same for DeepShift-Q, whose weights are never 0; for PS it is an upper
    bound (a trained weight of 0 is skipped). For `hydra.sweeper.known_objectives`."""
    from dsnn.data import DATA
    from dsnn.network import build_network, data_spec

    data = DATA[data_spec(cfg)["name"]]
    net = build_network(cfg, data.in_channels, data.num_classes)
    return estimate_energy(net, (data.in_channels, data.image_size, data.image_size)).total_uj
