"""Analytic energy: operation counts by hand for a small network, Horowitz's energies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsnn.energy.analytic import (
    FP32_ADD_PJ,
    FP32_MULT_PJ,
    MEMORY_PJ_PER_64_BITS,
    count_ops,
    estimate_energy,
    int_add_pj,
)
from dsnn.models import ResNet20
from dsnn.shift import ShiftConfig, ShiftLinear, convert_to_shift


def small_net() -> nn.Module:
    """conv 1->2 (3x3, pad 1, no bias) on 4x4 -> BN -> ReLU -> flatten 32 -> shift linear 3."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, bias=False),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32, 3),
    )
    net = convert_to_shift(net, 1, ShiftConfig("PS", 5, 6, 10))  # the linear layer only
    with torch.no_grad():
        net[4].sign.fill_(1.0)
        net[4].sign[0, :5] = 0.0  # five weights of 0: no shift, no add
    return net


def test_op_counts_match_a_hand_count():
    layers = count_ops(small_net(), (1, 4, 4))
    conv, bn, linear = layers["0"], layers["1"], layers["4"]
    assert set(layers) == {"0", "1", "4"}  # ReLU and Flatten are not counted
    # conv: 4x4 outputs x 2 channels x (1 x 3 x 3) weights = 288 float MACs
    assert (conv.float_macs, conv.float_adds, conv.bits_read) == (288, 0, 18 * 32)
    # BN: one folded multiply-add per element (2 x 4 x 4), scale and offset per channel
    assert (bn.float_macs, bn.bits_read) == (32, 2 * 2 * 32)
    # shift linear: 96 weights, 5 of them 0 -> 91 shifts; 91 adds + 3 bias adds, at 16 bits
    assert linear.float_macs == 0
    assert linear.shifts == {16: 91} and linear.int_adds == {16: 94}
    assert linear.bits_read == 96 * 5 + 3 * 16


def test_energy_is_the_counts_times_horowitz():
    estimate = estimate_energy(small_net(), (1, 4, 4), memory="sram_8kb")
    assert estimate.float_pj == pytest.approx((288 + 32) * (FP32_MULT_PJ + FP32_ADD_PJ))
    assert estimate.shift_pj == pytest.approx(91 * int_add_pj(16))
    assert estimate.int_add_pj == pytest.approx(94 * int_add_pj(16))
    bits = 18 * 32 + 2 * 2 * 32 + 96 * 5 + 3 * 16
    assert estimate.memory_pj == pytest.approx(bits * MEMORY_PJ_PER_64_BITS["sram_8kb"] / 64)
    assert estimate.total_uj == pytest.approx(1e-6 * estimate.total_pj)


def test_integer_add_energy_interpolates_horowitz():
    assert int_add_pj(8) == pytest.approx(0.03) and int_add_pj(32) == pytest.approx(0.1)
    assert int_add_pj(16) == pytest.approx(0.03 + 8 * 0.07 / 24)
    assert 0 < int_add_pj(2) < int_add_pj(8) < int_add_pj(64)


def test_counting_leaves_the_model_as_it_was():
    net = ShiftLinear(4, 2, config=ShiftConfig("Q", 4, rounding="stochastic"))
    model = nn.Sequential(nn.BatchNorm1d(4), net).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = estimate_energy(model, (4,)).total_pj
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BN running statistics untouched
    assert estimate_energy(model, (4,)).total_pj == first  # deterministic
    with pytest.raises(ValueError, match="memory="):
        estimate_energy(model, (4,), memory="l2")


def test_shift_resnet20_needs_far_less_energy_than_float():
    float_net = ResNet20(3, 10)
    shift_net = convert_to_shift(ResNet20(3, 10), 20, ShiftConfig("PS", 5, 16, 16))
    float_e = estimate_energy(float_net, (3, 32, 32))
    shift_e = estimate_energy(shift_net, (3, 32, 32))
    assert float_e.counts.float_macs == 40_551_040 + 188_416  # conv and linear, BN
    assert shift_e.counts.float_macs == 188_416  # BN only
    assert sum(shift_e.counts.shifts.values()) == 40_551_040
    assert 15 < float_e.total_uj / shift_e.total_uj < 25
