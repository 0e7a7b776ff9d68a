#!/usr/bin/env python3
"""Calibrate `kernelkit estimate` on Luxonis's published RVC2 table and measure its error on rows it did not see.

    .venv/bin/python benchmarks/estimate_calibration.py [--only REGEX] [--fit-only] [--write]

1. export: each row's model with random weights to ONNX, in a torch environment of its own
   (`<cache>/torch-side/venv`, tools/venvs.py: torch 2.13.0+cpu and torchvision 0.28.0 from this machine's wheels, onnx, timm,
   ultralytics; torch is no dependency of the kit), by benchmarks/estimate_export.py;
2. compile: `kernelkit compile --shaves 8` as Luxonis did (ONNX straight; a patch folder when the plugin
   refuses the ONNX), blobs cached in `<cache>/estimate/blobs`;
3. features: what the estimate reads from each blob (kernelkit.myriad.estimate.model_features), recorded in
   benchmarks/data/estimate-features.json (kept in the repository: the drift test reads it, no torch needed);
4. fit: the five rates, non-negative least squares on relative error of the latency the published FPS implies
   (two threads: latency = two_thread_overlap / FPS), on half of the rows, error on the other half; then
   leave-one-family-out; finally on all rows. `--write` stores the all-row fit in
   kernelkit/facts/data/rvc2-estimate.toml and the tables in docs/estimate.md.
`--fit-only` skips 1-3 and fits the recorded features.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kernelkit.core.fsutil import atomic_write
from kernelkit.core.paths import cache_dir
from tools.venvs import torch_python

WORK = cache_dir("estimate")
MODELS, BLOBS = WORK / "models", WORK / "blobs"
FEATURES = REPO / "benchmarks" / "data" / "estimate-features.json"
PARAMS = REPO / "kernelkit" / "facts" / "data" / "rvc2-estimate.toml"
DOCS = REPO / "docs" / "estimate.md"
CALIBRATION = REPO / "benchmarks" / "data" / "estimate-calibration.json"     # per row: the shipped fit's error
COMPILE_TIMEOUT = 1800
COMMAND = "python benchmarks/estimate_calibration.py --write"

# Published RVC2 rows (depthai-ecosystem.md section 7: 8 SHAVEs, 2 inference threads):
# (row = export name _ input, family, published model name, FPS, latency ms)
PUBLISHED = [
    ("resnet18_224", "resnet", "ResNet-18", 94.8, 19.7),
    ("resnet50_224", "resnet", "ResNet-50", 26.5, 56.5),
    ("mobileone_s0_224", "mobileone", "MobileOne S0", 165.5, 11.1),
    ("deeplabv3_mobilenet_v3_large_256", "deeplabv3", "DeepLabV3", 36.5, 48.1),
    ("deeplabv3_mobilenet_v3_large_513", "deeplabv3", "DeepLabV3", 6.3, 253.1),
    ("yolov8n_416", "yolov8", "YOLOv8n", 31.3, 56.9),
    ("yolov8n_640", "yolov8", "YOLOv8n", 14.3, 123.6),
    ("yolov8s_416", "yolov8", "YOLOv8s", 15.2, 111.9),
    ("yolov8m_416", "yolov8", "YOLOv8m", 6.0, 273.8),
    ("yolov9t_416", "yolov9", "YOLOv9t", 21.70, None),
    ("yolov9t_640", "yolov9", "YOLOv9t", 10.69, None),
    ("yolov9s_416", "yolov9", "YOLOv9s", 12.74, None),
    ("yolov9m_416", "yolov9", "YOLOv9m", 4.71, None),
    ("yolov10n_416", "yolov10", "YOLOv10n", 27.07, None),
    ("yolov10n_640", "yolov10", "YOLOv10n", 12.62, None),
    ("yolov10s_416", "yolov10", "YOLOv10s", 14.03, None),
    ("yolov10m_416", "yolov10", "YOLOv10m", 6.05, None),
    ("yolo11n_416", "yolo11", "YOLO11n", 28.08, None),
    ("yolo11n_640", "yolo11", "YOLO11n", 12.80, None),
    ("yolo11s_416", "yolo11", "YOLO11s", 12.17, None),
    ("yolo11m_416", "yolo11", "YOLO11m", 3.90, None),
]
FEATURE_NAMES = ("lane_cycles", "ddr_bytes", "copy_bytes", "shave_work", "stages")
RATE_OF = {"lane_cycles": "engine_rate", "ddr_bytes": "ddr_bandwidth", "copy_bytes": "dma_bandwidth",
           "shave_work": "shave_rate", "stages": "stage_overhead"}


# ------------------------------------------------------------------------------------------ build rows

def _kernelkit(*argv, timeout=COMPILE_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernelkit", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**__import__("os").environ, "PYTHONPATH": str(REPO)})


def build(rows: list[str]) -> None:
    MODELS.mkdir(parents=True, exist_ok=True)
    BLOBS.mkdir(parents=True, exist_ok=True)
    missing = [r for r in rows if not (MODELS / f"{r}.onnx").is_file()]
    if missing:
        subprocess.run([str(torch_python()), str(REPO / "benchmarks" / "estimate_export.py"), str(MODELS),
                        *missing])
    for row in rows:
        blob = BLOBS / f"{row}.blob"
        onnx = MODELS / f"{row}.onnx"
        if blob.is_file() or not onnx.is_file():
            continue
        done = _kernelkit("compile", str(onnx), "-o", str(blob), "--shaves", "8")
        if done.returncode != 0:            # the plugin refused the ONNX as exported: patch it first
            folder = WORK / "patched" / row
            patched = _kernelkit("patch", str(onnx), "-o", str(folder), "--no-compile")
            done = _kernelkit("compile", str(folder), "-o", str(blob), "--shaves", "8") \
                if patched.returncode in (0, 1) else patched
        print(f"{row}: {'compiled' if done.returncode == 0 else 'FAILED ' + done.stderr.strip()[-300:]}",
              flush=True)


def record_features(rows: list[str]) -> dict:
    from kernelkit.api import blob_info
    from kernelkit.myriad.estimate import model_features

    recorded = json.loads(FEATURES.read_text()) if FEATURES.is_file() else {}
    for row in rows:
        blob = BLOBS / f"{row}.blob"
        if blob.is_file():
            meta = MODELS / f"{row}.json"
            model = blob_info(blob)
            recorded[row] = model_features(model) | {
                "source": json.loads(meta.read_text())["source"] if meta.is_file() else None,
                "blob_bytes": model.header.file_size}
    FEATURES.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(FEATURES, json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
    return recorded


# ------------------------------------------------------------------------------------------------- fit

def _lstsq_nonneg(a, b):
    """Non-negative least squares by trying every support (five unknowns: 32 small solves)."""
    import numpy as np

    best, best_err = np.zeros(a.shape[1]), float(np.sum(b ** 2))
    for k in range(1, a.shape[1] + 1):
        for support in itertools.combinations(range(a.shape[1]), k):
            x_s, *_ = np.linalg.lstsq(a[:, support], b, rcond=None)
            if (x_s < 0).any():
                continue
            x = np.zeros(a.shape[1])
            x[list(support)] = x_s
            err = float(np.sum((a @ x - b) ** 2))
            if err < best_err:
                best, best_err = x, err
    return best


def fit(features: dict, rows: list[str], overlap: float) -> dict:
    """The rates that make the estimate's latency match the published FPS (relative error, least squares)."""
    import numpy as np

    target = {r: overlap / fps for r, _, _, fps, _ in PUBLISHED}
    a = np.array([[features[r][n] / target[r] for n in FEATURE_NAMES] for r in rows], float)
    theta = _lstsq_nonneg(a, np.ones(len(rows)))
    fitted = {}
    for name, value in zip(FEATURE_NAMES, theta):
        rate = RATE_OF[name]
        fitted[rate] = float(value) if rate == "stage_overhead" else (1.0 / value if value > 0 else float("inf"))
    return fitted


