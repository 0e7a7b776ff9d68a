"""The ONNX node cases whose shapes come from integer inputs, fixed with the `--input-value` inspect suggests
(issue 21, part 4's done-criterion).

Each single-node case with an integer graph input is written as ONNX lays its test cases out (model.onnx
beside test_data_set_0/, `kernelkit.harness.onnx_cases.write_raw`: the integer inputs stay inputs). A case is
taken when `inspect` finds a dynamic-shape blocker computed from an integer input; the `--input-value` flags its
fix names are parsed, `patch` runs with them (the plugin confirms, as the command does) and `verify` compares
the patched model fed the other inputs with ONNX's expected outputs. One line per case: PASS, FAIL (verify),
PATCH1 (patch exit 1 and why) or NOSUGGEST (the fix names no value).

Run: nice .venv/bin/python tools/shape_input_cases.py [CASE ...] > results.txt
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

FLAG = re.compile(r"--input-value (\S+=\S+)")
INTEGER_ELEM_TYPES = (2, 3, 4, 5, 6, 7, 12, 13)     # onnx.TensorProto uint8 .. int64, uint32, uint64


def run_case(case, folder: Path) -> str | None:
    from kernelkit.doctor.confirm import confirm
    from kernelkit.doctor.inspection import load_for_inspection
    from kernelkit.doctor.verify import verify
    from kernelkit.harness.onnx_cases import write_raw
    from kernelkit.ir.freeze import parse_input_values
    from kernelkit.model.blockers import inspect_report
    from kernelkit.model.patcher import patch_model

    path = write_raw(case, folder)
    if isinstance(path, str):
        return None
    try:
        report = inspect_report(load_for_inspection(path, {}, {}, []), "2021.4")
    except Exception:         # noqa: BLE001 - a case OpenVINO cannot convert is not one of these
        return None
    fixes = [b["fix"] or "" for b in report["blockers"]
             if b["kind"] == "dynamic-shape" and b["details"].get("from_inputs")]
    if not fixes:
        return None
    flags = list(dict.fromkeys(FLAG.findall(" ".join(fixes))))
    if not flags:
        return f"NOSUGGEST {case.name} {fixes[0][:120]}"
    values = parse_input_values(flags)
    result = patch_model(path, folder / "out", "2021.4", input_values=values)
    if result.exit_code == 0:
        _, result = confirm(result, path, folder / "out", "2021.4", {"input_values": values})
    if result.exit_code != 0:
        why = result.remaining[0].reason if result.remaining else (result.report.get("plugin") or {}).get("message", "")
        if result.remaining and result.remaining[0].kind == "ir-version":      # the cause, not the IR version
            if len(result.remaining) > 1:
                why = f"{result.remaining[1].layer_name}: {result.remaining[1].reason}"
            elif result.refusals:
                why = f"{result.refusals[0].layer}: {result.refusals[0].reason}"
        return f"PATCH1 {case.name} {flags} {(why or '').splitlines()[0][:150] if why else ''}"
    inputs, expected = case.data_sets[0]
    initializers = {t.name for t in case.model.graph.initializer}
    names = [i.name for i in case.model.graph.input if i.name not in initializers]
    fed = [np.asarray(a) for n, a in zip(names, inputs) if n not in values]
    np.savez(folder / "in.npz", **{f"in{i}": a for i, a in enumerate(fed)})
    np.savez(folder / "exp.npz", **{f"out{i}": np.asarray(a) for i, a in enumerate(expected)})
    with contextlib.redirect_stdout(io.StringIO()):
        checked = verify(folder / "out", inputs=folder / "in.npz", expected=folder / "exp.npz")
    if checked.passed:
        return f"PASS {case.name} {flags}"
    reasons = [c.reason for c in checked.comparisons if not c.passed] + checked.problems
    return f"FAIL {case.name} {flags} {reasons[0][:150] if reasons else ''}"


def main(argv=None) -> int:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.harness.onnx_cases import node_cases

    only = set(argv if argv is not None else sys.argv[1:])
    for _, case in node_cases():
        if only and case.name not in only:
            continue
        initializers = {t.name for t in case.model.graph.initializer}
        if not any(i.type.tensor_type.elem_type in INTEGER_ELEM_TYPES for i in case.model.graph.input
                   if i.name not in initializers):
            continue
        with tempfile.TemporaryDirectory(prefix="kk-shape-input-") as tmp:
            try:
                line = run_case(case, Path(tmp))
            except KernelkitError as exc:
                line = f"ERROR {case.name} {exc.message.splitlines()[0][:150]}"
        if line:
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
