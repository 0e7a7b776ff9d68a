"""A launch plan: which alternative of a MYRIAD binding applies to a layer and what its stages get, the way the
plugin does it (reference myriad-custom-layers.md §1.3-1.9): choose the alternative, bind every kernel argument by
name from the binding, evaluate work sizes on the `dim` tensor, lay tensors out in their declared formats, link
scratch buffers between stages. The device checks that need no run (work sizes, work-group size, CMX, the stage
graph) are made here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.facts.opencl import SCALAR_TYPES
from kernelkit.facts.tensor_formats import RANK_LAYOUTS
from kernelkit.kernel.bindings import expr, myriad_read, myriad_select
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import CustomLayer, DataParam, Kernel, ScalarParam, TensorParam
from kernelkit.kernel.builder.lint import CMX_BUDGET_BYTES
from kernelkit.kernel.emulator import cache, host_fp16, layout, source as shave_source
from kernelkit.kernel.emulator.worker import Job, Launch, Region

# Work items of one group run one after another on one SHAVE. The device's own cap is not published;
# kernelkit refuses groups above 1024 work items (the shipped kernels stay far below; PoCL allows 4096).
MAX_WORK_GROUP_SIZE = 1024
# On-chip memory per work group the emulator warns above (the largest shipped 2021 kernels use about 68 KB).
CMX_WARN_BYTES = 70 * 1024

# kernel pointee type -> (numpy type of the buffer on PoCL, bytes per element on the device): every scalar whose
# size the OpenCL spec fixes but double (SHAVE has no fp64); half is held as float32 unless arithmetic="fp16".
_ELEMENT = {name: (np.float32 if name == "half" else np.dtype(t.numpy).type, t.size)
            for name, t in SCALAR_TYPES.items() if t.fixed and name != "double"}
_INT_TYPES = {"int": np.int32, "uint": np.uint32}


class NoBindingApplies(KernelkitError):
    """The plugin would use no alternative of the binding for this layer (it skips the binding)."""


def alternative_index(layers: Sequence[CustomLayer], layer: CustomLayer) -> int:
    same = [l for l in layers if l.name.lower() == layer.name.lower()]
    return next(i for i, l in enumerate(same) if l is layer)


@dataclass
class Context:
    """One layer being planned: the chosen alternative, the call's arrays and attributes, the findings so far."""

    layer: CustomLayer
    alternative: int
    inputs: list[np.ndarray]
    output_shapes: list[tuple[int, ...]]
    attrs: dict[str, str]
    precision: str
    arithmetic: str = "fp32"              # "fp16": half is 16-bit storage and arithmetic, as on SHAVE
    findings: list[Finding] = field(default_factory=list)
    layer_type: str | None = None         # the IR op type (the binding names its legacy layer type)
    samples: int = 1                      # copies of the stages the plugin makes (per_sample_stages)

    @property
    def real_half(self) -> bool:
        return self.arithmetic == "fp16"

    def storage(self, pointee: str):
        """The numpy type of one element of a `pointee` buffer as the kernels see it."""
        return np.float16 if pointee == "half" and self.real_half else _ELEMENT[pointee][0]

    def where(self, kernel: Kernel | None = None, arg: str | None = None) -> str:
        text = f"{self.layer.name} binding #{self.alternative}"
        if kernel is not None:
            text += f", stage {kernel.stage} '{kernel.entry}'"
        if arg is not None:
            text += f", argument '{arg}'"
        return text

    def error(self, message, kernel=None, arg=None, line=None, hint=None) -> KernelkitError:
        return KernelkitError(message, path=self.layer.path, line=line or (kernel.line if kernel else self.layer.line),
                              where=self.where(kernel, arg), hint=hint)

    def add(self, severity, message, kernel=None, arg=None, line=None, hint=None, plugin=None) -> None:
        self.findings.append(Finding(severity, message, path=self.layer.path,
                                     line=line or (kernel.line if kernel else self.layer.line),
                                     where=self.where(kernel, arg), hint=hint, plugin=plugin))

    def dim_shape(self, dim, kernel, what) -> tuple[int, ...]:
        shapes = self.inputs if dim.kind == "input" else self.output_shapes
        if not 0 <= dim.index < len(shapes):
            raise self.error(f"{what} dim=\"{dim}\" names {dim.kind} {dim.index}, but the layer has "
                             f"{len(shapes)} {dim.kind}(s)", kernel)
        item = shapes[dim.index]
        return tuple(item.shape) if isinstance(item, np.ndarray) else tuple(item)

    def evaluate(self, text, dim, kernel, what, line=None) -> int:
        variables = expr.size_variables(self.dim_shape(dim, kernel, what), self.attrs)
        try:
            return expr.evaluate(text, variables)
        except KernelkitError as exc:
            raise self.error(f"{what}: {exc.message}", kernel, line=line, hint=exc.hint) from None


