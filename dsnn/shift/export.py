"""Multiplication-free export of a DSNN (Elhoushi et al. 2021; Hennig et al., section 2.1):
every shift-layer weight s * 2^p is stored as its sign and shift in `weight_bits` bits;
what stays float (BatchNorm, unconverted layers, biases, buffers) is kept as float32.

Code of one weight, b = weight_bits: the high bit is the sign (1 = negative), the low
b - 1 bits hold the right shift -p, p in [min_shift, 0] (dsnn/shift/config.py):

    Q:   -p in [0, 2^(b-1) - 1]    every one of the 2^b codes is a weight; W = 0 cannot be stored
    PS:  -p in [0, 2^(b-1) - 2]    magnitude code 2^(b-1) - 1 (sign bit 0) is the weight 0

The codes of a layer are packed b bits each, most significant bit first, into bytes.
`export_state` gives the export as a dict:

    format     "dsnn-shift/1"
    spec       how to rebuild the network (dsnn/network.py), plain data only: model
               (a registered name and its arguments), in_channels, num_classes,
               shift_depth, quantization (ShiftConfig fields), data (the registered data
               module and its arguments, to rebuild the test split); None when the caller
               passes the network to `load_exported`
    run_config the run's config as YAML text (or None), for the record: loading never
               instantiates it (evaluate.py checks its targets first, dsnn/safe_files.py)
    shift      layer name -> {"shape", "codes" (packed uint8), "config"}
    float      the remaining state_dict entries (float32 and integer buffers)

The file (`save_exported`) is that dict for `torch.save`, safe to read with
`weights_only=True`, with the codes of all layers in one uint8 tensor and the float parts
in one tensor per dtype (each tensor record costs torch.save a few hundred bytes).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dsnn.shift.config import ShiftConfig
from dsnn.shift.convert import named_shift_layers
from dsnn.shift.layers import ShiftLayer

FORMAT = "dsnn-shift/1"


def encode_weight(weight: Tensor, config: ShiftConfig) -> Tensor:
    """uint8 codes (shape of `weight`) of a quantized weight (entries 0 or ±2^p)."""
    b = config.weight_bits
    magnitude = weight.abs()
    zero = magnitude == 0
    if config.shift_type == "Q" and bool(zero.any()):
        raise ValueError("a DeepShift-Q weight is exactly 0: Q codes have no zero")
    # -p = -log2|W| exactly for powers of two; zeros get the reserved code below
    shift = torch.where(zero, 0.0, -torch.log2(torch.where(zero, 1.0, magnitude)))
    right = shift.round().to(torch.int16)
    if not torch.equal(right.to(shift.dtype), shift) or int(right.max()) > -config.min_shift:
        raise ValueError("weight is not a quantized shift weight (call export_quantized first)")
    right = torch.where(zero, 2 ** (b - 1) - 1, right)
    sign = (weight < 0).to(torch.int16)
    return (sign * 2 ** (b - 1) + right).to(torch.uint8)


def decode_weight(codes: Tensor, config: ShiftConfig, dtype=torch.float32) -> Tensor:
    """The weights (0 or ±2^p) that `codes` stand for."""
    b = config.weight_bits
    codes = codes.to(torch.int16)
    negative, right = codes >> (b - 1), codes & (2 ** (b - 1) - 1)
    weight = torch.exp2(-right.to(dtype)) * (1 - 2 * negative).to(dtype)
    if config.shift_type == "PS":
        weight = torch.where(right == 2 ** (b - 1) - 1, torch.zeros((), dtype=dtype), weight)
    return weight


def pack_bits(codes: Tensor, bits: int) -> Tensor:
    """Pack integer codes < 2^bits into bytes, `bits` per code, most significant bit first."""
    flat = codes.flatten().to(torch.uint8)
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"a code does not fit {bits} bits")
    powers = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.uint8)
    stream = (flat[:, None] & powers).ne(0).flatten()  # (n * bits,) bools
    stream = torch.cat([stream, stream.new_zeros(-stream.numel() % 8)])
    weights = 2 ** torch.arange(7, -1, -1, dtype=torch.int16)
    return (stream.view(-1, 8).to(torch.int16) * weights).sum(1).to(torch.uint8)


def unpack_bits(packed: Tensor, bits: int, count: int) -> Tensor:
    """The first `count` codes of `bits` bits each from `pack_bits`' bytes (uint8, 1-D)."""
    powers = 2 ** torch.arange(7, -1, -1, dtype=torch.uint8)
    stream = (packed[:, None] & powers).ne(0).flatten()[: count * bits]
    weights = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.int16)
    return (stream.view(count, bits).to(torch.int16) * weights).sum(1).to(torch.uint8)


def _shift_keys(name: str, layer: ShiftLayer) -> list[str]:
    """state_dict keys of a shift layer's weight (Q: weight; PS: shift, sign)."""
    prefix = f"{name}." if name else ""
    fields = ["weight"] if layer.config.shift_type == "Q" else ["shift", "sign"]
    return [prefix + f for f in fields]


def export_state(
    model: nn.Module, spec: dict[str, Any] | None = None, run_config: str | None = None
) -> dict[str, Any]:
    """The export dict of `model` (see the module docstring); the model is not changed."""
    shift, skip = {}, set()
    for name, layer in named_shift_layers(model).items():
        weight = layer.exact_weight().cpu()
        codes = encode_weight(weight, layer.config)
        shift[name] = {
            "shape": list(weight.shape),
            "codes": pack_bits(codes, layer.config.weight_bits),
            "config": layer.config.as_dict(),
        }
        skip.update(_shift_keys(name, layer))
    floats = {k: v.detach().cpu() for k, v in model.state_dict().items() if k not in skip}
    return {
        "format": FORMAT,
        "spec": spec,
        "run_config": run_config,
        "shift": shift,
        "float": floats,
    }


