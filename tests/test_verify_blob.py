"""`kernelkit verify` judges the compiled blob too: the blob interpreter on the same inputs, the same reference."""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.doctor.verify import format_verify_result, verify
from kernelkit.facts.tolerances import BLOB_NOISE_OF_PEAK
from kernelkit.myriad.blob_reader import read_blob
from myriad_models import conv_relu, save_ir

pytestmark = pytest.mark.toolchain


def _patched(tmp_path, xml):
    out = tmp_path / "patched"
    assert main(["patch", str(xml), "-o", str(out)]) == 0
    assert (out / "model.blob").is_file()
    return out


def _overflowing_conv(folder):
    """A 3x3 conv 64 -> 32 with weights ~N(0, 0.003): weights analysis scales it by 2**8 (shared reference on the
    blob, section 3), so an input of std 1000 holds more than fp16's 65504 before the descale."""
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 64, 16, 16], np.float32, name="x")
    weights = (np.random.default_rng(3).standard_normal((32, 64, 3, 3)) * 0.003).astype(np.float32)
    conv = opset1.convolution(x, opset1.constant(weights), [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    return save_ir(ov.Model([conv], [x], "overflow"), folder / "overflow.xml")


def test_the_blob_is_run_and_compared_beside_the_ir(tmp_path):
    out = _patched(tmp_path, conv_relu(tmp_path))
    result = verify(out)
    assert result.ir_passed and result.blob is not None and result.passed
    (comparison,) = result.blob.comparisons
    # the IR on OpenVINO CPU is exact here; the blob ran in fp16, so it differs a little: it really ran
    assert result.comparisons[0].abs_error.max == 0 and 0 < comparison.abs_error.max
    assert comparison.abs_error.max < comparison.atol / 10      # fp16 noise: under 1e-3 of the output's peak
    assert "in the IR and in the compiled blob" in format_verify_result(result)
    assert result.blob.departs_at is None and result.blob.departs_note is None     # a passing blob: no search


def test_an_overflow_only_the_device_would_hit_passes_the_ir_and_fails_the_blob(tmp_path, capsys):
    out = _patched(tmp_path, _overflowing_conv(tmp_path))
    feed = tmp_path / "in.npz"
    np.savez(feed, in0=(np.random.default_rng(0).standard_normal((1, 64, 16, 16)) * 1000).astype(np.float32))
    assert main(["verify", str(out), "--inputs", str(feed)]) == 1
    text = capsys.readouterr().out
    assert "PASS out0" in text.split("compiled blob")[0]          # the IR check alone would have said PASSED
    assert "MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO" in text
    assert "FAILED: the IR matches, the compiled blob does not" in text
    # where: the blob's only engine stage, which runs the conv (read from the blob, not from the map)
    (hw,) = [s for s in read_blob(out / "model.blob").stages if s.type_name == "MyriadXHwOp"]
    assert f"departs from the IR at stage {hw.index} (MyriadXHwOp) = layer 'conv' (Convolution)" in text
    # without the blob check the same run passes: the case verify used to miss
    assert main(["verify", str(out), "--inputs", str(feed), "--no-blob"]) == 0


def test_a_blob_of_another_model_is_a_clear_error(tmp_path, capsys):
    out = _patched(tmp_path, conv_relu(tmp_path))
    other = _patched(tmp_path / "o", _overflowing_conv(tmp_path))
    assert main(["verify", str(out), "--blob", str(other / "model.blob")]) == 2
    err = capsys.readouterr().err
    assert "input" in err and "'x'" in err


def _conv(x, cin, cout, k, scale, name, rng):
    from openvino import opset1

    weights = (rng.standard_normal((cout, cin, k, k)) * scale).astype(np.float32)
    return opset1.convolution(x, opset1.constant(weights), [1, 1], [k // 2] * 2, [k // 2] * 2, [1, 1], name=name)


def _overflow_mid_network(folder):
    """Two benign layers (ReLU, a 3x3 max pool), the overflowing conv of _overflowing_conv (its ReLU merged into
    its engine stage), then a 1x1 conv head."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(3)
    x = opset1.parameter([1, 64, 16, 16], np.float32, name="x")
    y = opset1.max_pool(opset1.relu(x, name="act"), [1, 1], [1, 1], [1, 1], [3, 3], name="pool")
    y = opset1.relu(_conv(y, 64, 32, 3, 0.003, "conv", rng), name="conv_relu")
    y = _conv(y, 32, 16, 1, 0.1, "head", rng)
    return save_ir(ov.Model([y], [x], "overflow_mid"), folder / "overflow_mid.xml")


def _exclusive_average_mid_network(folder):
    """conv + ReLU, a 3x3 average pool excluding its padding (the engine's pool divides by the whole kernel:
    docs/blob.md), then conv + ReLU and a 1x1 conv head, all of which inherit the pool's border error."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(4)
    x = opset1.parameter([1, 8, 16, 16], np.float32, name="x")
    y = opset1.relu(_conv(x, 8, 16, 3, 0.2, "c1", rng), name="c1_relu")
    y = opset1.avg_pool(y, [1, 1], [1, 1], [1, 1], [3, 3], True, name="pool")
    y = opset1.relu(_conv(y, 16, 16, 3, 0.2, "c2", rng), name="c2_relu")
    y = _conv(y, 16, 8, 1, 0.2, "head", rng)
    return save_ir(ov.Model([y], [x], "exclusive_average"), folder / "exclusive_average.xml")


def test_an_overflow_mid_network_is_placed_on_its_conv_not_before_or_after(tmp_path):
    out = _patched(tmp_path, _overflow_mid_network(tmp_path))
    feed = tmp_path / "in.npz"
    np.savez(feed, in0=(np.random.default_rng(0).standard_normal((1, 64, 16, 16)) * 1000).astype(np.float32))
    result = verify(out, inputs=feed)
    assert result.ir_passed and not result.passed and result.blob.comparisons[0].passed    # a range finding
    departs = result.blob.to_dict()["departs_at"]
    assert departs["layers"] == ["conv"] and "before its descale" in departs["finding"]
    stage = read_blob(out / "model.blob").stages[departs["stage"]]
    assert stage.type_name == "MyriadXHwOp" and [op.kernel_width for op in stage.hw_ops] == [3]
    assert departs["matched_before"] == 2, "the ReLU and the pool before it were compared and matched"
    assert f"stage {departs['stage']} (MyriadXHwOp) = layer 'conv'" in format_verify_result(result)


def _straight_blob(tmp_path, xml):
    """A patch folder whose IR and blob are the model as given, compiled straight: patch itself now rewrites the
    exclusive pool so its blob computes right (docs/plugin-truth.md), which is not the blob these tests need."""
    import shutil

    from kernelkit.myriad.compile import compile_model

    out = _patched(tmp_path, xml)
    shutil.copyfile(xml, out / "model.xml")
    shutil.copyfile(xml.with_suffix(".bin"), out / "model.bin")
    compile_model(out / "model.xml", out / "model.blob")
    return out


def test_a_value_departure_mid_network_names_the_first_layer_off_not_a_later_one(tmp_path):
    out = _straight_blob(tmp_path, _exclusive_average_mid_network(tmp_path))
    result = verify(out)
    assert result.ir_passed and not result.blob.passed
    (output,) = result.blob.comparisons
    assert not output.passed, "the head, two layers later, is off too"
    departs = result.blob.to_dict()["departs_at"]
    assert departs["layers"] == ["pool"] and departs["tensor"] == "pool" and departs["finding"] is None
    assert departs["share_of_peak"] > BLOB_NOISE_OF_PEAK and departs["matched_before"] == 1    # c1's output matched
    assert departs["worst_before"] < BLOB_NOISE_OF_PEAK / 10, "a jump, not fp16 noise adding up"
    stage = read_blob(out / "model.blob").stages[departs["stage"]]
    assert [op.op_type for op in stage.hw_ops] == ["POOL"]
    text = format_verify_result(result)
    assert f"departs from the IR at stage {departs['stage']} (MyriadXHwOp) = layer 'pool' (Pooling)" in text
    assert "% of its peak" in text


def test_without_the_graph_dump_a_failed_check_says_why_it_names_no_stage(tmp_path):
    out = _straight_blob(tmp_path, _exclusive_average_mid_network(tmp_path))
    (out / "model.graph.dot").unlink()
    result = verify(out)
    assert not result.blob.passed and result.blob.departs_at is None
    assert "model.graph.dot" in result.blob.departs_note
    assert "where it departs: no stage map" in format_verify_result(result)
    other = _patched(tmp_path / "other", conv_relu(tmp_path))          # a dump of another compile: said, not used
    (out / "model.graph.dot").write_bytes((other / "model.graph.dot").read_bytes())
    stale = verify(out)
    assert not stale.blob.passed and stale.blob.departs_at is None and "another compile" in stale.blob.departs_note


def _squeeze_excite(folder):
    """A squeeze-excite block: the plugin rewrites its 1x1 chain (GAP, 1x1 convs, the HardSigmoid patch makes a
    scale-and-shift it folds into the conv) as 'fast-stage's whose tensors the dump keeps only re-strided."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(5)
    x = opset1.parameter([1, 24, 16, 16], np.float32, name="x")
    feat = opset1.relu(_conv(x, 24, 24, 3, 0.3, "c0", rng), name="feat")
    gap = opset1.reduce_mean(feat, opset1.constant(np.array([2, 3], np.int64)), True, name="gap")
    squeeze = opset1.relu(_conv(gap, 24, 6, 1, 0.3, "squeeze", rng), name="squeeze_relu")
    gate = opset1.hard_sigmoid(_conv(squeeze, 6, 24, 1, 0.3, "excite", rng), opset1.constant(np.float32(0.2)),
                               opset1.constant(np.float32(0.5)), name="gate")
    y = opset1.multiply(feat, gate, name="scaled")
    return save_ir(ov.Model([y], [x], "squeeze_excite"), folder / "se.xml")


def test_the_squeeze_excite_chain_is_compared_stage_by_stage(tmp_path):
    from kernelkit.doctor.departure import find_departure
    from kernelkit.doctor.verify import random_inputs
    from kernelkit.ir.load import load_model
    from kernelkit.myriad.graph_dump import read_dump

    out = _patched(tmp_path, _squeeze_excite(tmp_path))
    dump = read_dump(out / "model.graph.dot")
    placed = {t.ir_name for t in dump.ir_tensors()}
    assert "gap" not in placed and "squeeze_relu" not in placed, "no origData: the chain is one step without names"
    patched = load_model(out / "model.xml")
    search = find_departure(out / "model.blob", patched, random_inputs(patched), atol=1e-3, rtol=1e-2)
    assert search.departure is None
    assert {"feat", "gap", "squeeze_relu", "gate", "scaled"} <= set(search.shares)
    assert max(search.shares.values()) < BLOB_NOISE_OF_PEAK


def test_blob_run_against_its_ir_names_where_it_departs(tmp_path, capsys):
    out = _straight_blob(tmp_path, _exclusive_average_mid_network(tmp_path))
    assert main(["blob", "run", str(out / "model.blob"), "--reference", str(out / "model.xml"),
                 "--accumulator", "fp32"]) == 1
    text = capsys.readouterr().out
    assert "against the reference: the blob departs at stage" in text and "layer 'pool' (Pooling)" in text
    good = _patched(tmp_path / "good", conv_relu(tmp_path))
    assert main(["blob", "run", str(good / "model.blob"), "--reference", str(good / "model.xml")]) == 0
    assert "no stage departs" in capsys.readouterr().out
    # a model the blob was not compiled from: its inputs are not the blob's
    assert main(["blob", "run", str(good / "model.blob"), "--reference", str(out / "model.xml")]) == 2
    assert "no input of the blob" in capsys.readouterr().err


def _below_fp16(x):
    """(x * 1e-4) * (sigmoid(x) * 1e-4): every product is below 3e-8, half fp16's smallest subnormal, while each
    factor is an fp16 value (two tensors: nothing for the plugin to fold into one constant)."""
    from openvino import opset1

    scale = opset1.constant(np.full((1, 8, 1, 1), 1e-4, np.float32))
    return opset1.multiply(opset1.multiply(x, scale), opset1.multiply(opset1.sigmoid(x), scale), name="tiny")


def test_a_tensor_that_rounds_to_zero_is_a_note_unless_an_output_departs(tmp_path):
    """sigmoid(x) + relu(tiny): the tiny branch is all zeros in fp16, the sum is the same either way: a note.
    The tiny tensor as the output itself: the output departs and the check fails."""
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 8, 4, 4], np.float32, name="x")
    summed = opset1.add(opset1.tanh(x), opset1.relu(_below_fp16(x)), name="sum")
    out = _patched(tmp_path / "a", save_ir(ov.Model([summed], [x], "note"), tmp_path / "note.xml"))
    result = verify(out)
    assert result.passed and not result.blob.problems
    assert any("collapses to all zeros" in note for note in result.blob.notes)
    assert "note: " in format_verify_result(result)

    x = opset1.parameter([1, 8, 4, 4], np.float32, name="x")
    out = _patched(tmp_path / "b", save_ir(ov.Model([_below_fp16(x)], [x], "spoilt"), tmp_path / "spoilt.xml"))
    result = verify(out)
    assert result.ir_passed and not result.passed
