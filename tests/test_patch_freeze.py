"""--input-value and the control-flow fold: If on a frozen scalar or a static shape, counted Loops, nested
If. Each folded model is run on OpenVINO CPU and compared with onnx's reference evaluator running the
original (If and Loop included) at the same values."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import control_flow_models as cfm
from kernelkit.cli import main
from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.ir.freeze import parse_input_value, typed_array, value_shape
from kernelkit.ir.onnx_fold import MAX_ITERATIONS, freeze_onnx
from kernelkit.ir.openvino_run import run_openvino

RNG = np.random.default_rng(7)


def _reference(path, feeds):
    return ReferenceEvaluator(onnx.load(str(path))).run(None, feeds)


def _folded(path, feeds, shapes=None, values=None):
    """The model loaded as patch loads it (frozen, folded, converted) and its outputs on `feeds`."""
    model = load_model(path, shapes, values, fold=True)
    outputs = run_openvino(model.to_xml_bytes(), model.bin_data, list(feeds.values()))
    return model, outputs


def _types(model):
    return {layer.type for layer in model.layers}


def _assert_close(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


# ---- the reduced patterns ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate, branch", [(16000, "then"), (8000, "else")])
def test_if_on_a_frozen_scalar_becomes_its_branch(tmp_path, rate, branch):
    path = cfm.if_on_scalar(tmp_path / "if.onnx")
    x = RNG.standard_normal((1, 8)).astype(np.float32)
    model, outputs = _folded(path, {"x": x}, values={"sr": [rate]})
    assert "If" not in _types(model) and [p.name for p in model.parameters()] == ["x"]
    _assert_close(outputs, _reference(path, {"x": x, "sr": np.array(rate, np.int64)}))
    assert ("choose", "If", f"{branch} branch inlined (2 nodes)") in model.freeze_log.changes
    assert model.freeze_log.frozen == [{"input": "sr", "type": "int64", "shape": [], "value": [rate]}]


@pytest.mark.parametrize("length", [512, 128])
def test_if_on_a_shape_folds_with_the_input_shape_alone(tmp_path, length):
    path = cfm.if_on_shape(tmp_path / "shape.onnx")
    x = RNG.standard_normal((1, length)).astype(np.float32)
    model, outputs = _folded(path, {"x": x}, shapes={"x": [1, length]})
    assert not _types(model) & {"If", "ShapeOf", "Gather", "Greater"}
    _assert_close(outputs, _reference(path, {"x": x}))
    assert not model.freeze_log.frozen


def test_counted_loop_unrolls_with_its_scan_output(tmp_path):
    path = cfm.loop_counted(tmp_path / "loop.onnx", trip=5, exit_after=3)
    x, acc0 = RNG.standard_normal(4).astype(np.float32), RNG.standard_normal(4).astype(np.float32)
    model, outputs = _folded(path, {"x": x, "acc0": acc0})
    assert "Loop" not in _types(model)
    _assert_close(outputs, _reference(path, {"x": x, "acc0": acc0}))
    # The exit test k < 3 stops it after k = 3, before the trip count of 5: four steps, each one stacked.
    history = np.cumsum([acc0] + [x * k for k in range(4)], axis=0)[1:]
    _assert_close(outputs, [history[-1], history])
    assert any(c[:2] == ("accumulate", "Loop") and "4 iteration(s)" in c[2] for c in model.freeze_log.changes)


@pytest.mark.parametrize("mode", [1, 0])
def test_nested_if_folds_level_by_level(tmp_path, mode):
    path = cfm.nested_if(tmp_path / "nested.onnx")
    x = RNG.standard_normal((1, 8)).astype(np.float32)
    model, outputs = _folded(path, {"x": x}, values={"sr": [16000], "mode": [mode]})
    assert "If" not in _types(model)
    _assert_close(outputs, _reference(path, {"x": x, "sr": np.array(16000), "mode": np.array(mode)}))


def test_an_if_left_dynamic_names_the_input_that_would_fold_it(tmp_path):
    path = cfm.nested_if(tmp_path / "nested.onnx")
    x, mode = RNG.standard_normal((1, 8)).astype(np.float32), np.array(2, np.int64)
    model, outputs = _folded(path, {"x": x, "mode": mode}, values={"sr": [16000]})
    assert "If" in _types(model)               # the inner one, on `mode`, which OpenVINO runs
    _assert_close(outputs, _reference(path, {"x": x, "sr": np.array(16000), "mode": mode}))
    [(node, op_type, reason)] = model.freeze_log.refusals
    assert (node, op_type) == ("inner", "If") and "--input-value mode=" in reason


def test_a_loop_with_a_data_dependent_exit_stays(tmp_path):
    path = cfm.loop_data_exit(tmp_path / "grow.onnx")
    x = np.array([0.5, 1, 1.5, 2], np.float32)
    model, outputs = _folded(path, {"x": x})
    assert "Loop" in _types(model)
    _assert_close(outputs, _reference(path, {"x": x}))
    [(node, _, reason)] = model.freeze_log.refusals
    assert node == "grow" and "loop-carried value 'acc_in'" in reason


def test_a_loop_beyond_the_unroll_limit_stays(tmp_path):
    path = cfm.loop_counted(tmp_path / "long.onnx", trip=MAX_ITERATIONS + 1, exit_after=10 ** 6)
    folded, log = freeze_onnx(onnx.load(str(path)))
    assert [n.op_type for n in folded.graph.node] == ["Loop"]
    assert f"more than {MAX_ITERATIONS} iterations" in log.refusals[0][2]


# ---- values: parsing and typing ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["sr", "sr=", "=16000", "sr=abc", "sr=1,,2", "sr=0x10"])
def test_malformed_values_are_refused(text):
    with pytest.raises(KernelkitError):
        parse_input_value(text)


def test_values_parse_as_numbers():
    assert parse_input_value("gain=0.5, -2,1e-3,true") == ("gain", [0.5, -2, 0.001, 1])


@pytest.mark.parametrize("declared, count, override, shape", [([], 1, None, []), ([-1], 3, None, [3]),
                                                             ([1, -1], 6, None, [1, 6]), (None, 1, None, []),
                                                             (None, 4, None, [4]), ([-1, -1], 6, [2, 3], [2, 3])])
def test_the_frozen_shape_comes_from_the_declaration_the_count_or_input_shape(declared, count, override, shape):
    assert value_shape("v", declared, count, override) == shape


@pytest.mark.parametrize("declared, count", [([-1, -1], 6), ([1, 4], 3), ([-1, 4], 6)])
def test_a_count_that_does_not_fill_the_shape_is_refused(declared, count):
    with pytest.raises(KernelkitError):
        value_shape("v", declared, count, None)


@pytest.mark.parametrize("values, dtype", [([1.5], np.int64), ([300], np.uint8), ([2], np.bool_),
                                           ([70000.0], np.float16)])
def test_values_the_input_type_cannot_hold_are_refused(values, dtype):
    with pytest.raises(KernelkitError):
        typed_array("v", values, dtype, [1])


# ---- the audio model end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    path = cfm.audio_vad(folder / "vad.onnx")
    before = path.read_bytes()
    out = folder / "out"
    code = main(["patch", str(path), "-o", str(out), "--input-shape", "audio=1,512", "--input-value", "sr=16000"])
    assert path.read_bytes() == before, "patch modified its input"
    return path, out, code


def test_audio_model_patches_clean_and_reports_the_fold(audio):
    path, out, code = audio
    assert code == 0
    report = json.loads((out / "patch-report.json").read_text())
    assert report["source"]["input_values"] == {"sr": [16000]}
    assert report["frozen"] == [{"input": "sr", "type": "int64", "shape": [], "value": [16000]}]
    folded = {(c["layer"], c["before"]) for c in report["changes"] if c["patcher"] == "freeze"}
    assert {("sr", "input int64 scalar"), ("choose_rate", "If"), ("recurrence", "Loop")} <= folded
    assert [p.name for p in load_model(out / "model.xml").parameters()] == ["audio", "state"]


def test_audio_model_verifies_against_the_original_at_the_frozen_value(audio, tmp_path):
    path, out, _ = audio
    assert main(["verify", str(out), "--reference", str(path)]) == 0
    # The reference really is run at the recorded value: recorded as 8000, the original (the default
    # reference) takes the other front end and the comparison fails.
    report = json.loads((out / "patch-report.json").read_text())
    report["source"]["input_values"] = {"sr": [8000]}
    other = tmp_path / "other"
    other.mkdir()
    for name in ("model.xml", "model.bin"):
        (other / name).write_bytes((out / name).read_bytes())
    (other / "patch-report.json").write_text(json.dumps(report))
    assert main(["verify", str(other)]) == 1


def test_audio_original_keeps_if_and_loop_for_the_reference(audio):
    path, _, _ = audio
    reference = load_model(path, {"audio": [1, 512]}, {"sr": [16000]})
    assert {"If", "Loop"} <= _types(reference)
    assert [p.name for p in reference.parameters()] == ["audio", "state"]


def test_audio_model_compiles_on_the_real_plugin(audio, tmp_path):
    from myriad_models import require_toolchain

    from kernelkit.model.blockers import find_blockers
    from kernelkit.doctor.workflow import compile_patched

    require_toolchain()
    path, out, _ = audio
    compiled = compile_patched(out, "2021.4")
    assert compiled.blob_path.is_file() and compiled.size > 0
    # Without the value the If stays, and it is all that blocks: the Loop (constant trip count) unrolls.
    assert main(["patch", str(path), "-o", str(tmp_path / "dyn"), "--input-shape", "audio=1,512"]) == 1
    remaining = find_blockers(load_model(tmp_path / "dyn" / "model.xml"), "2021.4")
    assert {b.type for b in remaining} == {"If"}


def test_inspect_says_which_input_folds_the_if(audio, capsys):
    path, _, _ = audio
    assert main(["inspect", str(path), "--input-shape", "audio=1,512", "--json"]) == 1
    blockers = json.loads(capsys.readouterr().out)["blockers"]
    fixes = {(b["type"], b["kind"]): b["fix"] for b in blockers if b["type"] in ("If", "Loop")}
    assert fixes[("If", "unsupported")].startswith("--input-value sr=")
    assert fixes[("If", "opset")] == fixes[("If", "unsupported")]
    assert fixes[("Loop", "unsupported")].startswith("unroll: 3 iteration(s)")


@pytest.mark.parametrize("value, words", [("rate=16000", "not an input"), ("sr=16000,8000", "2 value(s) given"),
                                          ("sr=fast", "not a number"), ("sr=16000.5", "not an integer"),
                                          ("state=1,2,3", "holds 16")])
def test_bad_input_values_exit_2_and_write_nothing(audio, tmp_path, capsys, value, words):
    path, _, _ = audio
    out = tmp_path / "out"
    assert main(["patch", str(path), "-o", str(out), "--input-shape", "audio=1,512", "--input-value", value]) == 2
    err = capsys.readouterr().err
    assert words in err and "--input-value" in err and "Traceback" not in err
    assert not out.exists()


# ---- IR input ---------------------------------------------------------------------------------------------

def test_ir_parameter_freezes_to_a_const(tmp_path):
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 4], np.float32, name="x")
    gain = ops.parameter([], np.float32, name="gain")
    ov.save_model(ov.Model([ops.multiply(x, gain, name="scaled")], [x, gain], "m"), str(tmp_path / "m.xml"))
    out = tmp_path / "out"
    assert main(["patch", str(tmp_path / "m.xml"), "-o", str(out), "--input-value", "gain=0.25"]) == 0
    patched = load_model(out / "model.xml")
    assert [p.name for p in patched.parameters()] == ["x"]
    data = RNG.standard_normal((1, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_openvino(patched.to_xml_bytes(), patched.bin_data, [data])[0], data * 0.25)
    assert main(["verify", str(out)]) == 0


def test_ir_if_is_refused_with_a_pointer_to_the_onnx_path(audio, tmp_path):
    path, _, _ = audio
    load_model(path, {"audio": [1, 512]}).save(tmp_path / "vad.xml")
    out = tmp_path / "out"
    assert main(["patch", str(tmp_path / "vad.xml"), "-o", str(out), "--input-value", "sr=16000"]) == 1
    refusals = json.loads((out / "patch-report.json").read_text())["refusals"]
    assert any(r["type"] == "If" and "only in ONNX models" in r["reason"] for r in refusals)


def test_a_model_openvino_refuses_for_a_dead_branch(tmp_path, capsys):
    from kernelkit.doctor.verify import verify

    path = cfm.dead_branch(tmp_path / "dead.onnx")
    assert main(["inspect", str(path), "--input-shape", "x=1,512"]) == 2
    assert "--input-value sr=..." in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["patch", str(path), "-o", str(out), "--input-shape", "x=1,512", "--input-value", "sr=16000"]) == 0
    # OpenVINO cannot convert the original even at sr=16000: onnx's reference evaluator is the reference.
    checked = verify(out)
    assert checked.passed and "onnx's reference evaluator" in checked.reference
