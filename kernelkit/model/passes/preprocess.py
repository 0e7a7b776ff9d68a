"""Preprocessing patcher: embed what Model Optimizer's --mean_values/--scale_values/--reverse_input_channels
and compile_tool's `-ip U8` would, so the model takes camera frames (U8, BGR) directly.

Order, per image input: U8 -> float Convert, channel reversal, then (x - mean) / scale. Mean and scale
values are given in the model's channel order (after the reversal), one value or one per channel.
Image inputs are the float Parameters of rank 4, unless named explicitly. Each acts on the channel axis of the
input's layout: given (`--layout NAME=NCHW|NHWC`, as Model Optimizer's --layout) or inferred from the shape
(the one of axes 1 and 3 holding 1, 3 or 4 entries), else from the source format (TFLite and TensorFlow
images are NHWC, ONNX and IR ones NCHW). When both axes could be the channels, preprocessing refuses to guess.
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
    layouts: dict[str, str] = field(default_factory=dict)   # --layout: input name ("" = every input) -> layout

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


LAYOUTS = ("NCHW", "NHWC")
IMAGE_CHANNELS = (1, 3, 4)                 # grey, BGR/RGB, BGRA: what a channel axis of an image holds
NHWC_FORMATS = {"tflite": "TFLite", "tf": "TensorFlow"}


@dataclass
class InputLayout:
    """The layout of one model input, as patch-report.json's "inputs" states it."""

    name: str
    shape: list[int]
    layout: str | None             # NCHW | NHWC; None: not an image input or ambiguous
    source: str | None             # "given" (--layout) | "inferred"
    why: str

    @property
    def channel_axis(self) -> int:
        return self.layout.index("C")

    def to_dict(self) -> dict:
        return asdict(self)


def parse_layouts(items: list[str]) -> dict[str, str]:
    """`--layout NAME=NHWC` (per input) or `--layout NHWC` (every input); letters in either case."""
    layouts = {}
    for item in items:
        name, _, layout = item.rpartition("=")
        layout = layout.strip().upper()
        if layout not in LAYOUTS:
            raise KernelkitError(f"{item!r}: the layout must be {' or '.join(LAYOUTS)}", where="--layout",
                                 hint="e.g. --layout input=NHWC (or --layout NHWC for every image input)")
        if name.strip() in layouts and layouts[name.strip()] != layout:
            raise KernelkitError(f"{item!r} contradicts an earlier --layout for the same input", where="--layout")
        layouts[name.strip()] = layout
    return layouts


def resolve_layout(name: str, dims: list[int], source_format: str | None, given: str | None) -> InputLayout:
    """Where the channels of input `name` are: given, or inferred; never guessed (layout None)."""
    dims = list(dims)
    if given:
        if len(dims) != 4:
            raise KernelkitError(f"input {name!r} has rank {len(dims)}; {given} is a layout of rank 4",
                                 where="--layout", hint="give --layout for 4-D image inputs only")
        return InputLayout(name, dims, given, "given", "--layout")
    if len(dims) != 4:
        return InputLayout(name, dims, None, None, f"rank {len(dims)}: not an image input")
    plausible = [axis for axis in (1, 3) if dims[axis] in IMAGE_CHANNELS]
    if len(plausible) == 2:
        return InputLayout(name, dims, None, None, f"axis 1 ({dims[1]}) and axis 3 ({dims[3]}) could both be "
                                                   "the channels")
    if plausible:
        layout = "NCHW" if plausible[0] == 1 else "NHWC"
        axis, other = plausible[0], 4 - plausible[0]
        return InputLayout(name, dims, layout, "inferred", f"{dims[axis]} channels on axis {axis}; axis {other} "
                                                           f"has {dims[other]} entries, too many for channels")
    if source_format in NHWC_FORMATS:
        return InputLayout(name, dims, "NHWC", "inferred", f"{NHWC_FORMATS[source_format]} images are NHWC")
    return InputLayout(name, dims, "NCHW", "inferred", "neither axis 1 nor 3 has 1, 3 or 4 entries; NCHW, the "
                                                       "convention of ONNX and OpenVINO IR")


