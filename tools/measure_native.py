"""Measure every native formulation (kernelkit.model.formulations.registry) the way the VPU would run it, and write
kernelkit/facts/data/native-fp16.json, which `patch --prefer native` reads to choose formulation or kernel.

For each formulated op type:
  1. ONNX node cases (kernelkit.harness.onnx_cases) whose conversion has a blocked layer of that type are
     patched with native formulations only (an empty kernel folder), then
     - verified on OpenVINO CPU f32 against ONNX's expected outputs (`kernelkit verify`),
     - run with fp16 rounding between layers (kernelkit.runners.fp16_layers) and compared with ONNX's
       reference evaluator on the same fp16-rounded inputs, its float outputs rounded to fp16 (what an ideal
       fp16 op returns), and
     - compiled by the real OpenVINO 2021.4 MYRIAD plugin (kernelkit.doctor.workflow.compile_patched);
  2. element-wise ops are also swept over every finite fp16 value of their domain (fp16 evaluator against
     float64 numpy on the same values, rounded to fp16), and compiled once as a small 4-D model;
  3. synthetic cases (SYNTHETIC below: larger shapes, ops without ONNX node cases) are checked the same
     way against the original op run by OpenVINO CPU f32 on the fp16-rounded inputs.
  4. every compiled case (and each element-wise op's sweep, compiled as one model) is run again as the compiled
     blob on the blob interpreter (kernelkit.runners.blob, fp32 accumulator) on the same fp16-rounded inputs and
     held to the same reference: what the device runs (the plugin's fusions, its fp16 stages), recorded as
     "blob" beside the IR figures ("fp16").
The error of one output is its tolerance ratio: the largest, over elements, of min(|err|/atol, |err|/|ref|/rtol)
(the harness rule: an element fails only beyond both). <= 1 is within the op's tolerance.

Run: .venv/bin/python tools/measure_native.py [--ops sin,cos] [--jobs 2]   (about ten minutes for all)
     --blob-only: measure the blobs and add them to the existing file, every IR figure kept as it is
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
TARGET = "2021.4"
MAX_CASES_PER_OP = 16          # enough to cover the attributes; the acceptance run covers every case


# ------------------------------------------------------------------------------------------- errors

def error_stats(actual, expected, atol: float, rtol: float) -> dict:
    """max abs error, max fp16 ulp and the tolerance ratio of one output (NaN/Inf must match exactly)."""
    from kernelkit.runners.compare import ulp_distance_fp16

    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape:
        return {"max_abs": float("inf"), "max_ulp": 0, "ratio": float("inf"), "elements": int(e.size),
                "note": f"shape {list(a.shape)} vs {list(e.shape)}"}
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    with np.errstate(all="ignore"):
        err = np.abs(a64 - e64)
        finite = np.isfinite(a64) & np.isfinite(e64)
        same_nonfinite = (np.isnan(a64) & np.isnan(e64)) | (np.isinf(a64) & (a64 == e64))
        bad_nonfinite = int((~finite & ~same_nonfinite).sum())
        integer = e.dtype.kind in "biu"
        if integer:
            ratio = float(np.where(finite, err > 0, False).any()) * float("inf") if err.size else 0.0
            ratio = 0.0 if np.isnan(ratio) else ratio
        else:
            rel = np.where(e64 != 0, err / np.abs(e64), np.where(err == 0, 0, np.inf))
            per = np.minimum(err / atol, rel / rtol)
            ratio = float(per[finite].max()) if finite.any() else 0.0
    stats = {"max_abs": float(err[finite].max()) if finite.any() else 0.0,
             "max_ulp": int(ulp_distance_fp16(a64, e64)[finite].max()) if finite.any() and not integer else 0,
             "ratio": float("inf") if bad_nonfinite else ratio, "elements": int(e.size)}
    if bad_nonfinite:
        stats["note"] = f"{bad_nonfinite} NaN/Inf mismatches"
    return stats


def worst(stats: list[dict]) -> dict:
    if not stats:
        return {}
    out = {"max_abs": max(s["max_abs"] for s in stats), "max_ulp": max(s["max_ulp"] for s in stats),
           "ratio": max(s["ratio"] for s in stats), "elements": sum(s["elements"] for s in stats)}
    notes = [s["note"] for s in stats if s.get("note")]
    if notes:
        out["note"] = notes[0]
    return out


def as_ideal_fp16(arrays) -> list[np.ndarray]:
    from kernelkit.runners.fp16_layers import round_fp16

    return [round_fp16(np.asarray(a)) for a in arrays]


def blob_stats(blob: Path, patched, inputs, reference, atol: float, rtol: float) -> dict:
    """The compiled blob on the blob interpreter (fp32 accumulator) against `reference`, like the IR's figures:
    the worst output, and any range finding of the run."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners.blob.runner import BlobRunner

    try:
        run = BlobRunner(blob).run({p.name: a for p, a in zip(patched.parameters(), inputs)})
    except KernelkitError as exc:
        return {"error": exc.message.splitlines()[0][:160]}
    names = []
    for result in patched.results():
        found = patched.producer(result, result.inputs[0].id)
        names.append(found[0].name if found else result.name)
    # outputs by the model's names; else (an output named by its Result) in blob order, as verify does
    outputs = [run.outputs[n] for n in names] if all(n in run.outputs for n in names) else list(run.outputs.values())
    if len(outputs) != len(reference):
        return {"error": f"the blob has {len(outputs)} outputs, the reference {len(reference)}"}
    stats = worst([error_stats(_like(np.asarray(a, np.float32).reshape(np.shape(e)) if np.size(a) == np.size(e)
                                     else a, e), e, atol, rtol) for a, e in zip(outputs, reference)])
    if run.failures:
        stats["findings"] = run.failures[:3]
    return stats


