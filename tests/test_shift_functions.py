"""The straight-through quantizers against float64 references written from the formulas."""

import math

import pytest
import torch

from dsnn.shift import ShiftConfig, round_power_of_two, round_to_fixed, weight_from_shift_sign

MIN_SHIFTS = sorted(
    {ShiftConfig(shift_type=t, weight_bits=b).min_shift for t in ("Q", "PS") for b in range(2, 9)}
)


# tiny tensors: one intra-op thread for the whole module (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


def ref_fixed(x: torch.Tensor, integer_bits: int, fraction_bits: int) -> torch.Tensor:
    """clamp(floor(x / 2^-F) * 2^-F, -2^(I-1), 2^(I-1) - 2^-F), in float64."""
    step = 2.0**-fraction_bits
    x = torch.floor(x.double() / step) * step
    return x.clamp(-(2.0 ** (integer_bits - 1)), 2.0 ** (integer_bits - 1) - step)


def ref_power_of_two(w: torch.Tensor, min_shift: int) -> torch.Tensor:
    """sign(W) * 2^round(log2 clamp(|W|, 2^min_shift, 1)), in float64."""
    w = w.double()
    p = torch.log2(w.abs().clamp(2.0**min_shift, 1.0)).round()
    return torch.where(w == 0, torch.zeros_like(w), torch.sign(w) * 2.0**p)


def assert_powers_of_two(w: torch.Tensor, min_shift: int, allow_zero: bool) -> None:
    """Every entry is exactly ±2^k with k in [min_shift, 0] (or 0 if allowed)."""
    nonzero = w != 0
    if not allow_zero:
        assert nonzero.all()
    mantissa, exponent = torch.frexp(w[nonzero])  # w = m * 2^e, |m| in [0.5, 1)
    assert torch.equal(mantissa.abs(), torch.full_like(mantissa, 0.5))
    k = exponent - 1
    assert k.min() >= min_shift and k.max() <= 0


# ---------------------------------------------------------------- round_to_fixed


def test_round_to_fixed_two_integer_two_fraction_bits():
    # I = 2, F = 2: step 0.25, range [-2, 1.75]; floor rounds towards -inf.
    x = torch.tensor([-3.0, -2.0, -1.9, -0.1, 0.0, 0.1, 0.25, 0.3, 1.74, 1.75, 1.8, 5.0])
    expected = torch.tensor([-2.0, -2.0, -2.0, -0.25, 0.0, 0.0, 0.25, 0.25, 1.5, 1.75, 1.75, 1.75])
    assert torch.equal(round_to_fixed(x, 2, 2), expected)


