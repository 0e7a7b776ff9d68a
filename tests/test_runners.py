"""The runner protocol: every runner answers run(inputs) with a RunResult whose outputs are named and ordered,
and the comparator takes any two runs' outputs."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.ir.load import load_model
from kernelkit.runners.base import Runner, RunnerSkipped, RunResult
from kernelkit.runners.compare import compare_outputs
from kernelkit.runners.fp16_layers import FP16LayersRunner
from kernelkit.runners.numpy_ref import NumpyRunner
from kernelkit.runners.openvino_cpu import OpenVINOCPURunner
from kernelkit.runners.openvino_op import OpenVINOOpRunner
from test_harness_references import write_spec


def _model(tmp_path):
    x = ops.parameter([4], np.float32, name="x")
    path = tmp_path / "m.xml"
    scaled = ops.multiply(x, np.float32(1.0001))
    ov.save_model(ov.Model([ops.add(scaled, np.float32(1e-4)), ops.relu(x)], [x], "m"), str(path),
                  compress_to_fp16=False)
    return load_model(path)


def _spec(tmp_path, reference: str):
    return write_spec(tmp_path, "[reference]\n" + reference + "\n", name="elu_h")


def test_whole_model_runners_give_named_ordered_outputs_the_comparator_takes(tmp_path):
    model = _model(tmp_path)
    data = [np.linspace(-1, 1, 4).astype(np.float32)]
    f32 = OpenVINOCPURunner.of_model(model).run(data)
    fp16 = FP16LayersRunner(model.to_xml_bytes(), model.bin_data).run(data)
    for result, name in ((f32, "openvino-cpu-f32"), (fp16, "openvino-cpu-fp16-layers")):
        assert isinstance(result, RunResult) and result.runner == name
        assert result.names == ["out0", "out1"] and not result.failures
    comparisons = compare_outputs(fp16.arrays, f32.arrays)
    assert [c.name for c in comparisons] == ["out0", "out1"]
    assert all(c.passed for c in comparisons)          # fp16 rounding is within the default tolerance
    np.testing.assert_array_equal(f32.outputs["out1"], np.maximum(data[0], 0))


def test_kernel_reference_runners_share_the_protocol(tmp_path):
    spec = _spec(tmp_path, 'numpy = "np.where(x > 0, x, alpha * (np.exp(x) - 1))"\n'
                           'openvino = { op = "Elu", opset = "opset1" }')
    x = np.array([[-1.0, 0.5]], np.float16)
    runners: list[Runner] = [NumpyRunner(spec, {"alpha": 0.5}), OpenVINOOpRunner(spec, {"alpha": 0.5})]
    numpy_run, openvino_run = (r.run([x]) for r in runners)
    assert [numpy_run.runner, openvino_run.runner] == ["numpy", "openvino"]
    (comparison,) = compare_outputs(openvino_run.arrays, numpy_run.arrays)
    assert comparison.passed, comparison.reason


def test_a_runner_that_cannot_run_here_skips_with_its_reason(tmp_path):
    spec = _spec(tmp_path, 'openvino = { op = "Elu", opset = "opset1" }')
    with pytest.raises(RunnerSkipped, match="no \\[reference\\] numpy"):
        NumpyRunner(spec, {}).run([np.zeros((1, 2), np.float16)])


def test_onnx_evaluator_runs_a_node_model_on_new_inputs_and_skips_what_it_cannot_run(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from kernelkit.runners.onnx_reference import OnnxEvaluatorRunner

    def save(op_type, name):
        graph = helper.make_graph([helper.make_node(op_type, ["x"], ["y"], domain="" if op_type == "Relu" else "nope")],
                                  "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    x = np.array([-1.0, 0.0, 2.0], np.float32)
    run = OnnxEvaluatorRunner(save("Relu", "relu.onnx"), ["x"]).run([x])
    np.testing.assert_array_equal(run.outputs["out0"], [0.0, 0.0, 2.0])
    with pytest.raises(RunnerSkipped, match="reference evaluator cannot run"):
        OnnxEvaluatorRunner(save("Unknown", "unknown.onnx"), ["x"]).run([x])
