"""Superblobs (`kernelkit compile -o NAME.superblob`): read back by DepthAI's own SuperBlob reader at every SHAVE
count and compared byte for byte with a direct compile at that count."""

from __future__ import annotations

import os
import struct

import pytest

from kernelkit.cli import main
from myriad_models import conv_relu, require_toolchain


def depthai():
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """A small model, its superblob from the CLI, and direct compiles at every count 1..16."""
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("superblob")
    model = conv_relu(folder, "model")
    assert main(["compile", str(model), "-o", str(folder / "model.superblob"), "--jobs", "2"]) == 0
    direct = {}
    for n in range(1, 17):
        direct[n] = compile_model(model, folder / f"direct{n}.blob", shaves=n).blob_path.read_bytes()
    return folder, model, direct


@pytest.mark.toolchain
def test_depthai_reads_the_direct_compile_back_at_every_shave_count(compiled):
    folder, _, direct = compiled
    dai = depthai()
    superblob = dai.OpenVINO.SuperBlob(str(folder / "model.superblob"))
    assert superblob.NUMBER_OF_PATCHES == 16
    for n in range(1, 17):
        blob = superblob.getBlobWithNumShaves(n)
        assert (blob.numShaves, blob.numSlices) == (n, n), n
        assert bytes(blob.data) == direct[n], f"{n} SHAVEs: DepthAI's blob differs from the direct compile"
    with pytest.raises(IndexError):
        superblob.getBlobWithNumShaves(17)


@pytest.mark.toolchain
def test_layout_is_depthai_core_s(compiled):
    """u64 BE base size, 16 u64 BE patch sizes (0 for 8 SHAVEs), the 8-SHAVE blob, then BSDIFF40 patches."""
    import bsdiff4

    folder, _, direct = compiled
    data = (folder / "model.superblob").read_bytes()
    sizes = struct.unpack_from(">17Q", data)
    base_size, patch_sizes = sizes[0], sizes[1:]
    assert len(data) == 136 + base_size + sum(patch_sizes)
    assert data[136:136 + base_size] == direct[8]
    assert patch_sizes[7] == 0
    offset = 136 + base_size
    for n, size in enumerate(patch_sizes, 1):
        patch = data[offset:offset + size]
        offset += size
        if n == 8:
            continue
        if direct[n] == direct[8]:
            assert size == 0, n
        else:
            assert patch.startswith(b"BSDIFF40"), n
            assert bsdiff4.patch(direct[8], patch) == direct[n], n


@pytest.mark.toolchain
def test_our_reader_agrees_and_refuses_damage(compiled, tmp_path):
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad import superblob

    folder, _, direct = compiled
    path = folder / "model.superblob"
    read = superblob.read(path)
    assert [read.blob(n) for n in range(1, 17)] == [direct[n] for n in range(1, 17)]
    data = path.read_bytes()
    with pytest.raises(KernelkitError, match="declares .* bytes, the file has"):
        superblob.parse(data[:-1])
    with pytest.raises(KernelkitError, match="shorter than its 136-byte header"):
        superblob.parse(data[:100])
    first_patch = next(n for n in range(1, 17) if read.patches[n - 1])
    offset = 136 + len(read.base) + sum(len(p) for p in read.patches[:first_patch - 1])
    damaged = data[:offset] + b"XXXXXXXX" + data[offset + 8:]
    with pytest.raises(KernelkitError, match=f"patch for {first_patch} SHAVEs does not start with BSDIFF40"):
        superblob.parse(damaged)
    # a patch that declares a blob far beyond any Myriad X is refused before anything is allocated for it
    header = data[offset:offset + 24] + (1 << 62).to_bytes(8, "little")
    with pytest.raises(KernelkitError, match=f"patch for {first_patch} SHAVEs declares a 4,611,686"):
        superblob.parse(data[:offset] + header + data[offset + 32:])
    with pytest.raises(KernelkitError, match="declares blocks that do not fit"):
        superblob.parse(data[:offset + 8] + (1 << 40).to_bytes(8, "little") + data[offset + 16:])
    with pytest.raises(KernelkitError, match="its base is not a MYRIAD blob"):
        superblob.parse(data[:136] + b"\0" * 60 + data[196:])


@pytest.mark.toolchain
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_refused_model_names_the_count_and_nothing_is_written(tmp_path, capsys, jobs):
    """The plugin refuses CumSum at every count; the base (8 SHAVEs) compiles first and is the one named."""
    require_toolchain()
    from myriad_models import cumsum

    model = cumsum(tmp_path)
    out = tmp_path / "out" / "cumsum.superblob"
    out.parent.mkdir()
    assert main(["compile", str(model), "-o", str(out), "--jobs", jobs]) == 1
    err = capsys.readouterr().err
    assert "the compile for 8 SHAVEs (8 CMX slices) failed" in err and "running_total" in err, err
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []


@pytest.mark.toolchain
def test_options_a_superblob_chooses_itself_are_refused(tmp_path, capsys):
    require_toolchain()
    model = conv_relu(tmp_path, "model")
    for argv, option in ((["--superblob", "--shaves", "4"], "--shaves"), (["--cmx-slices", "4"], "--cmx-slices")):
        out = tmp_path / "x.superblob"
        assert main(["compile", str(model), "-o", str(out), *argv]) == 2
        assert option in capsys.readouterr().err
        assert not out.exists()
    assert main(["compile", str(model), "-o", str(tmp_path / "x.blob"), "--jobs", "2"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_jobs_variable_bounds_the_workers(monkeypatch, tmp_path):
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.superblob import JOBS_VARIABLE, default_jobs

    model = tmp_path / "m.xml"
    model.write_text("<net/>")
    monkeypatch.setenv(JOBS_VARIABLE, "3")
    assert default_jobs(model) == 3
    monkeypatch.setenv(JOBS_VARIABLE, "99")
    assert default_jobs(model) == 16
    monkeypatch.setenv(JOBS_VARIABLE, "zero")
    with pytest.raises(KernelkitError, match=JOBS_VARIABLE):
        default_jobs(model)
    monkeypatch.delenv(JOBS_VARIABLE)
    assert 1 <= default_jobs(model) <= min(os.cpu_count() or 1, 16)


@pytest.mark.toolchain
def test_diffs_in_worker_processes_give_the_same_superblob(compiled, monkeypatch):
    """Big blobs are diffed in processes (bsdiff holds the GIL); the result is the in-process one."""
    from kernelkit.myriad import superblob

    folder, _, direct = compiled
    monkeypatch.setattr(superblob, "_PARALLEL_DIFF_BYTES", 0)
    assert superblob.pack(direct, jobs=2).to_bytes() == (folder / "model.superblob").read_bytes()
