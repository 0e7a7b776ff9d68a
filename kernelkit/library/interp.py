"""Interpolation pieces shared by the GridSample, Interpolate (cubic) and AffineGrid references (float64)."""

from __future__ import annotations

import numpy as np


def cubic_weights(t: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys cubic convolution weights for the 4 taps at offsets -1, 0, 1, 2 from floor(x); t = x - floor(x)."""
    t = np.asarray(t, dtype=np.float64)
    d = np.stack([t + 1.0, t, 1.0 - t, 2.0 - t], axis=-1)  # distance of each tap
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0  # |d| <= 1
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a  # 1 < |d| < 2
    return np.where(d <= 1.0, near, far)


def reflect(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold coordinates back into [low, high] by mirroring at the borders, as often as needed."""
    x = np.asarray(x, dtype=np.float64)
    span = high - low
    if span <= 0:
        return np.full_like(x, low)
    below = x < low
    above = x > high
    dist = np.where(below, low - x, np.where(above, x - high, 0.0))
    flips = np.floor(dist / span)
    rest = dist - flips * span
    even = (flips % 2) == 0
    from_low = np.where(even, low + rest, high - rest)
    from_high = np.where(even, high - rest, low + rest)
    return np.where(below, from_low, np.where(above, from_high, x))


def source_coordinate(out_index: np.ndarray, in_size: int, scale: float, mode: str) -> np.ndarray:
    """Map output indices to input coordinates (ONNX Resize / OpenVINO Interpolate coordinate_transformation_mode).

    As in ONNX, align_corners and pytorch_half_pixel use the unrounded resized length in_size * scale.
    """
    x = np.asarray(out_index, dtype=np.float64)
    out_size = in_size * scale
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    raise ValueError(mode)


COORDINATE_MODES = {m: m for m in ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                     "tf_half_pixel_for_nn")}


def cubic_matrix(in_size: int, out_size: int, scale: float, mode: str, a: float = -0.75,
                 exclude_outside: bool = False) -> np.ndarray:
    """The (out_size, in_size) matrix of 1-D cubic resampling: taps outside the input are clamped to the edge,
    or (exclude_outside) dropped with the remaining weights renormalised."""
    x = source_coordinate(np.arange(out_size), in_size, scale, mode)
    base = np.floor(x)
    weights = cubic_weights(x - base, a)
    taps = base[:, None].astype(np.int64) + np.arange(-1, 3)[None, :]
    inside = (taps >= 0) & (taps < in_size)
    if exclude_outside:
        weights = np.where(inside, weights, 0.0)
        weights = weights / weights.sum(axis=1, keepdims=True)
    matrix = np.zeros((out_size, in_size))
    rows = np.repeat(np.arange(out_size), 4)
    np.add.at(matrix, (rows, np.clip(taps, 0, in_size - 1).ravel()), weights.ravel())
    return matrix
