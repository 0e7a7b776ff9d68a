"""The fp16-between-layers evaluator on real OpenVINO CPU: each layer's float output is rounded to fp16."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from kernelkit.runners.fp16_layers import round_fp16, run_fp16
from kernelkit.ir.load import load_model
from kernelkit.ir.openvino_run import run_openvino


def _model(tmp_path, outputs, params):
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model(outputs, params, "m"), str(path), compress_to_fp16=False)
    return load_model(path)


def _h(values):
    return np.asarray(values, np.float32).astype(np.float16).astype(np.float32)


def test_every_layer_output_is_rounded(tmp_path):
    x = ops.parameter([6], np.float32, name="x")
    y = ops.add(ops.multiply(x, np.float32(1.0001)), np.float32(1e-4))
    model = _model(tmp_path, [y], [x])
    data = np.linspace(0.1, 3, 6).astype(np.float32)
    got = run_fp16(model.to_xml_bytes(), model.bin_data, [data])[0]
    # Input, constants and the product are fp16 before the Add; the sum is rounded again.
    expected = _h(_h(_h(data) * _h(1.0001)) + _h(1e-4))
    np.testing.assert_array_equal(got, expected)
    # A plain f32 run differs: the rounding between the layers is what the evaluator adds.
    assert not np.array_equal(run_openvino(model.to_xml_bytes(), model.bin_data, [data])[0], got)


def test_an_intermediate_beyond_fp16_overflows(tmp_path):
    # sqrt(x*x) is |x| in f32, but x*x above 65504 is an fp16 infinity on the VPU.
    x = ops.parameter([3], np.float32, name="x")
    model = _model(tmp_path, [ops.sqrt(ops.multiply(x, x))], [x])
    got = run_fp16(model.to_xml_bytes(), model.bin_data, [np.array([3, 200, 300], np.float32)])[0]
    assert got[0] == 3 and got[1] == 200 and np.isinf(got[2])


def test_integer_and_boolean_tensors_pass_unrounded(tmp_path):
    x = ops.parameter([3], np.int32, name="n")
    big = ops.add(x, np.int32(1))
    model = _model(tmp_path, [big, ops.greater(big, np.int32(4097))], [x])
    got = run_fp16(model.to_xml_bytes(), model.bin_data, [np.array([4097, 5, 100001], np.int32)])
    np.testing.assert_array_equal(got[0], [4098, 6, 100002])       # 4098 is no fp16 value: not rounded
    np.testing.assert_array_equal(got[1], [True, False, True])


def test_round_fp16_keeps_dtype():
    value = round_fp16(np.array([1 / 3], np.float32))
    assert value.dtype == np.float32 and value[0] == np.float32(np.float16(1 / 3))
    assert round_fp16(np.array([7], np.int64)).dtype == np.int64
