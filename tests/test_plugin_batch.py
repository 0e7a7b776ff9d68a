"""A network whose 4-D inputs share a batch N > 1, on the real OpenVINO 2021.4 MYRIAD plugin (skipped when
`kernelkit toolchain setup` has not provisioned it): the plugin compiles it one sample at a time and re-infers
every shape at batch 1, so a Reshape target the kit folded to constants must mean the same per sample, or the
network must be compiled at its batch. ONNX's LayerNormalization written out as primitive ops (the form older
PyTorch exports give it: Shape-computed targets, a Reshape to 2-D and back) compiles as the ONNX file is, and
must come out of `kernelkit patch` compiling and computing ONNX's expected outputs, in the IR and in the blob.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.doctor.confirm import confirm
from kernelkit.doctor.verify import verify
from kernelkit.harness.onnx_cases import node_cases, prepare
from kernelkit.model import patchdir
from kernelkit.model.patcher import patch_model
from kernelkit.myriad import toolchain
from kernelkit.myriad.blob_reader import read_blob
from kernelkit.myriad.compile import compile_model

pytestmark = pytest.mark.skipif(not toolchain.locate().ready(),
                                reason="legacy MYRIAD toolchain not provisioned (kernelkit toolchain setup)")

KEEP_BATCH = "MYRIAD_DETECT_NETWORK_BATCH"


def _prepared(name, folder):
    case = next(case for _, case in node_cases(None, expanded=True) if case.name == name)
    prepared = prepare(case, folder)
    inputs = folder / "in.npz"
    expected = folder / "exp.npz"
    np.savez(inputs, **{f"in{i}": a for i, a in enumerate(prepared.inputs)})
    np.savez(expected, **{f"out{i}": a for i, a in enumerate(prepared.expected)})
    return prepared, inputs, expected


def _patch(prepared, out):
    """`kernelkit patch` as the command runs it: the plugin confirms."""
    options = {"input_shapes": prepared.shapes}
    result = patch_model(prepared.model_path, out, "2021.4", force=True, **options)
    if result.exit_code == 0:
        _, result = confirm(result, prepared.model_path, out, "2021.4", options)
    return result


def _stages_and_bytes(blob):
    return read_blob(blob).counts()["stages"], blob.stat().st_size


def _passes_in_ir_and_blob(out, inputs, expected):
    result = verify(out, inputs=inputs, expected=expected)
    assert result.ir_passed and result.blob is not None and result.blob.not_run is None
    assert result.blob.passed, [(c.name, float(c.abs_error.max)) for c in result.blob.comparisons]


# Normalised over the last axis, or the last three: the batch stays the outermost factor of the 2-D tensor's
# first dimension ([2,3,4,5] -> [24,5]), which one sample at a time is [12,5].
@pytest.mark.parametrize("name", ["test_layer_normalization_default_axis_expanded",
                                  "test_layer_normalization_4d_axis3_expanded_ver18"])
def test_a_batch_merged_into_the_first_dimension_compiles_one_sample_at_a_time(tmp_path, name):
    prepared, inputs, expected = _prepared(name, tmp_path)
    result = _patch(prepared, tmp_path / "out")
    assert result.exit_code == 0, result.report.get("plugin")
    assert result.report["plugin"]["status"] == "compiled"
    assert KEEP_BATCH not in patchdir.read(tmp_path / "out").config
    assert "compile_options" not in result.report
    per_sample = [c for c in result.report["changes"] if c["patcher"] == "boundary"]
    assert per_sample and all("as -1" in c["after"] or "as 0" in c["after"] for c in per_sample)
    assert all(w["source"] for w in result.report["why"] if w["patcher"] == "boundary")
    _passes_in_ir_and_blob(tmp_path / "out", inputs, expected)
    # the _ver18 ONNX file's own Reshape is refused by the 2021.4 reader; the other compiles straight
    if not name.endswith("_ver18"):
        compile_model(prepared.model_path, tmp_path / "straight.blob", graph_dump=False)
        straight = _stages_and_bytes(tmp_path / "straight.blob")
        patched = _stages_and_bytes(tmp_path / "out" / "model.blob")
        assert patched[0] <= straight[0] and patched[1] <= straight[1], (straight, patched)


def test_a_normalisation_across_the_batch_is_compiled_at_its_batch(tmp_path):
    """Over axis 0 the 2-D tensor is [1, 120]: the batch leaves the first dimension, and one sample at a time the
    mean would be each sample's. The straight compile does just that (its blob computes something else); the
    patched network is compiled at batch 2 as written, and its blob computes ONNX's outputs."""
    prepared, inputs, expected = _prepared("test_layer_normalization_4d_axis0_expanded", tmp_path)
    result = _patch(prepared, tmp_path / "out")
    assert result.exit_code == 0, result.report.get("plugin")
    assert result.report["plugin"]["status"] == "compiled"
    assert patchdir.read(tmp_path / "out").config[KEEP_BATCH] == "NO"
    assert result.report["compile_options"] == {KEEP_BATCH: "NO"}
    assert read_blob(tmp_path / "out" / "model.blob").header.batch_size <= 1
    _passes_in_ir_and_blob(tmp_path / "out", inputs, expected)

    compile_model(prepared.model_path, tmp_path / "straight.blob", graph_dump=False)
    assert read_blob(tmp_path / "straight.blob").header.batch_size == 2
    straight = verify(tmp_path / "out", inputs=inputs, expected=expected, blob=tmp_path / "straight.blob")
    assert straight.ir_passed and not straight.blob.passed