def scalar_value(ctx: Context, kernel: Kernel, param: ScalarParam):
    """The 32-bit value the plugin serializes for a <Scalar>, as np.int32 / np.float32 (probes scalar.*,
    lookup.*, attr.* in docs/binding-verdicts.md)."""
    source, k = param.source, param.port_index
    np_type = np.int32 if param.type == "int" else np.float32

    def fail(why, hint=None):
        return ctx.error(f"Unable to deduce parameter '{param.arg_name}' from source \"{source}\": {why}",
                         kernel, param.arg_name, line=param.line, hint=hint)

    if source in ctx.attrs:
        text = ctx.attrs[source]
        if k is not None and k >= 0:
            if "," not in text:
                raise fail(f"port-index=\"{k}\" takes element {k} of a comma list, but the attribute is \"{text}\"",
                           hint="drop port-index to read the whole attribute")
            parts = text.split(",")
            text = parts[min(k, len(parts) - 1)]      # past the end: the last one (attr.list-element-2)
        number = myriad_select.read_plugin_number(text, param.type)
        if number.value is None:
            raise fail(f"the attribute value \"{text}\" does not read as {param.type} ({number.error})")
        return np_type(number.value)
    if "." in source:
        prefix, _, letter = source.partition(".")
        if len(letter) != 1 or letter.upper() not in ("B", "F", "Y", "X"):
            hint = ("the plugin reads any source with a '.' as a shape lookup, so a float literal must be "
                    f"written without one, e.g. {myriad_select.float_without_dot(source)}") \
                if myriad_select.read_plugin_number(source, "float").value is not None else None
            raise fail("a source with a '.' is a shape lookup <I|O>.<B|F|Y|X>", hint=hint)
        if k is None or k < 0:
            raise fail("a shape lookup needs port-index (which input or output)", hint="add port-index=\"0\"")
        # Only a literal uppercase I means an input; any other prefix reads an output (plugin behaviour).
        kind, shapes = ("input", ctx.inputs) if prefix == "I" else ("output", ctx.output_shapes)
        if k >= len(shapes):
            raise fail(f"{kind} {k} does not exist (the layer has {len(shapes)})")
        shape = tuple(shapes[k].shape) if kind == "input" else tuple(shapes[k])
        index = "BFYX".index(letter.upper()) - 4 + len(shape)   # counted from the end of the shape
        if len(shape) > 4 or not 0 <= index < len(shape):
            raise fail(f"{kind} {k} has rank {len(shape)}, so {letter.upper()} (dimension {index}) is out of range")
        return np.int32(shape[index])       # a dimension is an int whatever type says (lookup.type-float)
    if k is not None and k >= 0:
        raise fail("a literal source cannot have port-index")
    number = myriad_select.read_plugin_number(source, param.type)
    if number.value is None:
        if number.error == "out of range":
            raise fail(f"the number is out of range for a 32-bit {param.type}")
        raise fail("it is neither a layer attribute, a shape lookup (I.X) nor a number",
                   hint=f"layer attributes given: {', '.join(sorted(ctx.attrs)) or 'none'}")
    return np_type(number.value)


def _pack_scalar(ctx, kernel, arg, value):
    """The plugin writes 4 bytes of the XML type; the kernel reads them as its C type."""
    ctype = arg.base_type
    xml_is_float = isinstance(value, np.float32)
    if ctype in ("float", "half"):
        if not xml_is_float:
            ctx.add("warning", f"the kernel declares '{ctype}' but the binding passes type=\"int\": the kernel "
                    "reads the int's bits as a float", kernel, arg.name)
            return np.int32(value).view(np.float32)
        if ctype == "half":
            if ctx.real_half:          # the first two bytes of the float the plugin writes, as the device reads
                ctx.add("warning", "a 'half' scalar argument reads 2 of the 4 bytes the plugin writes (the low "
                        "half of the float's bits)", kernel, arg.name, hint="declare the argument as float")
                return np.uint16(np.float32(value).view(np.uint32) & 0xFFFF).view(np.float16)
            ctx.add("warning", "a 'half' scalar argument reads 2 of the 4 bytes the plugin writes; the emulator "
                    "passes the full float", kernel, arg.name, hint="declare the argument as float")
        return value
    if ctype in _INT_TYPES:
        if xml_is_float:
            ctx.add("warning", f"the kernel declares '{ctype}' but the binding passes type=\"float\": the kernel "
                    "reads the float's bits as an integer", kernel, arg.name)
            return value.view(_INT_TYPES[ctype])
        return np.int32(value).view(_INT_TYPES[ctype])
    raise ctx.error(f"scalar argument of type '{ctype}': the plugin passes only 32-bit int or float scalars",
                    kernel, arg.name, hint="declare it int or float")


