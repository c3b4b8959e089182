"""Settings of one DeepShift layer (Elhoushi et al. 2021, "DeepShift: Towards
Multiplication-Less Neural Networks"; Hennig et al., section 2.1 and Table 1).

A shift layer uses weights W = s * 2^p with s in {-1, 0, +1} (PS) or {-1, +1} (Q) and an
integer shift p in [min_shift, 0], so |W| <= 1 and a product x * W is a right shift of x.
`weight_bits` b bounds the shift: one bit goes to the sign, the remaining b - 1 bits
encode -p, so

    Q:  p in [-(2^(b-1) - 1), 0]     (2^(b-1) shifts)
    PS: p in [-(2^(b-1) - 2), 0]     (one code of the range is left for the zero weight)

Activations (layer inputs) and biases are fixed point with I integer bits (sign
included) and F fraction bits. The field names are the YAML keys of
conf/quantization/*.yaml, so `ShiftConfig(**cfg.quantization)` works.
"""

from dataclasses import dataclass, fields

SHIFT_TYPES = ("Q", "PS")
ROUNDINGS = ("deterministic", "stochastic")
# How a PS layer trained from scratch (no `pretrained` file) starts (dsnn/shift/layers.py).
PS_INITS = ("deepshift", "float", "convert")
# Inclusive ranges of the integer fields (Table 1 of Hennig et al.).
INT_RANGES = {
    "weight_bits": (2, 8),
    "activation_integer_bits": (2, 32),
    "activation_fraction_bits": (2, 32),
}


@dataclass(frozen=True)
class ShiftConfig:
    """How a shift layer quantizes: method, weight bits, activation bits, rounding.

    `rounding` applies to the shift p only (Q: round(log2|W|), PS: round(P)); "stochastic"
    rounds up with probability equal to the fraction, in training mode only. Evaluation
    mode always rounds to the nearest integer, so evaluation is deterministic.

    `ps_init` is how a PS layer starts when it is not converted from `pretrained` weights
    (see `ShiftLayer.reset_parameters`); Q layers and pretrained runs ignore it.
    """

    shift_type: str = "PS"
    weight_bits: int = 5
    activation_integer_bits: int = 16
    activation_fraction_bits: int = 16
    rounding: str = "deterministic"
    ps_init: str = "float"

    def __post_init__(self) -> None:
        if self.shift_type not in SHIFT_TYPES:
            raise ValueError(f"shift_type must be one of {SHIFT_TYPES}, got {self.shift_type!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.ps_init not in PS_INITS:
            raise ValueError(f"ps_init must be one of {PS_INITS}, got {self.ps_init!r}")
        for name, (low, high) in INT_RANGES.items():
            value = getattr(self, name)
            # bool is an int subclass; True must not pass as 1 bit.
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")

    @property
    def min_shift(self) -> int:
        """Smallest shift p (most negative); the largest is 0, so 2^min_shift <= |W| <= 1."""
        levels = 2 ** (self.weight_bits - 1)
        return -(levels - 1) if self.shift_type == "Q" else -(levels - 2)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
