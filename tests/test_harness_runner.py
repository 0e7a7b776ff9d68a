"""The conformance runner end to end: build, emulate on PoCL, compare with numpy, fp32, OpenVINO and ONNX."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.harness.inputs import generate_inputs
from kernelkit.harness.conformance import ERROR, FAIL, PASS, SKIP, discover_kernels, matches, plan, run
from kernelkit.kernel.spec import load_spec

DATA = Path(__file__).parent / "data" / "harness"
ELU, WRONG, UNWRITTEN, HANG = DATA / "elu_h", DATA / "elu_wrong_h", DATA / "unwritten_h", DATA / "hang_h"


@pytest.fixture(scope="module")
def elu_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("elu-data")
    return run([ELU], data_dir=data), data


def by_name(result):
    return {c.case: c for c in result.cases}


def test_correct_kernel_passes_every_reference(elu_run):
    result, _ = elu_run
    cases = by_name(result)
    assert set(cases) == {"odd_width", "edges", "onnx_elu", "onnx_elu_example", "onnx_elu_default"}
    assert result.ok and all(c.status == PASS for c in result.cases), [c.message for c in result.cases]
    refs = {r.name: r.status for r in cases["odd_width"].references}
    assert refs == {"numpy": PASS, "emulator-fp32": PASS, "openvino": PASS}
    assert [r.name for r in cases["onnx_elu"].references] == ["onnx"]
    out = cases["odd_width"].references[0].outputs[0]
    assert out.shape == (1, 3, 5, 7) and out.elements == 105
    assert 0 < out.abs_error.max <= 1e-2          # fp16 storage costs something, but little
    assert out.max_ulp <= 2


def test_edge_values_reach_the_kernel_and_match(elu_run):
    result, data = elu_run
    case = by_name(result)["edges"]
    saved = np.load(case.data_file)
    assert np.float16(65504) in saved["in0"] and np.float16(-65504) in saved["in0"]
    # ELU keeps 65504 and maps -65504 to -alpha (alpha = 1 in this case).
    big = saved["in0"] == np.float16(65504)
    assert np.all(saved["out0"][big] == np.float16(65504))
    assert np.all(saved["out0"][saved["in0"] == np.float16(-65504)] == np.float16(-1.0))


def test_saved_data_reproduces_the_case(elu_run):
    result, data = elu_run
    case = by_name(result)["odd_width"]
    assert Path(case.data_file) == data / "hk_elu_h" / "odd_width.npz"
    saved = np.load(case.data_file)
    spec = load_spec(ELU)
    np.testing.assert_array_equal(saved["in0"], generate_inputs(spec.cases[0])[0])
    assert {"in0", "out0", "ref_numpy_out0", "ref_emulator-fp32_out0", "ref_openvino_out0"} <= set(saved.files)
    x = saved["in0"].astype(np.float64)
    np.testing.assert_allclose(saved["ref_numpy_out0"], np.where(x > 0, x, 0.5 * np.expm1(x)))


def test_wrong_kernel_fails_against_independent_references(tmp_path):
    result = run([WRONG])
    (case,) = result.cases
    assert case.status == FAIL and not result.ok
    refs = {r.name: r for r in case.references}
    assert refs["numpy"].status == FAIL and refs["openvino"].status == FAIL
    assert refs["emulator-fp32"].status == PASS      # same bug in both precisions
    out = refs["numpy"].outputs[0]
    # The bug adds alpha = 0.5 to every output below zero: that is the error size the report must show.
    assert out.abs_error.max == pytest.approx(0.5, abs=2e-3)
    assert out.required_atol == pytest.approx(out.abs_error.max)
    assert "numpy: out0:" in case.message and "kernelkit test" in case.reproduce


def test_device_check_failure_is_an_error(tmp_path):
    result = run([UNWRITTEN])
    (case,) = result.cases
    assert case.status == ERROR
    assert case.message.startswith("device check failed") and "written" in case.message
    assert case.findings and case.references == []      # no reference is consulted for a broken run


def test_kernel_that_never_finishes_is_an_error_and_the_run_goes_on():
    result = run([HANG, WRONG], timeout=2.0)
    hang, wrong = result.cases
    assert hang.status == ERROR and "did not finish within 2" in hang.message
    assert wrong.status == FAIL                      # the emulator recovered for the next kernel


def test_fail_fast_stops_at_the_first_problem():
    result = run([WRONG, ELU], fail_fast=True)
    assert [c.id for c in result.cases] == ["hk_elu_wrong_h::negative"]


def test_broken_reference_is_an_error_not_a_pass(tmp_path):
    folder = tmp_path / "elu_h"
    shutil.copytree(ELU, folder)
    toml = folder / "kernel.toml"
    toml.write_text(toml.read_text().replace('numpy = "np.where(x > 0, x, alpha * np.expm1(x))"',
                                             'numpy = "np.where(x > 0, x, gamma * x)"'))
    result = run([folder], pattern="odd_width")
    (case,) = result.cases
    assert case.status == ERROR
    numpy_ref = next(r for r in case.references if r.name == "numpy")
    assert numpy_ref.status == ERROR and "gamma" in numpy_ref.reason and "[reference].numpy" in numpy_ref.reason


def test_missing_references_are_skips_with_reasons(tmp_path):
    folder = tmp_path / "elu_h"
    shutil.copytree(ELU, folder)
    toml = folder / "kernel.toml"
    text = toml.read_text()
    start, end = text.index("[reference]"), text.index("[[cases]]")
    toml.write_text(text[:start] + text[end:])
    result = run([folder], pattern="odd_width")
    (case,) = result.cases
    refs = {r.name: r for r in case.references}
    assert {n: r.status for n, r in refs.items()} == {"numpy": SKIP, "emulator-fp32": PASS, "openvino": SKIP}
    assert "no [reference] numpy" in refs["numpy"].reason and "openvino" in refs["openvino"].reason
    assert case.status == PASS


def test_a_reference_the_case_does_not_compare_is_a_skip_with_its_reason(tmp_path):
    folder = tmp_path / "elu_h"
    shutil.copytree(WRONG, folder)           # a wrong kernel: numpy and openvino both fail it
    toml = folder / "kernel.toml"
    text = toml.read_text()
    at = text.index("[[cases]]")
    at = text.index("\n\n", at) if "\n\n" in text[at:] else len(text)
    toml.write_text(text[:at] + '\nnot_compared = { openvino = "no ground truth here" }' + text[at:])
    (case,) = run([folder]).cases[:1]
    refs = {r.name: r for r in case.references}
    assert refs["openvino"].status == SKIP and refs["openvino"].reason == "not compared: no ground truth here"
    assert refs["numpy"].status == FAIL and case.status == FAIL   # the other references still judge


def test_onnx_tests_that_do_not_fit_are_skipped_cases(tmp_path):
    folder = tmp_path / "elu_h"
    shutil.copytree(ELU, folder)
    toml = folder / "kernel.toml"
    toml.write_text(toml.read_text().replace('onnx = { op = "Elu", defaults = { alpha = 1.0 } }',
                                             'onnx = { op = "Add" }'))
    result = run([folder], pattern="::onnx_")
    assert result.cases and result.ok
    assert all(c.status == SKIP and "2 inputs, the kernel takes 1" in c.message for c in result.cases)


def test_filter_by_substring_and_glob():
    assert matches("hk_elu_h::odd_width", "odd")
    assert matches("hk_elu_h::odd_width", "hk_elu_h::*")
    assert not matches("hk_elu_h::odd_width", "*::edges")
    ids = [p.id for p in plan([ELU], pattern="*::onnx_*")]
    assert ids and all("::onnx_" in i for i in ids)
    assert [p.id for p in plan([ELU, WRONG], pattern="negative")] == ["hk_elu_wrong_h::negative"]
    assert len(plan([ELU], pattern="hk_elu_h::onnx_elu_")) == 2          # _example and _default
    assert [p.id for p in plan([ELU], pattern="hk_elu_h::onnx_elu")] == ["hk_elu_h::onnx_elu"]


def test_unmatched_filter_is_bad_input():
    with pytest.raises(KernelkitError, match="no case matches"):
        run([ELU], pattern="no_such_case")


def test_discover_accepts_folders_files_and_parents(tmp_path):
    assert discover_kernels([ELU / "kernel.toml"]) == [ELU]
    assert set(discover_kernels([DATA])) >= {ELU, WRONG, UNWRITTEN}
    with pytest.raises(KernelkitError, match="no kernel.toml"):
        discover_kernels([tmp_path])
    with pytest.raises(KernelkitError, match="not found"):
        discover_kernels([tmp_path / "missing"])


def test_bad_spec_is_bad_input_naming_the_key(tmp_path):
    folder = tmp_path / "elu_h"
    shutil.copytree(ELU, folder)
    toml = folder / "kernel.toml"
    toml.write_text(toml.read_text().replace('low = -4.0', 'low = "minus four"'))
    with pytest.raises(KernelkitError) as err:
        run([folder])
    assert "kernel.toml" in str(err.value) and "low" in str(err.value)


def test_duplicate_kernel_names_are_refused(tmp_path):
    shutil.copytree(ELU, tmp_path / "a")
    shutil.copytree(ELU, tmp_path / "b")
    with pytest.raises(KernelkitError, match="also used by"):
        plan([tmp_path / "a", tmp_path / "b"])


def test_fp16_arithmetic_catches_what_float_arithmetic_hides():
    # A kernel that squares in half: on the device x * x overflows above 255.9 even where x * x / 1000 fits.
    # With the default fp32 arithmetic it passes; with arithmetic="fp16" the harness sees the inf.
    if shutil.which("clang-15") is None:
        pytest.skip("arithmetic='fp16' compiles with clang-15")
    float_run = run([DATA / "half_square_h"])
    half_run = run([DATA / "half_square_h"], arithmetic="fp16")
    assert float_run.ok and float_run.environment["arithmetic"] == "fp32"
    (case,) = half_run.cases
    assert not half_run.ok and half_run.environment["arithmetic"] == "fp16"
    assert case.status == FAIL and "numpy" in case.message
    from kernelkit.cli import main

    assert main(["test", str(DATA / "half_square_h"), "--arithmetic", "fp16"]) == 1
    assert main(["test", str(DATA / "half_square_h")]) == 0
