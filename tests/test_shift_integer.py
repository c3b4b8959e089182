"""The integer-only forward of shift layers against the fake-quant forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsnn.models import ResNet20
from dsnn.shift import ShiftConfig, ShiftConv2d, ShiftLinear, convert_to_shift, shift_layers
from dsnn.shift.integer import (
    compare_layers,
    integer_layer_forward,
    integer_shift_layers,
    to_fixed_integer,
    verify_integer_forward,
)

ACTIVATIONS = [(4, 4), (8, 8), (16, 16)]


def random_shift_net(config: ShiftConfig, seed: int = 0) -> nn.Module:
    """Conv (with bias, stride 2) then linear, weights spread over the whole shift range."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        ShiftConv2d(6, 5, 3, stride=2, padding=1, bias=True, config=config),
        nn.Flatten(),
        ShiftLinear(5 * 4 * 4, 7, config=config),
    )
    with torch.no_grad():
        for layer in shift_layers(net):
            if config.shift_type == "Q":
                shift = torch.empty_like(layer.weight).uniform_(config.min_shift - 1, 1)
                layer.weight.copy_(torch.exp2(shift) * torch.randn_like(shift).sign())
            else:
                layer.shift.uniform_(config.min_shift - 1, 1)
                layer.sign.uniform_(-1.5, 1.5)  # about a third of the weights are 0
            layer.bias.uniform_(-1, 1)
    return net.eval()


def test_fixed_point_integers_match_round_to_fixed():
    x = torch.tensor([-1000.0, -1.3, -0.01, 0.0, 0.26, 1.99, 1000.0])
    # I=2, F=2: steps of 1/4 in [-2, 1.75] -> integers in [-8, 7]
    assert to_fixed_integer(x, 2, 2).tolist() == [-8, -6, -1, 0, 1, 7, 7]


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("bits", [2, 3, 5])
@pytest.mark.parametrize(("integer_bits", "fraction_bits"), ACTIVATIONS)
def test_integer_forward_equals_the_fake_quant_forward(
    shift_type, bits, integer_bits, fraction_bits
):
    net = random_shift_net(ShiftConfig(shift_type, bits, integer_bits, fraction_bits))
    report = compare_layers(net, 3.0 * torch.randn(8, 6, 8, 8))
    for layer in report.values():
        assert layer["exact_accumulator"] == 1.0
        assert layer["lsb_diff_float64"] == 0.0  # bit for bit
        if fraction_bits <= 8:  # float32 holds these sums: within one LSB (2^-F)
            assert layer["lsb_diff_float32"] <= 1.0


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_eight_bit_shifts_truncate_below_the_accumulator_but_stay_within_one_lsb(shift_type):
    # shifts down to 2^-127 do not fit a 64-bit accumulator next to 16/16 activations
    net = random_shift_net(ShiftConfig(shift_type, 8, 16, 16))
    report = compare_layers(net, 3.0 * torch.randn(8, 6, 8, 8))
    for layer in report.values():
        assert layer["exact_accumulator"] == 0.0
        assert layer["lsb_diff_float64"] < 1.0


def test_the_accumulator_is_an_int64_of_the_exact_sum():
    config = ShiftConfig("Q", 3, 4, 4)  # shifts 0 .. -3
    layer = ShiftLinear(3, 1, bias=True, config=config)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -0.25, 0.125]]))
        layer.bias.fill_(0.5)
    x = torch.tensor([[1.5, 2.0, -0.75]])  # 24, 32, -12 in units of 2^-4
    out = integer_layer_forward(layer, x)
    # accumulator in units 2^-(4+3): 24<<3 - 32<<1 + (-12)<<0 + 8<<3 = 192 - 64 - 12 + 64
    assert out.value.dtype == torch.int64 and out.value.tolist() == [[180]]
    assert out.fraction_bits == 7 and out.exact
    assert out.to_float().item() == 1.5 - 0.5 - 0.09375 + 0.5


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_resnet20_with_integer_shift_layers_gives_the_same_logits(shift_type):
    torch.manual_seed(0)
    net = convert_to_shift(ResNet20(1, 10, 4), 20, ShiftConfig(shift_type, 4, 8, 8)).eval()
    x = torch.randn(8, 1, 28, 28)
    report = verify_integer_forward(net, x)
    assert report["integer/identical_logits_float64"] == 1.0
    assert report["integer/max_lsb_diff_float64"] == 0.0
    assert report["integer/prediction_agreement_float32"] == 1.0
    assert report["integer/exact_accumulator_layers"] == 20
    # the context manager restores the fake-quant forward
    with torch.no_grad():
        before = net(x)
        with integer_shift_layers(net):
            inside = net(x)
        assert torch.equal(net(x), before)
    assert (inside - before).abs().max() < 1e-3
