"""`kernelkit patch --head yolo` on Ultralytics Pose and Segment exports (YOLOv8n-pose, YOLO11n-pose, YOLOv8n-seg,
YOLO11n-seg built from their yaml in the torch side environment and exported by Ultralytics, as in
test_yolo_head.py), compiled by the real 2021.4 plugin, archived, and decoded by DepthAI's own host DetectionParser
with keypoint and mask decoding on (the archive turns them on): detections, keypoints and masks must be
Ultralytics' own decoding of the original model's output0 (and protos) on the same image.

- Pose: DepthAI's keypoints (x, y normalised and clamped to the image, visibility through its Sigmoid) equal
  Ultralytics' (`non_max_suppression` rows, keypoints in pixels), detection for detection, within 1e-4.
- Segment: DepthAI's host parser returns one index mask (pixel = index of the detection that claimed it first, 255
  none) made from the per-stride mask coefficients and the prototypes. Ultralytics' `process_mask` (upsampled to
  the input, cropped to the box, logit > 0) of the same detections, painted in the same order, is close to it, not
  equal: the two resize differently (DepthAI: the box's crop of the prototype map resized to the box; Ultralytics:
  the whole map upsampled, then cropped). So the test holds DepthAI's mask to DepthAI's documented decoding
  (depthai-core segmentationDecode, written out with OpenCV in ultralytics_side.py `paint`) of Ultralytics' own
  rows and prototypes, pixel for pixel, and to Ultralytics' process_mask on most pixels. The rewritten mask and
  prototype outputs themselves hold exactly the original's coefficients and prototypes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kernelkit.cli import main
from myriad_models import require_toolchain
from test_archive_heads import cpu_outputs, depthai, host_parse
from test_yolo_head import IOU, SIZE, THRESHOLDS, covered, exported, iou, same, side

STRIDES = (8, 16, 32)
LEVELS = ["output1_yolov8", "output2_yolov8", "output3_yolov8"]
# name -> (task, classes, rows after the class scores, subtype): what each yaml builds (yolo11-pose.yaml: 80 classes)
MODELS = {"yolov8n-pose": ("pose", 1, 51, "yolov8"), "yolo11n-pose": ("pose", 80, 51, "yolov11"),
          "yolov8n-seg": ("segment", 80, 32, "yolov8"), "yolo11n-seg": ("segment", 80, 32, "yolov11")}
DOCUMENTED_SAME = 0.995  # pixels of DepthAI's index mask equal to its documented decoding of Ultralytics' rows
# ... and to Ultralytics' process_mask painted alike: the resizes differ (DepthAI resizes the box's crop of the
# prototype map, its corners rounded down to whole prototype pixels, up to 3 image pixels off), which moves mask
# edges by a prototype pixel; random-weight prototypes vary at that scale. Measured 0.87-0.91 (docs/delivery.md)
ULTRALYTICS_SAME = 0.85
BLOB_KEYPOINT_PIXELS = 12.0  # of 256; measured 4.0 px (YOLOv8n-pose), 7.3 px (YOLO11n-pose)


def mask_ious(ours, theirs, count):
    """Per detection index, IoU of its pixels in two index masks (those painted in either)."""
    found = []
    for index in range(count):
        a, b = ours == index, theirs == index
        if a.any() or b.any():
            found.append(float((a & b).sum() / (a | b).sum()))
    return found


@pytest.fixture(scope="module", params=list(MODELS))
def export(request, tmp_path_factory):
    return exported(request.param, tmp_path_factory)


def original_outputs(onnx_path: Path, image: np.ndarray) -> list[np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [np.asarray(v) for v in compiled(image).values()]


def ultralytics_rows(output0: np.ndarray, classes: int, folder: Path):
    """The confidence threshold, and Ultralytics' non_max_suppression rows [x1, y1, x2, y2, conf, class, extra...]
    of output0 (boxes clipped to the image first, as DepthAI clips them before its NMS; see test_yolo_head)."""
    scores = output0[0, 4:4 + classes].max(0)
    conf = next(t for t in THRESHOLDS if np.min(np.abs(scores - t)) > 1e-4)
    x1y1 = np.clip(output0[:, 0:2] - output0[:, 2:4] / 2, 0, SIZE)
    x2y2 = np.clip(output0[:, 0:2] + output0[:, 2:4] / 2, 0, SIZE)
    clipped = np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1, output0[:, 4:]], 1)
    np.save(folder / "output0.npy", clipped)
    return conf, json.loads(side("decode", folder / "output0.npy", conf, IOU, classes))


def parse_with_depthai(archive: Path, tensors: dict):
    """DepthAI's host DetectionParser configured from the archive alone, fed one NNData of the head outputs."""
    return host_parse(archive, tensors, SIZE, SIZE)


