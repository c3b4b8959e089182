"""Multiplication-free export: bit packing, (sign, shift) codes, and the round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsnn.models import ResNet20
from dsnn.network import build_from_spec
from dsnn.shift import ShiftConfig, convert_to_shift, export_quantized, shift_layers
from dsnn.shift.export import (
    decode_weight,
    encode_weight,
    load_exported,
    pack_bits,
    read_exported,
    save_exported,
    size_report,
    unpack_bits,
)


@pytest.mark.parametrize("bits", range(2, 9))
def test_pack_unpack_round_trip(bits):
    codes = torch.randint(0, 2**bits, (1001,), dtype=torch.uint8)
    packed = pack_bits(codes, bits)
    assert packed.numel() == (1001 * bits + 7) // 8
    assert torch.equal(unpack_bits(packed, bits, 1001), codes)


def test_pack_bits_is_most_significant_bit_first():
    # codes 0b101, 0b011 in 3 bits: stream 101 011 -> byte 0b10101100
    assert pack_bits(torch.tensor([5, 3], dtype=torch.uint8), 3).tolist() == [0b10101100]
    with pytest.raises(ValueError, match="does not fit 3 bits"):
        pack_bits(torch.tensor([8], dtype=torch.uint8), 3)


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("bits", [2, 3, 5, 8])
def test_every_weight_of_the_format_survives_encoding(shift_type, bits):
    config = ShiftConfig(shift_type, bits)
    magnitudes = torch.exp2(torch.arange(config.min_shift, 1, dtype=torch.float32))
    weights = torch.cat([magnitudes, -magnitudes])
    if shift_type == "PS":
        weights = torch.cat([weights, torch.zeros(1)])
    codes = encode_weight(weights, config)
    assert int(codes.max()) < 2**bits
    assert len(set(codes.tolist())) == len(weights)  # one code per weight
    assert torch.equal(decode_weight(codes, config), weights)


def test_a_q_weight_of_zero_or_off_the_grid_cannot_be_encoded():
    with pytest.raises(ValueError, match="Q codes have no zero"):
        encode_weight(torch.tensor([0.5, 0.0]), ShiftConfig("Q", 5))
    with pytest.raises(ValueError, match="not a quantized shift weight"):
        encode_weight(torch.tensor([0.3]), ShiftConfig("Q", 5))


def _trained_like(shift_type: str, depth: int, width: int = 4) -> nn.Module:
    """ResNet20 with `depth` shift layers, BN statistics and PS zeros that are not trivial."""
    torch.manual_seed(0)
    net = convert_to_shift(ResNet20(1, 10, width), depth, ShiftConfig(shift_type, 5, 8, 8))
    with torch.no_grad():
        for layer in shift_layers(net):
            if shift_type == "PS":
                layer.sign.uniform_(-1.0, 1.0)  # |S| < 0.5 rounds to the weight 0
        net.train()
        net(torch.randn(16, 1, 28, 28))  # BN running statistics move away from 0 / 1
    return net.eval()


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("depth", [20, 7])
def test_round_trip_gives_identical_predictions(shift_type, depth, tmp_path):
    net = _trained_like(shift_type, depth)
    spec = {
        "model": {"_target_": "dsnn.models.ResNet20", "width": 4},
        "in_channels": 1, "num_classes": 10, "shift_depth": depth,
        "quantization": ShiftConfig(shift_type, 5, 8, 8).as_dict(),
    }  # fmt: skip
    nbytes = save_exported(net, tmp_path / "m.dsnn", spec, run_config="seed: 0\n")
    loaded = load_exported(tmp_path / "m.dsnn")  # rebuilt from the spec in the file
    x = torch.randn(32, 1, 28, 28)
    with torch.no_grad():
        expected, got = net(x), loaded(x)
    assert torch.equal(expected, got)  # logits bit for bit, so predictions too
    assert not loaded.training
    assert read_exported(tmp_path / "m.dsnn")["run_config"] == "seed: 0\n"
    # the export is smaller than the float32 checkpoint of the same network
    report = size_report(net, nbytes)
    assert report["size/shift_weights"] > 0
    assert report["size/export_bytes"] < report["size/float32_checkpoint_bytes"]


def test_round_trip_into_a_given_network_without_spec(tmp_path):
    net = _trained_like("PS", 20)
    export_quantized(net)  # exported (rounded) parameters load back exactly
    save_exported(net, tmp_path / "m.dsnn")
    target = build_from_spec(
        {"model": {"_target_": "dsnn.models.ResNet20", "width": 4}, "in_channels": 1,
         "num_classes": 10, "shift_depth": 20, "quantization": ShiftConfig("PS", 5, 8, 8).as_dict()}
    )  # fmt: skip
    loaded = load_exported(tmp_path / "m.dsnn", model=target)
    state = loaded.state_dict()
    for key, value in net.state_dict().items():
        if key.endswith(".shift"):  # the shift of a weight 0 is free; the weight is not
            sign = net.state_dict()[key.removesuffix("shift") + "sign"]
            value, state[key] = value * sign.abs(), state[key] * sign.abs()
        assert torch.equal(state[key], value), key
    for mine, theirs in zip(shift_layers(net), shift_layers(loaded), strict=True):
        assert torch.equal(mine.quantized_weight(), theirs.quantized_weight())
    with pytest.raises(ValueError, match="no spec"):
        load_exported(tmp_path / "m.dsnn")


def test_a_network_with_other_shift_layers_is_refused(tmp_path):
    save_exported(_trained_like("Q", 20), tmp_path / "m.dsnn")
    other = convert_to_shift(ResNet20(1, 10, 4), 10, ShiftConfig("Q", 5, 8, 8))
    with pytest.raises(ValueError, match="shift layers differ"):
        load_exported(tmp_path / "m.dsnn", model=other)


def test_resnet20_export_is_about_weight_bits_over_32_of_float32(tmp_path):
    """Full-width ResNet20, all 20 layers shifted at 5 bits: ~1/5 of the float32 size."""
    net = convert_to_shift(ResNet20(3, 10), 20, ShiftConfig("PS", 5, 16, 16)).eval()
    report = size_report(net, save_exported(net, tmp_path / "m.dsnn"))
    assert report["size/shift_weights"] == 268_336  # 269,722 parameters less 1,386 of BN/bias
    assert 5 / 32 < report["size/export_ratio"] < 0.2
