"""ONNX attributes OpenVINO's frontend reads past (kernelkit.ir.onnx_import.DROPPED_ATTRIBUTES): the converted
model must compute what ONNX's own node test data says, on OpenVINO CPU and on the compiled blob."""

import pytest

from kernelkit.harness.onnx_cases import node_cases, openvino_misses, prepare
from myriad_models import require_toolchain

SPACE_TO_DEPTH = {case.name: case for _, case in node_cases({"SpaceToDepth"})}


@pytest.mark.parametrize("name", ["test_spacetodepth_crd_mode_example", "test_spacetodepth_dcr_mode_example",
                                  "test_spacetodepth_example"])
def test_space_to_depth_mode_survives_conversion(name, tmp_path):
    prepared = prepare(SPACE_TO_DEPTH[name], tmp_path)
    assert not openvino_misses(prepared)


def test_space_to_depth_crd_blob_matches_onnx(tmp_path):
    """Found by the truth survey: CRD was converted as DCR, and patch, compile and the blob check all agreed."""
    require_toolchain()
    import numpy as np

    from kernelkit.cli import main

    prepared = prepare(SPACE_TO_DEPTH["test_spacetodepth_crd_mode_example"], tmp_path / "case")
    np.savez(tmp_path / "in.npz", **{f"in{i}": a for i, a in enumerate(prepared.inputs)})
    np.savez(tmp_path / "exp.npz", **{f"out{i}": a for i, a in enumerate(prepared.expected)})
    out = tmp_path / "patched"
    assert main(["patch", str(prepared.model_path), "-o", str(out), "--target", "2021.4"]) == 0
    assert (out / "model.blob").is_file()          # the plugin compiled it, so verify checks the blob too
    assert main(["verify", str(out), "--inputs", str(tmp_path / "in.npz"),
                 "--expected", str(tmp_path / "exp.npz")]) == 0


def _patched_case(op: str, name: str, tmp_path):
    from kernelkit.cli import main

    case = next(c for _, c in node_cases({op}) if c.name == name)
    prepared = prepare(case, tmp_path / "case")
    import numpy as np

    np.savez(tmp_path / "in.npz", **{f"in{i}": a for i, a in enumerate(prepared.inputs)})
    out = tmp_path / "patched"
    assert main(["patch", str(prepared.model_path), "-o", str(out), "--target", "2021.4", "--no-compile"]) == 0
    return out, tmp_path / "in.npz"


def test_onnx_reference_sees_a_conversion_the_default_cannot(tmp_path, capsys):
    """OpenVINO converts this MaxPool (ceil mode, the last window starting in the padding) to a 2x2 output
    where ONNX says 1x1: against the original converted the same way, verify cannot see it; against onnx's
    reference evaluator it does."""
    from kernelkit.cli import main

    out, feed = _patched_case("MaxPool", "test_maxpool_2d_ceil_output_size_reduce_by_one", tmp_path)
    assert main(["verify", str(out), "--inputs", str(feed), "--no-blob"]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--inputs", str(feed), "--no-blob", "--onnx-reference"]) == 1
    text = capsys.readouterr().out
    assert "reference evaluator" in text and "shape" in text


def test_onnx_reference_passes_a_faithful_conversion(tmp_path):
    from kernelkit.cli import main

    out, feed = _patched_case("SpaceToDepth", "test_spacetodepth_crd_mode_example", tmp_path)
    assert main(["verify", str(out), "--inputs", str(feed), "--no-blob", "--onnx-reference"]) == 0
