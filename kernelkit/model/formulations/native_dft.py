"""Native formulations of the discrete Fourier transforms (DFT-7, IDFT-7, RDFT-9, IRDFT-9) on static
shapes: per transformed axis one MatMul with a constant matrix of cosines and sines.

Complex tensors are [..., 2] (real, imaginary), as OpenVINO has them. The axis is moved next to the
complex pair and the two are merged, so the transform is x[..., 2N] @ M[2N, 2K] with M interleaving
(real, imaginary) the way the data does; signal_size (trim or zero-pad) and the one-sided halves of
RDFT/IRDFT are rows and columns of M. M is applied as two fp16 constants (its fp16 rounding and the
remainder), as one fp16 constant alone costs 5e-4 per cosine; the VPU accumulates the products of a MatMul
in its own precision, which the measurement's evaluator takes as f32.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of

MAX_LENGTH = 1024       # a 2N x 2K constant beyond this is larger than the data it transforms


def _complex_matrix(n_in: int, length: int, outputs: int, inverse: bool) -> np.ndarray:
    """[2*n_in, 2*outputs]: interleaved complex input (zero-padded or trimmed to `length`) -> interleaved
    complex output bins 0..outputs-1 of a length-`length` (inverse) DFT."""
    n = np.arange(min(n_in, length))[:, None]
    k = np.arange(outputs)[None, :]
    angle = 2 * np.pi * n * k / length
    cos, sin = np.cos(angle), np.sin(angle) * (1 if inverse else -1)
    scale = 1 / length if inverse else 1
    m = np.zeros((2 * n_in, 2 * outputs))
    # (xr + i xi)(cos + i sin) = xr cos - xi sin + i (xr sin + xi cos)
    m[0:2 * len(n):2, 0::2] = cos * scale
    m[1:2 * len(n):2, 0::2] = -sin * scale
    m[0:2 * len(n):2, 1::2] = sin * scale
    m[1:2 * len(n):2, 1::2] = cos * scale
    return m


def _real_to_complex(n_in: int, length: int, outputs: int) -> np.ndarray:
    """[n_in, 2*outputs]: a real signal -> its first `outputs` DFT bins, interleaved."""
    return _complex_matrix(n_in, length, outputs, False)[0::2]


def _complex_to_real(n_in: int, length: int) -> np.ndarray:
    """[2*n_in, length]: the one-sided spectrum (bins 0..n_in-1) -> the real signal of `length` samples,
    the missing bins being the conjugates of the given ones (IRDFT)."""
    bins = min(n_in, length // 2 + 1)
    k = np.arange(bins)[:, None]
    n = np.arange(length)[None, :]
    weight = np.where((k == 0) | (2 * k == length), 1.0, 2.0)
    angle = 2 * np.pi * k * n / length
    m = np.zeros((2 * n_in, length))
    m[0:2 * bins:2] = weight * np.cos(angle) / length
    m[1:2 * bins:2] = -weight * np.sin(angle) / length
    return m


def _apply(c: Composer, x: Out, axis: int, matrix: np.ndarray, pair_in: bool, pair_out: bool) -> Out:
    """Transform `axis` of x with `matrix`; pair_in/pair_out: the input/output carry the complex pair as
    their last dimension."""
    dims = list(x.dims)
    data_rank = len(dims) - (1 if pair_in else 0)
    order = [i for i in range(data_rank) if i != axis] + [axis] + ([data_rank] if pair_in else [])
    moved = c.transpose(x, order) if order != list(range(len(dims))) else x
    kept = [dims[i] for i in range(data_rank) if i != axis]
    flat = c.reshape(moved, kept + [matrix.shape[0]])
    product = c.matmul_exact(flat, matrix)
    outputs = matrix.shape[1] // (2 if pair_out else 1)
    shaped = c.reshape(product, kept + [outputs] + ([2] if pair_out else []))
    new_rank = len(kept) + 1 + (1 if pair_out else 0)
    moved_order = [i for i in range(data_rank) if i != axis] + [axis] + ([data_rank] if pair_out else [])
    back = [moved_order.index(i) for i in range(new_rank)]
    return c.transpose(shaped, back) if back != list(range(new_rank)) else shaped


def _axes_and_sizes(model, layer, data_rank: int, dims: list[int]) -> tuple[list[int], list[int | None]]:
    axes = constant_input(model, layer, 1)
    if axes is None:
        raise Refuse("axes (input 1) must be constant")
    axes = [int(a) % data_rank for a in np.atleast_1d(axes)]
    sizes = [None] * len(axes)
    if len(layer.inputs) > 2:
        value = constant_input(model, layer, 2)
        if value is None:
            raise Refuse("signal_size (input 2) must be constant")
        sizes = [None if int(s) == -1 else int(s) for s in np.atleast_1d(value)]
    for axis, size in zip(axes, sizes):
        if max(dims[axis], size or 0) > MAX_LENGTH:
            raise Refuse(f"a transform of length {max(dims[axis], size or 0)} > {MAX_LENGTH}")
    return axes, sizes


def _input(model, layer) -> tuple[Out, Composer]:
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse("input must be floating point")
    if any(d <= 0 for d in x.dims):
        raise Refuse("a dynamic or zero dimension")
    return x, Composer(model, layer, x)


def _complex_dft(model, layer, inverse: bool) -> Out:
    x, c = _input(model, layer)
    rank = len(x.dims) - 1
    axes, sizes = _axes_and_sizes(model, layer, rank, x.dims)
    for axis, size in zip(axes, sizes):
        length = size or x.dims[axis]
        x = _apply(c, x, axis, _complex_matrix(x.dims[axis], length, length, inverse), True, True)
    return x


@formulation("dft", text="per axis a MatMul with the constant cos/sin matrix of the transform")
def dft(model, layer) -> Out:
    """DFT along each axis: y_k = sum_n x_n e^(-2 pi i k n / N)."""
    return _complex_dft(model, layer, False)


@formulation("idft", text="per axis a MatMul with the constant cos/sin matrix of the inverse, scaled 1/N")
def idft(model, layer) -> Out:
    """IDFT along each axis: x_n = 1/N sum_k y_k e^(2 pi i k n / N)."""
    return _complex_dft(model, layer, True)


@formulation("rdft", text="MatMuls with constant cos/sin matrices, the last axis one-sided")
def rdft(model, layer) -> Out:
    """RDFT: the real signal's DFT, one-sided (bins 0..N/2) on the last axis of `axes`."""
    x, c = _input(model, layer)
    axes, sizes = _axes_and_sizes(model, layer, len(x.dims), x.dims)
    last, last_size = axes[-1], sizes[-1] or x.dims[axes[-1]]
    x = _apply(c, x, last, _real_to_complex(x.dims[last], last_size, last_size // 2 + 1), False, True)
    for axis, size in zip(axes[:-1], sizes[:-1]):
        length = size or x.dims[axis]
        x = _apply(c, x, axis, _complex_matrix(x.dims[axis], length, length, False), True, True)
    return x


@formulation("irdft", text="MatMuls with constant cos/sin matrices, the last one from the one-sided spectrum")
def irdft(model, layer) -> Out:
    """IRDFT: inverse complex DFTs on the other axes, then the one-sided spectrum on the last axis of
    `axes` back to a real signal of signal_size (default 2(K-1)) samples."""
    x, c = _input(model, layer)
    rank = len(x.dims) - 1
    axes, sizes = _axes_and_sizes(model, layer, rank, x.dims)
    for axis, size in zip(axes[:-1], sizes[:-1]):
        length = size or x.dims[axis]
        x = _apply(c, x, axis, _complex_matrix(x.dims[axis], length, length, True), True, True)
    last = axes[-1]
    length = sizes[-1] or 2 * (x.dims[last] - 1)
    return _apply(c, x, last, _complex_to_real(x.dims[last], length), True, False)