# ------------------------------------------------------------------------------------ ONNX node cases

def formulated_types(model, target=TARGET) -> set[str]:
    from kernelkit.model.blockers import find_blockers
    from kernelkit.model.formulations.registry import formulations
    from kernelkit.model.passes.rewrite import needed_layers

    found = {b.type.lower() for b in find_blockers(model, target)
             if b.kind in ("unsupported", "limit", "opset") and b.layer_id and b.type.lower() in formulations()}
    needed = needed_layers(model)
    return found | {layer.type.lower() for layer in model.layers if layer.name in needed}


def variants(model) -> dict[str, str]:
    """type -> the variant of its (first) layer, for the formulations measured per variant."""
    from kernelkit.model.formulations.registry import formulations

    found = {}
    for layer in model.layers:
        entry = formulations().get(layer.type.lower())
        if entry and entry.variant and layer.type.lower() not in found:
            found[layer.type.lower()] = entry.variant_of(layer)
    return found


def measure_onnx_case(case, folder: Path, empty_kernels: Path) -> dict | None:
    """None when the case has no formulated blocked layer; else the case's record."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners.fp16_layers import run_fp16
    from kernelkit.ir.load import load_model
    from kernelkit.harness.onnx_cases import onnx_reference, openvino_misses, prepare
    from kernelkit.model.patcher import patch_model
    from kernelkit.model.passes.native import tolerance
    from kernelkit.doctor.verify import verify

    prepared = prepare(case, folder)
    if isinstance(prepared, str):
        return None
    try:
        model = load_model(prepared.model_path, prepared.shapes)
    except KernelkitError:
        return None
    types = formulated_types(model)
    if not types:
        return None
    out = folder / "out"
    record = {"case": case.name, "onnx_op": prepared.op_type, "types": sorted(types), "variants": variants(model)}
    try:
        result = patch_model(prepared.model_path, out, TARGET, input_shapes=prepared.shapes, force=True,
                             kernels_dir=empty_kernels)
    except KernelkitError as exc:
        record["error"] = f"patch: {exc.message.splitlines()[0][:120]}"
        return record
    record["rewritten"] = sorted({c.before.split("-")[0].lower() for c in result.changes if c.patcher == "rewrite"})
    if result.exit_code != 0:
        record["error"] = f"blocker left: {result.remaining[0].type}: {result.remaining[0].reason[:100]}"
        return record
    np.savez(folder / "in.npz", **{f"in{i}": a for i, a in enumerate(prepared.inputs)})
    np.savez(folder / "exp.npz", **{f"out{i}": a for i, a in enumerate(prepared.expected)})
    checked = verify(out, inputs=folder / "in.npz", expected=folder / "exp.npz")
    record["f32_verified"] = checked.passed
    if not checked.passed and openvino_misses(prepared):
        record["openvino_itself_wrong"] = True
    rounded = as_ideal_fp16(prepared.inputs)
    reference = onnx_reference(prepared, rounded)
    record["reference"] = "onnx-reference-fp16-inputs" if reference is not None else "onnx-data"
    reference = as_ideal_fp16(reference if reference is not None else prepared.expected)
    patched = load_model(out / "model.xml")
    try:
        actual = run_fp16(patched.to_xml_bytes(), patched.bin_data, rounded)
    except KernelkitError as exc:
        record["error"] = f"fp16 run: {exc.message[:120]}"
        return record
    atol, rtol = tolerance(sorted(types)[0])
    record["fp16"] = worst([error_stats(_like(a, e), e, atol, rtol) for a, e in zip(actual, reference)])
    record["formulated_layers"] = [c.layer for c in result.changes if c.patcher == "rewrite"]
    record["compiled"], record["plugin"], record["plugin_layer"] = _compile_named(out)
    if record["compiled"]:
        record["blob"] = blob_stats(out / "model.blob", patched, rounded, reference, atol, rtol)
    return record


def _like(actual, expected):
    """An IR v10 output in the reference's element type (v10 reports i64 as i32, booleans as f32)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if expected.dtype.kind in "biu" and actual.dtype != expected.dtype:
        return actual.astype(expected.dtype)
    return actual


