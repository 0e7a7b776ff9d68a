"""Resize attributes OpenVINO's ONNX conversion drops (keep_aspect_ratio_policy, antialias), made explicit on the
ONNX graph (kernelkit.ir.onnx_resize), on ONNX's own node cases: the loaded model, run on OpenVINO CPU, gives
the outputs ONNX's test data expects, where the plain conversion does not; what cannot be rewritten is a
refusal naming the node, never a silent conversion. The plugin compiles and the blob verifies in
tests/test_plugin_truth.py."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from kernelkit.harness.onnx_cases import node_cases, prepare, write_raw
from kernelkit.ir.load import load_model
from kernelkit.ir.onnx_import import convert_onnx
from kernelkit.ir.openvino_run import run_openvino

POLICY = ["test_resize_downsample_sizes_nearest_not_larger", "test_resize_downsample_sizes_nearest_not_smaller",
          "test_resize_upsample_sizes_nearest_not_larger", "test_resize_upsample_sizes_nearest_not_smaller"]
ANTIALIAS = ["test_resize_downsample_sizes_linear_antialias", "test_resize_downsample_sizes_cubic_antialias",
             "test_resize_downsample_scales_linear_antialias", "test_resize_downsample_scales_cubic_antialias"]


def _case(name):
    return next(case for _, case in node_cases() if case.name == name)


def _close(actual, expected):
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", POLICY + ANTIALIAS)
def test_the_loaded_model_computes_what_onnx_expects(tmp_path, name):
    """sizes / scales constant (as deployed): OpenVINO CPU on the loaded model gives ONNX's expected output;
    OpenVINO's own conversion of the same file does not (the shape or the values differ)."""
    case = prepare(_case(name), tmp_path)
    model = load_model(case.model_path, case.shapes)
    (got,) = run_openvino(model.to_xml_bytes(), model.bin_data, case.inputs)
    _close(got, case.expected[0])
    assert not {"keep_aspect_ratio_policy", "antialias"} & {
        k for layer in model.layers if layer.type == "Interpolate" for k, v in layer.attrs.items() if v == "true"}
    (label, before, after), = model.freeze_log.changes
    assert before.startswith("Resize (") and label
    xml, weights = convert_onnx(case.model_path, case.shapes)
    (plain,) = run_openvino(xml, weights, case.inputs)
    assert plain.shape != case.expected[0].shape or not np.allclose(plain, case.expected[0], atol=1e-3)


def test_an_axis_the_policy_scale_maps_unlike_a_stretch_becomes_a_gather(tmp_path):
    """not_smaller on 2x4 to sizes 1x3: scale 0.75 gives 2x3; axis 3 (4 -> 3 by 0.75) is a Resize by sizes,
    axis 2 (2 -> 2 by 0.75, not 1) maps nearest samples 0, 1: the identity, so no node at all."""
    case = prepare(_case("test_resize_downsample_sizes_nearest_not_smaller"), tmp_path)
    model = load_model(case.model_path, case.shapes)
    (_, _, after), = model.freeze_log.changes
    assert after == "Resize by sizes [3] on axes [3]"
    assert [layer.outputs[0].dims for layer in model.layers if layer.type == "Interpolate"] == [[1, 1, 2, 3]]


