"""`kernelkit patch` end to end: outputs, exit codes, never touching the input, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.kernel.bindings import myriad_read
from kernelkit.cli import main
from kernelkit.model.blockers import find_blockers
from kernelkit.ir.load import load_model
from kernelkit.core.paths import EXAMPLES_DIR
from kernelkit.myriad import toolchain

EXAMPLE = EXAMPLES_DIR / "blocked_model" / "model.onnx"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def patched_example(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "out"
    before = _digest(EXAMPLE)
    code = main(["patch", str(EXAMPLE), "-o", str(out), "--target", "2021.4"])
    assert _digest(EXAMPLE) == before, "patch modified its input"
    return code, out


@pytest.fixture(scope="module")
def kernel_example(tmp_path_factory):
    out = tmp_path_factory.mktemp("example_kernel") / "out"
    # --no-compile: the plugin's word on kernel bindings without clc (exit 4) is test_patch_myriad_compile's
    return main(["patch", str(EXAMPLE), "-o", str(out), "--target", "2021.4", "--prefer", "kernel",
                 "--no-compile"]), out


def test_example_patches_clean_for_2021_4(patched_example):
    code, out = patched_example
    assert code == 0
    # --prefer native (the default): CumSum's formulation is within its fp16 tolerance, so no kernel is bound;
    # where the toolchain runs, patch compiled the folder (the blob and the plugin's graph dump beside it).
    compiled = ["model.blob", "model.graph.dot"] if toolchain.locate().ready() else []
    assert sorted(p.name for p in out.iterdir()) == sorted(["compile.conf", "model.bin", "model.xml",
                                                            "patch-report.json"] + compiled)
    model = load_model(out / "model.xml")
    assert model.version == 10
    assert not find_blockers(model, "2021.4")
    assert "CumSum" not in {l.type for l in model.layers}


def test_example_with_prefer_kernel_binds_cumsum(kernel_example):
    code, out = kernel_example
    assert code == 0
    # Both ops with a library kernel get it: CumSum and HardSigmoid.
    assert sorted(p.name for p in out.iterdir()) == ["compile.conf", "cumsum.cl", "custom_layers.xml",
                                                      "hard_sigmoid_h.cl", "model.bin", "model.xml",
                                                      "patch-report.json"]
    model = load_model(out / "model.xml")
    assert not find_blockers(model, "2021.4", custom_types=["CumSum", "HardSigmoid"])
    # Without the bindings the layers would still block: the custom layers are what make it compile.
    assert sorted(b.type for b in find_blockers(model, "2021.4")) == ["CumSum", "HardSigmoid"]
    report = json.loads((out / "patch-report.json").read_text())
    bound = {b["type"]: b for b in report["custom_layers"]}
    assert (bound["CumSum"]["kernel"], bound["CumSum"]["layers"]) == ("cumsum", ["running_sum"])
    written = myriad_read.load(out / "custom_layers.xml")
    assert {layer.name for layer in written} == {"CumSum", "HardSigmoid"}
    assert len(written) == sum(b["alternatives"] for b in bound.values())
    [choice] = [c for c in report["choices"] if c["layer"] == "running_sum"]
    assert (choice["first"], choice["chosen"]) == ("kernel", "kernel") and "--prefer kernel" in choice["reason"]


def test_example_report_lists_every_change(patched_example):
    _, out = patched_example
    report = json.loads((out / "patch-report.json").read_text())
    assert report["ok"] and report["target"] == "2021.4" and not report["remaining_blockers"]
    by_layer = {c["layer"]: c for c in report["changes"]}
    assert by_layer["gate"]["patcher"] == "rewrite"
    assert by_layer["running_sum"]["patcher"] == "rewrite"
    assert by_layer["busy"]["patcher"] == "precision"
    assert {by_layer[n]["patcher"] for n in ("pool", "probs", "last_column")} == {"version"}
    assert report["source"]["model"] == str(EXAMPLE.resolve())
    assert report["prefer"] == "native" and report["custom_layers"] == []
    # The report names what was chosen and why, with the measured fp16 error.
    choices = {c["layer"]: c for c in report["choices"]}
    cumsum = choices["running_sum"]
    assert (cumsum["first"], cumsum["chosen"], cumsum["kernel_available"]) == ("native", "native", True)
    assert cumsum["within_tolerance"] is True and cumsum["fp16_error"]["ratio"] <= 1
    assert "fp16" in cumsum["reason"] and "tolerance" in cumsum["reason"]


def test_compile_conf_names_the_target_key(kernel_example, tmp_path):
    _, out = kernel_example
    lines = [l for l in (out / "compile.conf").read_text().splitlines() if l and not l.startswith("#")]
    assert "VPU_CUSTOM_LAYERS custom_layers.xml" in lines
    assert "MYRIAD_NUMBER_OF_SHAVES 6" in lines
    out22 = tmp_path / "o22"
    assert main(["patch", str(EXAMPLE), "-o", str(out22), "--target", "2022.1", "--shaves", "4",
                 "--prefer", "kernel"]) == 0
    text = (out22 / "compile.conf").read_text()
    assert "MYRIAD_CUSTOM_LAYERS custom_layers.xml" in text and "MYRIAD_NUMBER_OF_SHAVES 4" in text
    assert load_model(out22 / "model.xml").version == 11


def test_compile_conf_without_kernels_has_no_custom_layer_key(patched_example):
    _, out = patched_example
    assert "CUSTOM_LAYERS" not in (out / "compile.conf").read_text()


def test_legacy_output_names_survive(patched_example):
    _, out = patched_example
    model = load_model(out / "model.xml")
    producers = sorted(model.producer(r, r.inputs[0].id)[0].name for r in model.results())
    assert producers == ["last_column", "probs"]


def test_non_empty_outdir_is_refused_without_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["patch", str(EXAMPLE), "-o", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["patch", str(EXAMPLE), "-o", str(out), "--force"]) == 0
    assert not (out / "keep.txt").exists()


def test_remaining_blockers_exit_1(tmp_path, capsys):
    table = ops.parameter([5, 3], np.float32, name="table")
    bags = ov.opset3.embedding_bag_packed_sum(table, np.array([[0, 2], [4, 1]], np.int32))   # no kernel, no rewrite
    path = tmp_path / "bags.xml"
    ov.save_model(ov.Model([bags], [table], "bags"), str(path))
    out = tmp_path / "out"
    assert main(["patch", str(path), "-o", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "1 blocker(s) remain" in printed and "EmbeddingBagPackedSum" in printed
    report = json.loads((out / "patch-report.json").read_text())
    assert report["remaining_blockers"][0]["type"] == "EmbeddingBagPackedSum"


def test_old_prefer_values_mean_native(tmp_path):
    for value in ("rewrite", "auto"):
        out = tmp_path / value
        assert main(["patch", str(EXAMPLE), "-o", str(out), "--prefer", value, "--no-compile"]) == 0
        assert not (out / "custom_layers.xml").exists()
        types = {l.type for l in load_model(out / "model.xml").layers}
        report = json.loads((out / "patch-report.json").read_text())
        assert "CumSum" not in types and {c["chosen"] for c in report["choices"]} == {"native"}
        assert report["prefer"] == "native"


def test_unknown_prefer_is_a_clear_error(tmp_path):
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model.patcher import patch_model

    with pytest.raises(KernelkitError, match="native.*kernel.*fastest"):
        patch_model(EXAMPLE, tmp_path / "o", "2021.4", prefer="quickest")
    assert not (tmp_path / "o").exists()


def test_dynamic_input_needs_input_shape(tmp_path, capsys):
    x = ops.parameter([-1, 3], np.float32, name="x")
    path = tmp_path / "dyn.xml"
    ov.save_model(ov.Model([ops.relu(x)], [x], "dyn"), str(path))
    out = tmp_path / "out"
    assert main(["patch", str(path), "-o", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "dynamic-shape" in printed and "--input-shape" in printed
    assert main(["patch", str(path), "-o", str(out), "--force", "--input-shape", "x=2,3"]) == 0
    assert load_model(out / "model.xml").version == 10


BAD_IRS = {
    "malformed": b"<net name='x' version='11'><layers><layer id='0'",
    "entities": b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;&a;'>]>"
                b"<net name='&b;' version='11'><layers/></net>",
    "cycle": b"""<net name="c" version="11"><layers>
