"""Reports of a conformance run: terminal lines and progress, JSON, JUnit XML and a self-contained HTML page."""

from __future__ import annotations

import html
import json
import math
import os
import sys
from pathlib import Path

from kernelkit.runners.compare import OutputComparison, summary_line
from kernelkit.harness.conformance import ERROR, FAIL, PASS, SKIP, STATUSES, CaseResult, RunResult

JSON_NAME, JUNIT_NAME, HTML_NAME, DATA_DIR = "conformance.json", "junit.xml", "conformance.html", "data"
_COLOURS = {PASS: "#1a7f37", FAIL: "#cf222e", SKIP: "#9a6700", ERROR: "#8250df"}


# ------------------------------------------------------------------------------------ JSON

def _finite(value):
    """JSON has no Infinity/NaN: write them as strings so the file stays standard and diffable."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(run: RunResult, base: str | Path | None = None) -> str:
    """`base`: write data files relative to it (the report folder), so reports in two folders diff cleanly."""
    data = run.to_dict()
    if base is not None:
        for case in data["cases"]:
            if case["data_file"]:
                case["data_file"] = os.path.relpath(case["data_file"], base)
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------------ JUnit

def to_junit(run: RunResult) -> str:
    from lxml import etree

    counts = run.counts()
    suites = etree.Element("testsuites", name="kernelkit conformance", tests=str(len(run.cases)),
                           failures=str(counts[FAIL]), errors=str(counts[ERROR]), skipped=str(counts[SKIP]),
                           time=f"{run.duration:.3f}")
    by_kernel: dict[str, list[CaseResult]] = {}
    for case in run.cases:
        by_kernel.setdefault(case.kernel, []).append(case)
    for kernel, cases in by_kernel.items():
        statuses = [c.status for c in cases]
        suite = etree.SubElement(suites, "testsuite", name=kernel, tests=str(len(cases)),
                                 failures=str(statuses.count(FAIL)), errors=str(statuses.count(ERROR)),
                                 skipped=str(statuses.count(SKIP)), time=f"{sum(c.duration for c in cases):.3f}")
        for case in cases:
            element = etree.SubElement(suite, "testcase", classname=kernel, name=case.case,
                                       file=case.spec_path, time=f"{case.duration:.3f}")
            detail = case_details(case)
            if case.status == FAIL:
                etree.SubElement(element, "failure", message=_first_line(case.message)).text = detail
            elif case.status == ERROR:
                etree.SubElement(element, "error", message=_first_line(case.message)).text = detail
            elif case.status == SKIP:
                etree.SubElement(element, "skipped", message=_first_line(case.message))
            else:
                etree.SubElement(element, "system-out").text = detail
    return etree.tostring(suites, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()
    return line[0][:500] if line else ""


def case_details(case: CaseResult) -> str:
    """Multi-line text of one case: every reference and output, findings, how to reproduce."""
    lines = [f"{case.status} {case.id}"]
    if case.message:
        lines.append(f"  {case.message}")
    for ref in case.references:
        lines.append(f"  [{ref.name}] {ref.status}" + (f": {ref.reason}" if ref.reason and not ref.outputs else ""))
        for out in ref.outputs:
            lines.append(f"    {summary_line(out)}")
    for finding in case.findings:
        lines.append(f"  finding: {finding}")
    if case.data_file:
        lines.append(f"  data: {case.data_file}")
    if case.status in (FAIL, ERROR) and case.reproduce:
        lines.append(f"  reproduce: {case.reproduce}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ HTML

def histogram_svg(comparison: OutputComparison, width: int = 420, height: int = 140) -> str:
    """Inline SVG bar chart of log10(abs error), with the atol marked; empty string when nothing to draw."""
    hist = comparison.histogram or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts:
        return ""
    pad_left, pad_bottom, pad_top = 36, 28, 8
    plot_w, plot_h = width - pad_left - 8, height - pad_bottom - pad_top
    low, high = edges[0], edges[-1]
    peak = max(counts) or 1
    bar_w = plot_w / len(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="absolute error histogram of {html.escape(comparison.name)}">',
             f'<rect x="{pad_left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" fill="#f6f8fa"/>']
    atol_log = math.log10(comparison.atol) if comparison.atol > 0 else None
    for i, count in enumerate(counts):
        if not count:
            continue
        h = plot_h * count / peak
        x = pad_left + i * bar_w
        over = atol_log is not None and edges[i] >= atol_log
        colour = "#cf222e" if over else "#0969da"
        parts.append(f'<rect x="{x:.1f}" y="{pad_top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="{colour}"><title>10^{edges[i]:.2f}..10^{edges[i + 1]:.2f}: '
                     f'{count}</title></rect>')
    if atol_log is not None and low <= atol_log <= high:
        x = pad_left + plot_w * (atol_log - low) / (high - low)
        parts.append(f'<line x1="{x:.1f}" y1="{pad_top}" x2="{x:.1f}" y2="{pad_top + plot_h}" stroke="#000" '
                     f'stroke-dasharray="3,2"/><text x="{x + 3:.1f}" y="{pad_top + 10}" font-size="10">atol</text>')
    for value in (low, (low + high) / 2, high):
        x = pad_left + plot_w * (value - low) / (high - low)
        parts.append(f'<text x="{x:.1f}" y="{height - 14}" font-size="10" text-anchor="middle">1e{value:.1f}</text>')
    parts.append(f'<text x="{pad_left + plot_w / 2:.1f}" y="{height - 2}" font-size="10" text-anchor="middle">'
                 f'abs error (log10); exact: {hist.get("exact", 0)}</text>')
    parts.append(f'<text x="2" y="{pad_top + 10}" font-size="10">{peak}</text></svg>')
    return "".join(parts)


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;
vertical-align:top;font-size:13px}th{background:#f6f8fa}
.st{font-weight:bold;color:#fff;padding:0 .4em;border-radius:3px}
code,pre{font-size:12px}pre{white-space:pre-wrap;margin:0}details{margin:.3em 0}"""


