"""Custom stages (115) in the blob interpreter: the kernel's .cl on the SHAVE emulator, on the stage's own buffers,
scalars and work sizes, in blobs the real 2021.4 plugin compiled with check ELFs (no clc here).

Expected values come from numpy and from verify's path (the patched IR on OpenVINO CPU with the custom layer on
the emulator, or emulate() on the layer alone), never from the interpreter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from myriad_models import require_toolchain

pytestmark = pytest.mark.toolchain

DATA = Path(__file__).resolve().parent / "data" / "shave"


def _compile_with_check_elfs(out: Path) -> Path:
    """OUT/model.blob (and its graph dump) of a patch folder whose kernels have no .bin: the real plugin compiles
    it with check ELFs made from the .cl files (what plugin-check does), through compile_folder."""
    from kernelkit.doctor.plugin_check.check_model import prepare_bindings
    from kernelkit.doctor.workflow import compile_folder

    elfs = out.parent / f"{out.name}-elfs"
    elfs.mkdir()
    check_xml = prepare_bindings(out / "custom_layers.xml", elfs)
    return compile_folder(out, out / "model.blob", custom_layers=check_xml).blob_path


def _sin_model(folder: Path) -> Path:
    """x -> x*2 -> Sin ('wave') -> +0.5: one custom layer between two native stages."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter([1, 3, 8, 10], np.float32, name="x")
    wave = ops.sin(ops.multiply(x, ops.constant(np.float32(2.0))))
    wave.set_friendly_name("wave")
    y = ops.add(wave, ops.constant(np.float32(0.5)))
    path = folder / "sin.xml"
    ov.save_model(ov.Model([y], [x], "sin"), str(path), compress_to_fp16=False)
    return path


@pytest.fixture(scope="module")
def sin_folder(tmp_path_factory) -> Path:
    """A patch folder binding the library's sin_h kernel, with a model.blob compiled by the real plugin."""
    require_toolchain()
    from kernelkit.model.patcher import patch_model

    folder = tmp_path_factory.mktemp("sin")
    out = folder / "patched"
    assert patch_model(_sin_model(folder), out, "2021.4", prefer="kernel").exit_code == 0
    _compile_with_check_elfs(out)
    return out


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "patched"
    shutil.copytree(folder, target)
    return target


X = np.random.default_rng(0).uniform(-3, 3, (1, 3, 8, 10)).astype(np.float32)


def test_the_custom_stage_runs_its_cl_on_the_emulator(sin_folder):
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.runners.blob.runner import BlobRunner, load_program
    from kernelkit.runners.emulated_model import EmulatedModelRunner

    blob = sin_folder / "model.blob"
    assert [s.type_name for s in read_blob(blob).stages].count("Custom") == 1
    (stage,) = [s for s in load_program(blob).stages if s.custom is not None]
    assert stage.layer == "wave" and stage.custom.entry == "sin_h"          # the graph dump's stage -> layer map
    run = BlobRunner(blob, kernels=sin_folder).run({"x": X})
    assert not run.failures
    (got,) = run.outputs.values()
    want = np.sin(2.0 * X.astype(np.float64)) + 0.5
    # fp16 at every stage boundary (input, x*2, sin, +0.5): a few fp16 steps of values up to 1.5
    assert np.abs(got - want).max() < 4e-3
    (ir,) = EmulatedModelRunner(sin_folder / "model.xml", sin_folder / "custom_layers.xml").run([X]).outputs.values()
    assert np.abs(got - ir).max() < 4e-3


def test_without_kernels_a_custom_stage_is_an_error_naming_it(sin_folder, capsys):
    from kernelkit.cli import main
    from kernelkit.runners.blob.runner import BlobRunner

    blob = sin_folder / "model.blob"
    with pytest.raises(KernelkitError) as caught:
        BlobRunner(blob).run({"x": X})
    text = str(caught.value)
    assert "(Custom)" in text and "'wave'" in text and "'sin_h'" in text and "--kernels" in text
    assert main(["blob", "run", str(blob)]) == 2
    assert "--kernels" in capsys.readouterr().err
    assert main(["blob", "run", str(blob), "--kernels", str(sin_folder), "--accumulator", "fp32"]) == 0


def test_kernels_that_do_not_bind_the_stage_are_an_error(sin_folder, tmp_path):
    from kernelkit.runners.blob.runner import BlobRunner

    other = tmp_path / "other"
    other.mkdir()
    for name in ("kernels.xml", "rows_dma.cl"):
        shutil.copy(DATA / name, other / name)
    with pytest.raises(KernelkitError) as caught:
        BlobRunner(sin_folder / "model.blob", kernels=other).run({"x": X})
    assert "'sin_h'" in str(caught.value) and "kernels.xml" in str(caught.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KernelkitError, match="no MYRIAD binding file"):
        BlobRunner(sin_folder / "model.blob", kernels=empty)


