"""Exact compositions: an op MYRIAD cannot compile replaced by ops it can, with the same values.

Each builds only opset1 ops that the MYRIAD parser table lists (Clamp, Elu, Exp, Log, Sqrt, Maximum, Multiply,
Add, Subtract, Divide, FloorMod, Select, Less, Reduce{Sum,Max}, MatMul, Transpose, Reshape) and returns the
value that replaces the op's output. `|x|` is written `Maximum(x, -x)` because 2021.4's parser has no Abs.
Each is proved against OpenVINO CPU in tests/test_patch_rewrite.py. Ops the 2026 ONNX frontend already
decomposes (Celu, ThresholdedRelu, Shrink, ReduceLogSumExp, ReduceSumSquare) never reach an IR as single
layers, so they need no composition here.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import (FLOAT_PRECISIONS, Out, add_const, constant_input, constant_source, input_of, op,
                                scalar_like)

CUMSUM_MAX_LENGTH = 256     # a triangular n x n constant beyond this costs more memory than a kernel would
FP16_STEPS = 2049           # quantisation levels whose step count (levels - 1) fp16 holds exactly


def _float_input(model, layer, index=0) -> Out:
    value = input_of(model, layer, index)
    if value.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input {index} is {value.precision}; the rewrite is exact for floating point only")
    return value


def _scalar(model, layer, index: int, what: str) -> float:
    value = constant_input(model, layer, index)
    if value is None or np.size(value) != 1:
        raise Refuse(f"{what} (input {index}) must be a constant scalar")
    return float(np.asarray(value).reshape(()))


def _abs(model, x: Out, name: str) -> Out:
    negated = op(model, "Multiply", f"{name}/neg", [x, scalar_like(model, x, -1, f"{name}/minus_one")],
                 {"auto_broadcast": "numpy"})
    return op(model, "Maximum", f"{name}/abs", [x, negated], {"auto_broadcast": "numpy"})


def _float_text(value: float) -> str:
    return repr(float(value))


@formulation("hardsigmoid", text="Clamp(alpha*x + beta, 0, 1)")
def hard_sigmoid(model, layer) -> Out:
    """HardSigmoid(x, alpha, beta) = Clamp(alpha*x + beta, 0, 1)."""
    x = _float_input(model, layer)
    alpha, beta = input_of(model, layer, 1), input_of(model, layer, 2)
    _scalar(model, layer, 1, "alpha")
    _scalar(model, layer, 2, "beta")
    scaled = op(model, "Multiply", f"{layer.name}/scaled", [x, alpha], {"auto_broadcast": "numpy"})
    shifted = op(model, "Add", f"{layer.name}/shifted", [scaled, beta], {"auto_broadcast": "numpy"})
    return op(model, "Clamp", f"{layer.name}/clamp", [shifted], {"min": "0", "max": "1"})


@formulation("softsign", text="x / (1 + |x|)")
def soft_sign(model, layer) -> Out:
    """SoftSign(x) = x / (1 + |x|)."""
    x = _float_input(model, layer)
    magnitude = _abs(model, x, layer.name)
    denominator = op(model, "Add", f"{layer.name}/one_plus", [magnitude, scalar_like(model, x, 1, f"{layer.name}/one")],
                     {"auto_broadcast": "numpy"})
    return op(model, "Divide", f"{layer.name}/div", [x, denominator], {"auto_broadcast": "numpy", "m_pythondiv": "true"})


@formulation("selu", text="lambda * Elu(x, alpha)")
def selu(model, layer) -> Out:
    """Selu(x, alpha, lambda) = lambda * Elu(x, alpha)."""
    x = _float_input(model, layer)
    alpha = _scalar(model, layer, 1, "alpha")
    elu = op(model, "Elu", f"{layer.name}/elu", [x], {"alpha": _float_text(alpha)})
    return op(model, "Multiply", f"{layer.name}/scaled", [elu, input_of(model, layer, 2)], {"auto_broadcast": "numpy"})


def _axes_const(model, name: str, axes) -> Out:
    return add_const(model, np.asarray(axes, dtype=np.int64).reshape(-1), name)


@formulation("logsoftmax", text="(x - max) - Log(ReduceSum(Exp(x - max)))")
def log_softmax(model, layer) -> Out:
    """LogSoftmax(x) = (x - max) - log(sum(exp(x - max))) over `axis`."""
    x = _float_input(model, layer)
    axis = int(layer.attrs.get("axis", "1")) % max(len(x.dims), 1)
    axes = _axes_const(model, f"{layer.name}/axis", [axis])
    peak = op(model, "ReduceMax", f"{layer.name}/max", [x, axes], {"keep_dims": "true"})
    centred = op(model, "Subtract", f"{layer.name}/centred", [x, peak], {"auto_broadcast": "numpy"})
    exps = op(model, "Exp", f"{layer.name}/exp", [centred])
    total = op(model, "ReduceSum", f"{layer.name}/sum", [exps, axes], {"keep_dims": "true"})
    log_total = op(model, "Log", f"{layer.name}/log", [total])
    return op(model, "Subtract", f"{layer.name}/result", [centred, log_total], {"auto_broadcast": "numpy"})


def _reduce_axes(model, layer) -> Out:
    axes = constant_input(model, layer, 1)
    if axes is None:
        raise Refuse("axes (input 1) must be constant: MYRIAD reductions take constant axes only")
    return input_of(model, layer, 1)


@formulation("reducel1", text="ReduceSum(|x|)")
def reduce_l1(model, layer) -> Out:
    """ReduceL1(x) = ReduceSum(|x|)."""
    x = _float_input(model, layer)
    axes = _reduce_axes(model, layer)
    magnitude = _abs(model, x, layer.name)
    return op(model, "ReduceSum", f"{layer.name}/sum", [magnitude, axes],
              {"keep_dims": layer.attrs.get("keep_dims", "false")})


@formulation("reducel2", text="Sqrt(ReduceSum(x*x))")
def reduce_l2(model, layer) -> Out:
    """ReduceL2(x) = Sqrt(ReduceSum(x * x))."""
    x = _float_input(model, layer)
    axes = _reduce_axes(model, layer)
    square = op(model, "Multiply", f"{layer.name}/square", [x, x], {"auto_broadcast": "numpy"})
    total = op(model, "ReduceSum", f"{layer.name}/sum", [square, axes],
               {"keep_dims": layer.attrs.get("keep_dims", "false")})
    return op(model, "Sqrt", f"{layer.name}/sqrt", [total])


def _through_fp16(model, layer, index: int) -> None:
    """Feed integer input `index` of the layer through a Convert to f16 (MYRIAD's arithmetic type; integers
    are exact there up to 2048 in magnitude). Only once the rewrite can no longer refuse."""
    value = input_of(model, layer, index)
    convert = op(model, "Convert", f"{layer.name}/input{index}_f16", [value], {"destination_type": "f16"})
    model.disconnect(model.input_edge(layer, layer.inputs[index].id))
    model.connect(convert.layer, convert.port.id, layer, layer.inputs[index].id)
    layer.inputs[index].precision = "FP16"


def _integer(model, layer, indices) -> str | None:
    """The layer's output element type when its inputs `indices` are all integers (then fed as f16), None
    when they are all floats; mixed is a refusal."""
    kinds = {input_of(model, layer, i).precision in FLOAT_PRECISIONS for i in indices}
    if kinds == {True}:
        return None
    if kinds != {False}:
        raise Refuse("mixed integer and floating-point inputs")
    return layer.outputs[0].element_type


def _back_to(model, layer, value: Out, element: str | None) -> Out:
    return value if element is None else op(model, "Convert", f"{layer.name}/as_{element}", [value],
                                            {"destination_type": element})


@formulation("mod", text="Select(a < 0, -FloorMod(|a|, |b|), FloorMod(|a|, |b|)) (integers through fp16, exact to "
             "2048)")
def mod(model, layer) -> Out:
    """Mod (truncated, sign of the dividend) = sign(a) * FloorMod(|a|, |b|), the sign taken with Select;
    integers through fp16 (exact up to 2048)."""
    element = _integer(model, layer, (0, 1))
    if element is not None:
        _through_fp16(model, layer, 0)
        _through_fp16(model, layer, 1)
        return _back_to(model, layer, _float_mod(model, layer), element)
    return _float_mod(model, layer)


def _float_mod(model, layer) -> Out:
    a = _float_input(model, layer, 0)
    b = _float_input(model, layer, 1)
    remainder = op(model, "FloorMod", f"{layer.name}/floormod", [_abs(model, a, f"{layer.name}/a"),
                                                                 _abs(model, b, f"{layer.name}/b")],
                   {"auto_broadcast": "numpy"})
    negative = op(model, "Less", f"{layer.name}/negative", [a, scalar_like(model, a, 0, f"{layer.name}/zero")],
                  {"auto_broadcast": "numpy"})
    flipped = op(model, "Multiply", f"{layer.name}/flipped",
                 [remainder, scalar_like(model, a, -1, f"{layer.name}/minus_one")], {"auto_broadcast": "numpy"})
    return op(model, "Select", f"{layer.name}/result", [negative, flipped, remainder], {"auto_broadcast": "numpy"})


def cumsum_matrix(length: int, *, exclusive: bool, reverse: bool) -> np.ndarray:
    """T with y = x @ T summing along the last axis: T[i, j] = 1 when x[i] contributes to y[j]."""
    i, j = np.indices((length, length))
    if reverse:
        mask = i > j if exclusive else i >= j
    else:
        mask = i < j if exclusive else i <= j
    return mask.astype(np.float32)


@formulation("cumsum", text="MatMul with a constant triangular matrix (integers through fp16, exact to 2048)")
def cumsum(model, layer) -> Out:
    """CumSum along a short axis = MatMul with a constant triangular matrix (Transposes move the axis last);
    integers through fp16 (exact while the running sums stay within 2048)."""
    x = input_of(model, layer, 0)
    rank = len(x.dims)
    axis_value = constant_input(model, layer, 1) if len(layer.inputs) > 1 else np.array(0)
    if axis_value is None:
        raise Refuse("axis (input 1) must be constant")
    if rank == 0:
        raise Refuse("scalar input")
    axis = int(np.asarray(axis_value).reshape(())) % rank
    length = x.dims[axis]
    if length > CUMSUM_MAX_LENGTH:
        raise Refuse(f"axis length {length} > {CUMSUM_MAX_LENGTH}: the triangular constant would be too large; "
                     "bind a CumSum kernel instead")
    element = _integer(model, layer, (0,))
    if element is not None:
        _through_fp16(model, layer, 0)
        x = input_of(model, layer, 0)
    return _back_to(model, layer, _cumsum_float(model, layer, x, rank, axis, length), element)


def _cumsum_float(model, layer, x: Out, rank: int, axis: int, length: int) -> Out:
    matrix = cumsum_matrix(length, exclusive=layer.attrs.get("exclusive", "false").lower() == "true",
                           reverse=layer.attrs.get("reverse", "false").lower() == "true")
    dtype = np.float16 if x.precision == "FP16" else np.float32
    weights = add_const(model, matrix.astype(dtype), f"{layer.name}/triangle")
    if axis == rank - 1:
        return op(model, "MatMul", f"{layer.name}/matmul", [x, weights],
                  {"transpose_a": "false", "transpose_b": "false"})
    order = list(range(rank))
    order[axis], order[-1] = order[-1], order[axis]          # a swap is its own inverse
    perm = add_const(model, np.array(order, dtype=np.int64), f"{layer.name}/order")
    moved = op(model, "Transpose", f"{layer.name}/to_last", [x, perm])
    summed = op(model, "MatMul", f"{layer.name}/matmul", [moved, weights],
                {"transpose_a": "false", "transpose_b": "false"})
    return op(model, "Transpose", f"{layer.name}/back", [summed, perm])


@formulation("sign", text="Select(x > 0, 1, Select(x < 0, -1, x))")
def sign(model, layer) -> Out:
    """Sign(x) = Select(x > 0, 1, Select(x < 0, -1, x)); keeping x for the zero case keeps -0 and NaN."""
    x = _float_input(model, layer)
    positive = op(model, "Greater", f"{layer.name}/positive", [x, scalar_like(model, x, 0, f"{layer.name}/zero")],
                  {"auto_broadcast": "numpy"})
    negative = op(model, "Less", f"{layer.name}/negative", [x, scalar_like(model, x, 0, f"{layer.name}/zero_")],
                  {"auto_broadcast": "numpy"})
    low = op(model, "Select", f"{layer.name}/low", [negative, scalar_like(model, x, -1, f"{layer.name}/minus_one"), x],
             {"auto_broadcast": "numpy"})
    return op(model, "Select", f"{layer.name}/result", [positive, scalar_like(model, x, 1, f"{layer.name}/one"), low],
              {"auto_broadcast": "numpy"})


@formulation("abs", text="Maximum(x, -x)")
def absolute(model, layer) -> Out:
    """Abs(x) = Maximum(x, -x) (2021.4's parser has no Abs)."""
    return _abs(model, _float_input(model, layer), layer.name)


@formulation("depthtospace", "spacetodepth", text="Reshape, Transpose, Reshape")
def depth_space(model, layer) -> Out:
    """DepthToSpace / SpaceToDepth = Reshape, Transpose, Reshape (4-D only)."""
    x = input_of(model, layer, 0)
    if len(x.dims) != 4:
        raise Refuse("only 4-D inputs are rewritten")
    n, c, h, w = x.dims
    b = int(layer.attrs.get("block_size", "1"))
    mode = layer.attrs.get("mode", "blocks_first")
    if layer.type.lower() == "depthtospace":
        if mode == "blocks_first":
            split, order = [n, b, b, c // (b * b), h, w], [0, 3, 4, 1, 5, 2]
        else:
            split, order = [n, c // (b * b), b, b, h, w], [0, 1, 4, 2, 5, 3]
        final = [n, c // (b * b), h * b, w * b]
    else:
        split = [n, c, h // b, b, w // b, b]
        order = [0, 3, 5, 1, 2, 4] if mode == "blocks_first" else [0, 1, 3, 5, 2, 4]
        final = [n, c * b * b, h // b, w // b]
    shaped = op(model, "Reshape", f"{layer.name}/split",
                [x, add_const(model, np.array(split, np.int64), f"{layer.name}/split_shape")], {"special_zero": "false"})
    moved = op(model, "Transpose", f"{layer.name}/move",
               [shaped, add_const(model, np.array(order, np.int64), f"{layer.name}/order")])
    return op(model, "Reshape", f"{layer.name}/merge",
              [moved, add_const(model, np.array(final, np.int64), f"{layer.name}/final_shape")], {"special_zero": "false"})


@formulation("reverse", text="Gather with indices n-1..0 on each axis")
def reverse(model, layer) -> Out:
    """Reverse along constant axes = one Gather per axis with the indices n-1..0."""
    x = input_of(model, layer, 0)
    rank = len(x.dims)
    value = constant_input(model, layer, 1)
    if value is None:
        raise Refuse("axes (input 1) must be constant")
    value = np.asarray(value).reshape(-1)
    if layer.attrs.get("mode", "index") == "mask":
        axes = [i for i, flag in enumerate(value) if flag]
    else:
        axes = sorted({int(a) % rank for a in value}) if rank else []
    if not axes:
        raise Refuse("no axis to reverse")
    result = x
    for axis in axes:
        order = add_const(model, np.arange(x.dims[axis] - 1, -1, -1, dtype=np.int32), f"{layer.name}/order{axis}")
        where = add_const(model, np.array(axis, dtype=np.int32), f"{layer.name}/axis{axis}")
        result = op(model, "Gather", f"{layer.name}/reverse{axis}", [result, order, where])
    return result


@formulation("convertlike", text="Convert to the element type of input 1")
def convert_like(model, layer) -> Out:
    """ConvertLike(x, like) = Convert(x, destination_type = like's element type)."""
    x = input_of(model, layer, 0)
    like = input_of(model, layer, 1).port.element_type
    if like is None:
        raise Refuse("the element type of input 1 is unknown")
    return op(model, "Convert", f"{layer.name}/convert", [x], {"destination_type": like})


@formulation("isnan", text="LogicalNot(Equal(x, x))")
def is_nan(model, layer) -> Out:
    """IsNaN(x) = LogicalNot(Equal(x, x)): NaN is the only value unequal to itself. Not NotEqual: the real
    2021.4 plugin refuses a NotEqual stage with a boolean (S32) output."""
    x = _float_input(model, layer)
    same = op(model, "Equal", f"{layer.name}/self_equal", [x, x], {"auto_broadcast": "numpy"})
    return op(model, "LogicalNot", f"{layer.name}/not", [same])


@formulation("isinf", text="Equal(|x|, inf) (or the signed infinity asked for)")
def is_inf(model, layer) -> Out:
    """IsInf(x) = Equal(x, +inf) / Equal(x, -inf) / Equal(|x|, inf) per detect_positive/detect_negative."""
    x = _float_input(model, layer)
    positive = layer.attrs.get("detect_positive", "true").lower() == "true"
    negative = layer.attrs.get("detect_negative", "true").lower() == "true"
    if positive and negative:
        x, target = _abs(model, x, layer.name), np.inf
    else:
        target = np.inf if positive else (-np.inf if negative else np.nan)    # neither: never true
    return op(model, "Equal", f"{layer.name}/equal", [x, scalar_like(model, x, target, f"{layer.name}/inf")],
              {"auto_broadcast": "numpy"})


@formulation("scaleddotproductattention", text="SoftMax(Q @ K^T * scale + mask) @ V")
def scaled_dot_product_attention(model, layer) -> Out:
    """SDPA-13 = SoftMax(Q @ K^T * scale + bias, last axis) @ V; bias is the float mask, 0/-inf for a boolean
    mask, or the causal (lower triangular) one."""
    q, k, v = (_float_input(model, layer, i) for i in range(3))
    if len(layer.inputs) > 5:
        raise Refuse("the attention sink input is not rewritten")
    try:
        np.broadcast_shapes(tuple(q.dims[:-2]), tuple(k.dims[:-2]), tuple(v.dims[:-2]))
    except ValueError:
        raise Refuse(f"batch dims {q.dims[:-2]} / {k.dims[:-2]} do not broadcast (grouped heads)") from None
    causal = layer.attrs.get("causal", "false").lower() == "true"
    dtype = np.float16 if q.precision == "FP16" else np.float32
    if len(layer.inputs) > 4:
        scale = constant_input(model, layer, 4)
        if scale is None or np.size(scale) != 1:
            raise Refuse("scale (input 4) must be a constant scalar")
        scale = float(np.asarray(scale).reshape(()))
    else:
        scale = 1.0 / np.sqrt(q.dims[-1])
    mask = input_of(model, layer, 3) if len(layer.inputs) > 3 and not causal else None
    name = layer.name
    scores = op(model, "MatMul", f"{name}/qk", [q, k], {"transpose_a": "false", "transpose_b": "true"})
    scores = op(model, "Multiply", f"{name}/scaled", [scores, add_const(model, np.array(scale, dtype), f"{name}/scale")],
                {"auto_broadcast": "numpy"})
    if causal:
        length, source = q.dims[-2], k.dims[-2]
        bias = np.where(np.tril(np.ones((length, source), bool)), 0, -np.inf).astype(dtype)
        scores = op(model, "Add", f"{name}/causal", [scores, add_const(model, bias, f"{name}/causal_bias")],
                    {"auto_broadcast": "numpy"})
    elif mask is not None:
        if mask.precision == "BOOL":
            mask = op(model, "Select", f"{name}/mask_bias",
                      [mask, add_const(model, np.array(0, dtype), f"{name}/keep"),
                       add_const(model, np.array(-np.inf, dtype), f"{name}/drop")], {"auto_broadcast": "numpy"})
        scores = op(model, "Add", f"{name}/masked", [scores, mask], {"auto_broadcast": "numpy"})
    weights = op(model, "SoftMax", f"{name}/softmax", [scores], {"axis": str(len(scores.dims) - 1)})
    return op(model, "MatMul", f"{name}/attend", [weights, v], {"transpose_a": "false", "transpose_b": "false"})


def _non_finite_pad_value(model, layer) -> bool:
    """A constant-mode Pad whose value is an infinity or NaN: the 2021.4 plugin says "Unsupported pad value"."""
    if layer.attrs.get("pad_mode", "constant") != "constant" or len(layer.inputs) < 4:
        return False
    value = constant_input(model, layer, 3)
    return value is not None and not np.isfinite(np.asarray(value, np.float64)).all()


def _computed_pad_value(model, layer) -> bool:
    """A constant-mode Pad whose value is computed at run time (a network input): the 2021.4 plugin says
    "Pad y with not constant pad_value is not allowed"."""
    return (layer.attrs.get("pad_mode", "constant") == "constant" and len(layer.inputs) > 3
            and constant_input(model, layer, 3) is None)


def pad_with_constant_blocks(model, layer) -> Out:
    """Pad with a non-finite or computed value = Pad with 0, then Select(mask, value, padded) with a constant
    mask of the padded positions (size 1 on the axes without pads: no constant carries the batch, which the
    plugin would otherwise see change when it compiles at batch 1); a computed value is read from its input."""
    x = input_of(model, layer, 0)
    begin, end = constant_input(model, layer, 1), constant_input(model, layer, 2)
    if begin is None or end is None or any(d <= 0 for d in x.dims):
        raise Refuse("pads must be constant and the shape static")
    begin, end = (np.asarray(v, np.int64).reshape(-1) for v in (begin, end))
    if (begin < 0).any() or (end < 0).any():
        raise Refuse("negative pads (a crop) are not rewritten")
    given = constant_input(model, layer, 3)
    dtype = np.float16 if x.precision == "FP16" else np.float32
    name = layer.name
    if given is None:
        value = input_of(model, layer, 3)
        if value.precision != x.precision or value.dims not in ([], [1]):
            raise Refuse(f"the computed pad value must be a scalar of the input's type ({x.precision})")
    else:
        value = add_const(model, np.array(float(np.asarray(given).reshape(())), dtype), f"{name}/value")
    out_dims = [d + int(b) + int(e) for d, b, e in zip(x.dims, begin, end)]
    lift = max(0, 3 - len(x.dims))          # MYRIAD pads 3-D and 4-D tensors only
    source = x if not lift else op(model, "Reshape", f"{name}/to_3d", [x, add_const(
        model, np.array([1] * lift + x.dims, np.int64), f"{name}/shape_3d")], {"special_zero": "false"})
    zeros = np.zeros(lift, np.int64)
    padded = op(model, "Pad", f"{name}/pad_zero",
                [source, add_const(model, np.concatenate([zeros, begin]), f"{name}/pads_begin"),
                 add_const(model, np.concatenate([zeros, end]), f"{name}/pads_end"),
                 add_const(model, np.array(0, dtype), f"{name}/zero")],
                {"pad_mode": "constant"}, outputs=[(x.precision, [1] * lift + out_dims)])
    if lift:
        padded = op(model, "Reshape", f"{name}/back", [padded, add_const(
            model, np.array(out_dims, np.int64), f"{name}/shape")], {"special_zero": "false"},
            outputs=[(x.precision, out_dims)])
    mask_dims = [o if b or e else 1 for o, b, e in zip(out_dims, begin, end)]
    mask = np.zeros(mask_dims, bool)
    for axis, (b, e) in enumerate(zip(begin, end)):
        if b or e:
            index = [slice(None)] * len(mask_dims)
            index[axis] = np.r_[0:int(b), out_dims[axis] - int(e):out_dims[axis]].astype(int)
            mask[tuple(index)] = True
    return op(model, "Select", f"{name}/fill", [add_const(model, mask, f"{name}/padded"), value, padded],
              {"auto_broadcast": "numpy"})


@formulation("pad", text="Reshape to 3-D, Pad, Reshape back; a non-finite or computed value: Pad with 0, then "
             "Select by a constant mask of the padded positions",
             needed=lambda model, layer: _non_finite_pad_value(model, layer) or _computed_pad_value(model, layer))
def pad_low_rank(model, layer) -> Out:
    """Pad of a 1-D/2-D tensor (MYRIAD pads 3-D and 4-D only) = Reshape to 3-D, Pad-1, Reshape back; a
    non-finite or computed pad value = Pad with 0 and a Select of the padded positions."""
    if _non_finite_pad_value(model, layer) or _computed_pad_value(model, layer):
        return pad_with_constant_blocks(model, layer)
    x = input_of(model, layer, 0)
    rank = len(x.dims)
    if rank >= 3:
        raise Refuse(f"rank {rank}: only 1-D and 2-D inputs are lifted to 3-D")
    begin, end = constant_input(model, layer, 1), constant_input(model, layer, 2)
    if begin is None or end is None:
        raise Refuse("pads_begin and pads_end must be constant")
    begin, end = (np.asarray(v, np.int64).reshape(-1) for v in (begin, end))
    if (begin < 0).any() or (end < 0).any():
        raise Refuse("negative pads (a crop) are not rewritten")
    lift = 3 - rank
    name = layer.name
    lifted = op(model, "Reshape", f"{name}/to_3d",
                [x, add_const(model, np.array([1] * lift + x.dims, np.int64), f"{name}/shape_3d")],
                {"special_zero": "false"})
    inputs = [lifted, add_const(model, np.concatenate([np.zeros(lift, np.int64), begin]), f"{name}/pads_begin"),
              add_const(model, np.concatenate([np.zeros(lift, np.int64), end]), f"{name}/pads_end")]
    if len(layer.inputs) > 3:
        inputs.append(input_of(model, layer, 3))
    padded = op(model, "Pad", f"{name}/pad_3d", inputs, {"pad_mode": layer.attrs.get("pad_mode", "constant")})
    return op(model, "Reshape", f"{name}/back",
              [padded, add_const(model, np.array(layer.outputs[0].dims, np.int64), f"{name}/shape")],
              {"special_zero": "false"})


@formulation("fakequantize", text="Round((x - il) / (ih - il) * (L-1)) ... clipped with Greater/Select (ranges "
             "constant or computed)")
def fake_quantize(model, layer) -> Out:
    """FakeQuantize (spec formula): values at or below the input range give output_low, above it
    output_high, and in between round((x - il) / (ih - il) * (L-1)) / (L-1) * (oh - ol) + ol, rounding half
    to even. Only Greater is used as a comparison (the plugin's boolean-output rule). Constant ranges are
    folded; ranges computed at run time (blocked quantisation's scales) become layers."""
    x = _float_input(model, layer)
    levels = int(layer.attrs.get("levels", "256"))
    if levels < 2:
        raise Refuse(f"levels={levels}")
    if levels > FP16_STEPS:
        raise Refuse(f"levels={levels}: fp16 counts exactly to {FP16_STEPS} only (16-bit quantisation is wrong in "
                     "fp16)")
    dtype = np.float16 if x.precision == "FP16" else np.float32
    name = layer.name
    broadcast = {"auto_broadcast": "numpy"}
    const = lambda value, tag: add_const(model, np.asarray(value, dtype), f"{name}/{tag}")  # noqa: E731
    values = [constant_input(model, layer, i) for i in range(1, 5)]
    if all(v is not None for v in values):
        il, ih, ol, oh = (np.asarray(v, dtype) for v in values)
        low_edge, high_edge = const(np.minimum(il, ih), "low_edge"), const(np.maximum(il, ih), "high_edge")
        in_range, out_range = const(ih - il, "input_range"), const(oh - ol, "output_range")
        il, ol, oh = const(il, "input_low"), const(ol, "output_low"), const(oh, "output_high")
    else:
        il, ih, ol, oh = (input_of(model, layer, i) for i in range(1, 5))
        if any(v.precision not in FLOAT_PRECISIONS for v in (il, ih, ol, oh)):
            raise Refuse("the ranges must be floating point")
        low_edge = op(model, "Minimum", f"{name}/low_edge", [il, ih], broadcast)
        high_edge = op(model, "Maximum", f"{name}/high_edge", [il, ih], broadcast)
        in_range = op(model, "Subtract", f"{name}/input_range", [ih, il], broadcast)
        out_range = op(model, "Subtract", f"{name}/output_range", [oh, ol], broadcast)
    shifted = op(model, "Subtract", f"{name}/minus_low", [x, il], broadcast)
    unit = op(model, "Divide", f"{name}/over_range", [shifted, in_range], {**broadcast, "m_pythondiv": "true"})
    steps = op(model, "Multiply", f"{name}/steps", [unit, const(levels - 1, "levels")], broadcast)
    rounded = op(model, "Round", f"{name}/round", [steps], {"mode": "half_to_even"}, version="opset5")
    back = op(model, "Divide", f"{name}/over_levels", [rounded, const(levels - 1, "levels_")],
              {**broadcast, "m_pythondiv": "true"})
    scaled = op(model, "Multiply", f"{name}/out_range", [back, out_range], broadcast)
    inside = op(model, "Add", f"{name}/plus_low", [scaled, ol], broadcast)
    above = op(model, "Greater", f"{name}/above", [x, high_edge], broadcast)
    upper = op(model, "Select", f"{name}/clip_high", [above, oh, inside], broadcast)
    over_low = op(model, "Greater", f"{name}/over_low", [x, low_edge], broadcast)
    return op(model, "Select", f"{name}/clip_low", [over_low, upper, ol], broadcast)


def _integer_extremum_input(model, layer) -> bool:
    """ReduceMax/ReduceMin of integers or booleans: the 2021.4 plugin's stage takes FP16 only ("StubMaxPool
    types check error: input #0 has type S32, but one of [FP16] is expected")."""
    return bool(layer.inputs) and input_of(model, layer, 0).precision not in FLOAT_PRECISIONS


@formulation("reducemax", "reducemin", text="Convert to f16, the reduction, Convert back (integer input)",
             needed=_integer_extremum_input)
def reduce_extremum(model, layer) -> Out:
    """ReduceMax/ReduceMin of integers = Convert to f16, the same reduction, Convert back (exact for
    booleans and U8, for integers up to 2048 in magnitude)."""
    x = input_of(model, layer, 0)
    if x.precision in FLOAT_PRECISIONS:
        raise Refuse("floating-point input: the plugin reduces it natively")
    _reduce_axes(model, layer)
    element = layer.outputs[0].element_type
    half = op(model, "Convert", f"{layer.name}/as_f16", [x], {"destination_type": "f16"})
    reduced = op(model, layer.type, f"{layer.name}/reduce", [half, input_of(model, layer, 1)],
                 {"keep_dims": layer.attrs.get("keep_dims", "false")},
                 outputs=[("FP16", layer.outputs[0].dims)])
    return op(model, "Convert", f"{layer.name}/back", [reduced], {"destination_type": element})


@formulation("identity", text="Reshape to the same shape")
def identity(model, layer) -> Out:
    """Identity = a Reshape to its own shape (a copy every MYRIAD type passes through)."""
    x = input_of(model, layer, 0)
    return op(model, "Reshape", f"{layer.name}/copy",
              [x, add_const(model, np.array(x.dims, np.int64), f"{layer.name}/shape")], {"special_zero": "false"})



@formulation("prelu", text="Maximum(x, 0) + slope * Minimum(x, 0), for a slope computed at run time or one "
             "that varies along another axis than the plugin's channels")
def prelu_computed_slope(model, layer) -> Out:
    """PReLU whose slope is not a constant (the 2021.4 PReLU stage takes it as weights: "AssertionFailed:
    inputs.size() == 1"), or a constant the PReLU stage would read as one slope per channel although it
    varies along another axis (limits.toml) = max(x, 0) + slope * min(x, 0): one of the two terms is an
    exact 0."""
    from kernelkit.model.blockers import slope_off_channel

    x = _float_input(model, layer, 0)
    if constant_source(model, input_of(model, layer, 1)) is not None and slope_off_channel(model, layer) is None:
        raise Refuse("the slope is a constant shared or per channel: the plugin's PReLU takes it")
    slope = _float_input(model, layer, 1)
    rank = len(x.dims)
    c = Composer(model, layer, x)
    if len(slope.dims) == 1 and rank > 2 and slope.dims[0] == x.dims[1] != x.dims[-1]:
        slope = c.reshape(slope, [slope.dims[0]] + [1] * (rank - 2))     # PRelu-1: a 1-D slope is per channel
    return c.add(c.maximum(x, 0), c.mul(c.minimum(x, 0), slope))