def _badge(status: str) -> str:
    return f'<span class="st" style="background:{_COLOURS[status]}">{status}</span>'


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _output_table(comparison: OutputComparison) -> str:
    c = comparison
    rows = [("verdict", f"{'PASS' if c.passed else 'FAIL'}: {c.reason}"),
            ("shape / dtype", f"{list(c.shape)} {c.dtype} vs reference {list(c.expected_shape)} {c.expected_dtype}"),
            ("tolerance", f"atol={c.atol:g} rtol={c.rtol:g}" + (f" ({c.signal_note})" if c.signal_note else "")),
            ("mismatches", f"{c.mismatches} of {c.elements} ({c.nonfinite_mismatches} non-finite)"),
            ("abs error max/mean/median/p90/p99",
             " / ".join(_fmt(getattr(c.abs_error, k)) for k in ("max", "mean", "median", "p90", "p99"))),
            ("rel error max/mean/median/p90/p99",
             " / ".join(_fmt(getattr(c.rel_error, k)) for k in ("max", "mean", "median", "p90", "p99"))),
            ("max fp16 ulp", _fmt(c.max_ulp)),
            ("worst element", f"{c.worst_index}: got {_fmt(c.worst_actual)}, expected {_fmt(c.worst_expected)}"),
            ("smallest passing tolerance", "none (non-finite or shape mismatch)" if c.required_rtol is None
             else f"rtol={_fmt(c.required_rtol)} (atol fixed)" if c.required_atol is None
             else f"atol={_fmt(c.required_atol)} (rtol fixed) or rtol={_fmt(c.required_rtol)} (atol fixed)"),
            ("nan / inf / zero (got)", " / ".join(str(c.counts.get("actual", {}).get(k, 0))
                                                  for k in ("nan", "inf", "zero"))),
            ("nan / inf / zero (reference)", " / ".join(str(c.counts.get("expected", {}).get(k, 0))
                                                        for k in ("nan", "inf", "zero")))]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    chart = "" if c.passed else histogram_svg(c)
    return f"<table>{body}</table>{chart}"


