"""`kernelkit archive`: NN Archives read back with DepthAI's own NN Archive reader."""

from __future__ import annotations

import json
import os
import tarfile

import pytest

from kernelkit.cli import main
from myriad_models import conv_relu, require_toolchain


@pytest.fixture(scope="module")
def patch_folder(tmp_path_factory):
    """A patch-style output folder with a U8-input blob compiled by the real plugin and a patch report."""
    require_toolchain()
    from kernelkit.doctor.workflow import compile_folder

    folder = tmp_path_factory.mktemp("outdir")
    model = conv_relu(folder, "model")
    (folder / "patch-report.json").write_text(json.dumps({"preprocessing": {
        "mean": [123.675, 116.28, 103.53], "scale": [58.395, 57.12, 57.375], "reverse_channels": True,
        "u8_input": True}}))
    compile_folder(folder, folder / "model.blob")
    assert model.exists()
    return folder


def read_archive(path):
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai.NNArchive(str(path))


@pytest.mark.toolchain
def test_archive_from_patch_folder_reads_back_in_depthai(patch_folder, tmp_path, capsys):
    out = tmp_path / "detector.tar.xz"
    assert main(["archive", str(patch_folder), "-o", str(out)]) == 0
    archive = read_archive(out)
    assert str(archive.getModelType()).endswith("BLOB")
    config = archive.getConfigV1()
    assert config.configVersion == "1.0"
    meta = config.model.metadata
    assert (meta.name, meta.path) == ("detector", "detector.blob")
    assert str(meta.precision).endswith("FLOAT16")
    (inp,) = config.model.inputs
    assert inp.name == "input" and inp.layout == "NCHW" and list(inp.shape) == [1, 3, 32, 32]
    assert str(inp.dtype).endswith("UINT8") and str(inp.inputType).endswith("IMAGE")
    # the patch report's preprocessing is inside the compiled model: the archive must not declare it again
    assert inp.preprocessing.mean == pytest.approx([0.0, 0.0, 0.0])
    assert inp.preprocessing.scale == pytest.approx([1.0, 1.0, 1.0])
    assert inp.preprocessing.reverseChannels is False
    (output,) = config.model.outputs
    assert output.name == "relu" and list(output.shape) == [1, 8, 32, 32] and str(output.dtype).endswith("FLOAT32")
    assert list(config.model.heads or []) == []
    assert archive.getBlob().numShaves == 6
    assert archive.getInputWidth() == 32 and archive.getInputHeight() == 32
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["config.json", "detector.blob"]
        packed = tar.extractfile("detector.blob").read()
    assert packed == (patch_folder / "model.blob").read_bytes()


@pytest.mark.toolchain
def test_options_override_the_report(patch_folder, tmp_path):
    out = tmp_path / "m.tar.xz"
    assert main(["archive", str(patch_folder / "model.blob"), "-o", str(out), "--name", "net",
                 "--mean", "0", "--scale", "255,255,255"]) == 0
    with tarfile.open(out) as tar:
        config = json.loads(tar.extractfile("config.json").read())
    pre = config["model"]["inputs"][0]["preprocessing"]
    # A bare blob has no report beside it: reverse_channels defaults to False.
    assert pre == {"mean": [0.0, 0.0, 0.0], "scale": [255.0, 255.0, 255.0], "reverse_channels": False,
                   "interleaved_to_planar": None}
    assert config["model"]["metadata"]["path"] == "net.blob"


@pytest.mark.toolchain
def test_no_reverse_channels_overrides_the_report(patch_folder, tmp_path):
    out = tmp_path / "raw.tar.xz"
    assert main(["archive", str(patch_folder), "-o", str(out), "--mean", "0", "--scale", "1",
                 "--no-reverse-channels"]) == 0
    pre = read_archive(out).getConfigV1().model.inputs[0].preprocessing
    assert (pre.mean, pre.scale, pre.reverseChannels) == ([0.0] * 3, [1.0] * 3, False)


@pytest.mark.toolchain
def test_wrong_number_of_mean_values_exit_2(patch_folder, tmp_path, capsys):
    assert main(["archive", str(patch_folder), "-o", str(tmp_path / "m.tar.xz"), "--mean", "1,2"]) == 2
    assert "2 mean values for input \"input\", which has 3 channels" in capsys.readouterr().err
    assert not (tmp_path / "m.tar.xz").exists()


