"""SHAVE kernel source -> a program PoCL can build, unchanged in meaning.

What changes (see shave_prelude.h for the functions):
* `half`, `halfN` become float types (halfN with element alignment) through -D options; `1.0h` literals
  become `1.0f` (columns may shift,
  line numbers do not: a `#line` directive maps compiler messages back to the user's file);
* the prelude is put in front;
* a manual-DMA triplet `__dma_preload_K` / `K` / `__dma_postwrite_K` becomes three plain functions and one
  kernel `K` that runs preload, a barrier, the body, a barrier, postwrite for each work group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.opencl import SCALAR_TYPES, VECTOR_TYPE, VECTOR_WIDTHS
from kernelkit.kernel.builder.hostcheck import WORK_ITEMS_PATH, clang

PRELUDE_PATH = Path(__file__).with_name("shave_prelude.h")

# halfN are float vectors with the alignment of one element (shave_prelude.h): SHAVE kernels load and store them
# at any element boundary, where floatN would need its full size as alignment and fault on the CPU.
HALF_DEFINES = ("half=float", "half2=kk_half2", "half3=kk_half3", "half4=kk_half4", "half8=kk_half8",
                "half16=kk_half16")

# A decimal literal with the `h`/`H` suffix: 1.0h, .5h, 2e-3h, 3h (not part of an identifier or hex literal).
_HALF_LITERAL = re.compile(r"(?<![\w.])((?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)[hH](?!\w)")
_COMMENT_OR_STRING = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"", re.S)


@lru_cache(maxsize=1)
def prelude() -> str:
    return WORK_ITEMS_PATH.read_text(encoding="utf-8") + PRELUDE_PATH.read_text(encoding="utf-8")


def _sub_in_code(pattern: re.Pattern, replacement, source: str) -> str:
    """pattern.sub(replacement) on the code of `source`; comments and strings are left alone."""
    out, last = [], 0
    for m in _COMMENT_OR_STRING.finditer(source):
        out.append(pattern.sub(replacement, source[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(pattern.sub(replacement, source[last:]))
    return "".join(out)


def rewrite_half_literals(source: str) -> str:
    """`1.0h` -> `1.0f`, `3h` -> `3.0f`; comments and strings are left alone."""
    def literal(m: re.Match) -> str:
        number = m.group(1)
        if "." not in number and "e" not in number.lower():
            number += ".0"
        return number + "f"

    return _sub_in_code(_HALF_LITERAL, literal, source)


# A cast to a pointer to 16-bit integers: `(__local ushort8 *)`, `(const short*)` ...
_SHORT_POINTER_CAST = re.compile(
    r"\(\s*(?:const\s+)?(?:__)?(?:global|local|private|constant)?\s*(?:const\s+)?(u?short(?:2|3|4|8|16)?)"
    r"\s*(?:const\s*)?\*\s*\)")


def short_pointer_casts(source: str) -> list[tuple[int, str]]:
    """(line, type) of each cast to a pointer to 16-bit integers: over half data it would read the emulator's
    32-bit floats, where the device has fp16 bits."""
    code = _blank_comments(source)
    return [(code.count("\n", 0, m.start()) + 1, m.group(1) + "*") for m in _SHORT_POINTER_CAST.finditer(code)]


def _blank_comments(source: str) -> str:
    """Same length and line breaks, comments and strings replaced by spaces: safe to search for code."""
    return _COMMENT_OR_STRING.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)


@dataclass
class _KernelDecl:
    name: str
    start: int          # offset of the `__kernel` keyword (or of attributes before it)
    name_end: int       # offset just after the function name
    params: tuple[int, int]   # offsets of the text between the parentheses
    attributes: str     # `__attribute__((...))` text found in the declaration


_KERNEL_DECL = re.compile(
    r"(?P<head>(?:__attribute__\s*\(\(.*?\)\)\s*)*(?:__kernel|\bkernel)\b\s*(?:__attribute__\s*\(\(.*?\)\)\s*)*"
    r"void\s*(?:__attribute__\s*\(\(.*?\)\)\s*)*)(?P<name>[A-Za-z_]\w*)\s*\(", re.S)
_ATTRIBUTE = re.compile(r"__attribute__\s*\(\((.*?)\)\)", re.S)


def _find_kernel(code: str, name: str) -> _KernelDecl | None:
    for m in _KERNEL_DECL.finditer(code):
        if m.group("name") != name:
            continue
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        attrs = " ".join(f"__attribute__(({a}))" for a in _ATTRIBUTE.findall(m.group("head")))
        return _KernelDecl(name, m.start(), m.end("name"), (m.end(), i - 1), attrs)
    return None


def _param_names(params_text: str) -> list[str]:
    names = []
    for part in params_text.split(","):
        part = part.strip()
        if not part or part == "void":
            continue
        m = re.search(r"([A-Za-z_]\w*)\s*(\[[^\]]*\]\s*)*$", part)
        if not m:
            raise ValueError(part)
        names.append(m.group(1))
    return names


def has_dma_triplet(source: str, entry: str) -> bool:
    code = _blank_comments(source)
    return bool(re.search(rf"\b__dma_(preload|postwrite)_{re.escape(entry)}\s*\(", code))


def wrap_dma_triplet(source: str, entry: str, *, path=None) -> str:
    """Turn `__dma_preload_K`, `K`, `__dma_postwrite_K` into functions called by one kernel `K`.

    Every work item runs preload and postwrite; their WorkGroupDma* calls are group-wide copies, so this
    matches the device, where each runs once per work group before/after the group.
    """
    code = _blank_comments(source)
    body = _find_kernel(code, entry)
    if body is None:
        raise KernelkitError(f"kernel '{entry}' not found in the source", path=path,
                             hint="the <Kernel entry> must name a __kernel function of the source")
    parts = {}
    for role in ("preload", "postwrite"):
        decl = _find_kernel(code, f"__dma_{role}_{entry}")
        if decl is not None:
            parts[role] = decl
    try:
        names = _param_names(code[body.params[0]:body.params[1]])
    except ValueError as exc:
        raise KernelkitError(f"cannot read the parameter '{exc}' of kernel '{entry}'", path=path) from None
    # Rewrite declarations from the end so earlier offsets stay valid; keep every newline.
    edits = [(body, f"__kk_dma_body_{entry}")] + [(d, f"__kk_dma_{role}_{entry}") for role, d in parts.items()]
    out = source
    for decl, new_name in sorted(edits, key=lambda e: e[0].start, reverse=True):
        head = out[decl.start:decl.name_end]
        newlines = "\n" * head.count("\n")
        out = out[:decl.start] + f"static void {new_name}{newlines}" + out[decl.name_end:]
    args = ", ".join(names)
    params = re.sub(r"\s+", " ", source[body.params[0]:body.params[1]])
    params = re.sub(r"/\*.*?\*/", "", params)
    calls = []
    if "preload" in parts:
        calls.append(f"__kk_dma_preload_{entry}({args}); barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);")
    calls.append(f"__kk_dma_body_{entry}({args});")
    if "postwrite" in parts:
        calls.append(f"barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE); __kk_dma_postwrite_{entry}({args});")
    wrapper = (f"\n#line 1 \"<kernelkit manual-DMA wrapper for {entry}>\"\n"
               f"__kernel {body.attributes} void {entry}({params})\n{{\n    " + "\n    ".join(calls) + "\n}\n")
    return out + wrapper


# OpenCL scalar types by size in bytes (double too: PoCL has fp64), and the vector widths; 3-vectors take the
# room of 4. What as_typeN may reinterpret, and what the element-aligned vector typedefs cover; half is a float
# here (its as_halfN and typedefs are made apart).
_SCALARS = {name: t.size for name, t in SCALAR_TYPES.items() if t.fixed and name != "half"}
_WIDTHS = ("",) + tuple(str(w) for w in VECTOR_WIDTHS)


def _types_of_size(size: int) -> list[str]:
    found = []
    for scalar, bytes_ in _SCALARS.items():
        for width in _WIDTHS:
            if bytes_ * (4 if width == "3" else int(width or 1)) == size:
                found.append(scalar + width)
    return found


def _per_lane(width: str, call: str, vector_type: str, operand: str) -> str:
    """`call` ({} = one lane of `operand`) applied to each lane, as a `vector_type` (scalar when no width)."""
    if not width:
        return call.format(operand)
    return f"({vector_type})({', '.join(call.format(f'{operand}.s{i:x}') for i in range(int(width)))})"


@lru_cache(maxsize=1)
def fp16_bits_overloads() -> str:
    """as_shortN / as_ushortN / as_halfN for the float-backed halves (see shave_prelude.h, "fp16 bit patterns").

    A device halfN is 2N bytes (a half3 takes 8): as_halfN of any type of that size decodes fp16 bits, as_(u)shortN
    of a floatN (a halfN here) encodes them, and as_(u)shortN of any other type of 2N bytes reinterprets as usual.
    On the device a floatN can never be reinterpreted as N shorts (4N bytes against 2N), so nothing is ambiguous."""
    ovl = "static inline __attribute__((overloadable))"
    lines = ["/* generated by kernelkit.kernel.emulator.source.fp16_bits_overloads() */"]
    for width in _WIDTHS:
        device_bytes = 2 * (4 if width == "3" else int(width or 1))
        ushort, short, half = f"ushort{width}", f"short{width}", f"float{width}"
        lines += [f"#undef as_ushort{width}", f"#undef as_short{width}", f"#undef as_half{width}"]
        lines.append(f"{ovl} {ushort} as_ushort{width}({half} x) "
                     f"{{ return {_per_lane(width, 'kk_fp16_bits({})', ushort, 'x')}; }}")
        lines.append(f"{ovl} {short} as_short{width}({half} x) "
                     f"{{ return __builtin_astype(as_ushort{width}(x), {short}); }}")
        lines.append(f"{ovl} {half} as_half{width}({half} x) {{ return x; }}")
        for other in _types_of_size(device_bytes):
            if other == half:
                continue
            for target in (ushort, short):
                lines.append(f"{ovl} {target} as_{target}({other} x) {{ return __builtin_astype(x, {target}); }}")
            decode = _per_lane(width, "kk_fp16_value({})", half, "b")
            lines.append(f"{ovl} {half} as_half{width}({other} x) "
                         f"{{ const {ushort} b = __builtin_astype(x, {ushort}); return {decode}; }}")
    return "\n".join(lines) + "\n"


def pocl_source(sources: list[tuple[str, str]]) -> str:
    """The program text PoCL builds: prelude, then each (file name, text) with a #line so messages point home."""
    chunks = [prelude(), fp16_bits_overloads(), element_aligned_vector_types()]
    for name, text in sources:
        chunks.append(f'#line 1 "{name}"\n{element_aligned_vectors(rewrite_half_literals(text))}')
    return "\n".join(chunks)