# --- tensors ------------------------------------------------------------------------------------------------

def _element(ctx, kernel, arg):
    base = arg.scalar_type
    if base not in _ELEMENT:
        raise ctx.error(f"pointer argument to '{arg.base_type}' is not a tensor type the emulator knows",
                        kernel, arg.name)
    return base


def _device_tensor(array: np.ndarray, precision: str) -> np.ndarray:
    """The tensor as the VPU stores it: FP16 for floats (FP32 with precision='fp32'), I32 for integers."""
    if array.dtype.kind == "f":
        with np.errstate(over="ignore"):      # beyond ±65504 is inf in fp16, as on the device
            return array.astype(np.float16 if precision == "fp16" else np.float32)
    if array.dtype.kind in "iub" and array.dtype.itemsize >= 4 or array.dtype == np.bool_:
        return array.astype(np.int32)
    return array.copy()


@dataclass
class Data:
    """What a __global buffer holds before the run."""

    dtype: type
    count: int
    source: np.ndarray | None = None   # values copied in (cast to dtype); None: zeros, or poison
    poison: bool = False               # outputs: the NaN pattern, to find elements never written
    host_fp16: bool = False            # `source` (float32 or float16) goes in through host_fp16: rounded to fp16
    device_round: bool = False         # round the float32 values to fp16 on the device (cheaper than numpy)
    widen: bool = False                # `source` is float16: its bits go in, the worker widens them to float32
    compare: bool = False              # check after the run whether the kernels changed it

    @property
    def nbytes(self) -> int:
        return self.count * np.dtype(self.dtype).itemsize


def _input_data(ctx, kernel, arg, array: np.ndarray, fmt: str, pointee: str) -> Data:
    """A tensor as the kernel's buffer holds it: the pointee type, half as float32, rounded as the VPU stores it."""
    dtype, _ = _ELEMENT[pointee]
    compare = not arg.const       # a const pointer cannot write its tensor without a cast
    if pointee == "half" and ctx.real_half:                  # 16-bit storage: the fp16 values themselves
        if array.dtype.kind == "f":
            with np.errstate(over="ignore"):
                return Data(np.float16, array.size, layout.to_format(array.astype(np.float16, copy=False), fmt),
                             compare=compare)
    if pointee == "half" and array.dtype.kind == "f" and not compare:
        # written straight from the caller's array into the arena (a view: no copy for channel-last formats)
        view = layout.format_view(array, fmt)
        if view is array and host_fp16.available() and (array.dtype == np.float16 or
                                                          array.dtype == np.float32 and ctx.precision == "fp16"):
            return Data(np.float32, array.size, array, host_fp16=True)     # rounded in the copy
        if array.dtype == np.float16:      # already fp16: no rounding, and numpy's float16 -> float32 is slow
            return Data(np.float32, array.size, view, widen=True)
        # float32 values; with precision fp16 the worker rounds them to fp16 in place
        return Data(np.float32, array.size, view, device_round=ctx.precision == "fp16")
    device = layout.to_format(_device_tensor(array, ctx.precision), fmt)
    if pointee == "half" and device.dtype in (np.float16, np.float32):
        return Data(np.float32, device.size, device, compare=compare)
    if device.dtype == dtype:
        return Data(dtype, device.size, device, compare=compare)
    ctx.add("warning", f"the tensor is {device.dtype.name.upper()} on the device but the kernel reads it as "
            f"'{pointee}': the emulator reinterprets the bytes as the device would", kernel, arg.name,
            hint="VPU tensors are FP16 (use half*) or I32 (use int*)")
    raw = np.ascontiguousarray(device).reshape(-1).view(np.uint8)
    size = 2 if pointee == "half" else np.dtype(dtype).itemsize
    if raw.size % size:
        raise ctx.error(f"{raw.size} bytes do not divide into '{pointee}' elements", kernel, arg.name)
    if pointee == "half":
        values = raw.view(np.float16) if ctx.real_half else raw.view(np.float16).astype(np.float32)
    else:
        values = raw.view(dtype)
    return Data(values.dtype.type, values.size, values, compare=compare)


