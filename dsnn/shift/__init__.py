"""DeepShift (Elhoushi et al. 2021) for this project: straight-through quantizers,
shift layers (DeepShift-Q and DeepShift-PS) and the conversion of float networks.

    config = ShiftConfig(shift_type="PS", weight_bits=5)
    model = convert_to_shift(model, shift_depth=20, config=config)
    ...  # each step: loss + weight_decay * shift_penalty(model); step; project_shift_parameters
    export_quantized(model)  # before saving: parameters := their quantized values
"""

from dsnn.shift.config import ShiftConfig
from dsnn.shift.convert import (
    convert_to_shift,
    count_weight_layers,
    export_quantized,
    last_layers_filter,
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
    "export_quantized",
    "last_layers_filter",
    "project_shift_parameters",
    "round_power_of_two",
    "round_to_fixed",
    "shift_layers",
    "shift_penalty",
    "weight_from_shift_sign",
]