def save_exported(
    model: nn.Module,
    path: str | Path,
    spec: dict[str, Any] | None = None,
    run_config: str | None = None,
) -> int:
    """Write the export of `model` to `path`; returns the file size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_to_file(export_state(model, spec, run_config)), path)
    return path.stat().st_size


def _to_file(state: dict[str, Any]) -> dict[str, Any]:
    """One buffer for all codes and one per dtype for the float parts: torch.save spends a
    few hundred bytes on every tensor record, a lot next to a thin network's codes."""
    shift, offset = {}, 0
    for name, entry in state["shift"].items():
        n = entry["codes"].numel()
        shift[name] = {"shape": entry["shape"], "config": entry["config"], "offset": offset, "n": n}
        offset += n
    codes = [e["codes"] for e in state["shift"].values()]
    index, data = [], {}
    for key, tensor in state["float"].items():
        dtype = str(tensor.dtype).removeprefix("torch.")
        start = sum(t.numel() for t in data.get(dtype, []))
        index.append([key, dtype, list(tensor.shape), start])
        data.setdefault(dtype, []).append(tensor.flatten())
    return {
        **{k: state[k] for k in ("format", "spec", "run_config")},
        "shift": shift,
        "codes": torch.cat(codes) if codes else torch.zeros(0, dtype=torch.uint8),
        "float_index": index,
        "float_data": {dtype: torch.cat(parts) for dtype, parts in data.items()},
    }


def _from_file(stored: dict[str, Any]) -> dict[str, Any]:
    shift = {
        name: {
            "shape": e["shape"],
            "config": e["config"],
            "codes": stored["codes"][e["offset"] : e["offset"] + e["n"]],
        }
        for name, e in stored["shift"].items()
    }
    floats = {}
    for key, dtype, shape, start in stored["float_index"]:
        n = torch.Size(shape).numel()
        floats[key] = stored["float_data"][dtype][start : start + n].view(shape).clone()
    return {**{k: stored[k] for k in ("format", "spec", "run_config")}, "shift": shift,
            "float": floats}  # fmt: skip


def read_exported(path: str | Path) -> dict[str, Any]:
    """`export_state`'s dict back from a file written by `save_exported`."""
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        raise ValueError(f"{path} is not a DSNN export ({FORMAT})")
    return _from_file(stored)


@torch.no_grad()
def load_exported(path: str | Path | dict, model: nn.Module | None = None) -> nn.Module:
    """The network of an export (a path or `export_state`'s dict), in evaluation mode.

    `model` (same architecture) receives the weights; None builds it from the file's spec
    (with dsnn.network.build_from_spec).
    """
    state = read_exported(path) if isinstance(path, (str, Path)) else path
    if model is None:
        if state["spec"] is None:
            raise ValueError("the export has no spec: pass the network as `model`")
        # imported on use: the builder sits above dsnn.shift (it knows configs and Lightning)
        from dsnn.network import build_from_spec

        where = "the export" if isinstance(path, dict) else str(path)
        model = build_from_spec(state["spec"], where=where)
    layers = named_shift_layers(model)
    if set(layers) != set(state["shift"]):
        raise ValueError(
            f"shift layers differ: file {sorted(state['shift'])}, model {sorted(layers)}"
        )
    target = dict(state["float"])
    for name, layer in layers.items():
        entry = state["shift"][name]
        config = ShiftConfig(**entry["config"])
        if config != layer.config:
            raise ValueError(f"{name}: file has {config}, model has {layer.config}")
        shape = torch.Size(entry["shape"])
        codes = unpack_bits(entry["codes"], config.weight_bits, shape.numel()).view(shape)
        weight = decode_weight(codes, config)
        keys = _shift_keys(name, layer)
        if config.shift_type == "Q":
            target[keys[0]] = weight
        else:
            magnitude = weight.abs()
            # the zero weight: sign 0, any shift in range (min_shift here)
            target[keys[0]] = torch.where(
                magnitude > 0, torch.log2(magnitude.clamp_min(2.0**config.min_shift)),
                torch.full_like(magnitude, float(config.min_shift)),
            )  # fmt: skip
            target[keys[1]] = torch.sign(weight)
    model.load_state_dict(target)
    return model.eval()


def size_report(model: nn.Module, exported_bytes: int | None = None) -> dict[str, float]:
    """Sizes: the float32 checkpoint of this network (every weight one float32, written by
    torch.save), the payload (packed codes + float parts, no container), the export file."""
    state = export_state(model)
    float_weights = dict(state["float"])
    for name, entry in state["shift"].items():
        float_weights[f"{name}.weight"] = torch.zeros(entry["shape"])
    buffer = io.BytesIO()
    torch.save(float_weights, buffer)
    codes = sum(e["codes"].numel() for e in state["shift"].values())
    float_bytes = sum(v.numel() * v.element_size() for v in state["float"].values())
    report = {
        "size/shift_weights": float(
            sum(torch.Size(e["shape"]).numel() for e in state["shift"].values())
        ),
        "size/float_values": float(sum(v.numel() for v in state["float"].values())),
        "size/float32_checkpoint_bytes": float(buffer.getbuffer().nbytes),
        "size/payload_bytes": float(codes + float_bytes),
    }
    if exported_bytes is not None:
        report["size/export_bytes"] = float(exported_bytes)
        report["size/export_ratio"] = exported_bytes / report["size/float32_checkpoint_bytes"]
    return report
