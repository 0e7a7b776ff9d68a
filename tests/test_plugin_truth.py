"""Issue 21, parts 2-4, on the real OpenVINO 2021.4 MYRIAD plugin (skipped when `kernelkit toolchain setup` has
not provisioned it), on ONNX's own node cases:

- minimal change: a layer the plugin compiles as it is is not rewritten, even where a table calls it blocked;
  the patched blob has no more stages and no more bytes than the straight compile's; the report says per
  change why it was needed (a knowledge rule and its source, or the plugin's words);
- refusal classes learnt: each is a knowledge rule whose source quotes the plugin, and the plugin says those
  words on the model; PReLU with a computed slope is fixed;
- shapes from integer inputs: inspect names the input and the --input-value (the test data's value), and the
  case patches and verifies with it; a straight compile of a dynamic model gets the --input-shape hint.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from kernelkit.doctor.confirm import DISCRETIONARY, confirm
from kernelkit.doctor.verify import verify
from kernelkit.doctor.workflow import compile_patched
from kernelkit.harness.onnx_cases import node_cases, prepare, write_raw
from kernelkit.ir.freeze import parse_input_values
from kernelkit.ir.load import load_model
from kernelkit.model.blockers import find_blockers, inspect_report
from kernelkit.model.patcher import patch_model
from kernelkit.myriad import toolchain
from kernelkit.myriad.blob_reader import read_blob
from kernelkit.myriad.compile import CompileFailed, compile_model

pytestmark = pytest.mark.skipif(not toolchain.locate().ready(),
                                reason="legacy MYRIAD toolchain not provisioned (kernelkit toolchain setup)")


def _case(name):
    return next(case for _, case in node_cases() if case.name == name)


def _patch(model_path, out, **options):
    """`kernelkit patch` as the command runs it: the plugin confirms."""
    result = patch_model(model_path, out, "2021.4", force=True, **options)
    if result.exit_code == 0:
        _, result = confirm(result, model_path, out, "2021.4", options)
    return result


def _npz(path, prefix, arrays):
    np.savez(path, **{f"{prefix}{i}": np.asarray(a) for i, a in enumerate(arrays)})
    return path


def _stages_and_bytes(blob):
    return read_blob(blob).counts()["stages"], blob.stat().st_size


# Node cases the plugin compiles as they are into a blob that computes something else (docs/blob.md, "ONNX's
# node cases"): verify's IR check passes and its blob check does not. Each class is a knowledge rule now
# (limits.toml, sourced to this finding), so patch keeps its rewrite, or refuses the layer where there is none.
STRAIGHT_BLOB_DIFFERS = {
    "test_averagepool_2d_pads": "count_include_pad=0 becomes a Pad stage and an engine pool dividing by the kernel",
    "test_prelu_broadcast": "the blob holds per-channel slopes for a slope along the last axis",
    "test_tile": "the tile runs along the batch axis; the blob's graph is one item's",
    "test_resize_downsample_scales_linear": "the Interp stage knows only sizes: 4 -> 2 maps by 0.5, not 0.6",
}


def _verify_as_the_device_would(out, inputs, expected):
    """verify with ONNX's expected outputs: the IR check and the blob check (the interpreter) both pass."""
    result = verify(out, inputs=inputs, expected=expected)
    assert result.ir_passed and result.blob is not None and result.blob.not_run is None
    assert result.blob.passed, [(c.name, float(c.abs_error.max), c.signal) for c in result.blob.comparisons]


def _case_data(tmp_path, case):
    return _npz(tmp_path / "in.npz", "in", case.inputs), _npz(tmp_path / "exp.npz", "out", case.expected)


# test_averagepool_2d_precomputed_pads falls under the pads_excluded rule, but the plugin runs it as a software
# pool that excludes the padding, and test_resize_downsample_scales_nearest under scales_match_sizes, but nearest
# picks the same pixels by 0.5 as by 0.6: their blobs are right, so the minimal patch is taken.
@pytest.mark.parametrize("name", ["test_averagepool_3d_default", "test_constant_pad",
                                  "test_averagepool_2d_precomputed_pads", "test_resize_downsample_scales_nearest"])
