"""DFT-family formulations (constant cos/sin MatMuls) against OpenVINO CPU's DFT ops, f32 and fp16."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from kernelkit.runners.compare import compare
from kernelkit.runners.fp16_layers import round_fp16, run_fp16
from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(3)


def test_every_transform_matches_openvino(tmp_path):
    c = ops.parameter([2, 6, 5, 2], np.float32, name="c")        # complex [..., 2]
    r = ops.parameter([2, 6, 5], np.float32, name="r")
    axes01, axis1 = np.array([0, 1], np.int64), np.array([1], np.int64)
    nodes = [ov.opset7.dft(c, axes01), ov.opset7.idft(c, np.array([-1], np.int64)),
             ov.opset7.dft(c, axis1, np.array([8], np.int64)),          # zero-padded
             ov.opset7.idft(c, axes01, np.array([3, -1], np.int64)),     # trimmed
             ov.opset9.rdft(r, np.array([1, 2], np.int64)), ov.opset9.rdft(r, axis1, np.array([4], np.int64)),
             ov.opset9.irdft(c, np.array([1, 2], np.int64)), ov.opset9.irdft(c, axis1, np.array([9], np.int64))]
    path = tmp_path / "dft.xml"
    ov.save_model(ov.Model(nodes, [c, r], "dft"), str(path), compress_to_fp16=False)
    original, patched = load_model(path), load_model(path)
    ctx = PatchContext(patched, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in patched.layers if "DFT" in l.type]
    data = [RNG.uniform(-1, 1, (2, 6, 5, 2)).astype(np.float32), RNG.uniform(-1, 1, (2, 6, 5)).astype(np.float32)]
    expected = run_openvino(original.to_xml_bytes(), original.bin_data, data)
    for index, (got, want) in enumerate(zip(run_openvino(patched.to_xml_bytes(), patched.bin_data, data), expected)):
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=f"output {index}")
    rounded = [round_fp16(a) for a in data]
    ideal = [round_fp16(a) for a in run_openvino(original.to_xml_bytes(), original.bin_data, rounded)]
    # Sums of up to 12 unit-scale terms: fp16 tolerance relative to the transform's magnitude.
    for got, want in zip(run_fp16(patched.to_xml_bytes(), patched.bin_data, rounded), ideal):
        assert compare(got, want, atol=4e-3).passed
