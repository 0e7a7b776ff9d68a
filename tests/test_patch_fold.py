"""Fold patcher: constant-only layers (ONNX shape arithmetic) become the constants they compute."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kernelkit.model.blockers import find_blockers
from kernelkit.ir.load import load_model
from kernelkit.model.passes import fold
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target


def test_shape_arithmetic_folds_and_unblocks(tmp_path):
    # y = x + Range(0, x.shape[-1]): ShapeOf -> Gather-8 -> Range-4, all blockers for 2021.4 until folded.
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "last"], ["width"], axis=0),
             helper.make_node("Cast", ["width"], ["width_f"], to=TensorProto.FLOAT),
             helper.make_node("Range", ["zero", "width_f", "one"], ["ramp"]),
             helper.make_node("Add", ["x", "ramp"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.array(-1, np.int64), "last"),
                                           numpy_helper.from_array(np.array(0, np.float32), "zero"),
                                           numpy_helper.from_array(np.array(1, np.float32), "one")])
    path = tmp_path / "shape.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    model = load_model(path)
    assert {b.type for b in find_blockers(model, "2021.4") if b.kind != "ir-version"} & {"Range", "Gather"}
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    expected = run_openvino(model.to_xml_bytes(), model.bin_data, [x])[0]
    ctx = PatchContext(model, get_target("2021.4"))
    fold.apply(ctx)
    kinds = {l.type for l in model.layers}
    assert not kinds & {"ShapeOf", "Gather", "Range"}, kinds
    assert not [b for b in find_blockers(model, "2021.4") if b.kind != "ir-version"]
    np.testing.assert_array_equal(run_openvino(model.to_xml_bytes(), model.bin_data, [x])[0], expected)
    np.testing.assert_array_equal(expected, x + np.arange(5, dtype=np.float32))
    assert "Range" in {c.before.split("-")[0] for c in ctx.changes}


def test_decompression_converts_and_inputs_stay(tmp_path):
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([3], np.float32, name="x")
    y = ops.add(x, np.array([1, 2, 3], np.float32))
    ov.save_model(ov.Model([y], [x], "m"), str(tmp_path / "m.xml"), compress_to_fp16=True)
    model = load_model(tmp_path / "m.xml")
    before = [(l.type, l.name) for l in model.layers]
    ctx = PatchContext(model, get_target("2022.1"))
    fold.apply(ctx)
    assert [(l.type, l.name) for l in model.layers] == before and not ctx.changes
