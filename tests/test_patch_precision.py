"""Precision patcher: integer comparisons get float inputs; Converts MYRIAD lacks go through a pair it has."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from kernelkit.ir.load import load_model
from kernelkit.model.passes import precision
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target


def _model(tmp_path, outputs, params):
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model(outputs, params, "m"), str(path), compress_to_fp16=False)
    return load_model(path)


def _patch_and_compare(tmp_path, model, inputs):
    expected = run_openvino(model.to_xml_bytes(), model.bin_data, inputs)
    ctx = PatchContext(model, get_target("2021.4"))
    precision.apply(ctx)
    patched = load_model(model.save(tmp_path / "patched.xml")[0])
    actual = run_openvino(patched.to_xml_bytes(), patched.bin_data, inputs)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)
    return patched, ctx


def test_greater_on_int64_gets_float_inputs(tmp_path):
    # The DepthAI guide's case: an integer tensor straight into a comparison.
    x = ops.parameter([2, 5], np.float32, name="x")
    bucket = ops.convert(ops.multiply(x, np.float32(4)), "i64")
    greater = ops.greater(bucket, np.array([[1]], np.int64))
    greater.set_friendly_name("busy")
    result = ops.convert(greater, "f32")
    model = _model(tmp_path, [result], [x])
    data = np.linspace(-2, 2, 10, dtype=np.float32).reshape(2, 5)
    patched, ctx = _patch_and_compare(tmp_path, model, [data])
    layer = patched.find("busy")
    assert [t for _, t in patched.iter_input_types(layer)] == ["f32", "f32"]
    assert ctx.changes[0].layer == "busy" and "Convert input 0 i64->f32" in ctx.changes[0].after
    assert "const input 1 as f32" in ctx.changes[0].after


def test_float_comparison_is_left_alone(tmp_path):
    x = ops.parameter([3], np.float32, name="x")
    model = _model(tmp_path, [ops.less(x, np.float32(0))], [x])
    ctx = PatchContext(model, get_target("2021.4"))
    precision.apply(ctx)
    assert not ctx.changes


def test_int_add_is_left_alone(tmp_path):
    # MYRIAD's Eltwise Sum takes S32 (knowledge base rule eltwise-s32), so no Convert is needed.
    x = ops.parameter([3], np.int32, name="x")
    model = _model(tmp_path, [ops.add(x, np.int32(1))], [x])
    ctx = PatchContext(model, get_target("2021.4"))
    precision.apply(ctx)
    assert not ctx.changes


def test_int_floormod_computes_in_float_and_converts_back(tmp_path):
    # FloorMod takes FP16 only on MYRIAD (knowledge base rule eltwise-fp16).
    x = ops.parameter([4], np.int64, name="x")
    sub = ops.floor_mod(x, np.int64(7))
    sub.set_friendly_name("delta")
    model = _model(tmp_path, [sub], [x])
    patched, ctx = _patch_and_compare(tmp_path, model, [np.array([0, 7, -100, 2000], np.int64)])
    delta = patched.find("delta")
    # The Convert back to i64 now feeds the Result, so it carries the legacy output name.
    assert (delta.type, delta.attrs["destination_type"]) == ("Convert", "i64")
    assert "Convert output back to i64" in ctx.changes[0].after


def test_float_to_u8_goes_through_i32(tmp_path):
    x = ops.parameter([6], np.float32, name="x")
    conv = ops.convert(x, "u8")
    conv.set_friendly_name("to_bytes")
    model = _model(tmp_path, [conv], [x])
    data = np.array([0, 1.5, 2.9, 100, 254.2, 255], np.float32)
    patched, ctx = _patch_and_compare(tmp_path, model, [data])
    chain = [l.attrs["destination_type"] for l in patched.topological_order() if l.type == "Convert"]
    assert chain == ["i32", "u8"]
    assert patched.find("to_bytes").attrs["destination_type"] == "u8"   # legacy output name kept


def test_i64_comparison_with_large_const_is_flagged(tmp_path):
    x = ops.parameter([3], np.int64, name="x")
    model = _model(tmp_path, [ops.greater(x, np.int64(5000))], [x])
    ctx = PatchContext(model, get_target("2021.4"))
    precision.apply(ctx)
    assert "beyond fp16's exact integers" in ctx.changes[0].after


def test_f64_and_i16_tensors_are_retyped(tmp_path):
    x = ops.parameter([4], np.float64, name="x")
    y = ops.add(x, np.float64(0.25))
    n = ops.parameter([3], np.int16, name="n")
    m = ops.multiply(n, np.int16(3))
    model = _model(tmp_path, [y, m], [x, n])
    ctx = PatchContext(model, get_target("2021.4"))
    precision.apply(ctx)
    kinds = {p.element_type for l in model.layers for p in l.inputs + l.outputs}
    assert kinds == {"f32", "i32"}
    assert model.find("x").attrs["element_type"] == "f32"
    data = np.array([1.5, -2, 3, 0.125])
    ints = np.array([-300, 7, 1000], np.int16)
    got = run_openvino(model.to_xml_bytes(), model.bin_data, [data.astype(np.float32), ints.astype(np.int32)])
    np.testing.assert_array_equal(got[0], (data + 0.25).astype(np.float32))
    np.testing.assert_array_equal(got[1], ints.astype(np.int32) * 3)


def test_logical_or_xor_become_and_not(tmp_path):
    a = ops.parameter([2, 3], np.bool_, name="a")
    b = ops.parameter([3], np.bool_, name="b")
    model = _model(tmp_path, [ops.logical_or(a, b), ops.logical_xor(a, b)], [a, b])
    av = np.array([[True, False, True], [False, False, True]])
    bv = np.array([False, True, True])
    patched, ctx = _patch_and_compare(tmp_path, model, [av, bv])
    kinds = {l.type for l in patched.layers}
    assert "LogicalOr" not in kinds and "LogicalXor" not in kinds and "De Morgan" in ctx.changes[0].after


def test_int_convolution_converts_data_and_weights(tmp_path):
    x = ops.parameter([1, 1, 4, 4], np.int32, name="x")
    conv = ops.convolution(x, np.ones((1, 1, 2, 2), np.int32), [1, 1], [0, 0], [0, 0], [1, 1])
    model = _model(tmp_path, [conv], [x])
    data = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    patched, _ = _patch_and_compare(tmp_path, model, [data])
    conv_layer = next(l for l in patched.layers if l.type == "Convolution")
    assert [t for _, t in patched.iter_input_types(conv_layer)] == ["f32", "f32"]


def test_comparisons_with_refused_outputs_are_rebuilt(tmp_path):
    a = ops.parameter([6], np.float32, name="a")
    b = ops.parameter([6], np.float32, name="b")
    outputs = [ops.not_equal(a, b), ops.greater_equal(a, b), ops.less_equal(a, b)]
    model = _model(tmp_path, outputs, [a, b])
    av = np.array([1, 2, 3, np.nan, 0, -1], np.float32)
    bv = np.array([1, 3, 2, 0, np.nan, -1], np.float32)
    patched, ctx = _patch_and_compare(tmp_path, model, [av, bv])       # NaN rows included: still exact
    kinds = {l.type for l in patched.layers}
    assert not kinds & {"NotEqual", "GreaterEqual", "LessEqual"} and {"Equal", "LogicalNot"} <= kinds
    assert len(ctx.changes) == 3