<layer id="0" name="a" type="Relu" version="opset1"><input><port id="0" precision="FP32"><dim>1</dim></port></input>
<output><port id="1" precision="FP32"><dim>1</dim></port></output></layer>
<layer id="1" name="b" type="Relu" version="opset1"><input><port id="0" precision="FP32"><dim>1</dim></port></input>
<output><port id="1" precision="FP32"><dim>1</dim></port></output></layer></layers>
<edges><edge from-layer="0" from-port="1" to-layer="1" to-port="0"/><edge from-layer="1" from-port="1" to-layer="0" to-port="0"/></edges></net>""",
    "short_bin": b"""<net name="s" version="11"><layers>
<layer id="0" name="w" type="Const" version="opset1"><data element_type="f32" shape="4" offset="0" size="16"/>
<output><port id="0" precision="FP32"><dim>4</dim></port></output></layer>
<layer id="1" name="r" type="Result" version="opset1"><input><port id="0" precision="FP32"><dim>4</dim></port></input></layer>
</layers><edges><edge from-layer="0" from-port="0" to-layer="1" to-port="0"/></edges></net>""",
}
BAD_IRS["unknown_opset"] = b"""<net name="v" version="11"><layers>
<layer id="0" name="x" type="Parameter" version="opset1"><data shape="2" element_type="f32"/><output><port id="0" precision="FP32"><dim>2</dim></port></output></layer>
<layer id="1" name="r" type="Relu" version="opset99"><input><port id="0" precision="FP32"><dim>2</dim></port></input><output><port id="1" precision="FP32"><dim>2</dim></port></output></layer>
<layer id="2" name="out" type="Result" version="opset1"><input><port id="0" precision="FP32"><dim>2</dim></port></input></layer>
</layers><edges><edge from-layer="0" from-port="0" to-layer="1" to-port="0"/><edge from-layer="1" from-port="1" to-layer="2" to-port="0"/></edges></net>"""
BAD_IRS["unknown_element_type"] = BAD_IRS["unknown_opset"].replace(b"opset99", b"opset1").replace(b'"f32"', b'"q7"')


@pytest.mark.parametrize("kind", sorted(BAD_IRS))
def test_bad_ir_exits_2_without_output(tmp_path, capsys, kind):
    path = tmp_path / "bad.xml"
    path.write_bytes(BAD_IRS[kind])
    path.with_suffix(".bin").write_bytes(b"\0" * 8)
    out = tmp_path / "out"
    assert main(["patch", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))            # no staging folder left behind


def test_output_inside_input_folder_over_model_is_refused(tmp_path, capsys):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    x = ops.parameter([2], np.float32, name="x")
    ov.save_model(ov.Model([ops.relu(x)], [x], "m"), str(model_dir / "model.xml"))
    assert main(["patch", str(model_dir / "model.xml"), "-o", str(model_dir), "--force"]) == 2
    assert "contains the input model" in capsys.readouterr().err
    assert (model_dir / "model.xml").is_file()


def test_bad_option_values_exit_2(tmp_path, capsys):
    assert main(["patch", str(EXAMPLE), "-o", str(tmp_path / "o"), "--mean", "a,b"]) == 2
    assert main(["patch", str(EXAMPLE), "-o", str(tmp_path / "o"), "--shaves", "17"]) == 2
    assert main(["patch", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_inspect_names_the_fix_patch_applies(capsys):
    assert main(["inspect", str(EXAMPLE), "--target", "2021.4", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    fixes = {(b["layer_name"], b["kind"]): b["fix"] for b in report["blockers"]}
    assert fixes[("", "ir-version")] == "write IR v10"
    assert fixes[("gate", "unsupported")].startswith("rewrite as Clamp")
    assert fixes[("running_sum", "unsupported")].startswith("rewrite as MatMul")
    assert "tolerance" in fixes[("running_sum", "unsupported")]
    assert fixes[("pool", "opset")] == "downgrade to MaxPool-1"
    assert fixes[("last_column", "opset")] == "downgrade to Gather-7"
    assert fixes[("busy", "precision")].startswith("insert Convert to float")
