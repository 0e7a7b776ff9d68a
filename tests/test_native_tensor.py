"""Native formulations of tensor ops (ReduceProd, GridSample): the original op on OpenVINO CPU f32 against
the formulation, in f32 and with fp16 rounding between layers (kernelkit.runners.fp16_layers)."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.runners.compare import compare
from kernelkit.runners.fp16_layers import round_fp16, run_fp16
from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(7)


def _before_after(tmp_path, outputs, params, gone):
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model(outputs, params, "m"), str(path), compress_to_fp16=False)
    original = load_model(path)
    model = load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    before = {(l.type.lower(), l.version) for l in original.layers}
    rewrite.apply(ctx)
    assert not ctx.refusals
    assert not [l for l in model.layers if l.type.lower() == gone and (l.type.lower(), l.version) in before]
    return original, model, ctx


def _run(model, inputs):
    return run_openvino(model.to_xml_bytes(), model.bin_data, inputs)


@pytest.mark.parametrize("axes,keep", [([1], True), ([0, 2], False), ([0, 1, 2], False), ([2], False)])
def test_reduce_prod(tmp_path, axes, keep):
    x = ops.parameter([3, 5, 7], np.float32, name="x")
    data = RNG.uniform(0.5, 1.6, (3, 5, 7)).astype(np.float32) * RNG.choice([-1, 1], (3, 5, 7))
    original, patched, _ = _before_after(tmp_path, [ops.reduce_prod(x, np.array(axes, np.int64), keep)], [x],
                                         "reduceprod")
    expected = _run(original, [data])[0]
    got = _run(patched, [data])[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    rounded = round_fp16(data)
    ideal = round_fp16(_run(original, [rounded])[0])
    assert compare(run_fp16(patched.to_xml_bytes(), patched.bin_data, [rounded])[0], ideal).passed


def _grid_sample(tmp_path, h, w, grid_shape, attrs, low=-1.1, high=1.1):
    x = ops.parameter([1, 2, h, w], np.float32, name="x")
    g = ops.parameter(grid_shape, np.float32, name="g")
    node = ov.opset9.grid_sample(x, g, attrs)
    data = [RNG.uniform(-1, 1, (1, 2, h, w)).astype(np.float32), RNG.uniform(low, high, grid_shape).astype(np.float32)]
    return _before_after(tmp_path, [node], [x, g], "gridsample"), data


def test_grid_sample_matches_openvino(tmp_path):
    # Every mode and padding once, half of them with align_corners, as branches of one model.
    x = ops.parameter([1, 2, 5, 4], np.float32, name="x")
    g = ops.parameter([1, 3, 6, 2], np.float32, name="g")
    combos = [("bilinear", "zeros", False), ("bilinear", "reflection", True), ("bicubic", "border", False),
              ("bicubic", "reflection", False), ("bicubic", "zeros", True), ("nearest", "border", True),
              ("nearest", "reflection", False), ("bilinear", "border", True)]
    nodes = [ov.opset9.grid_sample(x, g, {"mode": m, "padding_mode": p, "align_corners": a}) for m, p, a in combos]
    original, patched, _ = _before_after(tmp_path, nodes, [x, g], "gridsample")
    data = [RNG.uniform(-1, 1, (1, 2, 5, 4)).astype(np.float32), RNG.uniform(-1.4, 1.4, (1, 3, 6, 2)).astype(np.float32)]
    for combo, got, expected in zip(combos, _run(patched, data), _run(original, data)):
        np.testing.assert_allclose(got, expected, atol=2e-6, err_msg=str(combo))


def test_grid_sample_in_fp16_on_a_large_image(tmp_path):
    # 96 pixels: a plain fp16 coordinate would have a 1/32 resolution; the split keeps the weights exact.
    (original, patched, _), data = _grid_sample(tmp_path, 96, 80, [1, 12, 10, 2],
                                                {"mode": "bilinear", "padding_mode": "reflection",
                                                 "align_corners": False}, low=-1.15, high=1.15)
    rounded = [round_fp16(a) for a in data]
    ideal = round_fp16(_run(original, rounded)[0])
    assert compare(run_fp16(patched.to_xml_bytes(), patched.bin_data, rounded)[0], ideal).passed


def test_grid_sample_refuses_images_beyond_the_fp16_limit(tmp_path):
    x = ops.parameter([1, 1, 4, 200], np.float32, name="x")
    g = ops.parameter([1, 2, 2, 2], np.float32, name="g")
    path = tmp_path / "big.xml"
    ov.save_model(ov.Model([ov.opset9.grid_sample(x, g, {})], [x, g], "big"), str(path))
    ctx = PatchContext(load_model(path), get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.changes and "128" in ctx.refusals[0].reason


def test_col2im_matches_openvino(tmp_path):
    a = ops.parameter([2, 8, 25], np.float32, name="a")
    b = ops.parameter([1, 4, 9], np.float32, name="b")
    nodes = [ov.opset15.col2im(a, np.array([5, 6], np.int64), np.array([2, 2], np.int64), [1, 1], [1, 2],
                               [0, 1], [1, 0]),
             ov.opset15.col2im(b, np.array([4, 4], np.int64), np.array([2, 2], np.int64), [1, 1])]
    original, patched, _ = _before_after(tmp_path, nodes, [a, b], "col2im")
    data = [RNG.uniform(-1, 1, (2, 8, 25)).astype(np.float32), RNG.uniform(-1, 1, (1, 4, 9)).astype(np.float32)]
    for got, want in zip(_run(patched, data), _run(original, data)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_gather_nd_8_with_batch_dims(tmp_path):
    data = ops.parameter([2, 3, 4], np.float32, name="data")
    index = ops.parameter([2, 2, 1], np.int32, name="index")
    original, patched, _ = _before_after(tmp_path, [ov.opset8.gather_nd(data, index, 1)], [data, index], "gathernd")
    inputs = [RNG.uniform(-1, 1, (2, 3, 4)).astype(np.float32), np.array([[[2], [0]], [[1], [1]]], np.int32)]
    np.testing.assert_array_equal(_run(patched, inputs)[0], _run(original, inputs)[0])


def test_group_normalization(tmp_path):
    x = ops.parameter([2, 6, 3, 5], np.float32, name="x")
    scale, bias = RNG.uniform(0.5, 2, 6).astype(np.float32), RNG.uniform(-1, 1, 6).astype(np.float32)
    node = ov.opset12.group_normalization(x, scale, bias, 3, 1e-4)
    original, patched, _ = _before_after(tmp_path, [node], [x], "groupnormalization")
    data = RNG.uniform(-3, 3, (2, 6, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(_run(patched, [data])[0], _run(original, [data])[0], rtol=1e-5, atol=1e-5)
    rounded = round_fp16(data)
    assert compare(run_fp16(patched.to_xml_bytes(), patched.bin_data, [rounded])[0],
                   round_fp16(_run(original, [rounded])[0])).passed


@pytest.mark.parametrize("aligned,mode", [("asymmetric", "avg"), ("half_pixel_for_nn", "avg"), ("half_pixel", "avg"),
                                          ("asymmetric", "max"), ("half_pixel_for_nn", "max")])
def test_roi_align_9(tmp_path, aligned, mode):
    x = ops.parameter([1, 2, 10, 12], np.float32, name="x")
    rois = ops.parameter([3, 4], np.float32, name="rois")
    node = ov.opset9.roi_align(x, rois, np.zeros(3, np.int32), 3, 4, 2, 0.5, mode, aligned)
    original, patched, _ = _before_after(tmp_path, [node], [x, rois], "roialign")
    data = [RNG.uniform(-1, 1, (1, 2, 10, 12)).astype(np.float32),
            np.array([[2, 3, 15, 17], [0, 0, 23, 19], [5, 1, 9, 12]], np.float32)]
    np.testing.assert_allclose(_run(patched, data)[0], _run(original, data)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sizes,transform,antialias", [([9, 14], "half_pixel", False), ([4, 3], "align_corners", False),
                                                       ([9, 14], "half_pixel", True)])
def test_cubic_interpolate_as_matmuls(tmp_path, sizes, transform, antialias):
    x = ops.parameter([1, 2, 7, 6], np.float32, name="x")
    node = ov.opset11.interpolate(x, np.array(sizes, np.int64), "cubic", "sizes",
                                  coordinate_transformation_mode=transform, antialias=antialias,
                                  axes=np.array([2, 3], np.int64))
    original, patched, _ = _before_after(tmp_path, [node], [x], "interpolate")
    data = RNG.uniform(-1, 1, (1, 2, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(_run(patched, [data])[0], _run(original, [data])[0], rtol=1e-5, atol=1e-6)


def test_roll_reduce_or_and_bucketize(tmp_path):
    x = ops.parameter([3, 4, 5], np.float32, name="x")
    b = ops.parameter([3, 4], np.bool_, name="b")
    nodes = [ov.opset7.roll(x, np.array([2, -1, 7], np.int64), np.array([1, 2, 1], np.int64)),
             ov.opset1.reduce_logical_or(b, np.array([1], np.int64), True),
             ov.opset3.bucketize(x, np.array([-0.5, 0.0, 0.25, 0.8], np.float32), "i32", True),
             ov.opset3.bucketize(x, np.array([-0.5, 0.0, 0.25, 0.8], np.float32), "i64", False)]
    original, patched, _ = _before_after(tmp_path, nodes, [x, b], "roll")
    for kind in ("reducelogicalor", "bucketize"):
        assert not [l for l in patched.layers if l.type.lower() == kind]
    data = [np.round(RNG.uniform(-1, 1, (3, 4, 5)) * 4).astype(np.float32) / 4, RNG.uniform(0, 1, (3, 4)) > 0.7]
    for got, want in zip(_run(patched, data), _run(original, data)):
        np.testing.assert_array_equal(got, want)
