"""Preprocessing patcher: embed what Model Optimizer's --mean_values/--scale_values/--reverse_input_channels
and compile_tool's `-ip U8` would, so the model takes camera frames (U8, BGR) directly.

Order, per image input: U8 -> float Convert, channel reversal, then (x - mean) / scale. Mean and scale
values are given in the model's channel order (after the reversal), one value or one per channel.
Image inputs are the float Parameters of rank 4 (NCHW, channels on axis 1), unless named explicitly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.graph import add_const, move_consumers, op, out

NAME = "preprocess"


@dataclass
class Preprocessing:
    mean: list[float] | None = None
    scale: list[float] | None = None
    reverse_channels: bool = False
    u8_input: bool = False
    inputs: list[str] = field(default_factory=list)     # Parameter names; empty: every image input

    @property
    def active(self) -> bool:
        return bool(self.mean or self.scale or self.reverse_channels or self.u8_input)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_values(text: str | None, option: str) -> list[float] | None:
    """"127.5" or "123.7,116.3,103.5" (brackets allowed, as Model Optimizer writes them)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.strip().strip("[]").split(",") if v.strip()]
    except ValueError:
        raise KernelkitError(f"{text!r} is not a list of numbers", where=option,
                             hint=f"e.g. {option} 127.5 or {option} 123.7,116.3,103.5") from None
    if not values:
        raise KernelkitError("no values given", where=option, hint=f"e.g. {option} 127.5")
    if option == "--scale" and any(v == 0 for v in values):
        raise KernelkitError("a scale of 0 divides by zero", where=option)
    return values


def _image_inputs(model, options: Preprocessing) -> list:
    params = model.parameters()
    if options.inputs:
        chosen = []
        for name in options.inputs:
            found = next((p for p in params if p.name == name or name in p.outputs[0].names), None)
            if found is None:
                raise KernelkitError(f"{name!r} is not an input of the model", path=model.path,
                                     where="--preprocess-input", hint=f"inputs: {', '.join(p.name for p in params)}")
            chosen.append(found)
        return chosen
    return [p for p in params if len(p.outputs[0].dims) == 4 and p.outputs[0].element_type in ("f32", "f16")]


def _per_channel(values: list[float], channels: int, option: str, layer, dtype) -> np.ndarray:
    if len(values) not in (1, channels):
        raise KernelkitError(f"{len(values)} values for {channels} channels", where=f"{option} (input {layer.name!r})",
                             hint="give one value, or one per channel")
    return np.array(values * (channels if len(values) == 1 else 1), dtype=dtype).reshape(1, channels, 1, 1)


def apply(ctx: PatchContext, options: Preprocessing) -> None:
    if not options.active:
        return
    model = ctx.model
    targets = _image_inputs(model, options)
    if not targets:
        raise KernelkitError("the model has no image input (a float input of rank 4, NCHW) to preprocess",
                             path=model.path, where="--mean/--scale/--reverse-channels/--u8-input")
    for param in targets:
        port = param.outputs[0]
        element_type = port.element_type
        dtype = np.float16 if element_type == "f16" else np.float32
        channels = port.dims[1]
        original = out(param)
        consumers_before = [c for c, _ in model.consumers(param, port.id)]
        value = original
        steps = []
        if options.u8_input:
            value = op(model, "Convert", f"{param.name}/from_u8", [value], {"destination_type": element_type})
            steps.append(f"U8 input, Convert to {element_type}")
        if options.reverse_channels:
            order = add_const(model, np.arange(channels - 1, -1, -1, dtype=np.int32), f"{param.name}/reversed")
            axis = add_const(model, np.array(1, dtype=np.int32), f"{param.name}/channel_axis")
            value = op(model, "Gather", f"{param.name}/reverse_channels", [value, order, axis])
            steps.append("reverse channels")
        if options.mean:
            mean = add_const(model, _per_channel(options.mean, channels, "--mean", param, dtype), f"{param.name}/mean")
            value = op(model, "Subtract", f"{param.name}/minus_mean", [value, mean], {"auto_broadcast": "numpy"})
            steps.append(f"subtract mean {options.mean}")
        if options.scale:
            scale = add_const(model, _per_channel(options.scale, channels, "--scale", param, dtype),
                              f"{param.name}/scale")
            value = op(model, "Divide", f"{param.name}/over_scale", [value, scale],
                       {"auto_broadcast": "numpy", "m_pythondiv": "true"})
            steps.append(f"divide by scale {options.scale}")
        first_new = {c.id for c, _ in model.consumers(param, port.id)} - {c.id for c in consumers_before}
        move_consumers(model, original, value, skip=[model.layer(i) for i in first_new])
        if options.u8_input:
            param.attrs["element_type"] = "u8"
            port.precision = "u8"
            for consumer, in_port in model.consumers(param, port.id):
                in_port.precision = "u8"
        ctx.record(NAME, param.name, f"{element_type} input {port.dims}", "; ".join(steps))
