"""`kernelkit patch --head yolo` on real Ultralytics exports (YOLOv8n, YOLO11n, YOLOv5nu, YOLOv10n built from their
yaml in the torch side environment, `model.export(format="onnx")`), archived, and decoded by DepthAI's own host
DetectionParser: the detections must be Ultralytics' own (`non_max_suppression` on the original ONNX model's
output0, its boxes clipped to the image first as DepthAI clips them), box for box. The compiled blob, on the blob
interpreter, must give the same saturated detections.

Ultralytics runs in its own environment (tools/venvs.torch_python; torch is no dependency of the kit); the tests
skip where it was never made. Random weights detect nothing, so the export script takes every BatchNorm's
statistics from Ultralytics' bus.jpg and rescales each head's last convolutions to that image's features
(tests/ultralytics_side.py): about a dozen confident (cell, class) pairs per stride and boxes a few cells wide.
DepthAI's NMS is class-agnostic, so Ultralytics' decoding is asked for its agnostic mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelkit.cli import main
from myriad_models import conv_relu, require_toolchain
from test_archive_heads import cpu_outputs, depthai, run_detection_parser

SIZE = 256
IOU = 0.5
THRESHOLDS = (0.55, 0.6, 0.5, 0.65)       # the first with no score within 1e-4 of it is the test's
SIDE = Path(__file__).with_name("ultralytics_side.py")
REPO = Path(__file__).resolve().parents[1]


def side_python() -> Path:
    from kernelkit.core.paths import cache_dir

    if not (cache_dir("torch-side") / "venv" / "bin" / "python").is_file():
        pytest.skip("the torch side environment (tools/venvs.torch_python) has not been made here")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from venvs import torch_python
    finally:
        sys.path.remove(str(REPO / "tools"))
    return torch_python()


def side(*args) -> str:
    done = subprocess.run([str(side_python()), str(SIDE), *map(str, args)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


# yolov5n.yaml builds Ultralytics' anchor-free YOLOv5u; yolov10n exports its one-to-many output here (no top-k)
SUBTYPES = {"yolov8n": "yolov8", "yolo11n": "yolov11", "yolov5n": "yolov8", "yolov10n": "yolov10"}


def exported(name: str, tmp_path_factory):
    """(name, ONNX path, image) of an Ultralytics export built from `name`.yaml in the torch side venv."""
    folder = tmp_path_factory.mktemp(name)
    side("export", f"{name}.yaml", SIZE, folder)
    image = np.load(folder / f"{name}.image.npz")["images"]
    return name, folder / f"{name}.onnx", image


@pytest.fixture(scope="module", params=list(SUBTYPES))
def export(request, tmp_path_factory):
    return exported(request.param, tmp_path_factory)


def ultralytics_detections(onnx_path: Path, image: np.ndarray, folder: Path):
    """The confidence threshold, and Ultralytics' own decoding of the original model's output0 (OpenVINO CPU,
    f32) as DepthAI reports a detection: label, confidence, box clipped to the image and normalised."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output0 = np.asarray(compiled(image)[0])
    assert output0.shape == (1, 84, sum((SIZE // s) ** 2 for s in (8, 16, 32)))
    scores = output0[0, 4:].max(0)
    # no score so near the threshold that the rewrite's float rounding could move it across
    conf = next(t for t in THRESHOLDS if np.min(np.abs(scores - t)) > 1e-4)
    # DepthAI clips each box to the image before its NMS, Ultralytics after (scale_boxes): an edge box then
    # overlaps its neighbours less and can suppress one fewer. Fed boxes clipped the same way, Ultralytics'
    # NMS must keep exactly DepthAI's boxes.
    x1y1 = np.clip(output0[:, 0:2] - output0[:, 2:4] / 2, 0, SIZE)
    x2y2 = np.clip(output0[:, 0:2] + output0[:, 2:4] / 2, 0, SIZE)
    output0 = np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1, output0[:, 4:]], 1)
    np.save(folder / "output0.npy", output0)
    rows = json.loads(side("decode", folder / "output0.npy", conf, IOU))
    return conf, [(int(c), score, *(min(max(v, 0.0), SIZE) / SIZE for v in box)) for *box, score, c in rows]


def iou(a, b):
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def covered(these, others, above):
    """Whether every detection of `these` scoring `above` or more has one in `others` of the same label, IoU > 0.8
    and a score within 0.05."""
    return all(any(o[0] == d[0] and iou(o[2:], d[2:]) > 0.8 and abs(o[1] - d[1]) < 0.05 for o in others)
               for d in these if d[1] >= above)


def same(ours, theirs, atol):
    assert len(ours) == len(theirs), (len(ours), len(theirs), ours, theirs)
    for a, b in zip(ours, theirs):
        assert a[0] == b[0], (a, b)
        assert np.allclose(a[1:], b[1:], atol=atol), (a, b)


@pytest.mark.toolchain
@pytest.mark.slow
def test_depthai_decodes_the_rewritten_head_as_ultralytics_does(export, tmp_path, capsys):
    require_toolchain()
    name, onnx_path, image = export
    conf, expected = ultralytics_detections(onnx_path, image, tmp_path)
    assert len(expected) >= 5, "the tweaked model should detect several boxes"

    folder = tmp_path / "patched"
    assert main(["patch", str(onnx_path), "-o", str(folder), "--target", "2021.4", "--head", "yolo"]) == 0
    report = json.loads((folder / "patch-report.json").read_text())
    head = report["head"]
    outputs = ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    assert head["subtype"] == SUBTYPES[name]
    assert head["strides"] == [8, 16, 32] and head["n_classes"] == 80 and head["reg_max"] == 16
    assert head["yolo_outputs"] == outputs and report["source"]["head"] == "yolo"

    archive = tmp_path / f"{name}.tar.xz"
    capsys.readouterr()
    assert main(["archive", str(folder), "--blob", "-o", str(archive), "--conf-threshold", str(conf),
                 "--iou-threshold", str(IOU)]) == 0
    assert "Ultralytics model takes RGB in 0..1" in capsys.readouterr().err
    nn = depthai().NNArchive(str(archive))
    (config_head,) = nn.getConfigV1().model.heads
    assert config_head.parser == "YOLO" and config_head.metadata.subtype == head["subtype"]
    assert config_head.metadata.strides == [8, 16, 32] and config_head.metadata.yoloOutputs == outputs
    assert config_head.metadata.nClasses == 80
    (model_input,) = nn.getConfigV1().model.inputs
    assert model_input.preprocessing.scale == [255.0] * 3 and model_input.preprocessing.reverseChannels

    # the archive's head outputs, from OpenVINO CPU on the patched IR, through DepthAI's own decoder
    tensors = cpu_outputs(folder / "model.xml", image)
    assert sorted(tensors) == outputs
    assert [tensors[n].shape for n in outputs] == [(1, 85, SIZE // s, SIZE // s) for s in (8, 16, 32)]
    found = run_detection_parser(archive, tensors, SIZE, SIZE)
    same([(label, conf, *box) for label, _, conf, *box in found], expected, atol=1e-4)

    # verify rewrites the original the same way, so the patched model is compared output for output
    assert main(["verify", str(folder), "--no-blob"]) == 0

    # the compiled blob on the blob interpreter (fp16 through the network, as the VPU computes). With random
    # weights fp16 moves class scores by up to ~0.25 and box sides by up to ~0.4 cells here (near-tied classes
    # swap, mid scores cross the threshold), so only the saturated detections are held to be the same objects
    from kernelkit.runners.blob.runner import BlobRunner

    run = BlobRunner(folder / "model.blob").run({"images": image})
    assert not run.failures and sorted(run.outputs) == outputs
    on_blob = [(label, c, *box) for label, _, c, *box in run_detection_parser(
        archive, {n: np.asarray(v, np.float32) for n, v in run.outputs.items()}, SIZE, SIZE)]
    assert on_blob and covered(expected, on_blob, 0.95)


@pytest.mark.toolchain
def test_head_yolo_on_a_model_without_one_exits_2_naming_the_option(tmp_path, capsys):
    xml = conv_relu(tmp_path, "plain")
    assert main(["patch", str(xml), "-o", str(tmp_path / "out"), "--no-compile", "--head", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "--head: no Ultralytics YOLO detection head found" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def older_ultralytics_head(folder: Path, reg_max: int = 4, classes: int = 3, size: int = 64) -> Path:
    """The Detect head as Ultralytics before 8.4 exported it: per stride [box bins, class logits] concatenated,
    flattened, concatenated over the strides, then split into boxes and classes; DFL, anchors, strides and
    Sigmoid after, in output0 [1, 4 + classes, anchors] as xywh."""
    import openvino as ov
    from openvino import opset8 as ops

    from myriad_models import save_ir

    rng = np.random.default_rng(5)
    x = ops.parameter([1, 3, size, size], np.float32, name="images")
    flats, anchors, strides = [], [], []
    for stride in (8, 16, 32):
        weights = rng.standard_normal((4 * reg_max + classes, 3, stride, stride)).astype(np.float32) * 0.05
        level = ops.convolution(x, ops.constant(weights), [stride] * 2, [0, 0], [0, 0], [1, 1])
        flats.append(ops.reshape(level, ops.constant(np.array([1, 4 * reg_max + classes, -1], np.int64)), False))
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(cells * cells, stride, np.float32))
    joined = ops.concat(flats, 2)
    box, cls = ops.variadic_split(joined, ops.constant(np.int64(1)),
                                  ops.constant(np.array([4 * reg_max, classes], np.int64))).outputs()
    bins = ops.reshape(box, ops.constant(np.array([1, 4, reg_max, -1], np.int64)), False)
    bins = ops.softmax(ops.transpose(bins, ops.constant(np.array([0, 2, 1, 3], np.int64))), 1)
    dfl = ops.convolution(bins, ops.constant(np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1)),
                          [1, 1], [0, 0], [0, 0], [1, 1])
    dist = ops.reshape(dfl, ops.constant(np.array([1, 4, -1], np.int64)), False)
    lt, rb = ops.variadic_split(dist, ops.constant(np.int64(1)), ops.constant(np.array([2, 2], np.int64))).outputs()
    grid = ops.constant(np.concatenate(anchors, 1)[None].astype(np.float32))
    x1y1, x2y2 = ops.subtract(grid, lt), ops.add(grid, rb)
    xywh = ops.concat([ops.multiply(ops.add(x1y1, x2y2), ops.constant(np.float32(0.5))),
                       ops.subtract(x2y2, x1y1)], 1)
    boxes = ops.multiply(xywh, ops.constant(np.concatenate(strides)[None, None]))
    output0 = ops.concat([boxes, ops.sigmoid(cls)], 1, name="output0")
    return save_ir(ov.Model([output0], [x], "old_head"), folder / "old_head.xml")


def test_the_older_split_form_is_rewritten_to_what_output0_decodes(tmp_path):
    """Per stride, the rewritten outputs must hold what the original output0 says of each cell: l, t, r, b in
    cells from the cell centre, max(class scores), the class scores."""
    from kernelkit.ir.load import load_model

    xml = older_ultralytics_head(tmp_path)
    image = np.random.default_rng(9).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    (output0,) = cpu_outputs(xml, image).values()
    model = load_model(xml, head="yolo")
    assert model.head["strides"] == [8, 16, 32] and model.head["n_classes"] == 3 and model.head["reg_max"] == 4
    model.save(tmp_path / "rewritten.xml")
    rewritten = cpu_outputs(tmp_path / "rewritten.xml", image)
    assert sorted(rewritten) == ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    start = 0
    for name, stride in zip(sorted(rewritten), (8, 16, 32)):
        grid = rewritten[name][0]
        cells = 64 // stride
        assert grid.shape == (8, cells, cells)
        cx, cy, w, h = (output0[0, i, start:start + cells * cells].reshape(cells, cells) / stride for i in range(4))
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing="ij")
        np.testing.assert_allclose(grid[0], xs - (cx - w / 2), atol=1e-4)       # left
        np.testing.assert_allclose(grid[1], ys - (cy - h / 2), atol=1e-4)       # top
        np.testing.assert_allclose(grid[2], (cx + w / 2) - xs, atol=1e-4)       # right
        np.testing.assert_allclose(grid[3], (cy + h / 2) - ys, atol=1e-4)       # bottom
        scores = output0[0, 4:, start:start + cells * cells].reshape(3, cells, cells)
        np.testing.assert_allclose(grid[5:], scores, atol=1e-6)
        np.testing.assert_allclose(grid[4], scores.max(0), atol=1e-6)
        start += cells * cells


def test_patch_without_head_yolo_names_the_option_for_an_ultralytics_head(tmp_path, capsys):
    xml = older_ultralytics_head(tmp_path)
    assert main(["patch", str(xml), "-o", str(tmp_path / "plain"), "--no-compile"]) == 0
    assert "patch with --head yolo to rewrite it" in capsys.readouterr().err
    report = json.loads((tmp_path / "plain" / "patch-report.json").read_text())
    assert "head" not in report and "head" not in report["source"]
    assert main(["patch", str(xml), "-o", str(tmp_path / "rewritten"), "--no-compile", "--head", "yolo"]) == 0
    assert "--head yolo" not in capsys.readouterr().err
    report = json.loads((tmp_path / "rewritten" / "patch-report.json").read_text())
    assert report["head"]["yolo_outputs"] == ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    assert report["head"]["subtype"] == "yolov8" and report["head"]["classes"] is None


def test_the_recorded_head_fills_what_the_options_leave_out():
    from kernelkit.delivery.heads import HeadOptions, make_head

    names = ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
    inputs = [{"name": "images", "dtype": "float16", "shape": [1, 3, 64, 64], "layout": "NCHW"}]
    outputs = [{"name": n, "dtype": "float16", "shape": [1, 7, 64 // s, 64 // s], "layout": "NCHW"}
               for n, s in zip(names, (8, 16, 32))]
    recorded = {"parser": "YOLO", "family": "ultralytics", "subtype": "yolov11", "n_classes": 2,
                "classes": ["cat", "dog"], "strides": [8, 16, 32], "yolo_outputs": names}
    head = make_head(HeadOptions(), inputs, outputs, recorded)
    assert head["parser"] == "YOLO" and head["outputs"] == names
    meta = head["metadata"]
    assert meta["subtype"] == "yolov11" and meta["classes"] == ["cat", "dog"] and meta["strides"] == [8, 16, 32]
    given = make_head(HeadOptions(subtype="yolov8", conf_threshold=0.3), inputs, outputs, recorded)["metadata"]
    assert given["subtype"] == "yolov8" and given["conf_threshold"] == 0.3 and given["classes"] == ["cat", "dog"]
    # another head asked for, or a blob without the recorded outputs: the record does not apply
    assert make_head(HeadOptions(), inputs, outputs[:2], recorded) is None
    assert make_head(HeadOptions(kind="segmentation"), inputs, outputs[:1], recorded)["parser"] == \
        "SegmentationParser"