def test_a_binding_that_differs_from_the_blob_is_flagged_and_the_blob_runs(sin_folder, tmp_path):
    """The binding's work sizes edited after the compile: the blob's are run, the difference is a finding."""
    import re

    from kernelkit.runners.blob.runner import BlobRunner

    folder = _copy(sin_folder, tmp_path)
    xml = folder / "custom_layers.xml"
    xml.write_text(re.sub(r'local="[^"]*"', 'local="1"', xml.read_text()))
    run = BlobRunner(folder / "model.blob", kernels=folder).run({"x": X})
    (finding,) = run.detail.findings
    assert finding.kind == "binding differs" and finding.layer == "wave"
    # the plugin wrote 15 groups of 16 for 240 elements; the edited binding says groups of 1
    assert "global (240, 1, 1) local (1, 1, 1)" in finding.message()
    assert "groups (15,) of local (16,)" in finding.message()
    (got,) = run.outputs.values()
    assert np.abs(got - (np.sin(2.0 * X.astype(np.float64)) + 0.5)).max() < 4e-3
    from kernelkit.cli import main

    assert main(["blob", "run", str(folder / "model.blob"), "--kernels", str(folder)]) == 1


def test_a_kernel_that_leaves_output_elements_unwritten_is_reported(sin_folder, tmp_path):
    from kernelkit.runners.blob.runner import BlobRunner

    folder = _copy(sin_folder, tmp_path)
    cl = folder / "sin_h.cl"
    text = cl.read_text()
    assert "y[i] = " in text
    cl.write_text(text.replace("y[i] = ", "if (i % 8 != 0) y[i] = "))
    run = BlobRunner(folder / "model.blob", kernels=folder).run({"x": X})
    (finding,) = run.detail.findings
    assert finding.kind == "kernel" and "30 of 240 elements of output 'y' were never written" in finding.message()


def test_a_cl_with_other_arguments_is_an_error(sin_folder, tmp_path):
    from kernelkit.runners.blob.runner import BlobRunner

    folder = _copy(sin_folder, tmp_path)
    cl = folder / "sin_h.cl"
    cl.write_text(cl.read_text().replace("__global half* restrict y", "__global half* restrict y, int extra"))
    with pytest.raises(KernelkitError, match="declares 3 argument"):
        BlobRunner(folder / "model.blob", kernels=folder).run({"x": X})


def test_verify_runs_the_blob_check_through_the_emulator(sin_folder, tmp_path):
    from kernelkit.doctor.verify import format_verify_result, verify

    result = verify(sin_folder)
    assert result.blob is not None and result.blob.not_run is None, result.blob.not_run
    assert result.ir_passed and result.blob.passed and result.passed
    (comparison,) = result.blob.comparisons
    assert 0 < comparison.abs_error.max < comparison.atol        # it ran (fp16 noise), within the blob's tolerance
    assert "in the IR and in the compiled blob" in format_verify_result(result)
    # the blob check runs the folder's .cl (not the binary the blob embeds): a wrong kernel fails it too
    folder = _copy(sin_folder, tmp_path)
    cl = folder / "sin_h.cl"
    cl.write_text(cl.read_text().replace("y[i] = (half)(sin(x));", "y[i] = (half)(cos(x));"))
    broken = verify(folder)
    assert not broken.ir_passed and not broken.blob.passed and broken.blob.not_run is None


# ------------------------------------------------------------------------------------------------ two stages

@pytest.fixture(scope="module")
def two_stage(tmp_path_factory):
    """A two-stage binding (channel means into a float scratch buffer, then the subtraction) compiled by the real
    plugin for an extension layer: the blob holds two Custom stages linked by a BSS buffer."""
    require_toolchain()
    from kernelkit.doctor.plugin_check.binding_file import check
    from kernelkit.doctor.plugin_check.check_model import CheckCase, TensorSpec
    from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION

    folder = tmp_path_factory.mktemp("two-stage")
    text = (DATA / "kernels.xml").read_text()
    start = text.index('<CustomLayer name="MeanSubtract"')
    end = text.index("</CustomLayer>", start) + len("</CustomLayer>")
    (folder / "mean.xml").write_text(text[start:end] + "\n")
    for name in ("mvn_stage0.cl", "mvn_stage1.cl"):
        shutil.copy(DATA / name, folder / name)
    case = CheckCase("MeanSubtract", [TensorSpec((1, 4, 3, 10))], [(1, 4, 3, 10)], {}, EXTENSION_LAYER_VERSION)
    (verdict,) = check(folder / "mean.xml", [case], jobs=1, keep=folder / "kept")
    assert verdict.status == "accepted"
    return folder, next((folder / "kept").rglob("*.check.blob"))


