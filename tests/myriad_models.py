"""Small models for the MYRIAD toolchain tests (compile, blob, archive, oracle), built with the host OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def save_ir(model, xml: Path, version: int = 10) -> Path:
    import openvino as ov

    if version == 10:
        model.set_rt_info(10, "version")
        ov.serialize(model, str(xml), version="IR_V10")
    else:
        ov.serialize(model, str(xml))
    return xml


def conv_relu(folder: Path, name: str = "convrelu", version: int = 10, dtype=np.float32) -> Path:
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 3, 32, 32], dtype, name="input")
    weights = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(dtype)
    conv = opset1.convolution(x, opset1.constant(weights), [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    relu = opset1.relu(conv, name="relu")
    return save_ir(ov.Model([relu], [x], name), folder / f"{name}.xml", version)


def cumsum(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1, opset3

    x = opset1.parameter([1, 3, 8, 8], np.float16, name="x")
    node = opset3.cumsum(x, opset1.constant(np.int32(1)), name="running_total")
    return save_ir(ov.Model([node], [x], "cumsum"), folder / "cumsum.xml")


def greater_i32(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1

    a = opset1.parameter([1, 4], np.int32, name="a")
    b = opset1.parameter([1, 4], np.int32, name="b")
    node = opset1.greater(a, b, name="is_bigger")
    return save_ir(ov.Model([node], [a, b], "greater"), folder / "greater_i32.xml")


def opset8_softmax(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1, opset8

    x = opset1.parameter([1, 10], np.float32, name="x")
    node = opset8.softmax(x, -1, name="probs")
    return save_ir(ov.Model([node], [x], "softmax8"), folder / "softmax8.xml")


def relu_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6  # the 2021.4 ONNX importer predates newer IR versions
    path = folder / "relu.onnx"
    onnx.save(model, str(path))
    return path


def require_toolchain():
    """The provisioned legacy toolchain, or a loud skip saying how to get it."""
    from kernelkit.myriad import toolchain

    tc = toolchain.locate()
    missing = [c.name for c in tc.components() if not c.present]
    if missing:
        pytest.skip(f"LEGACY MYRIAD TOOLCHAIN NOT PROVISIONED in {tc.root} (missing: {', '.join(missing)}); "
                    "run `kernelkit toolchain setup` to run these tests")
    return tc


def compile_blob(source, blob: Path):
    """`kernelkit compile` of a model file or patch folder to `blob`, skipping loudly without the toolchain."""
    from kernelkit.doctor.workflow import compile_folder

    require_toolchain()
    return compile_folder(source, blob)


def read_blob_with_depthai(path: Path):
    import os

    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai.OpenVINO.Blob(str(path))


def yolo_tlbr(folder: Path, classes: int = 3, size: int = 64, name: str = "yolo") -> Path:
    """A detector whose outputs have the head layout luxonis/tools exports for DepthAI's TLBR YOLO decoding: one
    output per stride (8, 16, 32) named `output{i}_yolov8`, channels [l, t, r, b distances in cells, max class
    score, class scores]."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(7)

    def conv(x, out_ch, kernel, stride, name=None, gain=1.0):
        weights = rng.standard_normal((out_ch, x.get_output_partial_shape(0)[1].get_length(), kernel, kernel))
        weights = (weights * gain / np.sqrt(weights[0].size)).astype(np.float32)
        return opset1.convolution(x, opset1.constant(weights), [stride, stride], [0, 0], [0, 0], [1, 1], name=name)

    x = opset1.parameter([1, 3, size, size], np.float32, name="images")     # values 0..1
    features = opset1.relu(conv(x, 16, 8, 8, gain=2.0))
    outputs = []
    for level in range(3):
        if level:
            features = opset1.relu(conv(features, 16, 2, 2))
        box = opset1.relu(conv(features, 4, 1, 1, gain=4.0))
        scores = opset1.sigmoid(conv(features, classes, 1, 1, gain=6.0))
        best = opset1.reduce_max(scores, opset1.constant(np.array([1], np.int64)), keep_dims=True)
        outputs.append(opset1.concat([box, best, scores], 1, name=f"output{level + 1}_yolov8"))
    return save_ir(ov.Model(outputs, [x], name), folder / f"{name}.xml")


def ssd(folder: Path, classes: int = 4, size: int = 32, name: str = "ssd") -> Path:
    """An SSD-style detector ending in DetectionOutput ([1, 1, N, 7] rows), the layout DepthAI's SSD parser reads."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(11)
    x = opset1.parameter([1, 3, size, size], np.float32, name="image")
    grid = 4
    weights = (rng.standard_normal((8, 3, size // grid, size // grid)) * 0.05).astype(np.float32)
    features = opset1.relu(opset1.convolution(x, opset1.constant(weights), [size // grid] * 2, [0, 0], [0, 0],
                                              [1, 1]))
    priors = grid * grid

    def head(channels, scale):
        w = (rng.standard_normal((channels, 8, 1, 1)) * scale).astype(np.float32)
        out = opset1.convolution(features, opset1.constant(w), [1, 1], [0, 0], [0, 0], [1, 1])
        out = opset1.transpose(out, opset1.constant(np.array([0, 2, 3, 1], np.int64)))
        return opset1.reshape(out, opset1.constant(np.array([1, -1], np.int64)), False)

    loc = head(4, 0.3)
    logits = opset1.reshape(head(classes, 3.0), opset1.constant(np.array([1, priors, classes], np.int64)), False)
    conf = opset1.reshape(opset1.softmax(logits, 2), opset1.constant(np.array([1, -1], np.int64)), False)
    centres = (np.arange(grid) + 0.5) / grid
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    boxes = np.stack([cx - 0.2, cy - 0.2, cx + 0.2, cy + 0.2], -1).reshape(-1)
    variances = np.tile([0.1, 0.1, 0.2, 0.2], priors)
    prior_data = opset1.constant(np.stack([boxes, variances])[None].astype(np.float32))
    detections = opset1.detection_output(loc, conf, prior_data, {
        "num_classes": classes, "background_label_id": 0, "top_k": 50, "keep_top_k": [20],
        "code_type": "caffe.PriorBoxParameter.CENTER_SIZE", "nms_threshold": 0.45, "confidence_threshold": 0.2,
        "share_location": True, "variance_encoded_in_target": False, "normalized": True}, name="detection_out")
    return save_ir(ov.Model([detections], [x], name), folder / f"{name}.xml")
