"""SHAVE lint: what compiles for a host OpenCL device but not for (or badly on) the Myriad X SHAVE cores.

Rules (reference myriad-custom-layers.md §3): no double, printf, images, long/64-bit atomics; on-chip memory
per work group (in-kernel `__local` and `__private` arrays, plus `local_data` arguments) estimated in bytes
(half = 2) against the ~100 KB of CMX a work group has, with a warning above 64 KB; early exits and pointer
arguments without `restrict` are warnings (they cost the vectoriser and the scheduler).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kernelkit.facts.opencl import type_size
from kernelkit.kernel.bindings.findings import Finding

# A SHAVE slice of CMX is 128 KiB; code, stack and the runtime take part of it. The guide speaks of about
# 100 KB for a work group's __local/__private data: more fails.
CMX_BUDGET_BYTES = 100 * 1024
CMX_WARN_BYTES = 64 * 1024

_ADDRESS = r"(?:__local|local|__private|private|__constant|constant|__global|global)"
_ARRAY_DECL = re.compile(
    r"(?P<space>\b" + _ADDRESS + r"\s+)?(?:(?:const|volatile|static)\s+)*"
    r"\b(?P<type>(?:unsigned\s+)?[A-Za-z_]\w*)\s+(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]\[;]*\]\s*)+)\s*[;=]")
_KERNEL_HEAD = re.compile(r"\b(?:__kernel|kernel)\b[^;{]*?\b([A-Za-z_]\w*)\s*\(")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+(.+?)[ \t]*$", re.MULTILINE)
_SAFE_ARITH = re.compile(r"[\d\s+\-*/%()]+\Z")

Origin = Callable[[int, int], "tuple[str, int] | None"]


def strip_comments_and_strings(source: str) -> str:
    """Comments and string literals blanked out; line and column positions are kept."""
    def blank(match):
        return re.sub(r"[^\n]", " ", match.group(0))
    return re.sub(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", blank, source, flags=re.DOTALL)


def _macros(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in _DEFINE.finditer(text)}


def _evaluate_size(text: str, macros: dict[str, str], depth: int = 0) -> int | None:
    """An array dimension from integer literals and object-like macros; None when it needs more than that."""
    if depth > 10:
        return None
    expanded = re.sub(r"\b([A-Za-z_]\w*)\b",
                      lambda m: f"({macros[m.group(1)]})" if m.group(1) in macros else m.group(0), text)
    if expanded != text:
        return _evaluate_size(expanded, macros, depth + 1)
    expanded = re.sub(r"\b(\d+)[uUlL]*\b", r"\1", expanded)
    if not expanded.strip() or not _SAFE_ARITH.match(expanded):
        return None
    try:
        value = eval(expanded.replace("/", "//"), {"__builtins__": {}}, {})  # digits and operators only
    except Exception:
        return None
    return int(value) if isinstance(value, int) and value >= 0 else None


@dataclass
class ArrayUse:
    kernel: str
    name: str
    space: str            # "local" or "private"
    bytes: int | None     # None: size not computable from the source alone
    line: int


def kernel_bodies(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) offsets of each __kernel function body in comment-free text."""
    bodies = []
    for match in _KERNEL_HEAD.finditer(text):
        depth, i = 0, match.end()
        while i < len(text) and (text[i] != ")" or depth):   # skip the parameter list
            depth += text[i] == "("
            depth -= text[i] == ")" and depth > 0
            i += 1
        j = i + 1
        while j < len(text) and text[j].isspace():
            j += 1
        if j >= len(text) or text[j] != "{":
            continue                                        # a declaration, not a definition
        depth, k = 0, j
        while k < len(text):
            depth += text[k] == "{"
            depth -= text[k] == "}"
            if depth == 0:
                break
            k += 1
        bodies.append((match.group(1), j, k))
    return bodies


def array_uses(source: str) -> list[ArrayUse]:
    text = strip_comments_and_strings(source)
    macros = _macros(text)
    uses = []
    for kernel, start, end in kernel_bodies(text):
        body = text[start:end]
        for m in _ARRAY_DECL.finditer(body):
            space = (m.group("space") or "").strip().lstrip("_") or "private"
            if space in ("global", "constant"):
                continue
            elem = type_size(m.group("type"))
            if elem is None:            # event_t and other opaque types: not data
                continue
            total = elem
            for dim in re.findall(r"\[([^\]]*)\]", m.group("dims")):
                size = _evaluate_size(dim, macros)
                total = None if size is None or total is None else total * size
            line = text.count("\n", 0, start + m.start("name")) + 1
            uses.append(ArrayUse(kernel, m.group("name"), space, total, line))
    return uses


