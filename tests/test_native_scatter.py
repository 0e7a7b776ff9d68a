"""Scatters with indices computed at run time, against OpenVINO CPU's ScatterNDUpdate-15 and
ScatterElementsUpdate-12 (duplicates, negative indices, every reduction)."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(9)


def _compare(tmp_path, nodes, params, inputs):
    path = tmp_path / "scatter.xml"
    ov.save_model(ov.Model(nodes, params, "scatter"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if l.type.startswith("ScatterND")
                                     or l.version == "opset12"]
    for got, want in zip(run_openvino(model.to_xml_bytes(), model.bin_data, inputs),
                         run_openvino(original.to_xml_bytes(), original.bin_data, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("reduction", ["none", "sum", "prod", "max", "min"])
def test_scatter_nd(tmp_path, reduction):
    data = ov.opset1.parameter([4, 3, 2], np.float32, name="data")
    index = ov.opset1.parameter([3, 2], np.int64, name="index")
    updates = ov.opset1.parameter([3, 2], np.float32, name="updates")
    node = ov.opset15.scatter_nd_update(data, index, updates, reduction)
    indices = np.array([[1, 2], [-1, 0], [1, 2]] if reduction != "none" else [[1, 2], [-1, 0], [0, 1]], np.int64)
    _compare(tmp_path, [node], [data, index, updates],
             [RNG.uniform(-1, 1, (4, 3, 2)).astype(np.float32), indices, RNG.uniform(-2, 2, (3, 2)).astype(np.float32)])


@pytest.mark.parametrize("reduction", ["sum", "prod", "max", "min"])
def test_scatter_elements_with_reduction(tmp_path, reduction):
    data = ov.opset1.parameter([3, 4], np.float32, name="data")
    index = ov.opset1.parameter([2, 3], np.int64, name="index")
    updates = ov.opset1.parameter([2, 3], np.float32, name="updates")
    node = ov.opset12.scatter_elements_update(data, index, updates, np.int64(1), reduction, True)
    _compare(tmp_path, [node], [data, index, updates],
             [RNG.uniform(-1, 1, (3, 4)).astype(np.float32), np.array([[0, 0, -1], [2, 1, 1]], np.int64),
              RNG.uniform(-2, 2, (2, 3)).astype(np.float32)])
