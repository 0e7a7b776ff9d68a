"""fp16_builtins.source(): half built-ins for PoCL, checked against numpy on one clang-15 -> SPIR -> PoCL program.

numpy's float16 is the reference: each result is computed in float64 and rounded once to float16. Results are
compared as ordered fp16 encodings (so +0 == -0, NaN == NaN), exactly or within a few ulps for transcendental
functions whose float implementation may land on the other side of an fp16 rounding midpoint.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from kernelkit.kernel.emulator import fp16_builtins

CLANG_FLAGS = ["-x", "cl", "-target", "spir64", "-cl-std=CL1.2", "-Xclang", "-finclude-default-header",
               "-Xclang", "-cl-ext=+cl_khr_fp16", "-Wno-everything", "-emit-llvm", "-c"]
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")    # numpy on inf/NaN/overflowing references
G = 4                  # work-items of the math kernel; each takes 48 elements (a multiple of 2, 3, 4, 8 and 16)
N = 48 * G
H16 = np.float16


# ---------------------------------------------------------------------------------------------- inputs
def _inputs():
    rng = np.random.default_rng(7)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, 2.0 ** -24, -3 * 2.0 ** -24, 2.0 ** -15, 6.1e-5,
                        65504.0, -65504.0, np.inf, -np.inf, np.nan, 0.1, -0.7, 10.0, 100.0, 1000.0, 3.14159,
                        -8.0, 0.999, 1.001, 11.5, -0.5, 2048.0, 7.0, -3.0, 0.25, 12.0], np.float64)
    def one(seed_shift):
        v = np.concatenate([np.roll(special, seed_shift),
                            rng.uniform(-4, 4, 64), rng.uniform(-300, 300, 48), rng.standard_normal(48) * 1e-3])
        return v[:N].astype(H16)
    x, y, z = one(0), one(5), one(11)
    k = rng.integers(-20, 21, N).astype(np.int32)
    k[:8] = [0, 1, -1, 15, -15, 30, -30, 5]
    return x, y, z, k


# ---------------------------------------------------------------------------------------------- math checks
# (name, width, C statement computing r from a b c (halfW) and k (intW), reference(a, b, c, k) on (-1, W) float64
#  arrays, allowed ulps, result kind "h" (halfW) / "s" (shortW; int for scalars) / "i" (intW) / "bits" (halfW,
#  compared bit for bit), mask(a, b, c, k) of the lanes to compare or None)
def _fin(*arrays):
    return np.logical_and.reduce([np.isfinite(v) for v in arrays])


def _math_checks():
    rsqrt = lambda a, b, c, k: 1.0 / np.sqrt(a)
    fract_v = lambda a: np.minimum(a - np.floor(a), float.fromhex("0x1.ffcp-1"))
    sign = lambda a: np.sign(a)
    def smooth(e0, e1, x):
        t = np.clip((x - e0) / (e1 - e0), 0, 1)
        return t * t * (3 - 2 * t)
    def cross(a, b):
        r = np.zeros_like(a)
        r[:, :3] = np.cross(a[:, :3], b[:, :3])
        return r
    remainder = np.vectorize(lambda a, b: math.remainder(a, b) if np.isfinite(a) and np.isfinite(b) and b else np.nan)
    rel = lambda w, f: (lambda a, b, c, k: np.where(f(a, b), 1 if w == 1 else -1, 0))
    C = []
    add = lambda *row: C.append(row)
    add("exp", 1, "r = exp(a);", lambda a, b, c, k: np.exp(a), 1, "h", None)
    add("log", 2, "r = log(a);", lambda a, b, c, k: np.log(a), 1, "h", None)
    add("sqrt", 3, "r = sqrt(a);", lambda a, b, c, k: np.sqrt(a), 0, "h", None)
    add("rsqrt", 4, "r = rsqrt(a);", rsqrt, 1, "h", None)
    add("sin", 8, "r = sin(a);", lambda a, b, c, k: np.sin(a), 1, "h", None)
    add("tanh", 16, "r = tanh(a);", lambda a, b, c, k: np.tanh(a), 1, "h", None)
    add("floor", 16, "r = floor(a);", lambda a, b, c, k: np.floor(a), 0, "h", None)
    add("fabs", 1, "r = fabs(a);", lambda a, b, c, k: np.abs(a), 0, "bits", None)
    add("pow", 4, "r = pow(a, b);", lambda a, b, c, k: np.power(a, b), 1, "h", None)
    add("atan2", 2, "r = atan2(a, b);", lambda a, b, c, k: np.arctan2(a, b), 1, "h", None)
    add("fmod", 3, "r = fmod(a, b);", lambda a, b, c, k: np.fmod(a, b), 0, "h", None)
    add("hypot", 8, "r = hypot(a, b);", lambda a, b, c, k: np.hypot(a, b), 1, "h", None)
    add("copysign", 16, "r = copysign(a, b);", lambda a, b, c, k: np.copysign(a, b), 0, "bits",
        lambda a, b, c, k: ~np.isnan(a))
    add("fmax", 2, "r = fmax(a, b);", lambda a, b, c, k: np.fmax(a, b), 0, "h", None)
    add("fmin_scalar", 8, "r = fmin(a, (half)0.75h);", lambda a, b, c, k: np.fmin(a, 0.75), 0, "h", None)
    add("fma", 4, "r = fma(a, b, c);", lambda a, b, c, k: a * b + c, 0, "h", None)
    add("mad", 1, "r = mad(a, b, c);", lambda a, b, c, k: a * b + c, 1, "h", None)
    add("ldexp", 8, "r = ldexp(a, k);", lambda a, b, c, k: np.ldexp(a, k), 0, "h", None)
    add("ldexp_scalar", 2, "r = ldexp(a, 3);", lambda a, b, c, k: np.ldexp(a, 3), 0, "h", None)
    add("pown", 3, "r = pown(a, k);", lambda a, b, c, k: a ** k.astype(np.float64), 1, "h",
        lambda a, b, c, k: (a != 0) | (k >= 0))
    add("nextafter", 4, "r = nextafter(a, b);", None, 0, "bits", None)          # numpy's float16 nextafter
    add("nextafter_1", 1, "r = nextafter(a, b);", None, 0, "bits", None)
    add("fract", 4, "halfW ip; r = fract(a, &ip);", lambda a, b, c, k: fract_v(a), 0, "h",
        lambda a, b, c, k: ~np.isinf(a))
    add("fract_ip_local", 2, "r = fract(a, (__local halfW *)lbuf); r = *(__local halfW *)lbuf;",
        lambda a, b, c, k: np.floor(a), 0, "h", lambda a, b, c, k: ~np.isinf(a))
    add("modf_global", 8, "r = modf(a, (__global halfW *)gscr); r = *(__global halfW *)gscr;",
        lambda a, b, c, k: np.trunc(a), 0, "h", None)
    add("modf", 1, "half ip; r = modf(a, &ip);", lambda a, b, c, k: np.modf(a)[0], 0, "h", None)
    add("frexp", 16, "intW e; r = frexp(a, &e);", lambda a, b, c, k: np.frexp(a)[0], 0, "h", None)
    add("frexp_exp", 3, "r = 0; (void)frexp(a, &r);", lambda a, b, c, k: np.frexp(a)[1], 0, "i",
        lambda a, b, c, k: np.isfinite(a))
    add("sincos_cos", 4, "halfW s; s = sincos(a, &r);", lambda a, b, c, k: np.cos(a), 1, "h", None)
    add("remquo", 2, "intW q; r = remquo(a, b, &q);", lambda a, b, c, k: remainder(a, b), 0, "h",
        lambda a, b, c, k: _fin(a, b) & (b != 0))
    add("ilogb", 4, "r = ilogb(a);", lambda a, b, c, k: np.floor(np.log2(np.abs(a))), 0, "i",
        lambda a, b, c, k: np.isfinite(a) & (a != 0))
    add("native_exp", 2, "r = native_exp(a);", lambda a, b, c, k: np.exp(a), 2, "h", None)
    add("half_sqrt", 1, "r = half_sqrt(a);", lambda a, b, c, k: np.sqrt(a), 1, "h", None)
    add("native_divide", 4, "r = native_divide(a, b);", lambda a, b, c, k: a / b, 1, "h", None)
    # common
    add("clamp_scalar", 8, "r = clamp(a, (half)-1.5h, (half)2.0h);", lambda a, b, c, k: np.clip(a, -1.5, 2), 0,
        "h", lambda a, b, c, k: ~np.isnan(a))
    add("clamp", 1, "r = clamp(a, b, b + (half)1.0h);", lambda a, b, c, k: np.clip(a, b, (b + 1).astype(H16)), 0,
        "h", lambda a, b, c, k: _fin(a, b))
    add("degrees", 16, "r = degrees(a);", lambda a, b, c, k: np.degrees(a), 1, "h", None)
    add("radians", 3, "r = radians(a);", lambda a, b, c, k: np.radians(a), 1, "h", None)
    add("max_scalar", 4, "r = max(a, (half)0.25h);", lambda a, b, c, k: np.maximum(a, 0.25), 0, "h",
        lambda a, b, c, k: ~np.isnan(a))
    add("min", 2, "r = min(a, b);", lambda a, b, c, k: np.minimum(a, b), 0, "h", lambda a, b, c, k: _fin(a, b))
    add("mix", 8, "r = mix(a, b, c);", lambda a, b, c, k: a + (b - a) * c, 1, "h",
        lambda a, b, c, k: _fin(a, b, c))
    add("mix_scalar", 3, "r = mix(a, b, (half)0.25h);", lambda a, b, c, k: a + (b - a) * 0.25, 1, "h",
        lambda a, b, c, k: _fin(a, b))
    add("step", 16, "r = step(b, a);", lambda a, b, c, k: np.where(a < b, 0.0, 1.0), 0, "h",
        lambda a, b, c, k: ~np.isnan(a) & ~np.isnan(b))
    add("step_scalar", 2, "r = step((half)0.5h, a);", lambda a, b, c, k: np.where(a < 0.5, 0.0, 1.0), 0, "h",
        lambda a, b, c, k: ~np.isnan(a))
    add("smoothstep", 4, "r = smoothstep((half)-1.0h, (half)2.0h, a);", lambda a, b, c, k: smooth(-1, 2, a), 1,
        "h", lambda a, b, c, k: ~np.isnan(a))
    add("sign", 8, "r = sign(a);", lambda a, b, c, k: sign(a), 0, "h", lambda a, b, c, k: ~np.isnan(a))
    # geometric (scalar results broadcast over the vector)
    add("dot", 4, "r = (halfW)(dot(a, b));", lambda a, b, c, k: (a * b).sum(1, keepdims=True), 1, "h",
        lambda a, b, c, k: _fin(a, b).all(1, keepdims=True))
    add("dot_1", 1, "r = dot(a, b);", lambda a, b, c, k: a * b, 0, "h", lambda a, b, c, k: _fin(a, b))
    add("length", 2, "r = (halfW)(length(a));", lambda a, b, c, k: np.sqrt((a * a).sum(1, keepdims=True)), 1,
        "h", lambda a, b, c, k: _fin(a).all(1, keepdims=True))
    add("distance", 3, "r = (halfW)(distance(a, b));",
        lambda a, b, c, k: np.sqrt(((a - b) ** 2).sum(1, keepdims=True)), 1, "h",
        lambda a, b, c, k: _fin(a, b).all(1, keepdims=True))
    add("normalize", 4, "r = normalize(a);", lambda a, b, c, k: a / np.sqrt((a * a).sum(1, keepdims=True)), 2,
        "h", lambda a, b, c, k: _fin(a).all(1, keepdims=True) & ((a != 0).any(1, keepdims=True)))
    add("fast_length", 2, "r = (halfW)(fast_length(a));",
        lambda a, b, c, k: np.sqrt((a * a).sum(1, keepdims=True)), 2, "h",
        lambda a, b, c, k: _fin(a).all(1, keepdims=True) & (np.abs(a) < 200).all(1, keepdims=True))
    add("cross3", 3, "r = cross(a, b);", lambda a, b, c, k: cross(a, b), 1, "h",
        lambda a, b, c, k: _fin(a, b).all(1, keepdims=True))
    add("cross4", 4, "r = cross(a, b);", lambda a, b, c, k: cross(a, b), 1, "h",
        lambda a, b, c, k: _fin(a, b).all(1, keepdims=True))
    # relational
    for w, name, f in ((1, "isequal", np.equal), (4, "isequal", np.equal), (2, "isless", np.less),
                       (8, "isgreaterequal", np.greater_equal), (16, "isnotequal", np.not_equal),
                       (3, "islessgreater", lambda a, b: (a < b) | (a > b)),
                       (4, "isunordered", lambda a, b: np.isnan(a) | np.isnan(b))):
        add(name, w, f"r = {name}(a, b);", rel(w, f), 0, "s", None)
    for w, name, f in ((1, "isnan", np.isnan), (8, "isnan", np.isnan), (2, "isinf", np.isinf),
                       (16, "isfinite", np.isfinite), (1, "isnormal", None), (4, "isnormal", None),
                       (1, "signbit", np.signbit), (8, "signbit", np.signbit)):
        if f is None:
            f = lambda a: np.isfinite(a) & (np.abs(a) >= 2.0 ** -14)
        add(name, w, f"r = {name}(a);", rel(w, lambda a, b, f=f: f(a)), 0, "s", None)
    pick = lambda w, cond: (lambda a, b, c, k: np.where(cond(k), b, a))
    add("select_short", 4, "r = select(a, b, convert_short4(k));", pick(4, lambda k: k < 0), 0, "bits", None)
    add("select_ushort", 8, "r = select(a, b, as_ushort8(convert_short8(k)));", pick(8, lambda k: k < 0), 0,
        "bits", None)
    add("select_scalar", 1, "r = select(a, b, (short)k);", pick(1, lambda k: k != 0), 0, "bits", None)
    add("bitselect", 16, "r = bitselect(a, b, c);", None, 0, "bits", None)
    add("shuffle", 4, "r = shuffle(a, (ushort4)(3, 0, 2, 1));", lambda a, b, c, k: a[:, [3, 0, 2, 1]], 0,
        "bits", None)
    add("shuffle2", 2, "r = shuffle2(a, b, (ushort2)(3, 0));",
        lambda a, b, c, k: np.stack([b[:, 1], a[:, 0]], 1), 0, "bits", None)
    return C


def _math_kernel(checks, kernel="math") -> str:
    body = []
    for index, (name, w, stmt, _, _, kind, _) in enumerate(checks):
        s = "" if w == 1 else str(w)
        load = (lambda p: f"{p}[o + j]") if w == 1 else (lambda p: f"vload{w}(0, {p} + o + j)")
        rtype = {"h": "half", "bits": "half", "s": "short" if w > 1 else "int", "i": "int"}[kind] + s
        out = {"h": "OH", "bits": "OH", "s": "OS", "i": "OI"}[kind]
        value = "(short)r" if (kind == "s" and w == 1) else "r"
        store = (f"{out}[{index * N} + o + j] = {value};" if w == 1
                 else f"vstore{w}(r, 0, {out} + {index * N} + o + j);")
        code = re.sub(r"(half|int|short)W\b", lambda m: m.group(1) + s, stmt)
        body.append(f"    __attribute__((opencl_unroll_hint(1))) for (int j = 0; j < 48; j += {w}) {{ /* {name} */\n"
                    f"        half{s} a = {load('X')}, b = {load('Y')}, c = {load('Z')}; int{s} k = {load('K')};\n"
                    f"        {rtype} r; {code} {store} }}")
    return (f"__kernel void {kernel}(__global const half *X, __global const half *Y, __global const half *Z,\n"
            "                   __global const int *K, __global half *OH, __global short *OS, __global int *OI,\n"
            "                   __global int16 *scratch)\n{\n"
            "    __local int16 lbuf[1];\n"
            "    const int o = get_global_id(0) * 48;\n"
            "    __global int16 *gscr = scratch + get_global_id(0);\n" + "\n".join(body) + "\n}\n")


# ---------------------------------------------------------------------------------------------- conversions
F_VALUES = [0.0, -0.0, 1.0, -1.0, 0.1, -0.1, 65504.0, 65519.0, 65520.0, 65536.0, 1e10, -65519.0, -65520.0, -1e10,
            2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -25, 1.5 * 2.0 ** -24, 2.0 ** -26, -2.0 ** -25, -3 * 2.0 ** -25,
            1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, -1 - 2.0 ** -11, 2.0 ** -14 - 2.0 ** -25, 1.0005, 300.7, -2.5,
            np.inf, -np.inf, np.nan, 7.77]
F_VALUES = F_VALUES + [0.0] * (48 - len(F_VALUES))
# doubles that float would round to an fp16 midpoint (double rounding), and the float values
D_VALUES = [1 + 2.0 ** -11 + 2.0 ** -40, 1 + 2.0 ** -11 - 2.0 ** -40, -(1 + 2.0 ** -11 + 2.0 ** -40),
            65519.99999999, 2.0 ** -25 + 2.0 ** -60, 2.0 ** -25 - 2.0 ** -60] + F_VALUES[:42]
I_VALUES = [0, 1, -1, 2049, 2051, -2049, 65504, 65519, 65520, 100000, -100000, 2 ** 31 - 1, -2 ** 31, 4095,
            4097, 12345, -54321, 7] + [0] * 30
U_VALUES = [0, 1, 2 ** 64 - 1, 2 ** 24 + 1, 65519, 65521, 2049, 3] + [0] * 40
# half -> integer sources: finite, in every integer type's range when not saturating (column "inrange")
HI_VALUES = [0.0, -0.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.75, -0.75, 127.5, 100.25, 126.6, -127.9, 3.0, -3.0]
HS_VALUES = [300.0, -300.0, 65504.0, -65504.0, np.inf, -np.inf, np.nan, 255.5, -129.0, 128.0, 40000.0,
             -40000.0, 0.5, -0.5, 2.5, 1e-3]
MODES = ("", "_rte", "_rtz", "_rtp", "_rtn")


def _conv_checks():
    """(name, C expression over the source vector `v`, source array name, width, result type, reference)"""
    C = []
    widths = {"": 1, "_rte": 16, "_rtz": 4, "_rtp": 8, "_rtn": 2}
    for mode in MODES:
        for src, w in (("F", widths[mode]), ("D", {1: 2, 16: 3, 4: 1, 8: 16, 2: 8}[widths[mode]]),
                       ("I", 4), ("U", 2)):
            s = "" if w == 1 else str(w)
            C.append((f"convert_half{s}{mode}({src})", f"convert_half{s}{mode}(v)", src, w, "half", mode))
    for dst, mode, sat, w in (("int", "_rte", "_sat", 4), ("uchar", "", "_sat", 1), ("char", "_rtn", "_sat", 8),
                              ("short", "_rtz", "", 2), ("ushort", "_rtp", "_sat", 16), ("long", "_rtp", "_sat", 3),
                              ("uint", "", "", 4), ("int", "_rtn", "", 1), ("ulong", "_rte", "_sat", 2)):
        s = "" if w == 1 else str(w)
        src = "HS" if sat else "HI"
        C.append((f"convert_{dst}{s}{sat}{mode}", f"convert_{dst}{s}{sat}{mode}(v)", src, w, dst, (mode, sat)))
    for w, mode in ((1, ""), (8, "_rtz")):
        s = "" if w == 1 else str(w)
        C.append((f"convert_float{s}{mode}", f"convert_float{s}{mode}(v)", "HS", w, "float", None))
        C.append((f"convert_double{s}{mode}", f"convert_double{s}{mode}(v)", "HS", w, "double", None))
        C.append((f"convert_half{s}{mode}(half)", f"convert_half{s}{mode}(v)", "HS", w, "half", None))
    return C


SRC_C_TYPES = {"F": "float", "D": "double", "I": "int", "U": "ulong", "HI": "half", "HS": "half"}


def _conv_kernel(checks) -> str:
    lines = ["__kernel void conv(__global const float *F, __global const double *D, __global const int *I,",
             "                   __global const ulong *U, __global const half *HI, __global const half *HS,",
             "                   __global half *OH, __global long *OL, __global ulong *OU, __global float *OF,",
             "                   __global double *OD)", "{"]
    for index, (name, expr, src, w, dst, _) in enumerate(checks):
        s = "" if w == 1 else str(w)
        st = SRC_C_TYPES[src] + s
        load = f"{src}[j]" if w == 1 else f"vload{w}(0, {src} + j)"
        if dst in ("half", "float", "double"):
            out, conv = {"half": "OH", "float": "OF", "double": "OD"}[dst], "r"
        elif dst == "ulong":
            out, conv = "OU", "r" if w == 1 else f"convert_ulong{s}(r)"
        else:
            out, conv = "OL", f"convert_long{s}(r)" if w > 1 else "(long)r"
        store = f"{out}[{index * 48} + j] = {conv};" if w == 1 else f"vstore{w}({conv}, 0, {out} + {index * 48} + j);"
        lines.append(f"    for (int j = 0; j < 48; j += {w}) {{ /* {name} */ {st} v = {load}; "
                     f"{dst}{s} r = {expr}; {store} }}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _round_half(values, mode):
    """numpy reference of value -> fp16 with an OpenCL rounding mode ('' and _rte: nearest even)."""
    out = []
    for v in values:
        h = H16(v) if not isinstance(v, int) else H16(float(v))
        exact = float(v) if not isinstance(v, int) else v
        if isinstance(v, int) and abs(v) >= 2 ** 53:
            raise AssertionError("reference needs exact ints")
        if mode in ("", "_rte") or np.isnan(h):
            out.append(h)
            continue
        hv = float(h)
        if mode == "_rtz" and abs(hv) > abs(exact):
            h = np.nextafter(h, H16(0))
        elif mode == "_rtp" and hv < exact:
            h = np.nextafter(h, H16(np.inf))
        elif mode == "_rtn" and hv > exact:
            h = np.nextafter(h, H16(-np.inf))
        out.append(h)
    return np.array(out, H16)


INT_RANGES = {"char": (-128, 127), "uchar": (0, 255), "short": (-32768, 32767), "ushort": (0, 65535),
              "int": (-2 ** 31, 2 ** 31 - 1), "uint": (0, 2 ** 32 - 1), "long": (-2 ** 63, 2 ** 63 - 1),
              "ulong": (0, 2 ** 64 - 1)}


def _round_int(values, dst, mode, sat):
    f = {"": np.trunc, "_rtz": np.trunc, "_rte": np.rint, "_rtp": np.ceil, "_rtn": np.floor}[mode]
    lo, hi = INT_RANGES[dst]
    out = []
    for v in values.astype(np.float64):
        if np.isnan(v):
            out.append(0)
        else:
            r = f(v)
            out.append(int(min(max(r, lo), hi)) if np.isfinite(r) else (hi if r > 0 else lo))
    return out


# ---------------------------------------------------------------------------------------------- memory
MEM_KERNELS = """
__kernel void mem(__global const half *src, __constant half *csrc, __global half *dst)
{
    __local half lbuf[64];
    half pbuf[64];
    vstore16(vload16(0, src), 0, dst);                          /* global -> global, 16 */
    vstore8(vload8(1, csrc), 2, dst);                           /* constant, 8: src[8..15] -> dst[16..23] */
    vstore16(vload16(1, src), 0, lbuf);                         /* global -> local */
    vstore4(vload4(2, lbuf), 6, dst);                           /* local src[24..27] -> dst[24..27] */
    vstore3(vload3(0, src + 5), 0, pbuf);                       /* private */
    vstore2(vload2(0, pbuf + 1), 14, dst);                      /* src[6..7] -> dst[28..29] */
    vstore3(vload3(0, pbuf), 10, dst);                          /* src[5..7] -> dst[30..32] */
    vstore2(vload2(5, csrc), 0, lbuf + 40);                     /* constant -> local: src[10..11] */
    vstore2(vload2(20, lbuf), 0, pbuf + 8);
    vstore2(vload2(0, pbuf + 8), 0, dst + 33);                  /* dst[33..34] = src[10..11] */
    vstore8(vload8(0, pbuf + 8), 0, pbuf + 16);
    vstore_half(vload_half(3, src) * 2.0f, 35, dst);            /* PoCL's own vload_half / vstore_half */
    prefetch(src, 16);
}
__kernel void copies(__global const half *src, __global half *dst, __global half4 *src4, __global half4 *dst4,
                     __global half2 *dst2)
{
    __local half l[100];
    __local half4 l4[10];
    __local half2 l2[20];
    const size_t g = get_group_id(0);
    event_t e = async_work_group_copy(l, src + g * 100, 100, 0);
    wait_group_events(1, &e);
    for (size_t i = get_local_id(0); i < 100; i += get_local_size(0))
        l[i] = l[i] * 2.0h;
    barrier(CLK_LOCAL_MEM_FENCE);
    e = async_work_group_copy(dst + g * 100, l, 100, 0);
    wait_group_events(1, &e);
    /* half4 elements, strided: every 3rd element of src4 into local, then out with stride 2 */
    e = async_work_group_strided_copy(l4, src4 + g * 30, 10, 3, 0);
    e = async_work_group_strided_copy(dst4 + g * 20, l4, 10, 2, e);
    wait_group_events(1, &e);
    /* half2, contiguous, into local and back to global */
    e = async_work_group_copy(l2, (__global const half2 *)(src + g * 100), 20, 0);
    wait_group_events(1, &e);
    e = async_work_group_copy(dst2 + g * 20, l2, 20, 0);
    wait_group_events(1, &e);
}
"""


# ---------------------------------------------------------------------------------------------- the test
def _ordered(h):
    bits = np.asarray(h, H16).view(np.uint16).astype(np.int32)
    return np.where(bits & 0x8000, -(bits & 0x7FFF), bits & 0x7FFF)


def _close(got, want, ulps):
    got, want = np.asarray(got, H16), np.asarray(want, H16)
    both_nan = np.isnan(got) & np.isnan(want)
    return both_nan | ((np.abs(_ordered(got) - _ordered(want)) <= ulps) & ~np.isnan(got) & ~np.isnan(want))


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    clang = shutil.which("clang-15")
    if clang is None:
        pytest.skip("clang-15 is not installed (needed to compile half kernels to SPIR)")
    try:
        import pyopencl as cl
    except ImportError:
        pytest.skip("pyopencl is not installed")
    from kernelkit.kernel.emulator.worker import _pocl_platform

    warnings.filterwarnings("ignore", category=cl.CompilerWarning)
    try:
        platform, _ = _pocl_platform(cl)
    except cl.Error as error:
        pytest.skip(f"no OpenCL platform: {error}")
    if platform is None:
        pytest.skip("no PoCL OpenCL platform")
    math_checks, conv_checks = _math_checks(), _conv_checks()
    text = (fp16_builtins.source() + _math_kernel(math_checks) + _math_kernel(_every_width_checks(), "every_width")
            + _conv_kernel(conv_checks) + MEM_KERNELS)
    folder = tmp_path_factory.mktemp("fp16")
    (folder / "k.cl").write_text(text)
    done = subprocess.run([clang, *CLANG_FLAGS, str(folder / "k.cl"), "-o", str(folder / "k.bc")],
                          capture_output=True, text=True, timeout=600)   # a hang guard, not a speed check
    assert done.returncode == 0, done.stderr[:4000]
    device = platform.get_devices()[0]
    ctx = cl.Context([device])
    prg = cl.Program(ctx, [device], [(folder / "k.bc").read_bytes()])
    try:
        prg.build(options="-x spir -spir-std=1.2")
    except cl.Error:
        pytest.fail("PoCL does not build the program: " + prg.get_build_info(device, cl.program_build_info.LOG)[:4000])
    return cl, ctx, cl.CommandQueue(ctx), prg, math_checks, conv_checks


def _buffer(cl, ctx, array=None, nbytes=None):
    mf = cl.mem_flags
    if array is not None:
        return cl.Buffer(ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(array))
    return cl.Buffer(ctx, mf.READ_WRITE, nbytes)


def _read(cl, queue, buffer, dtype, count):
    out = np.empty(count, dtype)
    cl.enqueue_copy(queue, out, buffer)
    return out


def test_math_common_geometric_relational(program):
    cl, ctx, queue, prg, checks, _ = program
    _check_math(cl, ctx, queue, prg.math, checks)


def _check_math(cl, ctx, queue, kernel, checks):
    """Runs a kernel of _math_kernel(checks) on _inputs() and compares each check with its reference."""
    x, y, z, k = _inputs()
    count = len(checks) * N
    oh, os_, oi = (_buffer(cl, ctx, nbytes=count * size) for size in (2, 2, 4))
    args = [_buffer(cl, ctx, v) for v in (x, y, z, k)] + [oh, os_, oi, _buffer(cl, ctx, nbytes=G * 64)]
    kernel(queue, (G,), (1,), *args)
    got = {"h": _read(cl, queue, oh, H16, count), "s": _read(cl, queue, os_, np.int16, count),
           "i": _read(cl, queue, oi, np.int32, count)}
    got["bits"] = got["h"]
    failures = []
    with np.errstate(all="ignore"):
        for index, (name, w, stmt, ref, ulps, kind, mask) in enumerate(checks):
            a, b, c = (v.astype(np.float64).reshape(-1, w) for v in (x, y, z))
            kk = k.reshape(-1, w)
            result = got[kind][index * N:(index + 1) * N].reshape(-1, w)
            if name.startswith("nextafter"):
                want = np.nextafter(x, y).reshape(-1, w)
            elif name == "nan":
                want = (x.view(np.uint16) & 0x1ff | 0x7e00).view(H16).reshape(-1, w)
            elif name == "bitselect":
                bx, by, bz = (v.view(np.uint16) for v in (x, y, z))
                want = ((bx & ~bz) | (by & bz)).view(H16).reshape(-1, w)
            else:
                want = np.broadcast_to(ref(a, b, c, kk), a.shape)
            keep = np.ones(a.shape, bool) if mask is None else np.broadcast_to(mask(a, b, c, kk), a.shape)
            if kind == "bits":
                ok = np.asarray(result, H16).view(np.uint16) == np.asarray(want, H16).view(np.uint16)
            elif kind == "h":
                ok = _close(result, np.asarray(want, np.float64).astype(H16), ulps)
            else:
                ok = result == np.asarray(want).astype(np.int64)
            bad = np.argwhere(keep & ~ok)
            if len(bad):
                i, j = bad[0]
                failures.append(f"{name} (width {w}): {len(bad)} lanes differ, e.g. a={a[i, j]!r} b={b[i, j]!r} "
                                f"c={c[i, j]!r} k={kk[i, j]} got {result[i, j]!r} want {want[i, j]!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------- every width
# Every half math built-in fp16_builtins defines (and the common and relational functions), at every width,
# against float32 math rounded to half: the float64 result rounded to float32 (what a correctly rounded float
# function gives) and then to float16. PoCL 3.1's kernel library hands some float functions an unfilled stack
# copy of an argument wider than the library build passes in registers (log2(half16) gave 57 for 0.5).
def _ref32(f):
    """A reference computed in float64, rounded to float32 (then to float16 by the comparison)."""
    return lambda *args: np.asarray(f(*args), np.float64).astype(np.float32)


def _pyf(f):
    """A math-module function over arrays (NaN where it raises, inf where it overflows)."""
    def one(v):
        try:
            return f(v)
        except OverflowError:
            return math.inf
        except ValueError:
            return math.nan
    return lambda x: np.vectorize(one, otypes=[np.float64])(x)


def _gamma(v):
    if v == 0:
        return math.copysign(math.inf, v)
    if v == -math.inf or (v < 0 and v == math.floor(v)):
        return math.nan
    return math.inf if v > 171 else math.gamma(v)


def _lgamma(v):
    return math.inf if (v <= 0 and v == math.floor(v)) or math.isinf(v) else math.lgamma(v)


def _logb(x):
    m, e = np.frexp(x)
    return np.where(x == 0, -np.inf, np.where(np.isfinite(x), e - 1.0, np.abs(x)))


def _pi_arg(f, x):
    """f(pi * x) with x reduced exactly first (x is a half value)."""
    return f(np.pi * np.fmod(x, 2.0))


def _round_away(x):
    return np.where(np.isfinite(x), np.sign(x) * np.floor(np.abs(x) + 0.5), x)


def _mag(big):
    def f(a, b):
        pick = np.fmax(a, b) if big else np.fmin(a, b)
        first, second = (np.abs(a) > np.abs(b), np.abs(b) > np.abs(a)) if big else \
                        (np.abs(a) < np.abs(b), np.abs(b) < np.abs(a))
        return np.where(first, a, np.where(second, b, pick))
    return f


def _rootn(a, k):
    k = k.astype(np.float64)
    with np.errstate(all="ignore"):
        mag = np.abs(a) ** (1.0 / np.where(k == 0, np.nan, k))
    return np.where((a < 0) & (np.fmod(k, 2) == 0), np.nan, np.where(a < 0, -mag, mag))


def _quotient_bits(a, b):
    """sign and low 3 bits of the integral quotient of remquo(a, b) (a, b finite half values, b != 0)."""
    from fractions import Fraction
    out = np.zeros(a.shape)
    for i in np.ndindex(a.shape):
        if not (np.isfinite(a[i]) and np.isfinite(b[i]) and b[i]):
            continue
        q = round(Fraction(float(a[i])) / Fraction(float(b[i])))
        out[i] = math.copysign(abs(q) % 8, float(a[i]) / float(b[i])) if q else 0
    return out


UNARY_REF = {    # name -> (float64 reference, allowed fp16 ulps, mask or None)
    "acos": (np.arccos, 1, None), "acosh": (np.arccosh, 1, None), "acospi": (lambda x: np.arccos(x) / np.pi, 1, None),
    "asin": (np.arcsin, 1, None), "asinh": (np.arcsinh, 1, None), "asinpi": (lambda x: np.arcsin(x) / np.pi, 1, None),
    "atan": (np.arctan, 1, None), "atanh": (np.arctanh, 1, None), "atanpi": (lambda x: np.arctan(x) / np.pi, 1, None),
    "cbrt": (np.cbrt, 1, None), "ceil": (np.ceil, 0, None), "cos": (np.cos, 1, None), "cosh": (np.cosh, 1, None),
    "cospi": (lambda x: _pi_arg(np.cos, x), 1, np.isfinite), "erfc": (_pyf(math.erfc), 1, None),
    "erf": (_pyf(math.erf), 1, None), "exp": (np.exp, 1, None), "exp2": (np.exp2, 1, None),
    "exp10": (lambda x: 10.0 ** x, 1, None), "expm1": (np.expm1, 1, None), "fabs": (np.abs, 0, None),
    "floor": (np.floor, 0, None), "lgamma": (_pyf(_lgamma), 1, None), "log": (np.log, 1, None),
    "log2": (np.log2, 1, None), "log10": (np.log10, 1, None), "log1p": (np.log1p, 1, None),
    "logb": (_logb, 0, None), "rint": (np.rint, 0, None), "round": (_round_away, 0, None),
    "rsqrt": (lambda x: 1.0 / np.sqrt(x), 1, None), "sin": (np.sin, 1, None), "sinh": (np.sinh, 1, None),
    "sinpi": (lambda x: _pi_arg(np.sin, x), 1, np.isfinite), "sqrt": (np.sqrt, 0, None), "tan": (np.tan, 1, None),
    "tanh": (np.tanh, 1, None),
    "tanpi": (lambda x: _pi_arg(np.tan, x), 1, lambda x: np.isfinite(x) & (np.abs(np.fmod(x, 1.0)) != 0.5)),
    "tgamma": (_pyf(_gamma), 1, None), "trunc": (np.trunc, 0, None),
}
BINARY_REF = {
    "atan2": (np.arctan2, 1, None), "atan2pi": (lambda a, b: np.arctan2(a, b) / np.pi, 1, None),
    "copysign": (np.copysign, 0, lambda a, b: ~np.isnan(a)),
    "fdim": (lambda a, b: np.where(np.isnan(a) | np.isnan(b), np.nan, np.where(a > b, a - b, 0.0)), 0, None),
    "fmod": (np.fmod, 0, None), "hypot": (np.hypot, 1, None), "maxmag": (_mag(True), 0, None),
    "minmag": (_mag(False), 0, None), "pow": (np.power, 1, None),
    "powr": (np.power, 1, lambda a, b: _fin(a, b) & (a > 0)),
    "remainder": (np.vectorize(lambda a, b: math.remainder(a, b) if np.isfinite(a) and b else np.nan), 0, None),
    "fmax": (np.fmax, 0, None), "fmin": (np.fmin, 0, None),
}
NATIVE_REF = {"cos": np.cos, "exp": np.exp, "exp2": np.exp2, "exp10": lambda x: 10.0 ** x, "log": np.log,
              "log2": np.log2, "log10": np.log10, "recip": lambda x: 1.0 / x, "rsqrt": lambda x: 1.0 / np.sqrt(x),
              "sin": np.sin, "sqrt": np.sqrt, "tan": np.tan}


def _every_width_checks():
    """Rows as in _math_checks, for every function and overload below at every width in WIDTHS."""
    C = []
    add = lambda *row: C.append(row)
    un = lambda f: (lambda a, b, c, k: f(a))
    bi = lambda f: (lambda a, b, c, k: f(a, b))
    for w in fp16_builtins.WIDTHS:
        for name in fp16_builtins.MATH_UNARY:
            f, ulps, mask = UNARY_REF[name]
            add(name, w, f"r = {name}(a);", _ref32(un(f)), ulps, "bits" if name == "fabs" else "h",
                mask and un(mask))
        for name in fp16_builtins.MATH_BINARY + fp16_builtins.MATH_BINARY_SCALAR2:
            f, ulps, mask = BINARY_REF[name]
            add(name, w, f"r = {name}(a, b);", _ref32(bi(f)), ulps, "bits" if name == "copysign" else "h",
                mask and bi(mask))
        for name in fp16_builtins.MATH_BINARY_SCALAR2:
            f = BINARY_REF[name][0]
            add(f"{name}(halfN, half)", w, f"r = {name}(a, (half)-0.7h);", _ref32(un(lambda x, f=f: f(x, -0.7))),
                0, "h", None)
        for prefix, ulps in (("native_", 2), ("half_", 1)):
            for name in fp16_builtins.NATIVE_UNARY:
                add(prefix + name, w, f"r = {prefix}{name}(a);", _ref32(un(NATIVE_REF[name])), ulps, "h", None)
            add(prefix + "divide", w, f"r = {prefix}divide(a, b);", _ref32(bi(np.divide)), ulps, "h", None)
            add(prefix + "powr", w, f"r = {prefix}powr(a, b);", _ref32(bi(np.power)), ulps, "h",
                lambda a, b, c, k: _fin(a, b) & (a > 0))
        add("mad", w, "r = mad(a, b, c);", _ref32(lambda a, b, c, k: a * b + c), 1, "h", None)
        add("fma", w, "r = fma(a, b, c);", lambda a, b, c, k: a * b + c, 0, "h", None)
        add("ldexp", w, "r = ldexp(a, k);", _ref32(lambda a, b, c, k: np.ldexp(a, k)), 0, "h", None)
        add("ldexp(halfN, int)", w, "r = ldexp(a, -3);", _ref32(lambda a, b, c, k: np.ldexp(a, -3)), 0, "h", None)
        add("pown", w, "r = pown(a, k);", _ref32(lambda a, b, c, k: a ** k.astype(np.float64)), 1, "h",
            lambda a, b, c, k: (a != 0) | (k >= 0))
        add("rootn", w, "r = rootn(a, k);", _ref32(lambda a, b, c, k: _rootn(a, k)), 1, "h",
            lambda a, b, c, k: (k != 0) & np.isfinite(a) & (a != 0))
        add("ilogb", w, "r = ilogb(a);", lambda a, b, c, k: np.floor(np.log2(np.abs(a))), 0, "i",
            lambda a, b, c, k: np.isfinite(a) & (a != 0))
        add("nan", w, "r = nan(as_ushortW(a));", None, 0, "bits", None)      # quiet NaN, payload from a's bits
        add("nextafter", w, "r = nextafter(a, b);", None, 0, "bits", None)
        # pointer functions: the result (once) and what they store through a pointer in each address space
        fin = lambda a, b, c, k: ~np.isinf(a)
        fin2 = lambda a, b, c, k: _fin(a, b) & (b != 0)
        fract = lambda a, b, c, k: np.minimum(a - np.floor(a), float.fromhex("0x1.ffcp-1"))
        lgamma_sign = lambda a, b, c, k: np.where((a > 0) | (np.floor(-a) % 2 == 1), 1, -1)
        signed_gamma = lambda a, b, c, k: np.isfinite(a) & ((a > 0) | (a != np.floor(a)))
        quo = "r = (r < 0) ? -(-r & 7) : (r & 7);"        # sign and the 3 low bits OpenCL guarantees
        for name, call, pointee, value, stored in (
                ("fract", "fract(a, P)", "half", (_ref32(fract), 0, fin), (lambda a, b, c, k: np.floor(a), 0, fin)),
                ("modf", "modf(a, P)", "half", (lambda a, b, c, k: np.modf(a)[0], 0, None),
                 (lambda a, b, c, k: np.trunc(a), 0, None)),
                ("sincos", "sincos(a, P)", "half", (_ref32(un(np.sin)), 1, None), (_ref32(un(np.cos)), 1, None)),
                ("frexp", "frexp(a, P)", "int", (lambda a, b, c, k: np.frexp(a)[0], 0, None),
                 (lambda a, b, c, k: np.frexp(a)[1], 0, un(np.isfinite))),
                ("lgamma_r", "lgamma_r(a, P)", "int", (_ref32(un(_pyf(_lgamma))), 1, None),
                 (lgamma_sign, 0, signed_gamma)),
                ("remquo", "remquo(a, b, P)", "int", (bi(BINARY_REF["remainder"][0]), 0, fin2),
                 (lambda a, b, c, k: _quotient_bits(a, b), 0, fin2))):
            kind = "h" if pointee == "half" else "i"
            add(name, w, f"{pointee}W t; r = {call.replace('P', '&t')};", *value[:2], "h", value[2])
            for space, at in (("__private", "&t"), ("__global", "gscr"), ("__local", "lbuf")):
                ptr = at if space == "__private" else f"({space} {pointee}W *){at}"
                add(f"{name} *p {space}", w, f"{pointee}W t; (void){call.replace('P', ptr)}; r = *{ptr};"
                    + (f" {quo}" if name == "remquo" else ""), *stored[:2], kind, stored[2])
        # common and relational functions
        sign = lambda x: np.where(np.isnan(x), 0.0, np.sign(x))          # OpenCL: sign(NaN) is 0
        for name, f, ulps in (("degrees", np.degrees, 1), ("radians", np.radians, 1), ("sign", sign, 0)):
            add(name, w, f"r = {name}(a);", _ref32(un(f)), ulps, "h", None)
        nan_free = lambda a, b, c, k: _fin(a, b, c)
        add("max", w, "r = max(a, b);", bi(np.maximum), 0, "h", nan_free)
        add("min", w, "r = min(a, b);", bi(np.minimum), 0, "h", nan_free)
        add("clamp", w, "r = clamp(a, fmin(b, c), fmax(b, c));",
            lambda a, b, c, k: np.clip(a, np.fmin(b, c), np.fmax(b, c)), 0, "h", nan_free)
        add("mix", w, "r = mix(a, b, c);", _ref32(lambda a, b, c, k: a + (b - a) * c), 1, "h", nan_free)
        add("step", w, "r = step(b, a);", lambda a, b, c, k: np.where(a < b, 0.0, 1.0), 0, "h", nan_free)
        add("smoothstep", w, "r = smoothstep(fmin(b, c), fmax(b, c) + 1.0h, a);",
            _ref32(lambda a, b, c, k: _smooth(np.fmin(b, c), (np.fmax(b, c) + 1).astype(H16), a)), 1, "h",
            lambda a, b, c, k: nan_free(a, b, c, k) & (np.abs(b) < 1000) & (np.abs(c) < 1000))
        if w > 1:
            add("max(halfN, half)", w, "r = max(a, (half)0.25h);", un(lambda x: np.maximum(x, 0.25)), 0, "h",
                nan_free)
            add("min(halfN, half)", w, "r = min(a, (half)0.25h);", un(lambda x: np.minimum(x, 0.25)), 0, "h",
                nan_free)
            add("clamp(halfN, half, half)", w, "r = clamp(a, (half)-1.5h, (half)2.0h);",
                un(lambda x: np.clip(x, -1.5, 2)), 0, "h", nan_free)
            add("mix(halfN, halfN, half)", w, "r = mix(a, b, (half)0.25h);",
                _ref32(lambda a, b, c, k: a + (b - a) * 0.25), 1, "h", nan_free)
            add("step(half, halfN)", w, "r = step((half)0.5h, a);", un(lambda x: np.where(x < 0.5, 0.0, 1.0)), 0,
                "h", nan_free)
            add("smoothstep(half, half, halfN)", w, "r = smoothstep((half)-1.0h, (half)2.0h, a);",
                _ref32(un(lambda x: _smooth(-1, 2, x))), 1, "h", nan_free)
        rel = lambda f: (lambda a, b, c, k: np.where(f(a, b), 1 if a.shape[1] == 1 else -1, 0))
        for name, f in (("isequal", np.equal), ("isnotequal", np.not_equal), ("isgreater", np.greater),
                        ("isgreaterequal", np.greater_equal), ("isless", np.less), ("islessequal", np.less_equal),
                        ("islessgreater", lambda a, b: (a < b) | (a > b)),
                        ("isordered", lambda a, b: ~np.isnan(a) & ~np.isnan(b)),
                        ("isunordered", lambda a, b: np.isnan(a) | np.isnan(b)),
                        ("isfinite", lambda a, b: np.isfinite(a)), ("isinf", lambda a, b: np.isinf(a)),
                        ("isnan", lambda a, b: np.isnan(a)), ("signbit", lambda a, b: np.signbit(a)),
                        ("isnormal", lambda a, b: np.isfinite(a) & (np.abs(a) >= 2.0 ** -14))):
            call = f"{name}(a, b)" if name in fp16_builtins.RELATIONAL_BINARY else f"{name}(a)"
            add(name, w, f"r = {call};", rel(f), 0, "s", None)
        # conversions to integers (each type at each width, the rounding mode and _sat taken in turn)
        for index, dst in enumerate(INT_RANGES):
            sat, mode = CONVERT_VARIANTS[(index + 3 * fp16_builtins.WIDTHS.index(w)) % len(CONVERT_VARIANTS)]
            lo, hi = INT_RANGES[dst]
            value = f"convert_{dst}{'' if w == 1 else w}{sat}{mode}(a)"
            in_range = None if sat else (lambda a, b, c, k, lo=lo, hi=hi: (a >= lo) & (a <= hi - 1))
            add(f"convert_{dst}N{sat}{mode}", w,                         # compared as int (wrapped to 32 bits)
                f"r = {f'(int)({value})' if w == 1 else f'__builtin_convertvector({value}, intW)'};",
                lambda a, b, c, k, d=dst, m=mode, t=sat: np.array(
                    [v & 0xFFFFFFFF for v in _round_int(a.reshape(-1), d, m, t)], np.uint32).view(np.int32)
                .reshape(a.shape), 0, "i", in_range)
        # shuffle and shuffle2 from every source width, masks from b's bits
        if w in fp16_builtins.SHUFFLE_WIDTHS:
            for m in fp16_builtins.SHUFFLE_WIDTHS:
                add(f"shuffle(half{m})", w, f"r = shuffle(vload{m}(0, Z + j % 32), as_ushortW(b));",
                    lambda a, b, c, k, m=m: _shuffle_ref(a.shape, m, False), 0, "bits", None)
                add(f"shuffle2(half{m})", w, f"r = shuffle2(vload{m}(0, Z + j % 32), vload{m}(0, X + j % 32), "
                    "as_ushortW(b));", lambda a, b, c, k, m=m: _shuffle_ref(a.shape, m, True), 0, "bits", None)
    return C


CONVERT_VARIANTS = [(sat, mode) for sat in ("", "_sat") for mode in ("", "_rte", "_rtz", "_rtp", "_rtn")]


def _shuffle_ref(shape, m, two):
    """shuffle(vload_m(0, Z + j % 32), mask) (shuffle2: with vload_m(0, X + j % 32)), j the row's offset in its
    work-item's 48 elements, mask the bits of Y."""
    x, y, z, _ = _inputs()
    rows, w = shape
    base = ((np.arange(rows) * w) % 48 % 32)[:, None]
    mask = y.view(np.uint16).reshape(shape).astype(np.int64)
    pick = base + (mask & (m - 1))
    return np.where(two & ((mask & m) != 0), x[pick], z[pick])


