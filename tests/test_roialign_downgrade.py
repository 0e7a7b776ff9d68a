"""ROIAlign-9 as ROIAlign-3 (kernelkit.model.formulations.native_sample.roi_align_9): equal to v9 on OpenVINO
CPU in every aligned_mode and both pooling modes, and ONNX's RoiAlign node cases through patch (the real 2021.4
plugin confirming) and verify against ONNX's expected outputs. ONNX's max mode is another maximum than
OpenVINO's and is refused; the plugin's own ONNX reader loses half_pixel (the straight blob is the
output_half_pixel one)."""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.facts.target import get_target
from kernelkit.ir.load import load_model
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext

RNG = np.random.default_rng(11)


def _roi_ir(path, mode, aligned, scale, boxes=None, ratio=2):
    import openvino as ov

    x = ov.opset1.parameter([2, 3, 12, 14], np.float32, name="x")
    rois = ov.opset1.parameter([6, 4], np.float32, name="rois") if boxes is None else ov.opset1.constant(boxes)
    node = ov.opset9.roi_align(x, rois, ov.opset1.constant(np.array([0, 1, 0, 1, 0, 1], np.int32)), 3, 4, ratio,
                               scale, mode, aligned)
    params = [x] if boxes is not None else [x, rois]
    ov.save_model(ov.Model([node], params, "roi"), str(path), compress_to_fp16=False)
    return path


