"""kernelkit.facts.knowledge: the tables load, are self-consistent, carry sources, and match the docs."""

from __future__ import annotations

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.model.blockers import KINDS, check_names
from kernelkit.facts.knowledge import load_knowledge, support_markdown
from kernelkit.facts.target import target_names
from kernelkit.core.paths import REPO_ROOT


def test_targets_and_their_readers():
    ceilings = {t: load_knowledge(t).opset_ceiling for t in target_names()}
    assert ceilings == {"2021.4": 7, "2022.1": 8, "2022.3": 10}
    assert load_knowledge("2021.4").ir_versions == (10,)
    assert load_knowledge("2022.1").ir_versions == (10, 11)
    assert load_knowledge("2021.4").custom_layers_key == "VPU_CUSTOM_LAYERS"
    assert load_knowledge("2022.3").custom_layers_key == "MYRIAD_CUSTOM_LAYERS"


def test_unknown_target_is_bad_input():
    with pytest.raises(KernelkitError, match="unknown target '2023.0'"):
        load_knowledge("2023.0")


@pytest.mark.parametrize("target", target_names())
def test_every_row_has_a_source_and_limits_use_known_checks(target):
    kb = load_knowledge(target)
    assert all(rule.source.strip() for rule in kb.ops.values())
    for op_type, limits in kb.limits.items():
        assert op_type in kb.ops, f"limit for {op_type}, which ops.toml does not list"
        for limit in limits:
            assert limit.check in check_names(), limit
            assert limit.source.strip() and limit.reason.strip()
    for op_type, rules in kb.precision_rules.items():
        assert op_type in kb.ops, f"precision rule for {op_type}, which ops.toml does not list"
        for rule in rules:
            assert rule.accepts <= {"FP16", "S32", "U8"} and rule.source.strip()


def test_facts_from_the_issue():
    kb = load_knowledge("2021.4")
    assert not kb.op_rule("HardSigmoid").supported
    assert not kb.op_rule("ScatterNDUpdate").supported
    assert kb.op_rule("ReLU") is kb.op_rule("Relu") and kb.op_rule("relu").supported
    assert kb.op_rule("SoftMax").versions == (1, 8)
    assert {("U8", "FP16"), ("S32", "FP16"), ("FP16", "S32"), ("S32", "U8")} <= kb.convert_pairs
    assert ("FP16", "U8") not in kb.convert_pairs
    assert {kb.effective_type(t) for t in ("i64", "u64", "u32", "boolean", "i32")} == {"S32"}
    assert kb.effective_type("f32") == "FP16" and kb.effective_type("f64") is None
    greater = kb.precision_rules["Greater"][0]
    assert greater.accepts == {"FP16"}
    assert "S32" in kb.precision_rules["Add"][0].accepts
    modes = next(l for l in kb.limits["Interpolate"] if l.params.get("attr") == "mode").params["allowed"]
    assert "cubic" not in modes and "nearest" in modes
    assert kb.opset_number("opset8") == 8 and kb.opset_number("extension") is None


def test_kinds_are_the_documented_set():
    assert set(KINDS) == {"opset", "unsupported", "limit", "precision", "dynamic-shape", "ir-version", "dtype"}


def test_docs_page_is_generated_from_the_tables():
    committed = (REPO_ROOT / "docs" / "myriad-support.md").read_text(encoding="utf-8")
    assert committed == support_markdown(), "regenerate docs/myriad-support.md (command at its top)"


def test_tables_agree_with_the_real_2021_4_plugin():
    """Where toolchain/probe_support.py settled an op on the real plugin, ops.toml must say the same."""
    import tomllib

    from kernelkit.facts.knowledge import DATA_DIR, plugin_verdicts, verdict_evidence

    rows = plugin_verdicts()
    if not rows:
        pytest.skip("data/plugin-verdicts-2021.4.json has not been generated")
    kb = load_knowledge("2021.4")
    table = tomllib.loads((DATA_DIR / "ops.toml").read_text())["ops"]
    disagree = []
    for op_type, ev in verdict_evidence(rows, kb.effective_types).items():
        if ev.supported is None:
            continue
        row = table.get(op_type)
        listed = row is not None and (row["targets"] == "all" or "2021.4" in row["targets"])
        if listed != ev.supported:
            disagree.append(f"{op_type}: table {listed}, plugin {ev.supported} ({ev.support_source})")
    assert not disagree


