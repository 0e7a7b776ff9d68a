"""kernelkit.model.blockers.find_blockers and `kernelkit inspect` on models written by OpenVINO itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset1 as o1
import openvino.opset3 as o3
import openvino.opset8 as o8
import openvino.opset10 as o10
import openvino.opset11 as o11
import openvino.opset13 as o13
import pytest

from kernelkit.cli import main
from kernelkit.core.paths import EXAMPLES_DIR
from kernelkit.model.blockers import find_blockers
from kernelkit.ir.load import load_model


def _named(node, name):
    node.set_friendly_name(name)
    return node


def _ir(tmp_path: Path, outputs, params, *, v10: bool = False, name: str = "m") -> Path:
    model = ov.Model([o13.result(o) for o in outputs], params, name)
    path = tmp_path / f"{name}.xml"
    if v10:
        model.set_rt_info(10, "version")
        ov.serialize(model, str(path), version="IR_V10")
    else:
        ov.save_model(model, str(path), compress_to_fp16=False)
    return path


def _kinds(path: Path, target: str, **kwargs) -> set[tuple[str, str]]:
    """(layer name, kind) of every blocker except the model-level IR-version one."""
    return {(b.layer_name, b.kind) for b in find_blockers(load_model(path), target, **kwargs) if b.layer_id}


def test_seed_case_comparison_fed_by_int32_is_a_precision_blocker(tmp_path):
    x = o13.parameter([1, 4], np.float32, name="x")
    as_int = _named(o13.convert(x, "i32"), "to_int")
    greater = _named(o13.greater(as_int, o13.constant(np.array([[1, 2, 3, 4]], np.int32))), "gt")
    path = _ir(tmp_path, [greater], [x])
    blockers = [b for b in find_blockers(load_model(path), "2022.1") if b.kind == "precision"]
    assert [(b.layer_name, b.details["port"], b.details["found"]) for b in blockers] == [("gt", "0", "S32"),
                                                                                          ("gt", "1", "S32")]
    assert "openvino#16105" in blockers[0].source
    assert "'to_int'" in blockers[0].reason
    # The same comparison on float inputs is fine.
    y = o13.parameter([1, 4], np.float32, name="y")
    clean = _ir(tmp_path, [_named(o13.greater(y, o13.constant(np.ones((1, 4), np.float32))), "gt")], [y], name="f")
    assert _kinds(clean, "2022.1") == set()


def test_int32_add_and_subtract_are_accepted_but_power_is_not(tmp_path):
    x = o13.parameter([4], np.int32, name="x")
    add = _named(o13.add(x, o13.constant(np.ones(4, np.int32))), "add")
    sub = _named(o13.subtract(add, o13.constant(np.ones(4, np.int32))), "sub")
    power = _named(o13.power(sub, o13.constant(np.full(4, 2, np.int32))), "pow")
    for target in ("2021.4", "2022.3"):
        assert _kinds(_ir(tmp_path, [power], [x], v10=True), target) == {("pow", "precision")}


def test_2021_4_follows_the_real_plugin_verdicts(tmp_path):
    x = o13.parameter([1, 4], np.float32, name="x")
    path = _ir(tmp_path, [_named(o13.abs(x), "abs")], [x], v10=True)
    blockers = find_blockers(load_model(path), "2021.4")
    assert [(b.layer_name, b.kind) for b in blockers] == [("abs", "unsupported")]
    assert blockers[0].source.startswith("plugin verdict: Abs-1 (f16) refused")
    assert find_blockers(load_model(path), "2022.1") == []
    x = o13.parameter([1, 4], np.float32, name="x")
    as_int = o13.convert(x, "i32")
    gt = _named(o13.greater(as_int, o13.constant(np.zeros((1, 4), np.int32))), "gt")
    first = find_blockers(load_model(_ir(tmp_path, [gt], [x], v10=True, name="gt")), "2021.4")[0]
    assert first.kind == "precision" and first.source.startswith("plugin verdict: Greater-1 (i32) refused")


def test_ir_v11_blocks_2021_4_only(tmp_path):
    x = o13.parameter([1, 3], np.float32, name="x")
    v11 = _ir(tmp_path, [_named(o13.relu(x), "r")], [x], name="v11")
    kinds = [b.kind for b in find_blockers(load_model(v11), "2021.4")]
    assert kinds == ["ir-version"]
    assert find_blockers(load_model(v11), "2022.1") == []
    x = o13.parameter([1, 3], np.float32, name="x")
    v10 = _ir(tmp_path, [_named(o13.relu(x), "r")], [x], v10=True, name="v10")
    assert load_model(v10).version == 10
    assert find_blockers(load_model(v10), "2021.4") == []


def test_gather8_needs_2022(tmp_path):
    x = o13.parameter([5, 3], np.float32, name="x")
    gather = _named(o8.gather(x, o13.constant(np.array([0, -1], np.int32)), o13.constant(np.int64(0))), "g")
    path = _ir(tmp_path, [gather], [x], v10=True)
    assert load_model(path).find("g").version == "opset8"
    blockers = find_blockers(load_model(path), "2021.4")
    assert [(b.layer_name, b.kind) for b in blockers] == [("g", "opset")]
    assert "opset7" in blockers[0].reason
    assert _kinds(path, "2022.1") == set()


def test_gather_axis_from_a_parameter_is_a_limit(tmp_path):
    x = o13.parameter([5, 3], np.float32, name="x")
    axis = o13.parameter([], np.int64, name="axis")
    gather = _named(o8.gather(x, o13.constant(np.array([0, 1], np.int32)), axis), "g")
    assert ("g", "limit") in _kinds(_ir(tmp_path, [gather], [x, axis]), "2022.1")


def test_interpolate_modes(tmp_path):
    def build(mode, name):
        x = o13.parameter([1, 3, 4, 4], np.float32, name="x")
        node = o10.interpolate(x, o13.constant(np.array([8, 8], np.int64)), o13.constant(np.array([2.0, 2.0], np.float32)),
                               mode, "sizes", axes=o13.constant(np.array([2, 3], np.int64)))
        return _ir(tmp_path, [_named(node, "resize")], [x], name=name)

    cubic = find_blockers(load_model(build("cubic", "cubic")), "2022.3")
    assert [(b.layer_name, b.kind) for b in cubic] == [("resize", "limit")]
    assert "mode=cubic" in cubic[0].reason and "openvino#25628" in cubic[0].source
    assert _kinds(build("nearest", "nearest"), "2022.3") == set()


def test_interpolate11_is_newer_than_every_target(tmp_path):
    x = o13.parameter([1, 3, 4, 4], np.float32, name="x")
    node = _named(o11.interpolate(x, o13.constant(np.array([2.0, 2.0], np.float32)), "nearest", "scales",
                                  axes=o13.constant(np.array([2, 3], np.int64))), "resize")
    path = _ir(tmp_path, [node], [x])
    for target in ("2021.4", "2022.1", "2022.3"):
        assert ("resize", "opset") in _kinds(path, target)


def test_topk_versions(tmp_path):
    x = o13.parameter([1, 10], np.float32, name="x")
    k = o13.constant(np.int64(3))
    new = _ir(tmp_path, [_named(o11.topk(x, k, 1, "max", "value"), "top").output(0)], [x], name="t11")
    assert _kinds(new, "2022.3") == {("top", "opset")}
    x = o13.parameter([1, 10], np.float32, name="x")
    old = _ir(tmp_path, [_named(o3.topk(x, k, 1, "max", "value"), "top").output(0)], [x], name="t3")
    assert _kinds(old, "2022.3") == set()


def test_pad_rank_5_and_reduce_with_runtime_axes(tmp_path):
    x = o13.parameter([1, 2, 3, 4, 5], np.float32, name="x")
    pad = _named(o1.pad(x, o13.constant(np.zeros(5, np.int64)), o13.constant(np.ones(5, np.int64)), "constant"), "pad")
    axes = o13.parameter([1], np.int64, name="axes")
    reduce = _named(o13.reduce_mean(pad, axes), "mean")
    assert _kinds(_ir(tmp_path, [reduce], [x, axes]), "2022.1") == {("pad", "limit"), ("mean", "limit")}


def test_maxpool8_indices_output(tmp_path):
    def build(use_indices, name):
        x = o13.parameter([1, 1, 4, 4], np.float32, name="x")
        pool = _named(o8.max_pool(x, [2, 2], [1, 1], [0, 0], [0, 0], [2, 2]), "pool")
        outputs = [pool.output(0)] + ([pool.output(1)] if use_indices else [])
        return _ir(tmp_path, outputs, [x], name=name)

    assert _kinds(build(True, "with"), "2022.1") == {("pool", "limit")}
    assert _kinds(build(False, "without"), "2022.1") == set()
    assert _kinds(build(False, "without"), "2021.4") == {("pool", "opset")}


def test_unsupported_op_and_custom_binding(tmp_path):
    x = o13.parameter([1, 8], np.float32, name="x")
    hs = _named(o13.hard_sigmoid(x, o13.constant(np.float32(0.2)), o13.constant(np.float32(0.5))), "hs")
    path = _ir(tmp_path, [hs], [x])
    blockers = find_blockers(load_model(path), "2022.1")
    assert [(b.layer_name, b.kind) for b in blockers] == [("hs", "unsupported")]
    assert "blobconverter#63" in blockers[0].source
    assert find_blockers(load_model(path), "2022.1", custom_types=["HardSigmoid"]) == []


def test_three_d_convolution_is_a_limit(tmp_path):
    x = o13.parameter([1, 2, 4, 4, 4], np.float32, name="x")
    conv = _named(o13.convolution(x, o13.constant(np.ones((3, 2, 1, 1, 1), np.float32)), [1, 1, 1], [0, 0, 0],
                                  [0, 0, 0], [1, 1, 1]), "conv3d")
    assert _kinds(_ir(tmp_path, [conv], [x]), "2022.1") == {("conv3d", "limit")}


def test_dynamic_input_and_input_shape_fix(tmp_path):
    x = o13.parameter([-1, 3, -1, -1], np.float32, name="img")
    path = _ir(tmp_path, [_named(o13.relu(x), "r")], [x])
    assert _kinds(path, "2022.1") == {("img", "dynamic-shape")}
    assert find_blockers(load_model(path, {"img": [1, 3, 8, 8]}), "2022.1") == []


def test_dtypes_without_myriad_representation(tmp_path):
    x = o13.parameter([4], np.float64, name="x")
    path = _ir(tmp_path, [_named(o13.relu(x), "r")], [x])
    kinds = _kinds(path, "2022.1")
    assert ("x", "dtype") in kinds and ("r", "dtype") in kinds


def test_convert_pair_that_myriad_lacks(tmp_path):
    x = o13.parameter([4], np.float32, name="x")
    path = _ir(tmp_path, [_named(o13.convert(x, "u8"), "to_u8")], [x])
    blockers = find_blockers(load_model(path), "2022.1")
    assert [(b.layer_name, b.kind) for b in blockers] == [("to_u8", "precision")]
    assert "FP16 to U8" in blockers[0].reason


def test_duplicate_layer_names_block_the_2021_4_reader(tmp_path):
    x = o13.parameter([4], np.float32, name="x")
    a = _named(o13.relu(x), "same")
    b = _named(o13.sigmoid(a), "same")
    path = _ir(tmp_path, [b], [x], v10=True)
    assert _kinds(path, "2021.4") == {("same", "ir-version")}
    assert _kinds(path, "2022.1") == set()


def test_custom_extension_op_without_binding(tmp_path):
    x = o13.parameter([1, 4], np.float32, name="x")
    path = _ir(tmp_path, [_named(o13.relu(x), "r")], [x])
    text = path.read_text().replace('type="ReLU" version="opset1"', 'type="MyOp" version="extension"')
    path.write_text(text)
    blockers = find_blockers(load_model(path), "2022.1")
    assert [(b.layer_name, b.kind) for b in blockers] == [("r", "unsupported")]
    assert "custom op" in blockers[0].reason
    assert find_blockers(load_model(path), "2022.1", custom_types=["myop"]) == []


# ---- CLI ---------------------------------------------------------------------------------------------

def test_cli_exit_codes_and_json(tmp_path, capsys):
    x = o13.parameter([1, 8], np.float32, name="x")
    clean = _ir(tmp_path, [_named(o13.relu(x), "r")], [x], v10=True, name="clean")
    assert main(["inspect", str(clean), "--target", "2021.4"]) == 0
    assert "no blockers" in capsys.readouterr().out

    x = o13.parameter([-1, 8], np.float32, name="x")
    hs = _named(o13.hard_sigmoid(x, o13.constant(np.float32(0.2)), o13.constant(np.float32(0.5))), "hs")
    bad = _ir(tmp_path, [hs], [x], name="bad")
    assert main(["inspect", str(bad), "--target", "2021.4", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "kernelkit.inspect/1" and report["target"] == "2021.4"
    assert report["ir_version"] == 11 and report["summary"]["ok"] is False
    kinds = {(b["layer_name"], b["kind"]) for b in report["blockers"]}
    # the IR version blocker names the input that keeps the model at v11
    assert kinds == {("x", "ir-version"), ("x", "dynamic-shape"), ("hs", "unsupported")}
    assert report["summary"]["by_kind"] == {"ir-version": 1, "dynamic-shape": 1, "unsupported": 1}
    for entry in report["blockers"]:
        assert set(entry) == {"layer_id", "layer_name", "type", "version", "kind", "reason", "source", "details", "fix"}
        assert entry["fix"] is None or isinstance(entry["fix"], str)

    assert main(["inspect", str(bad), "--target", "2022.1", "--input-shape", "x=2,8"]) == 1
    out = capsys.readouterr().out
    assert "[unsupported] hs (HardSigmoid-1)" in out and "fix:" in out and "dynamic" not in out

    assert main(["inspect", str(bad), "--input-shape", "nope=1,8"]) == 2
    assert "not an input" in capsys.readouterr().err


def test_cli_oracle_on_v11_says_what_to_do(tmp_path, capsys):
    x = o13.parameter([1, 8], np.float32, name="x")
    path = _ir(tmp_path, [_named(o13.relu(x), "r")], [x])
    assert main(["inspect", str(path), "--target", "2022.1", "--oracle", "myriad", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["oracle"]["available"] is False and "IR v10" in report["oracle"]["note"]


def test_interpolate_channel_resize_and_pads(tmp_path):
    x = o13.parameter([1, 3, 4, 4], np.float32, name="x")
    node = o10.interpolate(x, o13.constant(np.array([6, 8, 8], np.int64)), o13.constant(np.array([2.0, 2.0, 2.0], np.float32)),
                           "nearest", "sizes", pads_begin=[0, 0, 1, 0], axes=o13.constant(np.array([1, 2, 3], np.int64)))
    path = _ir(tmp_path, [_named(node, "resize")], [x])
    reasons = sorted(b.reason for b in find_blockers(load_model(path), "2022.1"))
    assert len(reasons) == 2
    assert "axis 1 changes from 3 to 6" in reasons[0] and "pads_begin=0, 0, 1, 0" in reasons[1]


def test_data_dependent_dims_block_2021_4_where_they_start(tmp_path):
    x = o13.parameter([1, 8], np.float32, name="x")
    nz = _named(o13.non_zero(x, "i32"), "nz")
    conv = _named(o13.convert(nz, "f32"), "after")
    # NonZero's count has a bound, the input's 8 elements: the plugin sizes its output by it, as the IR then says
    path = _ir(tmp_path, [conv], [x], v10=True)
    assert load_model(path).find("nz").outputs[0].dims == [2, 8] == load_model(path).find("after").outputs[0].dims
    assert _kinds(path, "2021.4") == set()
    # a Range as long as the data's largest value has none: the dim stays dynamic, blocked where it starts
    top = o13.reduce_max(x, o13.constant(np.array([0, 1], np.int64)), False)
    steps = _named(o13.range(o13.constant(np.float32(0)), top, o13.constant(np.float32(1)), "f32"), "steps")
    path = _ir(tmp_path, [_named(o13.relu(steps), "after")], [x], v10=True, name="range")
    assert load_model(path).find("steps").outputs[0].dims == [-1]
    assert _kinds(path, "2021.4") == {("steps", "dynamic-shape")}
    assert _kinds(path, "2022.1") == set()
    # as v11, the version blocker names the Range too, and what to do
    path = _ir(tmp_path, [_named(o13.relu(steps), "after")], [x], name="range11")
    version = [b for b in find_blockers(load_model(path), "2021.4") if b.kind == "ir-version"]
    assert [b.layer_name for b in version] == ["steps"] and "--output" in version[0].reason


def test_target_specific_limit_mvn2_on_2021_4(tmp_path):
    import openvino.opset2 as o2

    x = o13.parameter([1, 3, 4, 4], np.float32, name="x")
    path = _ir(tmp_path, [_named(o2.mvn(x, False, True, 1e-9), "mvn")], [x], v10=True)
    assert load_model(path).find("mvn").version == "opset2"
    assert _kinds(path, "2021.4") == {("mvn", "limit")}
    assert _kinds(path, "2022.1") == set()


# ---- the real 2021.4 plugin as oracle ---------------------------------------------------------------

def _cubic_resize_v10(tmp_path):
    x = o13.parameter([1, 3, 4, 4], np.float32, name="x")
    node = o10.interpolate(x, o13.constant(np.array([8, 8], np.int64)), o13.constant(np.array([2.0, 2.0], np.float32)),
                           "cubic", "sizes", axes=o13.constant(np.array([2, 3], np.int64)))
    return _ir(tmp_path, [_named(node, "resize")], [x], v10=True, name="cubic")


def test_oracle_without_toolchain_keeps_the_tables_verdict(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert main(["inspect", str(_cubic_resize_v10(tmp_path)), "--oracle", "myriad"]) == 1
    out = capsys.readouterr().out
    assert "[limit] resize" in out and "oracle needs the legacy toolchain" in out


@pytest.mark.toolchain
def test_oracle_agrees_with_the_tables(tmp_path, capsys):
    from myriad_models import require_toolchain

    require_toolchain()
    assert main(["inspect", str(_cubic_resize_v10(tmp_path)), "--oracle", "myriad", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(b["layer_name"], b["kind"]) for b in report["blockers"]] == [("resize", "limit")]
    assert report["oracle"]["available"] and report["oracle"]["compiled"] is False
    assert "cubic" in report["oracle"]["message"]
    x = o13.parameter([-1, 8], np.float32, name="x")
    clean = _ir(tmp_path, [_named(o13.relu(x), "r")], [x], v10=True, name="clean")
    # --input-shape edits the model, so the oracle gets a reshaped copy from a temporary folder
    assert main(["inspect", str(clean), "--input-shape", "x=2,8", "--oracle", "myriad", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["oracle"]["compiled"] is True and report["blockers"] == []


@pytest.mark.toolchain
def test_oracle_exits_1_when_the_plugin_refuses_what_the_tables_accept(tmp_path, capsys):
    from myriad_models import require_toolchain

    from kernelkit.harness.onnx_cases import node_cases, prepare

    require_toolchain()
    # ONNX's test_dequantizelinear_blocked as an IR v10 (patch without the compile): a Reshape of U8 data, which the
    # tables accept, the plugin refuses ("types check error: output #0 has type U8"). test_flatten_axis3, used
    # before, now compiles (its Reshape target is written so it holds at batch 1 too).
    case = prepare(next(c for _, c in node_cases({"DequantizeLinear"}) if c.name == "test_dequantizelinear_blocked"),
                   tmp_path / "case")
    shapes = [a for n, d in case.shapes.items() for a in ("--input-shape", f"{n}={','.join(map(str, d))}")]
    assert main(["patch", str(case.model_path), "-o", str(tmp_path / "ir"), "--no-compile", *shapes]) == 0
    path = tmp_path / "ir" / "model.xml"
    capsys.readouterr()
    assert main(["inspect", str(path)]) == 0                     # the tables see nothing wrong
    capsys.readouterr()
    assert main(["inspect", str(path), "--oracle", "myriad"]) == 1
    out = capsys.readouterr().out
    assert "no blockers" in out and "plugin refuses it" in out and "types check error" in out


@pytest.mark.toolchain
def test_inspect_of_an_onnx_file_states_the_straight_compile_verdict(tmp_path, capsys):
    from myriad_models import relu_onnx, require_toolchain

    require_toolchain()
    relu = relu_onnx(tmp_path)
    assert main(["inspect", str(relu), "--oracle", "myriad", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["oracle"]["straight"] and report["oracle"]["compiled"] is True
    blocked = EXAMPLES_DIR / "blocked_model" / "model.onnx"
    assert main(["inspect", str(blocked)]) == 1                 # no --oracle: ONNX gets the verdict anyway
    out = capsys.readouterr().out
    assert "plugin refuses this file as it is" in out and "gate (HardSigmoid)" in out
    assert main(["inspect", str(blocked), "--oracle", "myriad", "--json"]) == 1
    oracle = json.loads(capsys.readouterr().out)["oracle"]
    assert oracle["compiled"] is False and oracle["unsupported"][0][:2] == ["gate", "HardSigmoid"]


def test_one_entry_per_layer_with_one_fix_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path / "empty-cache"))    # the tables only
    blocked = EXAMPLES_DIR / "blocked_model" / "model.onnx"
    assert main(["inspect", str(blocked), "--json"]) == 1
    blockers = json.loads(capsys.readouterr().out)["blockers"]
    assert main(["inspect", str(blocked)]) == 1
    out = capsys.readouterr().out
    layers = {b["layer_id"] or "model" for b in blockers}
    assert len(blockers) == 8 and len(layers) == 7              # busy (Greater) has two precision reasons
    assert out.count("    fix: ") == len(layers)
    busy = out[out.index("[precision] busy"):]
    assert busy.count("[precision] busy") == 2 and busy.index("    fix: insert Convert") < busy.index("[opset]")
