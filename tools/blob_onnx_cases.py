#!/usr/bin/env python3
"""ONNX's single-node test cases through the blob interpreter: each case patched for 2021.4 and compiled by the
real MYRIAD plugin (as tools/blob_survey.py does), then its blob run by `kernelkit.runners.blob` on the case's own
inputs and held to ONNX's expected outputs with the kit's comparator (runners/compare.py, fp16 tolerance).

    .venv/bin/python tools/blob_onnx_cases.py [--onnx OPS|all] [--json OUT.json]

Prints one line per case that compiled and did not pass (the interpreter's error, or the comparison), then the
counts: compiled, passed, failed, not run (a stage type the interpreter has no semantics for, named). Cases the
patch or the plugin refuse are counted, not run. OPS defaults to tools/blob_survey.py's op list.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))


def _match_outputs(arrays, expected):
    """Outputs the patch renamed (TopK's values/indices): each expected output takes the unused blob output of
    its shape that compares best, in blob order on ties."""
    from kernelkit.runners.compare import compare

    left, out = list(arrays), []
    for e in expected:
        fits = [a for a in left if a.size == e.size]
        if not fits:
            out.append(left.pop(0) if left else np.zeros(0))
            continue
        passing = [a for a in fits if compare(a.astype(e.dtype).reshape(e.shape), e).passed]
        chosen = (passing or fits)[0]
        left = [a for a in left if a is not chosen]
        out.append(chosen)
    return out


def _ir_passes(xml: Path, prepared) -> bool | None:
    """The patched IR on OpenVINO CPU f32 against ONNX's expected outputs (None when it cannot run)."""
    from kernelkit.ir.load import load_model
    from kernelkit.runners.compare import compare_outputs
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    try:
        model = load_model(xml, None)
        got = OpenVINOCPURunner.of_model(model).run(prepared.inputs).arrays
        got = [a.astype(e.dtype).reshape(e.shape) if a.size == e.size else a
               for a, e in zip(got, prepared.expected)]
        return all(c.passed for c in compare_outputs(got, prepared.expected))
    except Exception:  # noqa: BLE001 - a reference that cannot run says nothing either way
        return None


def main(argv=None) -> int:
    from blob_survey import DEFAULT_ONNX

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", default=DEFAULT_ONNX, help="comma-separated ONNX op types, or all")
    parser.add_argument("--json", type=Path, default=None, help="write the per-case results here")
    args = parser.parse_args(argv)
    ops = None if args.onnx == "all" else set(args.onnx.split(","))

    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.harness.onnx_cases import node_cases, prepare
    from kernelkit.model.patcher import patch_model
    from kernelkit.runners.blob.runner import BlobRunner
    from kernelkit.runners.compare import compare_outputs, summary_line

    counts, results = Counter(), []
    with tempfile.TemporaryDirectory(prefix="kernelkit-blob-onnx-") as tmp:
        for number, (op, case) in enumerate(node_cases(ops)):
            folder = Path(tmp) / f"case-{number}"
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    prepared = prepare(case, folder)
                    if isinstance(prepared, str):
                        counts["not plain tensors"] += 1
                        continue
                    patched = patch_model(prepared.model_path, folder / "patched", "2021.4",
                                          input_shapes=prepared.shapes)
                    if getattr(patched, "exit_code", 0):
                        counts["patch left blockers"] += 1
                        continue
                    compile_folder(folder / "patched", folder / "model.blob")
            except Exception:  # noqa: BLE001 - cases the patch or the plugin refuse are not the interpreter's
                counts["no blob"] += 1
                continue
            counts["compiled"] += 1
            row = {"op": op, "case": case.name}
            try:
                run = BlobRunner(folder / "model.blob").run(dict(zip(prepared.input_names, prepared.inputs)))
                names = [o.name for o in case.model.graph.output]
                arrays = [run.outputs[n] for n in names] if set(names) <= set(run.outputs) else \
                    _match_outputs(run.arrays, prepared.expected)
                # The blob's outputs are FP16/FP32/S32 tensors; the host hands a bool or integer output over
                # in the model's type (the IR's output precision), as the plugin's runtime converts it.
                got = [a.astype(e.dtype) if e.dtype.kind in "biu" and a.dtype != e.dtype else a
                       for a, e in zip(arrays, prepared.expected)]
                # A batched blob's outputs come back stacked per item; the same elements in ONNX's shape.
                got = [a.reshape(e.shape) if a.size == e.size else a for a, e in zip(got, prepared.expected)]
                comparisons = compare_outputs(got, prepared.expected)
                failed = [summary_line(c) for c in comparisons if not c.passed]
                if len(run.arrays) != len(prepared.expected):
                    failed.append(f"{len(run.arrays)} outputs, ONNX has {len(prepared.expected)}")
                row["status"] = "failed" if failed else "passed"
                row["detail"] = failed
                if failed:      # does the patched IR itself pass on OpenVINO CPU? (else the gap is not the blob's)
                    row["ir_passes"] = _ir_passes(folder / "patched" / "model.xml", prepared)
            except KernelkitError as exc:
                row["status"] = "not run" if "cannot run stage type" in exc.message else "error"
                row["detail"] = [exc.message.splitlines()[0]]
            counts[row["status"]] += 1
            results.append(row)
            if row["status"] != "passed":
                ir = {True: "IR passes", False: "IR fails too", None: ""}[row.get("ir_passes")]
                print(f"{row['status']:8s} {op:22s} {case.name} [{ir}]: {'; '.join(row['detail'])[:300]}",
                      flush=True)
    print("\n" + ", ".join(f"{k}: {v}" for k, v in counts.most_common()))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "cases": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
