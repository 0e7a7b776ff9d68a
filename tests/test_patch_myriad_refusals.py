"""Refusal classes the real OpenVINO 2021.4 MYRIAD plugin taught (issue 21), each proven on that plugin
(skipped when `kernelkit toolchain setup` has not provisioned it):

- weights behind a constant chain (TFLite-converted IRs: `Const f16 -> Convert -> Reshape/Transpose`) are
  constants: patch leaves such a GroupConvolution alone (the per-tap rewrite it used to get was refused:
  "Requested output shape {1,32,9216,1} is incompatible with input shape {294912,32}");
- an MVN of rank 2 ("2 input rank provided to ... layer, but only 3D and 4D supported") is a blocker, fixed
  by an MVN over a 3-D view; MVN-2 ("1 inputs provided to probe layer, but 2 expected") becomes MVN-6.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from kernelkit.core.errors import KernelkitError
from kernelkit.doctor.verify import verify
from kernelkit.ir.graph import constant_source, input_of
from kernelkit.ir.load import load_model
from kernelkit.model.blockers import find_blockers
from kernelkit.model.patcher import patch_model
from kernelkit.myriad import toolchain
from myriad_models import compile_blob

needs_plugin = pytest.mark.skipif(not toolchain.locate().ready(), reason="legacy MYRIAD toolchain not provisioned "
                                                                         "(kernelkit toolchain setup)")


def _tflite_depthwise_ir(path, *, transposed: bool):
    """A depthwise GroupConvolution whose weights come as the TFLite frontend emits them: an f16 Const,
    Convert to f32, then Reshape (or Transpose from TFLite's [1, kh, kw, C] and Unsqueeze), saved as IR v11."""
    import openvino as ov
    from openvino import opset8 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([1, 32, 96, 96], np.float32, name="x")
    if transposed:
        w = ops.convert(ops.constant(rng.standard_normal((1, 3, 3, 32)).astype(np.float16)), "f32")
        w = ops.transpose(w, ops.constant(np.array([3, 0, 1, 2], np.int64)))
        w = ops.unsqueeze(w, ops.constant(np.array([1], np.int64)))
    else:
        w = ops.convert(ops.constant(rng.standard_normal((32, 1, 3, 3)).astype(np.float16)), "f32")
        w = ops.reshape(w, ops.constant(np.array([32, 1, 1, 3, 3], np.int64)), False)
    y = ops.relu(ops.group_convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1]))
    ov.save_model(ov.Model([y], [x], "tflite_depthwise"), str(path), compress_to_fp16=False)
    return path


def test_a_constant_chain_is_a_constant_and_a_computed_shape_is_not(tmp_path):
    model = load_model(_tflite_depthwise_ir(tmp_path / "dw.xml", transposed=True))
    conv = next(l for l in model.layers if l.type == "GroupConvolution")
    assert constant_source(model, input_of(model, conv, 1)).type == "Const"
    assert constant_source(model, input_of(model, conv, 0)) is None
    assert not [b for b in find_blockers(model, "2021.4") if b.kind != "ir-version"]


@needs_plugin
@pytest.mark.parametrize("transposed", [False, True], ids=["reshape", "transpose"])
def test_tflite_depthwise_weights_are_left_alone_and_compile(tmp_path, transposed):
    out = tmp_path / "out"
    result = patch_model(_tflite_depthwise_ir(tmp_path / "dw.xml", transposed=transposed), out, "2021.4")
    assert result.exit_code == 0
    assert [c.patcher for c in result.changes] == ["ir"]          # IR v10 and nothing else
    assert compile_blob(out, tmp_path / "dw.blob").size > 0
    assert verify(out).passed


def _onnx(path, node, inits=(), shape=(1, 64), opset=17):
    graph = helper.make_graph([node], "norm2d", [helper.make_tensor_value_info("x", T.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", T.FLOAT, list(shape))], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@needs_plugin
def test_a_2d_mvn_is_refused_by_the_plugin_and_compiles_through_a_3d_view(tmp_path):
    source = _onnx(tmp_path / "mvn2d.onnx", helper.make_node("MeanVarianceNormalization", ["x"], ["y"], axes=[1]),
                   opset=13)
    with pytest.raises(KernelkitError, match="2 input rank provided to y layer, but only 3D and 4D supported"):
        compile_blob(source, tmp_path / "straight.blob")
    limits = [b for b in find_blockers(load_model(source), "2021.4") if b.kind == "limit"]
    assert [b.type for b in limits] == ["MVN"] and limits[0].reason.endswith("(input rank 2)")
    assert "only 3D and 4D supported" in limits[0].source
    out = tmp_path / "out"
    result = patch_model(source, out, "2021.4")
    assert result.exit_code == 0 and [c.patcher for c in result.changes] == ["rewrite", "ir"]
    assert compile_blob(out, tmp_path / "patched.blob").size > 0
    assert verify(out).passed


@needs_plugin
@pytest.mark.parametrize("axis", [-1, 0])
def test_layer_normalization_of_a_2d_tensor_compiles(tmp_path, axis):
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.standard_normal(64).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.standard_normal(64).astype(np.float32), "bias")]
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=axis)
    shape = (1, 64) if axis == -1 else (2, 32)
    if axis == 0:
        inits = [numpy_helper.from_array(numpy_helper.to_array(i).reshape(shape), i.name) for i in inits]
    out = tmp_path / "out"
    assert patch_model(_onnx(tmp_path / "ln.onnx", node, inits, shape), out, "2021.4").exit_code == 0
    assert compile_blob(out, tmp_path / "ln.blob").size > 0
    assert verify(out).passed


@needs_plugin
@pytest.mark.parametrize("across_channels", [True, False])
def test_mvn2_becomes_mvn6_and_compiles(tmp_path, across_channels):
    import openvino as ov
    from openvino import opset2, opset8

    x = opset8.parameter([1, 8, 4, 4], np.float32, name="x")
    y = opset2.mvn(x, across_channels, True, 1.0)                 # eps 1: inside or outside the root shows
    source = tmp_path / "mvn2.xml"
    ov.save_model(ov.Model([y], [x], "mvn2"), str(source), compress_to_fp16=False)
    out = tmp_path / "out"
    assert patch_model(source, out, "2021.4").exit_code == 0
    assert compile_blob(out, tmp_path / "mvn2.blob").size > 0
    assert verify(out).passed
