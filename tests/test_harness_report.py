"""Reports: JSON (stable, standard), JUnit XML, self-contained HTML with histograms, terminal output."""

from __future__ import annotations

import io
import json

import numpy as np

from kernelkit.runners.compare import compare
from kernelkit.harness.report import (TerminalProgress, histogram_svg, summary_text, to_html, to_json, to_junit,
                                      write_reports)
from kernelkit.harness.conformance import ERROR, FAIL, PASS, SKIP, CaseResult, ReferenceResult, RunResult
from kernelkit.core.xmlsafe import parse_document

ENV = {"kernelkit": "0.1.0", "numpy": np.__version__}


def sample_run() -> RunResult:
    expected = np.linspace(-1, 1, 64)
    good = compare(expected.astype(np.float16), expected, name="out0")
    noisy = expected.copy()
    noisy[5] += 0.5
    noisy[7] = np.inf
    bad = compare(noisy, expected, name="out0")
    cases = [
        CaseResult("k_h", "ok", "spec", PASS, references=[ReferenceResult("numpy", PASS, "", [good])],
                   spec_path="/k/kernel.toml", duration=0.25),
        CaseResult("k_h", "broken", "spec", FAIL, message="numpy: out0: 2 of 64 elements mismatch <here>",
                   references=[ReferenceResult("numpy", FAIL, bad.reason, [bad]),
                               ReferenceResult("openvino", SKIP, "the spec has no [reference].openvino op")],
                   spec_path="/k/kernel.toml", reproduce="kernelkit test /k -k 'k_h::broken'", duration=0.5),
        CaseResult("k_h", "crash", "spec", ERROR, message="device check failed: global size 10 not a multiple",
                   findings=["error: stage 0: global size"], spec_path="/k/kernel.toml"),
        CaseResult("other_h", "onnx_x", "onnx", SKIP, message="ONNX node test skipped: 2 outputs",
                   spec_path="/o/kernel.toml"),
    ]
    return RunResult(cases, ENV, duration=1.5)


def test_json_is_stable_standard_and_free_of_timings():
    run = sample_run()
    text = to_json(run)
    assert text == to_json(sample_run())
    data = json.loads(text)          # standard JSON: the Inf in the failing output became a string
    assert "Infinity" not in text and "NaN" not in text
    assert data["summary"] == {"total": 4, "pass": 1, "fail": 1, "skip": 1, "error": 1}
    assert [c["id"] for c in data["cases"]] == ["k_h::ok", "k_h::broken", "k_h::crash", "other_h::onnx_x"]
    assert "duration" not in text
    broken = data["cases"][1]["references"][0]["outputs"][0]
    assert broken["mismatches"] == 2 and broken["required_atol"] is None
    assert broken["counts"]["actual"]["inf"] == 1
    assert list(data) == sorted(data)


def test_junit_counts_and_elements():
    root = parse_document(to_junit(sample_run()).encode())
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"k_h", "other_h"}
    cases = {c.get("name"): c for c in suites["k_h"].findall("testcase")}
    assert cases["broken"].find("failure") is not None
    assert "reproduce: kernelkit test /k" in cases["broken"].find("failure").text
    assert cases["crash"].find("error").get("message").startswith("device check failed")
    assert cases["ok"].find("failure") is None and cases["ok"].get("time") == "0.250"
    assert suites["other_h"].find("testcase/skipped") is not None


def test_html_is_self_contained_with_a_histogram_per_failing_output():
    page = to_html(sample_run())
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1                       # only the failing output gets a chart
    assert "<script" not in page and "<link" not in page and "src=" not in page
    assert "&lt;here&gt;" in page and "<here>" not in page
    assert 'id="k_h::broken"' in page and "reproduce" in page
    assert "<tr><td>k_h</td><td>1</td><td>1</td><td>0</td><td>1</td></tr>" in page   # per-kernel tally
    root = parse_document(page.replace("<!DOCTYPE html>", "").encode())   # well-formed markup
    assert root.tag == "html"


def test_histogram_svg_draws_one_bar_per_nonempty_bin():
    expected = np.ones(100)
    actual = expected + np.concatenate([np.full(50, 1e-4), np.full(30, 1e-2), np.zeros(20)])
    comparison = compare(actual, expected)
    svg = histogram_svg(comparison)
    nonempty = sum(1 for c in comparison.histogram["counts"] if c)
    assert svg.count("<rect") == 1 + nonempty           # the plot background plus the bars
    assert "atol" in svg and "exact: 20" in svg
    assert histogram_svg(compare(expected, expected)) == ""


def test_write_reports_writes_three_files(tmp_path):
    written = write_reports(sample_run(), tmp_path / "report")
    assert sorted(p.name for p in written.values()) == ["conformance.html", "conformance.json", "junit.xml"]
    assert all(p.stat().st_size > 0 for p in written.values())


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_terminal_plain_lines_when_not_a_tty():
    run = sample_run()
    stream = io.StringIO()
    progress = TerminalProgress(stream)
    for index, case in enumerate(run.cases):
        progress.result(index + 1, len(run.cases), case)
    text = stream.getvalue()
    assert "\r" not in text
    assert "PASS k_h::ok" in text and "FAIL k_h::broken" in text and "SKIP other_h::onnx_x" in text
    assert "finding: error: stage 0" in text


def test_terminal_progress_bar_on_long_tty_runs_shows_only_problems():
    run = sample_run()
    cases = run.cases * 5
    stream = _TTY()
    progress = TerminalProgress(stream)
    for index, case in enumerate(cases):
        progress.start(index, len(cases), type("P", (), {"id": case.id})())
        progress.result(index + 1, len(cases), case)
    text = stream.getvalue()
    assert "\r[" in text and f"{len(cases)}/{len(cases)}" in text
    assert "PASS k_h::ok" not in text and "FAIL k_h::broken" in text


def test_summary_text_lists_cases_not_passing():
    text = summary_text(sample_run())
    assert "4 case(s): 1 pass, 1 fail, 1 skip, 1 error" in text
    assert "references: numpy 1 pass, 1 fail; openvino 1 skip" in text
    assert "not passing: k_h::broken, k_h::crash" in text