@pytest.mark.parametrize("bits", [(2, 2), (2, 8), (4, 4), (8, 2), (8, 8), (3, 10), (16, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_to_fixed_matches_reference(bits, dtype):
    integer_bits, fraction_bits = bits
    g = torch.Generator().manual_seed(0)
    scale = 2.0 ** (integer_bits - 1)
    # spread well past both clamp bounds
    x = (torch.randn(4000, generator=g, dtype=torch.float64) * 1.5 * scale).to(dtype)
    out = round_to_fixed(x, integer_bits, fraction_bits)
    assert out.dtype == dtype
    # floor and scalings by powers of two are exact: equality, no tolerance. The float64
    # reference is representable in float32 while I + F <= 25; beyond that (16, 16: the
    # bound 2^15 - 2^-16) float32 holds its nearest value.
    ref = ref_fixed(x, integer_bits, fraction_bits)
    if dtype == torch.float64 or integer_bits + fraction_bits <= 25:
        assert torch.equal(ref.to(dtype).double(), ref)
    assert torch.equal(out, ref.to(dtype))


@pytest.mark.parametrize("bits", [(2, 2), (16, 16), (32, 32)])
def test_round_to_fixed_bounds_are_hit(bits):
    integer_bits, fraction_bits = bits
    x = torch.tensor([-1e30, 1e30], dtype=torch.float64)
    low, high = round_to_fixed(x, integer_bits, fraction_bits).tolist()
    assert low == -(2.0 ** (integer_bits - 1))
    assert high == 2.0 ** (integer_bits - 1) - 2.0**-fraction_bits


def test_round_to_fixed_gradient_is_identity_and_input_untouched():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    g = torch.randn(101, dtype=torch.float64)
    out = round_to_fixed(x, 2, 2)  # most of x is clamped: STE still passes the gradient
    (out * g).sum().backward()
    assert torch.equal(x.grad, g)
    assert torch.equal(x.detach(), before)
    assert out.data_ptr() != x.data_ptr()


def test_round_to_fixed_saves_nothing_for_backward():
    x = torch.randn(8, requires_grad=True)
    out = round_to_fixed(x, 4, 4)
    assert len(out.grad_fn.saved_tensors) == 0


# ---------------------------------------------------------------- DeepShift-Q


@pytest.mark.parametrize("min_shift", MIN_SHIFTS)
def test_power_of_two_values_and_reference(min_shift):
    g = torch.Generator().manual_seed(1)
    # log-uniform magnitudes from far below 2^min_shift to above 1, random signs, some zeros
    w = torch.exp2(torch.empty(5000).uniform_(-20, 3, generator=g))
    w = w * torch.where(torch.rand(5000, generator=g) < 0.5, -1.0, 1.0)
    w[::50] = 0.0
    out = round_power_of_two(w, min_shift)
    assert_powers_of_two(out, min_shift, allow_zero=True)
    assert torch.equal(out == 0, w == 0)
    assert torch.equal(torch.sign(out), torch.sign(w))
    ref = ref_power_of_two(w, min_shift)
    # float32 log2 may land on the other side of a tie 2^(k + 1/2) than float64 does;
    # such entries (|frac - 1/2| < 1e-5) may take either neighbour.
    log_mag = torch.log2(w.double().abs().clamp(2.0**min_shift, 1.0))
    near_tie = (log_mag - log_mag.floor() - 0.5).abs() < 1e-5
    assert torch.equal(out.double()[~near_tie], ref[~near_tie])
    ratio = out.double()[near_tie] / ref[near_tie]
    assert ((ratio == 1) | (ratio == 2) | (ratio == 0.5)).all()


def test_power_of_two_gradient_is_identity():
    w = torch.tensor([0.0, 0.3, -0.02, 5.0, -1e-9], requires_grad=True)
    g = torch.tensor([1.0, -2.0, 3.0, 4.0, 5.0])
    (round_power_of_two(w, -7) * g).sum().backward()
    assert torch.equal(w.grad, g)


def test_power_of_two_stochastic_zero_weights_no_nan():
    w = torch.zeros(1000, requires_grad=True)
    out = round_power_of_two(w, -15, stochastic=True)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(1000))
    assert torch.isfinite(w.grad).all()


# ---------------------------------------------------------------- DeepShift-PS


@pytest.mark.parametrize("min_shift", MIN_SHIFTS)
def test_shift_sign_values_and_reference(min_shift):
    g = torch.Generator().manual_seed(2)
    shift = torch.empty(5000, dtype=torch.float64).uniform_(min_shift - 3, 2, generator=g)
    sign = torch.empty(5000, dtype=torch.float64).uniform_(-2, 2, generator=g)
    out = weight_from_shift_sign(shift, sign, min_shift)
    assert_powers_of_two(out, min_shift, allow_zero=True)
    ref = torch.sign(torch.round(sign.clamp(-1, 1))) * 2.0 ** shift.clamp(min_shift, 0).round()
    assert torch.equal(out, ref)
    # |S| < 1/2 rounds to a zero weight
    assert torch.equal(out == 0, sign.abs() <= 0.5)


def test_shift_sign_gradients_match_formulas():
    g = torch.Generator().manual_seed(3)
    shift = torch.empty(200, dtype=torch.float64).uniform_(-9, 1, generator=g)
    sign = torch.empty(200, dtype=torch.float64).uniform_(-1.5, 1.5, generator=g)
    shift.requires_grad_()
    sign.requires_grad_()
    grad_w = torch.randn(200, dtype=torch.float64, generator=g)
    (weight_from_shift_sign(shift, sign, -6) * grad_w).sum().backward()
    # hand-computed: W = s * 2^p, s = sign(round(S)), p = round(clamp(P, -6, 0))
    s = torch.sign(torch.round(sign.detach()))
    p = shift.detach().clamp(-6, 0).round()
    assert torch.allclose(shift.grad, grad_w * s * 2.0**p * math.log(2), rtol=1e-15, atol=0)
    assert torch.equal(sign.grad, grad_w)


@pytest.mark.parametrize("kind", ["Q", "PS"])
def test_stochastic_rounding_is_unbiased(kind):
    # Each shift p is rounded n times: R(p) = floor(p) + Bernoulli(frac(p)). The mean of n
    # draws has standard deviation sqrt(f (1 - f) / n) <= 0.5 / sqrt(n) = 0.0025 for
    # n = 40000; 0.015 is 6 of them (a false failure has probability ~1e-9; seed fixed).
    torch.manual_seed(0)
    n = 40000
    shifts = torch.tensor([-2.3, -0.7, -5.5, -3.9, -1.0, 0.0, -7.0])
    p = shifts.repeat_interleave(n)
    if kind == "Q":
        out = round_power_of_two(torch.exp2(p), -7, stochastic=True)
    else:
        out = weight_from_shift_sign(p, torch.ones_like(p), -7, stochastic=True)
    rounded = torch.log2(out).view(len(shifts), n)
    assert ((rounded == shifts.floor()[:, None]) | (rounded == shifts.ceil()[:, None])).all()
    assert (rounded.mean(dim=1) - shifts).abs().max() < 0.015
    # integers are never moved
    assert torch.equal(rounded[-3:], shifts[-3:, None].expand(3, n))


def test_shift_sign_stochastic_zero_sign_no_nan():
    shift = torch.full((1000,), -3.5, requires_grad=True)
    sign = torch.zeros(1000, requires_grad=True)
    out = weight_from_shift_sign(shift, sign, -14, stochastic=True)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(1000))
    assert torch.isfinite(shift.grad).all() and torch.isfinite(sign.grad).all()
