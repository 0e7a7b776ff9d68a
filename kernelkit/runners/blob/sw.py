"""The software (SHAVE and DMA) stage types in numpy, each as the plugin's stage computes it.

Parameter layouts and buffer orders are the 2021.4 plugin's (myriad-blob-format.md §2; checked against blobs
it compiled). Every function takes the stage's input arrays (float32, axes in the output's dims order) and its
parameter words, and returns the output in float32 (or the output's integer type); the interpreter rounds it
to the output buffer's type, so every stage output is fp16-rounded as on the device.

The inputs are the buffers the blob reader names as read, in blob order (for eltwise: input0, input1, ...).
"""

from __future__ import annotations

import math
import struct

import numpy as np

from kernelkit.core.errors import KernelkitError


def f32(word: int) -> float:
    return struct.unpack("<f", struct.pack("<i", int(word)))[0]


def bounded(shape, what: str = "a stage's working array") -> tuple[int, ...]:
    """`shape`, refused before allocation when a blob's parameters (pads, kernels, tiles) make it too large."""
    from kernelkit.core import limits

    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise KernelkitError(f"{what} would have the negative shape {list(shape)}")
    limits.check_tensor(shape, 4, what)
    return shape


def _pad_array(x: np.ndarray, widths, **options) -> np.ndarray:
    bounded([d + int(a) + int(b) for d, (a, b) in zip(x.shape, widths)])
    return np.pad(x, widths, **options)


def _axis(rank: int, inner_index: int) -> int:
    """A dims index counted innermost first -> the numpy axis (outermost first)."""
    return rank - 1 - int(inner_index)


# Post operations of eltwise stages (StageType codes).
POST_NONE, POST_RELU, POST_CLAMP = -1, 6, 57


def _eltwise(op):
    def run(ins, params, out):
        # The coefficients are f32 for fp16 data and i32 for integer data (the "num" fields).
        coeff = (lambda w: float(w)) if ins[0].dtype.kind in "iu" else f32
        c1, c2 = coeff(params[0]), coeff(params[1]) if len(params) > 1 else 1.0
        post = params[2] if len(params) > 2 else POST_NONE
        a, b = ins[0], ins[1]
        y = op(a, b, c1, c2)
        if len(ins) > 2 and op is _sum:
            y = y + ins[2]
        if post == POST_RELU:
            slope = f32(params[3])
            y = np.where(y >= 0, y, y * slope)
        elif post == POST_CLAMP:
            y = np.clip(y, coeff(params[4]), coeff(params[5]))
        elif post != POST_NONE:
            raise KernelkitError(f"eltwise post-operation {post} is not one the interpreter knows")
        return y
    return run


def _sum(a, b, c1, c2):
    def scaled(x, c):                               # 1.0 * x is x for floats: no pass for it
        return x if c == 1 and x.dtype.kind == "f" else c * x
    return scaled(a, c1) + scaled(b, c2)


def _topk(ins, params, outs):
    """TopK: params axis (innermost first), mode (0 max, 1 min), sort (0 none, 1 values, 2 indices), which
    outputs exist (values, indices); `k` is an input. Ties keep the lower index."""
    x, k = ins[0], int(np.asarray(ins[1]).reshape(-1)[0])
    axis = _axis(x.ndim, params[0])
    mode, sort, with_values, with_indices = (int(v) for v in params[1:5])
    keys = -x if mode == 0 else x
    order = np.argsort(keys, axis=axis, kind="stable")
    index = np.take(order, np.arange(k), axis=axis)
    if sort == 2:
        index = np.sort(index, axis=axis)
    values = np.take_along_axis(x, index, axis=axis)
    results = ([values] if with_values else []) + ([index.astype(np.int32)] if with_indices else [])
    if outs and isinstance(outs[0], int):               # one output: the single-output path's shape
        return results[0].reshape(outs)
    return [r.reshape(shape) for r, shape in zip(results, outs)]


