"""Einsum as Gather/ReduceSum/MatMul against OpenVINO CPU's Einsum-7, over the kinds of equation."""

from __future__ import annotations

import numpy as np
import openvino as ov

from kernelkit.ir.load import load_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(17)
CASES = [("ij,jk->ik", [(3, 4), (4, 5)]), ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]), ("...ii->...i", [(2, 3, 3)]),
         ("ii->", [(4, 4)]), ("i,i->", [(5,), (5,)]), ("ij->ji", [(3, 2)]), ("bij->b", [(2, 3, 4)]),
         ("ij,kj->ik", [(3, 4), (2, 4)]), ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 3)]),
         ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("i,j->ij", [(3,), (2,)]), ("bii,bi->b", [(2, 3, 3), (2, 3)])]


def test_einsum_equations(tmp_path):
    params, nodes, data = [], [], []
    for index, (equation, shapes) in enumerate(CASES):
        operands = [ov.opset1.parameter(list(s), np.float32, name=f"x{index}_{i}") for i, s in enumerate(shapes)]
        params += operands
        data += [RNG.uniform(-1, 1, s).astype(np.float32) for s in shapes]
        nodes.append(ov.opset7.einsum(operands, equation))
    path = tmp_path / "einsum.xml"
    ov.save_model(ov.Model(nodes, params, "einsum"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and "Einsum" not in {l.type for l in model.layers}
    for (equation, _), got, want in zip(CASES, run_openvino(model.to_xml_bytes(), model.bin_data, data),
                                        run_openvino(original.to_xml_bytes(), original.bin_data, data)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=equation)