def _compile(outdir: Path) -> tuple[bool, str]:
    ok, message, _ = _compile_named(outdir)
    return ok, message


def _compile_named(outdir: Path) -> tuple[bool, str, str | None]:
    """(compiled, the plugin's message, the layer it names)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.workflow import compile_patched

    import re

    try:
        compile_patched(outdir, TARGET)
    except KernelkitError as exc:
        layer = getattr(exc, "layer_name", None)
        named = (re.search(r"with friendly_name '([^']+)'", exc.message)      # nGraph validation errors
                 or re.search(r"operation v\d+::\w+ (\S+) \(", exc.message))   # "Expecting operation v1::Conv y ("
        return False, exc.message.splitlines()[0][:160], layer or (named.group(1) if named else None)
    if not (outdir / "model.blob").is_file():
        return False, "custom layers bound: no blob without clc", None
    return True, "", None


def blamed(record: dict) -> bool:
    """Whether a failed compile names a layer of the case's formulations (or no layer at all): a refusal of
    the model's other layers says nothing about the formulation."""
    if record.get("compiled"):
        return False
    layer = record.get("plugin_layer")
    return layer is None or any(layer == name or layer.startswith(name + "/")
                                for name in record.get("formulated_layers", []))


# An ONNX op whose conversion carries the formulated layer under another name.
ONNX_NAMES = {"attention": "scaleddotproductattention", "resize": "interpolate", "scatternd": "scatterndupdate",
              "scatterelements": "scatterelementsupdate", "quantizelinear": "fakequantize",
              "dequantizelinear": "fakequantize", "gathernd": "gathernd", "roialign": "roialign"}


def principal_types(record: dict) -> list[str]:
    """The formulated types a case measures: its one rewritten type, or the one its ONNX op becomes. A case
    whose outcome mixes several formulations is evidence for none of them."""
    rewritten = record.get("rewritten") or record["types"]
    own = record.get("onnx_op", "").lower()
    own = ONNX_NAMES.get(own, own)
    if own in rewritten:
        return [own]
    return list(rewritten) if len(rewritten) == 1 else []


# ------------------------------------------------------------------------------------------- sweeps

def all_fp16(low: float, high: float) -> np.ndarray:
    values = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    values = values[np.isfinite(values)]
    return np.unique(values[(values >= low) & (values <= high)]).astype(np.float32)


def sweep(op_type: str, folder: Path) -> dict:
    """The formulation of one element-wise op against float64 numpy on every fp16 value of its domain."""
    import openvino as ov
    import openvino.opset13 as ops

    from kernelkit.runners.fp16_layers import run_fp16
    from kernelkit.ir.load import load_model
    from kernelkit.model.formulations import native_math
    from kernelkit.model.passes.base import PatchContext
    from kernelkit.facts.target import get_target
    from kernelkit.model.passes.native import tolerance
    from kernelkit.model.passes.rewrite import rewrite_layer

    low, high = native_math.DOMAINS.get(op_type, (-65504.0, 65504.0))
    x = all_fp16(low, high)
    p = ops.parameter([x.size], np.float32, name="x")
    node = getattr(ops, op_type)(p)
    node.set_friendly_name("y")
    path = folder / f"sweep_{op_type}.xml"
    ov.save_model(ov.Model([node], [p], op_type), str(path), compress_to_fp16=False)
    model = load_model(path)
    layer = next(l for l in model.layers if l.type.lower() == op_type)
    assert rewrite_layer(PatchContext(model, get_target(TARGET)), layer), op_type
    actual = run_fp16(model.to_xml_bytes(), model.bin_data, [x])[0]
    with np.errstate(all="ignore"):
        expected = native_math.REFERENCES[op_type](x.astype(np.float64))
    atol, rtol = tolerance(op_type)
    stats = error_stats(actual, as_ideal_fp16([expected])[0], atol, rtol)
    stats["domain"] = [float(low), float(high)]
    stats["values"] = int(x.size)
    stats["layers"] = sum(1 for l in model.layers if l.type not in ("Parameter", "Result", "Const"))
    stats["compiled"], stats["plugin"] = _compile_elementwise(op_type, folder)
    stats["blob"] = _sweep_blob(path, x, as_ideal_fp16([expected])[0], atol, rtol, folder)
    return stats