def local_memory_estimate(source: str) -> list[tuple[str, int]]:
    """The `__local` arrays declared inside kernels, with their size in bytes (half = 2, float = 4, int = 4).
    Arrays whose size the source alone does not fix are left out."""
    return [(u.name, u.bytes) for u in array_uses(source) if u.space == "local" and u.bytes is not None]


def private_memory_estimate(source: str) -> list[tuple[str, int]]:
    """The `__private` arrays declared inside kernels (they live in CMX too), with their size in bytes."""
    return [(u.name, u.bytes) for u in array_uses(source) if u.space == "private" and u.bytes is not None]


_BANNED = [
    (re.compile(r"\bdouble\d*\b"), "double", "SHAVE has no fp64", "use float or half"),
    (re.compile(r"\bprintf\s*\("), "printf", "SHAVE kernels have no printf", "remove it; debug on the emulator"),
    (re.compile(r"\b(?:image[123]d(?:_array|_buffer)?_t|sampler_t|read_image\w*|write_image\w*)\b"), "image",
     "SHAVE kernels have no image support", "pass the data as a __global buffer"),
    (re.compile(r"\b(?:u?long\d*|unsigned\s+long)\b"), "long", "64-bit integers are not used on SHAVE",
     "use int; tensors never need 64-bit indices there"),
    (re.compile(r"\bcl_khr_int64_(?:base|extended)_atomics\b"), "64-bit atomics",
     "64-bit atomics are not available on SHAVE", "use per-group partial results and a second stage"),
]


def lint_source(source: str, *, path: str | Path | None = None, origin: Origin | None = None,
                local_data_bytes: int = 0) -> list[Finding]:
    """SHAVE findings for one kernel source. `origin(line, column)` maps a line to the template that made it;
    `local_data_bytes` adds the `local_data` arguments the binding allocates per work group."""
    text = strip_comments_and_strings(source)
    findings: list[Finding] = []

    def locate(line: int, column: int = 1):
        mapped = origin(line, column) if origin else None
        if mapped:
            return mapped[0], mapped[1], f"{Path(path).name if path else 'source'}:{line}"
        return path, line, None

    def add(severity, message, line, column=1, hint=None):
        where_path, where_line, where = locate(line, column)
        findings.append(Finding(severity, message, path=where_path, line=where_line, where=where, hint=hint))

    for pattern, what, message, hint in _BANNED:
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            add("error", f"{message} ({m.group(0).strip()})", line, column, hint)
            break

    if re.search(r"\bhalf\d*\b", text) and not re.search(r"cl_khr_fp16\s*:\s*enable", text):
        add("warning", "uses half without `#pragma OPENCL EXTENSION cl_khr_fp16 : enable`", 1)

    bodies = kernel_bodies(text)
    if not bodies:
        add("warning", "no __kernel function found", 1)
    for kernel, start, end in bodies:
        for m in re.finditer(r"\breturn\b", text[start:end]):
            line = text.count("\n", 0, start + m.start()) + 1
            add("warning", f"{kernel}: early `return` in a kernel breaks clc's vectoriser (up to 2x slower)", line,
                hint="clamp the index with min() instead, or pad the work size")
            break

    by_kernel: dict[str, list[ArrayUse]] = {}
    for use in array_uses(source):
        by_kernel.setdefault(use.kernel, []).append(use)
        if use.bytes is None:
            add("warning", f"{use.kernel}: cannot size array '{use.name}' from the source; not counted in CMX use",
                use.line, hint="size on-chip arrays with literals or #define constants")
    for kernel, uses in by_kernel.items():
        total = sum(u.bytes or 0 for u in uses) + local_data_bytes
        line = min(u.line for u in uses)
        detail = ", ".join(f"{u.name} {u.bytes} B" for u in uses if u.bytes)
        if total > CMX_BUDGET_BYTES:
            add("error", f"{kernel}: {total} bytes of on-chip memory per work group ({detail}) exceed the "
                         f"~{CMX_BUDGET_BYTES // 1024} KB of CMX a SHAVE work group has", line,
                hint="use smaller tiles")
        elif total > CMX_WARN_BYTES:
            add("warning", f"{kernel}: {total} bytes of on-chip memory per work group ({detail}); above "
                           f"{CMX_WARN_BYTES // 1024} KB is risky on SHAVE", line, hint="use smaller tiles")

    try:
        from kernelkit.kernel.bindings import clsource
        signatures = clsource.parse_kernels(source, path=path)
    except Exception:  # the host check reports unreadable sources; lint stays quiet about them
        signatures = []
    for sig in signatures:
        if not getattr(sig, "has_body", True):
            continue
        for arg in sig.args:
            if arg.pointer and arg.address_space == "global" and not arg.restrict:
                add("warning", f"{sig.name}: pointer argument '{arg.name}' lacks `restrict` (up to ~20% slower "
                               "on SHAVE)", sig.line or 1, hint="declare it `__global T* restrict name`")
    return findings
