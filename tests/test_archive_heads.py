"""`kernelkit archive --head`: heads read back through DepthAI's nn_archive.v1 types, and DepthAI's own
DetectionParser, run on this host from the archive, decoding a model's head outputs (OpenVINO CPU on the IR)
into the same detections as an independent numpy decoding of those outputs."""

from __future__ import annotations

import json
import os
import tarfile

import numpy as np
import pytest

from kernelkit.cli import main
from myriad_models import compile_blob, conv_relu, require_toolchain, save_ir, ssd, yolo_tlbr


def depthai():
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai


def cpu_outputs(xml, image):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(xml))
    # named as the blob names them: by the layer that feeds each result
    names = [result.input_value(0).get_node().get_friendly_name() for result in model.get_results()]
    values = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(image)
    return {name: np.asarray(values[i]) for i, name in enumerate(names)}


def host_parse(archive, tensors: dict, width: int, height: int):
    """(parser, ImgDetections): DepthAI's DetectionParser on the host, configured from the archive alone, fed one
    NNData of `tensors`."""
    dai = depthai()
    pipeline = dai.Pipeline(False)
    parser = pipeline.create(dai.node.DetectionParser)
    parser.setRunOnHost(True)
    parser.setNNArchive(dai.NNArchive(str(archive)))
    to_parser = parser.input.createInputQueue()
    detections = parser.out.createOutputQueue()
    pipeline.start()
    try:
        data = dai.NNData()
        for name, array in tensors.items():
            # depthai's addTensor gives a 4-D tensor a zero batch stride, which its parser refuses: pass C, H, W.
            data.addTensor(name, np.ascontiguousarray(array[0] if array.ndim == 4 else array, np.float32),
                           dai.TensorInfo.DataType.FP32)
        data.setTransformation(dai.ImgTransformation(width, height))
        to_parser.send(data)
        result = detections.get()
    finally:
        pipeline.stop()
    return parser, result


def run_detection_parser(archive, tensors: dict, width: int, height: int):
    """DepthAI's host DetectionParser's detections as (label, name, confidence, xmin, ymin, xmax, ymax)."""
    _, result = host_parse(archive, tensors, width, height)
    return [(d.label, d.labelName, d.confidence, d.xmin, d.ymin, d.xmax, d.ymax) for d in result.detections]


# ---------------------------------------------------------------------------------- independent decoders

def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w >= 0 and h >= 0 else 0.0
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def decode_tlbr(outputs: dict, strides, width, height, conf, iou_threshold, names):
    """YOLO TLBR (v6r2/v8/v10/11 as luxonis/tools exports it): per cell, distances l, t, r, b in cells from the
    cell centre, then greedy NMS over all strides; boxes normalised to the input size."""
    candidates = []
    for (name, grid), stride in zip(sorted(outputs.items()), strides):
        grid = grid[0]
        for row in range(grid.shape[1]):
            for col in range(grid.shape[2]):
                cell = grid[:, row, col]
                label = int(np.argmax(cell[5:]))
                score = float(cell[5 + label])
                if cell[4] < conf or score < conf:
                    continue
                l, t, r, b = cell[:4]
                box = [(col - l + 0.5) * stride, (row - t + 0.5) * stride,
                       (col + r + 0.5) * stride, (row + b + 0.5) * stride]
                box = [min(max(v, 0.0), lim) for v, lim in zip(box, (width, height, width, height))]
                if box[2] > box[0] and box[3] > box[1]:
                    candidates.append((score, label, box))
    candidates.sort(key=lambda c: -c[0])
    kept = []
    for c in candidates:
        if all(iou(c[2], k[2]) < iou_threshold for k in kept):
            kept.append(c)
    return [(label, names[label], score, box[0] / width, box[1] / height, box[2] / width, box[3] / height)
            for score, label, box in kept]


def decode_ssd_rows(rows, conf):
    """DetectionOutput rows [image_id, label, confidence, xmin, ymin, xmax, ymax], normalised; -1 ends them."""
    found = []
    for row in rows.reshape(-1, 7):
        if row[0] == -1:
            break
        if row[2] >= conf:
            found.append((int(row[1]), float(row[2]), *map(float, row[3:])))
    return found


def same_detections(ours, theirs):
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs):
        assert a[0] == b[0] and a[1] == b[1], (a, b)
        assert np.allclose(a[2:], b[2:], atol=1e-5), (a, b)


# ---------------------------------------------------------------------------------------------- archives

@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    require_toolchain()
    folder = tmp_path_factory.mktemp("yolo")
    xml = yolo_tlbr(folder)
    assert main(["compile", str(xml), "-o", str(folder / "yolo.superblob")]) == 0
    return folder, xml


