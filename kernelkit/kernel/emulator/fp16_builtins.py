"""OpenCL C definitions of the `half` built-ins that PoCL's kernel library lacks.

arithmetic="fp16" compiles a kernel with clang-15 (``-target spir64 -cl-ext=+cl_khr_fp16``, the default header
opencl-c.h) to SPIR bitcode and lets PoCL build that. Half operators and half<->float casts work there, but PoCL's
library defines no built-in taking or returning half except vload_half* / vloada_half* / vstore_half* /
vstorea_half* (float or double <-> half memory); every other call on half (exp, fmax, convert_half8, vload8 on a
half pointer, async_work_group_copy on half pointers, ...) fails to link ("Cannot find symbol _Z3expDh").

source() is OpenCL C placed in FRONT of the user's kernel, in the same translation unit. It defines those
built-ins with exactly the signatures opencl-c.h declares for half, half2, half3, half4, half8 and half16, so the
user's calls resolve to the header's declarations and the definitions here give them bodies (same mangled names).
They are external definitions: `static` would contradict the header's declarations. The few overloads the
header does not declare for half (native_*, half_*, fast_* - clang declares those for float only) are new
overloads and are `static inline`.

How they compute:
  - math, common and geometric functions: widen to float (exact), call PoCL's float built-in, round the result
    once to half (round to nearest even). fma is done in double and rounded once (float would round twice);
    nextafter steps over half encodings; fract keeps its result below 1 in half. half8 and half16 arguments
    are split into halves (down to float4 calls): see SAFE_BYTES.
  - relational functions: on the float values, or on the fp16 bits (isnormal, signbit, select, bitselect);
    scalars return int 1/0, vectors shortN -1/0, as the header declares.
  - conversions to half: from float with the default or _rte mode by a cast; the directed modes (_rtz _rtp _rtn)
    and all conversions from double go lane by lane through PoCL's scalar vstore_half_<mode> into a private
    half variable (its vector vstore_halfN are broken for some widths, see _round_store);
    integers go through float first (exact below 2^24, and beyond that every mode gives the same half).
    Conversions from half widen to float (exact) and call PoCL's conversion from float, so _sat and the
    rounding modes are PoCL's.
  - vloadN / vstoreN on half pointers reinterpret the data as ushort (vstore16 as two vstore8);
    shuffle / shuffle2 pick the lanes themselves.
  - async_work_group_copy / async_work_group_strided_copy on half pointers: the work-items of the group share
    the copy out, meet at a barrier, then return PoCL's own copy of 0 elements on the same pointers, so the
    event is a real one and wait_group_events() accepts it. Every work-item of the group must reach the call
    (as OpenCL requires of async copies anyway). prefetch does nothing.
Not defined: read_imageh / write_imageh (images), sub-group and Intel sub-group functions on half.
"""

from __future__ import annotations

import functools

from kernelkit.facts.opencl import SCALAR_TYPES, VECTOR_WIDTHS

OVL = "__attribute__((overloadable))"
NEW = "static inline __attribute__((overloadable))"   # overloads opencl-c.h does not declare for half

WIDTHS = (1,) + VECTOR_WIDTHS
# No call from here into PoCL's kernel library passes a vector argument wider than this (float4, int4, double2,
# ushort8); half8 and half16 built-ins split into halves first. See _round_store for the PoCL bug.
SAFE_BYTES = 16
SPLIT_WIDTHS = (8, 16)
SHUFFLE_WIDTHS = (2, 4, 8, 16)
COMPONENTS = "0123456789abcdef"

# Math functions (OpenCL 1.2 section 6.12.2) that opencl-c.h declares for half: name -> arity (all halfN).
MATH_UNARY = (
    "acos acosh acospi asin asinh asinpi atan atanh atanpi cbrt ceil cos cosh cospi erfc erf exp exp2 exp10 "
    "expm1 fabs floor lgamma log log2 log10 log1p logb rint round rsqrt sin sinh sinpi sqrt tan tanh tanpi "
    "tgamma trunc").split()