def _smooth(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0, 1)
    return t * t * (3 - 2 * t)


def test_no_call_into_pocls_library_passes_a_vector_wider_than_16_bytes(tmp_path):
    """PoCL's library builds for SSE2 to SSE4.1 take vectors wider than 16 bytes in memory (AVX and AVX2 ones
    wider than 32, AVX-512 wider than 64), and some of their entry points then hand the implementation an
    unfilled copy. The prelude's external calls (every overload emitted) must stay within 16 bytes."""
    clang = shutil.which("clang-15")
    if clang is None:
        pytest.skip("clang-15 is not installed")
    (tmp_path / "p.cl").write_text(fp16_builtins.source())
    flags = [f for f in CLANG_FLAGS if f != "-c"] + ["-S", "-O0", "-femit-all-decls"]
    done = subprocess.run([clang, *flags, str(tmp_path / "p.cl"), "-o", str(tmp_path / "p.ll")],
                          capture_output=True, text=True, timeout=600)   # a hang guard, not a speed check
    assert done.returncode == 0, done.stderr[:4000]
    ir = (tmp_path / "p.ll").read_text()
    assert ir.count("\ndefine ") > 1500             # every overload was emitted, static inline ones too
    size = {"half": 2, "float": 4, "double": 8, "i8": 1, "i16": 2, "i32": 4, "i64": 8}
    declared = re.findall(r"^declare .*?@(\w+)\((.*)\)", ir, re.M)
    wide = sorted(name for name, params in declared
                  if any((4 if n == "3" else int(n)) * size[t] > 16      # 3 lanes take 4; 16 = SAFE_BYTES
                         for n, t in re.findall(r"<(\d+) x (\w+)>", params)))
    assert len(declared) > 500 and not wide, f"{len(wide)} calls pass a wider vector: {wide[:20]}"


