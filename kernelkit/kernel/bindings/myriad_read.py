"""Read MYRIAD custom-layer bindings (`type="MVCL"`, the 2021.1-2022.3 dialect) into the binding model.

`load`/`loads` refuse what the plugin refuses (reference: myriad-custom-layers.md §1.1-1.8) with the file, line,
element and a fix; what the plugin only warns about or ignores becomes a note on the layer (`CustomLayer.notes`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from kernelkit.core.errors import KernelkitError
from kernelkit.core.xmlsafe import MiB, parse_fragment_run, read_limited
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.facts.tensor_formats import TENSOR_FORMATS
from kernelkit.kernel.bindings.model import (CustomLayer, DataParam, DimRef, Kernel, Param, ScalarParam, TensorParam,
                                             WorkSizes)

MAX_BINDINGS_BYTES = 4 * MiB
TENSOR_TYPES = ("input", "output", "input_buffer", "output_buffer")
DATA_TYPES = ("data", "local_data")
SCALAR_TYPES = ("int", "float")
DIALECT_HINT = ("in the 2021/2022 dialect each <Kernel> holds its own <Source>, <Parameters> and <WorkSizes>: "
                "<CustomLayer><Kernel entry=...><Source/><Parameters>...</Parameters><WorkSizes/></Kernel></CustomLayer>")


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


def element_label(element) -> str:
    shown = [f'{k}="{v}"' for k, v in element.attrib.items() if k in ("name", "entry", "arg-name", "filename")]
    return f"<{element.tag}{' ' + ' '.join(shown) if shown else ''}>"


class _Reader:
    def __init__(self, path: Path | None):
        self.path = path

    def fail(self, element, message: str, hint: str | None = None) -> KernelkitError:
        line = getattr(element, "sourceline", None)
        where = element_label(element) if isinstance(getattr(element, "tag", None), str) and \
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
        return Finding("warning", message, path=self.path, line=element.sourceline, where=element_label(element), hint=hint)

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
