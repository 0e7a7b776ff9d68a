"""float64 reference: GridSample (OpenVINO opset9 / ONNX opset 20) for any number of spatial axes.

mode bilinear|bicubic|nearest (ONNX spellings linear|cubic accepted), padding_mode zeros|border|reflection,
align_corners 0|1. grid[..., 0] is the x (last axis) coordinate in [-1, 1]. Nearest rounds half to even.
"""

import numpy as np

from kernelkit.library.attrs import attr_bool, attr_str
from kernelkit.library.interp import cubic_weights, reflect

MODES = {"bilinear": "linear", "linear": "linear", "bicubic": "cubic", "cubic": "cubic", "nearest": "nearest"}
PADDINGS = {"zeros": "zeros", "border": "border", "reflection": "reflection"}


def _taps(pos: np.ndarray, size: int, mode: str, padding: str, align: bool):
    """Per output point: input indices, weights and in-range mask of the taps along one axis."""
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        pos = np.rint(pos)
    outside = (pos < lo) | (pos > hi)
    if padding == "border":
        pos = np.where(outside, np.clip(pos, 0, size - 1), pos)
    elif padding == "reflection":
        pos = np.where(outside, reflect(pos, lo, hi), pos)
    if mode == "nearest":
        taps = np.trunc(pos)[..., None]
        weights = np.ones_like(taps)
    else:
        base = np.floor(pos)
        t = pos - base
        if mode == "linear":
            taps = base[..., None] + np.arange(2)
            weights = np.stack([1.0 - t, t], axis=-1)
        else:
            taps = base[..., None] + np.arange(-1, 3)
            weights = cubic_weights(t)
    taps = taps.astype(np.int64)
    if padding == "zeros":
        valid = (taps >= 0) & (taps < size)
    else:
        valid = np.ones(taps.shape, dtype=bool)
        if padding == "reflection":
            taps = np.trunc(reflect(taps, lo, hi)).astype(np.int64)
    return np.clip(taps, 0, size - 1), weights * valid


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    grid = np.asarray(inputs[1], dtype=np.float64)
    mode = attr_str(attrs, "mode", "bilinear", MODES)
    padding = attr_str(attrs, "padding_mode", "zeros", PADDINGS)
    align = attr_bool(attrs, "align_corners", False)
    spatial = x.shape[2:]
    coords = grid[..., ::-1]  # coords[..., d] addresses spatial axis d
    per_axis = []
    for d, size in enumerate(spatial):
        n = coords[..., d]
        pos = (n + 1.0) / 2.0 * (size - 1) if align else ((n + 1.0) * size - 1.0) / 2.0
        per_axis.append(_taps(pos, size, mode, padding, align))
    channels_last = np.moveaxis(x, 1, -1)  # (N, *spatial, C)
    batch = np.arange(x.shape[0]).reshape((-1,) + (1,) * (grid.ndim - 2))
    out = np.zeros(grid.shape[:-1] + (x.shape[1],))
    for combo in np.ndindex(*[taps.shape[-1] for taps, _ in per_axis]):
        index = [batch] + [taps[..., k] for (taps, _), k in zip(per_axis, combo)]
        weight = np.prod([w[..., k] for (_, w), k in zip(per_axis, combo)], axis=0)
        out += weight[..., None] * channels_last[tuple(index)]
    return np.moveaxis(out, -1, 1)