def _boxes(scale, smallest=1.5):
    start = RNG.uniform(0, 10, (6, 2)) / scale
    return np.concatenate([start, start + RNG.uniform(smallest, 8, (6, 2)) / scale], 1).astype(np.float32)


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("aligned", ["asymmetric", "half_pixel_for_nn", "half_pixel"])
def test_v3_with_shifted_boxes_computes_v9(tmp_path, scale, mode, aligned):
    path = _roi_ir(tmp_path / "roi.xml", mode, aligned, scale)
    original, patched = load_model(path), load_model(path)
    ctx = PatchContext(patched, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals
    assert [l.version for l in patched.layers if l.type == "ROIAlign"] == ["opset3"]
    data = [RNG.standard_normal((2, 3, 12, 14)).astype(np.float32), _boxes(scale)]
    want = run_openvino(original.to_xml_bytes(), original.bin_data, data)[0]
    got = run_openvino(patched.to_xml_bytes(), patched.bin_data, data)[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_constant_box_under_one_pixel_is_refused_in_the_half_pixel_modes(tmp_path):
    small = _boxes(1.0, smallest=0.2)
    small[0, 2] = small[0, 0] + 0.5
    for aligned, refused in (("half_pixel_for_nn", True), ("asymmetric", False)):
        model = load_model(_roi_ir(tmp_path / f"{aligned}.xml", "avg", aligned, 1.0, boxes=small))
        ctx = PatchContext(model, get_target("2021.4"))
        rewrite.apply(ctx)
        reasons = [r.reason for r in ctx.refusals] if refused else []
        assert bool(ctx.refusals) == refused, reasons
        assert not refused or "under one feature pixel" in " ".join(str(r) for r in ctx.refusals)


@pytest.mark.parametrize("aligned, ratio", [("half_pixel", 0), ("asymmetric", 2)])
def test_the_patched_blob_computes_v9(tmp_path, aligned, ratio):
    """An IR's ROIAlign-9 (scale 0.5, batch 2, adaptive sampling): patched, compiled by the real plugin, and
    verified against the unpatched IR on OpenVINO CPU by the IR check and the blob check."""
    from kernelkit.doctor.verify import verify
    from kernelkit.doctor.workflow import compile_patched
    from kernelkit.model.patcher import patch_model

    _plugin_ready()
    path = _roi_ir(tmp_path / "roi.xml", "avg", aligned, 0.5, ratio=ratio)
    assert patch_model(path, tmp_path / "out", "2021.4").exit_code == 0
    compile_patched(tmp_path / "out", "2021.4")
    np.savez(tmp_path / "in.npz", in0=RNG.standard_normal((2, 3, 12, 14)).astype(np.float32), in1=_boxes(0.5))
    checked = verify(tmp_path / "out", inputs=tmp_path / "in.npz")
    assert checked.ir_passed and checked.blob is not None and checked.blob.not_run is None
    assert checked.blob.passed, [(c.name, float(c.abs_error.max)) for c in checked.blob.comparisons]


def _plugin_ready():
    from kernelkit.myriad import toolchain

    if not toolchain.locate().ready():
        pytest.skip("legacy MYRIAD toolchain not provisioned (kernelkit toolchain setup)")


def _case(name, folder):
    from kernelkit.harness.onnx_cases import node_cases, prepare

    return prepare(next(c for _, c in node_cases({"RoiAlign"}) if c.name == name), folder)


@pytest.mark.parametrize("name, stages", [("test_roialign_aligned_false", {"ROIAlign"}),
                                          ("test_roialign_aligned_true", {"ROIAlign", "Power"})])
def test_onnx_roialign_cases_patch_and_verify_against_onnx(tmp_path, name, stages):
    """The plugin confirms the patch; verify passes against ONNX's outputs, the IR and the blob (the interpreter's
    ROIAlign stage runs the blob's own parameters)."""
    from kernelkit.doctor.confirm import confirm
    from kernelkit.doctor.verify import verify
    from kernelkit.model.patcher import patch_model
    from kernelkit.myriad.blob_reader import read_blob

    _plugin_ready()
    case = _case(name, tmp_path)
    options = {"input_shapes": case.shapes}
    result = patch_model(case.model_path, tmp_path / "out", "2021.4", force=True, **options)
    assert result.exit_code == 0
    _, result = confirm(result, case.model_path, tmp_path / "out", "2021.4", options)
    assert result.exit_code == 0 and result.report["plugin"]["status"] == "compiled"
    found = {s.type_name for s in read_blob(tmp_path / "out" / "model.blob").stages}
    assert stages <= found and ("Power" in found) == ("Power" in stages), found   # the shift, only where needed
    np.savez(tmp_path / "in.npz", **{f"in{i}": a for i, a in enumerate(case.inputs)})
    np.savez(tmp_path / "exp.npz", **{f"out{i}": a for i, a in enumerate(case.expected)})
    checked = verify(tmp_path / "out", inputs=tmp_path / "in.npz", expected=tmp_path / "exp.npz")
    assert checked.ir_passed and checked.passed
    assert checked.blob is not None and checked.blob.not_run is None and checked.blob.passed


def test_onnx_max_mode_is_refused_as_another_maximum(tmp_path):
    """ONNX's expected outputs are the reference evaluator's maximum; OpenVINO CPU's conversion (v9) misses
    them, so a v3 downgrade would compute something else: patch refuses the layer with that reason."""
    from kernelkit.harness.onnx_cases import onnx_reference, openvino_misses
    from kernelkit.model.patcher import patch_model

    case = _case("test_roialign_mode_max", tmp_path)
    reference = onnx_reference(case, case.inputs)
    np.testing.assert_allclose(reference[0], case.expected[0], atol=1e-4)
    assert openvino_misses(case)
    result = patch_model(case.model_path, tmp_path / "out", "2021.4", force=True, input_shapes=case.shapes)
    assert result.exit_code == 1 and not (tmp_path / "out" / "model.blob").exists()
    reasons = [r["reason"] for r in result.report["refusals"] if r["patcher"] == "rewrite" and r["layer"] == "Y"]
    assert reasons and "largest weighted corner term" in reasons[0]


def test_the_plugins_onnx_reader_loses_half_pixel(tmp_path):
    """Noted, not fixed: compiled straight, half_pixel (aligned_true) and output_half_pixel (aligned_false) give
    the same blob byte for byte; run by the interpreter, the straight half_pixel blob gives ONNX's
    output_half_pixel outputs, 0.36 off its own. The kit's patch keeps the shift (the test above)."""
    from kernelkit.myriad.compile import compile_model
    from kernelkit.runners.blob.runner import run_blob
    from kernelkit.runners.compare import compare_outputs

    _plugin_ready()
    blobs, cases = [], []
    for name in ("test_roialign_aligned_false", "test_roialign_aligned_true"):
        case = _case(name, tmp_path / name)
        compile_model(case.model_path, tmp_path / f"{name}.blob", graph_dump=False)
        blobs.append((tmp_path / f"{name}.blob").read_bytes())
        cases.append(case)
    assert blobs[0] == blobs[1]
    half = cases[1]
    got = list(run_blob(tmp_path / "test_roialign_aligned_true.blob", dict(zip(half.input_names, half.inputs)),
                        accumulator="fp32").outputs.values())
    assert all(c.passed for c in compare_outputs(got, cases[0].expected))
    assert not any(c.passed for c in compare_outputs(got, half.expected))
    assert np.abs(got[0] - half.expected[0]).max() > 0.3
