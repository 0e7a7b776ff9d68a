"""The blob header reader and version patch, checked against DepthAI's own blob reader."""

from __future__ import annotations

import struct

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import blob as blobfmt
from myriad_models import conv_relu, read_blob_with_depthai, require_toolchain


@pytest.fixture(scope="module")
def real_blob(tmp_path_factory):
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("blob")
    return compile_model(conv_relu(folder), folder / "conv.blob", shaves=5, cmx_slices=7).blob_path


@pytest.mark.toolchain
def test_header_agrees_with_depthai(real_blob):
    header = blobfmt.read_header(real_blob)
    blob = read_blob_with_depthai(real_blob)
    assert header.magic == blobfmt.BLOB_MAGIC
    assert header.file_size == real_blob.stat().st_size
    assert (header.shaves, header.cmx_slices) == (blob.numShaves, blob.numSlices) == (5, 7)
    assert header.stages == blob.stageCount
    assert (header.inputs, header.outputs) == (len(blob.networkInputs), len(blob.networkOutputs)) == (1, 1)
    assert header.version == (6, 0)
    # FP32 I/O: 1x3x32x32 in and 1x8x32x32 out, 4 bytes each.
    assert (header.inputs_size, header.outputs_size) == (3 * 32 * 32 * 4, 8 * 32 * 32 * 4)
    assert header.batch_size == 1
    offsets = [header.input_info_offset, header.output_info_offset, header.stages_offset, header.constants_offset]
    assert offsets == sorted(offsets) and offsets[-1] <= header.file_size


@pytest.mark.toolchain
def test_with_version_changes_only_the_version_fields(real_blob):
    data = real_blob.read_bytes()
    patched = blobfmt.with_version(data, "2021.4")
    assert struct.unpack_from("<II", patched, 60) == (2021, 4)
    assert patched[:60] == data[:60] and patched[68:] == data[68:]
    assert blobfmt.read_header(patched).version == (2021, 4)
    out = real_blob.with_name("v2021.blob")
    out.write_bytes(patched)
    assert str(read_blob_with_depthai(out).version).endswith("2021_4")


@pytest.mark.toolchain
def test_truncated_blob_is_refused(real_blob, tmp_path):
    cut = tmp_path / "cut.blob"
    cut.write_bytes(real_blob.read_bytes()[:-16])
    with pytest.raises(KernelkitError, match="truncated"):
        blobfmt.read_header(cut)


def test_non_blobs_are_refused(tmp_path):
    text = tmp_path / "model.xml"
    text.write_text("<net version='10'/>" * 10)
    with pytest.raises(KernelkitError, match="not a MYRIAD blob") as info:
        blobfmt.read_header(text)
    assert info.value.path == str(text)
    with pytest.raises(KernelkitError, match="not a MYRIAD blob"):
        blobfmt.read_header(b"\x7felf" + bytes(200))  # right preamble, wrong magic
    with pytest.raises(KernelkitError, match="blob not found"):
        blobfmt.read_header(tmp_path / "missing.blob")


def test_unknown_version_name_is_refused():
    with pytest.raises(KernelkitError, match="unknown blob version"):
        blobfmt.with_version(b"", "2020.1")