def test_bad_sources_exit_2(tmp_path, capsys):
    not_blob = tmp_path / "model.blob"
    not_blob.write_text("not a blob at all, just text" * 4)
    empty = tmp_path / "empty"
    empty.mkdir()
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.blob").write_bytes(b"x")
    (two / "b.blob").write_bytes(b"x")
    cases = [
        ([str(not_blob), "-o", str(tmp_path / "a.tar.xz")], "not a MYRIAD blob"),
        ([str(empty), "-o", str(tmp_path / "a.tar.xz")], "folder holds no .blob"),
        ([str(two), "-o", str(tmp_path / "a.tar.xz")], "holds 2 blobs"),
        ([str(tmp_path / "missing"), "-o", str(tmp_path / "a.tar.xz")], "no such file"),
        ([str(not_blob), "-o", str(tmp_path / "a.zip")], ".tar.xz"),
    ]
    for argv, expect in cases:
        assert main(["archive", *argv]) == 2, argv
        assert expect in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tar.xz"))


def test_unusable_mean_text_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["archive", str(tmp_path), "-o", str(tmp_path / "a.tar.xz"), "--mean", "red,green"])
    assert info.value.code == 2
    assert "expected numbers" in capsys.readouterr().err


@pytest.mark.toolchain
def test_a_raw_input_declares_no_preprocessing_and_reads_back_in_depthai(tmp_path):
    """A non-image input has no per-channel preprocessing to declare (its channel count can be anything)."""
    require_toolchain()
    import numpy as np
    import openvino as ov
    from openvino import opset1

    from kernelkit.delivery.archive import build_archive
    from kernelkit.myriad.compile import compile_model
    from myriad_models import save_ir

    x = opset1.parameter([1, 64], np.float32, name="features")
    save_ir(ov.Model([opset1.relu(x, name="rectified")], [x], "raw"), tmp_path / "raw.xml")
    compile_model(tmp_path / "raw.xml", tmp_path / "raw.blob")
    result = build_archive(tmp_path / "raw.blob", tmp_path / "raw.tar.xz")
    (entry,) = result.config["model"]["inputs"]
    assert entry["input_type"] == "raw" and entry["preprocessing"]["mean"] is None
    (inp,) = read_archive(tmp_path / "raw.tar.xz").getConfigV1().model.inputs
    assert inp.name == "features" and list(inp.shape) == [1, 64] and str(inp.inputType).endswith("RAW")
    assert inp.preprocessing.mean is None and inp.preprocessing.scale is None


def test_blob_tensors_beyond_device_memory_or_empty_are_refused(tmp_path):
    from kernelkit.core.errors import KernelkitError
    from kernelkit.delivery.archive import _check_declared_sizes

    blob = tmp_path / "m.blob"
    fine = {"name": "x", "dtype": "float16", "shape": [1, 3, 300, 300]}
    _check_declared_sizes(blob, [fine, {**fine, "name": "y"}])
    huge = {"name": "scores", "dtype": "uint8", "shape": [1, 1 << 29, 2]}
    with pytest.raises(KernelkitError, match=r'"scores".*more than a Myriad X.*damaged') as info:
        _check_declared_sizes(blob, [fine, huge])
    assert info.value.path == str(blob)
    with pytest.raises(KernelkitError, match=r'"x" has shape \[1, 0, 4\]'):
        _check_declared_sizes(blob, [{**fine, "shape": [1, 0, 4]}])


@pytest.mark.toolchain
def test_a_blob_whose_tensor_name_is_not_utf8_is_refused(patch_folder, tmp_path, capsys):
    data = (patch_folder / "model.blob").read_bytes()
    assert data.count(b"input\0") == 1
    (tmp_path / "bad.blob").write_bytes(data.replace(b"input\0", b"\xffnput\0"))
    code = main(["archive", str(tmp_path / "bad.blob"), "-o", str(tmp_path / "out.tar.xz")])
    err = capsys.readouterr().err
    assert code == 2 and "not UTF-8" in err and "bad.blob" in err and "Traceback" not in err
    assert not (tmp_path / "out.tar.xz").exists()
