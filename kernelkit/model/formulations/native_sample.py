"""Native formulations of the sampling ops: GridSample (a grid computed at run time) as taps fetched with
Gather and weighted sums; the interpolation weights computed in fp16 ops.

fp16 is the problem to design around: a pixel coordinate of 60 has a resolution of 1/32 in fp16, which
would put 1.5 % errors into bilinear weights. So the coordinate x = g*s + o (g the grid value in [-1, 1])
is kept in three parts (an integer, an exact small part, a rounded part below 1/2; `_coordinate`), exact
in sum while the image side is <= 128; the tap and its weight are taken from the parts. A coordinate
that border or reflection padding brings back into range keeps only the precision of the rounded sum.
Larger images are refused, and take the library kernel.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of

MAX_SIDE = 128          # where the coarse part stays exact in fp16 (8 * 128 * 2 = 2048)
CUBIC_A = -0.75         # GridSample's bicubic (Keys, as PyTorch)


class _Axis:
    """One spatial axis: its size and how grid values map to pixel coordinates."""

    def __init__(self, size: int, align_corners: bool, padding: str):
        self.size, self.padding = size, padding
        self.scale = (size - 1) / 2 if align_corners else size / 2
        self.offset = (size - 1) / 2
        self.low, self.high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)


def _coordinate(c: Composer, g: Out, axis: _Axis) -> tuple[Out, Out, Out]:
    """(whole, part, fine) with whole + part + fine = g * scale + offset: whole an integer, part exact in
    fp16 (|part| <= 5 on a 1/256 grid) and |fine| <= 1/2.

    g is split as g1 + g2 + g3 with g1 = round(8g)/8 and g2 = round(128(g - g1))/128: g1*scale and
    g2*scale are exact for sides up to 128; fine = g3*scale rounds at magnitude 1/2."""
    g1 = c.mul(c.round(c.mul(g, 8)), 0.125)
    rest = c.sub(g, g1)
    g2 = c.mul(c.round(c.mul(rest, 128)), 1 / 128)
    first = c.add(c.mul(g1, axis.scale), axis.offset)
    whole = c.floor(first)
    part = c.add(c.sub(first, whole), c.mul(g2, axis.scale))
    return whole, part, c.mul(c.sub(rest, g2), axis.scale)


def _approximate(c: Composer, whole: Out, part: Out, fine: Out) -> Out:
    return c.add(c.add(whole, part), fine)


def _reflect(c: Composer, v: Out, low: float, high: float) -> Out:
    """Fold v into [low, high] by mirroring at both ends, as often as needed (GridSample's reflection)."""
    span = high - low
    if span <= 0:
        return c.mul(v, 0.0)
    t = c.floor_mod(c.sub(v, low), 2 * span)
    return c.add(c.select(c.greater(t, span), c.sub(2 * span, t), t), low)


def _outside(c: Composer, x: Out, axis: _Axis) -> tuple[Out, Out]:
    """(x outside [low, high], x brought back: clamped for border, folded for reflection)."""
    outside = c.op("LogicalOr", [c.less(x, axis.low), c.greater(x, axis.high)], {"auto_broadcast": "numpy"})
    return outside, (c.op("Clamp", [x], {"min": 0, "max": axis.size - 1}) if axis.padding == "border"
                     else _reflect(c, x, axis.low, axis.high))


def _bring_back(c: Composer, whole: Out, part: Out, fine: Out, axis: _Axis) -> tuple[Out, Out, Out]:
    """A coordinate outside [low, high] clamped (border) or folded (reflection), still in three exact parts:
    the fold x -> 2*high - x (or 2*low - x) negates the parts, so it loses nothing."""
    outside = c.op("LogicalOr", [c.less(_approximate(c, whole, part, fine), axis.low),
                                 c.greater(_approximate(c, whole, part, fine), axis.high)],
                   {"auto_broadcast": "numpy"})
    if axis.padding == "border":
        clamped = c.op("Clamp", [_approximate(c, whole, part, fine)], {"min": 0, "max": axis.size - 1})
        return c.select(outside, clamped, whole), c.select(outside, 0.0, part), c.select(outside, 0.0, fine)
    span = axis.high - axis.low
    if span <= 0:
        return c.select(outside, 0.0, whole), c.select(outside, 0.0, part), c.select(outside, 0.0, fine)
    period = 2 * span
    shifted = c.sub(part, axis.low)                       # u = x - low = whole + shifted + fine
    turns = c.floor_mod(whole, period)                    # an integer, exact
    u = c.add(c.add(turns, shifted), fine)
    turns = c.select(c.less(u, 0), c.add(turns, period), c.select(c.less(u, period), turns, c.sub(turns, period)))
    u = c.add(c.add(turns, shifted), fine)
    fold = c.greater(u, span)
    new_whole = c.select(fold, c.sub(period, turns), turns)
    new_part = c.add(c.select(fold, c.neg(shifted), shifted), axis.low)
    new_fine = c.select(fold, c.neg(fine), fine)
    return (c.select(outside, new_whole, whole), c.select(outside, new_part, part),
            c.select(outside, new_fine, fine))


def _tap_index(c: Composer, i: Out, axis: _Axis) -> tuple[Out, Out | None]:
    """The pixel a tap reads, in range, and for zeros padding whether the tap was in range."""
    padding = axis.padding
    if padding == "zeros":
        inside = c.op("LogicalAnd", [c.greater(i, -0.5), c.less(i, axis.size - 0.5)], {"auto_broadcast": "numpy"})
        return c.op("Clamp", [i], {"min": 0, "max": axis.size - 1}), inside
    if padding == "border":
        return c.op("Clamp", [i], {"min": 0, "max": axis.size - 1}), None
    return c.op("Clamp", [_reflect(c, i, axis.low, axis.high)], {"min": 0, "max": axis.size - 1}), None


def _cubic_weights(c: Composer, w: Out) -> list[Out]:
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for the fraction w in [0, 1), in factored
    forms: the textbook polynomials cancel down from terms of size 6 in fp16 (errors of 2e-3 per weight)."""
    a = CUBIC_A
    v = c.sub(1, w)
    outer = lambda t, u: c.mul(c.mul(c.mul(t, u), u), a)                                 # noqa: E731 a t u^2
    inner = lambda t: c.sub(1, c.mul(c.mul(t, t), c.sub(a + 3, c.mul(t, a + 2))))          # noqa: E731
    return [outer(w, v), inner(w), inner(v), outer(v, w)]


def _taps(c: Composer, whole: Out, part: Out, fine: Out, axis: _Axis, mode: str) -> list[tuple[Out, Out]]:
    """(pixel index, weight) of every tap along one axis."""
    if mode == "nearest":
        # Rounded first (half to even, as PyTorch), then brought back into range. The even part of the
        # integer is kept aside, so the rest rounds at a small magnitude, ties to even included.
        even = c.sub(whole, c.floor_mod(whole, 2))
        index = c.add(even, c.round(c.add(c.add(c.sub(whole, even), part), fine)))
        if axis.padding != "zeros":
            outside, fixed = _outside(c, index, axis)
            index = c.select(outside, fixed, index)
        taps = [(index, None)]
    else:
        if axis.padding == "reflection" or (axis.padding == "border" and mode == "bilinear"):
            # (bicubic with border padding clamps each tap only, as OpenVINO and PyTorch do)
            whole, part, fine = _bring_back(c, whole, part, fine, axis)
        # Tap and weight without forming the whole coordinate: floor(whole + part + fine) taken at once
        # could pick the neighbouring pixel pair (a wrong pair, not a small weight error).
        step = c.floor(part)
        rest = c.add(c.sub(part, step), fine)
        last = c.floor(rest)
        base = c.add(c.add(whole, step), last)
        w = c.sub(rest, last)
        if mode == "bilinear":
            taps = [(base, c.sub(1, w)), (c.add(base, 1), w)]
        else:
            taps = [(c.add(base, k), weight) for k, weight in zip((-1, 0, 1, 2), _cubic_weights(c, w))]
    out = []
    for index, weight in taps:
        index, inside = _tap_index(c, index, axis)
        if inside is not None:
            weight = c.select(inside, weight if weight is not None else 1.0, 0.0)
        out.append((index, weight))
    return out


def _tree_sum(c: Composer, terms: list[Out]) -> Out:
    while len(terms) > 1:
        terms = [c.add(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def _grid_sample_variant(layer) -> str:
    return f"{layer.attrs.get('mode', 'bilinear')}, {layer.attrs.get('padding_mode', 'zeros')} padding"


@formulation("gridsample", text="per tap a Gather of the addressed pixels (i32 indices) times its fp16 weight, "
             "summed; coordinates split in three exact parts for fp16", variant=_grid_sample_variant)
def grid_sample(model, layer) -> Out:
    """GridSample-9 (2-D) = per tap a Gather of the pixels the grid points at, times its weight, summed."""
    x = input_of(model, layer, 0)
    grid = input_of(model, layer, 1)
    if x.precision not in FLOAT_PRECISIONS or grid.precision not in FLOAT_PRECISIONS:
        raise Refuse("data and grid must be floating point")
    if len(x.dims) != 4:
        raise Refuse(f"rank-{len(x.dims)} data: only 2-D sampling (NCHW) is formulated")
    n, channels, height, width = x.dims
    if any(d <= 0 for d in x.dims + grid.dims):
        raise Refuse("a dynamic or zero dimension")
    if max(height, width) > MAX_SIDE:
        raise Refuse(f"a {height}x{width} image: beyond {MAX_SIDE} pixels fp16 coordinates lose the weights' precision")
    mode = layer.attrs.get("mode", "bilinear")
    padding = layer.attrs.get("padding_mode", "zeros")
    align = layer.attrs.get("align_corners", "false").lower() == "true"
    if mode not in ("bilinear", "bicubic", "nearest") or padding not in ("zeros", "border", "reflection"):
        raise Refuse(f"mode {mode!r} / padding {padding!r}")
    c = Composer(model, layer, x)
    _, out_h, out_w, _ = grid.dims
    points = n * out_h * out_w
    flat_grid = c.reshape(grid, [points, 2])
    gx, gy = c.slice(flat_grid, 1, 0, 1), c.slice(flat_grid, 1, 1, 2)
    axes = (_Axis(height, align, padding), _Axis(width, align, padding))
    rows = _taps(c, *_coordinate(c, gy, axes[0]), axes[0], mode)
    cols = _taps(c, *_coordinate(c, gx, axes[1]), axes[1], mode)
    pixels = c.reshape(c.transpose(x, [0, 2, 3, 1]), [n * height * width, channels])
    # Flat pixel indices are computed in i32: n*H*W + row*W + col exceeds fp16's exact integers quickly.
    first = c.const(np.repeat(np.arange(n, dtype=np.int32) * height * width, out_h * out_w).reshape(points, 1),
                    np.int32, "image_start")
    # Separable and pairwise: each row of taps is summed first, then the rows; a tree of additions rounds
    # log2(taps) times per element instead of once per tap.
    row_sums = []
    for row, row_weight in rows:
        row_start = c.add(first, c.mul(c.convert(row, "i32"), np.int32(width)))
        terms = []
        for col, col_weight in cols:
            picked = c.gather(pixels, c.reshape(c.add(row_start, c.convert(col, "i32")), [points]), 0)
            terms.append(picked if col_weight is None else c.mul(picked, col_weight))
        row_sum = _tree_sum(c, terms)
        row_sums.append(row_sum if row_weight is None else c.mul(row_sum, row_weight))
    total = _tree_sum(c, row_sums)
    return c.transpose(c.reshape(total, [n, out_h, out_w, channels]), [0, 3, 1, 2])


# Where ROIAlign-9's box starts, in feature pixels, relative to v3's x * spatial_scale (OpenVINO's spec).
ROI_SHIFT = {"asymmetric": lambda scale: 0.0,
             "half_pixel_for_nn": lambda scale: -0.5,
             "half_pixel": lambda scale: 0.5 * scale - 0.5}


@formulation("roialign", text="ROIAlign-3, the boxes shifted for the half-pixel modes (a box under one feature "
                              "pixel is taken as one pixel, as v3 does)")
def roi_align_9(model, layer) -> Out:
    """ROIAlign-9 = ROIAlign-3 (which the plugin compiles; its coordinates are v9's `asymmetric`), the boxes
    shifted first for `half_pixel_for_nn` (what ONNX's half_pixel becomes; x*s - 0.5) and `half_pixel`
    ((x + 0.5)*s - 0.5). Measured equal to v9 on OpenVINO CPU in avg and max mode, every aligned_mode, for
    boxes of one feature pixel or more; v3 makes a smaller box one pixel wide and high, which the half-pixel
    modes do not, so a constant box under one pixel is refused. ONNX's RoiAlign max (onnx.reference, the
    ONNX test data) takes the largest weighted corner term, OpenVINO's ROIAlign (v3 and v9 alike) another
    maximum: 0.40 off test_roialign_mode_max's outputs. An ONNX model's max mode is refused."""
    if layer.version != "opset9":
        raise Refuse(f"{layer.version}: only ROIAlign-9 is formulated")
    x, rois, batch = (input_of(model, layer, i) for i in range(3))
    mode = layer.attrs.get("aligned_mode", "asymmetric")
    scale = float(layer.attrs.get("spatial_scale", "1"))
    if mode not in ROI_SHIFT:
        raise Refuse(f"aligned_mode {mode!r}")
    if layer.attrs.get("mode", "avg") == "max" and getattr(model, "source_format", None) == "onnx":
        raise Refuse("ONNX's RoiAlign max mode takes the largest weighted corner term of each sample; OpenVINO's "
                     "ROIAlign (what the conversion made, and v3) another maximum: it would compute something "
                     "else (0.40 off ONNX's test_roialign_mode_max)")
    boxes = constant_input(model, layer, 1)
    if mode != "asymmetric" and boxes is not None:
        sides = (np.asarray(boxes, np.float64)[:, 2:] - np.asarray(boxes, np.float64)[:, :2]) * scale
        if (sides < 1).any():
            raise Refuse(f"a box under one feature pixel: ROIAlign-3 makes it one pixel, {mode} does not")
    c = Composer(model, layer, x)
    shift = ROI_SHIFT[mode](scale) / scale
    if shift:
        rois = c.add(rois, shift)
    attrs = {k: layer.attrs[k] for k in ("pooled_h", "pooled_w", "sampling_ratio", "spatial_scale", "mode")
             if k in layer.attrs}
    return c.op("ROIAlign", [x, rois, batch], attrs, version="opset3",
                outputs=(layer.outputs[0].precision, layer.outputs[0].dims))


INTERPOLATE_MATRIX = 1 << 20     # entries of one axis's interpolation matrix


def _axis_matrix(layer, rank: int, axis: int, length: int, scale: float | None, size: int) -> np.ndarray:
    """[length, out] weights of the layer's interpolation along one axis, measured by running the op itself
    (OpenVINO CPU, f32) on `length` unit vectors with only that axis resized."""
    import openvino as ov

    attrs = layer.attrs
    other = 0 if axis != 0 else 1
    shape = [1] * rank
    shape[axis] = shape[other] = length
    eye = np.zeros(shape, np.float32)
    index = [0] * rank
    for i in range(length):
        index[axis] = index[other] = i
        eye[tuple(index)] = 1
    pads = lambda name: [int(v) for v in attrs.get(name, "").split(",") if v.strip()]  # noqa: E731
    begin, end = pads("pads_begin"), pads("pads_end")
    only = lambda values: [values[axis] if len(values) > axis and i == axis else 0 for i in range(rank)]  # noqa: E731
    x = ov.opset1.parameter(shape, np.float32)
    by_scales = attrs.get("shape_calculation_mode", "sizes") == "scales"
    node = ov.opset11.interpolate(
        x, np.array([scale if by_scales else size], np.float32 if by_scales else np.int64),
        attrs.get("mode", "nearest"), "scales" if by_scales else "sizes", only(begin), only(end),
        attrs.get("coordinate_transformation_mode", "half_pixel"), attrs.get("nearest_mode", "round_prefer_floor"),
        attrs.get("antialias", "false").lower() == "true", float(attrs.get("cube_coeff", "-0.75")),
        np.array([axis], np.int64))
    compiled = ov.Core().compile_model(ov.Model([node], [x], "probe"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    out = np.array(compiled(eye)[0])
    rows = np.moveaxis(out, (other, axis), (0, 1)).reshape(length, -1)
    if rows.shape[1] != size:
        raise Refuse(f"axis {axis}: the op alone gives {rows.shape[1]} samples, the layer {size}")
    return rows


def _interpolate_variant(layer) -> str:
    return layer.attrs.get("mode", "nearest")


@formulation("interpolate", text="per resized axis a MatMul with the axis's constant weights (the op's own, on unit "
             "vectors)", variant=_interpolate_variant)
def interpolate(model, layer) -> Out:
    """Interpolate (a mode or attribute the plugin refuses: cubic, antialias, pillow...) on static shapes =
    per resized axis one MatMul with that axis's constant weights, taken from the op itself on unit vectors
    (every mode of Interpolate weighs each axis separately)."""
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS or any(d <= 0 for d in x.dims) or len(x.dims) < 2:
        raise Refuse("a float input of static rank >= 2 is needed")
    if layer.attrs.get("antialias", "false").lower() in ("true", "1") and \
            any(0 < o < i for i, o in zip(x.dims, layer.outputs[0].dims)):
        # The weights come from OpenVINO CPU, which downscales unfiltered too (measured): they would be wrong.
        raise Refuse("antialias=true on a downscale: OpenVINO CPU, which gives the weights, ignores the filter; "
                     "for an ONNX model kernelkit rewrites the Resize before conversion: patch the .onnx")
    from kernelkit.ir.graph import constant_input

    rank = len(x.dims)
    out_dims = list(layer.outputs[0].dims)
    v11 = layer.version == "opset11"
    axes_index = 2 if v11 else 3
    axes_value = constant_input(model, layer, axes_index) if len(layer.inputs) > axes_index else None
    axes = [int(a) % rank for a in np.atleast_1d(axes_value)] if axes_value is not None else list(range(rank))
    by_scales = layer.attrs.get("shape_calculation_mode", "sizes") == "scales"
    scales = constant_input(model, layer, 1 if v11 else 2) if by_scales else None
    if by_scales and scales is None:
        raise Refuse("scales must be constant")
    scales = np.atleast_1d(scales).astype(np.float64) if scales is not None else None
    c = Composer(model, layer, x)
    result = x
    for position, axis in enumerate(axes):
        n, m = x.dims[axis], out_dims[axis]
        if n * m > INTERPOLATE_MATRIX:
            raise Refuse(f"axis {axis}: a {n}x{m} weight matrix")
        scale = float(scales[position]) if scales is not None else None
        if m == n and scale in (None, 1.0) and layer.attrs.get("pads_begin", "0").replace(",", "").strip("0 ") == "":
            continue
        matrix = _axis_matrix(layer, rank, axis, n, scale, m)
        last = len(result.dims) - 1
        moved = c.transpose(result, [i for i in range(last + 1) if i != axis] + [axis]) if axis != last else result
        product = c.matmul_exact(moved, matrix)
        if axis != last:
            order = list(range(last)) + [last]
            back = order[:axis] + [last] + order[axis:last]
            product = c.transpose(product, back)
        result = product
    if result is x:
        raise Refuse("nothing to resize")
    return result