@pytest.mark.toolchain
def test_depthai_decodes_the_yolo_head_as_numpy_does(yolo, tmp_path):
    folder, xml = yolo
    archive = tmp_path / "yolo.tar.xz"
    assert main(["archive", str(folder / "yolo.superblob"), "-o", str(archive), "--head", "yolo",
                 "--subtype", "yolov8", "--classes", "cat,dog,bird", "--conf-threshold", "0.55",
                 "--iou-threshold", "0.4"]) == 0
    image = np.random.default_rng(3).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    outputs = cpu_outputs(xml, image)
    assert sorted(outputs) == ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    expected = decode_tlbr(outputs, [8, 16, 32], 64, 64, 0.55, 0.4, ["cat", "dog", "bird"])
    assert len(expected) >= 3, "the test model should give several detections"
    same_detections(expected, run_detection_parser(archive, outputs, 64, 64))


@pytest.mark.toolchain
def test_yolo_head_reads_back_through_depthai_types(yolo, tmp_path):
    folder, _ = yolo
    archive = tmp_path / "v5.tar.xz"
    anchors = [[[10, 13]], [[30, 61]], [[116, 90]]]
    assert main(["archive", str(folder / "yolo.superblob"), "-o", str(archive), "--head", "yolo",
                 "--subtype", "yolov5", "--n-classes", "3", "--anchors", json.dumps(anchors), "--max-det", "50",
                 "--strides", "8,16,32"]) == 0
    dai = depthai()
    nn = dai.NNArchive(str(archive))
    assert str(nn.getModelType()).endswith("SUPERBLOB")
    (head,) = nn.getConfigV1().model.heads
    assert isinstance(head, dai.nn_archive.v1.Head) and head.parser == "YOLO"
    meta = head.metadata
    assert meta.subtype == "yolov5" and meta.nClasses == 3 and meta.classes == ["0", "1", "2"]
    assert meta.yoloOutputs == ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    assert meta.anchors == anchors and meta.strides == [8, 16, 32] and meta.maxDet == 50
    assert meta.iouThreshold == pytest.approx(0.5) and meta.confThreshold == pytest.approx(0.5)
    parser = dai.Pipeline(False).create(dai.node.DetectionParser)
    parser.setNNArchive(nn)
    assert parser.getSubtype() == "yolov5" and parser.getNumClasses() == 3 and parser.getStrides() == [8, 16, 32]


@pytest.mark.toolchain
def test_depthai_decodes_the_ssd_head_as_numpy_does(tmp_path):
    require_toolchain()
    xml = ssd(tmp_path)
    assert main(["compile", str(xml), "-o", str(tmp_path / "ssd.superblob")]) == 0
    archive = tmp_path / "ssd.tar.xz"
    assert main(["archive", str(tmp_path / "ssd.superblob"), "-o", str(archive), "--head", "ssd",
                 "--classes", "background,car,person,bike", "--conf-threshold", "0.3"]) == 0
    (head,) = depthai().NNArchive(str(archive)).getConfigV1().model.heads
    assert head.parser == "SSD" and head.outputs == ["detection_out"] and head.metadata.maxDet == 20
    image = np.random.default_rng(5).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    outputs = cpu_outputs(xml, image)
    expected = decode_ssd_rows(outputs["detection_out"], 0.3)
    assert len(expected) >= 2, "the test model should give several detections"
    names = ["background", "car", "person", "bike"]
    same_detections([(label, names[label], *rest) for label, *rest in expected],
                    [(label, names[label], *rest) for label, _, *rest in
                     run_detection_parser(archive, outputs, 32, 32)])


@pytest.mark.toolchain
def test_classification_and_segmentation_heads_read_back(tmp_path):
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 64], np.float32, name="features")
    save_ir(ov.Model([opset1.softmax(x, 1, name="probs")], [x], "cls"), tmp_path / "cls.xml")
    compile_blob(tmp_path / "cls.xml", tmp_path / "cls.blob")
    assert main(["archive", str(tmp_path / "cls.blob"), "-o", str(tmp_path / "cls.tar.xz"),
                 "--head", "classification", "--is-softmax"]) == 0
    seg_blob = compile_blob(conv_relu(tmp_path, "seg"), tmp_path / "seg.blob").blob_path
    assert main(["archive", str(seg_blob), "-o", str(tmp_path / "seg.tar.xz"), "--head", "segmentation"]) == 0
    dai = depthai()
    (cls,) = dai.NNArchive(str(tmp_path / "cls.tar.xz")).getConfigV1().model.heads
    assert cls.parser == "ClassificationParser" and cls.outputs == ["probs"]
    assert cls.metadata.nClasses == 64 and cls.metadata.isSoftmax is True and len(cls.metadata.classes) == 64
    (seg,) = dai.NNArchive(str(tmp_path / "seg.tar.xz")).getConfigV1().model.heads
    assert seg.parser == "SegmentationParser" and seg.metadata.nClasses == 8 and seg.metadata.isSoftmax is False


