"""fc_as_conv: a MatMul with constant weights over many rows becomes a 1x1 Convolution for MYRIAD 2021.4."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset8 as ops
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.patcher import patch_model
from kernelkit.doctor.verify import verify
from myriad_models import read_blob_with_depthai, require_toolchain

RNG = np.random.default_rng(7)


def _save(path, outputs, params):
    ov.save_model(ov.Model(outputs, params, "m"), str(path), compress_to_fp16=False)
    return path


def mlp(tmp_path, dims=(1, 8, 8, 16), hidden=24, transpose_b=False):
    """x [..., 16] @ W -> [..., 24] (a ConvNeXt/Swin MLP layer), W given as [16, 24] or, transposed, [24, 16]."""
    x = ops.parameter(list(dims), np.float32, name="x")
    w = (RNG.standard_normal((dims[-1], hidden)) * 0.2).astype(np.float32)
    y = ops.matmul(x, ops.constant(w.T.copy() if transpose_b else w), False, transpose_b)
    return _save(tmp_path / "mlp.xml", [ops.relu(y)], [x])


def layer_types(outdir):
    return [layer.type for layer in load_model(outdir / "model.xml").layers]


@pytest.mark.parametrize("dims, transpose_b", [((1, 8, 8, 16), False), ((4, 7, 16), True), ((10, 16), True)])
def test_matmul_over_rows_becomes_a_1x1_convolution_and_verifies(tmp_path, dims, transpose_b):
    out = tmp_path / "out"
    result = patch_model(mlp(tmp_path, dims, transpose_b=transpose_b), out, "2021.4")
    assert result.exit_code == 0
    types = layer_types(out)
    assert "MatMul" not in types and types.count("Convolution") == 1
    (change,) = [c for c in result.changes if c.patcher == "fc_as_conv"]
    rows = int(np.prod(dims[:-1]))
    assert f"instead of {rows} FullyConnected rows" in change.after
    checked = verify(out)                      # against the original on OpenVINO CPU, random inputs
    assert checked.passed, [c.reason for c in checked.comparisons]


def test_what_stays_a_matmul(tmp_path):
    # a single row (FullyConnected runs it once), computed weights (attention), a transposed activation
    x = ops.parameter([1, 16], np.float32, name="x")
    one_row = ops.matmul(x, ops.constant(RNG.standard_normal((16, 4)).astype(np.float32)), False, False)
    a = ops.parameter([1, 6, 16], np.float32, name="a")
    b = ops.parameter([1, 16, 5], np.float32, name="b")
    computed = ops.matmul(a, b, False, False)
    t = ops.parameter([1, 16, 6], np.float32, name="t")
    transposed = ops.matmul(t, ops.constant(RNG.standard_normal((16, 3)).astype(np.float32)), True, False)
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path / "m.xml", [one_row, computed, transposed], [x, a, b, t]), out, "2021.4")
    assert not [c for c in result.changes if c.patcher == "fc_as_conv"]
    assert layer_types(out).count("MatMul") == 3


def test_a_network_the_plugin_runs_per_sample_keeps_the_matmul(tmp_path):
    # every input 4-D with batch 2: the plugin compiles one sample, and the fixed reshapes do not fit there
    # (measured: it refuses the Reshape to [1, 16, 8, 16] of a [1, 8, 8, 16] sample)
    result = patch_model(mlp(tmp_path, (2, 8, 8, 16)), tmp_path / "out", "2021.4")
    assert not [c for c in result.changes if c.patcher == "fc_as_conv"]


def test_other_targets_keep_the_matmul(tmp_path):
    result = patch_model(mlp(tmp_path), tmp_path / "out", "2022.1")
    assert not [c for c in result.changes if c.patcher == "fc_as_conv"]


@pytest.mark.toolchain
def test_the_real_plugin_compiles_one_convolution_instead_of_a_stage_per_row(tmp_path, monkeypatch):
    from kernelkit.myriad import stages
    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.model import patcher

    require_toolchain()
    model = mlp(tmp_path)                       # 64 rows
    patched, straight = tmp_path / "patched", tmp_path / "straight"
    assert patch_model(model, patched, "2021.4").exit_code == 0
    # The same patch without this pass.
    monkeypatch.setattr(patcher, "PASSES", tuple(p for p in patcher.PASSES if p.name != "fc_as_conv"))
    assert patch_model(model, straight, "2021.4").exit_code == 0
    assert "MatMul" in layer_types(straight) and "MatMul" not in layer_types(patched)
    counts = {}
    for name, folder in (("conv", patched), ("fc", straight)):
        blob = tmp_path / f"{name}.blob"
        compile_folder(folder, blob)
        counts[name] = [s.type_name for s in stages.read_stages(blob.read_bytes())]
        assert read_blob_with_depthai(blob).stageCount == len(counts[name])
    # FullyConnected: one hardware stage per row; the convolution: a handful in all
    assert counts["fc"].count("MyriadXHwOp") == 64
    assert counts["conv"].count("MyriadXHwOp") < 8 and len(counts["conv"]) < 20
