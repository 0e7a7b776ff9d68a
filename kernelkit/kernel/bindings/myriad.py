"""MYRIAD custom-layer bindings (`type="MVCL"`, the 2021.1-2022.3 dialect): read, choose, write.

`load`/`loads` refuse what the plugin refuses (reference: myriad-custom-layers.md §1.1-1.8) with the file, line,
element and a fix; `validate` adds the deeper checks, `select` makes the plugin's choice among alternatives,
`dumps` writes canonical XML that `loads` reads back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape

from kernelkit import __version__
from kernelkit.core.errors import KernelkitError
from kernelkit.core.xmlsafe import MiB, parse_fragment_run, read_limited
from kernelkit.kernel.bindings import expr
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import (TENSOR_FORMATS, CustomLayer, DataParam, DimRef, Kernel, Param,
                                             ScalarParam, TensorParam, WorkSizes)

MAX_BINDINGS_BYTES = 4 * MiB
TENSOR_TYPES = ("input", "output", "input_buffer", "output_buffer")
DATA_TYPES = ("data", "local_data")
SCALAR_TYPES = ("int", "float")
DIALECT_HINT = ("in the 2021/2022 dialect each <Kernel> holds its own <Source>, <Parameters> and <WorkSizes>: "
                "<CustomLayer><Kernel entry=...><Source/><Parameters>...</Parameters><WorkSizes/></Kernel></CustomLayer>")


# --- reading -------------------------------------------------------------------------------------------------

def load(path: str | Path) -> list[CustomLayer]:
    """Read a MYRIAD binding file (a run of <CustomLayer> elements, no wrapper root)."""
    path = Path(path)
    return loads(read_limited(path, MAX_BINDINGS_BYTES), path=path)


def loads(data: bytes | str, path: str | Path | None = None) -> list[CustomLayer]:
    root = parse_fragment_run(data, path=path, max_bytes=MAX_BINDINGS_BYTES)
    reader = _Reader(Path(path) if path is not None else None)
    layers = []
    if root.text and root.text.strip():
        raise reader.fail(root, "text outside any element", "the file may only hold <CustomLayer> elements "
                          "and comments")
    for element in root:
        if element.tail and element.tail.strip():
            raise reader.fail(element, f"text after this element: {element.tail.strip()[:40]!r}",
                              "the file may only hold <CustomLayer> elements and comments")
        if not isinstance(element.tag, str):
            continue                      # comments and processing instructions
        layers.append(reader.custom_layer(element))
    if not layers:
        raise KernelkitError("no <CustomLayer> element in the file", path=path,
                             hint="a MYRIAD binding file is a run of <CustomLayer type=\"MVCL\"> elements")
    return layers


def _where(element) -> str:
    shown = [f'{k}="{v}"' for k, v in element.attrib.items() if k in ("name", "entry", "arg-name", "filename")]
    return f"<{element.tag}{' ' + ' '.join(shown) if shown else ''}>"


class _Reader:
    def __init__(self, path: Path | None):
        self.path = path

    def fail(self, element, message: str, hint: str | None = None) -> KernelkitError:
        line = getattr(element, "sourceline", None)
        where = _where(element) if isinstance(getattr(element, "tag", None), str) and \
            element.tag != "kernelkit-fragment" else None
        return KernelkitError(message, path=self.path, line=line, where=where, hint=hint)

    def children(self, element) -> list:
        return [child for child in element if isinstance(child.tag, str)]

    def attr(self, element, name: str, *, required: bool = True, what: str = "") -> str | None:
        value = element.get(name)
        if value is None:
            if required:
                raise self.fail(element, f"attribute '{name}' is required{what}",
                                f"add {name}=\"...\" to <{element.tag}>")
            return None
        return value.strip()

    def integer(self, element, name: str, *, required: bool = True, default: int | None = None) -> int | None:
        text = self.attr(element, name, required=required)
        if text is None:
            return default
        if not re.fullmatch(r"[+-]?\d+", text):
            raise self.fail(element, f"attribute {name}=\"{text}\" must be an integer")
        return int(text)

    def dim(self, element, name: str = "dim") -> DimRef:
        text = self.attr(element, name)
        match = re.fullmatch(r"\s*(input|output)\s*,\s*(\d+)\s*", text, re.IGNORECASE)
        if not match:
            if re.fullmatch(r"\s*(input|output)\s*", text, re.IGNORECASE):
                raise self.fail(element, f"{name}=\"{text}\" has no port index",
                                f"write {name}=\"{text.strip().lower()},0\": the 2021+ plugin leaves the index "
                                "unset and then reads out of bounds")
            raise self.fail(element, f"{name}=\"{text}\" is not 'input,N' or 'output,N'",
                            f"write e.g. {name}=\"input,0\"")
        return DimRef(match.group(1).lower(), int(match.group(2)))

    def check_no_empty_attributes(self, element) -> None:
        for node in element.iter():
            if not isinstance(node.tag, str):
                continue
            for key, value in node.attrib.items():
                if value == "":
                    raise self.fail(node, f"attribute '{key}' is empty; the plugin rejects empty attributes "
                                    "anywhere in a <CustomLayer>", f"give {key} a value or remove it")

    def custom_layer(self, element) -> CustomLayer:
        if element.tag.lower() != "customlayer":
            raise self.fail(element, f"top-level element <{element.tag}> is not <CustomLayer>",
                            "a MYRIAD binding file holds only <CustomLayer> elements (no wrapper root)")
        self.check_no_empty_attributes(element)
        name = self.attr(element, "name", what=" (the layer type this binding replaces)")
        kind = self.attr(element, "type")
        if kind.lower() != "mvcl":
            hint = "this is a GPU binding: use kernelkit's GPU reader (validate --gpu)" \
                if kind.lower() == "simplegpu" else "MYRIAD bindings use type=\"MVCL\""
            raise self.fail(element, f"type=\"{kind}\" is not MVCL", hint)
        version = self.attr(element, "version")
        if version != "1":
            raise self.fail(element, f"version=\"{version}\" is not supported; only version=\"1\" exists",
                            "write version=\"1\"")
        layer_max_shaves = self.integer(element, "max-shaves", required=False)
        children = self.children(element)
        tags = [c.tag for c in children]
        if "Parameters" in tags or "WorkSizes" in tags:
            legacy = children[tags.index("Parameters" if "Parameters" in tags else "WorkSizes")]
            raise self.fail(legacy, f"<{legacy.tag}> directly inside <CustomLayer> is the 2020.x dialect, which "
                            "OpenVINO 2021.1-2022.3 rejects", DIALECT_HINT)
        wheres = [c for c in children if c.tag == "Where"]
        kernels_xml = [c for c in children if c.tag == "Kernel"]
        notes: list[Finding] = []
        self.ignored(element, ("Where", "Kernel"), notes)
        if len(wheres) > 1:       # the plugin reads the first (probes parser.two-where-*)
            notes.append(self.note(wheres[1], "only the first <Where> counts: the plugin ignores this one",
                                   "merge the conditions into one <Where>"))
        where = dict(wheres[0].attrib) if wheres else {}
        if not kernels_xml:
            misnamed = [c for c in children if c.tag.lower() == "kernel"]
            raise self.fail(misnamed[0] if misnamed else element, "<CustomLayer> has no <Kernel>",
                            f"<{misnamed[0].tag}> is not <Kernel>: element names are case-sensitive" if misnamed
                            else DIALECT_HINT)
        kernels = [self.kernel(k, multi=len(kernels_xml) > 1, notes=notes) for k in kernels_xml]
        if len(kernels) > 1:
            stages = sorted(k.stage for k in kernels)
            if stages != list(range(len(kernels))):
                raise self.fail(element, f"kernel stages are {[k.stage for k in kernels]}; with {len(kernels)} "
                                f"kernels they must be 0..{len(kernels) - 1}, each once",
                                "number the <Kernel stage=\"N\"> elements 0, 1, 2...")
        # Kernels stay in document order; the plugin runs them by stage number, each after the kernels
        # writing the scratch buffers it reads (run_order()).
        outputs = [p for k in kernels for p in k.params if isinstance(p, TensorParam) and p.type == "output"]
        for param in outputs:
            if param.port_index != 0:
                raise KernelkitError(f"output port-index {param.port_index}: custom layers have exactly one "
                                     "output, port 0", path=self.path, line=param.line,
                                     where=f"<Tensor arg-name=\"{param.arg_name}\">",
                                     hint="write port-index=\"0\"; pass other results through scratch buffers")
        return CustomLayer(name=name, kernels=kernels, where=where, type="MVCL", version=1, path=self.path,
                           line=element.sourceline, layer_max_shaves=layer_max_shaves, notes=notes)

    def note(self, element, message: str, hint: str | None = None) -> Finding:
        return Finding("warning", message, path=self.path, line=element.sourceline, where=_where(element), hint=hint)

    def ignored(self, element, expected: Sequence[str], notes: list) -> None:
        """The plugin ignores child elements it does not know (probes parser.unknown-element-*): a warning,
        which names the element meant when only the case differs (names are case-sensitive)."""
        for child in self.children(element):
            if child.tag in expected:
                continue
            close = [tag for tag in expected if child.tag.lower() == tag.lower()]
            notes.append(self.note(child, f"unknown element <{child.tag}> inside <{element.tag}> is ignored by the "
                                   "plugin" + (": element names are case-sensitive" if close else ""),
                                   f"write <{close[0]}>" if close else None))

    def kernel(self, element, *, multi: bool, notes: list) -> Kernel:
        entry = self.attr(element, "entry", what=" (the __kernel function name)")
        stage = 0
        stage_text = self.attr(element, "stage", required=multi,
                               what=" when a <CustomLayer> holds several <Kernel> elements")
        if multi:                 # read as C's strtod, then truncated (probes stages.*); one kernel: not read
            match = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", stage_text)
            if match is None:
                raise self.fail(element, f"stage=\"{stage_text}\" is not a number",
                                "number the <Kernel stage=\"N\"> elements 0, 1, 2...")
            stage = int(float(match.group(0)))
            if match.group(0).strip() != str(stage):
                notes.append(self.note(element, f"stage=\"{stage_text}\" is read as stage {stage}",
                                       f"write stage=\"{stage}\""))
        max_shaves = self.integer(element, "max-shaves", required=False, default=0)
        if max_shaves < 0:        # the plugin passes it on as it is (probe kernel.max-shaves-negative)
            notes.append(self.note(element, f"max-shaves=\"{max_shaves}\" is negative; the plugin passes it to the "
                                   "device unchanged", "use 0 for no limit, or 1..16"))
        children = self.children(element)
        self.ignored(element, ("Source", "Parameters", "WorkSizes"), notes)
        sources = [self.attr(c, "filename") for c in children if c.tag == "Source"]
        if not sources:
            raise self.fail(element, "<Kernel> has no <Source filename=\"...\">",
                            "add <Source filename=\"NAME.bin\"/> naming the clc output, relative to this file")
        params_xml = [c for c in children if c.tag == "Parameters"]
        sizes_xml = [c for c in children if c.tag == "WorkSizes"]
        for what, found in (("Parameters", params_xml), ("WorkSizes", sizes_xml)):
            if len(found) != 1:
                misnamed = [c for c in children if c.tag.lower() == what.lower() and c.tag != what]
                raise self.fail(found[1] if found else misnamed[0] if misnamed else element,
                                f"<Kernel> must hold exactly one <{what}>, found {len(found)}",
                                f"<{misnamed[0].tag}> is not <{what}>: element names are case-sensitive" if misnamed
                                else DIALECT_HINT)
        self.ignored(params_xml[0], ("Tensor", "Data", "Scalar"), notes)
        params = [self.param(p) for p in self.children(params_xml[0]) if p.tag in ("Tensor", "Data", "Scalar")]
        seen: dict[str, Param] = {}
        for param in params:      # the plugin takes the last; a first <Tensor> still feeds the stage
            if param.arg_name in seen:
                notes.append(Finding("warning", f"argument '{param.arg_name}' is bound twice (lines "
                                     f"{seen[param.arg_name].line} and {param.line}); the plugin passes the last "
                                     "binding", path=self.path, line=param.line, where=f"<Kernel entry=\"{entry}\">",
                                     hint="keep one binding per argument"))
            seen[param.arg_name] = param
        return Kernel(entry=entry, sources=sources, params=params, work_sizes=self.work_sizes(sizes_xml[0]),
                      stage=stage, max_shaves=max_shaves, line=element.sourceline)

    def param(self, element) -> Param:
        if element.tag == "Tensor":
            return self.tensor(element)
        if element.tag == "Data":
            return self.data(element)
        return self.scalar(element)

    def tensor(self, element) -> TensorParam:
        arg = self.attr(element, "arg-name")
        kind = self.attr(element, "type").lower()
        if kind == "data":
            raise self.fail(element, "<Tensor type=\"data\"> never finds its blob in the plugin",
                            "bind constant blobs with <Data type=\"data\" source=\"weights\">")
        if kind not in TENSOR_TYPES:
            raise self.fail(element, f"type=\"{element.get('type')}\" is not one of {', '.join(TENSOR_TYPES)}")
        port = self.integer(element, "port-index")
        if port < 0:
            raise self.fail(element, f"port-index=\"{port}\" is negative")
        fmt = (self.attr(element, "format", required=False) or "BFYX").upper()
        if fmt not in TENSOR_FORMATS:
            hint = "BFXY is a typo in the vendor guide; write BFYX" if fmt == "BFXY" else None
            raise self.fail(element, f"format=\"{element.get('format')}\" is not one of {', '.join(TENSOR_FORMATS)}",
                            hint)
        dim = size = None
        if kind.endswith("_buffer"):
            dim = self.dim(element)
            size = self.attr(element, "size", what=" for a scratch buffer (its size in bytes)")
        return TensorParam(arg_name=arg, type=kind, port_index=port, format=fmt, dim=dim, size=size,
                           line=element.sourceline)

    def data(self, element) -> DataParam:
        arg = self.attr(element, "arg-name")
        kind = self.attr(element, "type").lower()
        if kind not in DATA_TYPES:
            raise self.fail(element, f"type=\"{element.get('type')}\" is not data or local_data")
        has_source, has_dim = element.get("source") is not None, element.get("dim") is not None
        if has_source == has_dim:
            raise self.fail(element, "<Data> needs exactly one of source= (a blob of the layer) or dim= "
                            "(a __local buffer)", "type=\"data\" takes source=; type=\"local_data\" takes dim= "
                            "and size=")
        if kind == "data":
            if not has_source:
                raise self.fail(element, "<Data type=\"data\"> needs source= naming the layer's blob",
                                "e.g. source=\"weights\"")
            return DataParam(arg_name=arg, type="data", source=self.attr(element, "source"), line=element.sourceline)
        if not has_dim:
            raise self.fail(element, "<Data type=\"local_data\"> needs dim= and size=, not source=",
                            "e.g. dim=\"input,0\" size=\"X*2\"")
        return DataParam(arg_name=arg, type="local_data", dim=self.dim(element),
                         size=self.attr(element, "size", what=" for local_data (bytes of __local memory)"),
                         line=element.sourceline)

    def scalar(self, element) -> ScalarParam:
        arg = self.attr(element, "arg-name")
        kind = self.attr(element, "type").lower()
        if kind not in SCALAR_TYPES:
            raise self.fail(element, f"scalar type=\"{element.get('type')}\" is not int or float",
                            "only 32-bit int and float scalars can be passed; use int for "
                            "short/char/uint and float for half")
        source = self.attr(element, "source", what=" (a layer attribute, I.X-style shape lookup or a number)")
        port = self.integer(element, "port-index", required=False)
        return ScalarParam(arg_name=arg, type=kind, source=source, port_index=port, line=element.sourceline)

    def work_sizes(self, element) -> WorkSizes:
        dim = self.dim(element)
        lists = {}
        for key in ("global", "local"):
            text = self.attr(element, key, what=" (up to 3 comma-separated size expressions)")
            items = [item.strip() for item in text.split(",")]
            if any(not item for item in items):
                raise self.fail(element, f"{key}=\"{text}\" has an empty dimension")
            lists[key] = items
        return WorkSizes(dim=dim, global_=lists["global"], local=lists["local"], line=element.sourceline)


# --- choosing ------------------------------------------------------------------------------------------------

_LAYOUT_OF_FORMAT = {"BFYX": "NCHW", "BYXF": "NHWC", "FYX": "CHW", "YXF": "HWC", "BF": "NC"}


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
# (docs/bindings.md, "What the real plugin refuses"): the layouts it can name, the orders formats force.
PLUGIN_RANKS = {2: "NC", 3: "CHW", 4: "NCHW"}
_FORMAT_RANK = {"BFYX": 4, "BYXF": 4, "FYX": 3, "YXF": 3}


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
            if len(shape) not in PLUGIN_RANKS:
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
                    wanted = _FORMAT_RANK.get(param.format)
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
    return _LAYOUT_OF_FORMAT.get(layout, layout)


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


# --- writing -------------------------------------------------------------------------------------------------

_ATTR_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}   # keep whitespace through parsing


def _attrs(pairs: Iterable[tuple[str, object]]) -> str:
    return "".join(f' {k}="{escape(str(v), _ATTR_ESCAPES)}"' for k, v in pairs if v is not None)


def _param_xml(param: Param) -> str:
    if isinstance(param, TensorParam):
        pairs = [("arg-name", param.arg_name), ("type", param.type), ("port-index", param.port_index),
                 ("format", param.format)]
        if param.dim is not None:
            pairs += [("dim", param.dim), ("size", param.size)]
        return f"<Tensor{_attrs(pairs)}/>"
    if isinstance(param, DataParam):
        pairs = [("arg-name", param.arg_name), ("type", param.type)]
        pairs += [("source", param.source)] if param.type == "data" else [("dim", param.dim), ("size", param.size)]
        return f"<Data{_attrs(pairs)}/>"
    return f"<Scalar{_attrs([('arg-name', param.arg_name), ('type', param.type), ('port-index', param.port_index), ('source', param.source)])}/>"


def dumps(layers: Iterable[CustomLayer]) -> str:
    """Canonical 2021/2022-dialect XML: no wrapper root, one <CustomLayer> per alternative."""
    out = [f"<!-- MYRIAD custom-layer bindings (2021/2022 dialect), written by kernelkit {__version__} -->"]
    for layer in layers:
        multi = len(layer.kernels) > 1
        out.append(f"<CustomLayer{_attrs([('name', layer.name), ('type', 'MVCL'), ('version', 1), ('max-shaves', layer.layer_max_shaves)])}>")
        if layer.where:
            out.append(f"    <Where{_attrs(layer.where.items())}/>")
        for kernel in layer.kernels:
            pairs = [("entry", kernel.entry), ("stage", kernel.stage if multi else None),
                     ("max-shaves", kernel.max_shaves or None)]
            out.append(f"    <Kernel{_attrs(pairs)}>")
            out += [f"        <Source{_attrs([('filename', s)])}/>" for s in kernel.sources]
            out.append("        <Parameters>")
            out += [f"            {_param_xml(p)}" for p in kernel.params]
            out.append("        </Parameters>")
            ws = kernel.work_sizes
            out.append(f"        <WorkSizes{_attrs([('dim', ws.dim), ('global', ','.join(ws.global_)), ('local', ','.join(ws.local))])}/>")
            out.append("    </Kernel>")
        out.append("</CustomLayer>")
    return "\n".join(out) + "\n"


def save(layers: Iterable[CustomLayer], path: str | Path) -> Path:
    from kernelkit.core.fsutil import atomic_write

    return atomic_write(path, dumps(layers))


# --- deeper checks -------------------------------------------------------------------------------------------

SHAVE_COUNT = 16
_SHAPE_LETTERS = set("BFYXbfyx")


def validate(layers: Sequence[CustomLayer], layer_attrs: Mapping[str, object] | None = None, *,
             numeric_attributes: Iterable[str] | None = None) -> list[Finding]:
    """Checks beyond what `loads` refuses: things that make the plugin fail later, skip the binding silently,
    or do something the author probably did not mean.

    `layer_attrs`, when given, are the attributes of the IR layer the bindings are meant for.
    `numeric_attributes` names attributes known to be numeric without giving values (e.g. from a kernel spec).
    With neither, names in size rules that are not B/F/Y/X are warnings; with either, unknown names are errors."""
    findings: list[Finding] = []
    declared = set(numeric_attributes) if numeric_attributes is not None else None
    for layer in layers:
        findings += list(layer.notes)
        findings += _validate_layer(layer, layer_attrs, declared)
    findings += _shadowed(layers)
    return findings


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


def _validate_layer(layer: CustomLayer, layer_attrs: Mapping[str, object] | None,
                    declared: set[str] | None) -> list[Finding]:
    out: list[Finding] = []
    lname = f"<CustomLayer name=\"{layer.name}\">"

    def add(severity, message, line=None, where=lname, hint=None, plugin=None):
        out.append(Finding(severity, message, path=layer.path, line=line or layer.line, where=where, hint=hint,
                           plugin=plugin))

    if layer.layer_max_shaves is not None:
        add("warning", "max-shaves on <CustomLayer> is ignored by OpenVINO 2021.1-2022.3",
            hint=f"put max-shaves=\"{layer.layer_max_shaves}\" on each <Kernel>")
    params = plugin_attrs(layer.name, layer_attrs or {})
    if layer_attrs is not None:
        for key, rule in layer.where.items():
            if key not in params:
                add("warning", f"<Where {key}=\"{rule}\">: the layer has no attribute '{key}', so the plugin "
                    "never selects this binding for it", plugin="skips")
                continue
            try:
                holds = where_rule_holds(rule, params[key])
            except KernelkitError as exc:
                add("error", exc.message, hint=exc.hint, plugin="rejects")
                continue
            if not holds:
                add("warning", f"<Where {key}=\"{rule}\"> does not hold for {key}=\"{params[key]}\", so this "
                    "alternative is not used for this layer", plugin="skips")
    known = set(expr.size_variables([1, 1, 1, 1], layer_attrs or {})) | (declared or set())
    strict = layer_attrs is not None or declared is not None
    outputs: dict[int, list[TensorParam]] = {}
    writers: dict[int, list[TensorParam]] = {}
    readers: dict[int, list[TensorParam]] = {}
    for kernel in layer.kernels:
        kname = f"<Kernel entry=\"{kernel.entry}\">"
        if kernel.max_shaves > SHAVE_COUNT:
            add("warning", f"max-shaves=\"{kernel.max_shaves}\" is more than the {SHAVE_COUNT} SHAVEs of a Myriad X",
                kernel.line, kname)
        ws = kernel.work_sizes
        values = {}
        for key, items in (("global", ws.global_), ("local", ws.local)):
            for index, text in enumerate(items):
                values[(key, index)] = _check_size_rule(text, f"WorkSizes {key}[{index}]", strict,
                                                        known, ws.line, kname, add, selection=True)
        if len(ws.local) < len(ws.global_):
            add("error", f"global has {len(ws.global_)} dimensions and local {len(ws.local)}: the plugin divides "
                "by the local sizes that are missing and crashes", ws.line, kname,
                hint="give local as many dimensions as global", plugin="rejects")
        elif len(ws.local) > len(ws.global_):
            add("warning", f"local has {len(ws.local)} dimensions and global {len(ws.global_)}: the blob holds no "
                "group count for the extra ones, and what the device launches there is not known", ws.line, kname,
                hint="give global and local the same number of dimensions")
        if len(ws.global_) > 3:
            add("error", f"{len(ws.global_)} work dimensions: the plugin writes them all into the blob, and a "
                "SHAVE kernel launches at most 3", ws.line, kname, hint="fold the extra dimensions into three")
        for index in range(min(len(ws.global_), len(ws.local))):
            g, l_ = values.get(("global", index)), values.get(("local", index))
            if isinstance(l_, int) and l_ == 0:
                add("error", f"local[{index}] is 0: the plugin divides by it and crashes", ws.line, kname,
                    plugin="rejects")
            elif isinstance(l_, int) and l_ < 0:
                add("error", f"local[{index}] is {l_}; a work-group size must be at least 1", ws.line, kname)
            elif isinstance(g, int) and g <= 0:
                add("error", f"global[{index}] is {g}: no work group runs", ws.line, kname)
            elif isinstance(g, int) and isinstance(l_, int) and g % l_ != 0:
                add("error", f"global[{index}] = {g} is not a multiple of local[{index}] = {l_}; the plugin "
                    f"launches {g} / {l_} = {g // l_} groups and drops the rest of the work items", ws.line, kname,
                    hint="make global a multiple of local")
        for param in kernel.params:
            pname = f"{kname} <{type(param).__name__.replace('Param', '')} arg-name=\"{param.arg_name}\">"
            if isinstance(param, TensorParam):
                if param.type == "output":
                    outputs.setdefault(param.port_index, []).append(param)
                if param.size is not None:
                    _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                     selection=False)
                if param.type == "output_buffer":
                    previous = writers.get(param.port_index, [None])[0]
                    if previous and (previous.size, previous.dim) != (param.size, param.dim):
                        add("warning", f"scratch buffer {param.port_index} is declared with dim/size "
                            f"{param.dim}/{param.size} here and {previous.dim}/{previous.size} at line "
                            f"{previous.line}; the plugin sizes it from the first", param.line, pname)
                    writers.setdefault(param.port_index, []).append(param)
                elif param.type == "input_buffer":
                    readers.setdefault(param.port_index, []).append(param)
            elif isinstance(param, DataParam):
                if param.type == "local_data":
                    size = _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                            selection=False)
                    if isinstance(size, int) and size <= 0:
                        add("error", f"local_data size is {size} bytes: the kernel gets no __local memory",
                            param.line, pname)
            else:
                _check_scalar(param, layer_attrs, params, param.line, pname, add)
    for port, bound in outputs.items():
        if len(bound) > 1:
            add("error", f"output {port} is bound {len(bound)} times (lines "
                f"{', '.join(str(p.line) for p in bound)}): the plugin gives a tensor one writer and its compile "
                "fails", bound[1].line, hint="write the output in one kernel; pass results through scratch buffers",
                plugin="rejects")
    for port, bound in readers.items():
        if port not in writers:
            add("error", f"input_buffer {port} is read, and no stage writes it as an output_buffer: the plugin's "
                "compile fails", bound[0].line,
                hint="an output_buffer in one stage feeds the input_buffer with the same port-index", plugin="rejects")
    for port, bound in writers.items():
        if port not in readers:
            add("error", f"output_buffer {port} is written, and no stage reads it as an input_buffer: the plugin's "
                "compile fails", bound[0].line, hint="read it in a later stage, or drop it", plugin="rejects")
    if not outputs:
        add("error", "no <Tensor type=\"output\"> in any kernel: the layer's output is never written",
            hint="bind the kernel's result pointer with <Tensor type=\"output\" port-index=\"0\">")
    return out


def _check_size_rule(text, what, strict, known, line, where, add, *, selection: bool):
    """Report problems of one size expression; return its value when it is a constant.

    WorkSizes are parsed when the plugin chooses a binding (a parse failure skips it) and evaluated when it
    compiles (a failure there fails the compile); buffer and local_data sizes only at the compile."""
    try:
        parsed = expr.parse(text, strict=False)
    except expr.ExprError as exc:
        if selection:
            add("error", f"{what}: {exc.message}. The plugin finds this binding unsuitable and skips it silently.",
                line, where, hint=exc.hint, plugin="skips")
        else:
            add("error", f"{what}: {exc.message}; the plugin's compile fails", line, where, hint=exc.hint,
                plugin="rejects")
        return None
    problem = parsed.structure_error()
    if problem is not None:
        add("error", f"{what}: {problem.message}; the plugin's compile fails on it", line, where, hint=problem.hint,
            plugin="rejects")
        return None
    if parsed.oddity:
        add("warning", f"{what} '{text}': {parsed.oddity}", line, where)
    unknown = sorted(parsed.identifiers - known)
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        if not strict:
            add("warning", f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer, or the "
                "plugin silently skips this binding" if selection else
                f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer", line, where)
        else:
            add("error", f"{what} '{text}' uses {names}, which the layer does not have as a numeric attribute"
                + ("; the plugin finds this binding unsuitable and silently skips it" if selection else
                   "; the plugin's compile fails"),
                line, where, hint="use B, F, Y, X or a numeric attribute of the layer",
                plugin="skips" if selection else "rejects")
        return None
    if not parsed.identifiers:
        try:
            return parsed.evaluate({})
        except expr.ExprError as exc:
            add("error", f"{what}: {exc.message}", line, where, plugin="rejects")
    return None


def _check_scalar(param: ScalarParam, layer_attrs, params: Mapping[str, str], line, where, add) -> None:
    """A <Scalar> as the plugin resolves it (probes scalar.*, lookup.*, attr.*): a layer attribute by name,
    else a shape lookup when the source holds a '.', else a number read by stoi/stof."""
    source, kind = param.source, param.type
    indexed = param.port_index is not None and param.port_index >= 0
    if layer_attrs is not None and source in params:
        value = params[source]
        if indexed:
            if "," not in value:
                add("error", f"source=\"{source}\" port-index=\"{param.port_index}\" takes element "
                    f"{param.port_index} of a comma list, but the layer has {source}=\"{value}\": the plugin's "
                    "compile fails", line, where, hint="drop port-index to read the whole attribute",
                    plugin="rejects")
                return
            items = value.split(",")
            if param.port_index >= len(items):
                add("warning", f"source=\"{source}\" port-index=\"{param.port_index}\": {source}=\"{value}\" has "
                    f"{len(items)} elements; the plugin passes the last", line, where)
            value = items[min(param.port_index, len(items) - 1)]
        number = read_plugin_number(value, kind)
        if number.value is None:
            add("error", f"attribute {source}=\"{value}\" does not read as {kind} ({number.error}): the plugin's "
                "compile fails", line, where, plugin="rejects")
        elif number.partial:
            add("warning", f"attribute {source}=\"{value}\" is passed as {kind} {number.value:g}: the plugin reads "
                "only the number it starts with", line, where)
        return
    if "." in source:
        if read_plugin_number(source, "float").value is not None:
            add("error", f"source=\"{source}\" holds a '.', so the plugin reads it as a shape lookup, not as a "
                "number, and crashes", line, where, plugin="rejects",
                hint=f"write the number without a '.': {float_without_dot(source)}")
            return
        prefix, _, letter = source.partition(".")
        if not indexed:
            add("error", f"source=\"{source}\" reads a tensor dimension but has no port-index: the plugin crashes",
                line, where, hint=f"add port-index=\"0\" (the {'input' if prefix == 'I' else 'output'} port to "
                "read)", plugin="rejects")
        if letter not in ("B", "F", "Y", "X", "b", "f", "y", "x"):
            add("error", f"source=\"{source}\": '{letter}' is not one of B, F, Y, X: the plugin cannot deduce "
                "the parameter", line, where, plugin="rejects")
        if prefix not in ("I", "O"):
            meaning = "an OUTPUT" if prefix.upper() == "I" else "the output"
            add("warning", f"source=\"{source}\" reads {meaning} dimension: the plugin treats every prefix other "
                "than an upper-case 'I' as the output", line, where, hint="write I.<d> for inputs, O.<d> for outputs")
        if kind != "int":
            add("warning", f"source=\"{source}\" is a tensor dimension: the plugin passes it as an int whatever "
                f"type=\"{kind}\" says, and a {kind} argument reads the int's bits", line, where,
                hint="write type=\"int\" and convert in the kernel")
        return
    number = read_plugin_number(source, kind)
    if number.value is not None or number.error == "out of range":
        if indexed:
            add("error", f"literal source=\"{source}\" must not have a port-index: the plugin's compile fails",
                line, where, plugin="rejects")
        if number.value is None:
            add("error", f"literal {source} is out of range for a 32-bit {kind}: the plugin's compile fails",
                line, where, plugin="rejects")
        elif number.partial:
            add("warning", f"literal {source!r} is passed as {kind} {number.value:g}: the plugin reads only the "
                "number it starts with", line, where, hint=f"write {number.value:g}")
        return
    if layer_attrs is not None:
        add("error", f"source=\"{source}\" is not an attribute of the layer, a tensor dimension (I.X) or a number; "
            "the plugin fails with 'Unable to deduce parameter'", line, where, plugin="rejects")
    elif not expr.IDENTIFIER.match(source):
        add("warning", f"source=\"{source}\" is neither a number, an I.X/O.X lookup nor a plain attribute name",
            line, where)


def float_without_dot(text: str) -> str:
    """A float literal without a '.': 0.5 -> 5e-1, 2.0 -> 2 (the plugin takes a '.' for a shape lookup)."""
    value = float(text)
    if value.is_integer():
        return str(int(value))
    mantissa, exponent = f"{value:e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    shift = len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0
    return f"{digits}e{int(exponent) - shift}"


def _shadowed(layers: Sequence[CustomLayer]) -> list[Finding]:
    """An alternative that can never be chosen because an earlier one with the same conditions always wins."""
    out = []
    for i, later in enumerate(layers):
        for earlier in layers[:i]:
            if earlier.name.lower() != later.name.lower() or earlier.where != later.where:
                continue
            formats = [sorted((p.port_index, p.format) for k in x.kernels for p in k.params
                              if isinstance(p, TensorParam) and p.type == "input") for x in (earlier, later)]
            sizes = [[(k.work_sizes.global_, k.work_sizes.local) for k in x.kernels] for x in (earlier, later)]
            if formats[0] == formats[1] and sizes[0] == sizes[1]:
                out.append(Finding("warning", f"this alternative is never chosen: the one at line {earlier.line} "
                                   "binds the same type with the same <Where> and input formats and comes first",
                                   path=later.path, line=later.line, where=f"<CustomLayer name=\"{later.name}\">",
                                   hint="add a <Where> condition or remove one of them"))
                break
    return out
