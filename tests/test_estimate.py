"""`kernelkit estimate` (kernelkit.myriad.estimate) on blobs the real 2021.4 plugin compiled here from small models
(tests/myriad_models.estimate_net), and the calibration's recorded rows against the shipped rates.

Expected values come from the models (their shapes), from depthai's own blob reader and the file on disk, never
from the estimator: the estimate must grow with input size and with work, its stage rows must be the blob's stage
records and sum to its totals, its memory must add up to what the blob header and file say.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from kernelkit.core.errors import KernelkitError
from myriad_models import estimate_net, read_blob_with_depthai, require_toolchain
from test_blob_reader import _cli

REPO = Path(__file__).resolve().parents[1]
FEATURES = REPO / "benchmarks" / "data" / "estimate-features.json"
CALIBRATION = REPO / "benchmarks" / "data" / "estimate-calibration.json"
SIZES = (16, 32, 64)


@pytest.fixture(scope="session")
def blobs(tmp_path_factory) -> dict:
    """(size, channels) -> blob compiled at 8 SHAVEs (a second or two each)."""
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("estimate-blobs")
    out = {}
    for size, channels in [(s, 32) for s in SIZES] + [(32, 64)]:
        xml = estimate_net(folder, size, channels)
        out[size, channels] = compile_model(xml, folder / f"{xml.stem}.blob", shaves=8).blob_path
    return out


def _estimate(blob, **kw):
    from kernelkit.api import estimate

    return estimate(blob, **kw)


@pytest.mark.toolchain
def test_latency_grows_with_input_size(blobs):
    ests = [_estimate(blobs[s, 32]) for s in SIZES]
    lat = [e.latency_s for e in ests]
    assert lat[0] < lat[1] < lat[2]
    engine = [e.parts["engine"] for e in ests]
    # the engine's work is Ho*Wo per output pixel: 4x the pixels, about 4x the engine time (tiling adds some)
    assert 3.0 < engine[2] / engine[1] < 5.5 and 3.0 < engine[1] / engine[0] < 5.5
    assert ests[0].fps > ests[1].fps > ests[2].fps


@pytest.mark.toolchain
def test_latency_grows_with_work(blobs):
    narrow, wide = _estimate(blobs[32, 32]), _estimate(blobs[32, 64])
    assert wide.parts["engine"] > narrow.parts["engine"] and wide.latency_s > narrow.latency_s
    assert wide.parts["shave"] > narrow.parts["shave"]          # the sum and sigmoid move twice the bytes


@pytest.mark.toolchain
def test_more_shaves_never_slower_and_one_thread_has_lower_fps(blobs):
    base = _estimate(blobs[64, 32])
    assert _estimate(blobs[64, 32], shaves=4).latency_s > base.latency_s >= _estimate(blobs[64, 32],
                                                                                       shaves=16).latency_s
    assert _estimate(blobs[64, 32], threads=1).fps < base.fps
    curve = base.shave_curve
    assert sorted(curve) == list(range(1, 17)) and all(curve[n] >= curve[n + 1] for n in range(1, 16))
    assert curve[base.shaves] == pytest.approx(base.latency_s, rel=1e-12)
    enough = base.enough_shaves
    assert curve[enough] <= 1.05 * curve[16] and (enough == 1 or curve[enough - 1] > 1.05 * curve[16])


@pytest.mark.toolchain
def test_stages_are_the_blob_records_and_sum_to_the_totals(blobs):
    blob = blobs[32, 32]
    est = _estimate(blob)
    dai = read_blob_with_depthai(blob)
    injected = sum(1 for s in est.stages if s.injected)
    assert len(est.stages) - injected == dai.stageCount
    assert sum(s.seconds for s in est.stages) == pytest.approx(est.latency_s, rel=1e-12)
    assert sum(est.parts.values()) == pytest.approx(est.latency_s, rel=1e-12)
    record = est.to_dict()
    assert record["latency_ms"] == pytest.approx(sum(s["seconds"] for s in record["stages"]) * 1e3, rel=1e-12)
    assert {s.type for s in est.stages} >= {"MyriadXHwOp"}
    assert any(s.category == "SHAVE" and s.shave > 0 for s in est.stages)
    # the HW stages are named by the model's conv layers (the graph dump beside the blob)
    names = {n for s in est.stages if s.type == "MyriadXHwOp" for n, _ in s.layers}
    assert {"conv_a", "conv_b"} <= names


@pytest.mark.toolchain
def test_memory_adds_up_to_the_blob(blobs):
    blob = blobs[32, 32]
    est = _estimate(blob)
    ddr, cmx = est.memory["ddr"], est.memory["cmx"]
    dai = read_blob_with_depthai(blob)
    assert ddr["blob_bytes"] == blob.stat().st_size
    assert ddr["weights_bytes"] + ddr["blob_other_bytes"] == blob.stat().st_size
    # the model's input 1x16x32x32 and output 1x32x32x32 as the blob's I/O (fp16 or fp32 as depthai says)
    elem = {"FP16": 2, "F16": 2, "FP32": 4, "F32": 4, "U8": 1}
    (inp,), (out,) = dai.networkInputs.values(), dai.networkOutputs.values()
    assert ddr["inputs_bytes"] >= 16 * 32 * 32 * elem[str(inp.dataType).split(".")[-1]]
    assert ddr["outputs_bytes"] >= 32 * 32 * 32 * elem[str(out.dataType).split(".")[-1]]
    assert ddr["need_bytes"] == (ddr["blob_bytes"] + 2 * (ddr["bss_bytes"] + ddr["inputs_bytes"] +
                                                          ddr["outputs_bytes"]) + ddr["output_pool_bytes"])
    assert cmx["slices"] == dai.numSlices == 8 and cmx["bytes"] == 8 * 128 * 1024
    assert 0 < cmx["peak_bytes"] <= cmx["bytes"] and cmx["fits"] and ddr["fits"]


@pytest.mark.toolchain
def test_cmx_past_the_slices_says_the_device_message(blobs):
    est = _estimate(blobs[64, 32], shaves=1)         # compiled for 8 slices, run on 1
    cmx = est.memory["cmx"]
    assert cmx["slices"] == 1 and cmx["peak_bytes"] > 128 * 1024 and not cmx["fits"]
    assert cmx["device_message"] == "CMX memory is not enough!" and "--shaves 1" in cmx["what_to_change"]


@pytest.mark.toolchain
def test_ddr_past_the_heap_says_the_device_message(blobs):
    from kernelkit.facts.rvc2 import estimate_params
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.estimate import estimate_blob

    blob = blobs[32, 32]
    params = copy.deepcopy(estimate_params())
    params["memory"]["ddr_heap_bytes"] = blob.stat().st_size      # the blob alone fills the heap
    ddr = estimate_blob(read_blob(blob), params=params).memory["ddr"]
    assert not ddr["fits"]
    assert ddr["device_message"] == (f"Tried to allocate '{ddr['need_bytes']}'B out of "
                                     f"'{blob.stat().st_size}'B available.")


# ------------------------------------------------------------------------------------------------ the CLI

@pytest.mark.toolchain
def test_cli_text_and_json(blobs):
    blob = blobs[32, 32]
    code, out, err = _cli("estimate", blob)
    assert code == 0 and not err
    assert "OAK (RVC2), 8 SHAVEs, 2 inference threads" in out and " FPS " in out
    assert "conv_a" in out and "DDR: needs" in out and "CMX: peak" in out
    code, out, err = _cli("estimate", blob, "--json", "--threads", "1", "--shaves", "12")
    assert code == 0
    record = json.loads(out)
    assert record["threads"] == 1 and record["shaves"] == 12 and record["blob_shaves"] == 8
    assert math.isclose(record["fps"], 1000 / record["latency_ms"], rel_tol=1e-12)
    code, out, _ = _cli("estimate", blobs[64, 32], "--shaves", "1")
    assert code == 1 and "CMX memory is not enough!" in out


@pytest.mark.toolchain
def test_patch_folder_input(tmp_path):
    require_toolchain()
    import kernelkit

    xml = estimate_net(tmp_path, 16, 16, name="user_model")
    folder = tmp_path / "out"
    result = kernelkit.patch(xml, folder, compile=True)
    assert result.exit_code == 0 and (folder / "model.blob").is_file()
    code, out, _ = _cli("estimate", folder)
    assert code == 0 and str(folder / "model.blob") in out and "conv_a" in out
    # patch recorded the estimate of the blob it compiled
    recorded = json.loads((folder / "patch-report.json").read_text())["estimate"]
    code, out, _ = _cli("estimate", folder, "--json")
    now = json.loads(out)
    assert recorded["latency_ms"] == round(now["latency_ms"], 2) and recorded["shaves"] == now["blob_shaves"]
    assert recorded["ddr_need_bytes"] == now["memory"]["ddr"]["need_bytes"] and recorded["ddr_fits"]


def test_bad_input_exits_2(tmp_path):
    junk = tmp_path / "junk.blob"
    junk.write_bytes(b"not a blob at all" * 10)
    code, _, err = _cli("estimate", junk)
    assert code == 2 and "junk.blob" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    code, _, err = _cli("estimate", tmp_path / "empty")
    assert code == 2 and "model.blob" in err and "kernelkit compile" in err
    code, _, err = _cli("estimate", tmp_path / "missing.blob")
    assert code == 2 and "missing.blob" in err
    code, _, err = _cli("estimate", junk, "--threads", "3")
    assert code == 2


@pytest.mark.toolchain
def test_bad_shaves_exits_2(blobs):
    code, _, err = _cli("estimate", blobs[16, 32], "--shaves", "17")
    assert code == 2 and "--shaves" in err


# -------------------------------------------------------------------------- the published rows (recorded)

def test_published_rows_stay_within_their_recorded_error():
    """Each published RVC2 row, from the features recorded off its blob (benchmarks/estimate_calibration.py),
    with the shipped rates: its error must not drift past what docs/estimate.md records, nor past 2x."""
    from kernelkit.facts.rvc2 import estimate_params
    from kernelkit.myriad.estimate import latency_from_features

    params = estimate_params()
    features = json.loads(FEATURES.read_text())
    recorded = json.loads(CALIBRATION.read_text())
    overlap = params["assumed"]["two_thread_overlap"]
    assert len(recorded["rows"]) >= 8
    for row, rec in recorded["rows"].items():
        fps = overlap / latency_from_features(features[row], params)
        error = fps / rec["published_fps"] - 1
        assert abs(error) <= abs(rec["error"]) + 0.01, (row, fps, rec)
        assert 0.5 <= fps / rec["published_fps"] <= 2.0, (row, fps, rec)


@pytest.mark.toolchain
def test_compile_prints_the_estimate_and_shave_advice(tmp_path):
    require_toolchain()
    xml = estimate_net(tmp_path, 64, 32, name="advice")
    blob = tmp_path / "advice.blob"
    code, out, err = _cli("compile", xml, "-o", blob, "--shaves", "8")
    assert code == 0, err
    est = _estimate(blob)
    line = [x for x in out.splitlines() if x.startswith("estimate on an OAK")]
    assert len(line) == 1 and f"{est.latency_s * 1e3:.1f} ms" in line[0]
    assert f"(--shaves {est.enough_shaves})" in line[0] and "memory fits" in line[0]


@pytest.mark.toolchain
def test_recorded_features_give_the_same_latency_as_the_blob(blobs):
    """The drift test above recomputes the published rows from recorded totals: those totals must give what the
    estimate of the blob itself gives."""
    from kernelkit.facts.rvc2 import estimate_params
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.estimate import estimate_blob, latency_from_features, model_features

    for blob in blobs.values():
        model = read_blob(blob)
        assert latency_from_features(model_features(model), estimate_params()) == pytest.approx(
            estimate_blob(model).latency_s, rel=1e-9)