def test_plugin_evidence_is_parsed_from_the_messages():
    from kernelkit.facts.knowledge import verdict_evidence

    rows = [{"op": "Greater", "version": "opset1", "variant": "f16", "verdict": "compiled", "message": ""},
            {"op": "Greater", "version": "opset1", "variant": "i32", "verdict": "refused",
             "message": "Stage node probe (Greater) types check error: input #0 has type S32, but one of [FP16] "
                        "is expected"},
            {"op": "Mod", "version": "opset1", "variant": "f16", "verdict": "refused",
             "message": 'Failed to compile layer "Abs_723": unsupported layer type "Abs"'},
            {"op": "NonZero", "version": "opset3", "variant": "f16", "verdict": "refused",
             "message": "dimension (-1) in node dim must be a non-negative integer"}]
    ev = verdict_evidence(rows, {"f16": "FP16", "i32": "S32"})
    assert ev["Greater"].supported is True and set(ev["Greater"].accepted) == {"FP16"}
    assert ev["Greater"].rejected[(0, "S32")][0] == ("FP16",)
    assert ev["Mod"].supported is False and 'unsupported layer type "Abs"' in ev["Mod"].support_source
    assert ev["NonZero"].supported is None          # a refusal about form, not about the op


def test_the_rules_for_what_compiles_but_computes_otherwise_flag_those_forms_only(tmp_path):
    """limits.toml's pads_excluded, slope_per_channel, batch_kept and scales_match_sizes on OpenVINO-built IRs:
    each flags the form the blob interpreter found computed otherwise (tests/test_plugin_truth.py) and leaves the
    forms the plugin computes as the model says."""
    import numpy as np
    import openvino as ov
    import openvino.opset11 as ops

    from kernelkit.ir.load import load_model
    from kernelkit.model.blockers import find_blockers

    x = ops.parameter([1, 4, 5, 6], np.float32, name="x")
    x3 = ops.parameter([3, 4, 5], np.float32, name="x3")
    x2 = ops.parameter([2, 3, 4, 5], np.float32, name="x2")
    const = lambda a: ops.constant(np.asarray(a, np.float32))          # noqa: E731
    layers = {
        "pool_pads": ov.opset1.avg_pool(x, [1, 1], [1, 1], [1, 1], [3, 3], True, "floor"),
        "pool_counted": ov.opset1.avg_pool(x, [1, 1], [1, 1], [1, 1], [3, 3], False, "floor"),
        "pool_valid": ov.opset1.avg_pool(x, [1, 1], [0, 0], [0, 0], [2, 2], True, "floor", "valid"),
        "pool_same": ov.opset1.avg_pool(x, [1, 1], [0, 0], [0, 0], [2, 2], True, "floor", "same_upper"),
        "pool_ceil": ov.opset1.avg_pool(x, [2, 2], [0, 0], [0, 0], [2, 2], True, "ceil"),
        "slope_channel": ops.prelu(x, const(np.arange(1, 5).reshape(4, 1, 1))),
        "slope_shared": ops.prelu(x, const([0.2])),
        "slope_last": ops.prelu(x, const(np.arange(1, 7))),
        "slope_3d_chw": ops.prelu(x3, const(np.arange(1, 4).reshape(3, 1, 1))),
        "slope_3d_axis1": ops.prelu(x3, const(np.arange(1, 5).reshape(4, 1))),
        "tile_batch": ops.tile(x2, np.array([2, 1, 1, 1], np.int64)),
        "tile_other": ops.tile(x2, np.array([1, 2, 1, 1], np.int64)),
        "tile_one": ops.tile(x, np.array([3, 1, 1, 1], np.int64)),
        "resize_off": ops.interpolate(x, np.array([0.6, 0.6], np.float32), "linear_onnx", "scales",
                                      axes=np.array([2, 3], np.int64)),
        "resize_even": ops.interpolate(x, np.array([2.0, 2.0], np.float32), "linear_onnx", "scales",
                                       axes=np.array([2, 3], np.int64)),
        "resize_corners": ops.interpolate(x, np.array([0.6, 0.6], np.float32), "linear_onnx", "scales",
                                          axes=np.array([2, 3], np.int64),
                                          coordinate_transformation_mode="align_corners"),
    }
    for name, node in layers.items():
        node.set_friendly_name(name)
    path = tmp_path / "forms.xml"
    ov.save_model(ov.Model([n.output(0) for n in layers.values()], [x, x3, x2], "forms"), str(path),
                  compress_to_fp16=False)
    checks = {"pads_excluded", "slope_per_channel", "batch_kept", "scales_match_sizes"}
    flagged = {b.layer_name: b.details["check"] for b in find_blockers(load_model(path), "2021.4")
               if b.kind == "limit" and b.details.get("check") in checks}
    assert flagged == {"pool_pads": "pads_excluded", "pool_same": "pads_excluded", "pool_ceil": "pads_excluded",
                       "slope_last": "slope_per_channel", "slope_3d_axis1": "slope_per_channel",
                       "tile_batch": "batch_kept", "resize_off": "scales_match_sizes"}
