"""Bitwise ops in S32 arithmetic against OpenVINO CPU's BitwiseAnd/Or/Xor/Not-13, over the whole int32 range."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(13)


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint8])
def test_bitwise_ops(tmp_path, dtype):
    info = np.iinfo(dtype)
    a = ov.opset1.parameter([3, 5], dtype, name="a")
    b = ov.opset1.parameter([5], dtype, name="b")                  # broadcast
    nodes = [ov.opset13.bitwise_and(a, b), ov.opset13.bitwise_or(a, b), ov.opset13.bitwise_xor(a, b),
             ov.opset13.bitwise_not(a)]
    path = tmp_path / "bits.xml"
    ov.save_model(ov.Model(nodes, [a, b], "bits"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if l.type.startswith("Bitwise")]
    data = [RNG.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True),
            RNG.integers(info.min, info.max, (5,), dtype=dtype, endpoint=True)]
    data[0][0, :3] = [info.min, info.max, 0]
    for got, want in zip(run_openvino(model.to_xml_bytes(), model.bin_data, data),
                         run_openvino(original.to_xml_bytes(), original.bin_data, data)):
        np.testing.assert_array_equal(got, want)


def test_booleans_take_the_logical_ops(tmp_path):
    a = ov.opset1.parameter([4], np.bool_, name="a")
    b = ov.opset1.parameter([4], np.bool_, name="b")
    path = tmp_path / "bool.xml"
    ov.save_model(ov.Model([ov.opset13.bitwise_xor(a, b)], [a, b], "b"), str(path))
    model = load_model(path)
    rewrite.apply(PatchContext(model, get_target("2021.4")))
    assert "LogicalXor" in {l.type for l in model.layers}