def test_every_math_common_and_relational_function_at_every_width(program):
    """Every function above at widths 1, 2, 3, 4, 8 and 16 (PoCL's library variant for this CPU decides which
    widths its float functions take in registers; a wider argument reached them as stack garbage)."""
    cl, ctx, queue, prg, _, _ = program
    _check_math(cl, ctx, queue, prg.every_width, _every_width_checks())


def test_conversions(program):
    cl, ctx, queue, prg, _, checks = program
    sources = {"F": np.array(F_VALUES, np.float32), "D": np.array(D_VALUES, np.float64),
               "I": np.array(I_VALUES, np.int64).astype(np.int32), "U": np.array(U_VALUES, np.uint64),
               "HI": np.array(HI_VALUES * 3, H16), "HS": np.array(HS_VALUES * 3, H16)}
    count = len(checks) * 48
    outs = {"OH": (H16, 2), "OL": (np.int64, 8), "OU": (np.uint64, 8), "OF": (np.float32, 4),
            "OD": (np.float64, 8)}
    buffers = {name: _buffer(cl, ctx, nbytes=count * size) for name, (_, size) in outs.items()}
    prg.conv(queue, (1,), (1,), *[_buffer(cl, ctx, sources[s]) for s in ("F", "D", "I", "U", "HI", "HS")],
             *buffers.values())
    got = {name: _read(cl, queue, buffers[name], dtype, count) for name, (dtype, _) in outs.items()}
    exact = {"F": [float(v) for v in sources["F"]], "D": list(D_VALUES), "I": [int(v) for v in sources["I"]],
             "U": [int(v) for v in U_VALUES]}
    failures = []
    for index, (name, _, src, w, dst, mode) in enumerate(checks):
        part = slice(index * 48, (index + 1) * 48)
        if dst == "half" and src in exact:
            values = exact[src]
            if src == "U":      # ulong beyond 2^53: only the sign and the mode matter, as for 2^64 - 1 here
                values = [v if v < 2 ** 53 else 1e30 for v in values]
            want, result = _round_half(values, mode), got["OH"][part]
            ok = _close(result, want, 0)
        elif dst in ("half", "float", "double"):
            result = got[{"half": "OH", "float": "OF", "double": "OD"}[dst]][part]
            want = sources[src].astype(result.dtype)
            ok = (result == want) | (np.isnan(result) & np.isnan(want))
        else:
            m, sat = mode
            result = got["OU" if dst == "ulong" else "OL"][part]
            want = np.array(_round_int(sources[src], dst, m, sat), result.dtype)
            ok = result == want
            if not sat:     # out-of-range conversions without _sat are undefined: compare the others only
                lo, hi = INT_RANGES[dst]
                ok |= ~((sources[src] >= lo) & (sources[src] <= hi))
        bad = np.flatnonzero(~ok)
        if len(bad):
            i = bad[0]
            failures.append(f"{name} from {SRC_C_TYPES[src]}: {len(bad)} values differ, e.g. "
                            f"{sources[src][i]!r} -> {result[i]!r}, want {want[i]!r}")
    assert not failures, "\n".join(failures)