def input_layouts(model, options: Preprocessing) -> list[InputLayout]:
    """The layout of every input of `model` (before preprocessing), `--layout` applied."""
    params = model.parameters()
    given = dict(options.layouts)
    everyone = given.pop("", None)
    for name in given:
        if not any(p.name == name or name in p.outputs[0].names for p in params):
            raise KernelkitError(f"--layout names {name!r}, which is not an input of the model", path=model.path,
                                 where="--layout", hint=f"inputs: {', '.join(p.name for p in params)}")
    result = []
    for param in params:
        dims = param.outputs[0].dims
        mine = next((v for k, v in given.items() if k == param.name or k in param.outputs[0].names), None)
        if mine is None and everyone and len(dims) == 4:
            mine = everyone
        result.append(resolve_layout(param.name, dims, getattr(model, "source_format", None), mine))
    return result


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


def _per_channel(values: list[float], layout: InputLayout, option: str, dtype) -> np.ndarray:
    channels = layout.shape[layout.channel_axis]
    if len(values) == 1 and layout.source is None:      # no channel axis known: one value for every element
        return np.array(values, dtype=dtype).reshape(1, 1, 1, 1)
    if len(values) not in (1, channels):
        raise KernelkitError(f"{len(values)} values for {channels} channels",
                             where=f"{option} (input {layout.name!r}, {layout.layout})",
                             hint="give one value, or one per channel")
    shape = [1, 1, 1, 1]
    shape[layout.channel_axis] = channels
    return np.array(values * (channels if len(values) == 1 else 1), dtype=dtype).reshape(shape)


def apply(ctx: PatchContext, options: Preprocessing) -> list[InputLayout]:
    """Embed the preprocessing; the layout of every input (patch-report.json's "inputs")."""
    model = ctx.model
    layouts = input_layouts(model, options)
    if not options.active:
        return layouts
    targets = _image_inputs(model, options)
    if not targets:
        raise KernelkitError("the model has no image input (a float input of rank 4) to preprocess",
                             path=model.path, where="--mean/--scale/--reverse-channels/--u8-input")
    by_name = {layout.name: layout for layout in layouts}
    for param in targets:
        layout = by_name[param.name]
        per_channel = options.reverse_channels or len(options.mean or []) > 1 or len(options.scale or []) > 1
        if layout.layout is None and per_channel:
            raise KernelkitError(f"input {param.name!r} {layout.shape}: which axis holds the channels is ambiguous "
                                 f"({layout.why})", path=model.path, where="--layout",
                                 hint=f"say it: --layout {param.name}=NCHW or --layout {param.name}=NHWC")
        if layout.layout is None:       # one mean / scale value, or U8 only: no channel axis needed
            layout = InputLayout(layout.name, layout.shape, "NCHW", None, layout.why)
        port = param.outputs[0]
        element_type = port.element_type
        dtype = np.float16 if element_type == "f16" else np.float32
        axis = layout.channel_axis
        channels = port.dims[axis]
        original = out(param)
        consumers_before = [c for c, _ in model.consumers(param, port.id)]
        value = original
        steps = []
        if options.u8_input:
            value = op(model, "Convert", f"{param.name}/from_u8", [value], {"destination_type": element_type})
            steps.append(f"U8 input, Convert to {element_type}")
        if options.reverse_channels:
            order = add_const(model, np.arange(channels - 1, -1, -1, dtype=np.int32), f"{param.name}/reversed")
            axis_const = add_const(model, np.array(axis, dtype=np.int32), f"{param.name}/channel_axis")
            value = op(model, "Gather", f"{param.name}/reverse_channels", [value, order, axis_const])
            steps.append(f"reverse channels (axis {axis})")
        if options.mean:
            mean = add_const(model, _per_channel(options.mean, layout, "--mean", dtype), f"{param.name}/mean")
            value = op(model, "Subtract", f"{param.name}/minus_mean", [value, mean], {"auto_broadcast": "numpy"})
            steps.append(f"subtract mean {options.mean}")
        if options.scale:
            scale = add_const(model, _per_channel(options.scale, layout, "--scale", dtype), f"{param.name}/scale")
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
        stated = f" {layout.layout} ({layout.source})" if layout.source else ""
        ctx.record(NAME, param.name, f"{element_type} input {port.dims}{stated}", "; ".join(steps))
    return layouts
