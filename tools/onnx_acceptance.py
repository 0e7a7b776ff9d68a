"""Acceptance yardstick: ONNX's own node tests for ops MYRIAD 2021.4 cannot compile, through patch + verify.

For every single-node case of `onnx.backend.test.case.node.collect_testcases(None)`:
  0. small inputs after the node's first (axes, pads, k, scales: at most 8 values) become initializers, as
     in deployed models (MYRIAD needs them constant; kernelkit.harness.onnx_cases); test data numpy cannot
     hold (bf16, strings) is skipped;
  1. convert it with the case's input shapes (`--input-shape` from the case inputs) and ask
     `kernelkit.model.blockers.find_blockers` whether MYRIAD 2021.4 could compile it as converted. A case is in
     scope when a blocker other than the IR version remains (every 2026 conversion is IR v11);
  2. `patch` it for 2021.4 (must exit 0), then
  3. `verify --inputs … --expected …` against ONNX's expected outputs (must pass). A failing case is
     marked "OpenVINO itself wrong" when OpenVINO CPU misses the expected outputs on the unpatched model too;
  4. compile the patch output with the real OpenVINO 2021.4 MYRIAD plugin (`kernelkit.doctor.workflow.compile_patched`,
     what `patch --compile` runs). A case is *deployable* when it verified and the plugin wrote a blob: a
     bound library kernel needs its SHAVE `.bin` from clc, so a kernel-bound case is verified, not deployable.
Writes docs/onnx-acceptance.md: per op, cases in scope, patched clean, verified, deployable, the fractions.

Run: .venv/bin/python tools/onnx_acceptance.py [--ops CumSum,HardSigmoid] [--jobs 2] [--out docs/onnx-acceptance.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET = "2021.4"


def run_case(case, folder: Path, *, prefer: str = "native") -> tuple[str, str, str]:
    """(status, detail, deploy). status is one of out-of-scope, no-convert, patch-exit-1, error, fail, fail-ov,
    pass; deploy is "blob" (the real plugin compiled the patch output), "clc: ..." (kernels bound, their .bin
    needs clc), "refused: ..." (the plugin's message), "no-toolchain: ..." or "" (not tried: patch exit 1)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model.blockers import find_blockers
    from kernelkit.ir.load import load_model
    from kernelkit.harness.onnx_cases import openvino_misses, prepare
    from kernelkit.model.patcher import patch_model
    from kernelkit.doctor.verify import verify

    prepared = prepare(case, folder)
    if isinstance(prepared, str):
        return "out-of-scope", prepared, ""
    model_path, shapes, inputs, expected = prepared.model_path, prepared.shapes, prepared.inputs, prepared.expected
    try:
        model = load_model(model_path, shapes)
    except KernelkitError as exc:
        return "no-convert", exc.message.splitlines()[0][:120], ""
    blockers = [b for b in find_blockers(model, TARGET) if b.kind != "ir-version"]
    if not blockers:
        return "out-of-scope", "", ""
    out = folder / "out"
    try:
        result = patch_model(model_path, out, TARGET, input_shapes=shapes, force=True, prefer=prefer)
    except KernelkitError as exc:
        return "error", f"patch: {exc.message.splitlines()[0][:120]}", ""
    if result.exit_code != 0:
        left = result.remaining[0]
        return "patch-exit-1", f"{left.type}: {left.reason[:100]}", ""
    deploy = _deploy(out)
    np.savez(folder / "in.npz", **{f"in{i}": a for i, a in enumerate(inputs)})
    np.savez(folder / "exp.npz", **{f"out{i}": a for i, a in enumerate(expected)})
    try:
        checked = verify(out, inputs=folder / "in.npz", expected=folder / "exp.npz")
    except KernelkitError as exc:
        return "error", f"verify: {exc.message.splitlines()[0][:120]}", deploy
    if checked.passed:
        return "pass", "", deploy
    reasons = checked.problems + [c.reason for c in checked.comparisons if not c.passed]
    reason = (reasons[0] if reasons else "no output compared")[:110]
    if openvino_misses(prepared):
        return "fail-ov", f"OpenVINO CPU on the unpatched conversion misses too: {reason}", deploy
    return "fail", reason, deploy


def _deploy(outdir: Path) -> str:
    """What `patch --compile` says about a patch output folder, as one short string."""
    from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
    from kernelkit.myriad.compile import CompileFailed
    from kernelkit.doctor.workflow import compile_patched

    try:
        compiled = compile_patched(outdir, TARGET)
    except CompileFailed as exc:
        return f"refused: {exc.message.splitlines()[0][:110]}"
    except ToolchainUnavailable as exc:
        kind = "clc" if (outdir / "custom_layers.xml").is_file() else "no-toolchain"
        return f"{kind}: {exc.message.splitlines()[0][:110]}"
    except KernelkitError as exc:
        return f"refused: {exc.message.splitlines()[0][:110]}"
    if not (outdir / "model.blob").is_file():
        # Custom layers without clc: the plugin took the bindings with check ELFs but wrote no blob.
        return f"clc: compiles once clc builds {', '.join(getattr(compiled, 'missing', []) or ['the kernels'])}"
    return "blob"


def _case_worker(job) -> tuple[str, str, str, str, str]:
    """Run one case in a worker process: (op, case name, status, detail, deploy)."""
    op_type, index, prefer = job
    case = _CASES[index]
    with tempfile.TemporaryDirectory(prefix="kk-accept-") as tmp:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                status, detail, deploy = run_case(case, Path(tmp), prefer=prefer)
        except Exception as exc:  # one broken case must not stop the survey
            status, detail, deploy = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:110] if str(exc) else ''}", ""
    return op_type, case.name, status, detail, deploy