def to_html(run: RunResult) -> str:
    counts = run.counts()
    summary = " ".join(f"{_badge(s)} {counts[s]}" for s in STATUSES)
    env = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                  for k, v in sorted(run.environment.items()))
    per_kernel: dict[str, dict[str, int]] = {}
    for case in run.cases:
        per_kernel.setdefault(case.kernel, {st: 0 for st in STATUSES})[case.status] += 1
    kernel_rows = "".join(
        f"<tr><td>{html.escape(kernel)}</td>" + "".join(f"<td>{counts[st]}</td>" for st in STATUSES) + "</tr>"
        for kernel, counts in per_kernel.items())
    rows = []
    for case in run.cases:
        refs_cell = " ".join(f"{html.escape(r.name)}: {_badge(r.status)}" for r in case.references)
        rows.append(f'<tr><td><a href="#{html.escape(case.id)}">{html.escape(case.id)}</a></td>'
                    f"<td>{_badge(case.status)}</td><td>{refs_cell}</td>"
                    f"<td>{html.escape(_first_line(case.message))}</td></tr>")
    sections = []
    for case in run.cases:
        if case.status == PASS:
            continue
        parts = [f'<h3 id="{html.escape(case.id)}">{_badge(case.status)} {html.escape(case.id)}</h3>']
        if case.message:
            parts.append(f"<pre>{html.escape(case.message)}</pre>")
        for finding in case.findings:
            parts.append(f"<p>finding: <code>{html.escape(finding)}</code></p>")
        for ref in case.references:
            opened = ' open="open"' if ref.status == FAIL else ""
            parts.append(f"<details{opened}><summary>{html.escape(ref.name)} "
                         f"{_badge(ref.status)} {html.escape(_first_line(ref.reason))}</summary>")
            for out in ref.outputs:
                parts.append(f"<h4>{html.escape(out.name)}</h4>{_output_table(out)}")
            parts.append("</details>")
        if case.reproduce and case.status in (FAIL, ERROR):
            parts.append(f"<p>reproduce: <code>{html.escape(case.reproduce)}</code></p>")
        if case.data_file:
            parts.append(f"<p>data: <code>{html.escape(case.data_file)}</code></p>")
        sections.append("".join(parts))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>kernelkit conformance</title><style>{_CSS}</style></head><body>"
            f"<h1>kernelkit conformance</h1><p>{summary} (of {len(run.cases)})</p>"
            f"<table>{env}</table><h2>Kernels</h2><table><tr><th>kernel</th>"
            + "".join(f"<th>{st}</th>" for st in STATUSES) + f"</tr>{kernel_rows}</table><h2>Cases</h2><table><tr><th>case</th><th>status</th><th>references</th>"
            f"<th>message</th></tr>{''.join(rows)}</table>"
            f"<h2>Details of cases that did not pass</h2>{''.join(sections) or '<p>none</p>'}</body></html>\n")


def write_reports(run: RunResult, report_dir: str | Path) -> dict[str, Path]:
    from kernelkit.core.fsutil import atomic_write

    report_dir = Path(report_dir)
    return {"json": atomic_write(report_dir / JSON_NAME, to_json(run, base=report_dir)),
            "junit": atomic_write(report_dir / JUNIT_NAME, to_junit(run)),
            "html": atomic_write(report_dir / HTML_NAME, to_html(run))}


# ------------------------------------------------------------------------------------ terminal

class TerminalProgress:
    """A one-line progress bar when the stream is a TTY and the run is long; plain result lines otherwise."""

    BAR_WIDTH = 28
    LONG_RUN = 10          # cases; shorter runs print plain lines only

    def __init__(self, stream=None, *, verbose: bool = False):
        self.stream = stream or sys.stdout
        self.verbose = verbose
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar_shown = False

    def _use_bar(self, total: int) -> bool:
        return self.tty and total >= self.LONG_RUN

    def start(self, index: int, total: int, planned) -> None:
        if self._use_bar(total):
            self._bar(index, total, planned.id)

    def result(self, done: int, total: int, case: CaseResult) -> None:
        show = self.verbose or case.status in (FAIL, ERROR) or not self._use_bar(total)
        if show:
            self._clear()
            text = case_details(case) if case.status in (FAIL, ERROR) else (
                f"{case.status} {case.id}" + (f" ({_first_line(case.message)})" if case.status == SKIP else ""))
            print(text, file=self.stream)
        if self._use_bar(total):
            self._bar(done, total, "")
        if done == total:
            self._clear()

    def finish(self) -> None:
        """Clear the bar (a run stopped early never reaches done == total)."""
        self._clear()

    def _bar(self, done: int, total: int, label: str) -> None:
        filled = int(self.BAR_WIDTH * done / total) if total else self.BAR_WIDTH
        bar = "#" * filled + "." * (self.BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done}/{total} {label[:50]:<50}")
        self.stream.flush()
        self._bar_shown = True

    def _clear(self) -> None:
        if self._bar_shown:
            self.stream.write("\r" + " " * (self.BAR_WIDTH + 62) + "\r")
            self.stream.flush()
            self._bar_shown = False


def summary_text(run: RunResult) -> str:
    counts = run.counts()
    parts = ", ".join(f"{counts[s]} {s.lower()}" for s in STATUSES if counts[s])
    failing = [c.id for c in run.cases if c.status in (FAIL, ERROR)]
    lines = [f"conformance: {len(run.cases)} case(s): {parts or 'none'} in {run.duration:.1f} s"]
    by_reference: dict[str, dict[str, int]] = {}
    for case in run.cases:
        for ref in case.references:
            by_reference.setdefault(ref.name, {s: 0 for s in STATUSES})[ref.status] += 1
    if by_reference:
        lines.append("references: " + "; ".join(
            f"{name} " + ", ".join(f"{n} {s.lower()}" for s, n in tally.items() if n)
            for name, tally in by_reference.items()))
    if failing:
        lines.append("not passing: " + ", ".join(failing))
    return "\n".join(lines)
