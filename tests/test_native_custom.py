"""Formulations of the kernel library's own layer types (no OpenVINO op), against the numpy reference of the
kernel that binds each type: f32 on OpenVINO CPU, and fp16 between layers."""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.runners.compare import compare
from kernelkit.runners.fp16_layers import round_fp16, run_fp16
from kernelkit.ir.load import load_model
from kernelkit.harness.custom_ops import one_layer_ir, reference
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(23)
CASES = [
    ("Trilu", {"upper": 1, "k": 1}, [[2, 3, 5, 7]], [2, 3, 5, 7]),
    ("Trilu", {"upper": 0, "k": -2}, [[6, 4]], [6, 4]),
    ("Hardmax", {"axis": 1}, [[2, 6, 3, 4]], [2, 6, 3, 4]),
    ("Hardmax", {"axis": -1}, [[3, 9]], [3, 9]),
    ("LayerNormalization", {"axis": -2, "epsilon": 1e-5}, [[2, 3, 4, 6], [4, 6], [4, 6]], [2, 3, 4, 6]),
    ("AffineGrid", {"size": [2, 3, 5, 7], "align_corners": 0}, [[2, 2, 3]], [2, 5, 7, 2]),
    ("AffineGrid", {"size": [1, 1, 4, 6], "align_corners": 1}, [[1, 2, 3]], [1, 4, 6, 2]),
    ("Det", {}, [[4, 3, 3]], [4]),
    ("Det", {}, [[2, 5, 2, 2]], [2, 5]),
]


@pytest.mark.parametrize("layer_type,attrs,shapes,out_shape", CASES, ids=[f"{c[0]}{i}" for i, c in enumerate(CASES)])
def test_custom_type_formulation(tmp_path, layer_type, attrs, shapes, out_shape):
    model = load_model(one_layer_ir(tmp_path / "m.xml", layer_type, attrs, shapes, out_shape))
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and layer_type not in {l.type for l in model.layers}
    data = [RNG.uniform(-1, 1, s).astype(np.float32) for s in shapes]
    if layer_type == "Hardmax":
        data[0][0, :2] = 0.75                    # ties: the first maximum wins
    want = reference(layer_type, data, attrs)
    got = run_openvino(model.to_xml_bytes(), model.bin_data, data)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    rounded = [round_fp16(a) for a in data]
    assert compare(run_fp16(model.to_xml_bytes(), model.bin_data, rounded)[0],
                   round_fp16(reference(layer_type, rounded, attrs).astype(np.float32))).passed


def test_det_beyond_3x3_stays_with_the_kernel(tmp_path):
    model = load_model(one_layer_ir(tmp_path / "d.xml", "Det", {}, [[2, 4, 4]], [2]))
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.changes and "pivoting" in ctx.refusals[0].reason
