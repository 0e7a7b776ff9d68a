"""Native formulation or library kernel: the choice follows the measured fp16 errors (data/native-fp16.json),
and the boundary fixes make what the real 2021.4 plugin refuses at a network's edges compile."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper

from kernelkit.ir.load import load_model
from kernelkit.model.passes import native
from kernelkit.model.patcher import patch_model
from kernelkit.model.passes.custom_layer import kernel_index
from kernelkit.model.formulations.registry import formulations
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.doctor.verify import verify


def test_every_formulation_with_a_kernel_alternative_is_measured():
    data = json.loads(native.DATA_FILE.read_text())
    assert data["schema"] == native.DATA_SCHEMA
    for op_type in set(kernel_index(KERNELS_DIR)) & set(formulations()):
        record = native.measurement(op_type)
        assert record is not None, f"{op_type}: run tools/measure_native.py --ops {op_type}"
        assert record["formulation"] == formulations()[op_type].text, f"{op_type}: measured a different formulation"
        if record["within_tolerance"]:
            assert record["fp16"]["ratio"] <= 1


class _Layer:
    def __init__(self, type_):
        self.name, self.type = "y", type_


def test_choice_follows_the_measurement_and_prefer():
    within = {"within_tolerance": True, "compiled": True, "fp16": {"max_abs": 1e-3, "max_ulp": 3, "ratio": 0.2}}
    outside = {"within_tolerance": False, "compiled": True, "fp16": {"max_abs": 0.5, "max_ulp": 900, "ratio": 40.0}}
    refused = {"within_tolerance": True, "compiled": False, "fp16": {"max_abs": 0, "max_ulp": 0, "ratio": 0.0}}
    layer = _Layer("Sin")
    assert native.choose(layer, "native", True, True, within).first == "native"
    assert native.choose(layer, "kernel", True, True, within).first == "kernel"
    choice = native.choose(layer, "native", True, True, outside)
    assert choice.first == "kernel" and "outside the tolerance" in choice.reason and "40.00x" in choice.reason
    assert native.choose(layer, "native", True, True, refused).first == "kernel"
    # With only one way, that way, whatever the preference.
    assert native.choose(layer, "kernel", True, False, outside).first == "native"
    assert native.choose(layer, "native", False, True).first == "kernel"


def test_old_prefer_values_are_aliases_and_others_are_refused():
    from kernelkit.core.errors import KernelkitError

    assert native.normalise_prefer("auto") == native.normalise_prefer("rewrite") == "native"
    with pytest.raises(KernelkitError, match="native"):
        native.normalise_prefer("both")


def _onnx(path, nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), path)
    return path


def test_default_patch_takes_the_formulation_and_reports_why(tmp_path):
    vi = helper.make_tensor_value_info
    model = _onnx(tmp_path / "sin.onnx", [helper.make_node("Sin", ["x"], ["y"])], [vi("x", T.FLOAT, [1, 3, 4, 4])],
                  [vi("y", T.FLOAT, [1, 3, 4, 4])])
    result = patch_model(model, tmp_path / "native", "2021.4")
    assert result.exit_code == 0 and not (tmp_path / "native" / "custom_layers.xml").exists()
    [choice] = result.report["choices"]
    assert (choice["type"], choice["first"], choice["chosen"]) == ("Sin", "native", "native")
    assert choice["fp16_error"]["ratio"] <= 1 and choice["kernel_available"]
    assert verify(tmp_path / "native").passed
    kernel = patch_model(model, tmp_path / "kernel", "2021.4", prefer="kernel")
    assert kernel.report["choices"][0]["chosen"] == "kernel" and (tmp_path / "kernel" / "custom_layers.xml").exists()
    assert verify(tmp_path / "kernel").emulated


def _compile(outdir):
    from myriad_models import compile_blob

    return compile_blob(outdir, outdir / "model.blob")


def test_boolean_output_of_a_logical_op_compiles(tmp_path):
    import openvino as ov
    from myriad_models import require_toolchain, save_ir

    from kernelkit.myriad.compile import CompileFailed, compile_model

    require_toolchain()
    x = ov.opset1.parameter([2, 3], np.float32, name="x")
    y = ov.opset1.logical_not(ov.opset1.less(x, ov.opset1.constant(np.float32(0))), name="y")
    raw = save_ir(ov.Model([y], [x], "not"), tmp_path / "not.xml")
    with pytest.raises(CompileFailed, match="S32"):        # the plugin's rule, as it stands
        compile_model(raw, tmp_path / "raw.blob")
    out = tmp_path / "out"
    result = patch_model(raw, out, "2021.4")
    assert [c.after for c in result.changes if c.patcher == "boundary"] == [
        "boolean network output re-made by Convert(f16) > 0.5"]
    assert load_model(out / "model.xml").find("y").type == "Greater"     # the output keeps its name
    assert _compile(out).size > 0
    data = np.array([[-1, 0, 2], [3, -0.5, 1]], np.float32)
    np.savez(tmp_path / "in.npz", in0=data)
    np.savez(tmp_path / "exp.npz", out0=~(data < 0))
    assert verify(out, inputs=tmp_path / "in.npz", expected=tmp_path / "exp.npz").passed


def test_constant_network_keeps_reading_its_input(tmp_path):
    vi = helper.make_tensor_value_info
    model = _onnx(tmp_path / "shape.onnx", [helper.make_node("Shape", ["x"], ["y"], start=1)],
                  [vi("x", T.FLOAT, [2, 3, 4])], [vi("y", T.INT64, None)], opset=15)
    out = tmp_path / "out"
    result = patch_model(model, out, "2021.4")
    assert result.exit_code == 0 and "boundary" in {c.patcher for c in result.changes}
    assert verify(out).passed
    blob = _compile(out)
    assert (blob.header.inputs, blob.header.outputs) == (1, 1)


def test_batched_network_reshapes_compile(tmp_path):
    # The plugin compiles a batch-2 network at batch 1: a Reshape spelling out the 2 fails, as 0 it compiles.
    import openvino as ov
    from myriad_models import require_toolchain, save_ir

    from kernelkit.myriad.compile import CompileFailed, compile_model

    require_toolchain()
    x = ov.opset1.parameter([2, 3, 4, 4], np.float32, name="x")
    y = ov.opset1.softmax(ov.opset1.reshape(x, ov.opset1.constant(np.array([2, 3, 16], np.int64)), False), 2)
    raw = save_ir(ov.Model([ov.opset1.reshape(y, ov.opset1.constant(np.array([2, 3, 4, 4], np.int64)), False)],
                           [x], "batched"), tmp_path / "batched.xml")
    with pytest.raises(CompileFailed, match="incompatible"):
        compile_model(raw, tmp_path / "raw.blob")
    out = tmp_path / "out"
    result = patch_model(raw, out, "2021.4")
    assert [c.patcher for c in result.changes].count("boundary") == 2
    assert _compile(out).size > 0
    data = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "in.npz", in0=data)
    assert verify(out, inputs=tmp_path / "in.npz").passed


def test_pad_with_minus_infinity_compiles(tmp_path):
    import openvino as ov
    from myriad_models import require_toolchain, save_ir

    from kernelkit.myriad.compile import CompileFailed, compile_model

    require_toolchain()
    x = ov.opset1.parameter([1, 2, 3, 4], np.float32, name="x")
    pad = ov.opset1.pad(x, np.array([0, 0, 1, 0], np.int64), np.array([0, 0, 0, 2], np.int64), "constant",
                        np.float32(-np.inf))
    raw = save_ir(ov.Model([ov.opset1.softmax(pad, 3)], [x], "pad"), tmp_path / "pad.xml")
    with pytest.raises(CompileFailed, match="pad value"):
        compile_model(raw, tmp_path / "raw.blob")
    out = tmp_path / "out"
    assert patch_model(raw, out, "2021.4").exit_code == 0
    assert _compile(out).size > 0
    assert verify(out).passed


def test_a_malformed_layer_is_refused_not_a_traceback(tmp_path):
    from kernelkit.harness.custom_ops import one_layer_ir
    from kernelkit.model.passes import rewrite
    from kernelkit.model.passes.base import PatchContext
    from kernelkit.facts.target import get_target

    model = load_model(one_layer_ir(tmp_path / "h.xml", "Hardmax", {"axis": "first"}, [[2, 3]], [2, 3]))
    ctx = PatchContext(model, get_target("2021.4"))
    assert not rewrite.rewrite_layer(ctx, model.find("y"))
    assert "do not fit Hardmax" in ctx.refusals[0].reason
    assert [l.type for l in model.layers] == ["Parameter", "Hardmax", "Result"]     # nothing left behind


def test_each_compiled_formulation_is_measured_on_its_blob_too():
    """native-fp16.json holds, beside each formulation's IR figures, the same measurement on its compiled blobs
    run by the blob interpreter (tools/measure_native.py, docs/blob.md)."""
    data = json.loads(native.DATA_FILE.read_text())
    for op_type, record in data["ops"].items():
        if not record.get("compiled"):
            continue
        blob = record.get("blob")
        assert blob and 0 < blob["runs"] and 0 <= blob["ran"] <= blob["runs"], op_type
        if blob["ran"]:
            assert blob["elements"] > 0 and blob["ratio"] >= 0, op_type


@pytest.mark.toolchain
def test_a_sweep_runs_as_its_compiled_blob(tmp_path):
    """sin over every fp16 value of its domain: the formulation compiled as one model and run on the interpreter
    against the same float64 reference. The plugin fuses the formulation's stages, so the blob is its own
    computation (not the IR's fp16 layer-by-layer one), and it stays within the op's tolerance."""
    import sys

    from kernelkit.core.paths import REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "tools"))
    import measure_native

    stats = measure_native.sweep("sin", tmp_path)
    blob = stats["blob"]
    assert "error" not in blob and blob["elements"] == stats["elements"] == stats["values"]
    assert blob["ratio"] <= 1 and blob["ratio"] != stats["ratio"]
    assert (tmp_path / "sweep_sin_patched" / "model.blob").is_file()
