"""ShiftConfig validation and ShiftConv2d / ShiftLinear against float64 references."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dsnn.shift import ShiftConfig, ShiftConv2d, ShiftLinear

I_BITS, F_BITS = 4, 6  # small enough that the fixed-point rounding of inputs is visible


# tiny tensors: one intra-op thread for the whole module (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def config(shift_type: str, weight_bits: int = 5, rounding: str = "deterministic"):
    return ShiftConfig(shift_type, weight_bits, I_BITS, F_BITS, rounding)


def ref_fixed(x, integer_bits=I_BITS, fraction_bits=F_BITS):
    step = 2.0**-fraction_bits
    x = torch.floor(x.double() / step) * step
    return x.clamp(-(2.0 ** (integer_bits - 1)), 2.0 ** (integer_bits - 1) - step)


def ref_weight(layer):
    """The quantized weight from the formulas (round to nearest), float64."""
    m = layer.config.min_shift
    if layer.config.shift_type == "Q":
        w = layer.weight.detach().double()
        p = torch.log2(w.abs().clamp(2.0**m, 1.0)).round()
        return torch.where(w == 0, 0.0, torch.sign(w) * 2.0**p)
    p = layer.shift.detach().double().clamp(m, 0).round()
    return torch.sign(torch.round(layer.sign.detach().double())) * 2.0**p


def make_layer(kind, shift_type, weight_bits=5, rounding="deterministic", bias=True):
    torch.manual_seed(0)
    cfg = config(shift_type, weight_bits, rounding)
    if kind == "conv":
        float_layer = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2, bias=bias)
        layer = ShiftConv2d.from_float(float_layer, cfg)
    else:
        float_layer = nn.Linear(7, 5, bias=bias)
        layer = ShiftLinear.from_float(float_layer, cfg)
    if shift_type == "PS":  # spread S over all three signs, P past both clamp bounds
        with torch.no_grad():
            layer.sign.uniform_(-1.5, 1.5)
            layer.shift.uniform_(layer.config.min_shift - 2, 1)
    return layer


def ref_forward(layer, x):
    """F.conv2d / F.linear on float64 reference weight, fixed-point input and bias."""
    bias = None if layer.bias is None else ref_fixed(layer.bias.detach())
    if isinstance(layer, nn.Conv2d):
        return F.conv2d(
            ref_fixed(x), ref_weight(layer), bias, layer.stride, layer.padding, 1, layer.groups
        )
    return F.linear(ref_fixed(x), ref_weight(layer), bias)


def make_input(kind, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    shape = (3, 4, 8, 8) if kind == "conv" else (3, 7)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 4).to(dtype)  # some clamped


# ---------------------------------------------------------------- ShiftConfig


def test_config_defaults_and_min_shift():
    cfg = ShiftConfig()
    assert (cfg.shift_type, cfg.weight_bits, cfg.rounding) == ("PS", 5, "deterministic")
    assert (cfg.activation_integer_bits, cfg.activation_fraction_bits) == (16, 16)
    assert cfg.min_shift == -14
    assert ShiftConfig(shift_type="Q").min_shift == -15
    assert ShiftConfig(shift_type="Q", weight_bits=2).min_shift == -1
    assert ShiftConfig(shift_type="PS", weight_bits=2).min_shift == 0
    assert ShiftConfig(shift_type="PS", weight_bits=8).min_shift == -126
    with pytest.raises(AttributeError):
        cfg.weight_bits = 3  # frozen


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("weight_bits", 1, "[2, 8]"),
        ("weight_bits", 9, "[2, 8]"),
        ("weight_bits", 4.0, "[2, 8]"),
        ("activation_integer_bits", 1, "[2, 32]"),
        ("activation_integer_bits", 33, "[2, 32]"),
        ("activation_fraction_bits", 1, "[2, 32]"),
        ("activation_fraction_bits", 33, "[2, 32]"),
        ("shift_type", "ps", "('Q', 'PS')"),
        ("shift_type", "X", "('Q', 'PS')"),
        ("rounding", "nearest", "('deterministic', 'stochastic')"),
        ("ps_init", "kaiming", "('deepshift', 'float', 'convert')"),
    ],
)
def test_config_rejects_bad_values(field, value, allowed):
    with pytest.raises(ValueError) as err:
        ShiftConfig(**{field: value})
    message = str(err.value)
    assert field in message and repr(value) in message and allowed in message


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("ps_init", ["deepshift", "float", "convert"])
@pytest.mark.parametrize("weight_bits", [2, 5, 8])
def test_fresh_ps_layer_init(weight_bits, ps_init):
    torch.manual_seed(0)
    cfg = ShiftConfig("PS", weight_bits, ps_init=ps_init)
    layer = ShiftConv2d(8, 16, 3, config=cfg)
    assert {n for n, _ in layer.named_parameters()} == {"shift", "sign", "bias"}
    assert "weight" not in layer.state_dict()
    assert layer.shift.shape == layer.sign.shape == (16, 8, 3, 3)
    assert layer.shift.min() >= cfg.min_shift and layer.shift.max() <= 0
    assert layer.sign.min() >= -1 and layer.sign.max() <= 1
    bound = 1 / math.sqrt(8 * 9)
    assert layer.bias.abs().max() <= bound


def test_deepshift_init_is_deepshifts():
    """Conv2dShift: P ~ U(-10, -1); LinearShift: P ~ U(min_shift, 0); S ~ U(-1, 1)."""
    torch.manual_seed(0)
    cfg = ShiftConfig("PS", 8, ps_init="deepshift")  # min_shift -126: no clamp at -10
    conv, linear = ShiftConv2d(64, 64, 3, config=cfg), ShiftLinear(256, 256, config=cfg)
    assert -10 <= conv.shift.min() < -9.9 and -1.1 < conv.shift.max() <= -1
    assert abs(conv.shift.mean().item() + 5.5) < 0.05
    assert cfg.min_shift <= linear.shift.min() < cfg.min_shift + 1 and linear.shift.max() > -1
    for layer in (conv, linear):
        assert layer.sign.min() < -0.99 and layer.sign.max() > 0.99
        assert abs((layer.sign.abs() < 0.5).float().mean().item() - 0.5) < 0.01  # zero weights
    clamped = ShiftConv2d(8, 8, 3, config=ShiftConfig("PS", 4, ps_init="deepshift"))  # min -6
    assert clamped.shift.min() == -6


def test_float_init_matches_the_float_layer_in_the_log_domain():
    """P = log2|W| of the float layer's Kaiming draw (not rounded), S = sign(W) * U(0.5, 1)."""
    torch.manual_seed(0)
    float_layer = nn.Conv2d(32, 32, 3)
    torch.manual_seed(0)
    layer = ShiftConv2d(32, 32, 3, config=ShiftConfig("PS", 8, ps_init="float"))
    weight = float_layer.weight.detach()
    torch.testing.assert_close(layer.shift.detach(), weight.abs().log2())
    assert (torch.sign(layer.sign) == torch.sign(weight)).all()
    assert 0.5 <= layer.sign.abs().min() and layer.sign.abs().max() <= 1.0
    assert (layer.shift.detach() != layer.shift.detach().round()).float().mean() > 0.99
    # the weight forward uses is the float weight rounded to a power of two: no zeros
    expected = torch.sign(weight) * torch.exp2(weight.abs().log2().round())
    torch.testing.assert_close(layer.exact_weight(), expected)