def _lrn(ins, params, out):
    """LRN across channels: params size, then k, alpha, beta (f16 halves of the next words)."""
    x = ins[0]
    size = int(params[0])
    halves = np.array([int(w) & 0xFFFFFFFF for w in params[1:3]], "<u4").view("<f2").astype(np.float64)
    k, alpha, beta = halves[0], halves[1], halves[2]
    channels = x.shape[1]
    square = x.astype(np.float64) ** 2
    total = np.zeros_like(square)
    before, after = (size - 1) // 2, size // 2
    for c in range(channels):
        total[:, c] = square[:, max(0, c - before):min(channels, c + after + 1)].sum(axis=1)
    return x / (k + alpha / size * total) ** beta


def _compare(fn):
    return _eltwise(lambda a, b, c1, c2: fn(a, b).astype(np.float32))


def _select(ins, params, out):
    return np.where(ins[0] != 0, ins[1], ins[2])


def _softmax(ins, params, out):
    x = ins[0]
    axis = _axis(x.ndim, params[0])
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _relu(ins, params, out):
    x = ins[0]
    if len(ins) > 1:                 # BiasRelu: the bias first
        x = x + ins[1]
    slope = f32(params[1]) if len(params) > 1 else 0.0
    return np.where(x >= 0, x, x * slope)


def _power(ins, params, out):
    shift, scale, power = (f32(w) for w in params[:3])
    with np.errstate(all="ignore"):
        return np.power(scale * ins[0] + shift, power)


def _clamp(ins, params, out):
    return np.clip(ins[0], f32(params[0]), f32(params[1]))


def _mvn(ins, params, out):
    x = ins[0]
    normalize, across = params[0], params[1]
    # 2021.4.2 writes across_width before eps: set when the model's axes hold W and not H (mvn.cpp), as a
    # LayerNormalization over the last axis does; the stage then reduces W alone (and C when across; no blob
    # here has held that pair).
    width_only = len(params) > 3 and params[2]
    eps = f32(params[-1])
    if width_only:
        axes = ((x.ndim - 3,) if across and x.ndim >= 3 else ()) + (x.ndim - 1,)
    else:
        # The innermost two dims, H and W (and C too when across): by rank, so a 3-D CHW tensor (no N) reduces
        # its last two as a 4-D NCHW one does.
        count = 3 if across else 2
        axes = tuple(range(max(0, x.ndim - count), x.ndim))
    y = x - x.mean(axis=axes, keepdims=True)
    if normalize:
        y = y / np.sqrt((y * y).mean(axis=axes, keepdims=True) + eps)
    return y


def _gemm(ins, params, out):
    alpha, beta = f32(params[0]), f32(params[1])
    has_c, ta, tb = params[2], params[3], params[4]
    a, b = ins[0], ins[1]
    if ta:
        a = np.swapaxes(a, -1, -2)
    if tb:
        b = np.swapaxes(b, -1, -2)
    y = alpha * np.matmul(a, b)
    if has_c and len(ins) > 2:
        y = y + beta * ins[2]
    return y


def _permute(ins, params, out):
    x = ins[0]
    rank = x.ndim
    perm = [int(v) for v in params[:rank]]            # out dim i (innermost first) = in dim perm[i]
    axes = [_axis(rank, perm[_axis(rank, j)]) for j in range(rank)]
    return np.transpose(x, axes)


def _pad(ins, params, out):
    x = ins[0]
    rank = x.ndim
    pairs = [(int(params[2 * i]), int(params[2 * i + 1])) for i in range(4)]   # innermost first
    widths = [(0, 0)] * rank
    for i, pair in enumerate(pairs[:rank]):
        widths[_axis(rank, i)] = pair
    value, mode = f32(params[8]), params[9]
    if mode == 0:
        return _pad_array(x, widths, constant_values=value)
    return _pad_array(x, widths, mode={1: "edge", 2: "reflect", 3: "symmetric"}.get(mode, "constant"))


def _gather(ins, params, out):
    x, idx = ins[0], ins[1].astype(np.int64)
    axis = _axis(x.ndim, params[0])
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    y = np.take(x, idx.reshape(-1), axis=axis)
    return y.reshape(out)


def _tile(ins, params, out):
    x = ins[0]
    axis, tiles = _axis(x.ndim, params[0]), int(params[1])
    reps = [1] * x.ndim
    reps[axis] = tiles
    bounded([d * r for d, r in zip(x.shape, reps)])
    return np.tile(x, reps)