_CASES: list = []


def _row(saved) -> tuple:
    """A saved result row; rows from before the deployability column get an empty deploy field."""
    row = tuple(saved)
    return row if len(row) == 4 else row + ("",)


def main(argv=None) -> int:
    import json
    import multiprocessing

    from kernelkit.core.paths import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated ONNX op types to (re)run; the others keep their saved result")
    parser.add_argument("--out", default=str(REPO / "docs" / "onnx-acceptance.md"))
    parser.add_argument("--results", default=str(cache_dir("onnx-acceptance") / "results.json"),
                        help="per-case results, merged across runs (default: in the kernelkit cache)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run in parallel (default: 2)")
    parser.add_argument("--prefer", default="native", help="patch --prefer for every case (default: native)")
    parser.add_argument("--render-only", action="store_true", help="write the table from --results, run nothing")
    args = parser.parse_args(argv)
    only = set(args.ops.split(",")) if args.ops else None
    if args.render_only:
        saved = json.loads(Path(args.results).read_text())
        Path(args.out).write_text(render({op: [_row(r) for r in cases] for op, cases in saved["ops"].items()},
                                         saved["seconds"]))
        print(f"wrote {args.out}")
        return 0

    results_path = Path(args.results)
    saved = json.loads(results_path.read_text()) if only and results_path.is_file() else {"ops": {}, "seconds": 0}
    rows: dict[str, list] = {op: [_row(r) for r in cases] for op, cases in saved["ops"].items()
                             if not only or op not in only}
    started = time.time()
    from kernelkit.harness.onnx_cases import node_cases

    _CASES[:] = [case for _, case in node_cases(only)]
    jobs = [(case.model.graph.node[0].op_type, i, args.prefer) for i, case in enumerate(_CASES)]
    # fork: the workers inherit the collected cases; a fresh process per few cases keeps PoCL state short-lived.
    context = multiprocessing.get_context("fork")
    with context.Pool(max(1, args.jobs), maxtasksperchild=20) as pool:
        for op_type, name, status, detail, deploy in pool.imap_unordered(_case_worker, jobs):
            rows.setdefault(op_type, []).append((name, status, detail, deploy))
            print(f"{status:<13} {deploy.split(':')[0]:<12} {name} {detail}", file=sys.stderr, flush=True)
            results_path.write_text(json.dumps({"ops": rows, "seconds": saved["seconds"] + time.time() - started}))
    for cases in rows.values():
        cases.sort()
    seconds = saved["seconds"] + time.time() - started
    results_path.write_text(json.dumps({"ops": rows, "seconds": seconds}))
    Path(args.out).write_text(render(rows, seconds))
    print(f"wrote {args.out}")
    return 0


_EXCLUDED = ("out-of-scope", "no-convert")


def _deployable(status: str, deploy: str) -> bool:
    return status == "pass" and deploy == "blob"


