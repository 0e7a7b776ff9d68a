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


# --- small one-idea models for the blob reader: each compiles to a few stages of known types -----------------

def _single(folder: Path, name: str, build, shapes, dtype=np.float32) -> Path:
    """A model of the nodes `build(*params)` returns, over float inputs of `shapes` named x0, x1, ..."""
    import openvino as ov
    from openvino import opset1

    params = [opset1.parameter(list(s), dtype, name=f"x{i}") for i, s in enumerate(shapes)]
    out = build(*params)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return save_ir(ov.Model(list(outs), params, name), folder / f"{name}.xml")


def _const(shape, seed=0, scale=0.1):
    from openvino import opset1

    return opset1.constant((np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32))


def reader_models() -> dict:
    """name -> builder(folder) -> .xml: small models covering the stage types the blob reader must parse."""
    from openvino import opset1, opset2, opset3, opset4, opset5, opset6

    def i64(v):
        return opset1.constant(np.array(v, np.int64))

    def i32(v):
        return opset1.constant(np.array(v, np.int32))

    def f32(v):
        return opset1.constant(np.array(v, np.float32))

    def conv(x, oc, k, *, dil=1, group=None, name="conv"):
        ic = x.get_partial_shape()[1].get_length()
        if group:
            w = _const((group, oc // group, ic // group, k, k))
            return opset1.group_convolution(x, w, [1, 1], [k // 2 * dil] * 2, [k // 2 * dil] * 2, [dil, dil],
                                            name=name)
        return opset1.convolution(x, _const((oc, ic, k, k)), [1, 1], [k // 2 * dil] * 2, [k // 2 * dil] * 2,
                                  [dil, dil], name=name)

    def interp(x):         # opset1 Interpolate: the plugin's Interp stage (bilinear)
        return opset1.interpolate(x, opset1.constant(np.array([16, 16], np.int64)),
                                  {"axes": [2, 3], "mode": "linear", "align_corners": False}, name="resize")

    def nearest(x):        # opset4 nearest: the plugin's Resample stage
        from openvino import opset10       # the Python opset10 module builds Interpolate-4

        return opset10.interpolate(x, opset1.constant(np.array([16, 16], np.int64)),
                                   opset1.constant(np.array([2.0, 2.0], np.float32)), "nearest", "scales",
                                   coordinate_transformation_mode="asymmetric", nearest_mode="floor",
                                   axes=opset1.constant(np.array([2, 3], np.int64)), name="upsample")

    models = {
        "conv_relu": lambda f: conv_relu(f),
        "conv64": lambda f: _single(f, "conv64", lambda x: opset1.relu(conv(x, 64, 3)), [(1, 32, 16, 16)]),
        "conv_1x1_bias": lambda f: _single(f, "conv_1x1_bias", lambda x: opset1.add(
            conv(x, 16, 1), _const((1, 16, 1, 1), 1)), [(1, 8, 8, 8)]),
        "dilated_conv": lambda f: _single(f, "dilated_conv", lambda x: conv(x, 8, 3, dil=2), [(1, 8, 16, 16)]),
        "depthwise_conv": lambda f: _single(f, "depthwise_conv", lambda x: conv(x, 16, 3, group=16),
                                            [(1, 16, 16, 16)]),
        "maxpool": lambda f: _single(f, "maxpool", lambda x: opset1.max_pool(x, [2, 2], [0, 0], [0, 0], [2, 2]),
                                     [(1, 8, 16, 16)]),
        "avgpool": lambda f: _single(f, "avgpool", lambda x: opset1.avg_pool(x, [2, 2], [1, 1], [1, 1], [3, 3],
                                                                             False), [(1, 8, 16, 16)]),
        "conv_pool": lambda f: _single(f, "conv_pool", lambda x: opset1.max_pool(
            opset1.relu(conv(x, 32, 3)), [2, 2], [0, 0], [0, 0], [2, 2]), [(1, 16, 16, 16)]),
        "fc": lambda f: _single(f, "fc", lambda x: opset1.matmul(x, _const((64, 10)), False, False),
                                [(1, 64)]),
        "matmul": lambda f: _single(f, "matmul", lambda a, b: opset1.matmul(a, b, False, True),
                                    [(1, 4, 8), (1, 6, 8)]),
        "eltwise": lambda f: _single(f, "eltwise", lambda a, b: opset1.maximum(
            opset1.multiply(opset1.add(a, b), b), opset1.subtract(a, b)), [(1, 4, 8, 8), (1, 4, 8, 8)]),
        "compare_select": lambda f: _single(f, "compare_select", lambda a, b: opset1.select(
            opset1.greater(a, b), a,
            opset1.divide(a, opset1.add(opset1.multiply(b, b), opset1.constant(np.float32(1.0))))),
            [(1, 4, 8, 8), (1, 4, 8, 8)]),
        "softmax": lambda f: _single(f, "softmax", lambda x: opset1.softmax(x, 1), [(1, 10, 4, 4)]),
        "permute": lambda f: _single(f, "permute", lambda x: opset1.transpose(
            x, opset1.constant(np.array([0, 2, 3, 1], np.int64))), [(1, 3, 8, 5)]),
        "permute6": lambda f: _single(f, "permute6", lambda x: opset1.transpose(
            x, opset1.constant(np.array([0, 2, 4, 1, 5, 3], np.int64))), [(1, 2, 3, 4, 5, 6)]),
        "concat": lambda f: _single(f, "concat", lambda a, b: opset1.concat(
            [opset1.sigmoid(a), opset1.tanh(b), opset1.exp(a)], 1), [(1, 3, 8, 8), (1, 3, 8, 8)]),
        "mvn": lambda f: _single(f, "mvn", lambda x: opset6.mvn(
            x, opset1.constant(np.array([2, 3], np.int64)), True, 1e-5, "inside_sqrt"), [(1, 4, 8, 8)]),
        "interp": lambda f: _single(f, "interp", interp, [(1, 3, 8, 8)]),
        "resample": lambda f: _single(f, "resample", nearest, [(1, 3, 8, 8)]),
        "pad": lambda f: _single(f, "pad", lambda x: opset1.pad(
            x, opset1.constant(np.array([0, 0, 1, 2], np.int64)), opset1.constant(np.array([0, 0, 2, 1], np.int64)),
            "constant", opset1.constant(np.float32(0.5))), [(1, 3, 8, 8)]),
        "activations": lambda f: _single(f, "activations", lambda x: opset1.clamp(opset1.elu(
            opset4.hswish(opset4.swish(opset1.prelu(x, _const((3,), 2)))), 0.5), -1.0, 4.0), [(1, 3, 8, 8)]),
        "power_floor": lambda f: _single(f, "power_floor", lambda x: opset1.floor(opset1.add(
            opset1.multiply(x, opset1.constant(np.float32(2.0))), opset1.constant(np.float32(0.5)))),
            [(1, 3, 8, 8)]),
        "reduce_gather": lambda f: _single(f, "reduce_gather", lambda x: opset1.gather(
            opset1.reduce_mean(x, opset1.constant(np.array([3], np.int64)), True),
            opset1.constant(np.array([2, 0], np.int32)), opset1.constant(np.int64(1))), [(1, 4, 8, 8)]),
        "strided_slice": lambda f: _single(f, "strided_slice", lambda x: opset1.strided_slice(
            x, opset1.constant(np.array([0, 1, 0, 2], np.int64)), opset1.constant(np.array([1, 3, 8, 8], np.int64)),
            opset1.constant(np.array([1, 1, 2, 1], np.int64)), [0, 0, 0, 0], [0, 0, 0, 0]), [(1, 4, 8, 8)]),
        "topk": lambda f: _single(f, "topk", lambda x: opset3.topk(
            x, opset1.constant(np.int64(3)), 1, "max", "value", "i32").outputs(), [(1, 10, 4, 4)]),
        "tile_broadcast": lambda f: _single(f, "tile_broadcast", lambda x: opset1.tile(opset3.broadcast(
            x, opset1.constant(np.array([2, 3, 4, 4], np.int64))), opset1.constant(np.array([1, 2, 1, 1], np.int64))),
            [(1, 3, 1, 4)]),
        "lrn_normalize": lambda f: _single(f, "lrn_normalize", lambda x: opset1.normalize_l2(opset1.lrn(
            x, opset1.constant(np.array([1], np.int64)), 1e-4, 0.75, 1.0, 3), opset1.constant(np.array([1], np.int64)),
            1e-6, "add"), [(1, 8, 8, 8)]),
        "gelu_round": lambda f: _single(f, "gelu_round", lambda x: opset5.round(opset1.gelu(x) if hasattr(
            opset1, "gelu") else opset6.gelu(x), "half_to_even"), [(1, 3, 8, 8)]),
        "convert_i32": lambda f: _single(f, "convert_i32", lambda x: opset1.convert(opset1.multiply(
            opset1.convert(x, "i32"), opset1.constant(np.array(3, np.int32))), "f32"), [(1, 3, 4, 4)]),
        # stage types with their own layouts: roles and fields the reader must get right
        "reduce_ops": lambda f: _single(f, "reduce_ops", lambda x: [
            opset1.reduce_max(x, i64([1]), False), opset1.reduce_sum(x, i64([1]), False),
            opset1.reduce_min(x, i64([1]), True)], [(1, 4, 6, 6)]),
        "min_squared_diff": lambda f: _single(f, "min_squared_diff", lambda a, b: opset1.add(
            opset1.minimum(a, b), opset1.squared_difference(a, b)), [(1, 4, 6, 6), (1, 4, 6, 6)]),
        "floor_mod": lambda f: _single(f, "floor_mod", lambda a, b: opset1.floor_mod(a, b),
                                       [(1, 4, 6, 6), (1, 4, 6, 6)]),
        "reduce_and": lambda f: _single(f, "reduce_and", lambda a, b: opset1.select(opset1.reduce_logical_and(
            opset1.greater(a, b), i64([1]), True), a, b), [(1, 4, 6, 6), (1, 4, 6, 6)]),
        "gather_nd_elements": lambda f: _single(f, "gather_nd_elements", lambda x: [
            opset5.gather_nd(x, i32([[0, 1], [0, 2]])),
            opset6.gather_elements(x, opset1.constant(np.zeros((1, 4, 6, 6), np.int32)), 1)], [(1, 4, 6, 6)]),
        "scatter": lambda f: _single(f, "scatter", lambda x: [
            opset3.scatter_update(x, i32([1, 0]), f32(np.ones((2, 4, 6, 6))), i64(0)),
            opset3.scatter_elements_update(x, opset1.constant(np.zeros((2, 4, 6, 6), np.int32)),
                                           f32(np.ones((2, 4, 6, 6))), i64(1))], [(2, 4, 6, 6)]),
        "deconv": lambda f: _single(f, "deconv", lambda x: opset1.convolution_backprop_data(
            x, _const((8, 4, 2, 2)), strides=[2, 2], pads_begin=[0, 0], pads_end=[0, 0], dilations=[1, 1]),
            [(1, 8, 8, 8)]),
        "one_hot": lambda f: _single(f, "one_hot", lambda x: opset1.one_hot(
            x, opset1.constant(np.int64(5)), f32(2.0), f32(-1.0), -1), [(1, 6)], np.int32),
        "region_reorg": lambda f: _single(f, "region_reorg", lambda x: [
            opset1.region_yolo(x, 4, 3, 2, True, [], 1, 3), opset2.reorg_yolo(x, [2])], [(1, 16, 8, 8)]),
        "grn": lambda f: _single(f, "grn", lambda x: opset1.grn(x, 1e-3), [(1, 8, 6, 6)]),
        "lstm_cell": lambda f: _single(f, "lstm_cell", lambda x, h, c: opset4.lstm_cell(
            x, h, c, _const((64, 10)), _const((64, 16), 1), _const((64,), 2), 16).outputs(),
            [(2, 10), (2, 16), (2, 16)]),
        "ctc_decoder": lambda f: _single(f, "ctc_decoder", lambda x, m: opset1.ctc_greedy_decoder(x, m, True),
                                         [(20, 1, 8), (20, 1)]),
        "ctc_seq_len": lambda f: _single(f, "ctc_seq_len", lambda x: opset6.ctc_greedy_decoder_seq_len(
            x, i32([12]), i32(7), True, "i32", "i32").outputs(), [(1, 12, 8)]),
        "roi_pooling": lambda f: _single(f, "roi_pooling", lambda x: opset2.roi_pooling(
            x, f32([[0, 1, 1, 6, 6], [0, 0, 0, 4, 4]]), [2, 2], 1.0, "max"), [(1, 4, 8, 8)]),
        "psroi_pooling": lambda f: _single(f, "psroi_pooling", lambda x: opset1.psroi_pooling(
            x, f32([[0, 1, 1, 6, 6], [0, 0, 0, 4, 4]]), 2, 2, 1.0, 1, 1, "average"), [(1, 8, 8, 8)]),
        "reverse_sequence": lambda f: _single(f, "reverse_sequence", lambda x: opset1.reverse_sequence(
            x, f32([3, 1]), 0, 1), [(2, 4, 5)]),
        "dilated_bias_relu": lambda f: _single(f, "dilated_bias_relu", lambda x: opset1.relu(opset1.add(
            conv(x, 8, 3, dil=2), _const((1, 8, 1, 1), 3))), [(1, 8, 16, 16)]),
    }
    return models


def estimate_net(folder: Path, size: int = 32, channels: int = 32, name: str | None = None) -> Path:
    """Two 3x3 convs (the engine), their sum and a sigmoid (SHAVE stages) over a 1x16xSIZExSIZE input: the
    work grows with size**2 and with channels, which `kernelkit estimate` must follow."""
    from openvino import opset1

    def conv(x, oc, layer):
        ic = x.output(0).get_partial_shape()[1].get_length()
        return opset1.convolution(x, _const((oc, ic, 3, 3)), [1, 1], [1, 1], [1, 1], [1, 1], name=layer)

    def build(x):
        first = opset1.relu(conv(x, channels, "conv_a"), name="relu_a")
        summed = opset1.add(first, conv(first, channels, "conv_b"), name="residual")
        return opset1.sigmoid(summed, name="gate")

    return _single(folder, name or f"estimate_{size}_{channels}", build, [(1, 16, size, size)])