def test_a_model_the_plugin_computes_right_gets_only_what_the_reader_needs(tmp_path, name):
    case = prepare(_case(name), tmp_path)
    compile_model(case.model_path, tmp_path / "straight.blob", graph_dump=False)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0
    report = result.report
    assert not [c for c in report["changes"] if c["patcher"] in DISCRETIONARY]
    straight = _stages_and_bytes(tmp_path / "straight.blob")
    patched = _stages_and_bytes(tmp_path / "out" / "model.blob")
    assert patched[0] <= straight[0] and patched[1] <= straight[1], (straight, patched)
    assert len(report["why"]) == len(report["changes"]) and all(w["source"] for w in report["why"])
    _verify_as_the_device_would(tmp_path / "out", *_case_data(tmp_path, case))


@pytest.mark.parametrize("name, layer, stage", [("test_averagepool_2d_pads", "y", "Prod"),
                                               ("test_prelu_broadcast", "y", "PRelu"),
                                               ("test_resize_downsample_scales_linear", "Y", "Interp")])
def test_a_model_the_plugin_computes_wrong_keeps_the_kits_rewrite_and_its_blob_is_right(tmp_path, name, layer,
                                                                                        stage):
    """The plugin compiles the minimal patch, but the blob interpreter finds it computing something else; the
    rule's rewrite stays, and its blob matches ONNX's outputs. `stage`: the stage type one blob has and the
    other not (the correction's Prod; the PReLU stage that misread the slope)."""
    case = prepare(_case(name), tmp_path)
    inputs, expected = _case_data(tmp_path, case)
    patch_model(case.model_path, tmp_path / "minimal", "2021.4", input_shapes=case.shapes, minimal=True)
    compile_patched(tmp_path / "minimal", "2021.4")
    straight = verify(tmp_path / "minimal", inputs=inputs, expected=expected)
    assert straight.ir_passed and straight.blob.not_run is None and not straight.blob.passed, \
        STRAIGHT_BLOB_DIFFERS[name]
    departs = straight.blob.departs_at          # verify names the layer: each case has one computing layer
    assert departs is not None and [found for found, _ in departs.layers] == [layer], straight.blob.departs_note
    assert departs.share_of_peak > 0.1           # a different computation, not fp16 noise
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0
    report = result.report
    minimal = report["plugin_on_minimal"]
    assert minimal["asked"] and minimal["compiled"] and minimal["blob_departs"]["share_of_peak"] > 0.1
    assert "its blob computes something else" in minimal["reason"]
    why = [w for w in report["why"] if w["patcher"] == "rewrite"]
    assert [w["layer"] for w in why] == [layer] and "blob interpreter" in why[0]["source"]
    assert name in why[0]["source"]
    assert why[0]["why"].startswith("compiles, but the device")
    types = [{s.type_name for s in read_blob(folder / "model.blob").stages} for folder in (tmp_path / "minimal",
                                                                                          tmp_path / "out")]
    assert stage in types[0] ^ types[1], types
    _verify_as_the_device_would(tmp_path / "out", inputs, expected)


