"""`kernelkit compile` and the plugin oracle, against the real MYRIAD 2021.4 plugin (no mocks)."""

from __future__ import annotations

import json
import struct

import pytest

from kernelkit.cli import main
from kernelkit.myriad import compile as compile_mod
from myriad_models import (conv_relu, cumsum, greater_i32, opset8_softmax, read_blob_with_depthai, relu_onnx,
                           require_toolchain)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"conv": conv_relu(folder), "cumsum": cumsum(folder), "greater": greater_i32(folder),
            "conv_v11": conv_relu(folder, "convrelu11", version=11), "softmax8": opset8_softmax(folder),
            "onnx": relu_onnx(folder)}


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------- real compiles

@pytest.mark.toolchain
def test_conv_relu_compiles_and_depthai_reads_the_blob(models, tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "conv.blob"
    code, stdout, err = run_cli(capsys, "compile", models["conv"], "-o", out)
    assert code == 0, err
    assert "wrote" in stdout
    blob = read_blob_with_depthai(out)
    assert list(blob.networkInputs) == ["input"]
    assert list(blob.networkOutputs) == ["relu"]
    assert list(reversed(blob.networkInputs["input"].dims)) == [1, 3, 32, 32]
    assert list(reversed(blob.networkOutputs["relu"].dims)) == [1, 8, 32, 32]
    # Default: 6 SHAVEs and as many CMX slices, like blobconverter.
    assert (blob.numShaves, blob.numSlices) == (6, 6)
    assert blob.stageCount >= 3
    # The plugin writes blob version 6.0, which DepthAI files under 2022.1.
    assert struct.unpack_from("<II", out.read_bytes(), 60) == (6, 0)
    assert str(blob.version).endswith("2022_1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conv.blob", "conv.graph.dot"], \
        "temporary files left beside the blob (the plugin's graph dump is kept as conv.graph.dot)"


@pytest.mark.toolchain
def test_compile_is_deterministic_and_honours_shaves_and_slices(models, tmp_path, capsys):
    require_toolchain()
    first, second = tmp_path / "a.blob", tmp_path / "b.blob"
    assert run_cli(capsys, "compile", models["conv"], "-o", first, "--shaves", "4", "--cmx-slices", "5")[0] == 0
    assert run_cli(capsys, "compile", models["conv"], "-o", second, "--shaves", "4", "--cmx-slices", "5")[0] == 0
    assert first.read_bytes() == second.read_bytes()
    blob = read_blob_with_depthai(first)
    assert (blob.numShaves, blob.numSlices) == (4, 5)


@pytest.mark.toolchain
def test_the_shortened_device_search_changes_nothing_in_the_blob(models, tmp_path, monkeypatch):
    # The shim fast-forwards the plugin's 5 s device search; with the real clock it waits it out.
    require_toolchain()
    config = compile_mod.make_config()
    fast = compile_mod.run_shim(models["conv"], tmp_path / "fast.blob", config)
    monkeypatch.setenv("KERNELKIT_SHIM_REAL_CLOCK", "1")
    slow = compile_mod.run_shim(models["conv"], tmp_path / "slow.blob", config)
    assert fast.ok and slow.ok, (fast.message, slow.message)
    assert (tmp_path / "fast.blob").read_bytes() == (tmp_path / "slow.blob").read_bytes()


@pytest.mark.toolchain
def test_blob_version_2021_4_patches_only_bytes_60_and_64(models, tmp_path, capsys):
    require_toolchain()
    native, patched = tmp_path / "native.blob", tmp_path / "patched.blob"
    assert run_cli(capsys, "compile", models["conv"], "-o", native)[0] == 0
    assert run_cli(capsys, "compile", models["conv"], "-o", patched, "--blob-version", "2021.4")[0] == 0
    a, b = native.read_bytes(), patched.read_bytes()
    assert len(a) == len(b)
    assert struct.unpack_from("<II", b, 60) == (2021, 4)
    differing = [i for i in range(len(a)) if a[i] != b[i]]
    assert differing and all(60 <= i < 68 for i in differing)
    assert str(read_blob_with_depthai(patched).version).endswith("2021_4")


@pytest.mark.toolchain
def test_u8_input_gives_a_u8_blob_input(models, tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "u8.blob"
    assert run_cli(capsys, "compile", models["conv"], "-o", out, "--u8-input")[0] == 0
    blob = read_blob_with_depthai(out)
    assert str(blob.networkInputs["input"].dataType).endswith("U8F")
    assert str(blob.networkOutputs["relu"].dataType).endswith("FP32")


@pytest.mark.toolchain
def test_onnx_model_compiles_directly(models, tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "relu.blob"
    code, _, err = run_cli(capsys, "compile", models["onnx"], "-o", out)
    assert code == 0, err
    blob = read_blob_with_depthai(out)
    assert list(blob.networkInputs) == ["x"]
    assert list(blob.networkOutputs) == ["y"]


@pytest.mark.toolchain
def test_patch_folder_uses_its_compile_conf_and_report(models, tmp_path, capsys):
    require_toolchain()
    folder = tmp_path / "patched"
    folder.mkdir()
    for suffix in (".xml", ".bin"):
        (folder / f"model{suffix}").write_bytes(models["conv"].with_suffix(suffix).read_bytes())
    (folder / "compile.conf").write_text("# written by kernelkit patch\nMYRIAD_NUMBER_OF_SHAVES 3\n"
                                         "MYRIAD_NUMBER_OF_CMX_SLICES 3\nMYRIAD_THROUGHPUT_STREAMS 1\n")
    (folder / "patch-report.json").write_text(json.dumps({"preprocessing": {"u8_input": True}}))
    out = folder / "model.blob"
    # The folder's configuration wins over the defaults; the report asks for U8 input.
    code, _, err = run_cli(capsys, "compile", folder, "-o", out)
    assert code == 0, err
    blob = read_blob_with_depthai(out)
    assert (blob.numShaves, blob.numSlices) == (3, 3)
    assert str(blob.networkInputs["input"].dataType).endswith("U8F")
    # An explicit option beats the folder's configuration; slices follow the SHAVEs.
    assert run_cli(capsys, "compile", folder, "-o", out, "--shaves", "2")[0] == 0
    assert (read_blob_with_depthai(out).numShaves, read_blob_with_depthai(out).numSlices) == (2, 2)


@pytest.mark.toolchain
def test_cumsum_is_refused_with_layer_name_and_type(models, tmp_path, capsys):
    require_toolchain()
    out = tmp_path / "cumsum.blob"
    code, _, err = run_cli(capsys, "compile", models["cumsum"], "-o", out)
    assert code == 1
    assert 'unsupported layer type "CumSum"' in err
    assert '"running_total"' in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.toolchain
def test_greater_on_i32_is_refused_at_compile(models, tmp_path, capsys):
    require_toolchain()
    code, _, err = run_cli(capsys, "compile", models["greater"], "-o", tmp_path / "g.blob")
    assert code == 1
    assert "input #0 has type S32, but one of [FP16] is expected" in err
    assert "is_bigger" in err
    assert "/home/" not in err, "build-machine source paths should be stripped"


@pytest.mark.toolchain
def test_oracle_query_accepts_what_the_compile_refuses(models):
    require_toolchain()
    from kernelkit.runners.oracle import plugin_verdicts

    greater, conv, cum = plugin_verdicts([models["greater"], models["conv"], models["cumsum"]])
    # query_network misses the stage type check: only the compile says no.
    assert greater.query_says_supported is True
    assert not greater.compiled
    assert greater.unsupported[0][:2] == ("is_bigger", "Greater")
    assert "S32" in greater.unsupported[0][2]
    assert conv.compiled and conv.unsupported == [] and conv.blob_size > 0
    assert cum.query_says_supported is False
    assert cum.query["unsupported"] == [["running_total", "CumSum"]]
    assert (cum.compiled, cum.unsupported[0][:2]) == (False, ("running_total", "CumSum"))


# ------------------------------------------------------------------------- bad input: exit 2, no toolchain

def test_ir_v11_is_refused_with_the_patch_hint(models, tmp_path, capsys):
    code, _, err = run_cli(capsys, "compile", models["conv_v11"], "-o", tmp_path / "x.blob")
    assert code == 2
    assert "IR v11" in err and "kernelkit patch" in err and "--target 2021.4" in err


def test_op_newer_than_opset7_is_refused_naming_the_layer(models, tmp_path, capsys):
    code, _, err = run_cli(capsys, "compile", models["softmax8"], "-o", tmp_path / "x.blob")
    assert code == 2
    assert 'layer "probs"' in err and "opset8" in err


@pytest.mark.parametrize("argv, expect", [
    (["--shaves", "0"], "--shaves"),
    (["--shaves", "17"], "--shaves"),
    (["--cmx-slices", "20"], "--cmx-slices"),
    (["--custom-layers", "/nonexistent/custom.xml"], "custom layers XML not found"),
])
def test_bad_options_exit_2(models, tmp_path, capsys, argv, expect):
    code, _, err = run_cli(capsys, "compile", models["conv"], "-o", tmp_path / "x.blob", *argv)
    assert code == 2
    assert expect in err


def test_bad_model_files_exit_2(tmp_path, capsys, models):
    cases = {
        "missing": (tmp_path / "nope.xml", "no such file"),
        "text": (tmp_path / "model.txt", "unsupported model file type"),
        "malformed": (tmp_path / "broken.xml", "malformed XML"),
        "not_ir": (tmp_path / "other.xml", "not an OpenVINO IR"),
        "onnx": (tmp_path / "bad.onnx", "not a readable ONNX model"),
        "no_bin": (tmp_path / "nobin.xml", "weights file nobin.bin is missing"),
    }
    cases["text"][0].write_text("hello")
    cases["malformed"][0].write_text("<net version='10'><layers>")
    cases["not_ir"][0].write_text("<root/>")
    cases["onnx"][0].write_bytes(b"\x00\x01garbage" * 10)
    cases["no_bin"][0].write_bytes(models["conv"].read_bytes())
    for name, (path, expect) in cases.items():
        code, _, err = run_cli(capsys, "compile", path, "-o", tmp_path / "x.blob")
        assert code == 2, name
        assert expect in err, (name, err)
        assert "Traceback" not in err
    assert not (tmp_path / "x.blob").exists()


def test_u8_input_with_onnx_is_refused(models, tmp_path, capsys):
    code, _, err = run_cli(capsys, "compile", models["onnx"], "-o", tmp_path / "x.blob", "--u8-input")
    assert code == 2 and "--u8-input needs an IR .xml" in err


def test_patch_folder_errors(models, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "compile", empty, "-o", tmp_path / "x.blob")
    assert code == 2 and "no model.xml" in err

    folder = tmp_path / "patched"
    folder.mkdir()
    (folder / "model.xml").write_bytes(models["conv"].read_bytes())
    (folder / "model.bin").write_bytes(models["conv"].with_suffix(".bin").read_bytes())
    (folder / "compile.conf").write_text("MYRIAD_NUMBER_OF_SHAVES 4\nJUSTAKEY\n")
    code, _, err = run_cli(capsys, "compile", folder, "-o", tmp_path / "x.blob")
    assert code == 2 and "compile.conf:2" in err and "KEY VALUE" in err

    # The silent no-op switch is refused wherever it comes from.
    (folder / "compile.conf").write_text("MYRIAD_IGNORE_UNKNOWN_LAYERS YES\n")
    code, _, err = run_cli(capsys, "compile", folder, "-o", tmp_path / "x.blob")
    assert code == 2 and "MYRIAD_IGNORE_UNKNOWN_LAYERS is refused" in err

    (folder / "compile.conf").write_text("MYRIAD_NUMBER_OF_SHAVES six\n")
    code, _, err = run_cli(capsys, "compile", folder, "-o", tmp_path / "x.blob")
    assert code == 2 and "MYRIAD_NUMBER_OF_SHAVES must be a whole number" in err

    (folder / "compile.conf").write_text("MYRIAD_CUSTOM_LAYERS missing_custom.xml\n")
    code, _, err = run_cli(capsys, "compile", folder, "-o", tmp_path / "x.blob")
    assert code == 2 and "missing_custom.xml" in err


def test_forbidden_key_refused_in_library_config():
    with pytest.raises(compile_mod.KernelkitError, match="MYRIAD_IGNORE_UNKNOWN_LAYERS"):
        compile_mod.make_config(extra={"MYRIAD_IGNORE_UNKNOWN_LAYERS": "YES"})


def test_missing_toolchain_exits_3(models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    out = tmp_path / "x.blob"
    code, _, err = run_cli(capsys, "compile", models["conv"], "-o", out)
    assert code == 3
    assert "kernelkit toolchain setup" in err
    assert not out.exists()
    from kernelkit.core.errors import ToolchainUnavailable
    from kernelkit.runners.oracle import plugin_verdict

    with pytest.raises(ToolchainUnavailable):
        plugin_verdict(models["conv"])


def test_parse_compile_error_on_plugin_texts():
    # Texts as the 2021.4 plugin prints them (after cleaning), see docs/myriad-plugin-verdicts.md.
    assert compile_mod.parse_compile_error(
        'Failed to compile layer "CumSum_4": unsupported layer type "CumSum"') == ("CumSum_4", "CumSum")
    assert compile_mod.parse_compile_error(
        "Stage node onnx::Cast_3 (Greater) types check error: input #0 has type S32, but one of [FP16] is expected"
    ) == ("onnx::Cast_3", "Greater")
    assert compile_mod.parse_compile_error(
        'Failed to compile layer "interp": Current Interpolate supports \'nearest\' and \'linear\' modes only'
    ) == ("interp", None)
    assert compile_mod.parse_compile_error("something else entirely") == (None, None)
    cleaned = compile_mod.clean_plugin_message(
        "[ GENERAL_ERROR ] \n/home/ci/openvino/frontend.cpp:441 Failed to compile layer \"x\": unsupported layer "
        "type \"Sign\"")
    assert cleaned == 'Failed to compile layer "x": unsupported layer type "Sign"'


@pytest.mark.toolchain
def test_custom_layers_xml_reaches_the_plugin(models, tmp_path, capsys):
    """The plugin reads the bindings and looks for the kernel binary they name (no clc here to make one)."""
    require_toolchain()
    bindings = tmp_path / "custom_layers.xml"
    bindings.write_text(
        '<CustomLayer name="ReLU" type="MVCL" version="1">\n'
        '  <Kernel entry="relu_kernel">\n'
        '    <Source filename="relu_kernel.bin"/>\n'
        '    <Parameters>\n'
        '      <Tensor arg-name="src" type="input" port-index="0" format="BFYX"/>\n'
        '      <Tensor arg-name="dst" type="output" port-index="0" format="BFYX"/>\n'
        '    </Parameters>\n'
        '    <WorkSizes dim="input,0" global="X,Y,F" local="1,1,1"/>\n'
        '  </Kernel>\n'
        '</CustomLayer>\n')
    code, _, err = run_cli(capsys, "compile", models["conv"], "-o", tmp_path / "x.blob", "--custom-layers", bindings)
    assert code == 1
    assert str(tmp_path / "relu_kernel.bin") in err


def test_compile_time_limit_must_be_positive(models, tmp_path, capsys):
    code, _, err = run_cli(capsys, "compile", models["conv"], "-o", tmp_path / "x.blob", "--timeout", "0")
    assert code == 2 and "--timeout must be a positive number" in err
    assert not (tmp_path / "x.blob").exists()
