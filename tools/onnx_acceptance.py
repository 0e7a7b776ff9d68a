"""Acceptance yardstick: ONNX's own node tests for ops MYRIAD 2021.4 cannot compile, through patch + verify.

For every single-node case of `onnx.backend.test.case.node.collect_testcases(None)`:
  0. small inputs after the node's first (axes, pads, k, scales: at most 8 values) become initializers, as
     in deployed models (MYRIAD needs them constant); test data numpy cannot hold (bf16, strings) is skipped;
  1. convert it with the case's input shapes (`--input-shape` from the case inputs) and ask
     `kernelkit.inspect.find_blockers` whether MYRIAD 2021.4 could compile it as converted. A case is in
     scope when a blocker other than the IR version remains (every 2026 conversion is IR v11);
  2. `patch` it for 2021.4 (must exit 0), then
  3. `verify --inputs … --expected …` against ONNX's expected outputs (must pass). A failing case is
     marked "OpenVINO itself wrong" when OpenVINO CPU misses the expected outputs on the unpatched model too.
Writes docs/onnx-acceptance.md: per op, cases in scope, patched clean, verified, and the fraction.

Run: .venv/bin/python tools/onnx_acceptance.py [--ops CumSum,HardSigmoid] [--out docs/onnx-acceptance.md]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET = "2021.4"


def _cases(only: set[str] | None):
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) != 1 or not case.data_sets:
            continue
        if only and nodes[0].op_type not in only:
            continue
        yield nodes[0].op_type, case


def run_case(case, folder: Path) -> tuple[str, str]:
    """(status, detail): status is one of out-of-scope, no-convert, patch-exit-1, error, fail, fail-ov, pass."""
    import onnx
    import onnx.numpy_helper

    from kernelkit.errors import KernelkitError
    from kernelkit.inspect import find_blockers
    from kernelkit.ir import load_model
    from kernelkit.patch import patch_model
    from kernelkit.verify import verify

    inputs, expected = case.data_sets[0]
    model_proto = onnx.ModelProto()
    model_proto.CopyFrom(case.model)
    graph = model_proto.graph
    initializers = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    if len(names) != len(inputs) or any(isinstance(a, (list, dict)) or a is None
                                        for a in list(inputs) + list(expected)):
        return "out-of-scope", "inputs or outputs are not plain tensors (sequences, optionals)"
    inputs = [np.asarray(a) for a in inputs]
    expected = [np.asarray(a) for a in expected]
    if any(a.dtype.kind not in "biuf" for a in inputs + expected):
        return "out-of-scope", "test data numpy cannot hold natively (bf16, float8, strings)"
    # Small inputs after the node's first (axes, shapes, k, pads, scales: at most 8 values) become
    # initializers, as they are in deployed models: MYRIAD needs them constant. The first input is the data
    # and stays an input.
    node_inputs = list(graph.node[0].input)
    fed_names, fed, folded = [], [], set()
    for name, array in zip(names, inputs):
        if array.dtype.kind in "iuf" and array.ndim <= 1 and array.size <= 8 and name in node_inputs[1:] \
                and name != node_inputs[0]:
            graph.initializer.append(onnx.numpy_helper.from_array(array, name))
            folded.add(name)
        else:
            fed_names.append(name)
            fed.append(array)
    kept = [i for i in graph.input if i.name not in folded]
    del graph.input[:]
    graph.input.extend(kept)
    names, inputs = fed_names, fed
    model_path = folder / "model.onnx"
    onnx.save(model_proto, model_path)
    shapes = {name: list(np.shape(a)) for name, a in zip(names, inputs)}
    try:
        model = load_model(model_path, shapes)
    except KernelkitError as exc:
        return "no-convert", exc.message.splitlines()[0][:120]
    blockers = [b for b in find_blockers(model, TARGET) if b.kind != "ir-version"]
    if not blockers:
        return "out-of-scope", ""
    out = folder / "out"
    try:
        result = patch_model(model_path, out, TARGET, input_shapes=shapes, force=True)
    except KernelkitError as exc:
        return "error", f"patch: {exc.message.splitlines()[0][:120]}"
    if result.exit_code != 0:
        left = result.remaining[0]
        return "patch-exit-1", f"{left.type}: {left.reason[:100]}"
    np.savez(folder / "in.npz", **{f"in{i}": a for i, a in enumerate(inputs)})
    np.savez(folder / "exp.npz", **{f"out{i}": a for i, a in enumerate(expected)})
    try:
        checked = verify(out, inputs=folder / "in.npz", expected=folder / "exp.npz")
    except KernelkitError as exc:
        return "error", f"verify: {exc.message.splitlines()[0][:120]}"
    if checked.passed:
        return "pass", ""
    reasons = checked.problems + [c.reason for c in checked.comparisons if not c.passed]
    reason = (reasons[0] if reasons else "no output compared")[:110]
    if _openvino_itself_wrong(model_path, shapes, inputs, expected):
        return "fail-ov", f"OpenVINO CPU on the unpatched conversion misses too: {reason}"
    return "fail", reason


def _openvino_itself_wrong(model_path, shapes, inputs, expected) -> bool:
    """Whether the unpatched model, converted by OpenVINO 2026 and run on CPU f32, already misses ONNX's
    expected outputs (a frontend problem no patch can fix)."""
    from kernelkit.harness.compare import compare
    from kernelkit.ir import load_model
    from kernelkit.verify import run_openvino

    original = load_model(model_path, shapes)
    got = run_openvino(original.to_xml_bytes(), original.bin_data, inputs)
    return any(not compare(a, e).passed for a, e in zip(got, expected))


def main(argv=None) -> int:
    import json

    from kernelkit.paths import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated ONNX op types to (re)run; the others keep their saved result")
    parser.add_argument("--out", default=str(REPO / "docs" / "onnx-acceptance.md"))
    parser.add_argument("--results", default=str(cache_dir("onnx-acceptance") / "results.json"),
                        help="per-case results, merged across runs (default: in the kernelkit cache)")
    parser.add_argument("--render-only", action="store_true", help="write the table from --results, run nothing")
    args = parser.parse_args(argv)
    only = set(args.ops.split(",")) if args.ops else None
    if args.render_only:
        saved = json.loads(Path(args.results).read_text())
        Path(args.out).write_text(render({op: [tuple(r) for r in cases] for op, cases in saved["ops"].items()},
                                         saved["seconds"]))
        print(f"wrote {args.out}")
        return 0

    results_path = Path(args.results)
    saved = json.loads(results_path.read_text()) if only and results_path.is_file() else {"ops": {}, "seconds": 0}
    rows: dict[str, list] = {op: [tuple(r) for r in cases] for op, cases in saved["ops"].items()
                             if not only or op not in only}
    started = time.time()
    for op_type, case in _cases(only):
        with tempfile.TemporaryDirectory(prefix="kk-accept-") as tmp:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    status, detail = run_case(case, Path(tmp))
            except Exception as exc:  # one broken case must not stop the survey
                status, detail = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:110] if str(exc) else ''}"
        rows.setdefault(op_type, []).append((case.name, status, detail))
        print(f"{status:<13} {case.name} {detail}", file=sys.stderr, flush=True)
        results_path.write_text(json.dumps({"ops": rows, "seconds": saved["seconds"] + time.time() - started}))
    seconds = saved["seconds"] + time.time() - started
    Path(args.out).write_text(render(rows, seconds))
    print(f"wrote {args.out}")
    return 0


def render(rows, seconds: float) -> str:
    in_scope_ops = {op: cases for op, cases in rows.items()
                    if any(s not in ("out-of-scope", "no-convert") for _, s, _ in cases)}
    total = sum(1 for cases in in_scope_ops.values() for _, s, _ in cases if s not in ("out-of-scope", "no-convert"))
    passed = sum(1 for cases in in_scope_ops.values() for _, s, _ in cases if s == "pass")
    ov_total = sum(1 for cases in in_scope_ops.values() for _, s, _ in cases if s == "fail-ov")
    lines = [
        "# ONNX node tests through `kernelkit patch` + `verify` (MYRIAD 2021.4)",
        "",
        "Generated by `tools/onnx_acceptance.py` (do not edit by hand). Each single-node case of",
        "`onnx.backend.test.case.node` is converted with its own input shapes; it is *in scope* when",
        "`kernelkit inspect` finds a MYRIAD 2021.4 blocker other than the IR version. In-scope cases must come",
        "out of `patch --target 2021.4` with exit 0 and pass `verify --inputs … --expected …` against ONNX's",
        "expected outputs (fp16-aware default tolerances, custom layers on the SHAVE emulator).",
        "",
        f"**{passed} of {total} in-scope cases pass ({100.0 * passed / max(total, 1):.0f} %)** over "
        f"{len(in_scope_ops)} op types; total run time {seconds / 60:.0f} min on a shared 2-core machine. "
        f"{ov_total} of the failures are cases where OpenVINO 2026 CPU already misses ONNX's expected outputs on "
        "the unpatched conversion (column \"OpenVINO itself wrong\"): no patch can fix those.",
        "",
        "| ONNX op | in scope | patch exit 0 | verify pass | fraction | OpenVINO itself wrong | first problem |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in sorted(in_scope_ops):
        cases = [c for c in in_scope_ops[op] if c[1] not in ("out-of-scope", "no-convert")]
        clean = sum(1 for _, s, _ in cases if s in ("pass", "fail", "fail-ov"))
        ok = sum(1 for _, s, _ in cases if s == "pass")
        ov_wrong = sum(1 for _, s, _ in cases if s == "fail-ov")
        problem = next((f"{name}: {status} {detail}" for name, status, detail in cases
                        if status not in ("pass", "fail-ov")), "")
        lines.append(f"| {op} | {len(cases)} | {clean} | {ok} | {ok / len(cases):.0%} | {ov_wrong or ''} | "
                     f"{problem.replace('|', '/')} |")
    causes: dict[str, int] = defaultdict(int)
    for cases in in_scope_ops.values():
        for _, status, detail in cases:
            if status in ("pass", "out-of-scope", "no-convert"):
                continue
            head = detail.split(":", 1)[0].strip() or "model-level (IR v11 kept: dynamic or zero dims)"
            label = {"patch-exit-1": "blocker left", "fail-ov": "OpenVINO itself wrong"}.get(status, status)
            causes[f"{label}: {head[:60]}"] += 1
    lines += ["", "Most frequent reasons for the cases that do not pass:", ""]
    lines += [f"- {count} × {cause}" for cause, count in sorted(causes.items(), key=lambda kv: -kv[1])[:15]]
    skipped = sorted(op for op in rows if op not in in_scope_ops)
    lines += ["", f"Out of scope (MYRIAD 2021.4 compiles them after conversion, or OpenVINO cannot convert "
                  f"the case): {', '.join(skipped)}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
