"""On-chip memory (CMX) per work group: local_data arguments plus __local arrays declared in kernels."""

from __future__ import annotations

import re

# A SHAVE slice of CMX is 128 KiB; code, stack and the runtime take part of it. The guide speaks of about
# 100 KB for a work group's __local/__private data; we fail above exactly 100 KiB and warn above 70 KiB
# (the largest shipped 2021 kernels use about 68 KB).
CMX_BUDGET_BYTES = 100 * 1024
CMX_WARN_BYTES = 70 * 1024

FP16_SIZES = {"half": 2, "float": 4, "int": 4, "uint": 4, "short": 2, "ushort": 2, "char": 1, "uchar": 1,
              "long": 8, "ulong": 8, "double": 8}


def local_arrays(source: str) -> list[tuple[str, int]]:
    """`__local` arrays declared inside kernels and their size in device bytes (half = 2)."""
    try:
        from kernelkit.kernel.builder.lint import local_memory_estimate
    except ImportError:
        return _local_arrays_fallback(source)
    return list(local_memory_estimate(source))


# --- fallback until kernelkit.kernel.builder.lint exists (authoring helper's area); literal sizes and #defines only ---
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)[ \t]+([^\n]+)$", re.M)
_LOCAL_ARRAY = re.compile(r"\b(?:__local|local)\s+(?:const\s+)?([A-Za-z_]\w*?)(2|3|4|8|16)?\s+([A-Za-z_]\w*)"
                          r"\s*((?:\[[^\]]+\]\s*)+)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?;")


def _local_arrays_fallback(source: str) -> list[tuple[str, int]]:
    code = re.sub(r"//[^\n]*|/\*.*?\*/", " ", source, flags=re.S)
    macros = {m.group(1): m.group(2).strip() for m in _DEFINE.finditer(code)}
    found = []
    for m in _LOCAL_ARRAY.finditer(code):
        base, width, name, dims = m.group(1), m.group(2), m.group(3), m.group(4)
        if base not in FP16_SIZES:
            continue
        count = 1
        for dim in re.findall(r"\[([^\]]+)\]", dims):
            value = _const_value(dim, macros)
            if value is None:
                count = None
                break
            count *= value
        if count is not None:
            found.append((name, count * FP16_SIZES[base] * int(width or 1)))
    return found


def _const_value(text: str, macros: dict[str, str], depth: int = 0) -> int | None:
    if depth > 8:
        return None
    expanded = re.sub(r"[A-Za-z_]\w*", lambda m: f"({macros.get(m.group(0), '?')})", text)
    if "?" in expanded:
        return None
    if re.search(r"[A-Za-z_]", expanded):
        return _const_value(expanded, macros, depth + 1)
    if not re.fullmatch(r"[\d\s+\-*/()]+", expanded):
        return None
    try:
        return int(eval(expanded.replace("/", "//"), {"__builtins__": {}}))  # digits and + - * / ( ) only
    except Exception:
        return None