def _sweep_blob(path: Path, x, reference, atol: float, rtol: float, folder: Path) -> dict:
    """The sweep's model (every fp16 value of the domain in one input) patched with the formulation, compiled by
    the real plugin and run as a blob on the interpreter."""
    from kernelkit.ir.load import load_model
    from kernelkit.model.patcher import patch_model

    empty = folder / "no-kernels"
    empty.mkdir(exist_ok=True)
    out = folder / f"{path.stem}_patched"
    result = patch_model(path, out, TARGET, force=True, kernels_dir=empty)
    if result.exit_code != 0:
        return {"error": f"patch left {result.remaining[0].type}"}
    compiled, message = _compile(out)
    if not compiled:
        return {"error": f"compile: {message[:140]}"}
    return blob_stats(out / "model.blob", load_model(out / "model.xml"), [x], [reference], atol, rtol)


def _compile_elementwise(op_type: str, folder: Path) -> tuple[bool, str]:
    """The op on a 1x3x8x8 input, patched with its native formulation and compiled for real."""
    import openvino as ov
    import openvino.opset13 as ops

    from kernelkit.model.patcher import patch_model

    p = ops.parameter([1, 3, 8, 8], np.float32, name="x")
    node = getattr(ops, op_type)(p)
    node.set_friendly_name("y")
    path = folder / f"compile_{op_type}.xml"
    ov.save_model(ov.Model([node], [p], op_type), str(path), compress_to_fp16=False)
    empty = folder / "no-kernels"
    empty.mkdir(exist_ok=True)
    result = patch_model(path, folder / f"compile_{op_type}", TARGET, force=True, kernels_dir=empty)
    if result.exit_code != 0:
        return False, f"patch left {result.remaining[0].type}"
    return _compile(folder / f"compile_{op_type}")


# -------------------------------------------------------------------------------- synthetic cases

def _grid_sample_case(side_h, side_w, mode, padding, align, seed):
    import openvino as ov

    rng = np.random.default_rng(seed)
    x = ov.opset1.parameter([1, 3, side_h, side_w], np.float32, name="x")
    g = ov.opset1.parameter([1, 20, 24, 2], np.float32, name="grid")
    node = ov.opset9.grid_sample(x, g, {"align_corners": align, "mode": mode, "padding_mode": padding})
    inputs = [rng.uniform(-1, 1, (1, 3, side_h, side_w)).astype(np.float32),
              rng.uniform(-1.15, 1.15, (1, 20, 24, 2)).astype(np.float32)]
    return ov.Model([node], [x, g], "grid_sample"), inputs


def _interpolate_case(shape, sizes, mode, transform, antialias, seed):
    import openvino as ov

    rng = np.random.default_rng(seed)
    x = ov.opset1.parameter(shape, np.float32, name="x")
    node = ov.opset11.interpolate(x, np.array(sizes, np.int64), mode, "sizes", coordinate_transformation_mode=transform,
                                  antialias=antialias, axes=np.array([2, 3], np.int64))
    return ov.Model([node], [x], "interpolate"), [rng.uniform(-1, 1, shape).astype(np.float32)]


def _cells_case(kind, seed):
    import openvino as ov

    rng = np.random.default_rng(seed)
    x = ov.opset1.parameter([4, 6], np.float32, name="x")
    h = ov.opset1.parameter([4, 8], np.float32, name="h")
    gates = 3 if kind == "gru" else 1
    w, r = (rng.uniform(-0.7, 0.7, shape).astype(np.float32) for shape in ([gates * 8, 6], [gates * 8, 8]))
    if kind == "gru":
        node = ov.opset3.gru_cell(x, h, w, r, rng.uniform(-1, 1, 4 * 8).astype(np.float32), 8,
                                  linear_before_reset=True)
    else:
        node = ov.opset3.rnn_cell(x, h, w, r, rng.uniform(-1, 1, 8).astype(np.float32), 8, ["tanh"], [], [])
    return ov.Model([node], [x, h], kind), [rng.uniform(-1, 1, (4, 6)).astype(np.float32),
                                             rng.uniform(-1, 1, (4, 8)).astype(np.float32)]


def _small_op_case(kind, seed):
    import openvino as ov

    rng = np.random.default_rng(seed)
    if kind == "reducelogicalor":
        b = ov.opset1.parameter([6, 7, 5], np.bool_, name="b")
        return (ov.Model([ov.opset1.reduce_logical_or(b, np.array([1, 2], np.int64), False)], [b], kind),
                [rng.uniform(0, 1, (6, 7, 5)) > 0.9])
    if kind in ("reducemax", "reducemin"):
        n = ov.opset1.parameter([6, 7, 5], np.int32, name="n")
        reduce = ov.opset1.reduce_max if kind == "reducemax" else ov.opset1.reduce_min
        return (ov.Model([reduce(n, np.array([1], np.int64), True)], [n], kind),
                [rng.integers(-2000, 2000, (6, 7, 5)).astype(np.int32)])
    x = ov.opset1.parameter([3, 16, 20], np.float32, name="x")
    data = [rng.uniform(-3, 3, (3, 16, 20)).astype(np.float32)]
    if kind == "roll":
        node = ov.opset7.roll(x, np.array([5, -3], np.int64), np.array([1, 2], np.int64))
    else:
        node = ov.opset3.bucketize(x, np.linspace(-2.5, 2.5, 21).astype(np.float32), "i32", True)
    return ov.Model([node], [x], kind), data


