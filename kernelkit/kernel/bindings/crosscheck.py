"""Binding against kernel source: does every <Kernel> of a MYRIAD binding fit the OpenCL function it names?

The plugin reads the real argument list from the compiled binary and fails at network compile time when an
argument has no binding; here we find the same mistakes from the `.cl` before any compiler runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from kernelkit.facts.opencl import SCALAR_TYPES
from kernelkit.kernel.bindings import clsource
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import CustomLayer, DataParam, Kernel, ScalarParam, TensorParam

INT_SCALAR_TYPES = {"int", "uint", "short", "ushort", "char", "uchar", "bool"}
FLOAT_SCALAR_TYPES = {"float", "half"}
NARROW_INT_TYPES = {name for name in INT_SCALAR_TYPES if SCALAR_TYPES[name].size < 4}


def check(layer: CustomLayer, source_text_by_entry: Mapping[str, str], *,
          source_paths: Mapping[str, str | Path] | None = None,
          defines: Mapping[str, object] | None = None, preprocessor: bool = True) -> list[Finding]:
    """Findings for each kernel of `layer` whose entry has source text in `source_text_by_entry`.

    `source_paths` (entry -> .cl path) puts source findings on the right file and resolves #includes."""
    findings: list[Finding] = []
    for kernel in layer.kernels:
        text = source_text_by_entry.get(kernel.entry)
        if text is None:
            continue
        cl_path = (source_paths or {}).get(kernel.entry)
        kernels = clsource.parse_kernels(text, defines, path=cl_path, preprocessor=preprocessor)
        findings += check_kernel(layer, kernel, kernels, cl_path)
    return findings


def check_kernel(layer: CustomLayer, kernel: Kernel, kernels: list[clsource.KernelSignature],
                 cl_path: str | Path | None = None) -> list[Finding]:
    out: list[Finding] = []
    kwhere = f"<Kernel entry=\"{kernel.entry}\">"

    def on_binding(severity, message, line=None, where=kwhere, hint=None, plugin=None):
        out.append(Finding(severity, message, path=layer.path, line=line or kernel.line, where=where, hint=hint,
                           plugin=plugin))

    def on_source(severity, message, line=None, where=None, hint=None, plugin=None):
        out.append(Finding(severity, message, path=cl_path or layer.path, line=line if cl_path else kernel.line,
                           where=where, hint=hint, plugin=plugin))

    entries = clsource.entry_points([k for k in kernels if k.has_body])
    if len(entries) > 1:
        names = ", ".join(k.name for k in entries)
        on_source("error", f"the source defines {len(entries)} __kernel functions ({names}); the MYRIAD plugin "
                  "needs exactly one per binary", entries[1].line,
                  hint="put each entry point in its own .cl file (DMA __dma_preload_/__dma_postwrite_ companions "
                       "may stay)", plugin="rejects")
    entry = next((k for k in kernels if k.name == kernel.entry and k.has_body), None)
    if entry is None:
        found = ", ".join(k.name for k in kernels) or "none"
        close = [k.name for k in kernels if k.name.lower() == kernel.entry.lower()]
        on_binding("error", f"entry '{kernel.entry}' is not a __kernel function of the source "
                   f"(found: {found})", hint=f"did you mean '{close[0]}'? names are case-sensitive" if close else
                   "entry must equal the kernel function name", plugin="rejects")
        return out
    for companion in kernels:
        if companion.companion_of == kernel.entry and companion.has_body:
            mismatch = len(companion.args) != len(entry.args) or not all(
                a.same_signature(b) for a, b in zip(companion.args, entry.args))
            if mismatch:
                on_source("error", f"{companion.name} must have exactly the parameter list of {entry.name}",
                          companion.line, hint="copy the entry's parameters to the DMA companion unchanged")
    if entry.unreadable:
        on_source("warning", f"cannot read parameters {entry.unreadable} of {entry.name} (macros need clang-15 "
                  "to expand); they were not checked", entry.line)

    bound = {p.arg_name: p for p in kernel.params}
    for arg in entry.args:
        param = bound.get(arg.name)
        if param is None:
            close = [n for n in bound if n.lower() == arg.name.lower()]
            on_binding("error", f"kernel argument '{arg.name}' ({arg.text}) has no binding; the plugin fails "
                       "with 'no definition for parameter'", hint=f"arg-name '{close[0]}' differs only in case"
                       if close else "add a <Tensor>, <Data> or <Scalar> with this arg-name", plugin="rejects")
            continue
        problem = _mismatch(param, arg)
        if problem:
            severity, message, hint = problem
            on_binding(severity, message, param.line, f"{kwhere} arg-name=\"{param.arg_name}\"", hint)
    for name, param in bound.items():
        if entry.arg(name) is None and not entry.unreadable:
            if isinstance(param, ScalarParam):
                on_binding("warning", f"<Scalar arg-name=\"{name}\"> binds no argument of {entry.name}; the plugin "
                           "ignores it", param.line)
            elif isinstance(param, TensorParam) and param.type == "output":
                on_binding("error", f"<Tensor arg-name=\"{name}\" type=\"output\"> binds no argument of "
                           f"{entry.name}: nothing writes output {param.port_index}", param.line,
                           hint="fix the arg-name or remove the binding")
            else:
                # the plugin accepts it (probe kernel.unknown-arg-name-tensor) and the kernel never sees it
                kind = "Tensor" if isinstance(param, TensorParam) else "Data"
                on_binding("warning", f"<{kind} arg-name=\"{name}\"> binds no argument of {entry.name}; the "
                           "plugin accepts it and the kernel never reads it", param.line,
                           hint="fix the arg-name or remove the binding")
    return out