def _with_dma_wrapper(sources: list[tuple[str, str]], entry: str, path=None) -> list[tuple[str, str]]:
    """The sources, or one source with a manual-DMA triplet for `entry` turned into one kernel."""
    user = "\n".join(text for _, text in sources)
    if has_dma_triplet(user, entry):
        # The wrapper rewrites the concatenated text, so it is one logical file for line numbers.
        name = sources[0][0] if len(sources) == 1 else "+".join(n for n, _ in sources)
        return [(name, wrap_dma_triplet(user, entry, path=path))]
    return sources


def transform(sources: list[tuple[str, str]], entry: str, *, path=None) -> str:
    return pocl_source(_with_dma_wrapper(sources, entry, path))


# arithmetic="fp16": clang-15 compiles the kernel with cl_khr_fp16 to SPIR, which PoCL runs with real half
# storage and arithmetic (its own front end, used by build_options' path, cannot enable fp16).
REAL_HALF_CLANG_FLAGS = ("-x", "cl", "-target", "spir64", "-cl-std=CL1.2", "-Xclang", "-finclude-default-header",
                         "-Xclang", "-cl-ext=+cl_khr_fp16", "-DKK_REAL_HALF=1", "-DKK_EMULATOR=1",
                         "-Wno-everything", "-emit-llvm", "-c")