def predict_fps(feats: dict, fitted: dict, overlap: float) -> float:
    from kernelkit.myriad.estimate import latency_from_features

    return overlap / latency_from_features(feats, {"fitted": fitted})


def evaluate(features: dict) -> dict:
    from kernelkit.facts.rvc2 import estimate_params

    overlap = estimate_params()["assumed"]["two_thread_overlap"]
    have = [r for r, *_ in PUBLISHED if r in features]
    published = {r: (fam, name, fps) for r, fam, name, fps, _ in PUBLISHED}
    fit_half = have[0::2]                # the other half is held out
    half = fit(features, fit_half, overlap)
    lofo = {}
    for family in sorted({published[r][0] for r in have}):
        train = [r for r in have if published[r][0] != family]
        if train:
            lofo[family] = fit(features, train, overlap)
    everything = fit(features, have, overlap)
    table = []
    for r in have:
        fam, name, fps = published[r]
        row = {"row": r, "family": fam, "model": name, "input": int(r.rsplit("_", 1)[1]), "published_fps": fps,
               "split": "fit" if r in fit_half else "held out"}
        for key, params in (("half", half), ("lofo", lofo.get(fam)), ("all", everything)):
            if params is not None:
                pred = predict_fps(features[r], params, overlap)
                row[f"{key}_fps"], row[f"{key}_error"] = pred, pred / fps - 1
        table.append(row)

    def summary(rows, key):
        errs = [abs(t[f"{key}_error"]) for t in rows if f"{key}_error" in t]
        ratio = [max(1 + t[f"{key}_error"], 1 / (1 + t[f"{key}_error"])) for t in rows if f"{key}_error" in t]
        return {"rows": len(errs), "median_abs_error": statistics.median(errs) if errs else None,
                "max_ratio": max(ratio) if ratio else None}

    return {"table": table, "half_params": half, "lofo_params": lofo, "all_params": everything,
            "held_out": summary([t for t in table if t["split"] == "held out"], "half"),
            "fit_half": summary([t for t in table if t["split"] == "fit"], "half"),
            "lofo": summary(table, "lofo"), "all": summary(table, "all"), "overlap": overlap}


