"""DeepShift (Elhoushi et al. 2021) for this project: straight-through quantizers,
shift layers (DeepShift-Q and DeepShift-PS) and the conversion of float networks.

    config = ShiftConfig(shift_type="PS", weight_bits=5)
    model = convert_to_shift(model, shift_depth=20, config=config)
    ...  # each step: loss + coefficient * shift_penalty(model); step; project_shift_parameters
    export_quantized(model)  # before saving: parameters := their quantized values

Deployment, imported from its module: dsnn.shift.export (the multiplication-free file
format) and dsnn.shift.integer (the integer-only reference forward).
"""

from dsnn.shift.config import ShiftConfig
from dsnn.shift.convert import (
    convert_to_shift,
    count_weight_layers,
    eval_mode,
    export_quantized,
    last_layers_filter,
    named_shift_layers,
    project_shift_parameters,
    shift_layers,
    shift_penalty,
)
from dsnn.shift.functions import round_power_of_two, round_to_fixed, weight_from_shift_sign
from dsnn.shift.layers import ShiftConv2d, ShiftLayer, ShiftLinear

__all__ = [
    "ShiftConfig",
    "ShiftConv2d",
    "ShiftLayer",
    "ShiftLinear",
    "convert_to_shift",
    "count_weight_layers",
    "eval_mode",
    "export_quantized",
    "last_layers_filter",
    "named_shift_layers",
    "project_shift_parameters",
    "round_power_of_two",
    "round_to_fixed",
    "shift_layers",
    "shift_penalty",
    "weight_from_shift_sign",
]
