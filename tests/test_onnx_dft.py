"""ONNX DFT converted exactly (kernelkit.ir.onnx_dft): every form against ONNX's reference evaluator on OpenVINO
CPU, and ONNX's own DFT node cases through patch (the real 2021.4 plugin confirming), compile and verify with
its blob check, against ONNX's expected outputs."""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.runners.compare import compare_outputs
from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

RNG = np.random.default_rng(5)


def _dft_model(path, shape, opset, attrs, length=None, axis=None, axis_is_input=False):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, inputs, names = [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)], ["x", "", ""]
    if length is not None:
        inits.append(numpy_helper.from_array(np.array(length, np.int64), "len"))
        names[1] = "len"
    if axis is not None:
        names[2] = "axis"
        if axis_is_input:
            inputs.append(helper.make_tensor_value_info("axis", TensorProto.INT64, []))
        else:
            inits.append(numpy_helper.from_array(np.array(axis, np.int64), "axis"))
    while names and not names[-1]:
        names.pop()
    graph = helper.make_graph([helper.make_node("DFT", names, ["y"], **attrs)], "dft", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _reference(path, x):
    import onnx
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(onnx.load(path)).run(None, {"x": x})


FORMS = [  # (shape, opset, attributes, dft_length, axis input)
    ([2, 6, 5, 1], 17, {"axis": -2}, None, None),                        # ONNX -2: the last signal axis
    ([2, 6, 5, 2], 17, {"axis": 1, "onesided": 1}, None, None),          # complex one-sided: sliced
    ([2, 6, 5, 1], 17, {"axis": 2, "onesided": 1}, 4, None),             # real, trimmed, one-sided
    ([2, 4, 5, 2], 17, {"axis": 1, "inverse": 1, "onesided": 1}, 7, None),  # odd length from a spectrum
    ([2, 4, 5, 1], 17, {"axis": 1, "inverse": 1, "onesided": 1}, None, None),  # real "spectrum"
    ([2, 6, 5, 1], 20, {"inverse": 1}, 4, None),                         # no axis input: -2
    ([2, 6, 5, 2], 20, {}, None, -3),
    ([2, 6, 5, 1], 20, {"onesided": 1}, None, 2),
]


@pytest.mark.parametrize("shape, opset, attrs, length, axis", FORMS)
def test_every_form_matches_onnx_on_openvino_cpu(tmp_path, shape, opset, attrs, length, axis):
    path = _dft_model(str(tmp_path / "dft.onnx"), shape, opset, attrs, length, axis)
    x = RNG.uniform(-1, 1, shape).astype(np.float32)
    expected = _reference(path, x)
    got = OpenVINOCPURunner.of_model(load_model(path)).run([x]).arrays
    assert got[0].shape == expected[0].shape
    assert all(c.passed for c in compare_outputs(got, expected)), np.abs(got[0] - expected[0]).max()


def test_an_axis_fed_at_run_time_is_refused_with_the_input_value_that_fixes_it(tmp_path):
    path = _dft_model(str(tmp_path / "dft.onnx"), [1, 6, 5, 1], 20, {}, None, 1, axis_is_input=True)
    with pytest.raises(KernelkitError) as refused:
        load_model(path)
    assert "its axis comes from 'axis'" in refused.value.message and "--input-value axis=" in refused.value.hint
    x = RNG.uniform(-1, 1, [1, 6, 5, 1]).astype(np.float32)
    model = load_model(path, input_values={"axis": [1]})
    got = OpenVINOCPURunner.of_model(model).run([x]).arrays[0]
    np.testing.assert_allclose(got[..., 0] + 1j * got[..., 1], np.fft.fft(x[..., 0], axis=1), atol=1e-5)


DFT_CASES = ["test_dft", "test_dft_axis", "test_dft_inverse", "test_dft_rfft", "test_dft_irfft"]


@pytest.mark.parametrize("name", DFT_CASES + [f"{n}_opset19" for n in DFT_CASES])
def test_onnx_dft_cases_patch_compile_and_verify_on_the_device_path(tmp_path, name):
    from kernelkit.doctor.confirm import confirm
    from kernelkit.doctor.verify import verify
    from kernelkit.harness.onnx_cases import node_cases, prepare
    from kernelkit.model.patcher import patch_model
    from kernelkit.myriad import toolchain

    if not toolchain.locate().ready():
        pytest.skip("legacy MYRIAD toolchain not provisioned (kernelkit toolchain setup)")
    case = prepare(next(c for _, c in node_cases({"DFT"}) if c.name == name), tmp_path)
    options = {"input_shapes": case.shapes}
    result = patch_model(case.model_path, tmp_path / "out", "2021.4", force=True, **options)
    assert result.exit_code == 0
    _, result = confirm(result, case.model_path, tmp_path / "out", "2021.4", options)
    assert result.exit_code == 0 and result.report["plugin"]["status"] == "compiled"
    assert [c["layer"] for c in result.report["changes"] if c["patcher"] == "rewrite"] == ["y"]
    np.savez(tmp_path / "in.npz", **{f"in{i}": a for i, a in enumerate(case.inputs)})
    np.savez(tmp_path / "exp.npz", **{f"out{i}": a for i, a in enumerate(case.expected)})
    checked = verify(tmp_path / "out", inputs=tmp_path / "in.npz", expected=tmp_path / "exp.npz")
    assert checked.ir_passed and checked.blob is not None and checked.blob.not_run is None
    assert checked.blob.passed, [(c.name, float(c.abs_error.max)) for c in checked.blob.comparisons]