def _conv_case(kind, seed):
    """A convolution whose weights are an input (the case the plugin refuses), unit-scale data."""
    import openvino as ov

    rng = np.random.default_rng(seed)
    x = ov.opset1.parameter([1, 4, 12, 10], np.float32, name="x")
    shapes = {"convolution": [6, 4, 3, 3], "groupconvolution": [2, 3, 2, 3, 3],
              "convolutionbackpropdata": [4, 3, 3, 3], "groupconvolutionbackpropdata": [2, 2, 3, 3, 3]}
    w = ov.opset1.parameter(shapes[kind], np.float32, name="w")
    if kind == "convolution":
        node = ov.opset1.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])
    elif kind == "groupconvolution":
        node = ov.opset1.group_convolution(x, w, [2, 1], [1, 1], [1, 1], [1, 2])
    elif kind == "convolutionbackpropdata":
        node = ov.opset1.convolution_backprop_data(x, w, [2, 2], pads_begin=[1, 1], pads_end=[1, 1])
    else:
        node = ov.opset1.group_convolution_backprop_data(x, w, [1, 2], pads_begin=[0, 1], pads_end=[0, 1])
    return ov.Model([node], [x, w], kind), [rng.uniform(-1, 1, (1, 4, 12, 10)).astype(np.float32),
                                             rng.uniform(-0.3, 0.3, shapes[kind]).astype(np.float32)]


def _irdft_case(seed):
    """IRDFT of the one-sided spectrum of a real signal (what RDFT gives), so the inverse is well posed."""
    import openvino as ov

    rng = np.random.default_rng(seed)
    x = ov.opset1.parameter([2, 3, 16, 2], np.float32, name="x")
    spectrum = np.fft.rfft(rng.uniform(-1, 1, (2, 3, 30)), axis=-1) / 8
    data = np.stack([spectrum.real, spectrum.imag], -1).astype(np.float32)
    node = ov.opset9.irdft(x, np.array([2], np.int64), np.array([30], np.int64))
    return ov.Model([node], [x], "irdft"), [data]


# IR type -> cases beyond ONNX's node tests (bigger shapes, other attributes): (name, builder) pairs whose
# builder returns (ov.Model with the original op, inputs). The reference is that op on OpenVINO CPU f32.
SYNTHETIC = {
    **{kind: [(f"input_weights_{kind}", lambda kind=kind: _conv_case(kind, 12))]
       for kind in ("convolution", "groupconvolution", "convolutionbackpropdata", "groupconvolutionbackpropdata")},
    "trilu": [("upper_k1_2x3x24x30", lambda: Custom("Trilu", {"upper": 1, "k": 1}, [[2, 3, 24, 30]], [2, 3, 24, 30], 20)),
              ("lower_k-3_40x16", lambda: Custom("Trilu", {"upper": 0, "k": -3}, [[40, 16]], [40, 16], 21))],
    "hardmax": [("axis1_2x64x5x6", lambda: Custom("Hardmax", {"axis": 1}, [[2, 64, 5, 6]], [2, 64, 5, 6], 22))],
    "layernormalization": [("last_axis_4x12x96", lambda: Custom("LayerNormalization", {"axis": -1, "epsilon": 1e-5},
                                                                [[4, 12, 96], [96], [96]], [4, 12, 96], 23))],
    "affinegrid": [("2d_48x64", lambda: Custom("AffineGrid", {"size": [2, 3, 48, 64], "align_corners": 0},
                                               [[2, 2, 3]], [2, 48, 64, 2], 24))],
    "det": [("3x3_batch_64", lambda: Custom("Det", {}, [[64, 3, 3]], [64], 25)),
            ("2x2_batch_8x16", lambda: Custom("Det", {}, [[8, 16, 2, 2]], [8, 16], 26))],
    "irdft": [("one_sided_16_to_30", lambda: _irdft_case(13))],
    "rnncell": [("tanh_4x6_to_8", lambda: _cells_case("rnn", 5))],
    "grucell": [("linear_before_reset_4x6_to_8", lambda: _cells_case("gru", 6))],
    "roll": [("two_axes_3x16x20", lambda: _small_op_case("roll", 7))],
    "bucketize": [("21_boundaries_3x16x20", lambda: _small_op_case("bucketize", 8))],
    "reducelogicalor": [("two_axes_6x7x5", lambda: _small_op_case("reducelogicalor", 9))],
    "reducemax": [("int32_6x7x5", lambda: _small_op_case("reducemax", 10))],
    "reducemin": [("int32_6x7x5", lambda: _small_op_case("reducemin", 11))],
    "interpolate": [
        ("cubic_up_32x40_to_64x80", lambda: _interpolate_case([1, 3, 32, 40], [64, 80], "cubic", "half_pixel", False, 1)),
        ("cubic_down_64x64_to_24x40", lambda: _interpolate_case([1, 2, 64, 64], [24, 40], "cubic", "align_corners",
                                                                False, 2)),
        ("cubic_antialias_down_48x48_to_20x16", lambda: _interpolate_case([1, 2, 48, 48], [20, 16], "cubic",
                                                                          "half_pixel", True, 3)),
    ],
    # Images up to the formulation's 128-pixel limit, grid points up to 15 % out of range, data in [-1, 1].
    "gridsample": [
        (f"{mode}_{padding}{'_aligned' if align else ''}_{h}x{w}",
         lambda h=h, w=w, mode=mode, padding=padding, align=align, seed=seed:
         _grid_sample_case(h, w, mode, padding, align, seed))
        for seed, (h, w, mode, padding, align) in enumerate([
            (64, 64, "bilinear", "zeros", False), (128, 96, "bilinear", "border", True),
            (48, 32, "bilinear", "reflection", False), (64, 64, "bicubic", "zeros", False),
            (48, 32, "bicubic", "border", True), (48, 32, "bicubic", "reflection", False),
            (100, 100, "nearest", "reflection", True), (128, 128, "nearest", "zeros", False),
            (64, 48, "nearest", "border", False)])
    ],
}


