"""MYRIAD custom-layer bindings (`type="MVCL"`, the 2021.1-2022.3 dialect): read, choose, write.

`load`/`loads` refuse what the plugin refuses (reference: myriad-custom-layers.md §1.1-1.8) with the file, line,
element and a fix; `validate` adds the deeper checks, `select` makes the plugin's choice among alternatives,
`dumps` writes canonical XML that `loads` reads back.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape

from .. import __version__
from ..errors import KernelkitError
from ..xmlsafe import MiB, parse_fragment_run, read_limited
from . import expr
from .findings import Finding
from .model import (TENSOR_FORMATS, CustomLayer, DataParam, DimRef, Kernel, Param, ScalarParam, TensorParam,
                    WorkSizes)

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
        notes = []
        for child in children:
            if child.tag not in ("Where", "Kernel"):
                self._misnamed(child, ("Where", "Kernel"))
                notes.append(Finding("warning", f"unknown element <{child.tag}> is ignored by the plugin",
                                     path=self.path, line=child.sourceline, where=_where(element)))
        if len(wheres) > 1:
            raise self.fail(wheres[1], "more than one <Where>", "merge the conditions into one <Where>")
        where = dict(wheres[0].attrib) if wheres else {}
        if not kernels_xml:
            raise self.fail(element, "<CustomLayer> has no <Kernel>", DIALECT_HINT)
        kernels = [self.kernel(k, multi=len(kernels_xml) > 1) for k in kernels_xml]
        if len(kernels) > 1:
            stages = sorted(k.stage for k in kernels)
            if stages != list(range(len(kernels))):
                raise self.fail(element, f"kernel stages are {[k.stage for k in kernels]}; with {len(kernels)} "
                                f"kernels they must be 0..{len(kernels) - 1}, each once",
                                "number the <Kernel stage=\"N\"> elements 0, 1, 2... in run order")
        kernels.sort(key=lambda k: k.stage)
        outputs = [p for k in kernels for p in k.params if isinstance(p, TensorParam) and p.type == "output"]
        for param in outputs:
            if param.port_index != 0:
                raise KernelkitError(f"output port-index {param.port_index}: custom layers have exactly one "
                                     "output, port 0", path=self.path, line=param.line,
                                     where=f"<Tensor arg-name=\"{param.arg_name}\">",
                                     hint="write port-index=\"0\"; pass other results through scratch buffers")
        return CustomLayer(name=name, kernels=kernels, where=where, type="MVCL", version=1, path=self.path,
                           line=element.sourceline, layer_max_shaves=layer_max_shaves, notes=notes)

    def _misnamed(self, child, expected: Sequence[str]) -> None:
        for tag in expected:
            if child.tag.lower() == tag.lower():
                raise self.fail(child, f"<{child.tag}> is not <{tag}>: element names are case-sensitive",
                                f"write <{tag}>")

    def kernel(self, element, *, multi: bool) -> Kernel:
        entry = self.attr(element, "entry", what=" (the __kernel function name)")
        stage = 0
        stage_text = self.attr(element, "stage", required=multi,
                               what=" when a <CustomLayer> holds several <Kernel> elements")
        if stage_text is not None:
            try:
                value = float(stage_text)
            except ValueError:
                value = float("nan")
            if not value.is_integer() or value < 0:
                raise self.fail(element, f"stage=\"{stage_text}\" is not a stage number 0, 1, 2...")
            stage = int(value) if multi else 0
        max_shaves = self.integer(element, "max-shaves", required=False, default=0)
        if max_shaves < 0:
            raise self.fail(element, f"max-shaves=\"{max_shaves}\" is negative", "use 0 for no limit, or 1..16")
        children = self.children(element)
        for child in children:
            if child.tag not in ("Source", "Parameters", "WorkSizes"):
                self._misnamed(child, ("Source", "Parameters", "WorkSizes"))
                raise self.fail(child, f"unknown element <{child.tag}> inside <Kernel>",
                                "a <Kernel> holds <Source>, one <Parameters> and one <WorkSizes>")
        sources = [self.attr(c, "filename") for c in children if c.tag == "Source"]
        if not sources:
            raise self.fail(element, "<Kernel> has no <Source filename=\"...\">",
                            "add <Source filename=\"NAME.bin\"/> naming the clc output, relative to this file")
        params_xml = [c for c in children if c.tag == "Parameters"]
        sizes_xml = [c for c in children if c.tag == "WorkSizes"]
        for what, found in (("Parameters", params_xml), ("WorkSizes", sizes_xml)):
            if len(found) != 1:
                raise self.fail(element if not found else found[1],
                                f"<Kernel> must hold exactly one <{what}>, found {len(found)}", DIALECT_HINT)
        params = [self.param(p) for p in self.children(params_xml[0])]
        seen: dict[str, Param] = {}
        for param in params:
            if param.arg_name in seen:
                raise KernelkitError(f"argument '{param.arg_name}' is bound twice (lines {seen[param.arg_name].line}"
                                     f" and {param.line})", path=self.path, line=param.line,
                                     where=f"<Kernel entry=\"{entry}\">", hint="keep one binding per argument")
            seen[param.arg_name] = param
        return Kernel(entry=entry, sources=sources, params=params, work_sizes=self.work_sizes(sizes_xml[0]),
                      stage=stage, max_shaves=max_shaves, line=element.sourceline)

    def param(self, element) -> Param:
        if element.tag == "Tensor":
            return self.tensor(element)
        if element.tag == "Data":
            return self.data(element)
        if element.tag == "Scalar":
            return self.scalar(element)
        self._misnamed(element, ("Tensor", "Data", "Scalar"))
        raise self.fail(element, f"unknown element <{element.tag}> inside <Parameters>",
                        "use <Tensor>, <Data> or <Scalar>")

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
            if len(items) > 3:
                raise self.fail(element, f"{key}=\"{text}\" has {len(items)} dimensions; at most 3 are allowed")
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


def where_rule_holds(rule: str, value: str) -> bool:
    """One <Where key="rule"> against the layer's value for key (both strings)."""
    number = _as_number(value)
    if number is not None:
        for op in (">=", "<=", "!=", ">", "<"):
            if rule.strip().startswith(op):
                bound = _as_number(rule.strip()[len(op):])
                if bound is None:
                    return False
                return {">=": number >= bound, "<=": number <= bound, "!=": number != bound,
                        ">": number > bound, "<": number < bound}[op]
        bound = _as_number(rule)
        if bound is not None:
            return number == bound
    return rule.strip().lower() == value.strip().lower()