# PoCL 3.1's float vector sin, cos and tan are wrong in lanes with small arguments when another lane needs
# the large-argument reduction (sin((float8)(1e-5, ..., 65504)) gives 0.0078 in lane 0): one lane at a time.
LANEWISE = ("sin", "cos", "tan")
MATH_BINARY = "atan2 atan2pi copysign fdim fmod hypot maxmag minmag pow powr remainder".split()
MATH_BINARY_SCALAR2 = "fmax fmin".split()                # also (halfN, half)
# native_* and half_* (float-only in opencl-c.h): new half overloads.
NATIVE_UNARY = "cos exp exp2 exp10 log log2 log10 recip rsqrt sin sqrt tan".split()
NATIVE_BINARY = "divide powr".split()
# Functions that return a second result through a pointer: name -> (arguments before it, pointee kind).
POINTER_FUNCTIONS = {"fract": (1, "half"), "modf": (1, "half"), "sincos": (1, "half"),
                     "frexp": (1, "int"), "lgamma_r": (1, "int"), "remquo": (2, "int")}
POINTER_SPACES = ("__global", "__local", "__private")
LOAD_SPACES = ("__constant", "__global", "__local", "__private")
STORE_SPACES = ("__global", "__local", "__private")

RELATIONAL_BINARY = ("isequal isnotequal isgreater isgreaterequal isless islessequal islessgreater isordered "
                     "isunordered").split()
RELATIONAL_UNARY_FLOAT = "isfinite isinf isnan".split()

INTEGER_TYPES = tuple(name for name, t in SCALAR_TYPES.items() if t.fixed and t.numpy.startswith(("int", "uint")))
CONVERT_SOURCES = INTEGER_TYPES + ("float", "double", "half")
ROUNDINGS = ("", "_rte", "_rtz", "_rtp", "_rtn")


def _s(n: int) -> str:
    return "" if n == 1 else str(n)


def _t(base: str, n: int) -> str:
    return base + _s(n)


def _to(expr: str, base: str, n: int) -> str:
    """A value conversion of `expr` (width n) to base type `base` (a cast, element-wise for vectors)."""
    return f"(({base})({expr}))" if n == 1 else f"__builtin_convertvector({expr}, {base}{n})"


def _f(expr: str, n: int) -> str:
    return _to(expr, "float", n)


def _h(expr: str, n: int) -> str:
    return _to(expr, "half", n)


def _apply(name: str, n: int, *args: str) -> str:
    """name(args widened to float), rounded once to half."""
    return _h(f"{name}(" + ", ".join(_f(a, n) for a in args) + ")", n)


def _lanes(n: int, fmt: str, result: str) -> str:
    """`result` built lane by lane: fmt is formatted with the lane's accessor suffix (".s0", ...)."""
    if n == 1:
        return fmt.format("")
    return f"({result})(" + ", ".join(fmt.format(f".s{COMPONENTS[i]}") for i in range(n)) + ")"


def _round_store(value: str, src: str, n: int, mode: str) -> str:
    """Statements rounding `value` (src N, float or double) into the halfN variable r with PoCL's scalar
    vstore_half<mode>, one lane at a time.

    Not PoCL's vstore_halfN<mode>: in PoCL 3.1's kernel library (Debian 3.1-3) the SPIR entry points of the
    vector ones hand the _cl_ implementation an uninitialised stack copy of the vector whenever the x86-64 ABI
    passes that vector in memory (wider than the library's legal vector width), so they round stack garbage
    (0, NaN, anything). Which ones depends on the library variant PoCL picks for the CPU: avx512 breaks
    double16; avx2 (e.g. a Haswell or AMD EPYC host) also double8 (_rte, _rtn, default); sse2 to sse4.1 also
    double3/double4 in most modes and float8/float16 with _rtp. Scalar arguments are passed in registers on
    every variant, so one lane at a time is right on any x86-64 CPU.

    The same bug hits other vector functions of the library (checked in all nine disassembled variants): on
    avx2 float16 cbrt, cosh, erf, expm1, lgamma(_r), log1p, log2, pow, powr, remainder, remquo, rootn, sinh,
    tgamma, atan2 and fmod (log2(0.5) gave 57); on sse2 to sse4.1 also float8 ones and shuffle2 on ushort16.
    No broken entry point takes only arguments of SAFE_BYTES (16) or fewer, the most every variant passes in
    registers, so the half8/half16 built-ins split their arguments down to that width first (_split)."""
    mode = mode or "_rte"
    if n == 1:
        return f"vstore_half{mode}({value}, 0, (__private half *)&r);"
    return (f"{_t(src, n)} kk_v = {value}; "
            + " ".join(f"vstore_half{mode}(kk_v.s{COMPONENTS[i]}, {i}, (__private half *)&r);" for i in range(n)))


