"""Which alternative of a MYRIAD binding the plugin applies to a layer, and what it makes of the layer: its legacy
type and attributes, numbers read as stoi/stof read them, <Where> rules, the shapes and batches it takes
(flattened_batch, per_sample_split, network_batch), the layouts it refuses, the order it runs the stages in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.tensor_formats import RANK_LAYOUTS, TENSOR_FORMATS
from kernelkit.kernel.bindings import expr
from kernelkit.kernel.bindings.model import CustomLayer, Kernel, TensorParam

def legacy_param_string(value) -> str:
    """How a layer attribute reads in the plugin's legacy params map (a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(legacy_param_string(v) for v in value)
    return str(value)


def _as_number(text: str) -> float | None:
    text = text.strip()
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return None


# --- how the plugin reads numbers: C++'s stoi / stof, which take the longest leading number ---------------

_LEADING_INT = re.compile(r"\s*[+-]?\d+")
_LEADING_FLOAT = re.compile(r"\s*[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?|"
                            r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)", re.IGNORECASE)
FLOAT32_MAX, FLOAT32_MIN_NORMAL = 3.4028234663852886e38, 1.1754943508222875e-38


@dataclass(frozen=True)
class PluginNumber:
    """A string as the plugin's stoi/stof read it: the value, the text it used, or why it throws."""

    value: int | float | None
    used: str = ""
    error: str | None = None          # "not a number" | "out of range": the plugin's compile fails

    @property
    def partial(self) -> bool:
        return self.value is not None and self.used.strip() != self.text.strip()

    text: str = ""


def read_plugin_number(text: str, kind: str) -> PluginNumber:
    """`text` read as the plugin reads a scalar, a <Where> bound or a stage: std::stoi for "int", std::stof
    for "float" (leading whitespace and sign, the longest number at the start, the rest ignored; a value
    outside int32 / float32, or a float32 underflow, throws). Probes scalar.* in docs/binding-verdicts.md."""
    match = (_LEADING_INT if kind == "int" else _LEADING_FLOAT).match(text)
    if match is None:
        return PluginNumber(None, "", "not a number", text)
    used = match.group(0)
    if kind == "int":
        value = int(used)
        if not -(2 ** 31) <= value < 2 ** 31:
            return PluginNumber(None, used, "out of range", text)
        return PluginNumber(value, used, None, text)
    number = float.fromhex(used.strip()) if "x" in used.lower() else float(used)
    if math.isfinite(number) and number != 0 and not FLOAT32_MIN_NORMAL <= abs(number) <= FLOAT32_MAX:
        return PluginNumber(None, used, "out of range", text)
    return PluginNumber(expr.float32(number), used, None, text)


_WHERE_OPERATORS = (">=", "<=", "!=", ">", "<")


def where_rule_holds(rule: str, value: str) -> bool:
    """One <Where key="rule"> against the layer's value for key (both strings), as the plugin decides it.

    A value that reads fully as a number is compared numerically with the rule read by stof after an optional
    >=, <=, !=, > or <: "0.5x" is 0.5; a rule stof cannot read ("abc", "=0.5") makes the plugin's compile fail
    (KernelkitError). Any other value is compared as a string, without case. Probes where.*."""
    number = _as_number(value)
    if number is None:
        return rule.strip().lower() == value.strip().lower()
    op = next((o for o in _WHERE_OPERATORS if rule.startswith(o)), "")
    bound = read_plugin_number(rule[len(op):], "float")
    if bound.value is None:
        raise KernelkitError(f"<Where ...=\"{rule}\">: the layer's value {value} is a number, and the plugin cannot "
                             f"read {rule[len(op):]!r} as one ({bound.error}): its compile fails",
                             hint="write a number, optionally after >=, <=, !=, > or <")
    number = expr.float32(number)
    return {">=": number >= bound.value, "<=": number <= bound.value, "!=": number != bound.value,
            ">": number > bound.value, "<": number < bound.value, "": number == bound.value}[op]


