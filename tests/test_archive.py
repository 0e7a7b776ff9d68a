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
def test_archive_from_patch_folder_is_a_superblob_depthai_reads(patch_folder, tmp_path, capsys):
    out = tmp_path / "detector.tar.xz"
    assert main(["archive", str(patch_folder), "-o", str(out)]) == 0
    assert "detector.superblob (compiled for every SHAVE count 1-16)" in capsys.readouterr().out
    archive = read_archive(out)
    assert str(archive.getModelType()).endswith("SUPERBLOB")
    config = archive.getConfigV1()
    assert config.configVersion == "1.0"
    meta = config.model.metadata
    assert (meta.name, meta.path) == ("detector", "detector.superblob")
    assert str(meta.precision).endswith("FLOAT16")
    (inp,) = config.model.inputs
    assert inp.name == "input" and inp.layout == "NCHW" and list(inp.shape) == [1, 3, 32, 32]
    assert str(inp.dtype).endswith("UINT8") and str(inp.inputType).endswith("IMAGE")
    # the patch report's preprocessing is inside the compiled model: the archive must not declare it again
    assert inp.preprocessing.mean == pytest.approx([0.0, 0.0, 0.0])
    assert inp.preprocessing.scale == pytest.approx([1.0, 1.0, 1.0])
    assert inp.preprocessing.reverseChannels is False
    # U8 planar input, colour already swapped inside the model: DepthAI feeds BGR planar U8 frames
    assert inp.preprocessing.daiType == "BGR888p" and inp.preprocessing.interleavedToPlanar is False
    (output,) = config.model.outputs
    assert output.name == "relu" and list(output.shape) == [1, 8, 32, 32] and str(output.dtype).endswith("FLOAT32")
    assert list(config.model.heads or []) == []
    superblob = archive.getSuperBlob()
    assert superblob.getBlobWithNumShaves(8).numShaves == 8
    # the folder's blob was compiled at the default 6 SHAVEs: the superblob holds the same blob for 6
    assert bytes(superblob.getBlobWithNumShaves(6).data) == (patch_folder / "model.blob").read_bytes()
    assert archive.getInputWidth() == 32 and archive.getInputHeight() == 32
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["config.json", "detector.superblob"]
    assert not list(patch_folder.glob("*.superblob")), "archive must not write into the source folder"


@pytest.mark.toolchain
def test_blob_option_packs_the_folder_s_blob(patch_folder, tmp_path):
    out = tmp_path / "detector.tar.xz"
    assert main(["archive", str(patch_folder), "-o", str(out), "--blob"]) == 0
    archive = read_archive(out)
    assert str(archive.getModelType()).endswith(".BLOB")
    assert archive.getConfigV1().model.metadata.path == "detector.blob"
    assert archive.getBlob().numShaves == 6
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == ["config.json", "detector.blob"]
        packed = tar.extractfile("detector.blob").read()
    assert packed == (patch_folder / "model.blob").read_bytes()


@pytest.mark.toolchain
def test_a_superblob_file_is_packed_as_it_is(patch_folder, tmp_path):
    superblob = tmp_path / "given.superblob"
    assert main(["compile", str(patch_folder), "-o", str(superblob)]) == 0
    out = tmp_path / "net.tar.xz"
    assert main(["archive", str(superblob), "-o", str(out)]) == 0
    with tarfile.open(out) as tar:
        assert tar.extractfile("net.superblob").read() == superblob.read_bytes()
    assert str(read_archive(out).getModelType()).endswith("SUPERBLOB")


@pytest.mark.toolchain
def test_the_wrong_kind_for_the_option_is_refused(patch_folder, tmp_path, capsys):
    superblob = tmp_path / "given.superblob"
    assert main(["compile", str(patch_folder), "-o", str(superblob)]) == 0
    cases = [([str(patch_folder / "model.blob"), "--superblob"], "--superblob: a .blob holds one SHAVE count"),
             ([str(superblob), "--blob"], "--blob: --blob asks for a plain blob")]
    for argv, expect in cases:
        assert main(["archive", *argv, "-o", str(tmp_path / "x.tar.xz")]) == 2
        assert expect in capsys.readouterr().err
        assert not (tmp_path / "x.tar.xz").exists()