def _split(ret: str, name: str, *args: str, scalars: str = "") -> str:
    """A body computing the width-8/16 `name` from its own half-width overload on the .lo and .hi halves of the
    vector arguments `args` (then trailing scalar arguments `scalars`), so that no call here passes PoCL's
    library a vector wider than SAFE_BYTES."""
    tail = ", " + scalars if scalars else ""
    lo, hi = (", ".join(f"{a}.{part}" for a in args) + tail for part in ("lo", "hi"))
    return f"return ({ret})({name}({lo}), {name}({hi}));"


def _fn(attrs: str, ret: str, name: str, params: str, body: str) -> str:
    return f"{attrs} {ret} {name}({params}) {{ {body} }}"


def _math() -> list[str]:
    out = ["/* ---- math (6.12.2), computed in float and rounded once to half ---- */"]
    for n in WIDTHS:
        h, fl = _t("half", n), _t("float", n)
        split = n in SPLIT_WIDTHS
        for name in MATH_UNARY:
            if split:
                body = _split(h, name, "x")
            elif n > 1 and name in LANEWISE:
                body = "return " + _lanes(n, f"(half){name}((float)x{{0}})", h) + ";"
            else:
                body = f"return {_apply(name, n, 'x')};"
            out.append(_fn(OVL, h, name, f"{h} x", body))
        for name in MATH_BINARY + MATH_BINARY_SCALAR2:
            body = _split(h, name, "x", "y") if split else f"return {_apply(name, n, 'x', 'y')};"
            out.append(_fn(OVL, h, name, f"{h} x, {h} y", body))
        if n > 1:
            for name in MATH_BINARY_SCALAR2:
                out.append(_fn(OVL, h, name, f"{h} x, half y", f"return {name}(x, ({h})(y));"))
        # native_*: PoCL's native float function; half_*: PoCL has none (not even for float), so the full half
        # one defined here (sin, cos, tan lane by lane).
        for name in NATIVE_UNARY:
            if name == "recip":
                native = half = f"return {_h('1.0f / ' + _f('x', n), n)};"
            else:
                native = _split(h, "native_" + name, "x") if split else f"return {_apply('native_' + name, n, 'x')};"
                half = f"return {name}(x);"
            out.append(_fn(NEW, h, "native_" + name, f"{h} x", native))
            out.append(_fn(NEW, h, "half_" + name, f"{h} x", half))
        for name in NATIVE_BINARY:
            if name == "divide":
                native = half = f"return {_h(_f('x', n) + ' / ' + _f('y', n), n)};"
            else:
                native = (_split(h, "native_" + name, "x", "y") if split
                          else f"return {_apply('native_' + name, n, 'x', 'y')};")
                half = f"return {name}(x, y);"
            out.append(_fn(NEW, h, "native_" + name, f"{h} x, {h} y", native))
            out.append(_fn(NEW, h, "half_" + name, f"{h} x, {h} y", half))
        # mad may round twice (a*b is exact in float); fma is rounded once from double.
        out.append(_fn(OVL, h, "mad", f"{h} a, {h} b, {h} c", _split(h, "mad", "a", "b", "c") if split
                       else f"return {_apply('mad', n, 'a', 'b', 'c')};"))
        if n == 1:
            out.append(_fn(OVL, h, "fma", "half a, half b, half c",
                           f"half r; {_round_store('fma((double)a, (double)b, (double)c)', 'double', 1, '_rte')} "
                           "return r;"))
        else:   # lane by lane: double3 and wider exceed SAFE_BYTES
            out.append(_fn(OVL, h, "fma", f"{h} a, {h} b, {h} c",
                           "return " + _lanes(n, "fma(a{0}, b{0}, c{0})", h) + ";"))
        i = _t("int", n)
        for name in ("ldexp", "pown", "rootn"):
            out.append(_fn(OVL, h, name, f"{h} x, {i} k", _split(h, name, "x", "k") if split
                           else f"return {_h(name + '(' + _f('x', n) + ', k)', n)};"))
        if n > 1:
            out.append(_fn(OVL, h, "ldexp", f"{h} x, int k", f"return ldexp(x, ({i})(k));"))
        out.append(_fn(OVL, i, "ilogb", f"{h} x", _split(i, "ilogb", "x") if split
                       else "return ilogb(" + _f('x', n) + ");"))
        u = _t("ushort", n)
        out.append(_fn(OVL, h, "nan", f"{u} code",
                       f"return as_{h}(({u})(({u})(0x7e00) | (code & ({u})(0x01ff))));"))
        # nextafter steps over fp16 encodings (float's nextafter would step by a float ulp).
        if n == 1:
            out.append(_fn(OVL, "half", "nextafter", "half x, half y",
                           "if (isnan(x) || isnan(y)) return x + y; if (x == y) return y; "
                           "if (x == (half)0) return as_half((short)((as_short(y) & (short)0x8000) | 1)); "
                           "return as_half((short)(as_short(x) + (((x < y) == (x > (half)0)) ? 1 : -1)));"))
        else:
            out.append(_fn(OVL, h, "nextafter", f"{h} x, {h} y",
                           "return " + _lanes(n, 'nextafter(x{0}, y{0})', h) + ";"))
        for name, (before, kind) in POINTER_FUNCTIONS.items():
            pointee = _t(kind if kind == "int" else "half", n)
            local = _t("int" if kind == "int" else "float", n)
            store = "t" if kind == "int" else _h("t", n)
            args = ", ".join(_f(v, n) for v in "xy"[:before])
            params = ", ".join(f"{h} {v}" for v in "xy"[:before])
            if name == "fract":   # keep the result below 1 after rounding: fmin(x - floor(x), 0x1.ffcp-1h)
                fix = f"r = (r > 0x1.ffcp-1f) ? ({fl})(0x1.ffcp-1f) : r; "
            else:
                fix = ""
            if name == "sincos" and n > 1:
                for space in POINTER_SPACES:
                    out.append(_fn(OVL, h, name, f"{params}, {space} {pointee} *p",
                                   f"*p = cos(x); return sin(x);"))
                continue
            for space in POINTER_SPACES:
                if split:     # the half-width overload for __private pointers, twice
                    half_pointee = _t(kind if kind == "int" else "half", n // 2)
                    lo, hi = (", ".join(f"{v}.{part}" for v in "xy"[:before]) for part in ("lo", "hi"))
                    body = (f"{half_pointee} t0, t1; {h} r = ({h})({name}({lo}, &t0), {name}({hi}, &t1)); "
                            f"*p = ({pointee})(t0, t1); return r;")
                else:
                    body = (f"{local} t; {fl} r = {name}({args}, &t); {fix}"
                            f"*p = {store}; return {_h('r', n)};")
                out.append(_fn(OVL, h, name, f"{params}, {space} {pointee} *p", body))
    return out


def _common() -> list[str]:
    out = ["/* ---- common and geometric functions ---- */"]
    for n in WIDTHS:
        h, fl = _t("half", n), _t("float", n)
        x, y, z = (_f(v, n) for v in "xyz")
        call = (lambda name, *args: _split(h, name, *args)) if n in SPLIT_WIDTHS else \
               (lambda name, *args: f"return {_apply(name, n, *args)};")
        for name in ("degrees", "radians", "sign"):
            out.append(_fn(OVL, h, name, f"{h} x", call(name, "x")))
        for name in ("max", "min"):
            out.append(_fn(OVL, h, name, f"{h} x, {h} y", call(name, "x", "y")))
            if n > 1:
                out.append(_fn(OVL, h, name, f"{h} x, half y", f"return {name}(x, ({h})(y));"))
        out.append(_fn(OVL, h, "clamp", f"{h} x, {h} y, {h} z", call("clamp", "x", "y", "z")))
        out.append(_fn(OVL, h, "mix", f"{h} x, {h} y, {h} z", call("mix", "x", "y", "z")))
        out.append(_fn(OVL, h, "step", f"{h} x, {h} y", call("step", "x", "y")))
        out.append(_fn(OVL, h, "smoothstep", f"{h} x, {h} y, {h} z", call("smoothstep", "x", "y", "z")))
        if n > 1:
            out.append(_fn(OVL, h, "clamp", f"{h} x, half y, half z", f"return clamp(x, ({h})(y), ({h})(z));"))
            out.append(_fn(OVL, h, "mix", f"{h} x, {h} y, half z", f"return mix(x, y, ({h})(z));"))
            out.append(_fn(OVL, h, "step", f"half x, {h} y", f"return step(({h})(x), y);"))
            out.append(_fn(OVL, h, "smoothstep", f"half x, half y, {h} z",
                           f"return smoothstep(({h})(x), ({h})(y), z);"))
        if n <= 4:
            for prefix, attrs in (("", OVL), ("fast_", NEW)):
                out.append(_fn(attrs, "half", prefix + "distance", f"{h} x, {h} y",
                               f"return (half)({prefix}distance({x}, {y}));"))
                out.append(_fn(attrs, "half", prefix + "length", f"{h} x", f"return (half)({prefix}length({x}));"))
                out.append(_fn(attrs, h, prefix + "normalize", f"{h} x",
                               f"return {_apply(prefix + 'normalize', n, 'x')};"))
            out.append(_fn(OVL, "half", "dot", f"{h} x, {h} y", f"return (half)(dot({x}, {y}));"))
        if n in (3, 4):
            out.append(_fn(OVL, h, "cross", f"{h} x, {h} y", f"return {_apply('cross', n, 'x', 'y')};"))
        del fl
    return out


def _relational() -> list[str]:
    out = ["/* ---- relational functions: scalars give int 1/0, vectors shortN -1/0 ---- */"]
    for n in WIDTHS:
        h, s, u = _t("half", n), _t("short", n), _t("ushort", n)
        ret = "int" if n == 1 else s
        x, y = _f("x", n), _f("y", n)
        split = n in SPLIT_WIDTHS
        for name in RELATIONAL_BINARY:
            value = f"{name}({x}, {y})"
            out.append(_fn(OVL, ret, name, f"{h} x, {h} y", _split(s, name, "x", "y") if split
                           else "return " + (value if n == 1 else _to(value, 'short', n)) + ";"))
        for name in RELATIONAL_UNARY_FLOAT:
            value = f"{name}({x})"
            out.append(_fn(OVL, ret, name, f"{h} x", _split(s, name, "x") if split
                           else "return " + (value if n == 1 else _to(value, 'short', n)) + ";"))
        if n == 1:
            out.append(_fn(OVL, "int", "isnormal", "half x",
                           "ushort e = as_ushort(x) & (ushort)0x7c00; return e != (ushort)0 && e != (ushort)0x7c00;"))
            out.append(_fn(OVL, "int", "signbit", "half x", "return as_ushort(x) >> 15;"))
            out.append(_fn(OVL, "half", "bitselect", "half a, half b, half c",
                           "return as_half((ushort)((as_ushort(a) & ~as_ushort(c)) | (as_ushort(b) & as_ushort(c))));"))
            for mask in ("short", "ushort"):
                out.append(_fn(OVL, "half", "select", f"half a, half b, {mask} c", "return c ? b : a;"))
        else:
            out.append(_fn(OVL, s, "isnormal", f"{h} x",
                           f"{u} e = as_{u}(x) & ({u})(0x7c00); return (e != ({u})(0)) & (e != ({u})(0x7c00));"))
            out.append(_fn(OVL, s, "signbit", f"{h} x", f"return as_{s}(x) < ({s})(0);"))
            out.append(_fn(OVL, h, "bitselect", f"{h} a, {h} b, {h} c",
                           f"return as_{h}((as_{u}(a) & ~as_{u}(c)) | (as_{u}(b) & as_{u}(c)));"))
            for mask in (s, u):
                out.append(_fn(OVL, h, "select", f"{h} a, {h} b, {mask} c",
                               f"{u} m = as_{u}(as_{s}(c) >> ({s})(15)); "
                               f"return as_{h}((as_{u}(a) & ~m) | (as_{u}(b) & m));"))
    return out


def _conversions() -> list[str]:
    out = ["/* ---- conversions to and from half ---- */"]
    for n in WIDTHS:
        h, fl = _t("half", n), _t("float", n)
        for src in CONVERT_SOURCES:
            st = _t(src, n)
            for mode in ROUNDINGS:
                name = f"convert_{h}{mode}"
                if src == "half":
                    body = "return x;"
                elif src == "float" and mode in ("", "_rte"):
                    body = "return " + _h('x', n) + ";"
                elif src in ("float", "double"):
                    body = f"{h} r; {_round_store('x', src, n, mode)} return r;"
                elif mode in ("", "_rte"):
                    body = "return " + _h(_f('x', n), n) + ";"
                else:
                    body = f"{h} r; {_round_store(_f('x', n), 'float', n, mode)} return r;"
                out.append(_fn(OVL, h, name, f"{st} x", body))
        for dst in INTEGER_TYPES:
            dt = _t(dst, n)
            for sat in ("", "_sat"):
                for mode in ROUNDINGS:
                    name = f"convert_{dt}{sat}{mode}"
                    if n in SPLIT_WIDTHS:
                        body = _split(dt, f"convert_{_t(dst, n // 2)}{sat}{mode}", "x")
                    else:
                        body = f"return {name}(" + _f('x', n) + ");"
                    out.append(_fn(OVL, dt, name, f"{h} x", body))
        for mode in ROUNDINGS:
            out.append(_fn(OVL, fl, f"convert_{fl}{mode}", f"{h} x", "return " + _f('x', n) + ";"))
            out.append(_fn(OVL, _t("double", n), f"convert_{_t('double', n)}{mode}", f"{h} x",
                           "return " + _to(_f('x', n), 'double', n) + ";"))
    return out


def _memory() -> list[str]:
    out = ["/* ---- vloadN / vstoreN on half pointers (as ushort data) ---- */"]
    for n in VECTOR_WIDTHS:
        h, u = _t("half", n), _t("ushort", n)
        for space in LOAD_SPACES:
            out.append(_fn(OVL, h, f"vload{n}", f"size_t i, const {space} half *p",
                           f"return as_{h}(vload{n}(i, (const {space} ushort *)p));"))
        for space in STORE_SPACES:
            out.append(_fn(OVL, "void", f"vstore{n}", f"{h} v, size_t i, {space} half *p",
                           "vstore8(v.lo, 2 * i, p); vstore8(v.hi, 2 * i + 1, p);" if n == 16
                           else f"vstore{n}(as_{u}(v), i, ({space} ushort *)p);"))
    out.append("/* ---- work-group copies on half data: shared out over the group, then a real (empty) event ---- */")
    out.append("static inline size_t kk_fp16_local_linear_id(void) { return get_local_id(0) + get_local_size(0) * "
               "(get_local_id(1) + get_local_size(1) * get_local_id(2)); }")
    out.append("static inline size_t kk_fp16_local_count(void) { return get_local_size(0) * get_local_size(1) * "
               "get_local_size(2); }")
    for n in WIDTHS:
        h = _t("half", n)
        for dst, src in (("__local", "__global"), ("__global", "__local")):
            tail = (f"barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE); "
                    f"return async_work_group_copy(({dst} ushort *)dst, (const {src} ushort *)src, 0, e);")
            loop = "for (size_t i = kk_fp16_local_linear_id(); i < n; i += kk_fp16_local_count()) "
            out.append(_fn(OVL, "event_t", "async_work_group_copy",
                           f"{dst} {h} *dst, const {src} {h} *src, size_t n, event_t e",
                           f"{loop}dst[i] = src[i]; {tail}"))
            strided = "dst[i] = src[i * stride];" if dst == "__local" else "dst[i * stride] = src[i];"
            out.append(_fn(OVL, "event_t", "async_work_group_strided_copy",
                           f"{dst} {h} *dst, const {src} {h} *src, size_t n, size_t stride, event_t e",
                           f"{loop}{strided} {tail}"))
        out.append(_fn(OVL, "void", "prefetch", f"const __global {h} *p, size_t n", "(void)p; (void)n;"))
    out.append("/* ---- shuffle / shuffle2 on half vectors: lane by lane on the ushort data ---- */")
    for m in SHUFFLE_WIDTHS:
        for n in SHUFFLE_WIDTHS:
            hm, hn, um, un = _t("half", m), _t("half", n), _t("ushort", m), _t("ushort", n)
            lanes = _lanes(n, f"a[mask{{0}} & {m - 1}]", un)
            out.append(_fn(OVL, hn, "shuffle", f"{hm} x, {un} mask", f"{um} a = as_{um}(x); return as_{hn}({lanes});"))
            lanes = _lanes(n, f"((mask{{0}} & {m}) ? b : a)[mask{{0}} & {m - 1}]", un)
            out.append(_fn(OVL, hn, "shuffle2", f"{hm} x, {hm} y, {un} mask",
                           f"{um} a = as_{um}(x), b = as_{um}(y); return as_{hn}({lanes});"))
    return out


@functools.lru_cache(maxsize=None)
def source() -> str:
    """OpenCL C text defining the half built-ins PoCL lacks; compile it in front of the user's kernel."""
    parts = ["/* kernelkit: half built-ins for PoCL (generated by kernelkit/kernel/emulator/fp16_builtins.py) */",
             "#pragma OPENCL EXTENSION cl_khr_fp16 : enable",
             # clang-15's driver declares the built-ins lazily (-fdeclare-opencl-builtins): only when a name
             # has no declaration yet. Our definition of exp(half) would then hide exp(float) and every other
             # overload, so declare them all first, from the full header (it ends by disabling cl_khr_fp16).
             "#include <opencl-c.h>",
             "#pragma OPENCL EXTENSION cl_khr_fp16 : enable",
             "#pragma OPENCL EXTENSION cl_khr_fp64 : enable"]
    parts += _conversions() + _math() + _common() + _relational() + _memory()
    return "\n".join(parts) + "\n"
