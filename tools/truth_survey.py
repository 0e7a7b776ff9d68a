"""Is the plugin's verdict the kit's verdict, on models by others? (issue 21, part 7)

Per model: *straight* (the real MYRIAD 2021.4 plugin on the file as it is: an ONNX file, which its reader
takes; a TFLite file it cannot read), *patched* (`kernelkit patch`'s exit code, the plugin in the loop as the
command runs it: kernelkit.model.patcher.patch_model then kernelkit.doctor.confirm.confirm), *compiled* (the
patch folder compiled again on its own, as `kernelkit compile FOLDER` does), *verified* (`kernelkit verify`:
against ONNX's expected outputs for a node case, against the unpatched model on OpenVINO CPU otherwise) and,
where both compiled, the straight and patched blobs' stage counts and sizes (kernelkit.myriad.blob_reader).
A **false OK** is a patch exit 0 that the real compile then refuses: it must be 0.

Models: every ONNX node case that loads (`onnx.backend.test.case.node`, prepared as tools/onnx_acceptance.py
does), and the 14 MediaPipe .tflite models of the mediapipe 0.10.14 wheel (tests/tflite_models.py).

Run: nice .venv/bin/python tools/truth_survey.py [--mediapipe] [--onnx-cases] [--minutes 30] [--ops Mvn,PRelu]
     [--render-only]. Results merge into <cache>/truth-survey/results.json; the table goes to docs/truth-survey.md.
"""

from __future__ import annotations

import argparse
import re
import contextlib
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET = "2021.4"


def _first_line(text: str, width: int = 110) -> str:
    return (text or "").strip().splitlines()[0][:width] if (text or "").strip() else ""


def _blob_facts(path: Path) -> dict:
    """Stage count and size; a blob the reader cannot read (a dynamic NonZero's -1 dims) has no stage count."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.blob_reader import read_blob

    try:
        stages = read_blob(path).counts()["stages"]
    except KernelkitError:
        return {"bytes": path.stat().st_size}
    return {"stages": stages, "bytes": path.stat().st_size}


def straight(model_path: Path, folder: Path) -> dict:
    """The plugin's word on the file as it is."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.compile import CompileFailed, compile_model

    if model_path.suffix.lower() != ".onnx":
        return {"status": "n/a", "detail": f"the {TARGET} reader takes no {model_path.suffix} file"}
    blob = folder / "straight.blob"
    try:
        compile_model(model_path, blob, graph_dump=False)
    except CompileFailed as exc:
        return {"status": "refused", "detail": _first_line(exc.plugin_text or exc.message)}
    except KernelkitError as exc:
        return {"status": "error", "detail": _first_line(exc.message)}
    return {"status": "compiled"} | _blob_facts(blob)


def patched(model_path: Path, out: Path, options: dict) -> dict:
    """`kernelkit patch` as the command runs it (the plugin confirms): its exit code and what it said."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.confirm import confirm
    from kernelkit.ir.load import reuse_conversions
    from kernelkit.model.patcher import patch_model

    try:
        with reuse_conversions():
            result = patch_model(model_path, out, TARGET, force=True, **options)
            if result.exit_code == 0:
                _, result = confirm(result, model_path, out, TARGET, options)
    except KernelkitError as exc:
        return {"exit": 2, "detail": _first_line(exc.message)}
    report = result.report
    plugin = report.get("plugin") or {}
    found = {"exit": result.exit_code, "plugin": plugin.get("status", "not-run"),
             "rewritten": sorted({c["layer"] for c in report.get("changes", [])
                                  if c["patcher"] in ("rewrite", "custom_layer", "native")}),
             "minimal": bool(report.get("minimal_change") or "not needed" in plugin.get("reason", ""))}
    if result.remaining:
        left = result.remaining[0]
        found["detail"] = f"{left.layer_name} ({left.type}): {left.reason[:100]}"
    elif plugin.get("status") == "refused":
        found["detail"] = f"{plugin.get('layer')}: {_first_line(plugin.get('message', ''), 100)}"
        found["layer_named"] = bool(plugin.get("layer"))
    return found


def compiled_again(out: Path) -> dict:
    """The patch folder compiled on its own, as `kernelkit compile FOLDER` does."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.workflow import NeedsClc, compile_patched
    from kernelkit.myriad.compile import CompileFailed

    blob = out / "model.blob"
    blob.unlink(missing_ok=True)
    try:
        result = compile_patched(out, TARGET)
    except CompileFailed as exc:
        return {"status": "refused", "detail": _first_line(exc.plugin_text or exc.message)}
    except KernelkitError as exc:
        return {"status": "error", "detail": _first_line(exc.message)}
    if isinstance(result, NeedsClc) or not blob.is_file():
        return {"status": "needs-clc"}
    return {"status": "compiled"} | _blob_facts(blob)