def plugin_layer_type(layer_type: str) -> str:
    """The type of the legacy layer the plugin makes of an IR op (MaxPool -> Pooling): what a binding's name
    must be. Measured op by op (data/custom-layers.toml [legacy_layers]); others keep their name."""
    from kernelkit.facts.knowledge import custom_layer_facts

    return custom_layer_facts().legacy_type(layer_type)


def plugin_attrs(layer_type: str, attrs: Mapping[str, object]) -> dict[str, str]:
    """A layer's attributes as the plugin's legacy layer holds them (renamed, dropped, added; booleans spelled
    as that layer spells them), as strings. Applying it twice changes nothing."""
    from kernelkit.facts.knowledge import custom_layer_facts

    legacy = custom_layer_facts().legacy_attrs(layer_type, {str(k): legacy_param_string(v) for k, v in attrs.items()})
    return {k: legacy_param_string(v) for k, v in legacy.items()}


def why_unsuitable(layer: CustomLayer, attrs: Mapping[str, object]) -> str | None:
    """None when the plugin would consider `layer` for a layer with `attrs`, else the reason it would not.
    KernelkitError when the plugin's compile fails while it decides (a <Where> bound it cannot read)."""
    params = {k: legacy_param_string(v) for k, v in attrs.items()}
    for key, rule in layer.where.items():
        if key not in params:
            return f"<Where {key}=\"{rule}\">: the layer has no attribute '{key}'"
        try:
            holds = where_rule_holds(rule, params[key])
        except KernelkitError as exc:         # the binding file is at fault: say which and where
            raise KernelkitError(exc.message, path=layer.path, line=layer.line, hint=exc.hint) from None
        if not holds:
            return f"<Where {key}=\"{rule}\">: the layer has {key}=\"{params[key]}\""
    variables = expr.size_variables([1, 1, 1, 1], attrs)
    for kernel in layer.kernels:
        for text in kernel.work_sizes.global_ + kernel.work_sizes.local:
            try:                  # only what the plugin's parser refuses; evaluation comes with the compile
                expr.parse(text, variables, strict=False)
            except expr.ExprError as exc:
                return f"<Kernel entry=\"{kernel.entry}\"> work size: {exc.message}"
    return None