# InterpolateCoordTransMode and InterpolateNearestMode of the plugin (the Interpolate-4 attributes, in order).
HALF_PIXEL, PYTORCH_HALF_PIXEL, ASYMMETRIC, TF_HALF_PIXEL_FOR_NN, ALIGN_CORNERS = range(5)
ROUND_PREFER_FLOOR, ROUND_PREFER_CEIL, FLOOR, CEIL, SIMPLE = range(5)
INTERP_LINEAR_ONNX = 3


def _source_coords(out_size: int, in_size: int, mode: int) -> np.ndarray:
    """Interpolate-4's coordinate transformation: output index -> source coordinate."""
    x = np.arange(out_size, dtype=np.float64)
    ratio = out_size / in_size
    if mode == HALF_PIXEL:
        return (x + 0.5) / ratio - 0.5
    if mode == PYTORCH_HALF_PIXEL:
        return (x + 0.5) / ratio - 0.5 if out_size > 1 else np.zeros_like(x)
    if mode == TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / ratio
    if mode == ALIGN_CORNERS:
        return x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    return x / ratio                                    # asymmetric


def _nearest_index(coords: np.ndarray, mode: int, downsample: bool, size: int) -> np.ndarray:
    if mode == ROUND_PREFER_CEIL:
        index = np.floor(coords + 0.5)
    elif mode == FLOOR:
        index = np.floor(coords)
    elif mode == CEIL:
        index = np.ceil(coords)
    elif mode == SIMPLE:
        index = np.ceil(coords) if downsample else np.trunc(coords)
    else:                                               # round_prefer_floor
        index = np.where(coords - np.floor(coords) == 0.5, np.floor(coords), np.round(coords))
    return np.clip(index, 0, size - 1).astype(int)


def _resize_nearest(ins, params, out):
    """Resample: params antialias, factor, sample type, coordinate transformation, nearest mode."""
    x = ins[0]
    h, w = x.shape[-2:]
    oh, ow = out[-2:]
    coord = int(params[3]) if len(params) > 3 else ASYMMETRIC
    nearest = int(params[4]) if len(params) > 4 else FLOOR
    ys = _nearest_index(_source_coords(oh, h, coord), nearest, oh < h, h)
    xs = _nearest_index(_source_coords(ow, w, coord), nearest, ow < w, w)
    return x[..., ys[:, None], xs[None, :]]


def _interp_linear(ins, params, out):
    """Interp: params align_corners, mode, coordinate transformation. The Interpolate-1 form (mode 1) maps
    output pixels asymmetrically (or by align_corners); linear_onnx (mode 3) follows the coordinate mode."""
    x = ins[0]
    align, mode = int(params[0]), int(params[1]) if len(params) > 1 else 1
    coord_mode = int(params[2]) if len(params) > 2 else ASYMMETRIC
    h, w = x.shape[-2:]
    oh, ow = out[-2:]

    def coords(o, i):
        if mode == INTERP_LINEAR_ONNX:
            return np.clip(_source_coords(o, i, coord_mode), 0, i - 1)
        if align:
            return np.arange(o) * ((i - 1) / (o - 1) if o > 1 else 0.0)
        return np.arange(o) * (i / o)                   # the Interp layer's asymmetric mapping

    ys, xs = coords(oh, h), coords(ow, w)
    y0 = np.minimum(np.floor(ys).astype(int), h - 1)
    x0 = np.minimum(np.floor(xs).astype(int), w - 1)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    dy, dx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = x[..., y0[:, None], x0[None]] * (1 - dx) + x[..., y0[:, None], x1[None]] * dx
    bottom = x[..., y1[:, None], x0[None]] * (1 - dx) + x[..., y1[:, None], x1[None]] * dx
    return top * (1 - dy) + bottom * dy


