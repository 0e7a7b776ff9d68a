"""`patch` uses the device estimate (docs/estimate.md, "In patch"): the patched blob's estimate against the straight
compile's, and per layer with both a native formulation and a library kernel, each form's estimated cost from real
compiled blobs (the kernel's from the check blob the plugin compiles with metadata-only ELFs); --prefer fastest
binds the kernel where the formulation is estimated more than estimate_use.SLOWER times its time.

Every blob here is compiled by the real MYRIAD 2021.4 plugin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kernelkit.cli import main
from myriad_models import _single, relu_onnx, require_toolchain, save_ir



def _patch(capsys, model: Path, out: Path, *extra) -> tuple[int, dict, str]:
    code = main(["patch", str(model), "-o", str(out), *extra])
    text = capsys.readouterr().out
    return code, json.loads((out / "patch-report.json").read_text()), text


def _stage_overhead_ms() -> float:
    from kernelkit.facts.rvc2 import estimate_params

    return estimate_params()["fitted"]["stage_overhead"] * 1e3


def _mlp_v10(folder: Path) -> Path:
    """x [1, 8, 8, 16] @ W [16, 24]: the plugin runs the MatMul as one FullyConnected stage per row (64 rows);
    patch's fc_as_conv makes it one 1x1 convolution."""
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 8, 8, 16], np.float32, name="x")
    w = (np.random.default_rng(0).standard_normal((16, 24)) * 0.2).astype(np.float32)
    y = opset1.relu(opset1.matmul(x, opset1.constant(w), False, False), name="act")
    return save_ir(ov.Model([y], [x], "mlp"), folder / "mlp.xml")


def _atan(folder: Path) -> Path:
    from openvino import opset1

    return _single(folder, "atan", lambda x: opset1.atan(opset1.relu(x), name="angle"), [[1, 8, 16, 16]])


@pytest.mark.toolchain
def test_a_rewrite_for_speed_is_estimated_faster_than_the_straight_compile(tmp_path, capsys):
    require_toolchain()
    code, report, text = _patch(capsys, _mlp_v10(tmp_path), tmp_path / "out")
    assert code == 0 and [c["patcher"] for c in report["changes"]] == ["fc_as_conv"]
    estimate = report["estimate"]
    straight = estimate["straight"]
    assert straight["compiled"] is True and straight["asked"] is True and straight["shaves"] == estimate["shaves"]
    # The straight blob runs 64 FullyConnected rows, each a stage paying at least the per-stage cost.
    assert straight["latency_ms"] >= 64 * _stage_overhead_ms()
    assert estimate["latency_ms"] < straight["latency_ms"] and estimate["fps"] > straight["fps"]
    vs = estimate["vs_straight"]
    assert vs["fps_change_percent"] == pytest.approx((estimate["fps"] / straight["fps"] - 1) * 100, abs=0.1)
    assert vs["latency_change_ms"] < 0
    assert (f"{estimate['fps']:.1f} FPS patched vs {straight['fps']:.1f} straight "
            f"({vs['fps_change_percent']:+.0f} %)") in text


@pytest.mark.toolchain
def test_a_model_needing_no_rewrite_is_estimated_as_its_straight_compile(tmp_path, capsys):
    require_toolchain()
    # ONNX: the plugin's own ONNX reader compiles the file; patch changes only the IR version it is written in.
    code, report, _ = _patch(capsys, relu_onnx(tmp_path), tmp_path / "out")
    assert code == 0 and {c["patcher"] for c in report["changes"]} <= {"ir", "version", "boundary"}
    estimate, straight = report["estimate"], report["estimate"]["straight"]
    assert straight["compiled"] is True and straight["asked"] is True and not straight.get("same_blob")
    assert straight["latency_ms"] == pytest.approx(estimate["latency_ms"], rel=0.01)
    assert straight["ddr_need_bytes"] == pytest.approx(estimate["ddr_need_bytes"], rel=0.05)
    assert abs(estimate["vs_straight"]["fps_change_percent"]) <= 1


@pytest.mark.toolchain
def test_an_unchanged_ir_reuses_the_patched_blob_as_the_straight_one(tmp_path, capsys):
    require_toolchain()
    from openvino import opset1

    model = _single(tmp_path, "relu", lambda x: opset1.relu(x, name="act"), [[1, 8, 8, 8]])
    code, report, text = _patch(capsys, model, tmp_path / "out")
    assert code == 0 and report["changes"] == []
    straight = report["estimate"]["straight"]
    assert straight["same_blob"] is True and straight["asked"] is False
    assert straight["latency_ms"] == report["estimate"]["latency_ms"]
    assert "patched and straight (the same graph)" in text


@pytest.mark.toolchain
def test_a_straight_model_the_plugin_refuses_gets_no_compile_and_says_why(tmp_path, capsys):
    require_toolchain()
    code, report, text = _patch(capsys, _atan(tmp_path), tmp_path / "out")
    assert code == 0
    straight = report["estimate"]["straight"]
    assert straight["compiled"] is False and straight["asked"] is False
    assert "angle" in straight["reason"] and "Atan" in straight["reason"]
    assert "vs_straight" not in report["estimate"]
    assert "the straight model does not compile (angle: Atan" in text