# What the real 2021.4 plugin does with a custom layer's tensors, as `kernelkit plugin-check` saw it
# (docs/bindings.md, "What the real plugin refuses"); the ranks and format orders are facts.tensor_formats.
def plugin_layout_refusal(layer: CustomLayer, input_shapes: Sequence[Sequence[int]],
                          output_shapes: Sequence[Sequence[int]]) -> tuple[str, str] | None:
    """(why, what to do) when the real 2021.4 plugin refuses this binding for a layer of these shapes, else None.

    - Every input and output of the layer, bound or not, needs rank 2, 3 or 4: the plugin names the layouts
      of rank 0, 1 and 5 tensors nothing it can bind ("Tensor node has an invalid format").
    - BFYX/BYXF force a 4-D order and FYX/YXF a 3-D one: on a tensor of another rank the plugin asserts
      (isOrdersCompatible). BF and ANY force no order.
    - The first of a stage's data inputs must not be ANY: the plugin then keeps no batch information for the
      stage and asserts (batchSize > 0).
    - Every data input of a stage bound with a format other than ANY must have the first one's batch N
      (dimension 0 of a 2-D or 4-D tensor; a 3-D one has none, N = 1): the plugin asserts batchSize == N of
      each (probes batch.*)."""
    for kind, shapes in (("input", input_shapes), ("output", output_shapes)):
        for port, shape in enumerate(shapes):
            if len(shape) not in RANK_LAYOUTS:
                return (f"{kind} {port} has rank {len(shape)} ({'x'.join(map(str, shape)) or 'scalar'}); a custom "
                        "layer's inputs and outputs need rank 2, 3 or 4 (the plugin reports \"Tensor node has an "
                        "invalid format\")",
                        "reshape constant inputs to [1, N] (kernelkit patch does) or the tensor to rank 2-4")
    for kernel in layer.kernels:
        stage_inputs = []
        for param in kernel.params:
            if not isinstance(param, TensorParam):
                continue
            if param.type in ("input", "output"):
                shapes = input_shapes if param.type == "input" else output_shapes
                if param.port_index < len(shapes):
                    rank = len(shapes[param.port_index])
                    wanted = getattr(TENSOR_FORMATS.get(param.format), "rank", None)
                    if wanted is not None and wanted != rank:
                        return (f"<Tensor arg-name=\"{param.arg_name}\" format=\"{param.format}\"> forces a "
                                f"{wanted}-D order on {param.type} {param.port_index} of rank {rank} (the plugin "
                                "asserts isOrdersCompatible)",
                                "use BF (any rank, no reorder) or the format of that rank: BFYX/BYXF for 4-D, "
                                "FYX/YXF for 3-D")
            if param.type in ("input", "input_buffer"):
                stage_inputs.append(param)
        if stage_inputs and stage_inputs[0].type == "input" and stage_inputs[0].format == "ANY":
            return (f"stage {kernel.stage}: its first input <Tensor arg-name=\"{stage_inputs[0].arg_name}\"> is "
                    "format ANY, so the plugin keeps no batch information for the stage (it asserts "
                    "batchSize > 0)", "give the first input a format (BF binds any rank without a reorder)")
        # (an ANY input keeps no batch information and is not compared; seen with the library's own
        # ScatterNDUpdate indices)
        data = [(p, input_shapes[p.port_index]) for i, p in enumerate(stage_inputs)
                if p.type == "input" and p.port_index < len(input_shapes) and (i == 0 or p.format != "ANY")]
        batches = [int(shape[0]) if len(shape) in (2, 4) else 1 for _, shape in data]
        for (param, shape), batch in zip(data[1:], batches[1:]):
            if batch != batches[0]:
                return (f"stage {kernel.stage}: input {param.port_index} <Tensor arg-name=\"{param.arg_name}\"> "
                        f"of shape {list(shape)} has batch {batch}, the stage's first input {batches[0]} (the "
                        "plugin asserts batchSize == N of every input)",
                        "give the input a leading 1 ([1, N] for a 2-D one) or make it 3-D")
    return None


def plugin_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The shape a rank-0 or rank-1 tensor takes for a custom layer: [1, N] (the same B/F/Y/X view, in the NC
    layout the plugin can bind); other ranks are kept."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (1, shape[0])
    return shape


def flattened_batch(shape: Sequence[int]) -> tuple[int, ...]:
    """The same elements with no batch: N folded into the next dimension ([N, C, ...] -> [1, N*C, ...]). An
    element-wise layer keeps its meaning this way, and the plugin, which splits a stage per sample of a batch
    it cannot take off the network, then runs it once."""
    shape = tuple(int(d) for d in shape)
    return (1, shape[0] * shape[1]) + shape[2:] if len(shape) >= 2 and shape[0] > 1 else shape


def per_sample_split(shapes: Sequence[Sequence[int]], *, batch_kept_on_4d: bool = False) -> int:
    """How many copies of a stage the plugin makes, given the shapes of the stage's first input and of its
    outputs: N when one of them keeps a batch N > 1 (a 2-D [N, C] tensor, or a 4-D one when the network keeps
    its batch), each copy on one sample with the whole tensor's work sizes (probe lookup.rank2-batch3); else 1."""
    kept = {int(s[0]) for s in shapes if (len(s) == 2 or len(s) == 4 and batch_kept_on_4d) and s[0] > 1}
    return max(kept, default=1)


def network_batch(input_shapes: Sequence[Sequence[int]]) -> int | None:
    """The batch the plugin takes off a network with these input shapes, then running it one sample at a
    time: the common first dimension when every input is 4-D/5-D and it is above 1 (seen in real blobs: one
    4-D input, or two, gives the blob that batch; a 4-D input beside a 2-D one gives batch 1), else None."""
    shapes = [tuple(s) for s in input_shapes]
    if not shapes or any(len(s) not in (4, 5) for s in shapes):
        return None
    batches = {s[0] for s in shapes}
    return batches.pop() if len(batches) == 1 and next(iter(batches)) > 1 else None