def _strided_slice(ins, params, out):
    x = ins[0]
    begin, end, stride = (np.asarray(v, np.int64).reshape(-1) for v in ins[1:4])
    # The begin/end/stride constants are in the IR's axis order (outermost first), as are the view's axes.
    begin_mask, end_mask = int(params[0]), int(params[1])
    slices = []
    for axis in range(x.ndim):
        if axis >= begin.size:
            slices.append(slice(None))
            continue
        # The plugin's masks: a set bit means the begin/end value is used (the IR's masks inverted).
        bit = 1 << axis
        slices.append(slice(int(begin[axis]) if begin_mask & bit else None,
                            int(end[axis]) if end_mask & bit else None, int(stride[axis]) or 1))
    y = x[tuple(slices)]
    return y.reshape(out)


def _reduce(fn):
    def run(ins, params, out):
        x, axes = ins[0], np.asarray(ins[1], np.int64).reshape(-1)
        # The axes input counts dims innermost first, like every dims index of the plugin.
        y = fn(x, axis=tuple(_axis(x.ndim, int(a) % x.ndim) for a in axes), keepdims=True)
        return y.reshape(out)
    return run


def _upsampling(ins, params, out):
    """Zero insertion (the plugin's Deconvolution front): input pixel (y, x) lands at (y*fy + pad_top,
    x*fx + pad_left) of a zero output."""
    fx, fy = int(params[0]), int(params[1])
    pad_left, pad_top = int(params[3]), int(params[5])
    x = ins[0]
    y = np.zeros(out, np.float32)
    h, w = x.shape[-2:]
    y[..., pad_top:pad_top + (h - 1) * fy + 1:fy, pad_left:pad_left + (w - 1) * fx + 1:fx] = x
    return y


def _scale_shift(ins, params, out):
    y = ins[0] * ins[1]
    return y + ins[2] if len(ins) > 2 else y


def _prelu(ins, params, out):
    return np.where(ins[0] >= 0, ins[0], ins[0] * ins[1])


def _sw_conv(ins, params, out):
    kx, ky, sx, sy, pad_l, pad_t, dx, dy = (int(v) for v in params[:8])
    x, weights = ins[0], ins[1]                        # x (N, C, H, W); weights (OC, IC, ky, kx), see below
    n, c, h, wd = x.shape
    oc, oh, ow = out[1], out[2], out[3]
    depthwise = weights.shape[1] == 1 and c > 1        # each channel its own filter
    pad_b = max((oh - 1) * sy + (ky - 1) * dy + 1 - h - pad_t, 0)
    pad_r = max((ow - 1) * sx + (kx - 1) * dx + 1 - wd - pad_l, 0)
    xp = _pad_array(x, ((0, 0), (0, 0), (pad_t, pad_b), (pad_l, pad_r)))
    y = np.zeros((n, oc, oh, ow), np.float32)
    for i in range(ky):
        for j in range(kx):
            patch = xp[:, :, i * dy:i * dy + (oh - 1) * sy + 1:sy, j * dx:j * dx + (ow - 1) * sx + 1:sx]
            if depthwise:
                y += patch * weights[None, :, 0, i, j, None, None]
            else:
                y += np.einsum("nchw,oc->nohw", patch, weights[:, :, i, j])
    if len(ins) > 2:
        y += ins[2].reshape(1, oc, 1, 1)
    return y


def sw_conv_weights(raw: np.ndarray, *, hwc: bool, kx: int, ky: int, dil: tuple[int, int], ic: int, oc: int,
                    depthwise: bool = False) -> np.ndarray:
    """A software convolution's weights as (OC, IC, ky, kx) float32 (IC = 1 for depthwise).

    The plugin re-lays them out per kernel variant (sw_conv_adaptation.cpp and conv_weights_contents.cpp):
    1x1 keeps the IR's [OC][IC]; an interleaved (HWC) input takes [kh][kw][IC][OC] for small "spatial" convs
    (odd kernel up to 11, IC*OC <= 256), [kh][kw][OC][IC] for 3x3 with IC > 3 and IC*OC > 256, else
    [OC][kh][kw][IC] (im2col); a planar (CHW) input takes [kh][kw][OC][IC]; depthwise [kh][kw][C].
    """
    if depthwise:
        return np.asarray(raw, np.float32).reshape(-1)[:ky * kx * oc].reshape(ky, kx, oc).transpose(2, 0, 1)[
            :, None]
    flat = np.asarray(raw, np.float32).reshape(-1)[:ky * kx * ic * oc]
    if kx == ky == 1 and dil == (1, 1):
        return flat.reshape(oc, ic, 1, 1)
    if hwc:
        spatial = 1 < kx < 12 and kx % 2 == 1 and ky != 1 and ic * oc <= 256
        conv3x3 = kx == ky == 3 and ic > 3 and ic * oc > 256
        if spatial:
            return flat.reshape(ky, kx, ic, oc).transpose(3, 2, 0, 1)
        if not conv3x3:
            return flat.reshape(oc, ky, kx, ic).transpose(0, 3, 1, 2)
    return flat.reshape(ky, kx, oc, ic).transpose(2, 3, 0, 1)