def verified(out: Path, inputs=None, expected=None) -> dict:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.verify import verify

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            checked = verify(out, inputs=inputs, expected=expected)
    except KernelkitError as exc:
        return {"status": "error", "detail": _first_line(exc.message)}
    if checked.passed:
        return {"status": "pass"}
    reasons = checked.problems + [c.reason for c in checked.comparisons if not c.passed]
    blob = checked.blob
    if not reasons and blob is not None:       # the IR matched: the blob (what the device runs) did not
        reasons = [f"blob: {r}" for r in [n for n in blob.notes if "rounded to fp16" in n] + blob.problems
                   + [c.reason for c in blob.comparisons if not c.passed]]
    return {"status": "fail", "detail": _first_line(reasons[0] if reasons else "no output compared")}


def run_model(model_path: Path, folder: Path, options: dict, inputs=None, expected=None) -> dict:
    row = {"straight": straight(model_path, folder)}
    out = folder / "out"
    row["patched"] = patched(model_path, out, options)
    if row["patched"]["exit"] == 0:
        row["compiled"] = compiled_again(out)
        row["verified"] = verified(out, inputs, expected)
    return row


def onnx_case_row(case, folder: Path) -> dict | None:
    """A node case's row; None when the case does not load (sequences, bf16, a conversion OpenVINO refuses)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.harness.onnx_cases import prepare
    from kernelkit.ir.load import load_model

    prepared = prepare(case, folder)
    if isinstance(prepared, str):
        return None
    try:
        load_model(prepared.model_path, prepared.shapes)
    except KernelkitError:
        return None
    np.savez(folder / "in.npz", **{f"in{i}": a for i, a in enumerate(prepared.inputs)})
    np.savez(folder / "exp.npz", **{f"out{i}": a for i, a in enumerate(prepared.expected)})
    row = run_model(prepared.model_path, folder, {"input_shapes": prepared.shapes},
                    folder / "in.npz", folder / "exp.npz")
    classify_miss(row, prepared)
    return row


def classify_miss(row: dict, prepared) -> None:
    """A case that does not verify: does the host OpenVINO's own conversion of the file already miss ONNX's
    data? Then the cause is upstream of patch, and verify against the original model cannot see it."""
    from kernelkit.harness.onnx_cases import openvino_misses

    verified = row.get("verified")
    if not verified or verified.get("status") == "pass":
        return
    try:
        verified["frontend_misses"] = openvino_misses(prepared)
    except Exception:  # noqa: BLE001 - the original may not run on CPU at all; then nothing is known
        verified["frontend_misses"] = None


MEDIAPIPE_WHEEL = "mediapipe-0.10.14-*.whl"


def mediapipe_models(into: Path) -> list[Path]:
    """The 14 .tflite models of the mediapipe 0.10.14 wheel (downloaded once by tests/tflite_models.py)."""
    sys.path.insert(0, str(REPO / "tests"))
    from tflite_models import MEDIAPIPE, _wheel
    from kernelkit.core.paths import cache_dir

    wheel = _wheel(MEDIAPIPE[0], MEDIAPIPE[1], cache_dir("framework-models"))
    into.mkdir(parents=True, exist_ok=True)
    found = []
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(n for n in archive.namelist() if n.endswith(".tflite")):
            path = into / Path(name).name
            if not path.is_file():
                path.write_bytes(archive.read(name))
            found.append(path)
    return found


def false_oks(rows: dict) -> list[str]:
    return [name for name, row in rows.items()
            if row["patched"]["exit"] == 0 and row.get("compiled", {}).get("status") == "refused"]


def render(rows: dict, ran: list[str]) -> str:
    def count(pred):
        return sum(1 for row in rows.values() if pred(row))

    total = len(rows)
    wrong = false_oks(rows)
    straight_ok = count(lambda r: r["straight"]["status"] == "compiled")
    patch_ok = count(lambda r: r["patched"]["exit"] == 0)
    compiled = count(lambda r: r.get("compiled", {}).get("status") == "compiled")
    ver = count(lambda r: r.get("verified", {}).get("status") == "pass")
    not_verified = count(lambda r: r.get("verified", {}).get("status") not in (None, "pass"))
    upstream = count(lambda r: r.get("verified", {}).get("frontend_misses") is True)
    refused_named = count(lambda r: r["patched"].get("plugin") == "refused" and r["patched"].get("layer_named"))
    refused = count(lambda r: r["patched"].get("plugin") == "refused")
    both = [r for r in rows.values() if r["straight"]["status"] == "compiled"
            and r.get("compiled", {}).get("status") == "compiled"]
    both = [r for r in both if "stages" in r["straight"] and "stages" in r["compiled"]]
    not_larger = [r for r in both if r["compiled"]["stages"] <= r["straight"]["stages"]
                  and r["compiled"]["bytes"] <= r["straight"]["bytes"]]
    larger = sorted(n for n, r in rows.items() if any(r is b for b in both) and r not in not_larger)
    rewritten_straight = [n for n, r in rows.items() if r["straight"]["status"] == "compiled" and r["patched"].get("rewritten")]
    lines = [
        "# The plugin's verdict is the kit's verdict: a survey on models by others",
        "",
        "Generated by `tools/truth_survey.py` (do not edit by hand): per model, *straight* (the real MYRIAD",
        "2021.4 plugin on the file as it is), *patched* (`kernelkit patch` with the plugin in the loop: exit 0",
        "means the plugin compiled the patch), *compiled* (the patch folder compiled again on its own) and",
        "*verified* (`kernelkit verify`). A **false OK** is a patch exit 0 the real compile then refuses.",
        "",
        f"**False OKs: {len(wrong)}**{' (' + ', '.join(wrong) + ')' if wrong else ''} over {total} models: "
        f"{straight_ok} compile straight, {patch_ok} patch with exit 0, {compiled} compile again from the patch "
        f"folder, {ver} verify. Of the {not_verified} that do not, {upstream} already miss ONNX's expected "
        f"outputs when the original file is converted by the host OpenVINO and run on its CPU (a gap upstream "
        f"of patch, which verify against the original model cannot see; marked *frontend* below). Of the {refused} patches the plugin refused, {refused_named} name the user's "
        f"layer. Where both compiled ({len(both)} models), {len(not_larger)} patched blobs have no more stages "
        f"and no more bytes than the straight compile's (more: {', '.join(larger) or 'none'}); models that "
        f"compile straight yet had a layer "
        f"rewritten: {len(rewritten_straight)}{' (' + ', '.join(rewritten_straight[:10]) + ')' if rewritten_straight else ''}.",
        "",
        "What ran: " + "; ".join(ran),
        "",
        "| model | straight | patch exit | plugin | compiled | verified | stages straight / patched | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(rows):
        row = rows[name]
        s, p = row["straight"], row["patched"]
        c, v = row.get("compiled", {}), row.get("verified", {})
        stages = f"{s.get('stages', '-')} / {c.get('stages', '-')}"
        note = p.get("detail") or c.get("detail") or v.get("detail") or ""
        if v.get("frontend_misses"):
            note = "frontend: " + note
        if p.get("minimal"):
            note = ("only the reader's changes (the plugin compiled the layers as they are); " + note).strip("; ")
        lines.append(f"| {name} | {s['status']} | {p['exit']} | {p.get('plugin', '')} | {c.get('status', '')} | "
                     f"{v.get('status', '')} | {stages} | {note.replace('|', '/')[:140]} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from kernelkit.core.paths import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mediapipe", action="store_true", help="the 14 MediaPipe .tflite models")
    parser.add_argument("--onnx-cases", action="store_true", help="every ONNX node case that loads")
    parser.add_argument("--expanded", action="store_true",
                        help="with --onnx-cases: the *_expanded cases (the ops as graphs of primitive ops)")
    parser.add_argument("--match", help="with --onnx-cases: only the cases whose name this regular expression finds")
    parser.add_argument("--ops", help="comma-separated ONNX op types: only their node cases")
    parser.add_argument("--minutes", type=float, default=0, help="stop starting new models after this long")
    parser.add_argument("--results", default=str(cache_dir("truth-survey") / "results.json"))
    parser.add_argument("--out", default=str(REPO / "docs" / "truth-survey.md"))
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--classify", action="store_true",
                        help="for rows that do not verify, record whether the host OpenVINO's conversion of the "
                             "original already misses ONNX's data (no patch or compile is run)")
    parser.add_argument("--resume", action="store_true",
                        help="skip models the results already hold (a time-boxed survey goes on where it stopped)")
    args = parser.parse_args(argv)
    results = Path(args.results)
    saved = json.loads(results.read_text()) if results.is_file() else {"rows": {}, "ran": []}
    rows, ran = saved["rows"], saved["ran"]
    if not args.render_only:
        started = time.time()
        done = 0
        def out_of_time():
            return args.minutes and time.time() - started > args.minutes * 60

        def keep(name, row):
            nonlocal done
            rows[name] = row
            done += 1
            results.write_text(json.dumps({"rows": rows, "ran": ran}))
            print(f"{name}: straight {row['straight']['status']}, patch {row['patched']['exit']}, "
                  f"compiled {row.get('compiled', {}).get('status', '-')}, "
                  f"verified {row.get('verified', {}).get('status', '-')}", file=sys.stderr, flush=True)

        if args.mediapipe:
            for path in mediapipe_models(cache_dir("truth-survey") / "mediapipe"):
                if out_of_time():
                    break
                with tempfile.TemporaryDirectory(prefix="kk-truth-") as tmp:
                    keep(f"mediapipe/{path.stem}", run_model(path, Path(tmp), {}))
        if args.classify:
            from kernelkit.harness.onnx_cases import node_cases, prepare

            for _, case in [*node_cases(None), *node_cases(None, expanded=True)]:
                row = rows.get(f"onnx/{case.name}")
                if row and row.get("verified", {}).get("status") not in (None, "pass"):
                    with tempfile.TemporaryDirectory(prefix="kk-truth-") as tmp:
                        prepared = prepare(case, Path(tmp))
                        if not isinstance(prepared, str):
                            classify_miss(row, prepared)
            results.write_text(json.dumps({"rows": rows, "ran": ran}))
        if args.onnx_cases:
            from kernelkit.harness.onnx_cases import node_cases

            only = set(args.ops.split(",")) if args.ops else None
            for _, case in node_cases(only, expanded=args.expanded):
                if out_of_time():
                    break
                if args.resume and f"onnx/{case.name}" in rows:
                    continue
                if args.match and not re.search(args.match, case.name):
                    continue
                with tempfile.TemporaryDirectory(prefix="kk-truth-") as tmp:
                    try:
                        with contextlib.redirect_stdout(io.StringIO()):
                            row = onnx_case_row(case, Path(tmp))
                    except Exception as exc:   # one broken case must not stop the survey
                        row = {"straight": {"status": "error"}, "patched": {"exit": 3, "detail": f"{type(exc).__name__}: {_first_line(str(exc))}"}}
                    if row is not None:
                        keep(f"onnx/{case.name}", row)
        if args.classify:
            ran.append(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(started))} UTC: the rows that do not verify "
                       "classified (the original converted by the host OpenVINO, against ONNX's data)")
        if done or args.mediapipe or args.onnx_cases:
            ran.append(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(started))} UTC: {done} models "
                       f"({'MediaPipe ' if args.mediapipe else ''}"
                       f"{('expanded ' if args.expanded else '') + 'ONNX node cases' if args.onnx_cases else ''}"
                       f"{' of ' + args.ops if args.ops else ''}{' matching ' + args.match if args.match else ''}{', resumed' if args.resume else ''}) in {(time.time() - started) / 60:.0f} min, "
                       f"{'time-boxed to ' + str(args.minutes) + ' min, ' if args.minutes else ''}one job, nice")
        results.write_text(json.dumps({"rows": rows, "ran": ran}))
    Path(args.out).write_text(render(rows, ran))
    print(f"wrote {args.out}; false OKs: {len(false_oks(rows))}")
    return 1 if false_oks(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