def test_convert_init_is_from_float_of_the_float_init():
    torch.manual_seed(0)
    float_layer = nn.Linear(64, 32)
    torch.manual_seed(0)
    layer = ShiftLinear(64, 32, config=ShiftConfig("PS", 8, ps_init="convert"))
    converted = ShiftLinear.from_float(float_layer, ShiftConfig("PS", 8))
    torch.testing.assert_close(layer.shift, converted.shift)
    torch.testing.assert_close(layer.sign, converted.sign)


def test_fresh_q_layer_keeps_float_init():
    torch.manual_seed(0)
    expected = nn.Linear(10, 4)
    torch.manual_seed(0)
    layer = ShiftLinear(10, 4, config=ShiftConfig("Q"))
    assert {n for n, _ in layer.named_parameters()} == {"weight", "bias"}
    assert torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias)


def test_from_float_ps_and_q():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        conv.weight.view(-1)[:6] = torch.tensor([0.0, -0.0, 0.25, -0.3, 7.0, 1e-30])
    ps = ShiftConv2d.from_float(conv, ShiftConfig("PS", 4))  # min_shift -6
    w = conv.weight.detach()
    expected_shift = torch.log2(w.abs()).round().clamp(-6, 0)
    assert torch.equal(ps.shift.detach(), expected_shift)
    assert torch.equal(ps.sign.detach(), torch.sign(w))
    assert ps.shift.view(-1)[:6].tolist() == [-6.0, -6.0, -2.0, -2.0, 0.0, -6.0]
    assert ps.sign.view(-1)[:6].tolist() == [0.0, 0.0, 1.0, -1.0, 1.0, 1.0]
    assert torch.equal(ps.bias, conv.bias)
    for t in (ps.shift, ps.sign, ps(torch.randn(1, 2, 5, 5))):
        assert torch.isfinite(t).all()
    q = ShiftConv2d.from_float(conv, ShiftConfig("Q"))
    assert torch.equal(q.weight, conv.weight) and q.weight is not conv.weight
    assert (q.stride, q.padding, q.kernel_size) == (conv.stride, conv.padding, conv.kernel_size)


