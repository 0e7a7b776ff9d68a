"""`--output NAME`: a model ended at named tensors, as a detector is deployed without its postprocessing.

The reduced graph is the pattern of torchvision's detectors: heads computed on the VPU, then a data-dependent
postprocessing (NonZero on thresholded scores) that MYRIAD cannot run with a static shape."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kernelkit.cli import main
from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.ir.cut import cut_onnx, parse_outputs
from myriad_models import conv_relu, read_blob_with_depthai, require_toolchain

RNG = np.random.default_rng(11)
HEADS = ["scores", "boxes"]


def _branch(name, value):
    node = helper.make_node("Identity", [value], [f"{name}_out"], name=f"{name}_identity")
    return helper.make_graph([node], name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [])])


def detector(path):
    weights = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    box_weights = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w_cls"], ["logits"], pads=[1, 1, 1, 1], name="cls_conv"),
        helper.make_node("Sigmoid", ["logits"], ["scores"], name="cls_sigmoid"),
        helper.make_node("Conv", ["image", "w_box"], ["box_map"], pads=[1, 1, 1, 1], name="box_conv"),
        helper.make_node("Reshape", ["box_map", "box_shape"], ["boxes"], name="box_reshape"),
        # postprocessing: which scores pass the threshold (a data-dependent shape), and an If on whether
        # any did (torchvision's detectors branch on the number of boxes kept)
        helper.make_node("Greater", ["scores", "threshold"], ["passing"], name="threshold_test"),
        helper.make_node("NonZero", ["passing"], ["keep"], name="select"),
        helper.make_node("Cast", ["keep"], ["keep_f"], to=TensorProto.FLOAT, name="keep_cast"),
        helper.make_node("ReduceSum", ["keep_f"], ["kept"], keepdims=0, name="count"),
        helper.make_node("ReduceMax", ["scores"], ["best"], keepdims=0, name="best_score"),
        helper.make_node("Greater", ["best", "threshold"], ["any_passing"], name="any_test"),
        helper.make_node("If", ["any_passing"], ["result"], name="any_branch",
                         then_branch=_branch("then", "kept"), else_branch=_branch("else", "threshold")),
    ]
    initializers = [numpy_helper.from_array(weights, "w_cls"), numpy_helper.from_array(box_weights, "w_box"),
                    numpy_helper.from_array(np.array([1, 4, 2, 256], np.int64), "box_shape"),
                    numpy_helper.from_array(np.array(0.5, np.float32), "threshold")]
    graph = helper.make_graph(nodes, "detector", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                  [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("result", TensorProto.FLOAT, [])], initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cut_keeps_only_what_feeds_the_named_tensors(tmp_path):
    model = onnx.load(str(detector(tmp_path / "det.onnx")))
    cut = cut_onnx(model, HEADS)
    assert [o.name for o in cut.graph.output] == HEADS
    assert {n.name for n in cut.graph.node} == {"cls_conv", "cls_sigmoid", "box_conv", "box_reshape"}
    assert {t.name for t in cut.graph.initializer} == {"w_cls", "w_box", "box_shape"}
    onnx.checker.check_model(cut)
    assert len(model.graph.node) == 11                     # the input model is not changed


def test_inspect_of_the_cut_model_has_no_data_dependent_blocker(tmp_path, capsys):
    path = detector(tmp_path / "det.onnx")
    code, whole, _ = run_cli(capsys, "inspect", path, "--target", "2021.4", "--json")
    assert '"If"' in whole         # (NonZero's count has its bound, 4 * 16 * 16: it blocks nothing)
    code, cut, _ = run_cli(capsys, "inspect", path, "--target", "2021.4", "--json", "--output", "scores,boxes")
    assert "NonZero" not in cut and '"If"' not in cut


def test_patch_and_verify_cut_the_original_at_the_same_tensors(tmp_path, capsys):
    path = detector(tmp_path / "det.onnx")
    out = tmp_path / "patched"
    code, _, err = run_cli(capsys, "patch", path, "-o", out, "--target", "2021.4", "--output", "scores",
                           "--output", "boxes")
    assert code == 0, err
    report = json.loads((out / "patch-report.json").read_text())
    assert report["source"]["outputs"] == HEADS
    patched = load_model(out / "model.xml")
    assert [r.inputs[0].dims for r in patched.results()] == [[1, 4, 16, 16], [1, 4, 2, 256]]
    assert not {"NonZero", "Greater", "ReduceSum", "If"} & {layer.type for layer in patched.layers}
    code, printed, err = run_cli(capsys, "verify", out, "--reference", path, "--json")
    assert code == 0, printed + err
    result = json.loads(printed)
    assert len(result["outputs"]) == 2 and all(c["passed"] for c in result["outputs"])


def test_a_name_that_is_no_tensor_gets_the_close_ones(tmp_path, capsys):
    path = detector(tmp_path / "det.onnx")
    code, _, err = run_cli(capsys, "patch", path, "-o", tmp_path / "out", "--output", "score")
    assert code == 2 and "--output names 'score'" in err and "did you mean: scores" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(KernelkitError, match="names no tensor"):
        parse_outputs(["scores,,boxes"])


def test_an_ir_is_cut_at_a_layer_or_tensor_name(tmp_path, capsys):
    xml = conv_relu(tmp_path, "convrelu")
    model = load_model(xml, outputs=["conv"])
    assert [layer.type for layer in model.topological_order()] == ["Parameter", "Const", "Convolution", "Result"]
    out = tmp_path / "patched"
    code, _, err = run_cli(capsys, "patch", xml, "-o", out, "--output", "conv")
    assert code == 0, err
    code, printed, err = run_cli(capsys, "verify", out, "--reference", xml, "--json")
    assert code == 0, printed + err
    code, _, err = run_cli(capsys, "inspect", xml, "--output", "conv:7")
    assert code == 2 and "layer 'conv' has 1 outputs" in err


@pytest.mark.toolchain
def test_the_cut_detector_compiles_on_the_real_plugin_with_its_heads_as_outputs(tmp_path, capsys):
    require_toolchain()
    path = detector(tmp_path / "det.onnx")
    code, _, err = run_cli(capsys, "compile", path, "-o", tmp_path / "whole.blob")
    assert code != 0 and "If" in err                      # the whole model: MYRIAD has no If
    code, printed, _ = run_cli(capsys, "patch", path, "-o", tmp_path / "whole", "--compile")
    assert code == 1 and "If" in printed                  # the patch leaves it: no patcher removes a dynamic If
    out = tmp_path / "patched"
    code, _, err = run_cli(capsys, "patch", path, "-o", out, "--output", "scores,boxes", "--compile")
    assert code == 0, err
    blob = read_blob_with_depthai(out / "model.blob")
    assert sorted(blob.networkOutputs) == sorted(HEADS)
