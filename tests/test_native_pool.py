"""Pooling the 2021.4 plugin cannot take (dilations, AvgPool-16's rounding, 3-D average, MaxPool-8's
indices) as separable gather passes, and average pools excluding their padding as the pool counting it times a
constant map, against OpenVINO CPU's own pooling ops."""

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

RNG = np.random.default_rng(5)


def _patched(tmp_path, nodes, params):
    path = tmp_path / "pool.xml"
    ov.save_model(ov.Model(nodes, params, "pool"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if "Pool" in l.type]
    return original, model


def test_pooling_variants_match_openvino(tmp_path):
    x2 = ops.parameter([2, 3, 9, 8], np.float32, name="x2")
    x3 = ops.parameter([1, 2, 6, 7, 5], np.float32, name="x3")
    max8 = ov.opset8.max_pool(x2, [2, 1], [2, 2], [1, 0], [0, 1], [3, 2], "ceil", index_element_type="i64")
    nodes = [
        ov.opset14.avg_pool(x2, [2, 1], [1, 1], [1, 1], [3, 3], False, "ceil_torch").output(0),
        ov.opset16.avg_pool(x2, [1, 2], [1, 1], [0, 1], [2, 3], True, "floor", dilations=[2, 2]).output(0),
        ov.opset1.avg_pool(x3, [1, 2, 1], [0, 1, 0], [1, 0, 1], [2, 2, 3], True, "floor").output(0),
        ov.opset8.max_pool(x3, [1, 1, 2], [2, 1, 1], [0, 1, 0], [0, 0, 1], [2, 3, 2], "floor").output(0),
        max8.output(0), max8.output(1),
    ]
    original, patched = _patched(tmp_path, nodes, [x2, x3])
    data = [RNG.uniform(-1, 1, (2, 3, 9, 8)).astype(np.float32), RNG.uniform(-1, 1, (1, 2, 6, 7, 5)).astype(np.float32)]
    data[0][0, 0, :2, :2] = 0.5                          # ties: the first maximum's index must win
    for index, (got, want) in enumerate(zip(run_openvino(patched.to_xml_bytes(), patched.bin_data, data),
                                            run_openvino(original.to_xml_bytes(), original.bin_data, data))):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"output {index}")
    rounded = [round_fp16(a) for a in data]
    ideal = [round_fp16(a) for a in run_openvino(original.to_xml_bytes(), original.bin_data, rounded)]
    for got, want in zip(run_fp16(patched.to_xml_bytes(), patched.bin_data, rounded), ideal):
        assert compare(got, want).passed


def test_an_average_pool_excluding_its_padding_becomes_the_pool_counting_it_times_a_constant_map(tmp_path):
    """The form limits.toml's pads_excluded rule calls for (the device may divide border outputs by the whole
    kernel): one AvgPool counting the padding, one Multiply, and the values of the pool excluding it."""
    x4 = ops.parameter([1, 3, 7, 9], np.float32, name="x4")
    x3 = ops.parameter([2, 4, 11], np.float32, name="x3")
    nodes = [
        ov.opset1.avg_pool(x4, [1, 1], [2, 2], [2, 2], [3, 3], True, "floor").output(0),        # pads > k/2
        ov.opset1.avg_pool(x4, [2, 1], [0, 0], [0, 0], [3, 2], True, "floor", "same_lower").output(0),
        ov.opset1.avg_pool(x4, [1, 1], [0, 0], [0, 0], [3, 3], True, "floor", "same_upper").output(0),
        ov.opset1.avg_pool(x4, [2, 2], [1, 0], [0, 0], [3, 3], True, "ceil").output(0),         # past the end
        ov.opset14.avg_pool(x3, [2], [1], [1], [4], True, "ceil_torch").output(0),              # 1-D, AvgPool-14
    ]
    path = tmp_path / "pool.xml"
    ov.save_model(ov.Model(nodes, [x4, x3], "pool"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals
    pools = [l for l in model.layers if "Pool" in l.type]
    assert len(pools) == len(nodes) and all(l.attrs["exclude-pad"] == "false" and l.version == "opset1"
                                            for l in pools)
    assert sum(l.type == "Multiply" for l in model.layers) == len(nodes) and not [l for l in model.layers
                                                                                   if l.type == "Gather"]
    data = [RNG.uniform(0.5, 1.5, (1, 3, 7, 9)).astype(np.float32), RNG.uniform(0.5, 1.5, (2, 4, 11)).astype(np.float32)]
    for index, (got, want) in enumerate(zip(run_openvino(model.to_xml_bytes(), model.bin_data, data),
                                            run_openvino(original.to_xml_bytes(), original.bin_data, data))):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"output {index}")