# ---------------------------------------------------------------------------------------------- writing

def _toml_float(v: float) -> str:
    return "inf" if v == float("inf") else f"{v:.6g}"


def write_params(result: dict) -> None:
    text = PARAMS.read_text()
    fitted = result["all_params"]
    for name, value in fitted.items():          # the value only; the line's comment stays
        text = re.sub(rf"^({name} = )[^\s#]+", lambda m, v=value: m.group(1) + _toml_float(v), text, count=1,
                      flags=re.M)
    rows = [t["row"] for t in result["table"]]
    text = re.sub(r'^fitted_by = .*$', f'fitted_by = "{COMMAND}"', text, count=1, flags=re.M)
    text = re.sub(r'^fit_rows = .*$', "fit_rows = [" + ", ".join(f'"{r}"' for r in rows) + "]", text, count=1,
                  flags=re.M)
    atomic_write(PARAMS, text)


def _pct(v):
    return f"{v * 100:+.0f} %"


def write_docs(result: dict, features: dict) -> None:
    from kernelkit.facts.rvc2 import RATES

    head = DOCS.read_text().split("<!-- calibration -->")[0] if DOCS.is_file() else ""
    lines = ["<!-- calibration -->", "",
             f"Generated by `{COMMAND}` (blobs compiled here at 8 SHAVEs; features recorded in "
             "`benchmarks/data/estimate-features.json`; `--fit-only` refits them without torch).", "",
             "| model | input | published FPS | split | predicted FPS (half fit) | error | leave-family-out FPS | "
             "error | all-row fit FPS | error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for t in result["table"]:
        lines.append(f"| {t['model']} (`{t['row']}`) | {t['input']} | {t['published_fps']:g} | {t['split']} | "
                     f"{t['half_fps']:.1f} | {_pct(t['half_error'])} | {t.get('lofo_fps', float('nan')):.1f} | "
                     f"{_pct(t['lofo_error']) if 'lofo_error' in t else '-'} | {t['all_fps']:.1f} | "
                     f"{_pct(t['all_error'])} |")
    lines += ["", "| fit | rows scored | median abs error | worst ratio |", "|---|---|---|---|"]
    for key, label in (("fit_half", "half fit, on its own rows"), ("held_out", "half fit, held-out rows"),
                       ("lofo", "leave-one-family-out"), ("all", "all rows (what the kit ships)")):
        s = result[key]
        lines.append(f"| {label} | {s['rows']} | {s['median_abs_error'] * 100:.0f} % | {s['max_ratio']:.2f}x |")
    lines += ["", "| rate | half fit | all-row fit (shipped) |", "|---|---|---|"]
    for rate in RATES:
        lines.append(f"| `{rate}` | {result['half_params'][rate]:.4g} | {result['all_params'][rate]:.4g} |")
    lines += ["", "Per row, what the blob holds (features):", "",
              "| row | lane-cycles (M) | HW DDR MB | Copy MB | SHAVE work (MB/SHAVE^s) | stages | blob MB | source |",
              "|---|---|---|---|---|---|---|---|"]
    for t in result["table"]:
        f = features[t["row"]]
        lines.append(f"| `{t['row']}` | {f['lane_cycles'] / 1e6:.1f} | {f['ddr_bytes'] / 1e6:.1f} | "
                     f"{f['copy_bytes'] / 1e6:.1f} | {f['shave_work'] / 1e6:.2f} | {f['stages']} | "
                     f"{f['blob_bytes'] / 1e6:.1f} | {f.get('source') or ''} |")
    atomic_write(DOCS, head + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="rows matching this regular expression")
    parser.add_argument("--fit-only", action="store_true", help="fit the recorded features, build nothing")
    parser.add_argument("--write", action="store_true", help="store the fit and write docs/estimate.md")
    args = parser.parse_args(argv)
    rows = [r for r, *_ in PUBLISHED if not args.only or re.search(args.only, r)]
    if args.fit_only:
        features = json.loads(FEATURES.read_text())
    else:
        build(rows)
        features = record_features(rows)
    result = evaluate(features)
    for t in result["table"]:
        print(f"{t['row']:36s} {t['published_fps']:7.2f} {t['split']:9s} half {t['half_fps']:7.2f} "
              f"{_pct(t['half_error']):>7s}  lofo {t.get('lofo_fps', float('nan')):7.2f}  all {t['all_fps']:7.2f} "
              f"{_pct(t['all_error']):>7s}")
    for key in ("fit_half", "held_out", "lofo", "all"):
        print(key, result[key])
    print("all-row fit:", result["all_params"])
    if args.write:
        write_params(result)
        write_docs(result, features)
        rows = {t["row"]: {"published_fps": t["published_fps"], "predicted_fps": round(t["all_fps"], 3),
                           "error": round(t["all_error"], 4)} for t in result["table"]}
        atomic_write(CALIBRATION, json.dumps({"command": COMMAND, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