REAL_HALF_BUILD_OPTIONS = "-x spir -spir-std=1.2"


def real_half_source(sources: list[tuple[str, str]], entry: str, *, path=None) -> str:
    """The program text for arithmetic="fp16": half built-ins, the SHAVE prelude, the user's source as written."""
    from kernelkit.kernel.emulator import fp16_builtins

    chunks = ["#define KK_REAL_HALF 1", fp16_builtins.source(), prelude(), element_aligned_vector_types()]
    chunks += [f'#line 1 "{name}"\n{element_aligned_vectors(text)}'
               for name, text in _with_dma_wrapper(sources, entry, path)]
    return "\n".join(chunks)


# SHAVE loads and stores vectors at any element boundary (shipped kernels cast `src + 1` to half8* or ushort8*);
# on the CPU a vector type's alignment is its size and such an access faults. So the user's vector types become
# typedefs of the same vectors aligned like one element (halfN: shave_prelude.h; the rest below).
_VECTOR_TYPE = re.compile(rf"\b{VECTOR_TYPE.pattern}\b")


@lru_cache(maxsize=1)
def element_aligned_vector_types() -> str:
    lines = ["/* generated by kernelkit.kernel.emulator.source.element_aligned_vector_types() */"]
    for scalar in _SCALARS:
        for width in _WIDTHS[1:]:
            lines.append(f"typedef {scalar} kk_{scalar}{width} "
                         f"__attribute__((ext_vector_type({width}), aligned(sizeof({scalar}))));")
    return "\n".join(lines) + "\n"