def test_vector_loads_stores_and_async_copies(program):
    cl, ctx, queue, prg, _, _ = program
    src = (np.arange(300) * 0.37 - 20).astype(H16)
    dst = _buffer(cl, ctx, np.zeros(64, H16))
    prg.mem(queue, (1,), (1,), _buffer(cl, ctx, src), _buffer(cl, ctx, src), dst)
    out = _read(cl, queue, dst, H16, 64)
    want = np.zeros(64, H16)
    want[0:16], want[16:24], want[24:28] = src[0:16], src[8:16], src[24:28]
    want[28:30], want[30:33], want[33:35] = src[6:8], src[5:8], src[10:12]
    want[35] = H16(np.float32(src[3]) * 2)
    assert (out.view(np.uint16) == want.view(np.uint16)).all(), (out, want)

    groups = 3
    data = (np.arange(groups * 100) * 0.5 - 33).astype(H16)
    data4 = (np.arange(groups * 120) * 0.25 + 1).astype(H16)
    d, d4, d2 = (_buffer(cl, ctx, np.zeros(n, H16)) for n in (groups * 100, groups * 80, groups * 40))
    prg.copies(queue, (groups * 16,), (16,), _buffer(cl, ctx, data), d, _buffer(cl, ctx, data4), d4, d2)
    assert (_read(cl, queue, d, H16, groups * 100) == (data.astype(np.float32) * 2).astype(H16)).all()
    got4 = _read(cl, queue, d4, H16, groups * 80).reshape(groups, 20, 4)
    src4 = data4.reshape(groups, 30, 4)
    assert (got4[:, 0::2] == src4[:, 0::3]).all()
    assert (got4[:, 1::2] == 0).all()
    got2 = _read(cl, queue, d2, H16, groups * 40).reshape(groups, 40)
    assert (got2 == data.reshape(groups, 100)[:, :40]).all()
