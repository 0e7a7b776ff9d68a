"""The neural compute engine's operations (MyriadXHwOp stages) in numpy: CONV, CONV_POOL, POOL, FC.

Semantics from myriad-blob-format.md §3 (OpenVINO 2021.4 `mx_stage.cpp`, `hw_weights_content.cpp`,
`hw_padding.cpp`, `merge_hw_stages.cpp`): weights `[OC/8][IC_ext][kh*kw][8]` fp16; padding k/2 left/top and
(k-1)/2 right/bottom; ReLU `x >= t0 ? a1*x : a0*x`, then the `scales`, then clip(0, clampMax).

The engine's accumulator is firmware behaviour no public source describes, so it is a choice: "fp32" (exact
fp16 products summed in fp32, one rounding to fp16) or "fp16" (a running fp16 sum, rounded after every tap).
`values_before_descale` is what the range check reads: the biased, ReLU'd sum before the `scales` multiply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


CONV, CONV_POOL, FC, POOL = 0, 1, 2, 4
OP_NAMES = {CONV: "CONV", CONV_POOL: "CONV_POOL", FC: "FC", POOL: "POOL"}
POOL_MAX, POOL_AVG = 0, 1
FP16_MAX = 65504.0


@dataclass
class HwOp:
    op_type: int
    pool_type: int | None
    mode: int
    with_pad: bool
    pad_mode: int | None
    input: int
    output: int
    coeffs: int
    biases: int
    scales: int
    out_chan_offset: int = 0
    out_num_chans: int = 0
    kernel_w: int = 1
    kernel_h: int = 1
    stride: int = 1
    pool_kernel: tuple[int, int] | None = None
    fc: tuple[int, int, int, int, int] | None = None    # input offset, num, output offset, num, accumulate
    relu: tuple[int, int, int] | None = None            # t0, a0, a1
    clamp_max: float | None = None
    reuse_data: int = 0
    reuse_coeff: int = 0

    @property
    def name(self) -> str:
        if self.op_type == POOL:
            return "POOL " + ("MAX" if self.pool_type == POOL_MAX else "AVG")
        return OP_NAMES.get(self.op_type, f"op {self.op_type}")


PAD_RIGHT, PAD_BOTTOM, PAD_TOP, PAD_LEFT = 1, 2, 4, 8


def _pads(op: HwOp, kh: int, kw: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding: k/2 left/top, (k-1)/2 right/bottom (hw_padding.cpp: the only amounts
    the engine takes); a pad mode other than 0 pads only the sides it names (pooling)."""
    if not op.with_pad:
        return 0, 0, 0, 0
    mode = op.pad_mode or (PAD_RIGHT | PAD_BOTTOM | PAD_TOP | PAD_LEFT)
    return (kh // 2 if mode & PAD_TOP else 0, (kh - 1) // 2 if mode & PAD_BOTTOM else 0,
            kw // 2 if mode & PAD_LEFT else 0, (kw - 1) // 2 if mode & PAD_RIGHT else 0)


def _windows(x: np.ndarray, kh: int, kw: int, stride: int, ho: int, wo: int, pads, fill: float) -> np.ndarray:
    """x (C, H, W) -> (C, kh, kw, ho, wo) strided windows over the padded input, padded with `fill`."""
    c, h, w = x.shape
    top, bottom, left, right = pads
    need_h = (ho - 1) * stride + kh
    need_w = (wo - 1) * stride + kw
    from kernelkit.runners.blob.sw import bounded

    padded = np.full(bounded((c, max(need_h, h + top), max(need_w, w + left))), fill, x.dtype)
    padded[:, top:top + h, left:left + w] = x
    # Rows past the declared bottom/right padding are never part of a window the engine computes.
    s = padded.strides
    return np.lib.stride_tricks.as_strided(padded, (c, kh, kw, ho, wo),
                                           (s[0], s[1], s[2], s[1] * stride, s[2] * stride), writeable=False)


def unpack_weights(raw: np.ndarray, ic_ext: int, kh: int, kw: int, off: int = 0, num: int | None = None) -> np.ndarray:
    """The HW weights `[OC/8][IC_ext][kh*kw][8]` as (OC, IC_ext, kh, kw) float32, output channels
    [off, off + num) only (a Python slice of them: past the end is cut short)."""
    flat = np.asarray(raw, np.float16).reshape(-1)
    blocks = flat.size // (ic_ext * kh * kw * 8)
    w = flat[:blocks * ic_ext * kh * kw * 8].reshape(blocks, ic_ext, kh * kw, 8)
    start, stop, _ = slice(off, None if num is None else off + num).indices(blocks * 8)
    if stop <= start:
        return np.zeros((0, ic_ext, kh, kw), np.float32)
    first, last = start // 8, -(-stop // 8)              # convert only the 8-channel blocks asked for
    part = w[first:last].transpose(0, 3, 1, 2).reshape((last - first) * 8, ic_ext, kh, kw)
    return part[start - first * 8:stop - first * 8].astype(np.float32)


def conv(x: np.ndarray, weights: np.ndarray, stride: int, ho: int, wo: int, pads, accumulator: str) -> np.ndarray:
    """x (C, H, W) fp16, weights (OC, C, kh, kw) float32 of fp16 values -> the raw sums (OC, ho, wo).

    The reference path (`Interpreter(reference=True)`): `columns` with `conv_fp32` or `conv_fp16`, the fast
    path, is tested against it bit for bit."""
    from kernelkit.runners.blob.sw import bounded

    oc, ic, kh, kw = weights.shape
    bounded((ic * kh * kw * 2, ho * wo), "a HW convolution's columns")      # float64: two words each
    win = _windows(x.astype(np.float32), kh, kw, stride, ho, wo, pads, 0.0)
    if accumulator == "fp32":
        # Summed in float64: the products of fp16 values are exact and a few thousand of them add up with no
        # rounding that survives the one rounding to fp16, so tiling and channel splits cannot change a bit.
        cols = np.ascontiguousarray(win, dtype=np.float64).reshape(ic * kh * kw, ho * wo)
        return (weights.reshape(oc, -1).astype(np.float64) @ cols).reshape(oc, ho, wo)
    acc = np.zeros((oc, ho, wo), np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        for c in range(ic):
            for i in range(kh):
                for j in range(kw):
                    tap = weights[:, c, i, j][:, None, None] * win[c, i, j][None]   # exact in fp32
                    acc = (acc.astype(np.float32) + tap).astype(np.float16)
    return acc.astype(np.float32)


def pool(x: np.ndarray, kind: int, kh: int, kw: int, stride: int, ho: int, wo: int, pads) -> np.ndarray:
    """x (C, H, W) -> (C, ho, wo); max pooling ignores the padding, average pooling divides by the kernel."""
    if kind == POOL_MAX:
        win = _windows(x.astype(np.float32), kh, kw, stride, ho, wo, pads, -np.inf)
        return win.max(axis=(1, 2))
    win = _windows(x.astype(np.float32), kh, kw, stride, ho, wo, pads, 0.0)
    return win.sum(axis=(1, 2)) / (kh * kw)


def columns(x: np.ndarray, kh: int, kw: int, stride: int, ho: int, wo: int, pads, dtype=np.float64) -> np.ndarray:
    """The (C*kh*kw, ho*wo) columns `conv` works on (float64 for the fp32 accumulator, float32 for fp16), from
    x (C, H, W) fp16: the same values without conv's float32 copy of the input, and for an unpadded 1x1
    without a gather."""
    c, h, w = x.shape
    top, bottom, left, right = pads
    need_h, need_w = (ho - 1) * stride + kh, (wo - 1) * stride + kw
    if kh == kw == 1 and not any(pads) and need_h <= h and need_w <= w:
        cols = np.empty((c, ho, wo), dtype)
        cols[...] = x[:, :need_h:stride, :need_w:stride]
    else:
        padded = np.zeros((c, max(need_h, h + top), max(need_w, w + left)), dtype)
        padded[:, top:top + h, left:left + w] = x
        s = padded.strides
        cols = np.ascontiguousarray(np.lib.stride_tricks.as_strided(
            padded, (c, kh, kw, ho, wo), (s[0], s[1], s[2], s[1] * stride, s[2] * stride), writeable=False))
    return cols.reshape(c * kh * kw, ho * wo)


def conv_fp32(weights: np.ndarray, cols: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """conv(..., "fp32") with the weights prepared once, (OC, C*kh*kw) float64, on `columns`: the same matrix
    product as conv's, so the same bits. -> the sums (OC, ho, wo) in float64."""
    return (weights @ cols).reshape(-1, ho, wo)


def conv_fp16(weights: np.ndarray, cols: np.ndarray, ho: int, wo: int) -> np.ndarray:
    """conv(..., "fp16") on `columns` (float32) with the weights (OC, C*kh*kw) float32: the same running fp16
    sum, tap by tap in conv's order (channel, row, column), each step's float32 sum rounded to fp16 (by
    Fp16Rounder or, on small arrays, the casts: the same values), in arrays allocated once. -> the sums
    (OC, ho, wo) in float32."""
    oc, taps = weights.shape
    acc = np.zeros((oc, cols.shape[1]), np.float32)     # always holds fp16 values
    tap = np.empty(acc.shape, np.float32)
    # The rounder's dozen numpy calls cost more than the casts on small arrays (measured crossover ~4k values).
    round_fp16 = Fp16Rounder(acc.size) if acc.size >= 8192 else None
    halves = np.empty(acc.shape, np.float16) if round_fp16 is None else None
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(taps):
            np.multiply(weights[:, k:k + 1], cols[k], out=tap)          # exact in float32
            np.add(acc, tap, out=acc)
            if round_fp16 is not None:
                round_fp16(acc)
            else:
                np.copyto(halves, acc, casting="unsafe")
                np.copyto(acc, halves)
    return acc.reshape(oc, ho, wo)


class Fp16Rounder:
    """Rounds a contiguous float32 array of one size to fp16 values in place, as a float32 -> float16 ->
    float32 cast round trip does (to nearest, ties to even; fp16 subnormals; inf from 65520 on; NaN stays
    NaN), in a dozen integer and float32 passes: numpy's half casts are scalar code, about 4x slower."""

    MIN_NORMAL = 0x38800000         # bits of 2**-14, fp16's smallest normal
    TO_INF = 0x477FF000             # bits of 65520: from here on a float32 rounds to fp16's inf

    def __init__(self, size: int):
        self.mag = np.empty(size, np.uint32)
        self.low = np.empty(size, np.uint32)
        self.mask = np.empty(size, bool)

    def __call__(self, x: np.ndarray) -> None:
        flat = x.reshape(-1)
        u = flat.view(np.uint32)
        mag, low, mask = self.mag, self.low, self.mask
        np.bitwise_and(u, 0x7FFFFFFF, out=mag)
        big = int(mag.max()) >= self.TO_INF if mag.size else False
        saved = u[mag >= self.TO_INF] if big else None
        # Below 2**-14 fp16 holds multiples of 2**-24: |x| + 0.75 rounds to one (its ulp there), sign kept.
        # Zeros need nothing, so only tiny non-zero values take this path.
        np.subtract(mag, 1, out=low)
        np.less(low, self.MIN_NORMAL - 1, out=mask)
        tiny = bool(mask.any())
        if tiny:
            f = low.view(np.float32)
            np.copyto(f, mag.view(np.float32))
            np.add(f, np.float32(0.75), out=f, where=mask)
            np.subtract(f, np.float32(0.75), out=f, where=mask)
            np.copysign(f, flat, out=f, where=mask)
            tiny_bits = low[mask]
        # fp16's normal range: keep 10 fraction bits, ties to even (a carry moves into the next binade).
        np.right_shift(u, 13, out=low)
        np.bitwise_and(low, 1, out=low)
        np.add(low, 0x0FFF, out=low)
        np.add(u, low, out=u)
        np.bitwise_and(u, 0xFFFFE000, out=u)
        if tiny:
            u[mask] = tiny_bits
        if big:
            nan = (saved & 0x7FFFFFFF) > 0x7F800000
            u[mag >= self.TO_INF] = np.where(nan, saved, (saved & 0x80000000) | 0x7F800000)
