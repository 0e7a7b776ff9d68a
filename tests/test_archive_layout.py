"""`kernelkit archive` declares each input's layout as the model has it (patch-report.json's `inputs`), not the
blob's default order: a TFLite NHWC input is NHWC with interleaved frames, an NCHW ONNX input stays NCHW/planar.
Read back with DepthAI's own NN Archive reader. What is expected of MediaPipe's face detector comes from MediaPipe:
`input` [1,128,128,3] NHWC, outputs `regressors` [1,896,16] and `classificators` [1,896,1]."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kernelkit.cli import main
from myriad_models import compile_blob, require_toolchain
from tflite_models import mediapipe_model

from test_archive import read_archive

pytestmark = pytest.mark.toolchain


def _conv_onnx(path, nhwc: bool, h: int = 24, w: int = 40):
    """A conv taking [1,h,w,3] (transposed to planar inside, as TF exports do) or [1,3,h,w]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32),
                                      "w")
    nodes = [helper.make_node("Conv", ["planar" if nhwc else "image", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")]
    if nhwc:
        nodes.insert(0, helper.make_node("Transpose", ["image"], ["planar"], perm=[0, 3, 1, 2], name="to_planar"))
    shape = [1, h, w, 3] if nhwc else [1, 3, h, w]
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, h, w])], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.save(model, str(path))
    return path


def _patched_with_blob(source, folder, *extra):
    assert main(["patch", str(source), "-o", str(folder), "--u8-input", *extra]) == 0
    compile_blob(folder, folder / "model.blob")
    return folder


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory):
    require_toolchain()
    folder = tmp_path_factory.mktemp("face") / "out"
    return _patched_with_blob(mediapipe_model("face_detection_short_range"), folder, "--reverse-channels",
                              "--mean", "127.5", "--scale", "127.5")


def test_tflite_face_detector_archive_is_nhwc_interleaved_with_its_names(face_folder, tmp_path, capsys):
    report = json.loads((face_folder / "patch-report.json").read_text())
    assert report["inputs"][0]["layout"] == "NHWC"
    out = tmp_path / "face.tar.xz"
    assert main(["archive", str(face_folder), "--blob", "-o", str(out)]) == 0
    assert "declared" not in capsys.readouterr().err          # stated by the report, not inferred here
    archive = read_archive(out)
    (inp,) = archive.getConfigV1().model.inputs
    assert (inp.name, inp.layout, list(inp.shape)) == ("input", "NHWC", [1, 128, 128, 3])
    assert str(inp.dtype).endswith("UINT8") and str(inp.inputType).endswith("IMAGE")
    pre = inp.preprocessing
    # the flip, mean and scale are inside the model; DepthAI feeds it interleaved BGR U8 frames as they are
    assert pre.mean == pytest.approx([0, 0, 0]) and pre.scale == pytest.approx([1, 1, 1])
    assert pre.reverseChannels is False and pre.daiType == "BGR888i" and pre.interleavedToPlanar is True
    # declared NCHW, DepthAI would read width 3 (the channels) and height 128
    assert archive.getInputSize() == (128, 128)
    outputs = {o.name: list(o.shape) for o in archive.getConfigV1().model.outputs}
    assert outputs == {"regressors": [1, 896, 16], "classificators": [1, 896, 1]}


def test_archive_preprocessing_options_act_on_the_nhwc_channel_axis(face_folder, tmp_path):
    out = tmp_path / "face.tar.xz"
    assert main(["archive", str(face_folder), "--blob", "-o", str(out), "--mean", "1,2,3", "--scale", "4",
                 "--reverse-channels"]) == 0
    pre = read_archive(out).getConfigV1().model.inputs[0].preprocessing
    assert pre.mean == pytest.approx([1, 2, 3]) and pre.scale == pytest.approx([4, 4, 4])
    assert pre.daiType == "RGB888i"


def test_a_blob_without_a_report_gets_the_layout_its_shape_says_and_a_warning(face_folder, tmp_path, capsys):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(face_folder / "model.blob", alone / "face.blob")
    out = tmp_path / "face.tar.xz"
    assert main(["archive", str(alone / "face.blob"), "-o", str(out)]) == 0
    assert "declared NHWC (3 channels on axis 3" in capsys.readouterr().err
    assert read_archive(out).getConfigV1().model.inputs[0].layout == "NHWC"


def test_a_blob_beside_its_report_takes_the_report_s_layout(face_folder, tmp_path, capsys):
    out = tmp_path / "face.tar.xz"
    assert main(["archive", str(face_folder / "model.blob"), "-o", str(out)]) == 0
    assert "declared" not in capsys.readouterr().err
    assert read_archive(out).getConfigV1().model.inputs[0].layout == "NHWC"


def test_a_folder_whose_blob_disagrees_with_its_report_is_refused(face_folder, tmp_path, capsys):
    folder = tmp_path / "stale"
    shutil.copytree(face_folder, folder)
    report = json.loads((folder / "patch-report.json").read_text())
    report["inputs"][0]["shape"] = [1, 96, 96, 3]
    (folder / "patch-report.json").write_text(json.dumps(report))
    out = tmp_path / "x.tar.xz"
    assert main(["archive", str(folder), "--blob", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has shape [1, 128, 128, 3], the patch report says [1, 96, 96, 3]" in err
    assert "compile the folder again" in err and not out.exists()


@pytest.mark.parametrize("nhwc, layout, shape, dai_type", [
    (True, "NHWC", [1, 24, 40, 3], "BGR888i"),
    (False, "NCHW", [1, 3, 24, 40], "BGR888p")])
def test_onnx_layouts_and_a_non_square_input_size(tmp_path, nhwc, layout, shape, dai_type):
    require_toolchain()
    folder = _patched_with_blob(_conv_onnx(tmp_path / "conv.onnx", nhwc), tmp_path / "out")
    out = tmp_path / "conv.tar.xz"
    assert main(["archive", str(folder), "--blob", "-o", str(out)]) == 0
    archive = read_archive(out)
    (inp,) = archive.getConfigV1().model.inputs
    assert (inp.layout, list(inp.shape), inp.preprocessing.daiType) == (layout, shape, dai_type)
    assert inp.preprocessing.interleavedToPlanar is nhwc
    assert archive.getInputSize() == (40, 24)               # (width, height)