def _fc(ins, params, out):
    # Inputs: data with C innermost (the stage moves C last: HWC), weights [HW][IC][OC] (OC innermost: the
    # plugin's kchw_to_hwck of the IR's [OC][IC][HW] in sw_fc_adaptation.cpp); so a flat dot product per item.
    x, w = ins[0], ins[1]
    oc = int(np.prod(out[1:])) if len(out) > 1 else int(out[0])
    per_item = w.size // oc if oc else 0                # H*W*IC
    if not per_item or per_item * oc != w.size or x.size % per_item:
        raise KernelkitError(f"FC: {x.size} input values do not fit weights of {w.size} for {oc} outputs")
    y = x.reshape(-1, per_item) @ w.reshape(per_item, oc)
    return y.reshape(out)


def _sw_pool(kind):
    def run(ins, params, out):
        kx, ky, sx, sy, pad_l, pad_t = (int(v) for v in params[:6])
        exclude = int(params[6]) if len(params) > 6 else 1
        x = ins[0]
        n, c, h, w = x.shape
        oh, ow = out[-2], out[-1]
        pad_b = max((oh - 1) * sy + ky - h - pad_t, 0)
        pad_r = max((ow - 1) * sx + kx - w - pad_l, 0)
        fill = -np.inf if kind == "max" else 0.0
        xp = _pad_array(x, ((0, 0), (0, 0), (pad_t, pad_b), (pad_l, pad_r)), constant_values=fill)
        ones = _pad_array(np.ones((h, w), np.float32), ((pad_t, pad_b), (pad_l, pad_r)))
        acc = np.full((n, c, oh, ow), fill, np.float32)
        count = np.zeros((oh, ow), np.float32)
        for i in range(ky):
            for j in range(kx):
                patch = xp[:, :, i:i + (oh - 1) * sy + 1:sy, j:j + (ow - 1) * sx + 1:sx]
                acc = np.maximum(acc, patch) if kind == "max" else acc + patch
                count += ones[i:i + (oh - 1) * sy + 1:sy, j:j + (ow - 1) * sx + 1:sx]
        if kind == "max":
            return acc
        return acc / (count if exclude else kx * ky)
    return run


def _unary(fn):
    def run(ins, params, out):
        with np.errstate(all="ignore"):
            return fn(ins[0], params)
    return run


def _gelu(x, p):
    from math import sqrt
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1 + erf(x / sqrt(2)))


def _round(x, p):
    if p and p[0] == 1:                                 # half away from zero
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    return np.round(x)                                  # half to even


def _convert(ins, params, out):
    scale = f32(params[0]) if params else 1.0
    bias = f32(params[1]) if len(params) > 1 else 0.0
    x = ins[0]
    if scale != 1.0 or bias != 0.0:
        x = x * scale + bias
    return x


def _copy(ins, params, out):
    return ins[0]


def _concat(ins, params, out):
    # axis innermost first, as the other stages' axis words; untested: every concat compiled here became Copy
    # stages into one buffer, none a Concat stage
    axis = _axis(len(out), params[0])
    return np.concatenate(ins, axis=axis)


def _broadcast(ins, params, out):
    return np.broadcast_to(ins[0], out)


