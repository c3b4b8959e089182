"""convert_to_shift on ResNet20 and small models; export, save/load, penalty, projection."""

import copy
import io
import math

import pytest
import torch
from torch import nn

from dsnn.models.resnet20 import ResNet20
from dsnn.shift import (
    ShiftConfig,
    ShiftConv2d,
    ShiftLayer,
    ShiftLinear,
    convert_to_shift,
    count_weight_layers,
    export_quantized,
    project_shift_parameters,
    shift_layers,
    shift_penalty,
)

# tiny tensors: one intra-op thread for the whole module (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def resnet20():
    torch.manual_seed(0)
    return ResNet20(in_channels=3, num_classes=10)


def weight_layer_names(model):
    return [n for n, m in model.named_modules() if type(m) in (nn.Conv2d, nn.Linear)]


def test_resnet20_has_20_weight_layers(resnet20):
    assert count_weight_layers(resnet20) == 20


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_every_shift_depth_converts_the_last_layers(resnet20, shift_type):
    names = weight_layer_names(resnet20)
    assert names[-1] == "linear" and names[0] == "conv1"
    cfg = ShiftConfig(shift_type)
    for depth in range(21):
        model = convert_to_shift(copy.deepcopy(resnet20), depth, cfg)
        shifted = [n for n, m in model.named_modules() if isinstance(m, ShiftLayer)]
        assert shifted == names[20 - depth :]  # classifier first: d = 1 is "linear" only
        assert len(list(shift_layers(model))) == depth
        assert count_weight_layers(model) == 20 - depth
        assert all(m.config is cfg for m in shift_layers(model))
        assert isinstance(model.linear, ShiftLinear) == (depth >= 1)
        assert isinstance(model.conv1, ShiftConv2d) == (depth == 20)


@pytest.mark.parametrize("depth", [-1, 21, 100])
def test_shift_depth_out_of_range_raises(resnet20, depth):
    with pytest.raises(ValueError, match=rf"shift_depth.*\[0, 20\].*{depth}"):
        convert_to_shift(copy.deepcopy(resnet20), depth, ShiftConfig())


def test_depth_zero_is_the_float_network(resnet20):
    model = copy.deepcopy(resnet20)
    modules = list(model.modules())
    assert convert_to_shift(model, 0, ShiftConfig()) is model
    assert list(model.modules()) == modules


def test_conversion_is_in_place_and_keeps_device_dtype_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2)).double()
    model.eval()
    out = convert_to_shift(model, 2, ShiftConfig("PS"))
    assert out is model
    assert isinstance(model[0], ShiftConv2d) and isinstance(model[3], ShiftLinear)
    assert model[0].shift.dtype == torch.float64 and not model[0].training


def test_shared_and_nested_modules_convert_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Sequential(nn.Linear(4, 2)))
    assert count_weight_layers(model) == 2
    convert_to_shift(model, 2, ShiftConfig("Q"))
    assert isinstance(model[0], ShiftLinear) and model[0] is model[2]
    assert isinstance(model[3][0], ShiftLinear)


def test_only_exact_float_types_are_weight_layers():
    model = nn.Sequential(
        ShiftLinear(4, 4, config=ShiftConfig()),  # already shift: not counted again
        nn.MultiheadAttention(4, 1),  # its out_proj subclasses nn.Linear
        nn.Linear(4, 4),
    )
    assert count_weight_layers(model) == 1
    convert_to_shift(model, 1, ShiftConfig())
    assert len(list(shift_layers(model))) == 2
    assert type(model[1].out_proj) is not ShiftLinear


def test_root_layer_itself_can_be_converted():
    layer = nn.Linear(3, 2)
    new = convert_to_shift(layer, 1, ShiftConfig("Q"))
    assert isinstance(new, ShiftLinear) and torch.equal(new.weight, layer.weight)


def test_convert_weights_false_gives_fresh_layers(resnet20):
    model = convert_to_shift(copy.deepcopy(resnet20), 20, ShiftConfig("PS"), convert_weights=False)
    for layer in shift_layers(model):
        assert layer.shift.min() >= -14 and layer.shift.max() <= 0
        assert layer.sign.min() >= -1 and layer.sign.max() <= 1


# ---------------------------------------------------------------- training helpers


def test_shift_penalty_matches_formula(resnet20):
    model = convert_to_shift(copy.deepcopy(resnet20), 5, ShiftConfig("PS"))
    penalty = shift_penalty(model)
    shifts = [m.shift for m in shift_layers(model)]
    expected = sum(0.5 * (2.0 ** p.detach().double()).pow(2).sum() for p in shifts)
    assert math.isclose(penalty.item(), expected.item(), rel_tol=1e-5)
    penalty.backward()
    for p in shifts:  # d/dP 0.5 (2^P)^2 = 2^(2P) ln 2
        assert torch.allclose(p.grad, 2.0 ** (2 * p.detach()) * math.log(2), rtol=1e-5)


def test_shift_penalty_is_zero_without_ps_layers(resnet20):
    assert shift_penalty(copy.deepcopy(resnet20)).item() == 0.0
    q = convert_to_shift(copy.deepcopy(resnet20), 20, ShiftConfig("Q"))
    assert shift_penalty(q).item() == 0.0


def test_project_shift_parameters_clamps_every_layer(resnet20):
    model = convert_to_shift(copy.deepcopy(resnet20), 3, ShiftConfig("PS", 3))  # min_shift -2
    with torch.no_grad():
        for layer in shift_layers(model):
            layer.shift.uniform_(-5, 3)
            layer.sign.uniform_(-4, 4)
    project_shift_parameters(model)
    for layer in shift_layers(model):
        assert layer.shift.min() >= -2 and layer.shift.max() <= 0
        assert layer.sign.min() >= -1 and layer.sign.max() <= 1


def train_a_little(model, steps=2):
    """A few SGD steps with projection, so parameters leave their converted values.
    8x8 images (ResNet20 pools adaptively) keep this fast."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(8, 3, 8, 8, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y) + 1e-4 * shift_penalty(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        project_shift_parameters(model)


@pytest.mark.parametrize(
    "cfg",
    [
        ShiftConfig("PS"),
        ShiftConfig("Q"),
        ShiftConfig("PS", 3, 4, 4, "stochastic"),
        ShiftConfig("Q", 7, 29, 10, "deterministic"),
    ],
    ids=["ps", "q", "ps_stochastic_small", "q_pos2"],
)
def test_exported_model_evaluates_identically_after_save_and_load(resnet20, cfg, tmp_path):
    model = convert_to_shift(copy.deepcopy(resnet20), 16, cfg)
    train_a_little(model)
    model.eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fake_quant = model(x)
        export_quantized(model)
        exported = model(x)
    assert torch.equal(exported, fake_quant)
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(123)
    fresh = convert_to_shift(ResNet20(3, 10), 16, cfg, convert_weights=False)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), fake_quant)
    buffer = io.BytesIO()  # and the whole module pickles
    torch.save(model, buffer)
    buffer.seek(0)
    with torch.no_grad():
        assert torch.equal(torch.load(buffer, weights_only=False)(x), fake_quant)