class Custom:
    """A synthetic case of one of the library's own layer types (no OpenVINO op: the reference is the numpy
    one of the kernel that binds it)."""

    def __init__(self, layer_type, attrs, shapes, out_shape, seed):
        self.layer_type, self.attrs, self.shapes, self.out_shape, self.seed = layer_type, attrs, shapes, out_shape, seed


def synthetic(op_type: str, name: str, build, folder: Path) -> dict:
    """One synthetic case: the formulation with fp16 rounding between layers against the original op on
    OpenVINO CPU f32 (or the kernel's numpy reference, for the library's own types), both fed the same
    fp16-rounded inputs; compiled for real."""
    import openvino as ov

    from kernelkit.runners.fp16_layers import run_fp16
    from kernelkit.ir.load import load_model
    from kernelkit.harness.custom_ops import one_layer_ir
    from kernelkit.harness.custom_ops import reference as custom_reference
    from kernelkit.model.patcher import patch_model
    from kernelkit.model.passes.native import tolerance
    from kernelkit.ir.openvino_run import run_openvino

    built = build()
    path = folder / f"{name}.xml"
    if isinstance(built, Custom):
        rng = np.random.default_rng(built.seed)
        inputs = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in built.shapes]
        original = load_model(one_layer_ir(path, built.layer_type, built.attrs, built.shapes, built.out_shape))
        rounded = as_ideal_fp16(inputs)
        reference = as_ideal_fp16([custom_reference(built.layer_type, rounded, built.attrs).astype(np.float32)])
    else:
        model, inputs = built
        ov.save_model(model, str(path), compress_to_fp16=False)
        original = load_model(path)
        rounded = as_ideal_fp16(inputs)
        reference = as_ideal_fp16(run_openvino(original.to_xml_bytes(), original.bin_data, rounded))
    empty = folder / "no-kernels"
    empty.mkdir(exist_ok=True)
    out = folder / f"{name}_patched"
    result = patch_model(path, out, TARGET, force=True, kernels_dir=empty)
    record = {"case": f"synthetic:{name}", "onnx_op": op_type, "types": [op_type], "variants": variants(original)}
    if result.exit_code != 0:
        record["error"] = f"blocker left: {result.remaining[0].type}: {result.remaining[0].reason[:100]}"
        return record
    patched = load_model(out / "model.xml")
    f32 = run_openvino(patched.to_xml_bytes(), patched.bin_data, rounded)
    if isinstance(built, Custom):
        # IR v10 reports float outputs as f32 and the reference is float64: compare in f32.
        f32 = [np.asarray(a, np.float32) for a in f32]
    atol, rtol = tolerance(op_type)
    record["f32_verified"] = all(error_stats(_like(a, e), e, 1e-4, 1e-3)["ratio"] <= 1 for a, e in
                                 zip(as_ideal_fp16(f32), reference))
    actual = run_fp16(patched.to_xml_bytes(), patched.bin_data, rounded)
    record["fp16"] = worst([error_stats(_like(a, e), e, atol, rtol) for a, e in zip(actual, reference)])
    record["rewritten"] = [op_type]
    record["formulated_layers"] = [c.layer for c in result.changes if c.patcher == "rewrite"]
    record["compiled"], record["plugin"], record["plugin_layer"] = _compile_named(out)
    if record["compiled"]:
        record["blob"] = blob_stats(out / "model.blob", patched, rounded, reference, atol, rtol)
    return record