@dataclass
class Buffer:
    index: int
    kind: str                 # input | output | scratch | data
    port: int | str
    fmt: str
    pointee: str
    data: Data
    users: list[tuple[Kernel, str]] = field(default_factory=list)   # (stage kernel, argument name)
    region: Region | None = None
    guard: int = 0
    recipe: object = None     # (ctx, arrays, blobs) -> Data

    def with_data(self, data: Data | None) -> Buffer:
        # the same buffer (shared users list) with other contents; dataclasses.replace is several times slower
        return Buffer(self.index, self.kind, self.port, self.fmt, self.pointee, data, self.users, self.region,
                       self.guard, self.recipe)


# --- the plan -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedArg:
    """One kernel argument as a stage passes it: what the plugin would serialize for it."""

    name: str
    kind: str                  # "buffer" | "int" | "float" | "local"
    value: object = None       # the scalar as the binding's type gives it (before the kernel's C type); local bytes
    buffer: str | None = None  # buffers: "input" | "output" | "scratch" | "data"
    port: int | str | None = None
    format: str | None = None  # the binding's format for inputs/outputs
    size: int | None = None    # scratch buffers: FP16 elements, as the plugin allocates them


@dataclass
class Stage:
    kernel: Kernel
    program: str
    launch: Launch
    args: list[PlannedArg] = field(default_factory=list)
    sizes: tuple = ((), ())            # (global, local) in every dimension the binding gives (3 or more)