def test_from_float_does_not_draw_random_numbers():
    layer = nn.Linear(5, 3)
    torch.manual_seed(0)
    ShiftLinear.from_float(layer, ShiftConfig("PS"))
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))


def test_extra_repr_shows_config():
    text = repr(ShiftLinear(3, 2, config=ShiftConfig("Q", 3, 8, 10, "stochastic")))
    assert "in_features=3" in text
    for part in ("shift_type=Q", "weight_bits=3", "activation_integer_bits=8"):
        assert part in text
    assert "activation_fraction_bits=10" in text and "rounding=stochastic" in text


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("weight_bits", [2, 3, 5, 8])
def test_quantized_weight_is_power_of_two(kind, shift_type, weight_bits):
    layer = make_layer(kind, shift_type, weight_bits)
    w = layer.quantized_weight().detach()
    assert torch.equal(w.double(), ref_weight(layer))
    nonzero = w[w != 0]
    if shift_type == "Q":
        assert nonzero.numel() == w.numel()
    mantissa, exponent = torch.frexp(nonzero)
    assert (mantissa.abs() == 0.5).all()
    assert (exponent - 1).min() >= layer.config.min_shift and (exponent - 1).max() <= 0


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_reference(kind, shift_type, bias):
    layer = make_layer(kind, shift_type, bias=bias)
    # float64 layer: the same formulas must give the reference up to summation order
    out64 = layer.double()(make_input(kind, torch.float64))
    assert torch.allclose(out64, ref_forward(layer, make_input(kind)), rtol=1e-12, atol=1e-12)
    # float32 layer: quantized weights and inputs are exact in float32; the error is the
    # float32 accumulation (<= 30 products of size <= 8 here), well inside 1e-4
    layer = layer.float()
    out32 = layer(make_input(kind))
    assert out32.dtype == torch.float32
    assert torch.allclose(out32.double(), ref_forward(layer, make_input(kind)), atol=1e-4)


def test_forward_leaves_input_and_parameters_alone():
    layer = make_layer("conv", "PS")
    x = make_input("conv")
    before = [p.detach().clone() for p in layer.parameters()] + [x.clone()]
    layer(x).sum().backward()
    after = [p.detach() for p in layer.parameters()] + [x]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_circular_padding_uses_parent_conv_forward():
    conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular", bias=False)
    layer = ShiftConv2d.from_float(conv, ShiftConfig("Q", 8, 16, 16))
    x = torch.randn(1, 2, 6, 6)
    expected = conv._conv_forward(round_fixed16(x), layer.quantized_weight(), None)
    assert torch.equal(layer(x), expected)