def test_a_same_average_pool_as_tflite_converts_it_keeps_the_rewrite_and_computes_right(tmp_path):
    """What a TFLite AVERAGE_POOL_2D with SAME padding becomes (exclude-pad, auto_pad same_upper), 3x3 over 32
    channels: the plugin runs it on the engine with its own padding, dividing border outputs by 9."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER")], "same",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 32])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7),
              tmp_path / "same.onnx")
    report = _patch(tmp_path / "same.onnx", tmp_path / "out").report
    assert report["plugin"]["status"] == "compiled"
    assert report["plugin_on_minimal"]["blob_departs"]["share_of_peak"] > 0.1
    assert [c["layer"] for c in report["changes"] if c["patcher"] == "rewrite"] == ["y"]
    checked = verify(tmp_path / "out")             # against the ONNX model itself
    assert checked.ir_passed and checked.blob.not_run is None and checked.blob.passed


def test_tile_along_a_batch_above_one_is_a_rule_patch_reports(tmp_path):
    """test_tile: the blob's graph is one item's, so a Tile along the batch repeats each item alone. No fix: patch
    refuses the layer with the rule (sourced to the interpreter's finding) and writes no blob; with batch 1
    the same Tile compiles and computes right."""
    case = _case("test_tile")
    path = write_raw(case, tmp_path)
    names = [i.name for i in case.model.graph.input]
    repeats = parse_input_values(["y=" + ",".join(str(int(v)) for v in np.ravel(case.data_sets[0][0][names.index("y")]))])
    result = _patch(path, tmp_path / "out", input_values=repeats)
    assert result.exit_code == 1 and not (tmp_path / "out" / "model.blob").exists()
    rules = [b for b in result.remaining if b.kind == "limit"]
    assert [b.type for b in rules] == ["Tile"] and "a batch of 2 becomes 14" in rules[0].reason
    assert "test_tile" in rules[0].source and "blob interpreter" in rules[0].source
    one = _patch(path, tmp_path / "one", input_values=repeats, input_shapes={"x": [1, 3, 4, 5]})
    assert one.exit_code == 0 and not one.remaining
    x = np.random.default_rng(3).standard_normal((1, 3, 4, 5)).astype(np.float32)
    _verify_as_the_device_would(tmp_path / "one", _npz(tmp_path / "in1.npz", "in", [x]),
                                _npz(tmp_path / "exp1.npz", "out", [np.tile(x, repeats["y"])]))


def test_the_plugin_outranks_a_table_that_calls_a_layer_blocked(tmp_path):
    """A 3-D AvgPool: the reference table says MYRIAD pools 4-D only; the plugin compiles it as it is."""
    case = prepare(_case("test_averagepool_3d_default"), tmp_path)
    table = [b for b in find_blockers(load_model(case.model_path, case.shapes), "2021.4") if b.kind == "limit"]
    assert table and "3-D pooling" in table[0].reason
    report = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes).report
    assert report.get("minimal_change") and report["remaining_blockers"] == []
    assert [b["layer_name"] for b in report["overruled"]] == [table[0].layer_name]
    assert "was not needed" in report["plugin"]["reason"]


def test_a_rewrite_the_plugin_needs_is_kept_and_its_words_say_why(tmp_path):
    """Pad of a 2-D tensor: the plugin refuses it as it is; the rewrite stays and the report quotes it. The
    probe: the plugin refuses the minimal patch in the words the rule quotes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "pads"], ["y"], name="y")], "pad2d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 8])],
        [numpy_helper.from_array(np.array([1, 2, 1, 2], np.int64), "pads")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7),
              tmp_path / "pad.onnx")
    report = _patch(tmp_path / "pad.onnx", tmp_path / "out").report
    assert report["plugin"]["status"] == "compiled"
    # the rule quotes the plugin's refusal (learnt from this model), so the plugin is not asked again
    asked = report["plugin_on_minimal"]
    assert not asked["asked"] and not asked["compiled"] and "only 3D and 4D input" in asked["source"]
    why = {w["layer"]: w for w in report["why"] if w["patcher"] == "rewrite"}
    assert why and all("only 3D and 4D input" in w["source"] for w in why.values())
    patch_model(tmp_path / "pad.onnx", tmp_path / "minimal", "2021.4", minimal=True)
    with pytest.raises(CompileFailed) as refused:
        compile_patched(tmp_path / "minimal", "2021.4")
    assert "support only 3D and 4D input, but 2D provided" in refused.value.plugin_text


@pytest.mark.parametrize("name, words", [
    ("test_mvn", "Only across channel, width and full batch supported"),
    ("test_layer_normalization_4d_axis0", "Only across channel, width and full batch supported"),
    ("test_prelu_example", "inputs.size() == 1"),
    ("test_constant", "!out.networkInputs.empty()"),
])
def test_each_refusal_class_is_a_rule_quoting_the_plugin_which_says_it(tmp_path, name, words):
    case = prepare(_case(name), tmp_path)
    model = load_model(case.model_path, case.shapes or None)
    rules = [b for b in find_blockers(model, "2021.4") if b.kind == "limit"]
    assert rules and words in rules[0].source and "real 2021.4 plugin" in rules[0].source
    # the probe: the model with only what the reader needs, compiled by the plugin, refused in those words
    minimal = patch_model(case.model_path, tmp_path / "minimal", "2021.4", input_shapes=case.shapes or None,
                          minimal=True)
    assert minimal.remaining
    with pytest.raises(CompileFailed) as refused:
        compile_patched(tmp_path / "minimal", "2021.4")
    assert words in refused.value.plugin_text


