"""FP16 network outputs (`kernelkit compile --fp16-output`, compile_tool's `-op FP16`): real blobs from the 2021.4
plugin, their output descriptors read by kernelkit and by DepthAI, their values on the blob interpreter against
the FP32-output blob's and OpenVINO CPU's, and the superblob and NN Archive that carry them."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.core.errors import KernelkitError
from myriad_models import conv_relu, read_blob_with_depthai, relu_onnx, require_toolchain, save_ir


def topk_model(folder: Path) -> Path:
    """x [1,10,4,4] -> TopK(3) over the channels: a float output (values) and an integer one (indices)."""
    import openvino as ov
    from openvino import opset1, opset3

    x = opset1.parameter([1, 10, 4, 4], np.float32, name="x")
    top = opset3.topk(x, opset1.constant(np.int64(3)), 1, "max", "value", index_element_type="i32", name="top")
    return save_ir(ov.Model([top.output(0), top.output(1)], [x], "topk"), folder / "topk.xml")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """conv+relu and TopK, each compiled by the real plugin with FP32 (default) and with FP16 outputs."""
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("fp16out")
    blobs = {}
    for name, model in (("conv", conv_relu(folder)), ("topk", topk_model(folder))):
        for fp16 in (False, True):
            blobs[name, fp16] = compile_model(model, folder / f"{name}-{'fp16' if fp16 else 'fp32'}.blob",
                                              fp16_output=fp16).blob_path
    return folder, blobs


@pytest.mark.toolchain
def test_fp16_outputs_are_declared_fp16_and_the_plugin_leaves_out_its_last_convert(compiled):
    from kernelkit.myriad.blob_reader import read_blob

    _, blobs = compiled
    wide, narrow = read_blob(blobs["conv", False]), read_blob(blobs["conv", True])
    assert [(o.name, o.data_type) for o in wide.outputs] == [("relu", "FP32")]
    assert [(o.name, o.data_type) for o in narrow.outputs] == [("relu", "FP16")]
    assert [i.data_type for i in narrow.inputs] == ["FP32"]                    # inputs untouched
    assert narrow.header.outputs_size * 2 == wide.header.outputs_size == 8 * 32 * 32 * 4
    # The FP32 blob ends with the plugin's FP16 -> FP32 Convert writing the output; the FP16 blob has no such stage.
    assert [s.type_name for s in wide.stages][-1] == "Convert"
    assert len(narrow.stages) == len(wide.stages) - 1
    assert "Convert" not in [s.type_name for s in narrow.stages[1:]]
    assert narrow.stages[-1].outputs[-1].location == "Output"


@pytest.mark.toolchain
def test_depthai_reads_the_outputs_as_fp16(compiled):
    import depthai as dai

    _, blobs = compiled
    narrow = read_blob_with_depthai(blobs["conv", True])
    assert narrow.networkOutputs["relu"].dataType == dai.TensorInfo.DataType.FP16
    assert narrow.networkOutputs["relu"].dims == [32, 32, 8, 1]
    assert narrow.networkInputs["input"].dataType == dai.TensorInfo.DataType.FP32
    assert read_blob_with_depthai(blobs["conv", False]).networkOutputs["relu"].dataType == \
        dai.TensorInfo.DataType.FP32


@pytest.mark.toolchain
def test_values_equal_the_fp32_output_blob_and_openvino_cpu_within_fp16_rounding(compiled):
    """The FP32-output blob computes in fp16 and widens at the end, so the two blobs agree exactly; both stay
    within fp16 rounding of the IR on OpenVINO CPU (f32)."""
    import openvino as ov

    from kernelkit.runners.blob.runner import BlobRunner

    folder, blobs = compiled
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    narrow = BlobRunner(blobs["conv", True]).run({"input": x})
    wide = BlobRunner(blobs["conv", False]).run({"input": x})
    assert not narrow.failures and not wide.failures
    y16, y32 = narrow.outputs["relu"], wide.outputs["relu"]
    assert y16.shape == (1, 8, 32, 32)
    np.testing.assert_array_equal(y16, y32)
    np.testing.assert_array_equal(y16.astype(np.float16).astype(np.float32), y16)   # fp16 values, read as such
    reference = ov.Core().compile_model(str(folder / "convrelu.xml"), "CPU")({"input": x})[0]
    peak = float(np.abs(reference).max())
    assert peak > 1 and float(np.abs(y16 - reference).max()) < 4e-3 * peak           # a few fp16 roundings
    assert float(np.abs(y16 - reference).max()) > 0                                   # it did round


@pytest.mark.toolchain
def test_integer_outputs_keep_s32_and_both_come_back_right(compiled):
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.runners.blob.runner import BlobRunner

    _, blobs = compiled
    assert [(o.name, o.data_type) for o in read_blob(blobs["topk", True]).outputs] == \
        [("top.0", "FP16"), ("top.1", "S32")]
    # distinct fp16 values, so the order of the top 3 is unambiguous
    x = np.random.default_rng(4).permutation(160).reshape(1, 10, 4, 4).astype(np.float32) / 8
    run = BlobRunner(blobs["topk", True]).run({"x": x})
    order = np.argsort(-x, axis=1)[:, :3]
    np.testing.assert_array_equal(run.outputs["top.1"], order)
    np.testing.assert_array_equal(run.outputs["top.0"], np.take_along_axis(x, order, axis=1))


@pytest.mark.toolchain
def test_cli_compile_fp16_output_from_onnx_and_blob_run_writes_its_values(tmp_path, capsys):
    require_toolchain()
    import depthai as dai

    model = relu_onnx(tmp_path)
    assert main(["compile", str(model), "-o", str(tmp_path / "r.blob"), "--fp16-output"]) == 0
    assert read_blob_with_depthai(tmp_path / "r.blob").networkOutputs["y"].dataType == dai.TensorInfo.DataType.FP16
    x = np.linspace(-4, 4, 3 * 16 * 16, dtype=np.float32).reshape(1, 3, 16, 16)
    np.savez(tmp_path / "in.npz", x=x)
    capsys.readouterr()
    assert main(["blob", "run", str(tmp_path / "r.blob"), "--inputs", str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as got:
        np.testing.assert_array_equal(got["y"], np.maximum(x, 0).astype(np.float16).astype(np.float32))


@pytest.mark.toolchain
def test_superblob_and_archive_carry_fp16_outputs(tmp_path, capsys):
    """`compile --fp16-output` to a superblob: DepthAI reads FP16 outputs at every SHAVE count; the archive of
    the folder holding it declares float16 (config.json, and DepthAI's NN Archive reader)."""
    require_toolchain()
    import depthai as dai

    folder = tmp_path / "patched"
    folder.mkdir()
    conv_relu(folder, "model")
    assert main(["compile", str(folder), "-o", str(folder / "model.superblob"), "--fp16-output", "--jobs", "2"]) == 0
    superblob = dai.OpenVINO.SuperBlob(str(folder / "model.superblob"))
    for n in range(1, 17):
        outputs = superblob.getBlobWithNumShaves(n).networkOutputs
        assert outputs["relu"].dataType == dai.TensorInfo.DataType.FP16, n
    out = tmp_path / "model.tar.xz"
    assert main(["archive", str(folder), "-o", str(out)]) == 0
    with tarfile.open(out) as tar:
        config = json.load(tar.extractfile("config.json"))
    assert config["model"]["outputs"] == [{"name": "relu", "dtype": "float16", "shape": [1, 8, 32, 32],
                                           "layout": "NCHW"}]
    (read,) = dai.NNArchive(str(out)).getConfigV1().model.outputs
    assert read.name == "relu" and str(read.dtype).endswith("FLOAT16")


@pytest.mark.toolchain
def test_archive_fp16_output_compiles_the_superblob_so_and_refuses_an_fp32_blob(tmp_path, capsys):
    require_toolchain()
    folder = tmp_path / "patched"
    folder.mkdir()
    conv_relu(folder, "model")
    out = tmp_path / "model.tar.xz"
    assert main(["archive", str(folder), "-o", str(out), "--fp16-output", "--jobs", "2"]) == 0
    assert "compiled for every SHAVE count" in capsys.readouterr().out
    with tarfile.open(out) as tar:
        config = json.load(tar.extractfile("config.json"))
    assert [o["dtype"] for o in config["model"]["outputs"]] == ["float16"]

    from kernelkit.myriad.compile import compile_model

    compile_model(folder / "model.xml", folder / "model.blob")                       # FP32 outputs
    assert main(["archive", str(folder), "--blob", "-o", str(tmp_path / "b.tar.xz"), "--fp16-output"]) == 2
    err = capsys.readouterr().err
    assert "'relu' are FP32" in err and "--fp16-output" in err and "Traceback" not in err
    assert not (tmp_path / "b.tar.xz").exists()


def test_the_shims_own_key_is_not_a_plugin_setting():
    """A compile.conf cannot smuggle the shim's output-precision key in: --fp16-output is the way."""
    from kernelkit.myriad.compile import OUTPUT_PRECISION_KEY, make_config

    with pytest.raises(KernelkitError, match="--fp16-output"):
        make_config(extra={OUTPUT_PRECISION_KEY: "FP16"})