def test_a_policy_axis_with_a_rounded_size_is_measured_from_the_spec(tmp_path):
    """Linear, not_smaller, 3x5 to sizes 2x4: scale max(2/3, 4/5) = 0.8, so axis 2 becomes round(2.4) = 2
    samples mapped by 0.8 (a stretch would map by 2/3): a MatMul by measured weights; the loaded model on
    OpenVINO CPU matches onnx's reference evaluator on the original."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", mode="linear", axes=[2, 3],
                          keep_aspect_ratio_policy="not_smaller")], "policy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([2, 4], np.int64), "sizes")])
    path = tmp_path / "policy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 5)).astype(np.float32)
    (expected,) = ReferenceEvaluator(str(path)).run(None, {"x": x})
    assert expected.shape == (1, 2, 2, 4)
    model = load_model(path)
    (got,) = run_openvino(model.to_xml_bytes(), model.bin_data, [x])
    _close(got, expected)
    (_, _, after), = model.freeze_log.changes
    assert "axis 2: MatMul by its constant 3x2 weights" in after and "Resize by sizes [4] on axes [3]" in after


def test_a_policy_resize_whose_input_shape_is_dynamic_is_refused_by_name(tmp_path):
    """The sizes frozen but the input's shape unknown: no scale can be computed, so patch's load records a
    refusal naming the node and what to give, and converts nothing silently."""
    case = _case("test_resize_downsample_sizes_nearest_not_larger")
    path = write_raw(case, tmp_path)
    model = onnx.load(str(path))
    for dim in model.graph.input[0].type.tensor_type.shape.dim:
        dim.dim_param = "d"
    onnx.save(model, str(path))
    loaded = load_model(path, None, {"sizes": [1, 3]}, fold=True)
    (node, op_type, reason), = loaded.freeze_log.refusals
    assert op_type == "Resize" and node == "Y"
    assert "keep_aspect_ratio_policy=not_larger, which OpenVINO's conversion drops" in reason
    assert "--input-shape" in reason
    from kernelkit.model.patcher import patch_model

    result = patch_model(path, tmp_path / "out", "2021.4", input_values={"sizes": [1, 3]})
    assert result.exit_code == 1
    assert any(r.layer == "Y" and "OpenVINO's conversion drops" in r.reason for r in result.refusals)


def test_a_form_that_cannot_be_rewritten_with_static_shapes_is_an_error_naming_the_node(tmp_path):
    """uint8 pixels, antialiased linear downscale: the filter's weighted sum has no integer MatMul here, and the
    plain conversion would downscale unfiltered with every shape static (nothing else would catch it)."""
    from onnx import TensorProto, helper, numpy_helper

    from kernelkit.core.errors import KernelkitError

    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="shrink", mode="linear", antialias=1)],
        "u8", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
        [numpy_helper.from_array(np.array([1, 1, 4, 4], np.int64), "sizes")])
    path = tmp_path / "u8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
    with pytest.raises(KernelkitError) as raised:
        load_model(path, fold=True)
    assert raised.value.where == "node 'shrink'" and "antialias=1, which OpenVINO's conversion drops" in \
        raised.value.message and "the input is uint8" in raised.value.message


def test_an_ir_interpolate_with_antialias_downscaling_is_a_blocker_patch_refuses(tmp_path):
    """An IR (OpenVINO's own conversion) with Interpolate antialias=true shrinking an axis: the MYRIAD Interp
    stage and OpenVINO CPU both downscale unfiltered, so it is a limit, and the interpolate formulation, whose
    weights OpenVINO CPU gives, refuses it with the reason."""
    from kernelkit.model.blockers import find_blockers
    from kernelkit.model.patcher import patch_model

    case = prepare(_case("test_resize_downsample_sizes_linear_antialias"), tmp_path)
    xml, weights = convert_onnx(case.model_path, case.shapes)
    (tmp_path / "ir.xml").write_bytes(xml)
    (tmp_path / "ir.bin").write_bytes(weights)
    limits = [b for b in find_blockers(load_model(tmp_path / "ir.xml"), "2021.4") if b.kind == "limit"]
    assert [b.type for b in limits] == ["Interpolate"]
    assert "antialias=true shrinks axis 2, 3" in limits[0].reason and "no antialias filter" in limits[0].reason
    result = patch_model(tmp_path / "ir.xml", tmp_path / "out", "2021.4")
    assert result.exit_code == 1
    assert any("OpenVINO CPU, which gives the weights, ignores the filter" in r.reason for r in result.refusals)


@pytest.mark.parametrize("attrs, sizes, roi, rewritten", [
    (dict(mode="linear", antialias=1, coordinate_transformation_mode="tf_crop_and_resize", axes=[2, 3]), [3, 6],
     [0.1, 0.0, 0.9, 0.8], "axis 2: MatMul by its constant 7x3 weights; axis 3: MatMul by its constant 10x6 weights"),
    (dict(mode="linear", axes=[2, 3], keep_aspect_ratio_policy="not_larger"), [5, 4], None,
     "Resize by sizes [4] on axes [3]; axis 2: MatMul by its constant 7x3 weights"),
    (dict(mode="cubic", axes=[2, 3], keep_aspect_ratio_policy="not_smaller",
          coordinate_transformation_mode="pytorch_half_pixel"), [5, 4], None,
     "Resize by sizes [5] on axes [2]; axis 3: MatMul by its constant 10x7 weights"),
    (dict(mode="cubic", antialias=1, axes=[2, 3]), [4, 9], None,
     "axis 2: MatMul by its constant 7x4 weights; axis 3: MatMul by its constant 10x9 weights"),
])
def test_other_modes_match_onnxs_reference_evaluator(tmp_path, attrs, sizes, roi, rewritten):
    """Cubic, pytorch_half_pixel, a crop's roi: the loaded model on OpenVINO CPU gives what onnx's reference
    evaluator gives on the original (OpenVINO converts no tf_crop_and_resize itself: the rewrite's MatMuls do)."""
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inits = [numpy_helper.from_array(np.array(sizes, np.int64), "sizes")]
    inputs = ["x", "", "", "sizes"]
    if roi is not None:
        inits.append(numpy_helper.from_array(np.array(roi, np.float32), "roi"))
        inputs[1] = "roi"
    graph = helper.make_graph([helper.make_node("Resize", inputs, ["y"], name="r", **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    path = tmp_path / "resize.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), path)
    x = np.random.default_rng(1).standard_normal((1, 2, 7, 10)).astype(np.float32)
    (expected,) = ReferenceEvaluator(str(path)).run(None, {"x": x})
    model = load_model(path)
    (got,) = run_openvino(model.to_xml_bytes(), model.bin_data, [x])
    _close(got, expected)
    assert model.freeze_log.changes[0][2] == rewritten
