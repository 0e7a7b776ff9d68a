"""ONNX node cases the truth survey (tools/truth_survey.py) found wrong, run as the survey runs them: the case
prepared by kernelkit.harness.onnx_cases, `kernelkit patch` with the real 2021.4 plugin confirming, then verify
against ONNX's expected outputs (its blob check too, where the toolchain is provisioned).

- data-dependent outputs (NonZero, NonMaxSuppression): the IR v10 the 2021.4 reader takes holds their upper
  bound (it refuses -1), as Model Optimizer 2021.4 wrote it; a dim no bound settles names its layer and what
  to do;
- batch-major LSTM / GRU / RNN (layout=1), which OpenVINO's frontend reads as sequence-major;
- an output read straight from an input (Dropout, one-input Max): IR v10 names outputs by their producing
  layer, so such an output gets a layer of its own name (OpenVINO refused the IR: tensor names collided);
- a constant boolean output (Dropout's mask), which the plugin cannot store; a refusal the graph dump turns
  into a crash still names its layer;
- inputs fp16 cannot hold (LogSoftmax of 10000..10003): verify says why the blob misses.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kernelkit.doctor.confirm import DISCRETIONARY, confirm
from kernelkit.doctor.verify import verify
from kernelkit.harness.onnx_cases import node_cases, prepare
from kernelkit.ir.load import load_model
from kernelkit.model.blockers import find_blockers
from kernelkit.model.patcher import patch_model
from kernelkit.myriad import toolchain
from kernelkit.myriad.blob_reader import read_blob
from kernelkit.myriad.compile import compile_model

needs_plugin = pytest.mark.skipif(not toolchain.locate().ready(),
                                  reason="legacy MYRIAD toolchain not provisioned (kernelkit toolchain setup)")


def _case(name):
    return next(case for _, case in node_cases() if case.name == name)


def _patch(model_path, out, **options):
    """`kernelkit patch` as the command runs it: the plugin confirms where the toolchain is provisioned."""
    result = patch_model(model_path, out, "2021.4", force=True, **options)
    if result.exit_code == 0 and toolchain.locate().ready():
        _, result = confirm(result, model_path, out, "2021.4", options)
    return result


def _npz(path, prefix, arrays):
    np.savez(path, **{f"{prefix}{i}": np.asarray(a) for i, a in enumerate(arrays)})
    return path


def _verify(out, case, tmp_path):
    return verify(out, inputs=_npz(tmp_path / "in.npz", "in", case.inputs),
                  expected=_npz(tmp_path / "exp.npz", "out", case.expected))


# The bound of each data-dependent dim, from the ops' definitions: NonZero's count is at most the input's element
# count; NMS selects at most min(boxes, max_output_boxes_per_class) per batch and class.
BOUNDS = {"test_nonzero_example": [2, 2 * 2],
          "test_nonmaxsuppression_two_classes": [min(6, 2) * 1 * 2, 3],
          "test_nonmaxsuppression_two_batches": [min(6, 2) * 2 * 1, 3]}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_a_data_dependent_output_holds_its_upper_bound(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    model = load_model(case.model_path, case.shapes)
    assert [r.inputs[0].dims for r in model.results()] == [BOUNDS[name]]
    # no dynamic dim left: the IR version is the model's, for the patch to write (NMS-9 has its downgrade too)
    assert {(b.kind, b.layer_name) for b in find_blockers(model, "2021.4")} <= {("ir-version", ""),
                                                                                 ("opset", "selected_indices")}


def test_nms_with_its_box_count_fed_at_run_time_gets_no_bound_but_the_input_value_fix(tmp_path):
    """The plugin sizes NMS by its bound only with a constant max_output_boxes_per_class (it refuses the case
    with every input fed: "outIndicesShape.is_static()"): the dim stays dynamic and inspect names the input."""
    from kernelkit.harness.onnx_cases import write_raw

    path = write_raw(_case("test_nonmaxsuppression_two_classes"), tmp_path)
    found = find_blockers(load_model(path), "2021.4")
    dynamic = [b for b in found if b.kind == "dynamic-shape"]
    assert [b.details.get("from_inputs") for b in dynamic] == [["max_output_boxes_per_class"]]
    version = next(b for b in found if b.kind == "ir-version")
    assert version.layer_name == "selected_indices" and "--input-value" in version.reason


@needs_plugin
@pytest.mark.parametrize("name", ["test_nonzero_example", "test_nonmaxsuppression_suppress_by_IOU",
                                  "test_nonmaxsuppression_two_classes", "test_nonmaxsuppression_two_batches",
                                  "test_nonmaxsuppression_center_point_box_format"])
def test_nonzero_and_nms_patch_to_what_the_plugin_compiles_straight(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    compile_model(case.model_path, tmp_path / "straight.blob", graph_dump=False)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0, result.remaining or result.report.get("plugin")
    assert result.report["plugin"]["status"] == "compiled" and result.report["ir_version"] == 10
    assert not [c for c in result.report["changes"] if c["patcher"] in DISCRETIONARY]
    straight, patched = read_blob(tmp_path / "straight.blob"), read_blob(tmp_path / "out" / "model.blob")
    assert patched.counts()["stages"] <= straight.counts()["stages"]
    assert (tmp_path / "out" / "model.blob").stat().st_size <= (tmp_path / "straight.blob").stat().st_size
    checked = _verify(tmp_path / "out", case, tmp_path)
    assert checked.ir_passed, [c.reason for c in checked.comparisons]
    # the interpreter has no NonZero / StaticShapeNMS stage: verify says the blob was not run, and why
    assert checked.blob is not None and checked.blob.not_run and "cannot run stage type" in checked.blob.not_run


def _nonzero_after_dynamic_input(path):
    node = helper.make_node("NonZero", ["x"], ["y"], name="where")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [2, None])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_the_version_blocker_names_the_layer_that_keeps_v11_and_what_to_do(tmp_path):
    path = _nonzero_after_dynamic_input(tmp_path / "m.onnx")
    result = patch_model(path, tmp_path / "out", "2021.4", force=True)
    assert result.exit_code == 1
    version = [b for b in result.remaining if b.kind == "ir-version"]
    assert len(version) == 1 and version[0].layer_name == "x" and version[0].type == "Parameter"
    assert "keeps it at v11" in version[0].reason and "--input-shape x=" in version[0].reason
    # with the input's shape the NonZero's count has a bound, and the model becomes v10
    fixed = patch_model(path, tmp_path / "fixed", "2021.4", force=True, input_shapes={"x": [3, 4]})
    assert fixed.exit_code == 0 and fixed.report["ir_version"] == 10
    assert [r.inputs[0].dims for r in fixed.model.results()] == [[2, 3 * 4]]


@needs_plugin
def test_a_nonzero_blob_with_its_dims_computed_at_run_time_is_read(tmp_path):
    case = prepare(_case("test_nonzero_example"), tmp_path)
    compile_model(case.model_path, tmp_path / "straight.blob", graph_dump=False)
    blob = read_blob(tmp_path / "straight.blob")
    nonzero = next(s for s in blob.stages if s.type_name == "NonZero")
    runtime = [b for b in nonzero.buffers if b.dims_location == "BSS"]
    assert runtime and all(b.dims_innermost is None for b in runtime)


# ---- batch-major recurrent ops (layout=1) --------------------------------------------------------------------

BATCHWISE = ["test_lstm_batchwise", "test_gru_batchwise", "test_simple_rnn_batchwise"]


@pytest.mark.parametrize("name", BATCHWISE)
def test_a_batch_major_rnn_converts_to_what_onnx_computes(tmp_path, name):
    """OpenVINO's frontend reads layout=1 as sequence-major; the kit's conversion computes ONNX's outputs."""
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    case = prepare(_case(name), tmp_path)
    got = OpenVINOCPURunner.of_model(load_model(case.model_path, case.shapes)).run(case.inputs).arrays
    assert [g.shape for g in got] == [e.shape for e in case.expected]
    for g, e in zip(got, case.expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@needs_plugin
@pytest.mark.parametrize("name", BATCHWISE)
def test_a_batch_major_rnn_patches_compiles_and_verifies_on_its_blob(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0 and result.report["plugin"]["status"] == "compiled"
    checked = _verify(tmp_path / "out", case, tmp_path)
    assert checked.ir_passed, [c.reason for c in checked.comparisons]
    assert checked.blob is not None and checked.blob.not_run is None, checked.blob and checked.blob.not_run
    assert checked.blob.passed, [c.reason for c in checked.blob.comparisons]


# ---- an output read straight from an input (Identity, Dropout, one-input Max) --------------------------------

STRAIGHT_THROUGH = ["test_dropout_default", "test_dropout_default_old", "test_max_one_input", "test_min_one_input"]


@pytest.mark.parametrize("name", STRAIGHT_THROUGH)
def test_an_output_read_straight_from_an_input_keeps_both_names_and_loads_in_openvino(tmp_path, name):
    import openvino as ov

    case = prepare(_case(name), tmp_path)
    onnx_model = onnx.load(str(case.model_path))
    result = patch_model(case.model_path, tmp_path / "out", "2021.4", force=True, input_shapes=case.shapes)
    assert result.exit_code == 0
    compiled = ov.Core().compile_model(str(tmp_path / "out" / "model.xml"), "CPU")     # no name collision
    assert [i.get_any_name() for i in compiled.inputs] == [i.name for i in onnx_model.graph.input]
    assert [o.get_any_name() for o in compiled.outputs] == [o.name for o in onnx_model.graph.output]
    got = compiled(case.inputs)
    np.testing.assert_array_equal(got[compiled.outputs[0]], case.expected[0])


@needs_plugin
@pytest.mark.parametrize("name", ["test_dropout_default", "test_max_one_input"])
def test_the_blob_of_a_straight_through_output_carries_the_users_names_and_verifies(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    onnx_model = onnx.load(str(case.model_path))
    compile_model(case.model_path, tmp_path / "straight.blob", graph_dump=False)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0 and result.report["plugin"]["status"] == "compiled"
    blob = read_blob(tmp_path / "out" / "model.blob")
    assert [b.name for b in blob.inputs] == [i.name for i in onnx_model.graph.input]
    assert [b.name for b in blob.outputs] == [o.name for o in onnx_model.graph.output]
    assert blob.counts()["stages"] <= read_blob(tmp_path / "straight.blob").counts()["stages"]
    checked = _verify(tmp_path / "out", case, tmp_path)
    assert checked.passed and checked.blob.not_run is None


# ---- a constant boolean output (Dropout's mask in inference) ---------------------------------------------------

@needs_plugin
@pytest.mark.parametrize("name", ["test_dropout_default_mask", "test_dropout_default_mask_ratio"])
def test_a_constant_mask_output_compiles_and_verifies(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    with pytest.raises(Exception, match="Unsupported precision I32"):
        compile_model(case.model_path, tmp_path / "straight.blob", graph_dump=False)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0 and result.report["plugin"]["status"] == "compiled"
    assert any(c["patcher"] == "boundary" and "constant boolean" in c["after"] for c in result.report["changes"])
    checked = _verify(tmp_path / "out", case, tmp_path)
    assert checked.ir_passed, [c.reason for c in checked.comparisons]
    assert checked.blob is not None and checked.blob.not_run is None and checked.blob.passed, checked.blob.not_run


@needs_plugin
def test_a_refusal_the_dump_turns_into_a_crash_names_the_layer(tmp_path):
    """With the graph dump on, the plugin dies of the exception it reports without it: the bisection still
    finds the layer (the folded constant mask as the patch made it before the boundary fix)."""
    import openvino as ov
    import openvino.opset8 as o8

    from kernelkit.myriad.compile import CompileFailed

    x = o8.parameter([3, 4, 5], np.float32, name="x")
    y = o8.relu(x)
    y.set_friendly_name("y")
    mask = o8.greater(o8.convert(o8.constant(np.ones([3, 4, 5], bool)), "f16"), o8.constant(np.float16(0.5)))
    mask.set_friendly_name("z")
    model = ov.Model([o8.result(y), o8.result(mask)], [x], "m")
    model.set_rt_info(10, "version")
    ov.serialize(model, str(tmp_path / "m.xml"), version="IR_V10")
    with pytest.raises(CompileFailed) as refused:
        compile_model(tmp_path / "m.xml", tmp_path / "m.blob")
    assert "Unsupported precision I32" in refused.value.message
    assert (refused.value.layer_name, refused.value.located_by) == ("z", "bisection")


# ---- inputs fp16 cannot hold ------------------------------------------------------------------------------

@needs_plugin
def test_a_blob_that_misses_because_its_inputs_do_not_fit_fp16_says_so(tmp_path):
    case = prepare(_case("test_logsoftmax_large_number"), tmp_path)      # 10000..10003: fp16 steps by 8 there
    assert _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes).exit_code == 0
    checked = _verify(tmp_path / "out", case, tmp_path)
    assert checked.ir_passed and checked.blob.not_run is None and not checked.blob.passed
    assert [n for n in checked.blob.notes if "rounded to fp16" in n and "steps by 8" in n]


@needs_plugin
def test_a_blob_that_misses_for_another_reason_gets_no_fp16_inputs_note(tmp_path):
    """test_averagepool_2d_pads: the plugin's pool divides by the whole kernel (tests/test_plugin_truth.py); its
    inputs in fp16 change nothing the IR computes beyond the tolerance."""
    from kernelkit.doctor.workflow import compile_patched

    case = prepare(_case("test_averagepool_2d_pads"), tmp_path)
    patch_model(case.model_path, tmp_path / "minimal", "2021.4", input_shapes=case.shapes, minimal=True)
    compile_patched(tmp_path / "minimal", "2021.4")
    checked = _verify(tmp_path / "minimal", case, tmp_path)
    assert checked.ir_passed and checked.blob.not_run is None and not checked.blob.passed
    assert not [n for n in checked.blob.notes if "rounded to fp16" in n]


def test_compiling_an_ir_v11_names_the_layer_that_keeps_it_there(tmp_path):
    import openvino as ov
    import openvino.opset8 as o8

    from kernelkit.core.errors import KernelkitError

    x = o8.parameter([-1, 8], np.float32, name="x")
    ov.save_model(ov.Model([o8.relu(x)], [x], "m"), str(tmp_path / "m.xml"))
    with pytest.raises(KernelkitError) as refused:
        compile_model(tmp_path / "m.xml", tmp_path / "m.blob")
    assert "IR v11" in refused.value.message and "layer 'x' (Parameter) keeps the model at v11" in refused.value.message
    assert "kernelkit patch" in refused.value.hint


def test_a_zero_size_slice_names_the_slice_not_the_result(tmp_path):
    case = prepare(_case("test_slice_start_out_of_bounds"), tmp_path)       # starts past the end: [20, 0, 5]
    result = patch_model(case.model_path, tmp_path / "out", "2021.4", force=True, input_shapes=case.shapes)
    assert result.exit_code == 1
    version = next(b for b in result.remaining if b.kind == "ir-version")
    assert (version.layer_name, version.type) == ("y", "StridedSlice") and "zero dimension" in version.reason