def _roi_align(ins, params, out):
    """ROIAlign-3 in avg mode: params pooled_w, pooled_h, sampling_ratio, spatial_scale (f32), mode (0 avg),
    step_number; inputs the feature map (N, C, H, W), the boxes [R, 4] (x1, y1, x2, y2) and their images.
    A box is at least one pixel; each bin averages sr x sr bilinear samples (ceil(bin) per side when sr is 0),
    a sample more than a pixel outside the map counting 0 (OpenVINO's ROIAlign-3; matches OpenVINO CPU)."""
    x, boxes, images = ins[0], np.asarray(ins[1], np.float64).reshape(-1, 4), np.asarray(ins[2]).reshape(-1)
    pooled_w, pooled_h, ratio, scale, mode = int(params[0]), int(params[1]), int(params[2]), f32(params[3]), \
        int(params[4])
    if mode != 0:
        raise KernelkitError(f"ROIAlign mode {mode} (max) has no numpy semantics in kernelkit: OpenVINO's "
                             "maximum is not one the interpreter knows")
    _, _, height, width = x.shape
    y = np.zeros(bounded(out), np.float64)
    for r, (box, image) in enumerate(zip(boxes * scale, images)):
        x1, y1 = box[0], box[1]
        bin_w, bin_h = max(box[2] - x1, 1.0) / pooled_w, max(box[3] - y1, 1.0) / pooled_h
        grid_h = ratio if ratio > 0 else int(math.ceil(bin_h))
        grid_w = ratio if ratio > 0 else int(math.ceil(bin_w))
        ys = y1 + (np.arange(pooled_h)[:, None] + (np.arange(grid_h)[None, :] + 0.5) / grid_h) * bin_h
        xs = x1 + (np.arange(pooled_w)[:, None] + (np.arange(grid_w)[None, :] + 0.5) / grid_w) * bin_w
        plane = x[int(image)].astype(np.float64)
        total = 0.0
        for sy in range(grid_h):
            for sx in range(grid_w):
                total = total + _bilinear(plane, ys[:, sy][:, None], xs[:, sx][None, :], height, width)
        y[r] = total / (grid_h * grid_w)
    return y


def _bilinear(plane, yy, xx, height, width):
    """plane (C, H, W) at the points yy (h, 1) x xx (1, w): [C, h, w]; 0 more than a pixel outside."""
    yy, xx = np.broadcast_arrays(yy, xx)
    outside = (yy < -1) | (yy > height) | (xx < -1) | (xx > width)
    yy, xx = np.maximum(yy, 0), np.maximum(xx, 0)
    y0, x0 = np.minimum(yy.astype(np.int64), height - 1), np.minimum(xx.astype(np.int64), width - 1)
    yy, xx = np.where(y0 >= height - 1, y0, yy), np.where(x0 >= width - 1, x0, xx)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    ly, lx = yy - y0, xx - x0
    value = ((1 - ly) * (1 - lx) * plane[:, y0, x0] + (1 - ly) * lx * plane[:, y0, x1]
             + ly * (1 - lx) * plane[:, y1, x0] + ly * lx * plane[:, y1, x1])
    return np.where(outside, 0.0, value)


