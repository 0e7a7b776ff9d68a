"""Each rewrite is checked on OpenVINO CPU (f32): the original op against its composition."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.formulations import exact
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target


def _save(tmp_path, outputs, params, name="m"):
    path = tmp_path / f"{name}.xml"
    ov.save_model(ov.Model(outputs, params, name), str(path), compress_to_fp16=False)
    return path


def _run(model, inputs):
    return run_openvino(model.to_xml_bytes(), model.bin_data, inputs)


def _rewrite_and_compare(tmp_path, outputs, params, inputs, *, gone: str, rtol=1e-6, atol=1e-6):
    path = _save(tmp_path, outputs, params)
    model = load_model(path)
    expected = _run(model, inputs)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals, ctx.refusals
    assert [c.layer for c in ctx.changes], "nothing was rewritten"
    assert not [l for l in model.layers if l.type.lower() == gone.lower()]
    patched = load_model(model.save(tmp_path / "patched.xml")[0])  # what was written reads back
    actual = _run(patched, inputs)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
    return patched, ctx


RNG = np.random.default_rng(0)
X = RNG.uniform(-4, 4, size=(2, 3, 5, 6)).astype(np.float32)
X[0, 0, 0, :4] = [0.0, -0.0, 1e-30, -1e-30]


def _param(shape=X.shape, name="x"):
    return ops.parameter(list(shape), np.float32, name=name)


def test_hard_sigmoid(tmp_path):
    p = _param()
    node = ops.hard_sigmoid(p, np.float32(0.3), np.float32(0.45))
    node.set_friendly_name("gate")
    patched, ctx = _rewrite_and_compare(tmp_path, [node], [p], [X], gone="HardSigmoid")
    # The composition's last layer keeps the legacy output name of the op it replaced.
    assert patched.find("gate").type == "Clamp"
    assert ctx.changes[0].before == "HardSigmoid-1"


def test_softsign(tmp_path):
    p = _param()
    _rewrite_and_compare(tmp_path, [ops.softsign(p)], [p], [X], gone="SoftSign")


def test_selu(tmp_path):
    p = _param()
    _rewrite_and_compare(tmp_path, [ops.selu(p, np.float32([1.6732632]), np.float32([1.0507010]))], [p], [X],
                         gone="Selu")


@pytest.mark.parametrize("axis", [1, -1])
def test_log_softmax(tmp_path, axis):
    p = _param()
    _rewrite_and_compare(tmp_path, [ops.log_softmax(p, axis)], [p], [X], gone="LogSoftmax")


@pytest.mark.parametrize("keep", [True, False])
def test_reduce_l1_l2(tmp_path, keep):
    p = _param()
    axes = np.array([1, 3], dtype=np.int64)
    _rewrite_and_compare(tmp_path, [ops.reduce_l1(p, axes, keep), ops.reduce_l2(p, axes, keep)], [p], [X],
                         gone="ReduceL1")


def test_mod_keeps_dividend_sign(tmp_path):
    a, b = _param(name="a"), _param(name="b")
    divisor = RNG.uniform(0.5, 3, size=X.shape).astype(np.float32) * RNG.choice([-1, 1], size=X.shape)
    _rewrite_and_compare(tmp_path, [ops.mod(a, b)], [a, b], [X * 3, divisor.astype(np.float32)], gone="Mod",
                         atol=1e-5)


@pytest.mark.parametrize("axis,exclusive,reverse", [(3, False, False), (2, True, False), (1, False, True),
                                                    (-1, True, True)])
def test_cumsum(tmp_path, axis, exclusive, reverse):
    p = _param()
    node = ops.cumsum(p, np.int64(axis), exclusive, reverse)
    _rewrite_and_compare(tmp_path, [node], [p], [X], gone="CumSum", rtol=1e-5, atol=1e-5)


def test_cumsum_refuses_long_axis(tmp_path):
    p = _param((1, 1, 1, exact.CUMSUM_MAX_LENGTH + 1))
    model = load_model(_save(tmp_path, [ops.cumsum(p, np.int64(3))], [p]))
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.changes
    assert "axis length" in ctx.refusals[0].reason
    assert [l.type for l in model.layers].count("CumSum") == 1


def test_sign_and_abs(tmp_path):
    p = _param()
    _rewrite_and_compare(tmp_path, [ops.sign(p), ops.abs(p)], [p], [X], gone="Sign")


@pytest.mark.parametrize("mode", ["blocks_first", "depth_first"])
def test_depth_to_space_and_back(tmp_path, mode):
    p = _param((1, 8, 3, 4))
    data = RNG.standard_normal((1, 8, 3, 4)).astype(np.float32)
    d2s = ops.depth_to_space(p, mode, 2)
    s2d = ops.space_to_depth(d2s, mode, 2)
    _rewrite_and_compare(tmp_path, [d2s, s2d], [p], [data], gone="DepthToSpace", rtol=0, atol=0)


def test_rewrite_before_result_keeps_tensor_names(tmp_path):
    p = _param()
    node = ops.softsign(p)
    node.set_friendly_name("soft")
    node.output(0).get_tensor().set_names({"soft_out"})
    patched, _ = _rewrite_and_compare(tmp_path, [node], [p], [X], gone="SoftSign")
    assert "soft_out" in patched.find("soft").outputs[0].names


def test_integer_input_is_refused(tmp_path):
    p = ops.parameter([4], np.int32, name="n")
    model = load_model(_save(tmp_path, [ops.sign(p)], [p]))
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.changes and "floating point" in ctx.refusals[0].reason


@pytest.mark.parametrize("axis", [1, -1])
def test_reverse_from_onnx_argmax_last_index(tmp_path, axis):
    # OpenVINO has no Python builder for Reverse-1; ONNX ArgMax(select_last_index=1) converts to one.
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("ArgMax", ["x"], ["y"], axis=axis, select_last_index=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    path = tmp_path / "argmax.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    model = load_model(path)
    assert "Reverse" in {l.type for l in model.layers}
    data = np.round(RNG.uniform(0, 3, size=(2, 3, 4))).astype(np.float32)    # ties: the last one must win
    expected = _run(model, [data])
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert "Reverse" not in {l.type for l in model.layers} and not ctx.refusals
    np.testing.assert_array_equal(_run(model, [data])[0], expected[0])


def test_convert_like(tmp_path):
    p = _param()
    like = ops.parameter([2], np.int32, name="like")
    node = ops.convert_like(ops.multiply(p, np.float32(3)), like)
    patched, ctx = _rewrite_and_compare(tmp_path, [node], [p, like], [X, np.zeros(2, np.int32)],
                                        gone="ConvertLike", rtol=0, atol=0)
    assert ctx.changes[0].after == "Convert to the element type of input 1"


def test_isnan_isinf(tmp_path):
    p = _param()
    data = X.copy()
    data[0, 0, 1, :4] = [np.nan, np.inf, -np.inf, -np.nan]
    outputs = [ov.opset10.is_nan(p), ov.opset10.is_inf(p),
               ov.opset10.is_inf(p, {"detect_negative": False}), ov.opset10.is_inf(p, {"detect_positive": False})]
    _rewrite_and_compare(tmp_path, outputs, [p], [data], gone="IsNaN", rtol=0, atol=0)


@pytest.mark.parametrize("mask_kind,causal", [(None, False), (None, True), ("float", False), ("bool", False)])
def test_scaled_dot_product_attention(tmp_path, mask_kind, causal):
    q = ops.parameter([2, 3, 4, 8], np.float32, name="q")
    k = ops.parameter([2, 3, 6, 8], np.float32, name="k")
    v = ops.parameter([2, 3, 6, 5], np.float32, name="v")
    data = [RNG.standard_normal(s).astype(np.float32) for s in ([2, 3, 4, 8], [2, 3, 6, 8], [2, 3, 6, 5])]
    params = [q, k, v]
    args = [q, k, v]
    if mask_kind:
        m = ops.parameter([4, 6], np.float32 if mask_kind == "float" else np.bool_, name="m")
        params.append(m)
        args.append(m)
        data.append(RNG.standard_normal((4, 6)).astype(np.float32) if mask_kind == "float"
                    else np.tile([True, False, True, True, False, True], (4, 1)))
        args.append(np.float32(0.3))
    node = ops.scaled_dot_product_attention(*args, causal=causal)
    _rewrite_and_compare(tmp_path, [node], params, data, gone="ScaledDotProductAttention", rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape,begin,end,mode", [([5], [2], [1], "constant"), ([3, 4], [1, 0], [2, 3], "reflect"),
                                                  ([3, 4], [0, 2], [1, 1], "edge")])
def test_pad_low_rank(tmp_path, shape, begin, end, mode):
    p = _param(shape)
    data = RNG.standard_normal(shape).astype(np.float32)
    node = ov.opset12.pad(p, np.array(begin, np.int64), np.array(end, np.int64), mode,
                          np.float32(1.5) if mode == "constant" else None)
    model = load_model(_save(tmp_path, [node], [p]))
    expected = _run(model, [data])
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert [len(l.inputs[0].dims) for l in model.layers if l.type == "Pad"] == [3]
    np.testing.assert_array_equal(_run(model, [data])[0], expected[0])


@pytest.mark.parametrize("levels,per_channel", [(256, False), (5, True), (2, False)])
def test_fake_quantize(tmp_path, levels, per_channel):
    p = _param()
    shape = [1, 3, 1, 1] if per_channel else []
    il = np.full(shape, -2.0, np.float32) if not per_channel else np.array([-2, -1, 0], np.float32).reshape(shape)
    ih = np.full(shape, 2.5, np.float32) if not per_channel else np.array([2, 1.5, 3], np.float32).reshape(shape)
    node = ov.opset1.fake_quantize(p, il, ih, np.float32(-1.0), np.float32(1.0), levels)
    _rewrite_and_compare(tmp_path, [node], [p], [X], gone="FakeQuantize", rtol=1e-6, atol=1e-6)


def test_fp16_compressed_constants_are_seen_through_their_convert(tmp_path):
    # save_model's default compresses constants to f16 + Convert(f32): the rewrites must still see them.
    p = _param()
    node = ops.hard_sigmoid(p, np.float32(0.25), np.float32(0.5))
    path = tmp_path / "compressed.xml"
    ov.save_model(ov.Model([node], [p], "c"), str(path))           # compress_to_fp16=True
    model = load_model(path)
    assert "Convert" in {l.type for l in model.layers}
    expected = _run(model, [X])
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and "HardSigmoid" not in {l.type for l in model.layers}
    np.testing.assert_allclose(_run(model, [X])[0], expected[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape,begin,end", [([3, 4], [0, 1], [2, 0]), ([1, 2, 3, 4], [0, 0, 1, 0], [0, 1, 0, 2])])
def test_pad_with_minus_infinity(tmp_path, shape, begin, end):
    # The 2021.4 plugin refuses a non-finite pad value: Pad with 0 and Select the padded positions.
    p = _param(shape)
    node = ov.opset12.pad(p, np.array(begin, np.int64), np.array(end, np.int64), "constant", np.float32(-np.inf))
    data = RNG.standard_normal(shape).astype(np.float32)
    model = load_model(_save(tmp_path, [node], [p]))
    expected = _run(model, [data])
    ctx = PatchContext(model, get_target("2021.4"))
    assert rewrite.rewrite_layer(ctx, next(l for l in model.layers if l.type == "Pad"))
    assert all(l.inputs[0].dims and len(l.inputs[0].dims) >= 3 for l in model.layers if l.type == "Pad")
    np.testing.assert_array_equal(_run(model, [data])[0], expected[0])