def patch_and_archive(onnx_path: Path, tmp_path: Path, conf: float):
    folder = tmp_path / "patched"
    assert main(["patch", str(onnx_path), "-o", str(folder), "--target", "2021.4", "--head", "yolo"]) == 0
    assert (folder / "model.blob").is_file()           # compiled by the real MYRIAD 2021.4 plugin
    archive = tmp_path / "model.tar.xz"
    assert main(["archive", str(folder), "--blob", "-o", str(archive), "--conf-threshold", str(conf),
                 "--iou-threshold", str(IOU)]) == 0
    report = json.loads((folder / "patch-report.json").read_text())
    return folder, archive, report["head"]


@pytest.mark.toolchain
@pytest.mark.slow
def test_depthai_decodes_the_rewritten_pose_and_segment_heads_as_ultralytics_does(export, tmp_path):
    require_toolchain()
    name, onnx_path, image = export
    task, classes, rows, subtype = MODELS[name]
    original = original_outputs(onnx_path, image)
    output0 = original[0]
    anchors = sum((SIZE // s) ** 2 for s in STRIDES)
    assert output0.shape == (1, 4 + classes + rows, anchors)
    conf, expected = ultralytics_rows(output0, classes, tmp_path)
    assert len(expected) >= 5, "the tweaked model should detect several objects"

    folder, archive, head = patch_and_archive(onnx_path, tmp_path, conf)
    assert head["task"] == task and head["subtype"] == subtype and head["yolo_outputs"] == LEVELS
    assert head["n_classes"] == classes and head["strides"] == list(STRIDES)
    config_head = depthai().NNArchive(str(archive)).getConfigV1().model.heads[0]
    assert config_head.parser == "YOLOExtendedParser" and config_head.metadata.yoloOutputs == LEVELS

    tensors = cpu_outputs(folder / "model.xml", image)
    parser, result = parse_with_depthai(archive, tensors)
    found = [(d.label, d.confidence, d.xmin, d.ymin, d.xmax, d.ymax) for d in result.detections]
    same(found, [(int(r[5]), r[4], *(min(max(v, 0.0), SIZE) / SIZE for v in r[:4])) for r in expected], atol=1e-4)
    print(f"{name}: {len(found)} detections at conf {conf}, the same as Ultralytics'")

    if task == "pose":
        kpt = ["kpt_output1", "kpt_output2", "kpt_output3"]
        assert head["n_keypoints"] == 17 and head["keypoints_outputs"] == kpt
        assert config_head.metadata.nKeypoints == 17 and config_head.metadata.keypointsOutputs == kpt
        assert parser.getDecodeKeypoints() and parser.getNKeypoints() == 17      # the archive turned it on
        assert sorted(tensors) == sorted(LEVELS + kpt)
        assert [tensors[n].shape for n in kpt] == [(1, 51, SIZE // s, SIZE // s) for s in STRIDES]
        for detection, row in zip(result.detections, expected):
            theirs = np.array(row[6:]).reshape(17, 3)
            ours = np.array([(k.imageCoordinates.x, k.imageCoordinates.y, k.confidence)
                             for k in detection.getKeypoints()])
            assert ours.shape == (17, 3)
            np.testing.assert_allclose(ours[:, :2], np.clip(theirs[:, :2] / SIZE, 0.0, 1.0), atol=1e-4)
            np.testing.assert_allclose(ours[:, 2], theirs[:, 2], atol=1e-4)
    else:
        masks = ["output1_masks", "output2_masks", "output3_masks"]
        assert head["mask_outputs"] == masks and head["protos_outputs"] == "protos_output"
        assert head["n_prototypes"] == 32
        assert config_head.metadata.maskOutputs == masks and config_head.metadata.protosOutputs == "protos_output"
        assert parser.getDecodeSegmentation()                                    # the archive turned it on
        # the rewritten outputs hold the original's coefficients (per stride) and prototypes
        start = 0
        for name_, stride in zip(masks, STRIDES):
            cells = (SIZE // stride) ** 2
            np.testing.assert_allclose(tensors[name_].reshape(32, cells), output0[0, 4 + classes:, start:start + cells],
                                       atol=1e-5)
            start += cells
        np.testing.assert_allclose(tensors["protos_output"], original[1], atol=1e-5)
        # DepthAI's index mask against the same detections decoded from the original's own coefficients and
        # prototypes: as DepthAI documents its decoding (ultralytics_side.py paint), and by Ultralytics
        # (process_mask), each painted in detection order as DepthAI paints its index mask
        np.save(tmp_path / "protos.npy", original[1])
        (tmp_path / "rows.json").write_text(json.dumps(expected))
        side("paint", tmp_path / "protos.npy", tmp_path / "rows.json", SIZE, tmp_path / "painted.npy")
        side("masks", tmp_path / "protos.npy", tmp_path / "rows.json", SIZE, tmp_path / "masks.npy")
        documented = np.load(tmp_path / "painted.npy")
        theirs = np.load(tmp_path / "masks.npy").astype(bool)
        painted = np.full((SIZE, SIZE), 255, np.uint8)
        for index, mask in enumerate(theirs):
            painted[mask & (painted == 255)] = index
        ours = np.asarray(result.getCvSegmentationMask())
        assert ours.shape == (SIZE, SIZE) and (ours != 255).sum() > 1000
        print(f"{name}: index mask pixels equal to DepthAI's documented decoding {(ours == documented).mean():.4f}, "
              f"to Ultralytics' process_mask {(ours == painted).mean():.4f}; per-detection IoU with Ultralytics' "
              f"{np.round(mask_ious(ours, painted, len(expected)), 2).tolist()}")
        assert (ours == documented).mean() >= DOCUMENTED_SAME
        assert (ours == painted).mean() >= ULTRALYTICS_SAME

    # verify rewrites the original the same way and compares every output
    assert main(["verify", str(folder), "--no-blob"]) == 0

    # the compiled blob on the blob interpreter (fp16 through the network): as in test_yolo_head, the saturated
    # detections are the same objects; their keypoints within BLOB_KEYPOINT_PIXELS (fp16 rounding of the raw
    # keypoint values, times 2 x stride)
    from kernelkit.runners.blob.runner import BlobRunner

    run = BlobRunner(folder / "model.blob").run({"images": image})
    assert not run.failures and sorted(run.outputs) == sorted(tensors)
    _, on_blob = parse_with_depthai(archive, {n: np.asarray(v, np.float32) for n, v in run.outputs.items()})
    blob_found = [(d.label, d.confidence, d.xmin, d.ymin, d.xmax, d.ymax) for d in on_blob.detections]
    assert blob_found and covered(found, blob_found, 0.95)
    if task == "pose":
        worst = 0.0
        for detection in result.detections:
            if detection.confidence < 0.95:
                continue
            mine = (detection.xmin, detection.ymin, detection.xmax, detection.ymax)
            twin = max(on_blob.detections, key=lambda d: d.label == detection.label and
                       iou((d.xmin, d.ymin, d.xmax, d.ymax), mine))
            a, b = (np.array([(k.imageCoordinates.x, k.imageCoordinates.y) for k in d.getKeypoints()])
                    for d in (detection, twin))
            worst = max(worst, float(np.abs(a - b).max()) * SIZE)
        print(f"{name}: keypoints of the saturated detections on the blob within {worst:.2f} px")
        assert worst <= BLOB_KEYPOINT_PIXELS


def test_an_obb_head_is_refused_since_depthai_decodes_no_angles(tmp_path, capsys):
    """YOLOv8n-obb, exported by Ultralytics: its angle row is recognised and refused by name of what DepthAI
    lacks (depthai 3.12 gives every ImgDetection angle 0, anglesOutputs or not); nothing is written."""
    side("export", "yolov8n-obb.yaml", SIZE, tmp_path)
    out = tmp_path / "out"
    assert main(["patch", str(tmp_path / "yolov8n-obb.onnx"), "-o", str(out), "--no-compile", "--head", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "--head: output output0 holds an OBB head's angle after the box and class rows" in err
    assert "decodes no rotated boxes" in err and "Traceback" not in err
    assert not out.exists()


def hand_built_head(folder: Path, task: str, reg_max: int = 4, classes: int = 2, keypoints: int = 3,
                    coefficients: int = 4, size: int = 64) -> Path:
    """A Pose or Segment head written the way Ultralytics 8.4 exports it (no torch needed): per stride box bins,
    class logits and keypoint / coefficient channels, each flattened and concatenated over the strides; DFL,
    anchors and strides, class Sigmoid; keypoints decoded as (2 raw + anchor - 0.5) stride with a Sigmoid
    visibility, or coefficients as they are beside prototypes [1, coefficients, size/4, size/4]; output0 =
    [xywh, scores, extra]."""
    import openvino as ov
    from openvino import opset8 as ops

    from myriad_models import save_ir

    rng = np.random.default_rng(7)
    x = ops.parameter([1, 3, size, size], np.float32, name="images")
    extra = 3 * keypoints if task == "pose" else coefficients
    flats = {"box": [], "cls": [], "extra": []}
    anchors, strides = [], []
    for stride in STRIDES:
        for key, channels in (("box", 4 * reg_max), ("cls", classes), ("extra", extra)):
            weights = rng.standard_normal((channels, 3, stride, stride)).astype(np.float32) * 0.05
            level = ops.convolution(x, ops.constant(weights), [stride] * 2, [0, 0], [0, 0], [1, 1])
            flats[key].append(ops.reshape(level, ops.constant(np.array([1, channels, -1], np.int64)), False))
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells) + 0.5, np.arange(cells) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(cells * cells, stride, np.float32))
    grid = np.concatenate(anchors, 1).astype(np.float32)[None]            # [1, 2, A]
    per_anchor = np.concatenate(strides)[None, None]                        # [1, 1, A]
    box, cls, rows = (ops.concat(flats[k], 2) for k in ("box", "cls", "extra"))
    bins = ops.reshape(box, ops.constant(np.array([1, 4, reg_max, -1], np.int64)), False)
    bins = ops.softmax(ops.transpose(bins, ops.constant(np.array([0, 2, 1, 3], np.int64))), 1)
    dfl = ops.convolution(bins, ops.constant(np.arange(reg_max, dtype=np.float32).reshape(1, reg_max, 1, 1)),
                          [1, 1], [0, 0], [0, 0], [1, 1])
    dist = ops.reshape(dfl, ops.constant(np.array([1, 4, -1], np.int64)), False)
    lt, rb = ops.variadic_split(dist, ops.constant(np.int64(1)), ops.constant(np.array([2, 2], np.int64))).outputs()
    x1y1, x2y2 = ops.subtract(ops.constant(grid), lt), ops.add(ops.constant(grid), rb)
    xywh = ops.concat([ops.multiply(ops.add(x1y1, x2y2), ops.constant(np.float32(0.5))),
                       ops.subtract(x2y2, x1y1)], 1)
    boxes = ops.multiply(xywh, ops.constant(per_anchor))
    outputs = []
    if task == "pose":
        k = ops.reshape(rows, ops.constant(np.array([1, keypoints, 3, -1], np.int64)), False)
        xy = ops.strided_slice(k, ops.constant(np.array([0, 0, 0, 0], np.int64)),
                               ops.constant(np.array([0, 0, 2, 0], np.int64)),
                               ops.constant(np.array([1, 1, 1, 1], np.int64)), [1, 1, 0, 1], [1, 1, 0, 1])
        vis = ops.strided_slice(k, ops.constant(np.array([0, 0, 2, 0], np.int64)),
                                ops.constant(np.array([0, 0, 3, 0], np.int64)),
                                ops.constant(np.array([1, 1, 1, 1], np.int64)), [1, 1, 0, 1], [1, 1, 0, 1])
        xy = ops.multiply(ops.add(ops.multiply(xy, ops.constant(np.float32(2.0))),
                                  ops.constant((grid - 0.5)[:, None])), ops.constant(per_anchor[:, None]))
        rows = ops.reshape(ops.concat([xy, ops.sigmoid(vis)], 2),
                           ops.constant(np.array([1, 3 * keypoints, -1], np.int64)), False)
    else:
        weights = rng.standard_normal((coefficients, 3, 4, 4)).astype(np.float32) * 0.2
        outputs.append(ops.convolution(x, ops.constant(weights), [4, 4], [0, 0], [0, 0], [1, 1], name="protos"))
    output0 = ops.concat([boxes, ops.sigmoid(cls), rows], 1, name="output0")
    return save_ir(ov.Model([output0, *outputs], [x], f"{task}_head"), folder / f"{task}_head.xml")


@pytest.mark.parametrize("task", ["pose", "segment"])
def test_a_hand_built_pose_or_segment_head_is_rewritten_to_what_output0_holds(tmp_path, task):
    """Per stride, the rewritten keypoint outputs hold output0's keypoints (x, y in pixels; the visibility before
    its Sigmoid), the mask outputs its coefficients, protos_output the prototypes."""
    from kernelkit.ir.load import load_model

    xml = hand_built_head(tmp_path, task)
    image = np.random.default_rng(9).uniform(0, 1, (1, 3, 64, 64)).astype(np.float32)
    original = list(cpu_outputs(xml, image).values())
    output0 = original[0]
    model = load_model(xml, head="yolo")
    head = model.head
    assert head["task"] == task and head["strides"] == list(STRIDES) and head["n_classes"] == 2
    model.save(tmp_path / "rewritten.xml")
    rewritten = cpu_outputs(tmp_path / "rewritten.xml", image)
    start = 0
    for index, stride in enumerate(STRIDES, start=1):
        cells = (64 // stride) ** 2
        rows = output0[0, 4 + 2:, start:start + cells]
        assert rewritten[f"output{index}_yolov8"].shape == (1, 7, 64 // stride, 64 // stride)
        if task == "pose":
            found = rewritten[f"kpt_output{index}"][0].reshape(9, cells)
            np.testing.assert_allclose(found[[0, 1, 3, 4, 6, 7]], rows[[0, 1, 3, 4, 6, 7]], atol=1e-4)
            np.testing.assert_allclose(1 / (1 + np.exp(-found[2::3])), rows[2::3], atol=1e-6)
        else:
            np.testing.assert_allclose(rewritten[f"output{index}_masks"][0].reshape(4, cells), rows, atol=1e-6)
        start += cells
    if task == "pose":
        assert head["n_keypoints"] == 3 and head["keypoints_outputs"] == ["kpt_output1", "kpt_output2", "kpt_output3"]
    else:
        assert head["n_prototypes"] == 4 and head["protos_outputs"] == "protos_output"
        np.testing.assert_allclose(rewritten["protos_output"], original[1], atol=1e-6)


def test_the_recorded_pose_or_segment_head_fills_the_archive_metadata():
    from kernelkit.delivery.heads import HeadOptions, make_head

    inputs = [{"name": "images", "dtype": "float16", "shape": [1, 3, 64, 64], "layout": "NCHW"}]

    def grid(name, channels, stride):
        return {"name": name, "dtype": "float16", "shape": [1, channels, 64 // stride, 64 // stride],
                "layout": "NCHW"}
    levels = [grid(n, 6, s) for n, s in zip(LEVELS, STRIDES)]
    kpts = [grid(f"kpt_output{i}", 51, s) for i, s in enumerate(STRIDES, start=1)]
    recorded = {"parser": "YOLO", "family": "ultralytics", "subtype": "yolov8", "n_classes": 1, "classes": ["p"],
                "strides": list(STRIDES), "yolo_outputs": LEVELS, "task": "pose", "n_keypoints": 17,
                "keypoints_outputs": [k["name"] for k in kpts]}
    head = make_head(HeadOptions(), inputs, levels + kpts, recorded)
    assert head["parser"] == "YOLOExtendedParser" and head["outputs"] == LEVELS + [k["name"] for k in kpts]
    assert head["metadata"]["n_keypoints"] == 17 and head["metadata"]["keypoints_outputs"] == [k["name"] for k in kpts]
    # a blob without the keypoint outputs: a plain YOLO head, nothing declared that DepthAI would look for in vain
    plain = make_head(HeadOptions(), inputs, levels, recorded)
    assert plain["parser"] == "YOLO" and "n_keypoints" not in plain["metadata"] and plain["outputs"] == LEVELS
