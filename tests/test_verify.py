"""`kernelkit verify`: the patched model on OpenVINO CPU with custom layers on the SHAVE emulator."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kernelkit.cli import main
from kernelkit.core.paths import EXAMPLES_DIR
from kernelkit.doctor.verify import verify

EXAMPLE = EXAMPLES_DIR / "blocked_model" / "model.onnx"


@pytest.fixture(scope="module")
def example_out(tmp_path_factory):
    # the library kernel rather than CumSum's native formulation: verify runs it on the emulator
    out = tmp_path_factory.mktemp("v") / "out"
    assert main(["patch", str(EXAMPLE), "-o", str(out), "--prefer", "kernel", "--no-compile"]) == 0
    return out


def _cumsum_onnx(path, exclusive, reverse, shape=(1, 2, 3, 6), axis=3):
    graph = helper.make_graph(
        [helper.make_node("CumSum", ["x", "axis"], ["y"], exclusive=exclusive, reverse=reverse, name="scan")],
        "scan", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
        initializer=[numpy_helper.from_array(np.array(axis, np.int64), "axis")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), path)


def test_example_passes_with_the_kernel_emulated(example_out):
    result = verify(example_out)
    assert result.passed, [c.reason for c in result.comparisons] + result.problems
    # HardSigmoid's alpha/beta reach its kernel as the parameters the plugin makes of its constant inputs
    assert [(e.name, e.type, e.calls) for e in result.emulated] == [("gate", "HardSigmoid", 1),
                                                                    ("running_sum", "CumSum", 1)]
    assert len(result.comparisons) == 2


@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_kernel_against_numpy_cumsum(tmp_path, exclusive, reverse):
    model = tmp_path / "scan.onnx"
    _cumsum_onnx(model, exclusive, reverse)
    out = tmp_path / "out"
    assert main(["patch", str(model), "-o", str(out), "--prefer", "kernel", "--no-compile"]) == 0
    x = np.random.default_rng(3).uniform(-2, 2, size=(1, 2, 3, 6)).astype(np.float32)
    # Written independently of kernelkit: flip, cumulative sum, shift for exclusive.
    data = x[..., ::-1] if reverse else x
    total = np.cumsum(data.astype(np.float64), axis=3)
    if exclusive:
        total = np.concatenate([np.zeros_like(total[..., :1]), total[..., :-1]], axis=3)
    expected = total[..., ::-1] if reverse else total
    np.savez(tmp_path / "in.npz", in0=x)
    np.savez(tmp_path / "exp.npz", out0=expected.astype(np.float32))
    result = verify(out, inputs=tmp_path / "in.npz", expected=tmp_path / "exp.npz")
    assert result.passed, result.comparisons[0].reason
    assert result.emulated[0].calls == 1
    # The emulator computes in fp16, so it is close to the f64 reference but not equal to it.
    assert 0 < result.comparisons[0].abs_error.max < 1e-2


def test_mismatch_exits_1(example_out, tmp_path, capsys):
    import openvino as ov

    x = np.random.default_rng(7).uniform(-1, 1, size=(1, 3, 8, 8)).astype(np.float32)
    compiled = ov.Core().compile_model(str(EXAMPLE), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = [np.array(v) for v in compiled(x).values()]
    np.savez(tmp_path / "in.npz", in0=x)
    np.savez(tmp_path / "good.npz", **{f"out{i}": o for i, o in enumerate(outputs)})
    assert main(["verify", str(example_out), "--inputs", str(tmp_path / "in.npz"),
                 "--expected", str(tmp_path / "good.npz")]) == 0
    outputs[0] = outputs[0].copy()
    outputs[0].flat[5] += 0.5
    np.savez(tmp_path / "bad.npz", **{f"out{i}": o for i, o in enumerate(outputs)})
    capsys.readouterr()
    assert main(["verify", str(example_out), "--inputs", str(tmp_path / "in.npz"),
                 "--expected", str(tmp_path / "bad.npz")]) == 1
    printed = capsys.readouterr().out
    assert "FAIL out0" in printed and "1/64 outside" in printed and "PASS out1" in printed


def test_reference_model_option(example_out, capsys):
    assert main(["verify", str(example_out), "--reference", str(EXAMPLE), "--seed", "3"]) == 0
    assert f"original model {EXAMPLE}" in capsys.readouterr().out


def test_bad_inputs_exit_2(example_out, tmp_path, capsys):
    np.savez(tmp_path / "wrong_key.npz", x=np.zeros((1, 3, 8, 8), np.float32))
    assert main(["verify", str(example_out), "--inputs", str(tmp_path / "wrong_key.npz")]) == 2
    assert "in0, in1" in capsys.readouterr().err
    np.savez(tmp_path / "wrong_shape.npz", in0=np.zeros((1, 3, 4, 4), np.float32))
    assert main(["verify", str(example_out), "--inputs", str(tmp_path / "wrong_shape.npz")]) == 2
    assert "shape" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["verify", str(example_out), "--inputs", str(tmp_path / "junk.npz")]) == 2
    assert main(["verify", str(tmp_path)]) == 2
    assert "no model.xml" in capsys.readouterr().err


def test_preprocessed_patch_is_checked_against_the_original(tmp_path):
    out = tmp_path / "out"
    assert main(["patch", str(EXAMPLE), "-o", str(out), "--u8-input", "--reverse-channels",
                 "--mean", "120,110,100", "--scale", "60", "--no-compile"]) == 0
    result = verify(out)
    # The original model saw (BGR->RGB, mean, scale)-normalised floats made from the same U8 frame.
    assert result.passed, [c.reason for c in result.comparisons]
    frame = np.random.default_rng(5).integers(0, 256, size=(1, 3, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "in.npz", in0=frame)
    assert verify(out, inputs=tmp_path / "in.npz").passed


def test_a_tiny_output_is_compared_relative_to_its_signal(tmp_path, capsys):
    import openvino as ov
    from openvino import opset8

    # x * 1e-5 (every value within atol 1e-3 of zero) and x * 0 (zero on both sides)
    x = opset8.parameter([1, 3, 8, 8], np.float32, name="x")
    tiny = opset8.multiply(x, opset8.constant(np.float32(1e-5)), name="tiny")
    zero = opset8.multiply(x, opset8.constant(np.float32(0.0)), name="zero")
    ov.save_model(ov.Model([tiny, zero], [x], "tiny"), tmp_path / "tiny.xml", compress_to_fp16=False)
    out = tmp_path / "out"
    assert main(["patch", str(tmp_path / "tiny.xml"), "-o", str(out), "--no-compile"]) == 0
    data = np.random.default_rng(4).uniform(-1, 1, size=(1, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "in.npz", in0=data)
    np.savez(tmp_path / "right.npz", out0=data * np.float32(1e-5), out1=np.zeros_like(data))
    np.savez(tmp_path / "wrong_sign.npz", out0=data * np.float32(-1e-5), out1=np.zeros_like(data))
    capsys.readouterr()

    assert main(["verify", str(out), "--inputs", str(tmp_path / "in.npz"),
                 "--expected", str(tmp_path / "right.npz")]) == 0
    printed = capsys.readouterr().out
    assert "PASSED: every output matches" in printed
    assert f"    values within the tolerance of zero (max |ref| = {np.abs(data * 1e-5).max():.3g}, atol=0.001): " \
           "compared relative to the signal" in printed
    assert "    all zeros in the reference and the result: an exact match" in printed

    # The wrong sign passed before (|a - e| <= 2e-5 < atol); relative to the signal it fails.
    assert main(["verify", str(out), "--inputs", str(tmp_path / "in.npz"),
                 "--expected", str(tmp_path / "wrong_sign.npz"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    tiny_out, zero_out = report["outputs"]
    assert not report["passed"] and not tiny_out["passed"] and tiny_out["mismatches"] > data.size * 0.9
    assert tiny_out["signal"] == pytest.approx(np.abs(data * 1e-5).max())
    assert tiny_out["signal_note"].startswith("values within the tolerance of zero")
    assert zero_out["passed"] and zero_out["signal_note"].startswith("all zeros")