def _mismatch(param, arg: clsource.KernelArg):
    """(severity, message, hint) when `param` cannot feed `arg`, else None."""
    if isinstance(param, ScalarParam):
        if arg.pointer:
            return ("error", f"<Scalar> bound to pointer argument '{arg.text}'",
                    "pointers are bound with <Tensor> (global) or <Data type=\"local_data\"> (local)")
        if arg.vector_width > 1:
            return ("error", f"<Scalar> cannot fill vector argument '{arg.text}'", "pass a scalar and widen it in C")
        if param.type == "int" and arg.base_type not in INT_SCALAR_TYPES:
            return ("error", f"<Scalar type=\"int\"> bound to '{arg.text}'",
                    "type=\"float\" for float/half arguments; only 32-bit int/float scalars can be passed")
        if param.type == "float" and arg.base_type not in FLOAT_SCALAR_TYPES:
            return ("error", f"<Scalar type=\"float\"> bound to '{arg.text}'",
                    "type=\"int\" for integer arguments; only 32-bit int/float scalars can be passed")
        if arg.base_type in NARROW_INT_TYPES:
            return ("warning", f"the plugin passes a 32-bit int to the {arg.base_type} argument '{arg.name}'",
                    "declare it int or uint")
        return None
    if isinstance(param, DataParam) and param.type == "local_data":
        if not arg.pointer or arg.address_space != "local":
            return ("error", f"<Data type=\"local_data\"> must bind a __local pointer, not '{arg.text}'", None)
        return None
    # Tensors and <Data type="data"> are buffers in DDR
    kind = f"<Tensor type=\"{param.type}\">" if isinstance(param, TensorParam) else "<Data type=\"data\">"
    if not arg.pointer:
        return ("error", f"{kind} must bind a __global pointer, not '{arg.text}'", None)
    if arg.address_space == "local":
        return ("error", f"{kind} bound to __local pointer '{arg.text}'",
                "__local arguments are bound with <Data type=\"local_data\" dim=... size=...>")
    if arg.address_space not in ("global", "constant"):
        return ("error", f"{kind} must bind a __global pointer, not '{arg.text}'", None)
    writes = isinstance(param, TensorParam) and param.type in ("output", "output_buffer")
    if writes and (arg.const or arg.address_space == "constant"):
        return ("error", f"{kind} is written by the kernel but '{arg.text}' is read-only", "drop const")
    if isinstance(param, TensorParam) and param.type in ("input", "output") and arg.scalar_type in ("float",
                                                                                                      "double"):
        return ("warning", f"'{arg.text}': MYRIAD tensors are FP16 (FP32 layers are converted), so the kernel "
                "should take half*", None)
    return None


def check_gpu(layer, source_text: str, *, cl_path: str | Path | None = None) -> list[Finding]:
    """A SimpleGPU binding against its OpenCL source: the entry exists and each <Tensor arg-index> is a
    __global pointer argument at that position (the JIT macros such as INPUT0_TYPE stay unexpanded)."""
    out: list[Finding] = []
    where = f"<CustomLayer name=\"{layer.name}\">"
    kernels = clsource.parse_kernels(source_text, path=cl_path)
    entry = next((k for k in kernels if k.name == layer.entry and k.has_body), None)
    if entry is None:
        found = ", ".join(k.name for k in kernels) or "none"
        return [Finding("error", f"entry '{layer.entry}' is not a __kernel function of the source (found: {found})",
                        path=layer.path, line=layer.line, where=where)]
    if entry.unreadable:
        out.append(Finding("warning", f"cannot read parameters {entry.unreadable} of {entry.name}; not checked",
                           path=cl_path or layer.path, line=entry.line if cl_path else layer.line))
        return out
    if len(entry.args) != len(layer.tensors):
        out.append(Finding("error", f"{entry.name} has {len(entry.args)} arguments but <Buffers> binds "
                           f"{len(layer.tensors)}; GPU kernels take only tensors (scalars come in as <Define>)",
                           path=layer.path, line=layer.line, where=where))
    for tensor in layer.tensors:
        if tensor.arg_index >= len(entry.args):
            continue
        arg = entry.args[tensor.arg_index]
        if not arg.pointer or arg.address_space != "global":
            out.append(Finding("error", f"arg-index {tensor.arg_index} is '{arg.text}', not a __global pointer",
                               path=layer.path, line=layer.line, where=where))
        elif tensor.type == "output" and arg.const:
            out.append(Finding("error", f"output arg-index {tensor.arg_index} is read-only '{arg.text}'",
                               path=layer.path, line=layer.line, where=where, hint="drop const"))
    return out