def test_a_two_stage_binding_runs_both_stages_through_its_scratch_buffer(two_stage):
    from kernelkit.kernel.emulator.run import emulate
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.runners.blob.runner import BlobRunner

    folder, blob = two_stage
    custom = [s for s in read_blob(blob).stages if s.type_name == "Custom"]
    assert len(custom) == 2 and custom[0].buffers[2].location == "BSS"          # stage 0's scratch output
    x = np.random.default_rng(1).standard_normal((1, 4, 3, 10)).astype(np.float32)
    run = BlobRunner(blob, kernels=folder / "mean.xml").run({"in0": x})
    assert not run.failures
    (got,) = run.outputs.values()
    xh = x.astype(np.float16).astype(np.float64)
    assert np.abs(got - (xh - xh.mean(axis=(2, 3), keepdims=True))).max() < 2e-3
    (layer,) = emulate(folder / "mean.xml", "MeanSubtract", [x]).outputs
    assert np.abs(got - layer).max() < 1e-3


def test_scalars_from_shapes_and_attributes_and_a_constant_input(tmp_path):
    """The library's cumsum: its axis is a constant input (an I32 buffer in the blob's constants), its scalars
    come from shape lookups and <Where>-chosen literals, and its binding has several alternatives sharing one
    .cl; the cross-check reads the layer's attributes from the folder's IR through the graph dump."""
    import openvino as ov
    import openvino.opset13 as ops

    from kernelkit.model.patcher import patch_model
    from kernelkit.runners.blob.runner import BlobRunner, load_program

    require_toolchain()
    x = ops.parameter([1, 2, 3, 5], np.float32, name="x")
    forward = ops.cumsum(x, np.int64(3))
    forward.set_friendly_name("forward")
    ov.save_model(ov.Model([forward], [x], "cumsum"), str(tmp_path / "cumsum.xml"), compress_to_fp16=False)
    out = tmp_path / "patched"
    assert patch_model(tmp_path / "cumsum.xml", out, "2021.4", prefer="kernel").exit_code == 0
    blob = _compile_with_check_elfs(out)
    (stage,) = [s for s in load_program(blob).stages if s.custom is not None]
    assert [a.kind for a in stage.custom.args].count("int") >= 2 and stage.layer == "forward"
    values = np.random.default_rng(2).standard_normal((1, 2, 3, 5)).astype(np.float32)
    run = BlobRunner(blob, kernels=out).run({"x": values})
    assert not run.failures, run.failures
    (got,) = run.outputs.values()
    assert np.abs(got - np.cumsum(values.astype(np.float16).astype(np.float64), axis=3)).max() < 4e-3


def test_poisoned_scratch_memory_leaves_the_custom_stage_bit_identical(sin_folder):
    from kernelkit.runners.blob.runner import BlobRunner

    blob = sin_folder / "model.blob"
    (clean,) = BlobRunner(blob, kernels=sin_folder).run({"x": X}).outputs.values()
    for seed in (1, 2):
        (poisoned,) = BlobRunner(blob, kernels=sin_folder, poison=seed).run({"x": X}).outputs.values()
        assert np.array_equal(clean, poisoned)


def test_a_write_past_the_output_is_reported(sin_folder, tmp_path):
    from kernelkit.runners.blob.runner import BlobRunner

    folder = _copy(sin_folder, tmp_path)
    cl = folder / "sin_h.cl"
    text = cl.read_text()
    cl.write_text(text.replace("y[i] = ", "y[i + 1] = "))
    run = BlobRunner(folder / "model.blob", kernels=folder).run({"x": X})
    messages = [f.message() for f in run.detail.findings]
    assert any("out-of-bounds write: argument 'y'" in m for m in messages), messages
    assert any("1 of 240 elements of output 'y' were never written" in m for m in messages), messages


def test_damaged_custom_stage_records_end_in_outputs_or_a_clear_error(sin_folder):
    """Random byte changes inside the Custom stage's record (work sizes, argument tags, scalars, descriptors)."""
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.runners.blob.custom import KernelSet
    from kernelkit.runners.blob.runner import BlobRunner

    data = (sin_folder / "model.blob").read_bytes()
    (stage,) = [s for s in read_blob(data).stages if s.type_name == "Custom"]
    kernels = KernelSet(sin_folder)
    rng = np.random.default_rng(5)
    for _ in range(60):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            damaged[int(rng.integers(stage.offset, stage.offset + stage.size))] = int(rng.integers(0, 256))
        try:
            BlobRunner(bytes(damaged), kernels=kernels).run({"x": X})
        except KernelkitError:
            pass