def round_fixed16(x):
    return ref_fixed(x, 16, 16).float()


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_linear_gradients_match_hand_computed(shift_type):
    layer = make_layer("linear", shift_type).double()
    x = make_input("linear", torch.float64).requires_grad_()
    g = torch.randn(3, 5, dtype=torch.float64)
    (layer(x) * g).sum().backward()
    w = ref_weight(layer)
    # y = x_q W^T + b_q, straight through x_q and b_q
    assert torch.allclose(x.grad, g @ w, rtol=1e-13, atol=1e-13)
    assert torch.allclose(layer.bias.grad, g.sum(0), rtol=1e-13, atol=1e-13)
    grad_w = g.T @ ref_fixed(x.detach())  # dL/dW_q
    if shift_type == "Q":
        assert torch.allclose(layer.weight.grad, grad_w, rtol=1e-13, atol=1e-13)
    else:
        expected_shift = grad_w * w * math.log(2)
        assert torch.allclose(layer.shift.grad, expected_shift, rtol=1e-13, atol=1e-13)
        assert torch.allclose(layer.sign.grad, grad_w, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_conv_gradients_match_formulas(shift_type):
    layer = make_layer("conv", shift_type).double()
    x = make_input("conv", torch.float64).requires_grad_()
    out = layer(x)
    g = torch.randn_like(out)
    (out * g).sum().backward()
    # reference: the conv's own adjoint on reference leaves, then the chain rule by hand
    x_q = ref_fixed(x.detach()).requires_grad_()
    w_q = ref_weight(layer).requires_grad_()
    b_q = ref_fixed(layer.bias.detach()).requires_grad_()
    ref = F.conv2d(x_q, w_q, b_q, layer.stride, layer.padding, 1, layer.groups)
    (ref * g).sum().backward()
    close = dict(rtol=1e-12, atol=1e-12)
    assert torch.allclose(x.grad, x_q.grad, **close)
    assert torch.allclose(layer.bias.grad, b_q.grad, **close)
    if shift_type == "Q":
        assert torch.allclose(layer.weight.grad, w_q.grad, **close)
    else:
        assert torch.allclose(layer.shift.grad, w_q.grad * w_q.detach() * math.log(2), **close)
        assert torch.allclose(layer.sign.grad, w_q.grad, **close)


# ---------------------------------------------------------------- rounding modes


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_stochastic_rounding_only_in_training(shift_type):
    layer = make_layer("linear", shift_type, weight_bits=8, rounding="stochastic")
    if shift_type == "Q":  # keep log2|W| away from integers so that draws differ
        with torch.no_grad():
            layer.weight.copy_(torch.sign(layer.weight) * 2.0**-3.5)
    torch.manual_seed(0)
    draws = [layer.quantized_weight() for _ in range(4)]
    assert not all(torch.equal(draws[0], d) for d in draws[1:])
    layer.eval()
    nearest = ref_weight(layer)
    assert all(torch.equal(layer.quantized_weight().double(), nearest) for _ in range(3))


# ---------------------------------------------------------------- evaluation cache


@pytest.mark.parametrize("shift_type", ["Q", "PS"])
def test_evaluation_reuses_the_quantized_weight_until_a_parameter_changes(shift_type):
    layer = make_layer("conv", shift_type).eval()
    x = make_input("conv")
    params = [layer.weight] if shift_type == "Q" else [layer.shift, layer.sign]
    with torch.no_grad():
        first = layer.quantized_weight()
        assert layer.eval().quantized_weight() is first  # computed once
        assert torch.equal(first.double(), ref_weight(layer))
        out = layer(x)
    with torch.inference_mode():  # Lightning's validation and test loops
        assert layer.quantized_weight() is first and torch.equal(layer(x), out)
    # Autograd on (e.g. fine-tuning in eval mode): never cached, gradients flow.
    live = layer.quantized_weight()
    assert live is not first and live.requires_grad and torch.equal(live, first)

    # An in-place update (optimizer step) bumps the version: the next call sees it.
    optimizer = torch.optim.SGD(params, lr=4.0)
    layer(x).square().sum().backward()
    optimizer.step()
    with torch.no_grad():
        after_step = layer.quantized_weight()
        assert not torch.equal(after_step, first)
        assert torch.equal(after_step.double(), ref_weight(layer))
    # load_state_dict (in-place copies) is seen too ...
    state = {k: v.clone() for k, v in make_layer("conv", shift_type).state_dict().items()}
    layer.load_state_dict(state)  # the initial parameters again
    with torch.no_grad():
        assert torch.equal(layer.quantized_weight(), first)
    # ... and a `.data` write (no version bump) once the mode is switched, as in training.
    for p in params:
        p.data.mul_(-1.0)
    layer.train().eval()
    with torch.no_grad():
        assert torch.equal(layer.quantized_weight().double(), ref_weight(layer))
    assert "_weight_cache" not in layer.state_dict()


# ---------------------------------------------------------------- project_ / export_


def test_project_q():
    layer = ShiftLinear(6, 1, bias=False, config=ShiftConfig("Q", 4))  # min_shift -7
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 1e-9, -1e-9, 3.0, -3.0, 0.3]]))
    assert layer.project_() is layer
    expected = [0.0, 2.0**-7, -(2.0**-7), 1.0, -1.0, 0.3]
    assert torch.allclose(layer.weight, torch.tensor([expected]), rtol=0, atol=0)
    assert layer.weight.requires_grad


def test_project_ps():
    layer = ShiftLinear(4, 1, bias=False, config=ShiftConfig("PS", 4))  # min_shift -6
    with torch.no_grad():
        layer.shift.copy_(torch.tensor([[-100.0, 5.0, -2.5, 0.0]]))
        layer.sign.copy_(torch.tensor([[-3.0, 0.2, 4.0, -1.0]]))
    layer.project_()
    assert layer.shift.tolist() == [[-6.0, 0.0, -2.5, 0.0]]
    assert torch.allclose(layer.sign, torch.tensor([[-1.0, 0.2, 1.0, -1.0]]), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("shift_type", ["Q", "PS"])
@pytest.mark.parametrize("rounding", ["deterministic", "stochastic"])
def test_export_keeps_evaluation_bit_exact(kind, shift_type, rounding):
    layer = make_layer(kind, shift_type, rounding=rounding).eval()
    x = make_input(kind)
    before = layer(x)
    weight_before = layer.quantized_weight()
    assert layer.export_() is layer
    assert torch.equal(layer(x), before)
    if shift_type == "Q":
        assert torch.equal(layer.weight, weight_before)
    else:
        assert set(layer.sign.unique().tolist()) <= {-1.0, 0.0, 1.0}
        assert torch.equal(layer.shift, layer.shift.round())
        assert layer.shift.min() >= layer.config.min_shift and layer.shift.max() <= 0
    assert torch.equal(layer.bias, ref_fixed(layer.bias.detach()).float())
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    layer.export_()  # idempotent
    assert all(torch.equal(v, layer.state_dict()[k]) for k, v in state.items())