def _synthetic_worker(job):
    op_type, index = job
    name, build = SYNTHETIC[op_type][index]
    with tempfile.TemporaryDirectory(prefix="kk-native-") as tmp:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return synthetic(op_type, name, build, Path(tmp))
        except Exception as exc:
            return {"case": f"synthetic:{name}", "onnx_op": op_type, "types": [op_type],
                    "error": f"{type(exc).__name__}: {exc}"[:160]}


# ----------------------------------------------------------------------------------------- the run

_CASES: list = []


def _onnx_worker(index: int):
    with tempfile.TemporaryDirectory(prefix="kk-native-") as tmp:
        folder = Path(tmp)
        empty = folder / "no-kernels"
        empty.mkdir()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return measure_onnx_case(_CASES[index], folder / "case", empty)
        except Exception as exc:  # one broken case must not stop the survey
            return {"case": _CASES[index].name, "types": [], "error": f"{type(exc).__name__}: {exc}"[:160]}


def _sweep_worker(op_type: str):
    with tempfile.TemporaryDirectory(prefix="kk-native-") as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            return op_type, sweep(op_type, Path(tmp))


def summarise_variants(op_type: str, cases: list[dict], swept: dict | None, text: str) -> dict:
    """The op's record; with variants, one record per variant and the worst of them on top."""
    groups: dict = {}
    for case in cases:
        groups.setdefault(case.get("variants", {}).get(op_type), []).append(case)
    if set(groups) <= {None}:
        return summarise(op_type, cases, swept, text)
    per = {name: {**summarise(op_type, group, swept, text), "variant": name} for name, group in sorted(groups.items())
           if name is not None}
    record = summarise(op_type, cases, swept, text)
    record["variants"] = per
    record["within_tolerance"] = all(v["within_tolerance"] for v in per.values())
    record["compiled"] = all(v["compiled"] for v in per.values())
    return record


def summarise(op_type: str, cases: list[dict], swept: dict | None, text: str) -> dict:
    from kernelkit.model.passes.native import tolerance

    atol, rtol = tolerance(op_type)
    measured = [c for c in cases if "fp16" in c and not c.get("openvino_itself_wrong")]
    record = {"formulation": text, "tolerance": {"atol": atol, "rtol": rtol}}
    if measured or cases:
        record["onnx"] = {
            "cases": len(cases), "measured": len(measured),
            "openvino_itself_wrong": sum(1 for c in cases if c.get("openvino_itself_wrong")),
            "f32_verified": sum(1 for c in measured if c.get("f32_verified")),
            "compiled": sum(1 for c in measured if c.get("compiled")),
            "refused_elsewhere": sum(1 for c in measured if not c.get("compiled") and not blamed(c)),
            **worst([c["fp16"] for c in measured]),
            "problems": [f"{c['case']}: {c.get('error') or c.get('plugin') or 'f32 verify failed'}"
                         for c in cases if not c.get("openvino_itself_wrong") and
                         (c.get("error") or not c.get("f32_verified") or blamed(c))][:6],
        }
    if swept:
        record["sweep"] = swept
    parts = [c["fp16"] for c in measured] + ([swept] if swept else [])
    if not parts:
        record["within_tolerance"] = None
        record["compiled"] = None
        return record
    record["fp16"] = worst(parts)
    if swept:
        low, high = swept["domain"]
        if (low, high) != (-65504.0, 65504.0):
            record["fp16"]["domain"] = f"{low:g} <= x <= {high:g}"
    record["within_tolerance"] = bool(record["fp16"]["ratio"] <= 1.0 and
                                      all(c.get("f32_verified") for c in measured))
    record["compiled"] = bool(not any(blamed(c) for c in measured) and (not swept or swept["compiled"]))
    blob = summarise_blob(measured, swept)
    if blob:
        record["blob"] = blob
    return record


def summarise_blob(measured: list[dict], swept: dict | None) -> dict | None:
    """The compiled blobs' figures on the interpreter, beside the IR's: the worst of every case's blob and the
    sweep's, how many ran, and what stopped or flagged the others."""
    runs = [c["blob"] for c in measured if c.get("blob")] + ([swept["blob"]] if swept and swept.get("blob") else [])
    if not runs:
        return None
    good = [r for r in runs if "error" not in r]
    out = {**worst(good), "runs": len(runs), "ran": len(good)} if good else {"runs": len(runs), "ran": 0}
    problems = [r["error"] for r in runs if r.get("error")] + [f for r in good for f in r.get("findings", [])]
    if problems:
        out["problems"] = problems[:3]
    return out


