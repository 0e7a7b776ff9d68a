"""Tensor formats: logical IR layout (NCHW for 4-D) <-> the dense layout a binding declares.

Channel-first formats (BFYX, FYX) and BF/ANY keep the logical order. Channel-last formats (BYXF = NHWC,
YXF = HWC) move F (the third axis from the end) last; on a rank-4 tensor YXF is taken as BYXF and FYX as
BFYX (the batch stays outermost). Tensors of rank < 3 have no F axis to move.
"""

from __future__ import annotations

import numpy as np

from kernelkit.facts.tensor_formats import TENSOR_FORMATS

CHANNEL_LAST = tuple(name for name, f in TENSOR_FORMATS.items() if f.channel_last)


def _channel_last_axes(rank: int) -> list[int] | None:
    if rank < 3:
        return None
    f = rank - 3
    return [a for a in range(rank) if a != f] + [f]


def to_format(array: np.ndarray, fmt: str) -> np.ndarray:
    """Logical layout -> the binding's layout, dense."""
    return np.ascontiguousarray(format_view(array, fmt))


def format_view(array: np.ndarray, fmt: str) -> np.ndarray:
    """Logical layout -> the binding's layout, as a view (no copy): for np.copyto into a dense buffer."""
    axes = _channel_last_axes(array.ndim) if fmt.upper() in CHANNEL_LAST else None
    return array if axes is None else array.transpose(axes)


def device_shape(shape: tuple[int, ...], fmt: str) -> tuple[int, ...]:
    axes = _channel_last_axes(len(shape)) if fmt.upper() in CHANNEL_LAST else None
    return tuple(shape) if axes is None else tuple(shape[a] for a in axes)


def from_format(array: np.ndarray, fmt: str, shape: tuple[int, ...]) -> np.ndarray:
    """The binding's layout (flat or shaped) -> logical layout of `shape`."""
    dev = np.asarray(array).reshape(device_shape(shape, fmt))
    axes = _channel_last_axes(len(shape)) if fmt.upper() in CHANNEL_LAST else None
    return dev if axes is None else np.ascontiguousarray(dev.transpose(np.argsort(axes)))