# StageType code -> (name, function)
STAGES = {
    0: ("Conv", _sw_conv),
    8: ("DepthConv", _sw_conv),
    49: ("Im2ColConvolution", _sw_conv),
    1: ("MaxPool", _sw_pool("max")),
    2: ("AvgPool", _sw_pool("avg")),
    3: ("SoftMax", _softmax),
    4: ("FC", _fc),
    6: ("Relu", _relu),
    9: ("Bias", lambda ins, params, out: ins[0] + ins[1]),
    10: ("PRelu", _prelu),
    12: ("Sum", _eltwise(_sum)),
    13: ("Prod", _eltwise(lambda a, b, c1, c2: a * b)),
    14: ("Max", _eltwise(lambda a, b, c1, c2: np.maximum(a, b))),
    15: ("Scale", _scale_shift),
    19: ("Copy", _copy),
    20: ("Sigmoid", _unary(lambda x, p: 1 / (1 + np.exp(-x)))),
    21: ("Tanh", _unary(lambda x, p: np.tanh(x))),
    23: ("Elu", _unary(lambda x, p: np.where(x > 0, x, f32(p[0]) * (np.exp(x) - 1)))),
    26: ("Power", _power),
    28: ("Tile", _tile),
    34: ("Permute", _permute),
    44: ("LeakyRelu", _relu),
    45: ("BiasRelu", _relu),
    47: ("ScaleShift", _scale_shift),
    57: ("Clamp", _clamp),
    62: ("MVN", _mvn),
    67: ("Interp", _interp_linear),
    71: ("Pad", _pad),
    72: ("Resample", _resize_nearest),
    73: ("Upsampling", _upsampling),
    75: ("Div", _eltwise(lambda a, b, c1, c2: a / b)),
    76: ("Min", _eltwise(lambda a, b, c1, c2: np.minimum(a, b))),
    77: ("Squared_diff", _eltwise(lambda a, b, c1, c2: (a - b) ** 2)),
    78: ("Equal", _compare(np.equal)),
    79: ("Not_equal", _compare(np.not_equal)),
    80: ("Greater", _compare(np.greater)),
    81: ("Greater_equal", _compare(np.greater_equal)),
    82: ("Less", _compare(np.less)),
    83: ("Less_equal", _compare(np.less_equal)),
    85: ("Logical_AND", _compare(lambda a, b: (a != 0) & (b != 0))),
    86: ("Logical_OR", _compare(lambda a, b: (a != 0) | (b != 0))),
    87: ("Logical_XOR", _compare(lambda a, b: (a != 0) ^ (b != 0))),
    88: ("Pow", _eltwise(lambda a, b, c1, c2: np.power(a, b))),
    89: ("Floor_mod", _eltwise(lambda a, b, c1, c2: a - np.floor(a / b) * b)),
    90: ("Select", _select),
    91: ("GEMM", _gemm),
    104: ("TopK", _topk),
    11: ("LRN", _lrn),
    92: ("Log", _unary(lambda x, p: np.log(x))),
    100: ("Gather", _gather),
    101: ("Exp", _unary(lambda x, p: np.exp(x))),
    102: ("Floor", _unary(lambda x, p: np.floor(x))),
    111: ("Convert", _convert),
    112: ("ReduceMax", _reduce(np.max)),
    113: ("ReduceSum", _reduce(np.sum)),
    114: ("ReduceMean", _reduce(np.mean)),
    128: ("Concat", _concat),
    129: ("Broadcast", _broadcast),
    132: ("Gelu", _unary(_gelu)),
    133: ("StridedSlice", _strided_slice),
    135: ("Swish", _unary(lambda x, p: x / (1 + np.exp(-f32(p[0]) * x)))),
    137: ("HSwish", _unary(lambda x, p: x * np.clip(x + 3, 0, 6) / 6)),
    140: ("Round", _unary(_round)),
    84: ("Logical_NOT", _unary(lambda x, p: (x == 0).astype(np.float32))),
    105: ("ReduceMin", _reduce(np.min)),
    110: ("Erf", _unary(lambda x, p: np.vectorize(math.erf, otypes=[np.float64])(x))),
    131: ("Mish", _unary(lambda x, p: x * np.tanh(np.logaddexp(0, x)))),
    134: ("SoftPlus", _unary(lambda x, p: np.logaddexp(0, x))),
    138: ("Ceiling", _unary(lambda x, p: np.ceil(x))),
    123: ("ROIAlign", _roi_align),
}

# Stages whose inputs are matched to the output by dims letter (element-wise, with broadcasting).
ALIGNED = {
    6, 9, 10, 12, 13, 14, 15, 19, 20, 21, 23, 26, 44, 45, 47, 57, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86,
    87, 88, 89, 90, 92, 101, 102, 110, 111, 131, 132, 134, 135, 137, 138, 140
}

# Stages whose data input and output are read by dims letter in N, C, (D,) H, W order, whatever their layout.
BY_LETTER = {0, 1, 2, 8, 11, 49, 62, 67, 72, 73, 123}
DEPTH_CONV = 8
CONVS = {0, DEPTH_CONV, 49}
COPY = 19

# The eltwise family (coefficients, post-operation; operands broadcast numpy-style).
ELTWISE = {12, 13, 14, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90}