@pytest.mark.toolchain
def test_prefer_native_keeps_the_formulation_and_records_both_costs(tmp_path, capsys):
    require_toolchain()
    code, report, text = _patch(capsys, _atan(tmp_path), tmp_path / "out")
    assert code == 0
    (choice,) = report["choices"]
    assert choice["chosen"] == "native"           # the default's choice does not change with the costs
    cost = choice["cost"]
    # A formulation of atan is a chain of native ops, each its own stage; the kernel is one Custom stage.
    assert cost["native_stages"] > 3 * cost["kernel_stages"] >= 3
    for form in ("native", "kernel"):
        assert cost[f"{form}_ms"] >= cost[f"{form}_stages"] * _stage_overhead_ms() * 0.999
    assert cost["native_over_kernel"] == pytest.approx(cost["native_ms"] / cost["kernel_ms"], rel=0.01)
    assert cost["native_over_kernel"] > 2 and "--prefer fastest binds the kernel" in cost["note"]
    # the formulation's stages are part of the patched blob's latency
    assert cost["native_ms"] < report["estimate"]["latency_ms"]
    assert "angle: native formulation" in text and "vs library kernel" in text


@pytest.mark.toolchain
def test_prefer_fastest_binds_the_kernel_where_the_formulation_is_much_slower(tmp_path, capsys):
    require_toolchain()
    code, report, _ = _patch(capsys, _atan(tmp_path), tmp_path / "out", "--prefer", "fastest")
    assert code == 4                                 # the kernel's SHAVE .bin needs clc
    assert report["prefer"] == "fastest" and report["plugin"]["status"] == "needs-clc"
    (choice,) = report["choices"]
    assert choice["chosen"] == "kernel" and choice["reason"].startswith("--prefer fastest")
    assert choice["cost"]["decision"] == "kernel (--prefer fastest)" and choice["cost"]["native_over_kernel"] > 2
    assert "plugin_taught" not in report            # the estimate chose it, not a refusal of the plugin
    assert [c["patcher"] for c in report["changes"]] == ["custom_layer"]


@pytest.mark.toolchain
def test_prefer_fastest_keeps_a_formulation_within_the_factor(tmp_path, capsys):
    require_toolchain()
    from kernelkit.core.paths import EXAMPLES_DIR

    model = EXAMPLES_DIR / "blocked_model" / "model.onnx"
    code, report, _ = _patch(capsys, model, tmp_path / "out", "--prefer", "fastest")
    assert code == 0
    costs = {c["layer"]: c for c in report["choices"]}
    assert set(costs) == {"gate", "running_sum"}
    for choice in costs.values():
        cost = choice["cost"]
        assert cost["native_ms"] and cost["kernel_ms"]
        assert cost["native_over_kernel"] <= 2 and choice["chosen"] == "native" and "decision" not in cost


def test_the_slower_factor_decides_the_note_not_the_default_choice():
    from kernelkit.doctor.estimate_use import SLOWER, choice_cost

    native = {"seconds": 300e-6, "stages": 12}
    for kernel_seconds, says in ((100e-6, "--prefer fastest binds the kernel"), (200e-6, "within"),
                                 (700e-6, "the library kernel is estimated")):
        cost = choice_cost({"layer": "a", "chosen": "native"}, native, {"seconds": kernel_seconds, "stages": 1})
        assert cost["native_ms"] == 0.3 and cost["kernel_ms"] == pytest.approx(kernel_seconds * 1e3)
        assert says in cost["note"], cost
        assert (cost["native_over_kernel"] > SLOWER) == (says.startswith("--prefer"))
    # the kernel chosen: the folder's blob holds the kernel's stages, the other patch the formulation's
    cost = choice_cost({"layer": "a", "chosen": "kernel"}, {"seconds": 100e-6, "stages": 1}, None, "refused")
    assert cost["kernel_ms"] == 0.1 and cost["native_ms"] is None and cost["note"].endswith(": refused")


def test_a_straight_compile_that_cannot_take_the_file_as_it_is_is_not_run(tmp_path):
    from kernelkit.doctor.estimate_use import straight_record

    found = straight_record(tmp_path / "m.xml", {}, None, changed=True, known_refusal=None, options_given=True)
    assert found["compiled"] is None and "--input-shape" in found["reason"]
    found = straight_record(tmp_path / "m.tflite", {}, None, changed=True, known_refusal=None, options_given=False)
    assert found["compiled"] is None and ".tflite" in found["reason"]
    found = straight_record(tmp_path / "m.onnx", {}, None, changed=True, known_refusal="x: refused",
                            options_given=False)
    assert found == {"compiled": False, "asked": False, "reason": "x: refused"}