@pytest.mark.toolchain
def test_bad_head_options_exit_2_naming_the_option(yolo, tmp_path, capsys):
    folder, _ = yolo
    source = str(folder / "yolo.superblob")
    cases = [
        (["--subtype", "yolov8"], "--subtype", "no --head"),
        (["--head", "yolo"], "--subtype", "needs its subtype"),
        (["--head", "yolo", "--subtype", "yolov99"], "--subtype", "no YOLO subtype 'yolov99'"),
        (["--head", "yolo", "--subtype", "yolov8", "--n-classes", "4"], "--n-classes", "need 9 channels"),
        (["--head", "yolo", "--subtype", "yolov8", "--classes", "a,b", "--n-classes", "3"], "--classes",
         "2 class names"),
        (["--head", "yolo", "--subtype", "yolov5"], "--anchors", "decodes with anchors"),
        (["--head", "yolo", "--subtype", "yolov5", "--anchors", "[[[1,2]"], "--anchors", "not JSON"),
        (["--head", "yolo", "--subtype", "yolov8", "--strides", "8,16"], "--strides", "2 strides for 3"),
        (["--head", "yolo", "--subtype", "yolov8", "--is-softmax"], "--is-softmax", "does not apply"),
        (["--head", "yolo", "--subtype", "yolov8", "--conf-threshold", "1.5"], "--conf-threshold", "between 0 and 1"),
        (["--head", "ssd", "--n-classes", "2"], "--head-outputs", "[1, 1, N, 7]"),
        (["--head", "yolo", "--subtype", "yolov8", "--head-outputs", "nope"], "--head-outputs", "no output 'nope'"),
    ]
    for extra, option, message in cases:
        out = tmp_path / "bad.tar.xz"
        assert main(["archive", source, "-o", str(out), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert f"{option}: " in err and message in err and "Traceback" not in err, (extra, err)
        assert not out.exists()


@pytest.mark.toolchain
def test_yolo_outputs_depthai_cannot_find_are_refused(tmp_path, capsys):
    """DepthAI decodes only outputs named *yolo*: a head over other names would decode nothing."""
    compile_blob(conv_relu(tmp_path, "plain"), tmp_path / "plain.blob")
    assert main(["archive", str(tmp_path / "plain.blob"), "-o", str(tmp_path / "p.tar.xz"), "--head", "yolo",
                 "--subtype", "yolov8"]) == 2
    err = capsys.readouterr().err
    assert "--head-outputs: " in err and "contain 'yolo'" in err and "relu" in err
    with pytest.raises(FileNotFoundError):
        tarfile.open(tmp_path / "p.tar.xz")


@pytest.mark.toolchain
def test_ultralytics_end_to_end_output_is_named_for_what_it_is(tmp_path, capsys):
    """Ultralytics' v8/11 export ends in [1, 4 + classes, cells of strides 8+16+32]: not what DepthAI decodes."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(1)
    x = opset1.parameter([1, 3, 64, 64], np.float32, name="images")
    level, rows = x, []
    for kernel, stride in ((8, 8), (2, 2), (2, 2)):
        channels = level.get_output_partial_shape(0)[1].get_length()
        weights = opset1.constant(rng.standard_normal((7, channels, kernel, kernel)).astype(np.float32))
        level = opset1.convolution(level, weights, [stride] * 2, [0, 0], [0, 0], [1, 1])
        rows.append(opset1.reshape(level, opset1.constant(np.array([1, 7, -1], np.int64)), False))
    save_ir(ov.Model([opset1.concat(rows, 2, name="output0")], [x], "e2e"), tmp_path / "e2e.xml")
    blob = compile_blob(tmp_path / "e2e.xml", tmp_path / "e2e.blob").blob_path
    assert main(["archive", str(blob), "-o", str(tmp_path / "e2e.tar.xz"), "--head", "yolo",
                 "--subtype", "yolov8"]) == 2
    err = capsys.readouterr().err
    assert "--head-outputs: output 'output0' [1, 7, 84] is Ultralytics' end-to-end output" in err, err
    assert not (tmp_path / "e2e.tar.xz").exists()
