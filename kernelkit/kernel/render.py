"""Spec -> OpenCL C source (Jinja) and spec -> MYRIAD / GPU binding models.

Templates render with StrictUndefined over `templates/` and the kernel's own folder (as `kernel/...`).
Every piece of literal template text is tagged, before compilation, with the template file and line it came
from; the tags are stripped after rendering and kept as a per-line, per-column origin map, so a compiler
error in the generated .cl points back at the template line that produced it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.facts.tensor_formats import TENSOR_FORMATS
from kernelkit.kernel.bindings.model import (CustomLayer, DimRef, GpuCustomLayer, GpuDefine, GpuTensor, Kernel,
                                             ScalarParam, TensorParam, WorkSizes)
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import TEMPLATES_DIR
from kernelkit.kernel.spec import KernelSpec, ScalarSpec, StageSpec, scalar_kind

_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue001"   # private-use: never in C, not line breaks
_MARK = re.compile(f"{_MARK_OPEN}(\\d+):(\\d+){_MARK_CLOSE}")
GPU_SWITCH = "KERNELKIT_GPU"
_DIM_INDEX = {"B": 0, "F": 1, "Y": 2, "X": 3}


@dataclass
class RenderedSource:
    """A rendered kernel source plus where each stretch of each line came from."""

    text: str
    template: str                                   # the template file (path) rendered
    origins: list[list[tuple[int, str, int]]] = field(default_factory=list)   # per line: (column, file, line)

    def origin(self, line: int, column: int = 1) -> tuple[str, int] | None:
        """(template file, template line) that produced `line`:`column` (1-based) of the text."""
        if not 1 <= line <= len(self.origins):
            return None
        best = None
        for start, path, tline in self.origins[line - 1]:
            if start <= max(column, 1):
                best = (path, tline)
        if best is None and self.origins[line - 1]:
            _, path, tline = self.origins[line - 1][0]
            best = (path, tline)
        return best


# --- the Jinja environment -------------------------------------------------------------------------

def _environment(spec: KernelSpec):
    import jinja2
    from jinja2 import nodes

    files: list[str] = []

    class Env(jinja2.Environment):
        def _parse(self, source, name, filename):
            tree = super()._parse(source, name, filename)
            file_id = len(files)
            files.append(filename or name or "<template>")
            for node in tree.find_all(nodes.TemplateData):
                node.data = _tag(node.data, node.lineno, file_id)
            return tree

    loader = jinja2.ChoiceLoader([
        jinja2.PrefixLoader({"kernel": jinja2.FileSystemLoader(str(spec.dir))}),
        jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
    ])
    env = Env(loader=loader, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
              keep_trailing_newline=True, autoescape=False, cache_size=0)
    env.filters["cfloat"] = c_float
    env.globals["fail"] = _fail
    return env, files


def _fail(message: str):
    """`{{ fail("...") }}`: a template refuses its input; reported at the calling template line."""
    import jinja2

    raise jinja2.TemplateRuntimeError(message)


def _tag(data: str, lineno: int, file_id: int) -> str:
    pieces = data.split("\n")
    out = [f"{_MARK_OPEN}{file_id}:{lineno}{_MARK_CLOSE}{pieces[0]}"]
    for offset, piece in enumerate(pieces[1:], start=1):
        out.append(f"{_MARK_OPEN}{file_id}:{lineno + offset}{_MARK_CLOSE}{piece}")
    return "\n".join(out)


def _untag(text: str, files: list[str]) -> tuple[str, list[list[tuple[int, str, int]]]]:
    clean_lines, origins = [], []
    state: tuple[str, int] | None = None
    for raw in text.split("\n"):
        segments: list[tuple[int, str, int]] = []
        if state:
            segments.append((1, *state))
        parts, pos, col = [], 0, 1
        for match in _MARK.finditer(raw):
            chunk = raw[pos:match.start()]
            parts.append(chunk)
            col += len(chunk)
            state = (files[int(match.group(1))], int(match.group(2)))
            if segments and segments[-1][0] == col:
                segments[-1] = (col, *state)
            else:
                segments.append((col, *state))
            pos = match.end()
        parts.append(raw[pos:])
        clean_lines.append("".join(parts))
        origins.append(segments)
    return "\n".join(clean_lines), origins


def c_float(value) -> str:
    """A C float literal (`0.5f`): double literals are errors on SHAVE (fp64 off, -Werror)."""
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        return {"inf": "INFINITY", "-inf": "(-INFINITY)", "nan": "NAN"}[text]
    return text + "f"


def _template_error(exc, spec: KernelSpec) -> KernelkitError:
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return KernelkitError(f"template syntax error: {exc.message}", path=exc.filename or exc.name,
                              line=exc.lineno, hint="fix the template; see docs/spec.md for what templates see")
    if isinstance(exc, jinja2.TemplateNotFound):
        return KernelkitError(f"template {exc.name!r} not found", path=spec.path, where="kernel.template")
    # Runtime errors: the innermost traceback frame inside a template names its file and line.
    path, line = None, None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename.startswith(str(TEMPLATES_DIR)) or \
                filename.startswith(str(spec.dir)):
            path, line = filename, tb.tb_lineno
        tb = tb.tb_next
    kind = "undefined value" if isinstance(exc, jinja2.UndefinedError) else type(exc).__name__
    return KernelkitError(f"template error ({kind}): {exc}", path=path or spec.path, line=line,
                          hint="a template parameter may be missing from [kernel.params]"
                          if isinstance(exc, jinja2.UndefinedError) else None)


# --- what the skeleton pieces need -----------------------------------------------------------------

@dataclass
class SourceGen:
    tensor_args: list[str]
    scalar_args: list[str]
    gpu_macros: list[tuple[str, str]]


def _tensor_decl(spec: KernelSpec, name: str) -> str | None:
    tensor = spec.tensor(name)
    if tensor is not None:
        const = "const " if tensor is not spec.output else ""
        return f"__global {const}{tensor.c_type}* restrict {name}"
    buffer = spec.buffer(name)
    if buffer is not None:
        const = "const " if buffer.type == "input_buffer" else ""
        return f"__global {const}{buffer.c_type}* restrict {name}"
    return None


def source_gen(spec: KernelSpec, stage: StageSpec) -> SourceGen:
    tensors, scalars = [], []
    for name in stage.args:
        decl = _tensor_decl(spec, name)
        if decl is not None:
            tensors.append(decl)
    for name in stage.args:
        scalar = spec.scalar(name)
        if scalar is not None:
            scalars.append(f"{scalar.type} {name}")
    macros = [(s.name, _gpu_macro(s)) for s in spec.scalars if s.name in stage.args and _gpu_macro(s)]
    return SourceGen(tensors, scalars, macros)


def _gpu_macro(scalar: ScalarSpec) -> str | None:
    """The GPU view of a scalar, when the .cl itself must supply it (None: a <Define> supplies it)."""
    cast = "(int)" if scalar.type == "int" else "(float)"
    if scalar.kind == "shape":
        tensor = f"INPUT{scalar.port}" if scalar.source[0] == "I" else "OUTPUT0"
        return f"({cast}{tensor}_DIMS[{_DIM_INDEX[scalar.source[2].upper()]}])"
    if scalar.kind == "literal":
        return f"({c_float(scalar.source)})" if scalar.type == "float" else f"({int(scalar.source)})"
    if scalar.port is not None:
        return f"({cast}{_list_define(scalar)}[{scalar.port}])"
    return None


def _list_define(scalar: ScalarSpec) -> str:
    return f"{scalar.name}_LIST"


# --- rendering ---------------------------------------------------------------------------------------

def source_filenames(spec: KernelSpec) -> list[str]:
    """The .cl file of each stage: `<name>.cl`, then `<name>.stage<k>.cl` for later stages."""
    return [f"{spec.name}.cl" if st.index == 0 else f"{spec.name}.stage{st.index}.cl" for st in spec.stages]


def render_source(spec: KernelSpec, stage: int = 0) -> RenderedSource:
    """Render the OpenCL C source of one stage."""
    import jinja2

    env, files = _environment(spec)
    stage_spec = spec.stages[stage]
    context = dict(spec=spec, params=spec.params, stage=stage_spec, gen=source_gen(spec, stage_spec),
                   inputs=spec.inputs, output=spec.output, scalars=spec.scalars)
    try:
        template = env.get_template(spec.template)
        text = template.render(context)
    except KernelkitError:
        raise
    except jinja2.TemplateError as exc:
        raise _template_error(exc, spec) from None
    except Exception as exc:  # a template may raise anything (division by zero, bad filter input...)
        raise _template_error(exc, spec) from None
    clean, origins = _untag(text, files)
    if not clean.endswith("\n"):
        clean += "\n"
    return RenderedSource(clean, template.filename or spec.template, origins)


def render_sources(spec: KernelSpec) -> dict[str, RenderedSource]:
    return {name: render_source(spec, st.index) for name, st in zip(source_filenames(spec), spec.stages)}


# --- bindings ----------------------------------------------------------------------------------------

def _dimref(text: str) -> DimRef:
    kind, index = text.split(",")
    return DimRef(kind, int(index))  # type: ignore[arg-type]


def myriad_layers(spec: KernelSpec, binary_names: list[str] | None = None) -> list[CustomLayer]:
    """The MYRIAD <CustomLayer>s: one per alternative (or one when there are none)."""
    binaries = binary_names or [Path(n).with_suffix(".bin").name for n in source_filenames(spec)]
    alternatives = spec.alternatives or [None]
    layers = []
    for alt in alternatives:
        kernels = []
        for st, binary in zip(spec.stages, binaries):
            params = []
            for name in st.args:
                tensor = spec.tensor(name)
                buffer = spec.buffer(name)
                scalar = spec.scalar(name)
                if tensor is not None:
                    fmt = (alt.formats.get(name) if alt else None) or tensor.format
                    kind = "output" if tensor is spec.output else "input"
                    params.append(TensorParam(name, kind, tensor.port, fmt))
                elif buffer is not None:
                    params.append(TensorParam(name, buffer.type, buffer.id, "BFYX", _dimref(buffer.dim), buffer.size))
                elif scalar is not None:
                    source = (alt.scalars.get(name) if alt else None) or scalar.source
                    port = None if scalar_kind(source) == "literal" else scalar.port
                    params.append(ScalarParam(name, scalar.type, source, port))
            global_ = (alt.global_ if alt and alt.global_ else None) or st.work.global_
            local = (alt.local if alt and alt.local else None) or st.work.local
            max_shaves = alt.max_shaves if alt and alt.max_shaves is not None else st.max_shaves
            kernels.append(Kernel(entry=st.entry, sources=[binary], params=params,
                                  work_sizes=WorkSizes(_dimref(st.work.dim), list(global_), list(local)),
                                  stage=st.index, max_shaves=max_shaves))
        layers.append(CustomLayer(name=spec.op, kernels=kernels, where=dict(alt.where) if alt else {}))
    return layers


def gpu_layer(spec: KernelSpec, source_name: str | None = None) -> GpuCustomLayer:
    """The Intel GPU `SimpleGPU` binding of the same .cl (single-stage kernels only)."""
    if len(spec.stages) != 1:
        raise KernelkitError("the GPU plugin runs one kernel per layer; this spec has several stages",
                             path=spec.path, where="kernel.stages")
    stage = spec.stages[0]
    defines = [GpuDefine(name=GPU_SWITCH, default="1")]
    for scalar in spec.scalars:
        if scalar.name not in stage.args or scalar.kind != "attribute":
            continue
        if scalar.port is None:
            defines.append(GpuDefine(name=scalar.name, param=scalar.source, type=scalar.type, default=scalar.default))
        else:
            defines.append(GpuDefine(name=_list_define(scalar), param=scalar.source, type=f"{scalar.type}[]",
                                     default=scalar.default))
    tensors = []
    for name in stage.args:
        tensor = spec.tensor(name)
        if tensor is None:
            continue
        kind = "output" if tensor is spec.output else "input"
        tensors.append(GpuTensor(len(tensors), kind, tensor.port, TENSOR_FORMATS[tensor.format].gpu))
    kind, index = stage.work.dim.split(",")
    dim = "output" if kind == "output" else f"input,{index}"
    return GpuCustomLayer(name=spec.op, entry=stage.entry, sources=[source_name or source_filenames(spec)[0]],
                          defines=defines, tensors=tensors, global_=list(stage.work.global_),
                          local=list(stage.work.local), dim=dim)


def gpu_host_defines(spec: KernelSpec, attrs: dict | None = None) -> dict[str, str]:
    """Macros that stand in for the GPU plugin's <Define>s and JIT constants when host-checking the GPU view."""
    attrs = attrs or {}
    defines = {GPU_SWITCH: "1"}
    for i, _ in enumerate(spec.inputs):
        defines[f"INPUT{i}_DIMS"] = "((uint[]){1,1,1,1})"
    defines["OUTPUT0_DIMS"] = "((uint[]){1,1,1,1})"
    defines["NUM_INPUTS"] = str(len(spec.inputs))
    for scalar in spec.scalars:
        if scalar.kind != "attribute":
            continue
        one = "1" if scalar.type == "int" else "1.0f"
        if scalar.port is None:
            defines[scalar.name] = one
        else:
            defines[_list_define(scalar)] = f"(({scalar.type}[]){{{one},{one},{one},{one}}})"
    return defines


def render_myriad_xml(spec: KernelSpec) -> str:
    from kernelkit.kernel.bindings import myriad_write

    return myriad_write.dumps(myriad_layers(spec))


def render_gpu_xml(spec: KernelSpec) -> str:
    from kernelkit.kernel.bindings import gpu

    return gpu.dumps([gpu_layer(spec)])