def why_unsuitable(layer: CustomLayer, attrs: Mapping[str, object]) -> str | None:
    """None when the plugin would consider `layer` for a layer with `attrs`, else the reason it would not."""
    params = {k: legacy_param_string(v) for k, v in attrs.items()}
    for key, rule in layer.where.items():
        if key not in params:
            return f"<Where {key}=\"{rule}\">: the layer has no attribute '{key}'"
        if not where_rule_holds(rule, params[key]):
            return f"<Where {key}=\"{rule}\">: the layer has {key}=\"{params[key]}\""
    variables = expr.size_variables([1, 1, 1, 1], attrs)
    for kernel in layer.kernels:
        for text in kernel.work_sizes.global_ + kernel.work_sizes.local:
            try:
                expr.parse(text, variables)
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
      stage and asserts (batchSize > 0)."""
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
    attrs = attrs or {}
    reasons, suitable = [], []
    for layer in layers:
        if layer.name.lower() != layer_type.lower():
            continue
        reason = why_unsuitable(layer, attrs)
        where = f"<CustomLayer name=\"{layer.name}\"> at line {layer.line}"
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
        for kernel in sorted(layer.kernels, key=lambda k: k.stage):
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
    from ..fsutil import atomic_write

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


def _validate_layer(layer: CustomLayer, layer_attrs: Mapping[str, object] | None,
                    declared: set[str] | None) -> list[Finding]:
    out: list[Finding] = []
    lname = f"<CustomLayer name=\"{layer.name}\">"

    def add(severity, message, line=None, where=lname, hint=None):
        out.append(Finding(severity, message, path=layer.path, line=line or layer.line, where=where, hint=hint))

    if layer.layer_max_shaves is not None:
        add("warning", "max-shaves on <CustomLayer> is ignored by OpenVINO 2021.1-2022.3",
            hint=f"put max-shaves=\"{layer.layer_max_shaves}\" on each <Kernel>")
    params = {k: legacy_param_string(v) for k, v in (layer_attrs or {}).items()}
    if layer_attrs is not None:
        for key, rule in layer.where.items():
            if key not in params:
                add("warning", f"<Where {key}=\"{rule}\">: the layer has no attribute '{key}', so the plugin "
                    "never selects this binding for it")
            elif not where_rule_holds(rule, params[key]):
                add("warning", f"<Where {key}=\"{rule}\"> does not hold for {key}=\"{params[key]}\", so this "
                    "alternative is not used for this layer")
    known = set(expr.size_variables([1, 1, 1, 1], layer_attrs or {})) | (declared or set())
    strict = layer_attrs is not None or declared is not None
    outputs, buffers_written = 0, {}
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
        if len(ws.global_) != len(ws.local):
            add("warning", f"global has {len(ws.global_)} dimensions and local {len(ws.local)}; give both the "
                "same count so every dimension's group size is explicit", ws.line, kname)
        for index in range(min(len(ws.global_), len(ws.local))):
            g, l_ = values.get(("global", index)), values.get(("local", index))
            if isinstance(l_, int) and l_ <= 0:
                add("error", f"local[{index}] is {l_}; a work-group size must be at least 1", ws.line, kname)
            elif isinstance(g, int) and isinstance(l_, int) and g % l_ != 0:
                add("error", f"global[{index}] = {g} is not a multiple of local[{index}] = {l_}; the plugin "
                    f"launches {g} / {l_} = {g // l_} groups and drops the rest of the work items", ws.line, kname,
                    hint="make global a multiple of local")
        for param in kernel.params:
            pname = f"{kname} <{type(param).__name__.replace('Param', '')} arg-name=\"{param.arg_name}\">"
            if isinstance(param, TensorParam):
                if param.type == "output":
                    outputs += 1
                if param.size is not None:
                    _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                     selection=False)
                if param.type == "output_buffer":
                    previous = buffers_written.get(param.port_index)
                    if previous and (previous.size, previous.dim) != (param.size, param.dim):
                        add("warning", f"scratch buffer {param.port_index} is declared with dim/size "
                            f"{param.dim}/{param.size} here and {previous.dim}/{previous.size} at line "
                            f"{previous.line}; the plugin sizes it from the first", param.line, pname)
                    buffers_written.setdefault(param.port_index, param)
                if param.type == "input_buffer" and not any(
                        p.port_index == param.port_index and p.type == "output_buffer"
                        for k in layer.kernels if k.stage < kernel.stage for p in k.params
                        if isinstance(p, TensorParam)):
                    add("error", f"input_buffer {param.port_index} is read before any earlier stage writes it as "
                        "an output_buffer", param.line, pname,
                        hint="an output_buffer in stage N feeds input_buffer with the same port-index in stage N+1")
            elif isinstance(param, DataParam):
                if param.type == "local_data":
                    _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                     selection=False)
            else:
                _check_scalar(param, layer_attrs, params, param.line, pname, add)
    if outputs == 0:
        add("error", "no <Tensor type=\"output\"> in any kernel: the layer's output is never written",
            hint="bind the kernel's result pointer with <Tensor type=\"output\" port-index=\"0\">")
    return out


def _check_size_rule(text, what, strict, known, line, where, add, *, selection: bool):
    """Report problems of one size expression; return its value when it is a constant."""
    try:
        parsed = expr.parse(text)
    except expr.ExprError as exc:
        consequence = " The plugin then skips this binding silently." if selection else ""
        add("error", f"{what}: {exc.message}.{consequence}", line, where, hint=exc.hint)
        return None
    unknown = sorted(parsed.identifiers - known)
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        if not strict:
            add("warning", f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer, or the "
                "plugin silently skips this binding" if selection else
                f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer", line, where)
        else:
            add("error", f"{what} '{text}' uses {names}, which the layer does not have as a numeric attribute"
                + ("; the plugin finds this binding unsuitable and silently skips it" if selection else ""),
                line, where, hint="use B, F, Y, X or a numeric attribute of the layer")
        return None
    if not parsed.identifiers:
        try:
            return parsed.evaluate({})
        except expr.ExprError as exc:
            add("error", f"{what}: {exc.message}", line, where)
    return None


def _check_scalar(param: ScalarParam, layer_attrs, params: Mapping[str, str], line, where, add) -> None:
    source = param.source
    if layer_attrs is not None and source in params:
        value = params[source]
        if param.port_index is not None and param.port_index >= 0:
            items = value.split(",")
            if "," not in value or param.port_index >= len(items):
                add("error", f"source=\"{source}\" port-index=\"{param.port_index}\" needs a comma list with "
                    f"element {param.port_index}, but the layer has {source}=\"{value}\"", line, where)
                return
            value = items[param.port_index]
        if _as_number(value) is None:
            add("error", f"attribute {source}=\"{value}\" is not a number; the plugin cannot pass it as "
                f"{param.type}", line, where)
        return
    if "." in source and _as_number(source) is None:
        prefix, _, letter = source.partition(".")
        if param.port_index is None or param.port_index < 0:
            add("error", f"source=\"{source}\" reads a tensor dimension but has no port-index", line, where,
                hint=f"add port-index=\"0\" (the {'input' if prefix == 'I' else 'output'} port to read)")
        if letter not in ("B", "F", "Y", "X", "b", "f", "y", "x"):
            add("error", f"source=\"{source}\": '{letter}' is not one of B, F, Y, X", line, where)
        if prefix not in ("I", "O"):
            meaning = "an OUTPUT" if prefix.upper() == "I" else "the output"
            add("warning", f"source=\"{source}\" reads {meaning} dimension: the plugin treats every prefix other "
                "than an upper-case 'I' as the output", line, where, hint="write I.<d> for inputs, O.<d> for outputs")
        if param.type != "int":
            add("warning", f"source=\"{source}\" is a tensor dimension passed as {param.type}", line, where)
        return
    number = _as_number(source)
    if number is not None:
        if param.port_index is not None and param.port_index >= 0:
            add("error", f"literal source=\"{source}\" must not have a port-index", line, where)
        if param.type == "int" and not number.is_integer():
            add("warning", f"literal {source} passed as int is truncated to {int(number)}", line, where)
        elif param.type == "int" and not re.fullmatch(r"[+-]?\d+", source.strip()):
            add("warning", f"literal {source} passed as int: write it as an integer", line, where)
        return
    if layer_attrs is not None:
        add("error", f"source=\"{source}\" is not an attribute of the layer, a tensor dimension (I.X) or a number; "
            "the plugin fails with 'Unable to deduce parameter'", line, where)
    elif not expr.IDENTIFIER.match(source):
        add("warning", f"source=\"{source}\" is neither a number, an I.X/O.X lookup nor a plain attribute name",
            line, where)


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
