"""Op downgrades and the IR v11 -> v10 conversion, each checked on OpenVINO CPU against the original."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset1 as ops1
import openvino.opset8 as ops8
import openvino.opset11 as ops11
import openvino.opset12 as ops12
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.passes import version
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(1)
X = RNG.standard_normal((1, 3, 8, 10)).astype(np.float32)


def _save(tmp_path, outputs, params):
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model(outputs, params, "m"), str(path), compress_to_fp16=False)
    return load_model(path)


def _downgrade(tmp_path, outputs, inputs, target="2021.4", exact=True):
    model = _save(tmp_path, outputs, _PARAMS)
    expected = run_openvino(model.to_xml_bytes(), model.bin_data, inputs)
    ctx = PatchContext(model, get_target(target))
    version.apply(ctx)
    assert not ctx.refusals, ctx.refusals
    ceiling = ctx.target.opset_ceiling
    assert all((version.opset_number(l) or 0) <= ceiling for l in model.layers), model.layers
    patched = load_model(model.save(tmp_path / "patched.xml")[0])
    actual = run_openvino(patched.to_xml_bytes(), patched.bin_data, inputs)
    for a, e in zip(actual, expected):
        if exact:
            np.testing.assert_array_equal(a, e)
        else:
            np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)
    return patched, ctx


_PARAMS: list = []


@pytest.fixture(autouse=True)
def _param():
    _PARAMS.clear()
    p = ops1.parameter(list(X.shape), np.float32, name="x")
    _PARAMS.append(p)
    return p


def test_gather8_negative_indices(tmp_path):
    node = ops8.gather(_PARAMS[0], np.array([-1, 0, -3], np.int64), np.int64(3))
    patched, ctx = _downgrade(tmp_path, [node], [X])
    gather = next(l for l in patched.layers if l.type == "Gather")
    assert gather.version == "opset7"
    assert "[-1, 0, -3] -> [9, 0, 7]" in ctx.changes[0].after


def test_gather8_out_of_range_index_is_refused(tmp_path):
    node = ops8.gather(_PARAMS[0], np.array([-11], np.int64), np.int64(3))
    model = _save(tmp_path, [node], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "out of range" in ctx.refusals[0].reason


def test_gather8_stays_for_2022_1(tmp_path):
    model = _save(tmp_path, [ops8.gather(_PARAMS[0], np.array([-1], np.int64), np.int64(1))], _PARAMS)
    ctx = PatchContext(model, get_target("2022.1"))
    version.apply(ctx)
    assert not ctx.changes and next(l for l in model.layers if l.type == "Gather").version == "opset8"


def test_softmax8_axis(tmp_path):
    patched, _ = _downgrade(tmp_path, [ops8.softmax(_PARAMS[0], -1)], [X])
    softmax = next(l for l in patched.layers if l.type == "SoftMax")
    assert (softmax.version, softmax.attrs["axis"]) == ("opset1", "3")


def test_maxpool8(tmp_path):
    pool = ops8.max_pool(_PARAMS[0], [2, 2], [1, 1], [0, 0], [0, 0], [2, 2])
    pool.set_friendly_name("pool")
    patched, _ = _downgrade(tmp_path, [pool.output(0)], [X])
    layer = patched.find("pool")
    assert (layer.type, layer.version, len(layer.outputs)) == ("MaxPool", "opset1", 1)


def test_maxpool8_with_dilation_is_refused(tmp_path):
    pool = ops8.max_pool(_PARAMS[0], [1, 1], [2, 2], [0, 0], [0, 0], [2, 2])
    model = _save(tmp_path, [pool.output(0)], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "dilation" in ctx.refusals[0].reason


def test_maxpool8_with_used_indices_is_refused(tmp_path):
    pool = ops8.max_pool(_PARAMS[0], [2, 2], [1, 1], [0, 0], [0, 0], [2, 2])
    model = _save(tmp_path, [pool.output(0), pool.output(1)], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "indices output is used" in ctx.refusals[0].reason


@pytest.mark.parametrize("start,stop,step,axes", [
    ([1, 2], [3, -1], [1, 2], [1, 3]),
    ([-1], [-100], [-2], [2]),           # backwards to the first element
    ([0, 5], [10, 2], [1, -1], [0, 3]),
    ([2], [1000], [3], [-1]),
])
def test_slice8(tmp_path, start, stop, step, axes):
    node = ops8.slice(_PARAMS[0], np.array(start, np.int64), np.array(stop, np.int64),
                      np.array(step, np.int64), np.array(axes, np.int64))
    patched, _ = _downgrade(tmp_path, [node], [X])
    assert [l.type for l in patched.layers if l.type not in ("Parameter", "Result", "Const")] == ["StridedSlice"]


def test_slice8_on_a_dynamic_axis_is_refused_with_what_to_do(tmp_path):
    # fcos_resnet50_fpn: a Slice over a data-dependent length was a ValueError traceback.
    data = ops1.parameter([-1, 4], np.float32, name="boxes")
    node = ops8.slice(data, np.array([1], np.int64), np.array([3], np.int64), np.array([1], np.int64),
                      np.array([0], np.int64))
    model = _save(tmp_path, [node.output(0)], [data])
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "dynamic length" in ctx.refusals[0].reason and "--input-shape" in ctx.refusals[0].reason


@pytest.mark.parametrize("mode,calc", [("nearest", "sizes"), ("linear", "scales"), ("linear_onnx", "scales")])
def test_interpolate11(tmp_path, mode, calc):
    given = np.array([16, 15], np.int64) if calc == "sizes" else np.array([2.0, 1.5], np.float32)
    node = ops11.interpolate(_PARAMS[0], given, mode, calc, axes=np.array([2, 3], np.int64))
    patched, _ = _downgrade(tmp_path, [node], [X], target="2022.1", exact=False)
    assert next(l for l in patched.layers if l.type == "Interpolate").version == "opset4"


def test_topk11(tmp_path):
    node = ops11.topk(_PARAMS[0], np.int64(3), 3, "max", "value", "i32", stable=True)
    patched, ctx = _downgrade(tmp_path, [node.output(0), node.output(1)], [X])
    assert "stable=true dropped" in ctx.changes[0].after


def test_pad12(tmp_path):
    node = ops12.pad(_PARAMS[0], np.array([0, 0, 1, 2], np.int64), np.array([0, 0, 2, 0], np.int64), "reflect")
    _downgrade(tmp_path, [node], [X])


def test_pad12_negative_is_refused(tmp_path):
    node = ops12.pad(_PARAMS[0], np.array([0, 0, -1, 0], np.int64), np.array([0, 0, 0, 0], np.int64), "constant")
    model = _save(tmp_path, [node], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "negative" in ctx.refusals[0].reason


def test_op_without_older_version_is_refused(tmp_path):
    node = ov.opset9.softsign(_PARAMS[0])
    model = _save(tmp_path, [node], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "no older version of SoftSign" in ctx.refusals[0].reason


def test_ir_v10_conversion(tmp_path):
    relu = ops1.relu(_PARAMS[0])
    relu.set_friendly_name("relu0")
    model = _save(tmp_path, [relu], _PARAMS)
    assert model.version == 11 and b"rt_info" in model.to_xml_bytes()
    expected = run_openvino(model.to_xml_bytes(), model.bin_data, [X])
    ctx = PatchContext(model, get_target("2021.4"))
    version.to_ir_v10(ctx)
    xml = model.to_xml_bytes()
    assert model.version == 10 and b"rt_info" not in xml and b"output_names" not in xml
    np.testing.assert_array_equal(run_openvino(xml, model.bin_data, [X])[0], expected[0])


def test_ir_v10_refuses_dynamic_dims(tmp_path):
    p = ops1.parameter([-1, 3], np.float32, name="d")
    model = _save(tmp_path, [ops1.relu(p)], [p])
    ctx = PatchContext(model, get_target("2021.4"))
    assert version.to_ir_v10(ctx) is False
    assert model.version == 11 and "--input-shape" in ctx.refusals[0].reason


def test_onehot16_normalises_negative_indices(tmp_path):
    import openvino.opset16 as ops16

    idx = ops1.parameter([5], np.int64, name="idx")
    node = ops16.one_hot(idx, np.int64(4), np.float32(1), np.float32(0), -1, negative_indices_mode="normalize")
    model = _save(tmp_path, [node], [idx])
    data = np.array([0, -1, 3, -4, 2], np.int64)
    expected = run_openvino(model.to_xml_bytes(), model.bin_data, [data])
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "normalised" in ctx.changes[0].after
    assert next(l for l in model.layers if l.type == "OneHot").version == "opset1"
    np.testing.assert_array_equal(run_openvino(model.to_xml_bytes(), model.bin_data, [data])[0], expected[0])


def test_scatter_nd_update15(tmp_path):
    import openvino.opset15 as ops15

    indices = np.array([[0, 1], [0, 2]], np.int64)
    node = ops15.scatter_nd_update(_PARAMS[0], indices, np.ones((2, 8, 10), np.float32), "none")
    _downgrade(tmp_path, [node], [X])
    reduced = ops15.scatter_nd_update(_PARAMS[0], indices, np.ones((2, 8, 10), np.float32), "sum")
    model = _save(tmp_path, [reduced], _PARAMS)
    ctx = PatchContext(model, get_target("2021.4"))
    version.apply(ctx)
    assert "reduction=sum" in ctx.refusals[0].reason


def test_scatter_elements12_and_nms9(tmp_path):
    import openvino.opset9 as ops9

    update = ops12.scatter_elements_update(_PARAMS[0], np.zeros((1, 3, 8, 10), np.int64),
                                           np.ones((1, 3, 8, 10), np.float32), np.int64(2), "none")
    boxes = ops1.parameter([1, 4, 4], np.float32, name="boxes")
    scores = ops1.parameter([1, 1, 4], np.float32, name="scores")
    nms = ops9.non_max_suppression(boxes, scores, np.int64(2), np.float32(0.5), np.float32(0.0))
    _PARAMS.extend([boxes, scores])
    box_data = np.array([[[0, 0, 1, 1], [0, 0, 1, 1.1], [2, 2, 3, 3], [0, 0, 0.5, 0.5]]], np.float32)
    patched, ctx = _downgrade(tmp_path, [update.output(0), nms.output(0)],
                              [X, box_data, np.array([[[0.9, 0.8, 0.7, 0.6]]], np.float32)])
    assert {l.type: l.version for l in patched.layers if l.type in ("ScatterElementsUpdate", "NonMaxSuppression")} \
        == {"ScatterElementsUpdate": "opset3", "NonMaxSuppression": "opset5"}
