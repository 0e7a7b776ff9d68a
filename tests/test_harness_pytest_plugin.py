"""The pytest plugin: kernel.toml cases become pytest items; ordinary runs are untouched; xdist works."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernelkit.core.paths import cache_dir

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data" / "harness"
# pytester points HOME at a temporary folder; keep the user's cache (ONNX tests, builds, PoCL) warm.
USER_CACHE = cache_dir()


@pytest.fixture
def kernels(pytester, monkeypatch):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(USER_CACHE))
    root = pytester.path / "lib"
    for name in ("elu_h", "elu_wrong_h"):
        shutil.copytree(DATA / name, root / name)
    return root


def test_kernel_folder_becomes_one_test_per_case(pytester, kernels):
    result = pytester.runpytest_subprocess(str(kernels / "elu_h"), "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*kernel.toml::odd_width PASSED*", "*kernel.toml::onnx_elu_default PASSED*"])


def test_failing_case_shows_comparison_details(pytester, kernels):
    result = pytester.runpytest_subprocess(str(kernels / "elu_wrong_h" / "kernel.toml"), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAIL hk_elu_wrong_h::negative*", "*?numpy? FAIL", "*needs atol>=0.5*",
                                 "*reproduce: kernelkit test*"])
    assert "Traceback" not in result.stdout.str()


def test_specs_outside_kernels_are_not_collected_by_ordinary_runs(pytester, kernels):
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(str(pytester.path), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(str(pytester.path), "--kernel-specs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, failed=1)


def test_k_selects_by_kernel_and_case(pytester, kernels):
    result = pytester.runpytest_subprocess(str(kernels), "--kernel-specs", "-k", "hk_elu_h and edges",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=5)


def test_bad_spec_is_a_collection_error_naming_the_key(pytester, kernels):
    toml = kernels / "elu_h" / "kernel.toml"
    toml.write_text(toml.read_text().replace('shapes = [[1, 3, 5, 7]]', 'shapes = [[1, 3, 0, 7]]'))
    result = pytester.runpytest_subprocess(str(kernels / "elu_h"), "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*kernelkit:*kernel.toml*shapes*"])


def test_saves_case_data_on_request(pytester, kernels):
    data = pytester.path / "case-data"
    result = pytester.runpytest_subprocess(str(kernels / "elu_h"), "-k", "odd_width", "--kernel-data", str(data),
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=4)
    assert (data / "hk_elu_h" / "odd_width.npz").is_file()


def test_runs_under_xdist(pytester, kernels):
    result = pytester.runpytest_subprocess(str(kernels), "--kernel-specs", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=1)


def test_kernel_arithmetic_option_runs_the_kernels_in_fp16(pytester, kernels):
    # half_square_h squares in half: fine in float arithmetic, inf on the device (and with fp16 arithmetic)
    if shutil.which("clang-15") is None:
        pytest.skip("--kernel-arithmetic fp16 compiles with clang-15")
    shutil.copytree(DATA / "half_square_h", kernels / "half_square_h")
    result = pytester.runpytest_subprocess(str(kernels / "half_square_h"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(str(kernels / "half_square_h"), "--kernel-arithmetic", "fp16",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