def test_dai_types_follow_the_input_and_are_depthai_frame_types():
    """U8 -> 888, FP16 -> F16F16F16, planar/interleaved from the layout, RGB when channels are reversed."""
    from kernelkit.delivery.archive import Preprocessing, make_config

    def entry(dtype, layout, shape):
        return {"name": "x", "dtype": dtype, "layout": layout, "shape": shape}

    cases = [
        (entry("uint8", "NCHW", [1, 3, 8, 8]), False, "BGR888p"),
        (entry("uint8", "NCHW", [1, 3, 8, 8]), True, "RGB888p"),
        (entry("uint8", "NHWC", [1, 8, 8, 3]), False, "BGR888i"),
        (entry("float16", "NCHW", [1, 3, 8, 8]), False, "BGRF16F16F16p"),
        (entry("float16", "NHWC", [1, 8, 8, 3]), True, "RGBF16F16F16i"),
        (entry("uint8", "NCHW", [1, 1, 8, 8]), False, "GRAY8"),
        (entry("float16", "NCHW", [1, 1, 8, 8]), False, "GRAYF16"),
        (entry("float32", "NCHW", [1, 3, 8, 8]), False, None),
    ]
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    for tensor, reverse, expected in cases:
        config = make_config("m", "m.blob", [tensor], [], Preprocessing(reverse_channels=reverse))
        pre = config["model"]["inputs"][0]["preprocessing"]
        assert pre["dai_type"] == expected, (tensor, reverse)
        assert pre["interleaved_to_planar"] is (tensor["layout"] == "NHWC")
        if expected:
            assert expected in dai.ImgFrame.Type.__members__


@pytest.mark.toolchain
def test_an_fp32_input_declares_no_frame_type_and_says_why(tmp_path, capsys):
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    compile_model(conv_relu(tmp_path, "float"), tmp_path / "float.blob")
    out = tmp_path / "float.tar.xz"
    assert main(["archive", str(tmp_path / "float.blob"), "-o", str(out)]) == 0
    assert "input \"input\" takes FP32" in capsys.readouterr().err
    (inp,) = read_archive(out).getConfigV1().model.inputs
    assert str(inp.dtype).endswith("FLOAT32") and inp.preprocessing.daiType is None


def test_help_states_the_preprocessing_defaults_the_archive_writes(capsys):
    with pytest.raises(SystemExit):
        main(["archive", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "patch report" not in text
    assert "(default 0)" in text and "(default 1)" in text and "(default no)" in text


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
                   "interleaved_to_planar": False, "dai_type": "BGR888p"}
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
        ([str(empty), "-o", str(tmp_path / "a.tar.xz")], "folder holds no .superblob and no model.xml"),
        ([str(empty), "-o", str(tmp_path / "a.tar.xz"), "--blob"], "folder holds no .blob"),
        ([str(two), "-o", str(tmp_path / "a.tar.xz"), "--blob"], "holds 2 blobs"),
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
    assert entry["preprocessing"]["dai_type"] is None
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


@pytest.mark.toolchain
def test_a_folder_whose_model_does_not_compile_exits_1_and_writes_nothing(tmp_path, capsys):
    require_toolchain()
    from myriad_models import cumsum

    folder = tmp_path / "patched"
    folder.mkdir()
    model = cumsum(folder)
    model.with_suffix(".bin").rename(folder / "model.bin")
    model.rename(folder / "model.xml")
    out = tmp_path / "out.tar.xz"
    assert main(["archive", str(folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "compile failed" in err and "8 SHAVEs" in err and "running_total" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["patched"]