@dataclass(frozen=True)
class PlannedStage:
    stage: int
    entry: str
    global_size: tuple[int, ...]     # as the plugin launches it: groups * local, 3 dimensions or more
    local_size: tuple[int, ...]
    args: tuple[PlannedArg, ...]

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(g // l for g, l in zip(self.global_size, self.local_size))


@dataclass
class LaunchPlan:
    """What emulate() would launch for a layer, without running it."""

    layer: CustomLayer
    alternative: int                 # index among the file's alternatives for this type
    stages: list[PlannedStage]
    findings: list[Finding] = field(default_factory=list)


def per_sample_stages(layer: CustomLayer, input_shapes, output_shapes) -> int:
    """How many copies of its stages the plugin makes of the layer: N when a stage's first input or an output
    is a 2-D [N, C] tensor with N > 1 (it keeps N as a batch and splits the stage per sample), else 1."""
    copies = 1
    for kernel in layer.kernels:
        tensors = [p for p in kernel.params if isinstance(p, TensorParam)]
        first = next((p for p in tensors if p.type == "input"), None)
        shapes = [input_shapes[first.port_index]] if first and 0 <= first.port_index < len(input_shapes) else []
        shapes += [output_shapes[p.port_index] for p in tensors
                   if p.type == "output" and 0 <= p.port_index < len(output_shapes)]
        copies = max(copies, myriad_select.per_sample_split(shapes))
    return copies


def plan_stages(ctx: Context, blobs: dict[str, np.ndarray]):
    """The job (programs, launches), the buffers (each with a `recipe` that makes its contents from the call's
    arrays) and the stages. Everything but the buffer contents depends only on what the plan cache key holds."""
    job = Job()
    options = shave_source.build_options(ctx.precision)
    from kernelkit.facts.knowledge import custom_layer_facts

    absorbed = custom_layer_facts().not_inputs(ctx.layer_type or ctx.layer.name)   # not inputs of its layer
    if len(ctx.output_shapes) > 1:
        ctx.add("error", f"the MYRIAD plugin refuses the layer: it has {len(ctx.output_shapes)} outputs, and a "
                "custom layer has one (the plugin asserts outputs.size() == 1)", plugin="rejects",
                hint="bind a layer with one output (probe kernel.two-outputs)")
    input_shapes = [tuple(np.shape(x)) for i, x in enumerate(ctx.inputs) if i not in absorbed]
    refusal = myriad_select.plugin_layout_refusal(ctx.layer, input_shapes, ctx.output_shapes)
    if refusal is not None:
        ctx.add("error", f"the MYRIAD plugin refuses the layer: {refusal[0]}", hint=refusal[1], plugin="rejects")
    _check_writers(ctx)
    samples = ctx.samples = per_sample_stages(ctx.layer, [tuple(np.shape(x)) for x in ctx.inputs],
                                              ctx.output_shapes)
    never_bound = custom_layer_facts().decomposed_by_plugin(ctx.layer_type or ctx.layer.name)
    if samples > 1:
        # For a type whose opset layers the plugin never binds (it decomposes the op) the split does not
        # happen there: the emulator runs the binding as written (the kernel's math is still checked).
        ctx.add("warning" if never_bound else "error",
                f"the MYRIAD plugin splits this layer into {samples} copies of its stages, one per sample "
                f"of a 2-D [N, C] tensor with N = {samples}, each launched with the whole tensor's work sizes and "
                "scalars on one sample's slice: on the device every copy overruns its slice (the emulator runs "
                "the layer once over the whole tensor"
                + (f"; the plugin never binds an opset layer of this type: {never_bound})" if never_bound
                   else ", with checks off)"),
                hint="give the layer [1, N*C] tensors (kernelkit patch folds the batch of element-wise layers "
                     "this way), or bind a 3-D/4-D tensor", plugin="splits")
    buffers: dict[tuple, Buffer] = {}
    scratch_first: dict[int, tuple[Kernel, TensorParam]] = {}
    scratch_sizes: dict[int, int] = {}
    stages: list[Stage] = []

    def buffer(key, kind, port, fmt, pointee, recipe) -> Buffer:
        if key not in buffers:
            buffers[key] = Buffer(len(buffers), kind, port, fmt, pointee, recipe(ctx, ctx.inputs, blobs),
                                   recipe=recipe)
        return buffers[key]

    for kernel in myriad_select.run_order(ctx.layer):
        sources = cache.read_sources(ctx, kernel)
        user_text = "\n".join(text for _, text in sources)
        signatures = cache.signatures(user_text, sources[0][0])
        signature = next((s for s in signatures if s.name == kernel.entry), None)
        if signature is None:
            raise ctx.error(f"Failed to find kernel with name '{kernel.entry}' in "
                            f"{', '.join(Path(n).name for n, _ in sources)}", kernel,
                            hint=f"kernels found: {', '.join(s.name for s in signatures) or 'none'}")
        for name, text in sources:
            if "half" in text and not ctx.real_half:
                for line, cast in shave_source.short_pointer_casts(text):
                    ctx.add("warning", f"{Path(name).name}:{line} casts a pointer to '{cast}': over half data this "
                            "reads the emulator's 32-bit floats where the device has fp16 bits, so results (and "
                            "alignment) differ from the device's", kernel,
                            hint="run with arithmetic='fp16' (--arithmetic fp16), where half is 16 bits as on "
                                 "the device, or reinterpret values (as_ushortN / as_halfN use the fp16 encoding); "
                                 "ignore this if the pointer is not to half data")
        if ctx.real_half:
            program, key = cache.real_half_program(ctx, kernel, sources)
            job.program_options[key] = shave_source.REAL_HALF_BUILD_OPTIONS
        else:
            program, key = cache.transformed_program(sources, kernel.entry, options)
            job.program_options[key] = options
        job.programs[key] = program

        params = {p.arg_name: p for p in kernel.params}
        args: list[tuple] = []
        planned: list[PlannedArg] = []
        local_bytes: list[tuple[str, int]] = []
        for arg in signature.args:
            param = params.get(arg.name)
            if param is None:
                raise ctx.error(f"XML specification for {ctx.layer.name} layer has no definition for "
                                f"'{arg.name}' parameter", kernel, arg.name,
                                hint=f"add a <Tensor>, <Data> or <Scalar> with arg-name=\"{arg.name}\"")
            if isinstance(param, ScalarParam):
                if arg.pointer:
                    raise ctx.error("a <Scalar> is bound to a pointer argument", kernel, arg.name, line=param.line)
                value = scalar_value(ctx, kernel, param)
                args.append(("scalar", _pack_scalar(ctx, kernel, arg, value)))
                planned.append(PlannedArg(arg.name, "int" if isinstance(value, np.int32) else "float", value.item()))
                continue
            if not arg.pointer:
                raise ctx.error(f"a <{type(param).__name__.replace('Param', '')}> is bound to the non-pointer "
                                f"argument '{arg.base_type} {arg.name}'", kernel, arg.name, line=param.line)
            if isinstance(param, DataParam) and param.type == "local_data":
                if arg.address_space != "local":
                    raise ctx.error("local_data must bind a __local pointer argument", kernel, arg.name,
                                    line=param.line)
                size = ctx.evaluate(param.size, param.dim, kernel, f"local_data size \"{param.size}\"", param.line)
                if size <= 0:         # the plugin passes it on (local.zero); the kernel gets no memory
                    ctx.add("error", f"local_data size \"{param.size}\" is {size} bytes: the kernel gets no "
                            "__local memory", kernel, arg.name, line=param.line)
                pointee = _element(ctx, kernel, arg)
                local_bytes.append((arg.name, size))
                args.append(("local", max(size, 1) * (2 if pointee == "half" and not ctx.real_half else 1)))
                planned.append(PlannedArg(arg.name, "local", size))
                continue
            if arg.address_space == "local":
                raise ctx.error("a __local argument must be bound as <Data type=\"local_data\">", kernel, arg.name,
                                line=param.line)
            pointee = _element(ctx, kernel, arg)
            if isinstance(param, DataParam):          # type="data": a blob of the layer
                if param.source not in blobs:
                    raise ctx.error(f"the binding reads the layer blob '{param.source}', and none was given",
                                    kernel, arg.name, line=param.line,
                                    hint=f"pass blobs={{'{param.source}': array}} to emulate()")
                buf = buffer(("data", param.source, pointee), "data", param.source, "ANY", pointee,
                             lambda c, arrays, blobs, k=kernel, a=arg, s=param.source, p=pointee:
                             _input_data(c, k, a, np.asarray(blobs[s]), "ANY", p))
            elif param.type == "input":
                if not 0 <= param.port_index < len(ctx.inputs):
                    raise ctx.error(f"input port-index=\"{param.port_index}\" but the layer has "
                                    f"{len(ctx.inputs)} input(s)", kernel, arg.name, line=param.line)
                if param.port_index in absorbed:      # probe data.absorbed-input-as-tensor
                    raise ctx.error(f"input {param.port_index} of a {ctx.layer_type or ctx.layer.name} layer is a "
                                    "parameter or blob of the plugin's layer, not an input: the plugin cannot bind "
                                    "it (\"Can't bind custom layer edge\")", kernel, arg.name, line=param.line,
                                    hint="read it with <Scalar source=...> or <Data type=\"data\" source=...>")
                buf = buffer(("input", param.port_index, param.format, pointee), "input", param.port_index,
                             param.format, pointee,
                             lambda c, arrays, blobs, k=kernel, a=arg, i=param.port_index, f=param.format,
                             p=pointee: _input_data(c, k, a, arrays[i], f, p))
            elif param.type == "output":
                if not 0 <= param.port_index < len(ctx.output_shapes):
                    raise ctx.error(f"output port-index=\"{param.port_index}\" but the layer has "
                                    f"{len(ctx.output_shapes)} output(s)", kernel, arg.name, line=param.line)
                shape = ctx.output_shapes[param.port_index]
                count = math.prod(shape)
                if pointee not in ("half", "int"):
                    ctx.add("warning", f"outputs are FP16 (or I32) on the device, but the kernel writes '{pointee}' "
                            "elements: the emulator reads them as values, the device would reinterpret the bytes",
                            kernel, arg.name, line=param.line, hint="use half* (or int*) for output tensors")
                dtype = ctx.storage(pointee)
                buf = buffer(("output", param.port_index), "output", param.port_index, param.format, pointee,
                             lambda c, arrays, blobs, d=dtype, n=count: Data(d, n, poison=True))
                if buf.fmt != param.format or buf.pointee != pointee:
                    ctx.add("warning", f"output {param.port_index} is bound with format {param.format} / "
                            f"'{pointee}' here and {buf.fmt} / '{buf.pointee}' in an earlier stage; the emulator "
                            "keeps the first", kernel, arg.name, line=param.line)
            else:                                   # input_buffer / output_buffer: scratch linked by port-index
                first = scratch_first.setdefault(param.port_index, (kernel, param))
                if param.type == "input_buffer" and first[0] is kernel and first[1] is param:
                    ctx.add("warning", f"input_buffer {param.port_index} is read before any stage writes it",
                            kernel, arg.name, line=param.line)
                first_kernel, first_param = first
                size = ctx.evaluate(first_param.size, first_param.dim, first_kernel,
                                    f"{first_param.type} size \"{first_param.size}\"", first_param.line)
                device_bytes = 2 * size    # the plugin allocates `size` FP16 elements
                dtype, dev_size = ctx.storage(pointee), _ELEMENT[pointee][1]
                count = max(device_bytes // dev_size, 1)
                buf = buffer(("scratch", param.port_index), "scratch", param.port_index, "ANY", pointee,
                             lambda c, arrays, blobs, d=dtype, n=count: Data(d, n))
                scratch_sizes[param.port_index] = size
                if buf.pointee != pointee:
                    ctx.add("warning", f"scratch buffer {param.port_index} is '{buf.pointee}' in one stage and "
                            f"'{pointee}' here: the device would reinterpret the bytes, the emulator passes "
                            "the values", kernel, arg.name, line=param.line)
            buf.users.append((kernel, arg.name))
            args.append(("buf", buf.index))
            io = buf.kind in ("input", "output")
            planned.append(PlannedArg(arg.name, "buffer", buffer=buf.kind, port=buf.port,
                                      format=getattr(param, "format", None) if io else None,
                                      size=scratch_sizes.get(buf.port) if buf.kind == "scratch" else None))

        global_size, local_size = work_sizes(ctx, kernel, signature)
        _check_cmx(ctx, kernel, user_text, local_bytes)
        launch = Launch(program=key, kernel=kernel.entry, global_size=global_size[:3], local_size=local_size[:3],
                        args=args)
        job.launches.append(launch)
        stages.append(Stage(kernel, key, launch, planned, (global_size, local_size)))
    return job, buffers, stages


def work_sizes(ctx: Context, kernel: Kernel, signature) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global, local) as the plugin computes them, at least 3 dimensions each (probes worksizes.*, expr.*):
    groups = global / local truncated, global as launched = groups * local."""
    ws = kernel.work_sizes
    glob = [ctx.evaluate(t, ws.dim, kernel, f"global size \"{t}\"", ws.line) for t in ws.global_]
    loc = [ctx.evaluate(t, ws.dim, kernel, f"local size \"{t}\"", ws.line) for t in ws.local]
    if len(loc) < len(glob):
        raise ctx.error(f"global has {len(glob)} dimensions and local {len(loc)}: the plugin divides by the missing "
                        "local sizes and crashes", kernel, line=ws.line, hint="give global and local the same count")
    if len(glob) > 3:
        ctx.add("error", f"{len(glob)} work dimensions: the plugin writes them all into the blob, and a SHAVE kernel "
                "launches at most 3", kernel, line=ws.line, hint="fold the extra dimensions into three")
    # The blob holds no group count for local sizes past the global ones: one group there.
    glob += loc[len(glob):]
    glob += [1] * (3 - len(glob))
    loc += [1] * (3 - len(loc))
    launch_global = []
    for axis, (g, l) in enumerate(zip(glob, loc)):
        if l == 0:
            raise ctx.error(f"work size dimension {axis}: local 0; the plugin divides by it and crashes", kernel,
                            line=ws.line, hint="a work-group size is at least 1")
        groups = abs(g) // abs(l) * (1 if (g >= 0) == (l > 0) else -1)   # C++ division truncates toward zero
        if l < 0:                 # the plugin writes it (worksizes.local-negative); no device runs it
            ctx.add("error", f"work size dimension {axis}: local {l}; a work-group size is at least 1", kernel,
                    line=ws.line)
        elif groups <= 0:
            ctx.add("error", f"work size dimension {axis}: global {g}, local {l}: {groups} work groups, so none runs",
                    kernel, line=ws.line)
        elif g % l:
            ctx.add("error", f"global size {g} is not a multiple of local size {l} in dimension {axis}: the plugin "
                    f"launches {g // l} group(s) and drops the last {g % l} work item(s)", kernel, line=ws.line,
                    hint="round global up to a multiple of local and guard the extra work items")
        launch_global.append(groups * l)
    total = math.prod(launch_global)
    if total > limits.WORK_ITEMS.value():     # PoCL would run it for hours; the timeout is the other bound
        raise ctx.error(f"the NDRange {tuple(launch_global)} is {total:,} work items, above the "
                        f"{limits.WORK_ITEMS.value():,} the emulator runs", kernel, line=ws.line,
                        hint=f"check the global work sizes; {limits.WORK_ITEMS.hint()}")
    items = math.prod(loc[:3])
    if items > MAX_WORK_GROUP_SIZE:
        ctx.add("error", f"a work group of {items} work items ({loc[0]}x{loc[1]}x{loc[2]}) is above the "
                f"{MAX_WORK_GROUP_SIZE} kernelkit allows: one SHAVE runs the whole group", kernel, line=ws.line,
                hint="use smaller local sizes and more groups")
    required = signature.attributes.get("reqd_work_group_size")
    if required is not None:
        required = tuple(int(v) for v in required) + (1,) * (3 - len(tuple(required)))
        if tuple(loc[:3]) != required:
            ctx.add("error", f"local size {tuple(loc[:3])} differs from the kernel's reqd_work_group_size{required}: "
                    "results on the device are undefined", kernel, line=ws.line)
    return tuple(launch_global), tuple(loc)


def _check_writers(ctx: Context) -> None:
    """What the plugin's stage graph refuses (probes kernel.output-bound-twice, stages.output-written-twice,
    buffer.never-read, buffer.never-written): one writer per tensor, every scratch buffer written and read."""
    outputs, written, read = {}, set(), set()
    for kernel in ctx.layer.kernels:
        for param in kernel.params:
            if not isinstance(param, TensorParam):
                continue
            if param.type == "output":
                if param.port_index in outputs:
                    raise ctx.error(f"output {param.port_index} is bound twice (lines {outputs[param.port_index]} "
                                    f"and {param.line}): the plugin gives a tensor one writer (it asserts "
                                    "data->_producerEdge == nullptr)", kernel, param.arg_name, line=param.line,
                                    hint="write the output in one kernel; pass results through scratch buffers")
                outputs[param.port_index] = param.line
            elif param.type == "output_buffer":
                written.add(param.port_index)
            elif param.type == "input_buffer":
                read.add(param.port_index)
    for port in sorted(read - written):
        raise ctx.error(f"input_buffer {port} is read, and no stage writes it: the plugin's compile fails (its "
                        "buffer is never allocated)", hint="write it as an output_buffer in another stage")
    for port in sorted(written - read):
        raise ctx.error(f"output_buffer {port} is written, and no stage reads it: the plugin's compile fails (its "
                        "data has no consumer)", hint="read it as an input_buffer in a later stage, or drop it")


def _check_cmx(ctx: Context, kernel: Kernel, source: str, local_args: list[tuple[str, int]]) -> None:
    arrays = cache.local_arrays(source, kernel.entry)
    total = sum(size for _, size in arrays) + sum(size for _, size in local_args)
    if total <= CMX_WARN_BYTES:
        return
    parts = [f"local_data '{n}' {s} B" for n, s in local_args] + [f"__local {n}[] {s} B" for n, s in arrays]
    message = f"{total} bytes of on-chip memory (CMX) per work group: " + ", ".join(parts)
    if total > CMX_BUDGET_BYTES:
        ctx.add("error", message + f"; the budget is {CMX_BUDGET_BYTES} bytes", kernel,
                hint="tile the work so each group needs less local memory")
    else:
        ctx.add("warning", message + f"; close to the {CMX_BUDGET_BYTES}-byte budget", kernel)


def load_layers(bindings) -> tuple[list[CustomLayer], Path | None]:
    if isinstance(bindings, (str, Path)):
        return cache.cached_file("bindings", Path(bindings), myriad_read.load), Path(bindings)
    layers = list(bindings)
    return layers, (layers[0].path if layers else None)


def choose_layer(layers, source_path, layer_type: str, legacy: dict, arrays) -> CustomLayer:
    # inputs arrive in the IR's default layout for their rank; alternatives whose formats fit it come first
    layouts = [RANK_LAYOUTS.get(np.ndim(x)) for x in arrays]
    layer, reasons = myriad_select.select_with_reasons(layers, layer_type, legacy, layouts)
    if layer is None:
        raise NoBindingApplies(f"no binding alternative applies to a '{layer_type}' layer with these attributes",
                             path=source_path, where=layer_type, hint="; ".join(reasons[:4]))
    return layer


def plan_launch(bindings, layer_type: str, inputs: Sequence[np.ndarray], attrs=None, output_shapes=None, *,
                blobs=None) -> LaunchPlan:
    """The alternative, work sizes, scalar values and buffers emulate() would use for this layer, without
    running anything: what a blob compiled by the real plugin can be compared with (kernelkit plugin-check).
    Arguments as for emulate(); only the inputs' shapes and dtypes matter."""
    arrays = [np.asarray(x) for x in inputs]
    shapes = [tuple(int(d) for d in s) for s in output_shapes] if output_shapes else [tuple(arrays[0].shape)]
    legacy = myriad_select.plugin_attrs(layer_type, attrs or {})
    layers, source_path = load_layers(bindings)
    layer = choose_layer(layers, source_path, layer_type, legacy, arrays)
    ctx = Context(layer, alternative_index(layers, layer), arrays, shapes, legacy, "fp16", layer_type=layer_type)
    _, _, stages = plan_stages(ctx, dict(blobs or {}))
    planned = [PlannedStage(s.kernel.stage, s.kernel.entry, tuple(s.sizes[0]), tuple(s.sizes[1]), tuple(s.args))
               for s in stages]
    # A layer split per sample runs its stages once per sample, sample after sample, as the blob lists them.
    samples = ctx.samples
    kernels = [s.kernel for s in stages] * samples
    # the plan's layer lists its kernels in the order they run, as its stages do
    return LaunchPlan(replace(layer, kernels=kernels), ctx.alternative, planned * samples, list(ctx.findings))
