"""`kernelkit patch` takes the real plugin's verdict (kernelkit.doctor.confirm): it compiles its output by
default, exit 0 only when the plugin compiled it, a refusal named on the user's layer with the plugin's words,
the fixes the kit knows tried; `--no-compile` and a missing toolchain leave the knowledge base's verdict and
say so. Real plugin, real OpenVINO, ONNX's own node cases."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.core.paths import EXAMPLES_DIR
from kernelkit.model.patchdir import source_layer
from kernelkit.doctor.verify import verify
from kernelkit.ir.load import load_model
from kernelkit.model.blockers import find_blockers
from kernelkit.myriad.graph_dump import blob_stage_layers
from myriad_models import require_toolchain, save_ir

EXAMPLE = EXAMPLES_DIR / "blocked_model" / "model.onnx"


def _patch(capsys, *argv):
    code = main(["patch", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _report(folder):
    return json.loads((folder / "patch-report.json").read_text())


def test_patch_compiles_its_output_and_keeps_the_blob_and_the_stage_map(tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "out"
    code, printed, _ = _patch(capsys, EXAMPLE, "-o", out)
    assert code == 0
    assert "compiled by the real MYRIAD 2021.4 plugin: model.blob and model.graph.dot" in printed
    assert "no blocker left" not in printed
    report = _report(out)
    assert report["plugin"] == {"status": "compiled", "blob": "model.blob", "graph_dump": "model.graph.dot"}
    # every stage of the blob the plugin made from a patched layer leads back to the user's layer
    layers = blob_stage_layers(out / "model.blob")
    patched = {layer.name for layer in load_model(out / "model.xml").layers}
    seen = set()
    for found in layers:
        for layer in found:
            if layer.name in patched:
                seen.add(source_layer(report["changes"], layer.name)[:2])
    assert {("running_sum", "CumSum"), ("gate", "HardSigmoid")} <= seen


def _channel_mvn(folder):
    """MVN-6 over the channels alone: the knowledge base sees nothing wrong, the 2021.4 stage refuses it."""
    import openvino as ov
    from openvino import opset1, opset6

    x = opset1.parameter([1, 8, 16, 16], np.float32, name="x")
    y = opset6.mvn(x, opset1.constant(np.array([1], np.int64)), True, 1e-5, "outside_sqrt", name="channel_norm")
    return save_ir(ov.Model([opset1.relu(y, name="act")], [x], "channel_mvn"), folder / "channel_mvn.xml")


def test_a_refusal_of_a_layer_the_plan_left_alone_is_fixed_by_the_plugin_loop(tmp_path):
    """The knowledge base now holds this refusal (MVN over the channels alone, learnt from the plugin's words);
    a plan that leaves the layer alone (as a refusal the tables miss would) is fixed by the loop."""
    from kernelkit.doctor.confirm import confirm
    from kernelkit.model.patcher import patch_model

    require_toolchain()
    source = _channel_mvn(tmp_path)
    learnt = [b for b in find_blockers(load_model(source), "2021.4") if b.kind == "limit"]
    assert [b.layer_name for b in learnt] == ["channel_norm"] and "full batch supported" in learnt[0].source
    out = tmp_path / "out"
    result = patch_model(source, out, "2021.4", leave_alone={"channel_norm"})
    assert not [c for c in result.report["changes"] if c["layer"] == "channel_norm"]
    _, result = confirm(result, source, out, "2021.4", {})
    assert result.exit_code == 0
    plugin = _report(out)["plugin"]
    assert plugin["status"] == "compiled" and plugin["fix"].startswith("replace channel_norm (MVN)")
    assert "Only across channel, width and full batch supported" in plugin["reason"]
    assert plugin["tried"] == [{"fix": plugin["fix"], "status": "compiled"}]
    assert _report(out)["plugin_taught"]["replace"] == ["channel_norm"]
    assert (out / "model.blob").is_file() and (out / "model.graph.dot").is_file()
    assert not [p for p in tmp_path.iterdir() if "retry" in p.name], "a retry folder was left behind"
    assert verify(out).passed


def _node_case(name, folder):
    from kernelkit.harness.onnx_cases import node_cases, prepare

    op = {"test_dequantizelinear_blocked": "DequantizeLinear", "test_nllloss_NCd1d2": "NegativeLogLikelihoodLoss"}[name]
    case = next(c for _, c in node_cases({op}) if c.name == name)
    return prepare(case, folder)


@pytest.mark.parametrize("case, layer, words, located", [
    # (test_flatten_axis3 was the named example until its Reshape of the batch compiled one sample at a time)
    ("test_dequantizelinear_blocked", r"Reshape_\d+ \(Reshape\)", "types check error: output #0 has type U8", "named"),
    ("test_nllloss_NCd1d2", r"loss \(Squeeze\)", "UNSPECIFIED isn't supported", "bisection"),
])
def test_a_refusal_with_no_known_fix_names_the_layer_and_the_plugin_s_words(tmp_path, capsys, case, layer, words,
                                                                              located):
    require_toolchain()
    prepared = _node_case(case, tmp_path / "case")
    out = tmp_path / "out"
    shapes = [f"{n}={','.join(map(str, s))}" for n, s in prepared.shapes.items()]
    code, printed, _ = _patch(capsys, prepared.model_path, "-o", out,
                              *[a for s in shapes for a in ("--input-shape", s)])
    assert code == 1
    assert re.search(f"the real MYRIAD 2021.4 plugin refuses the patched model at {layer}:", printed)
    assert words in printed and "what to try:" in printed
    assert "no blocker left" not in printed
    plugin = _report(out)["plugin"]
    assert plugin["status"] == "refused" and re.fullmatch(layer, f"{plugin['layer']} ({plugin['layer_type']})")
    assert words in plugin["message"] and plugin["located_by"] == located
    assert not (out / "model.blob").exists()


def test_no_compile_leaves_the_knowledge_base_s_verdict(tmp_path, capsys):
    out = tmp_path / "out"
    code, printed, _ = _patch(capsys, EXAMPLE, "-o", out, "--no-compile")
    assert code == 0
    assert "not compiled: --no-compile: the verdict is the knowledge base's only" in printed
    assert _report(out)["plugin"]["status"] == "not-run"
    assert sorted(p.name for p in out.iterdir()) == ["compile.conf", "model.bin", "model.xml", "patch-report.json"]


def test_without_the_toolchain_the_verdict_is_the_knowledge_base_s_only(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(empty))
    out = tmp_path / "out"
    code, printed, _ = _patch(capsys, EXAMPLE, "-o", out)
    assert code == 0
    assert "no blocker left for this target (the knowledge base's verdict)" in printed
    assert "the verdict is the knowledge base's only; run `kernelkit toolchain setup`" in printed
    plugin = _report(out)["plugin"]
    assert plugin["status"] == "not-run" and "kernelkit toolchain setup" in plugin["reason"]
    assert not (out / "model.blob").exists()
    code, printed, err = _patch(capsys, EXAMPLE, "-o", tmp_path / "required", "--compile")
    assert code == 3 and "not provisioned" in err and "kernelkit toolchain setup" in err


def test_no_compile_and_compile_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["patch", str(EXAMPLE), "-o", str(tmp_path / "o"), "--compile", "--no-compile"])
    assert caught.value.code == 2


def test_the_api_patch_takes_the_plugin_s_verdict_when_asked(tmp_path):
    require_toolchain()
    import kernelkit

    source = _channel_mvn(tmp_path)
    plain = kernelkit.patch(source, tmp_path / "plain", "2021.4")
    assert plain.exit_code == 0 and "plugin" not in plain.report          # the tables see nothing wrong
    confirmed = kernelkit.patch(source, tmp_path / "confirmed", "2021.4", compile=True)
    assert confirmed.exit_code == 0 and confirmed.report["plugin"]["status"] == "compiled"
    assert [c.layer for c in confirmed.changes if c.patcher == "rewrite"] == ["channel_norm"]
    assert confirmed.outdir == tmp_path / "confirmed" and (confirmed.outdir / "model.blob").is_file()


def test_a_refusal_in_a_patch_folder_names_the_user_layer_behind_the_plugin_s_node(tmp_path, capsys):
    """The plugin names its own node (`Reshape_NN`, re-made by its nGraph passes); kernelkit finds the patched
    layer by bisection and, through the report's changes, the user's layer the patch made it from."""
    require_toolchain()
    out = tmp_path / "out"
    assert _patch(capsys, EXAMPLE, "-o", out, "--no-compile")[0] == 0
    xml = (out / "model.xml").read_text()
    # break what fc_as_conv made of the CumSum rewrite's MatMul: its 1x1 conv becomes a broadcasting FloorMod
    start = xml.index('name="running_sum/matmul/conv1x1"')
    data = xml.index("<data ", start)
    xml = xml[:data] + '<data auto_broadcast="numpy" />' + xml[xml.index("/>", data) + 2:]
    xml = xml.replace('name="running_sum/matmul/conv1x1" type="Convolution"',
                      'name="running_sum/matmul/conv1x1" type="FloorMod"')
    (out / "model.xml").write_text(xml)
    code = main(["compile", str(out), "-o", str(tmp_path / "x.blob")])
    err = capsys.readouterr().err
    assert code == 1
    assert "with friendly_name 'Reshape_" in err                     # the plugin's own node
    assert "layer \"running_sum/matmul\" (Reshape), which patch's fc_as_conv made from your layer " \
           "\"running_sum\" (CumSum)" in err