def test_prelu_with_a_computed_slope_is_fixed_and_verifies(tmp_path):
    case = prepare(_case("test_prelu_example"), tmp_path)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 0 and (tmp_path / "out" / "model.blob").is_file()
    assert [c["layer"] for c in result.report["changes"] if c["patcher"] == "rewrite"] == ["y"]
    _verify_as_the_device_would(tmp_path / "out", *_case_data(tmp_path, case))


def test_mvn_across_the_samples_is_a_blocker_patch_reports_without_compiling(tmp_path):
    case = prepare(_case("test_mvn"), tmp_path)
    result = _patch(case.model_path, tmp_path / "out", input_shapes=case.shapes)
    assert result.exit_code == 1 and result.remaining[0].kind == "limit"
    assert not (tmp_path / "out" / "model.blob").exists()


FLAG = re.compile(r"--input-value (\S+=\S+)")


@pytest.mark.parametrize("name", ["test_expand_dim_changed", "test_resize_upsample_sizes_nearest",
                                  "test_reshape_reordered_all_dims", "test_slice", "test_split_variable_parts_1d_opset18",
                                  # keep_aspect_ratio_policy and antialias, which OpenVINO's conversion drops
                                  # (kernelkit.ir.onnx_resize rewrites the Resize once its sizes are frozen)
                                  "test_resize_downsample_sizes_nearest_not_smaller",
                                  "test_resize_upsample_sizes_nearest_not_larger",
                                  "test_resize_downsample_sizes_linear_antialias",
                                  "test_resize_downsample_sizes_cubic_antialias",
                                  # the pad value a network input: Pad with 0, then a Select of the padded part
                                  "test_constant_pad", "test_constant_pad_negative_axes"])
def test_a_shape_from_an_integer_input_gets_the_input_value_that_fixes_it(tmp_path, name):
    case = _case(name)
    path = write_raw(case, tmp_path)
    report = inspect_report(load_model(path), "2021.4")
    entries = [b for b in report["blockers"] if b["kind"] == "dynamic-shape"]
    assert entries and all(b["details"].get("from_inputs") for b in entries)
    flags = list(dict.fromkeys(f for b in entries for f in FLAG.findall(b["fix"])))
    values = parse_input_values(flags)
    inputs, expected = case.data_sets[0]
    names = [i.name for i in case.model.graph.input]
    for name_, value in values.items():           # the suggestion is the test data's value
        assert np.array_equal(np.ravel(inputs[names.index(name_)]), value)
    result = _patch(path, tmp_path / "out", input_values=values)
    assert result.exit_code == 0, result.report.get("remaining_blockers") or result.report.get("plugin")
    fed = [np.asarray(a) for n, a in zip(names, inputs) if n not in values]
    _verify_as_the_device_would(tmp_path / "out", _npz(tmp_path / "in.npz", "in", fed),
                                _npz(tmp_path / "exp.npz", "out", expected))


def test_without_test_data_the_suggestion_is_a_placeholder_of_the_inputs_shape(tmp_path):
    import shutil

    path = write_raw(_case("test_tile"), tmp_path)
    shutil.rmtree(tmp_path / "test_data_set_0")
    fix = next(b["fix"] for b in inspect_report(load_model(path), "2021.4")["blockers"]
               if b["kind"] == "dynamic-shape")
    assert "--input-value y=" in fix and "4 values of shape [4]: the value your application feeds" in fix


def test_a_straight_compile_of_a_dynamic_model_gets_the_input_shape_hint(tmp_path):
    path = write_raw(_case("test_tile"), tmp_path)
    with pytest.raises(CompileFailed) as refused:
        compile_model(path, tmp_path / "t.blob", graph_dump=False)
    assert "DynamicToStaticShape" in refused.value.plugin_text
    assert "--input-shape" in refused.value.hint and "--input-value" in refused.value.hint