def render(rows, seconds: float) -> str:
    in_scope_ops = {op: cases for op, cases in rows.items() if any(s not in _EXCLUDED for _, s, _, _ in cases)}
    scoped = [c for cases in in_scope_ops.values() for c in cases if c[1] not in _EXCLUDED]
    total = len(scoped)
    passed = sum(1 for _, s, _, _ in scoped if s == "pass")
    deployable = sum(1 for _, s, _, d in scoped if _deployable(s, d))
    ov_total = sum(1 for _, s, _, _ in scoped if s == "fail-ov")
    clc = sum(1 for _, s, _, d in scoped if s == "pass" and d.startswith("clc"))
    refused = sum(1 for _, s, _, d in scoped if s == "pass" and d.startswith("refused"))
    lines = [
        "# ONNX node tests through `kernelkit patch` + `verify` + the real compiler (MYRIAD 2021.4)",
        "",
        "Generated by `tools/onnx_acceptance.py` (do not edit by hand). Each single-node case of",
        "`onnx.backend.test.case.node` is converted with its own input shapes; it is *in scope* when",
        "`kernelkit inspect` finds a MYRIAD 2021.4 blocker other than the IR version. In-scope cases must come",
        "out of `patch --target 2021.4` (default `--prefer native`) with exit 0 and pass `verify --inputs …",
        "--expected …` against ONNX's expected outputs (fp16-aware default tolerances, custom layers on the SHAVE",
        "emulator): *verified*. A verified case is *deployable* when the real OpenVINO 2021.4 MYRIAD plugin then",
        "compiles the patch output to a blob (`kernelkit.doctor.workflow.compile_patched`, what `patch --compile` runs); a",
        "case that binds a library kernel is not, because the kernel's SHAVE `.bin` needs clc.",
        "",
        f"**{deployable} of {total} in-scope cases are deployable ({100.0 * deployable / max(total, 1):.0f} %), "
        f"{passed} verified ({100.0 * passed / max(total, 1):.0f} %)** over {len(in_scope_ops)} op types; "
        f"total run time {seconds / 60:.0f} min on a shared 2-core machine. Of the verified cases, {clc} bind a "
        f"library kernel (need clc) and {refused} are refused by the plugin. {ov_total} of the failures are cases "
        "where OpenVINO 2026 CPU already misses ONNX's expected outputs on the unpatched conversion (column "
        "\"OpenVINO itself wrong\"): no patch can fix those.",
        "",
        "| ONNX op | in scope | patch exit 0 | verified | deployable | verified % | deployable % | OpenVINO itself wrong | first problem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for op in sorted(in_scope_ops):
        cases = [c for c in in_scope_ops[op] if c[1] not in _EXCLUDED]
        clean = sum(1 for _, s, _, _ in cases if s in ("pass", "fail", "fail-ov"))
        ok = sum(1 for _, s, _, _ in cases if s == "pass")
        blobs = sum(1 for _, s, _, d in cases if _deployable(s, d))
        ov_wrong = sum(1 for _, s, _, _ in cases if s == "fail-ov")
        problem = next((f"{name}: {status} {detail}" for name, status, detail, _ in cases
                        if status not in ("pass", "fail-ov")), "")
        problem = problem or next((f"{name}: {deploy}" for name, status, _, deploy in cases
                                   if status == "pass" and deploy != "blob"), "")
        lines.append(f"| {op} | {len(cases)} | {clean} | {ok} | {blobs} | {ok / len(cases):.0%} | "
                     f"{blobs / len(cases):.0%} | {ov_wrong or ''} | {problem.replace('|', '/')} |")
    causes: dict[str, int] = defaultdict(int)
    for _, status, detail, deploy in scoped:
        if _deployable(status, deploy):
            continue
        if status == "pass":
            kind, _, text = deploy.partition(":")
            causes[f"verified, not deployable ({kind or 'not compiled'}): {text.strip()[:60]}"] += 1
            continue
        head = detail.split(":", 1)[0].strip() or "model-level (IR v11 kept: dynamic or zero dims)"
        label = {"patch-exit-1": "blocker left", "fail-ov": "OpenVINO itself wrong"}.get(status, status)
        causes[f"{label}: {head[:60]}"] += 1
    lines += ["", "Most frequent reasons for the cases that are not deployable:", ""]
    lines += [f"- {count} × {cause}" for cause, count in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]
    skipped = sorted(op for op in rows if op not in in_scope_ops)
    lines += ["", f"Out of scope (MYRIAD 2021.4 compiles them after conversion, or OpenVINO cannot convert "
                  f"the case): {', '.join(skipped)}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
