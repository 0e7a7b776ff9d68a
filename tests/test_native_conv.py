"""Convolutions with weights fed at run time (the plugin wants constant ones) as per-tap Gather + MatMul,
against OpenVINO CPU's convolution ops."""

from __future__ import annotations

import numpy as np
import openvino as ov

from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(19)


def test_convolutions_with_input_weights(tmp_path):
    x = ov.opset1.parameter([2, 4, 7, 6], np.float32, name="x")
    w = ov.opset1.parameter([3, 4, 3, 2], np.float32, name="w")
    gw = ov.opset1.parameter([2, 3, 2, 2, 3], np.float32, name="gw")
    tw = ov.opset1.parameter([4, 3, 3, 3], np.float32, name="tw")
    gtw = ov.opset1.parameter([2, 2, 2, 2, 3], np.float32, name="gtw")
    x1 = ov.opset1.parameter([1, 2, 9], np.float32, name="x1")
    w1 = ov.opset1.parameter([5, 2, 3], np.float32, name="w1")
    nodes = [ov.opset1.convolution(x, w, [2, 1], [1, 0], [0, 1], [1, 2]),
             ov.opset1.group_convolution(x, gw, [1, 2], [1, 1], [1, 1], [2, 1]),
             ov.opset1.convolution_backprop_data(x, tw, [2, 2], pads_begin=[1, 0], pads_end=[0, 1], dilations=[1, 1],
                                                 output_padding=[1, 0]),
             ov.opset1.group_convolution_backprop_data(x, gtw, [1, 2], pads_begin=[0, 1], pads_end=[1, 0],
                                                       dilations=[2, 1]),
             ov.opset1.convolution(x1, w1, [2], [1], [1], [1])]
    params = [x, w, gw, tw, gtw, x1, w1]
    path = tmp_path / "conv.xml"
    ov.save_model(ov.Model(nodes, params, "conv"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if "Convolution" in l.type]
    data = [RNG.uniform(-1, 1, list(p.get_output_shape(0))).astype(np.float32) for p in params]
    for index, (got, want) in enumerate(zip(run_openvino(model.to_xml_bytes(), model.bin_data, data),
                                            run_openvino(original.to_xml_bytes(), original.bin_data, data))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"output {index}")


def test_auto_pad_same(tmp_path):
    x = ov.opset1.parameter([1, 2, 7, 6], np.float32, name="x")
    w = ov.opset1.parameter([3, 2, 3, 2], np.float32, name="w")
    nodes = [ov.opset1.convolution(x, w, [2, 2], [0, 0], [0, 0], [1, 1], auto_pad=mode)
             for mode in ("same_upper", "same_lower", "valid")]
    path = tmp_path / "auto.xml"
    ov.save_model(ov.Model(nodes, [x, w], "auto"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals
    data = [RNG.uniform(-1, 1, (1, 2, 7, 6)).astype(np.float32), RNG.uniform(-1, 1, (3, 2, 3, 2)).astype(np.float32)]
    for got, want in zip(run_openvino(model.to_xml_bytes(), model.bin_data, data),
                         run_openvino(original.to_xml_bytes(), original.bin_data, data)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
