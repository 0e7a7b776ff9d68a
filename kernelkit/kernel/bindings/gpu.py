"""Intel GPU custom-layer bindings (`type="SimpleGPU"`, clDNN 2021 / intel_gpu 2022): read, check, write.

Reference: myriad-custom-layers.md §5. Unlike MYRIAD: arguments are bound by index, scalars come in as
`#define`s, there is no <Where> (one entry per type, exact case, the last one wins) and work sizes are integer
formulas over B, F, Y, X only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Sequence

from kernelkit import __version__
from kernelkit.core.errors import KernelkitError
from kernelkit.core.xmlsafe import MiB, parse_fragment_run, read_limited
from kernelkit.kernel.bindings import expr
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.facts.tensor_formats import GPU_TENSOR_FORMATS
from kernelkit.kernel.bindings.model import GpuCustomLayer, GpuDefine, GpuTensor
from kernelkit.kernel.bindings.myriad_read import element_label
from kernelkit.kernel.bindings.myriad_write import xml_attrs

MAX_BINDINGS_BYTES = 4 * MiB
GPU_VARIABLES = ("B", "F", "Y", "X")


def load(path: str | Path) -> list[GpuCustomLayer]:
    path = Path(path)
    return loads(read_limited(path, MAX_BINDINGS_BYTES), path=path)


def loads(data: bytes | str, path: str | Path | None = None) -> list[GpuCustomLayer]:
    root = parse_fragment_run(data, path=path, max_bytes=MAX_BINDINGS_BYTES)
    reader = _GpuReader(Path(path) if path is not None else None)
    layers = [reader.custom_layer(el) for el in root if isinstance(el.tag, str)]
    if not layers:
        raise KernelkitError("no <CustomLayer> element in the file", path=path,
                             hint="a GPU binding file holds <CustomLayer type=\"SimpleGPU\"> elements")
    return layers


class _GpuReader:
    def __init__(self, path):
        self.path = path

    def fail(self, element, message, hint=None):
        return KernelkitError(message, path=self.path, line=element.sourceline, where=element_label(element), hint=hint)

    def attr(self, element, name, *, required=True):
        value = element.get(name)
        if value is None and required:
            raise self.fail(element, f"attribute '{name}' is required", f"add {name}=\"...\" to <{element.tag}>")
        return value.strip() if value is not None else None

    def integer(self, element, name):
        text = self.attr(element, name)
        if not re.fullmatch(r"\d+", text):
            raise self.fail(element, f"attribute {name}=\"{text}\" must be a non-negative integer")
        return int(text)

    def only(self, element, tag, *, required=True):
        found = [c for c in element if isinstance(c.tag, str) and c.tag == tag]
        if len(found) > 1:
            raise self.fail(found[1], f"more than one <{tag}> in <{element.tag}>", f"keep exactly one <{tag}>")
        if not found and required:
            raise self.fail(element, f"<{element.tag}> has no <{tag}>", f"add a <{tag}> element")
        return found[0] if found else None

    def custom_layer(self, element) -> GpuCustomLayer:
        if element.tag != "CustomLayer":
            raise self.fail(element, f"top-level element <{element.tag}> is not <CustomLayer>")
        name = self.attr(element, "name")
        kind = self.attr(element, "type")
        if kind != "SimpleGPU":
            hint = "this is a MYRIAD binding: validate it without --gpu" if kind.lower() == "mvcl" else \
                "GPU bindings use type=\"SimpleGPU\" (exact case)"
            raise self.fail(element, f"type=\"{kind}\" is not SimpleGPU", hint)
        if self.attr(element, "version") != "1":
            raise self.fail(element, f"version=\"{element.get('version')}\" is not supported", "write version=\"1\"")
        kernel = self.only(element, "Kernel")
        entry = self.attr(kernel, "entry")
        sources = [self.attr(s, "filename") for s in kernel if isinstance(s.tag, str) and s.tag == "Source"]
        if not sources:
            raise self.fail(kernel, "<Kernel> has no <Source filename=\"...\">",
                            "add <Source filename=\"NAME.cl\"/>: OpenCL source relative to this XML")
        defines = [GpuDefine(name=self.attr(d, "name"), param=self.attr(d, "param", required=False),
                             type=self.attr(d, "type", required=False), default=self.attr(d, "default", required=False))
                   for d in kernel if isinstance(d.tag, str) and d.tag == "Define"]
        buffers = self.only(element, "Buffers")
        tensors = []
        for child in buffers:
            if not isinstance(child.tag, str):
                continue
            if child.tag == "Data":
                raise self.fail(child, "<Data> buffers are not usable with nGraph networks in the GPU plugin",
                                "pass constants as <Tensor type=\"input\"> on their input port")
            if child.tag != "Tensor":
                raise self.fail(child, f"unknown element <{child.tag}> in <Buffers>", "use <Tensor>")
            kind = self.attr(child, "type").lower()
            if kind not in ("input", "output"):
                raise self.fail(child, f"type=\"{child.get('type')}\" is not input or output")
            fmt = (self.attr(child, "format", required=False) or "BFYX").upper()
            if fmt not in GPU_TENSOR_FORMATS:
                raise self.fail(child, f"format=\"{child.get('format')}\" is not one of "
                                f"{', '.join(GPU_TENSOR_FORMATS)}")
            tensors.append(GpuTensor(arg_index=self.integer(child, "arg-index"), type=kind,
                                     port_index=self.integer(child, "port-index"), format=fmt))
        options = [c for c in element if isinstance(c.tag, str) and c.tag == "CompilerOptions"]
        compiler_options = self.attr(options[0], "options") if options else None
        sizes = self.only(element, "WorkSizes", required=False)
        global_, local, dim = [], [], "output"
        if sizes is not None:
            global_ = _split(self.attr(sizes, "global", required=False))
            local = _split(self.attr(sizes, "local", required=False))
            for key, items in (("global", global_), ("local", local)):
                if len(items) > 3:
                    raise self.fail(sizes, f"{key} has {len(items)} dimensions; at most 3 are allowed")
            dim_text = self.attr(sizes, "dim", required=False)
            if dim_text is not None:
                match = re.fullmatch(r"(output|input)(?:\s*,\s*(\d+))?", dim_text)
                if not match or (match.group(1) == "output" and match.group(2)):
                    hint = "the vendor guide writes 'input N'; the plugin needs 'input,N'" \
                        if re.fullmatch(r"input\s+\d+", dim_text) else "write output, input or input,N"
                    raise self.fail(sizes, f"dim=\"{dim_text}\" is not output, input or input,N", hint)
                dim = dim_text.replace(" ", "")
        layer = GpuCustomLayer(name=name, entry=entry, sources=sources, defines=defines, tensors=tensors,
                               global_=global_, local=local, dim=dim, compiler_options=compiler_options,
                               path=self.path, line=element.sourceline)
        if len(options) > 1:
            layer.notes.append(Finding("warning", "only the first <CompilerOptions> is read by the plugin",
                                       path=self.path, line=options[1].sourceline, where=element_label(element)))
        return layer


def _split(text: str | None) -> list[str]:
    if text is None or not text.strip():
        return []
    return [item.strip() for item in text.split(",")]


def validate(layers: Sequence[GpuCustomLayer]) -> list[Finding]:
    findings: list[Finding] = []
    seen: dict[str, GpuCustomLayer] = {}
    for layer in layers:
        where = f"<CustomLayer name=\"{layer.name}\">"

        def add(severity, message, hint=None):
            findings.append(Finding(severity, message, path=layer.path, line=layer.line, where=where, hint=hint))

        findings += layer.notes
        if layer.name in seen:
            add("warning", f"a binding for '{layer.name}' at line {seen[layer.name].line} comes first; the GPU "
                "plugin keeps only the last one per type", "remove one of them")
        seen[layer.name] = layer
        indices = sorted(t.arg_index for t in layer.tensors)
        if len(set(indices)) != len(indices):
            add("error", f"arg-index values {indices} repeat; each kernel argument is bound once")
        elif indices != list(range(len(indices))):
            add("error", f"arg-index values are {indices}; they must run 0..{len(indices) - 1}",
                "number the <Tensor arg-index> in kernel argument order from 0")
        outputs = [t for t in layer.tensors if t.type == "output"]
        if len(outputs) != 1:
            add("error", f"{len(outputs)} output tensors; a SimpleGPU layer has exactly one output (port 0)")
        elif outputs[0].port_index != 0:
            add("error", f"output port-index {outputs[0].port_index}; the only output is port 0")
        inputs = [t.port_index for t in layer.tensors if t.type == "input"]
        if len(set(inputs)) != len(inputs):
            add("warning", f"input ports {sorted(inputs)} are bound more than once")
        if not layer.global_:
            add("warning", "no global work size: the plugin's default differs between its guide and its code",
                "write <WorkSizes global=\"...\" local=\"...\"/> explicitly")
        for key, items in (("global", layer.global_), ("local", layer.local)):
            for index, text in enumerate(items):
                message = gpu_formula_problem(text)
                if message:
                    add("error", f"WorkSizes {key}[{index}] '{text}': {message}")
        for define in layer.defines:
            if define.param is None and define.default is None and " " not in define.name:
                add("warning", f"<Define name=\"{define.name}\"> has neither param nor default: it expands to nothing")
    return findings


def gpu_formula_problem(text: str) -> str | None:
    """Why a GPU work-size formula is not valid (integers, B/F/Y/X, + - * / % and parentheses), or None."""
    try:
        parsed = expr.parse(text)
    except expr.ExprError as exc:
        return exc.message
    for tok in parsed.postfix:
        if tok.kind == "func":
            return f"functions such as {tok.text}() are not available in GPU work sizes"
        if tok.kind == "var" and tok.text not in GPU_VARIABLES:
            return f"'{tok.text}' is not one of B, F, Y, X (GPU work sizes cannot use layer attributes)"
        if tok.kind == "num" and not isinstance(tok.value, int):
            return f"{tok.text} is not an integer (GPU work sizes use integer arithmetic)"
    return None


def evaluate_work_size(text: str, shape) -> int:
    """A GPU work-size formula for a tensor of `shape` (integer arithmetic, C truncation)."""
    problem = gpu_formula_problem(text)
    if problem:
        raise expr.ExprError(problem, expression=text)
    return expr.evaluate(text, expr.dims_bfyx(shape))


def dumps(layers: Iterable[GpuCustomLayer]) -> str:
    out = [f"<!-- Intel GPU custom-layer bindings (SimpleGPU), written by kernelkit {__version__} -->"]
    for layer in layers:
        out.append(f"<CustomLayer{xml_attrs([('name', layer.name), ('type', 'SimpleGPU'), ('version', 1)])}>")
        out.append(f"    <Kernel{xml_attrs([('entry', layer.entry)])}>")
        out += [f"        <Source{xml_attrs([('filename', s)])}/>" for s in layer.sources]
        out += [f"        <Define{xml_attrs([('name', d.name), ('type', d.type), ('param', d.param), ('default', d.default)])}/>"
                for d in layer.defines]
        out.append("    </Kernel>")
        out.append("    <Buffers>")
        out += [f"        <Tensor{xml_attrs([('arg-index', t.arg_index), ('type', t.type), ('port-index', t.port_index), ('format', t.format)])}/>"
                for t in sorted(layer.tensors, key=lambda t: t.arg_index)]
        out.append("    </Buffers>")
        if layer.compiler_options:
            out.append(f"    <CompilerOptions{xml_attrs([('options', layer.compiler_options)])}/>")
        pairs = [("global", ",".join(layer.global_) or None), ("local", ",".join(layer.local) or None),
                 ("dim", layer.dim)]
        out.append(f"    <WorkSizes{xml_attrs(pairs)}/>")
        out.append("</CustomLayer>")
    return "\n".join(out) + "\n"


def save(layers: Iterable[GpuCustomLayer], path: str | Path) -> Path:
    from kernelkit.core.fsutil import atomic_write

    return atomic_write(path, dumps(layers))