def element_aligned_vectors(source: str) -> str:
    """`float8` -> `kk_float8`, `half8` -> `kk_half8` ... in code, not in comments or strings."""
    return _sub_in_code(_VECTOR_TYPE, r"kk_\1\2", source)


def compile_real_half(text: str) -> tuple[bytes | None, str]:
    """clang-15's SPIR bitcode for `text` (cached by content), or None and clang's messages."""
    import hashlib
    import os
    import subprocess
    import tempfile

    from kernelkit.core.fsutil import atomic_write
    from kernelkit.core.paths import cache_dir

    compiler = clang()
    digest = hashlib.sha256("\0".join((compiler, *REAL_HALF_CLANG_FLAGS, text)).encode()).hexdigest()[:32]
    cached = cache_dir("spir") / f"{digest}.bc"
    if cached.is_file():
        return cached.read_bytes(), ""
    with tempfile.TemporaryDirectory(prefix="kernelkit-spir-") as folder:
        source, output = os.path.join(folder, "program.cl"), os.path.join(folder, "program.bc")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(text)
        done = subprocess.run([compiler, *REAL_HALF_CLANG_FLAGS, source, "-o", output], capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            return None, done.stderr
        binary = Path(output).read_bytes()
    atomic_write(cached, binary)
    return binary, ""


def build_options(precision: str) -> str:
    options = [f"-D{d}" for d in HALF_DEFINES]
    options.append(f"-DKK_ROUND_HALF={1 if precision == 'fp16' else 0}")
    options.append("-DKK_EMULATOR=1")
    return " ".join(options)


def kernel_text(source: str, names: list[str]) -> str:
    """The preprocessor lines of `source` plus the full text of the named kernels (those found).

    Used to measure one kernel's __local arrays in a file that holds several kernels."""
    code = _blank_comments(source)
    chunks = [line for line in source.splitlines() if line.lstrip().startswith("#")]
    for name in names:
        decl = _find_kernel(code, name)
        if decl is None:
            continue
        start = code.find("{", decl.params[1])
        if start < 0:
            continue
        depth, i = 0, start
        while i < len(code):
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
            if depth == 0:
                break
        chunks.append(source[decl.start:i])
    return "\n".join(chunks)