def merge_blob(old: dict, new: dict) -> dict:
    """`old` (an op's record) with the blob figures of `new` added, every IR figure kept as it is."""
    merged = json.loads(json.dumps(old))
    if new.get("blob"):
        merged["blob"] = new["blob"]
    if merged.get("sweep") and (new.get("sweep") or {}).get("blob"):
        merged["sweep"]["blob"] = new["sweep"]["blob"]
    for name, variant in (merged.get("variants") or {}).items():
        found = (new.get("variants") or {}).get(name) or {}
        if found.get("blob"):
            variant["blob"] = found["blob"]
    by_case = {c.get("case"): c for c in new.get("cases", [])}
    for case in merged.get("cases", []):
        found = by_case.get(case.get("case")) or {}
        if found.get("blob"):
            case["blob"] = found["blob"]
    return merged


def main(argv=None) -> int:
    from kernelkit.harness.onnx_cases import node_cases
    from kernelkit.model.formulations import native_math
    from kernelkit.model.passes import native
    from kernelkit.model.formulations.registry import formulations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", help="comma-separated op types (IR, lower case) to re-measure; others keep theirs")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(native.DATA_FILE))
    parser.add_argument("--skip-onnx", action="store_true",
                        help="synthetic cases and sweeps only (for --ops that have no ONNX node case)")
    parser.add_argument("--blob-only", action="store_true",
                        help="add the compiled blobs' figures to the existing file; keep every IR figure")
    args = parser.parse_args(argv)
    only = set(args.ops.lower().split(",")) if args.ops else None
    started = time.time()
    _CASES[:] = [] if args.skip_onnx else [case for _, case in node_cases()]
    context = multiprocessing.get_context("fork")
    by_type: dict[str, list[dict]] = {}
    swept: dict[str, dict] = {}
    with context.Pool(max(1, args.jobs), maxtasksperchild=20) as pool:
        for record in pool.imap_unordered(_onnx_worker, range(len(_CASES))):
            if not record:
                continue
            for op_type in principal_types(record):
                if only and op_type not in only:
                    continue
                bucket = by_type.setdefault(op_type, [])
                if len(bucket) < MAX_CASES_PER_OP:
                    bucket.append(record)
            print(f"{record['case']}: {record.get('fp16', {}).get('ratio', '-')} "
                  f"{record.get('error', '')}", file=sys.stderr, flush=True)
        jobs = [(t, i) for t in SYNTHETIC if not only or t in only for i in range(len(SYNTHETIC[t]))]
        for record in pool.imap_unordered(_synthetic_worker, jobs):
            by_type.setdefault(record["onnx_op"], []).append(record)
            print(f"{record['case']}: {record.get('fp16', {}).get('ratio', '-')} {record.get('error', '')}",
                  file=sys.stderr, flush=True)
        wanted = [t for t in native_math.REFERENCES if not only or t in only]
        for op_type, stats in pool.imap_unordered(_sweep_worker, wanted):
            swept[op_type] = stats
            print(f"sweep {op_type}: ratio {stats['ratio']:.3g}", file=sys.stderr, flush=True)
    out = Path(args.out)
    old = json.loads(out.read_text()).get("ops", {}) if out.is_file() and (only or args.blob_only) else {}
    ops = dict(old)
    for op_type, entry in sorted(formulations().items()):
        if only and op_type not in only or args.blob_only and op_type not in old:
            continue                    # --blob-only adds to the records there are; it measures no new op
        ops[op_type] = summarise_variants(op_type, by_type.get(op_type, []), swept.get(op_type), entry.text)
        ops[op_type]["cases"] = [{**{k: c.get(k) for k in ("case", "f32_verified", "compiled", "plugin", "fp16",
                                                           "error", "openvino_itself_wrong", "blob")
                                     if c.get(k) not in (None, "")},
                                  **({"variant": c["variants"][op_type]} if op_type in c.get("variants", {}) else {})}
                                 for c in by_type.get(op_type, [])]
        if args.blob_only and op_type in old:
            ops[op_type] = merge_blob(old[op_type], ops[op_type])
    from kernelkit.core.fsutil import atomic_write
    from kernelkit.runners.openvino_op import openvino_version

    previous = json.loads(out.read_text()) if out.is_file() and args.blob_only else {}
    data = {"schema": native.DATA_SCHEMA, "generated_by": "tools/measure_native.py",
            "openvino_cpu": previous.get("openvino_cpu") or openvino_version(),
            "plugin": "OpenVINO 2021.4.2 MYRIAD (kernelkit toolchain)",
            "seconds": previous.get("seconds") if args.blob_only else round(time.time() - started),
            "ops": dict(sorted(ops.items()))}
    atomic_write(out, (json.dumps(data, indent=1, allow_nan=True) + "\n").encode())
    print(f"wrote {out} ({len(ops)} ops) in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