def _normal_layout(layout: str) -> str:
    layout = layout.upper()
    known = TENSOR_FORMATS.get(layout)
    return known.layout if known is not None and known.layout else layout


def input_formats_fit(layer: CustomLayer, input_layouts: Sequence[str | None]) -> bool:
    for kernel in layer.kernels:
        for param in kernel.params:
            if isinstance(param, TensorParam) and param.type == "input" and param.format != "ANY":
                if param.port_index < len(input_layouts) and input_layouts[param.port_index] is not None:
                    if _normal_layout(param.format) != _normal_layout(input_layouts[param.port_index]):
                        return False
    return True


def select_with_reasons(layers: Iterable[CustomLayer], layer_type: str, attrs: Mapping[str, object] | None = None,
                        input_layouts: Sequence[str | None] | None = None) -> tuple[CustomLayer | None, list[str]]:
    """The plugin's choice and, for each alternative it passed over, why."""
    attrs = plugin_attrs(layer_type, attrs or {})
    reasons, suitable = [], []
    plugin_type = plugin_layer_type(layer_type)
    for layer in layers:
        where = f"<CustomLayer name=\"{layer.name}\"> at line {layer.line}"
        if layer.name.lower() != plugin_type.lower():
            if layer.name.lower() == layer_type.lower():
                reasons.append(f"{where}: the plugin sees a {layer_type} layer as a '{plugin_type}' layer, so a "
                               f"binding named '{layer.name}' is never used; name it '{plugin_type}'")
            continue
        reason = why_unsuitable(layer, attrs)
        if reason:
            reasons.append(f"{where}: {reason}")
        else:
            suitable.append(layer)
    if not suitable:
        if not reasons:
            reasons.append(f"no <CustomLayer> binds type '{layer_type}'")
        return None, reasons
    if input_layouts is not None:
        for layer in suitable:
            if input_formats_fit(layer, input_layouts):
                return layer, reasons
    return suitable[0], reasons


def select(layers: Iterable[CustomLayer], layer_type: str, attrs: Mapping[str, object] | None = None,
           input_layouts: Sequence[str | None] | None = None) -> CustomLayer | None:
    """The binding the plugin picks for a layer of `layer_type` with `attrs` (None: the plugin uses none).

    `input_layouts` lists each input port's layout (NCHW/NHWC/CHW/HWC/NC or a format name); the first suitable
    alternative whose input formats fit wins, else the first suitable one (the plugin then inserts reorders)."""
    return select_with_reasons(layers, layer_type, attrs, input_layouts)[0]


def run_order(layer: CustomLayer) -> list[Kernel]:
    """The order the plugin runs a layer's kernels: by stage number, except that a kernel runs after every
    kernel writing a scratch buffer it reads, whatever their numbers (probes stages.*)."""
    def ports(kernel, kind):
        return {p.port_index for p in kernel.params if isinstance(p, TensorParam) and p.type == kind}

    pending, done = sorted(layer.kernels, key=lambda k: k.stage), []
    while pending:
        ready = next((k for k in pending
                      if all(w in done or w is k for port in ports(k, "input_buffer") for w in pending + done
                             if port in ports(w, "output_buffer"))), None)
        if ready is None:          # a cycle: the plugin refuses it; keep the document order
            done += pending
            break
        pending.remove(ready)
        done.append(ready)
    return done


def float_without_dot(text: str) -> str:
    """A float literal without a '.': 0.5 -> 5e-1, 2.0 -> 2 (the plugin takes a '.' for a shape lookup)."""
    value = float(text)
    if value.is_integer():
        return str(int(value))
    mantissa, exponent = f"{value:e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    shift = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
    return f"{digits}e{int(exponent) - shift}"
