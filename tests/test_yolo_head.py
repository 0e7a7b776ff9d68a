"""`kernelkit patch --head yolo` on real Ultralytics exports (YOLOv8n, YOLO11n, YOLOv5nu, YOLOv10n built from their
yaml in the torch side environment, `model.export(format="onnx")`), archived, and decoded by DepthAI's own host DetectionParser: the
detections must be Ultralytics' own (`non_max_suppression` on the original ONNX model's output0, its boxes clipped to the image first as DepthAI
clips them), box for box.

Ultralytics runs in its own environment (tools/venvs.torch_python; torch is no dependency of the kit); the tests
skip where it was never made. Random weights detect nothing, so the export script rescales each head's last
convolutions to the features of Ultralytics' bus.jpg (tests/ultralytics_side.py): about a dozen confident
(cell, class) pairs per stride and boxes a few cells wide. DepthAI's NMS is class-agnostic, so Ultralytics'
decoding is asked for its agnostic mode.
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
CONF, IOU = 0.55, 0.5
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


@pytest.fixture(scope="module", params=list(SUBTYPES))
def export(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    side("export", f"{request.param}.yaml", SIZE, folder)
    image = np.load(folder / f"{request.param}.image.npz")["images"]
    return request.param, folder / f"{request.param}.onnx", image


def ultralytics_detections(onnx_path: Path, image: np.ndarray, folder: Path):
    """Ultralytics' own decoding of the original model's output0 (OpenVINO CPU, f32), as DepthAI reports a
    detection: label, confidence, box clipped to the image and normalised."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output0 = np.asarray(compiled(image)[0])
    assert output0.shape == (1, 84, sum((SIZE // s) ** 2 for s in (8, 16, 32)))
    scores = output0[0, 4:].max(0)
    # no score so near the threshold that the rewrite's float rounding could move it across
    assert np.min(np.abs(scores - CONF)) > 1e-4
    # DepthAI clips each box to the image before its NMS, Ultralytics after (scale_boxes): an edge box then
    # overlaps its neighbours less and can suppress one fewer. Fed boxes clipped the same way, Ultralytics'
    # NMS must keep exactly DepthAI's boxes.
    x1y1 = np.clip(output0[:, 0:2] - output0[:, 2:4] / 2, 0, SIZE)
    x2y2 = np.clip(output0[:, 0:2] + output0[:, 2:4] / 2, 0, SIZE)
    output0 = np.concatenate([(x1y1 + x2y2) / 2, x2y2 - x1y1, output0[:, 4:]], 1)
    np.save(folder / "output0.npy", output0)
    rows = json.loads(side("decode", folder / "output0.npy", CONF, IOU))
    return [(int(c), conf, *(min(max(v, 0.0), SIZE) / SIZE for v in box)) for *box, conf, c in rows]


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
    expected = ultralytics_detections(onnx_path, image, tmp_path)
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
    assert main(["archive", str(folder), "--blob", "-o", str(archive), "--conf-threshold", str(CONF),
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


@pytest.mark.toolchain
def test_head_yolo_on_a_model_without_one_exits_2_naming_the_option(tmp_path, capsys):
    xml = conv_relu(tmp_path, "plain")
    assert main(["patch", str(xml), "-o", str(tmp_path / "out"), "--no-compile", "--head", "yolo"]) == 2
    err = capsys.readouterr().err
    assert "--head: no Ultralytics YOLO detection head found" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
