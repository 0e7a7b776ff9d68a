"""docs/kernels pages: built from the real spec and a conformance report in the harness's JSON format."""

from __future__ import annotations

import json

from kernelkit.library.pages import LIMITS, write_pages
from kernelkit.core.paths import KERNELS_DIR, REPO_ROOT
from kernelkit.kernel.spec import load_spec


def _output(ulp, abs_max, rel_max, rel_p99):
    return {"max_ulp": ulp, "abs_error": {"max": abs_max}, "rel_error": {"max": rel_max, "p99": rel_p99}}


def _case(name, ulp, status="PASS"):
    return {"kernel": "grid_sample_h", "case": name, "status": status, "references": [
        {"name": "numpy", "status": status, "outputs": [_output(ulp, 1e-3 * (ulp + 1), 2e-3, 1e-3)]},
        {"name": "openvino", "status": status, "outputs": [_output(99, 1.0, 1.0, 1.0)]}]}


def test_page_shows_bindings_limits_and_worst_accuracy(tmp_path):
    report = tmp_path / "conformance.json"
    report.write_text(json.dumps({"cases": [_case("a", 1), _case("b", 3), _case("c", 0, "FAIL")]}))
    [page] = write_pages(report, tmp_path / "pages", ["grid_sample_h"])
    text = page.read_text()
    spec = load_spec(KERNELS_DIR / "grid_sample_h")
    assert text.startswith("# grid_sample_h: GridSample")
    for alt in spec.alternatives:
        assert ", ".join(f"{k}={v}" for k, v in alt.where.items()) in text
    assert LIMITS["grid_sample_h"] in text
    assert "max 3 fp16 ULP" in text           # the worst numpy comparison; OpenVINO rows are not summarised
    assert "cases run: 3 (FAIL, PASS)" in text
    assert "| c | numpy | FAIL | 0 |" in text


def test_every_library_kernel_has_a_page():
    from test_library_kernels import LIBRARY

    for name in LIBRARY:
        page = REPO_ROOT / "docs" / "kernels" / f"{name}.md"
        assert page.is_file(), name
        assert "## Measured accuracy" in page.read_text()
