"""Verify a patch output folder: its model on OpenVINO CPU (f32) with the custom-bound layers executed by the
SHAVE emulator (kernelkit.runners.emulated_model), every output compared (kernelkit.runners.compare) with
expected outputs or a reference model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import named_file
from kernelkit.model import patchdir
from kernelkit.runners.emulated_model import EmulatedLayer, element_dtype


# ---- inputs --------------------------------------------------------------------------------------------------

def _load_npz(path, prefix: str, what: str) -> list[np.ndarray]:
    from kernelkit.core.npzfile import load_npz

    path = Path(path)
    data = load_npz(path, what=what)
    keys = set(data)
    arrays = []
    while f"{prefix}{len(arrays)}" in keys:
        arrays.append(data[f"{prefix}{len(arrays)}"])
    if len(arrays) != len(keys):
        extra = sorted(keys - {f"{prefix}{i}" for i in range(len(arrays))})
        raise KernelkitError(f"{what} must hold {prefix}0, {prefix}1, ... and nothing else"
                             + (f"; found {', '.join(extra)}" if extra else ""), path=path)
    return arrays


def random_inputs(model, seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs in model input order: floats in [-1, 1), U8 in [0, 255], integers in [0, 10]."""
    rng = np.random.default_rng(seed)
    arrays = []
    for param in model.parameters():
        etype = param.attrs.get("element_type", "f32")
        dims = tuple(param.outputs[0].dims)
        dtype = element_dtype(etype)
        if any(d < 0 for d in dims):
            raise KernelkitError(f"input {param.name!r} has the dynamic shape {list(dims)}", path=model.path,
                                 hint="patch the model with --input-shape, or pass --inputs IN.npz")
        limits.check_tensor(dims, dtype.itemsize, f"input {param.name!r}", path=model.path)
        if etype == "u8":
            arrays.append(rng.integers(0, 256, size=dims).astype(np.uint8))
        elif etype == "boolean":
            arrays.append(rng.integers(0, 2, size=dims).astype(bool))
        elif dtype.kind in "iu":
            arrays.append(rng.integers(0, 11, size=dims).astype(dtype))
        else:
            arrays.append(rng.uniform(-1, 1, size=dims).astype(dtype))
    return arrays


def preprocess_like_patch(inputs: list[np.ndarray], model, options: dict, layouts: list | None = None
                          ) -> list[np.ndarray]:
    """The recorded preprocessing done again in numpy, independently of the graph the patch built: U8 ->
    float, channels reversed, (x - mean) / scale, on the channel axis of each input's layout as the patch report
    states it (`layouts`: its "inputs"; a report without them is from before layouts: NCHW)."""
    if not options or not any(options.get(k) for k in ("mean", "scale", "reverse_channels", "u8_input")):
        return inputs
    names = options.get("inputs") or []
    stated = {entry.get("name"): entry.get("layout") for entry in layouts or []}
    result = []
    for param, array in zip(model.parameters(), inputs):
        chosen = param.name in names if names else (array.ndim == 4 and (array.dtype.kind == "f" or
                                                                         options.get("u8_input")))
        if not chosen:
            result.append(array)
            continue
        x = array.astype(np.float32)
        layout = stated.get(param.name) or "NCHW"
        axis = layout.index("C")
        if options.get("reverse_channels"):
            x = np.flip(x, axis)
        for key, fn in (("mean", np.subtract), ("scale", np.divide)):
            values = options.get(key)
            if values:
                shape = [1] * x.ndim
                if len(values) > 1:
                    shape[axis] = len(values)
                x = fn(x, np.array(values, np.float32).reshape(shape))
        result.append(np.ascontiguousarray(x))
    return result


# ---- the verify run ---------------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    outdir: Path
    reference: str                               # what the outputs were compared with
    comparisons: list = field(default_factory=list)   # kernelkit.runners.compare.OutputComparison
    emulated: list[EmulatedLayer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # emulator failures, output count mismatch
    blob: BlobCheck | None = None                       # the compiled blob on the interpreter, when there is one

    @property
    def ir_passed(self) -> bool:
        return not self.problems and bool(self.comparisons) and all(c.passed for c in self.comparisons)

    @property
    def passed(self) -> bool:
        return self.ir_passed and (self.blob is None or self.blob.passed)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {"outdir": str(self.outdir), "reference": self.reference, "passed": self.passed,
                "ir_passed": self.ir_passed,
                "emulated_layers": [{"name": e.name, "type": e.type, "calls": e.calls} for e in self.emulated],
                "problems": self.problems, "outputs": [c.to_dict() for c in self.comparisons],
                "blob": self.blob.to_dict() if self.blob is not None else None}


@dataclass
class BlobCheck:
    """The compiled blob run by the blob interpreter (fp32 accumulator) on the same inputs, against the same
    reference: what the device runs (its fusions, tiling, weights scaling, fp16 everywhere), not the IR."""

    blob: Path
    comparisons: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)     # range findings, output mismatch
    notes: list[str] = field(default_factory=list)        # findings that fail nothing by themselves (zero collapse)
    not_run: str | None = None                            # why the interpreter could not run it (found blob)
    departs_at: object = None       # doctor.departure.Departure: the first stage off the IR (a failed check only)
    departs_note: str | None = None                       # why a failed check names no stage

    @property
    def passed(self) -> bool:
        if self.not_run is not None:
            return True                 # reported, not judged: the IR verdict stands (see format_verify_result)
        return not self.problems and bool(self.comparisons) and all(c.passed for c in self.comparisons)

    def to_dict(self) -> dict:
        return {"blob": str(self.blob), "passed": self.passed, "not_run": self.not_run, "problems": self.problems,
                "notes": self.notes, "outputs": [c.to_dict() for c in self.comparisons],
                "departs_at": self.departs_at.to_dict() if self.departs_at is not None else None,
                "departs_note": self.departs_note}


def verify(outdir, *, inputs=None, expected=None, reference=None, seed: int = 0, atol: float | None = None,
           rtol: float | None = None, blob=None, check_blob: bool = True, locate: bool = True,
           onnx_reference: bool = False) -> VerifyResult:
    """Compare the patched model in OUTDIR (custom layers emulated) with expected outputs or a reference
    model (default: the original model recorded in patch-report.json, on the same inputs). onnx_reference: an
    ONNX reference runs on onnx's reference evaluator, not through OpenVINO's conversion of it, so a conversion
    that loses the file's meaning is caught too. The compiled blob
    (`blob`, else OUTDIR/model.blob when patch or compile wrote one; `check_blob=False` skips it) is run by the
    blob interpreter on the same inputs and compared with the same reference; `locate=False` skips the search
    for where a failing blob departs (a second run)."""
    from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL
    from kernelkit.ir.load import load_model
    from kernelkit.runners.compare import compare_outputs
    from kernelkit.runners.emulated_model import EmulatedModelRunner

    outdir = Path(outdir)
    if not (outdir / patchdir.MODEL_FILE).is_file():
        raise KernelkitError(f"folder has no {patchdir.MODEL_FILE}", path=outdir,
                             hint="pass the output folder of `kernelkit patch`")
    if expected is not None and reference is not None:
        raise KernelkitError("give --expected or --reference, not both", where="--expected/--reference")
    if expected is not None and onnx_reference:
        raise KernelkitError("--onnx-reference runs a reference model; --expected gives outputs instead",
                             where="--onnx-reference", hint="drop one of the two")
    report = patchdir.read_report(outdir)
    patched = load_model(outdir / patchdir.MODEL_FILE)
    feed = _load_npz(inputs, "in", "IN.npz") if inputs is not None else random_inputs(patched, seed)
    run = EmulatedModelRunner(outdir / patchdir.MODEL_FILE, outdir / patchdir.CUSTOM_LAYERS_FILE).run(feed)
    actual, emulated, problems = run.arrays, run.detail, run.failures

    if expected is not None:
        wanted = _load_npz(expected, "out", "EXP.npz")
        label = f"expected outputs {expected}"
    else:
        source = report.get("source", {})
        ref_path = Path(reference) if reference is not None else (
            _original_model(source["model"], outdir) if source.get("model") else None)
        if ref_path is None:
            raise KernelkitError("no reference: the folder has no patch-report.json naming the original model",
                                 path=outdir, hint="pass --expected EXP.npz or --reference MODEL")
        wanted, label = _run_reference(ref_path, reference is not None, source, report, feed, patched,
                                       onnx_reference=onnx_reference)
    result = VerifyResult(outdir, label, emulated=emulated, problems=problems)
    if actual and len(actual) != len(wanted):
        result.problems.append(f"the patched model has {len(actual)} outputs, the reference {len(wanted)}")
    names = [r.name for r in _result_producers(patched)]
    if patched.version == 10:
        actual = [_undo_v10_output_type(a, result_layer) for a, result_layer in zip(actual, patched.results())]
    labels = [f"out{index}" + (f" ({names[index]})" if index < len(names) else "") for index in range(len(actual))]
    atol, rtol = DEFAULT_ATOL if atol is None else atol, DEFAULT_RTOL if rtol is None else rtol
    result.comparisons = compare_outputs(actual, wanted, atol=atol, rtol=rtol, names=labels)
    blob_path = Path(blob) if blob is not None else outdir / patchdir.BLOB_FILE
    if check_blob and (blob is not None or blob_path.is_file()):
        # the patch folder holds the binding and the .cl its Custom stages run with
        kernels = outdir if (outdir / patchdir.CUSTOM_LAYERS_FILE).is_file() else None
        result.blob = check_compiled_blob(blob_path, patched, feed, wanted, names, atol=atol, rtol=rtol,
                                          asked=blob is not None, kernels=kernels, locate=locate)
        if locate and result.blob.not_run is None and not result.blob.passed:
            note = _fp16_inputs_note(outdir, feed, wanted, labels, atol=atol, rtol=rtol)
            if note:
                result.blob.notes.append(note)
    return result


def _fp16_inputs_note(outdir: Path, feed, wanted, labels, *, atol: float, rtol: float) -> str | None:
    """Why a blob misses when its inputs already do: the device receives each float input as fp16, and the IR
    fed those rounded inputs misses the reference too (test_logsoftmax_large_number: 10000..10003, where fp16
    steps by 8). None when rounding changes no input, or the IR still matches on the rounded inputs."""
    from kernelkit.facts.tolerances import BLOB_NOISE_OF_PEAK
    from kernelkit.runners.compare import compare_outputs
    from kernelkit.runners.emulated_model import EmulatedModelRunner

    rounded = [a.astype(np.float16).astype(a.dtype) if a.dtype.kind == "f" else a for a in feed]
    changed = [i for i, (a, r) in enumerate(zip(feed, rounded)) if a.dtype.kind == "f" and not np.array_equal(a, r)]
    if not changed:
        return None
    try:
        got = EmulatedModelRunner(outdir / patchdir.MODEL_FILE, outdir / patchdir.CUSTOM_LAYERS_FILE).run(rounded)
    except KernelkitError:
        return None
    missed = []
    for array, want, label in zip(got.arrays, wanted, labels):
        peak = float(np.max(np.abs(want))) if np.size(want) else 0.0
        found = compare_outputs([array], [want], atol=max(atol, BLOB_NOISE_OF_PEAK * peak), rtol=rtol,
                                names=[label])[0]
        if not found.passed:
            missed.append(label)
    if not missed:
        return None
    top = max((float(np.max(np.abs(feed[i]))) for i in changed if np.size(feed[i])), default=0.0)
    return (f"the IR misses the reference too when fed the inputs rounded to fp16, as the device receives them "
            f"({', '.join(missed)}): the inputs hold differences fp16 cannot (at {top:.6g} fp16 steps by "
            f"{float(np.spacing(np.float16(top))):g}); shift or scale them into fp16's precision before the "
            "network")


def check_compiled_blob(blob: Path, patched, feed, wanted, names: list[str], *, atol: float, rtol: float,
                        asked: bool, kernels=None, locate: bool = True) -> BlobCheck:
    """Run `blob` on the patched model's inputs (keyed by its input names) and compare each output, matched by
    name to the patched model's outputs `names` (in the order of `wanted`), within atol or BLOB_NOISE_OF_PEAK of
    the output's largest magnitude, whichever is larger. A blob the interpreter cannot run
    is an error when asked for (`--blob`), else a finding reported beside the IR verdict. `kernels`: the binding
    and .cl files its Custom stages run with on the SHAVE emulator (the patch folder). When the check fails,
    the blob is run again stage by stage to name the first stage that departs from the IR (`departs_at`)."""
    check = _check_blob_outputs(blob, patched, feed, wanted, names, atol=atol, rtol=rtol, asked=asked,
                                kernels=kernels)
    if locate and check.not_run is None and not check.passed:
        from kernelkit.doctor.departure import find_departure

        try:
            search = find_departure(blob, patched, feed, atol=atol, rtol=rtol)
            check.departs_at, check.departs_note = search.departure, search.note
            if search.departure is None and search.compared:
                check.departs_note += ("; the difference arises in a stage that computes no IR tensor of its own "
                                       "(the input or output Convert, a copy) or in a tensor the dump does not name")
        except KernelkitError as exc:        # the verdict stands; only the place is unknown
            check.departs_note = exc.message
    return check


def _check_blob_outputs(blob: Path, patched, feed, wanted, names: list[str], *, atol: float, rtol: float,
                        asked: bool, kernels=None) -> BlobCheck:
    from kernelkit.facts.tolerances import BLOB_NOISE_OF_PEAK
    from kernelkit.runners.blob.runner import BlobRunner
    from kernelkit.runners.compare import compare_outputs

    check = BlobCheck(blob)
    try:
        runner = BlobRunner(blob, kernels=kernels)      # a blob file's stages name their IR layers
        run = runner.run({p.name: array for p, array in zip(patched.parameters(), feed)})
    except KernelkitError as exc:
        if asked:
            raise
        check.not_run = exc.message
        return check
    # A tensor that rounds to zeros in fp16 fails the check only through the outputs it spoils; one whose
    # outputs still match (tiny attention scores, an unused branch) is a note. Overflow, inf and NaN fail.
    for finding in run.detail.findings:
        (check.notes if finding.kind == "zero collapse" else check.problems).append(finding.message())
    outputs = run.outputs
    missing = [name for name in names if name not in outputs]
    if missing:         # names differ (an IR v10 output named by its Result): fall back to blob order
        if len(outputs) != len(wanted):
            check.problems.append(f"the blob has {len(outputs)} outputs, the reference {len(wanted)}")
            return check
        ordered = list(outputs.values())
    else:
        ordered = [outputs[name] for name in names]
    for i, (got, want) in enumerate(zip(ordered, wanted)):
        got = np.asarray(got, dtype=np.float32).reshape(np.shape(want)) if np.size(got) == np.size(want) else got
        want = np.asarray(want)
        if want.dtype.kind in "biu" and np.array_equal(got.astype(want.dtype).astype(got.dtype), got):
            got = got.astype(want.dtype)        # the blob keeps a boolean or integer output in a float type
        # fp16 through the whole network: held to a share of the output's peak, not element by element
        peak = float(np.max(np.abs(want))) if np.size(want) else 0.0
        label = f"out{i}" + (f" ({names[i]})" if i < len(names) else "")
        check.comparisons += compare_outputs([got], [want], atol=max(atol, BLOB_NOISE_OF_PEAK * peak), rtol=rtol,
                                             names=[label])
        if peak > 0 and np.issubdtype(np.asarray(got).dtype, np.floating) and not np.any(got):
            # under atol, but nothing left of it: the device would hand over zeros
            check.problems.append(f"{label} is all zeros in the blob, where the reference reaches {peak:.3g}: "
                                  "its values are below fp16's range; scale the network's input or the layer's "
                                  "weights up")
    return check


def _original_model(name: str, outdir: Path) -> Path:
    """The original model the report names: a file, or a TensorFlow SavedModel folder (its saved_model.pb)."""
    saved = Path(name).is_dir() and name.strip() not in ("", ".", "..")
    path = named_file(".", str(Path(name) / "saved_model.pb") if saved else name,
                      source=outdir / patchdir.REPORT_FILE, where="source.model", what="original model", inside=False)
    return path.parent if saved else path


def _run_reference(ref_path: Path, explicit: bool, source: dict, report: dict, feed, patched, *,
                   onnx_reference: bool = False):
    """The reference outputs and their label. The patch's --input-shape and --input-value apply to any
    reference, so a model with frozen inputs is compared with the original at those values (its If and Loop
    run by OpenVINO, not folded). An ONNX original OpenVINO cannot convert (a dead branch it cannot
    shape-infer) runs on onnx's reference evaluator instead."""
    from kernelkit.ir.load import load_model
    from kernelkit.ir.onnx_import import ConversionFailed
    from kernelkit.runners.onnx_reference import OnnxReferenceRunner
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    shapes, values = source.get("input_shapes") or None, source.get("input_values") or None
    cut = source.get("outputs") or None
    options = report.get("preprocessing", {})
    layouts = report.get("inputs")
    if onnx_reference:
        if ref_path.suffix.lower() != ".onnx":
            raise KernelkitError("--onnx-reference needs an ONNX reference model", path=ref_path,
                                 where="--onnx-reference", hint="pass --reference MODEL.onnx, or drop the flag")
        if source.get("head"):
            raise KernelkitError("the patch rewrote the model's head (--head), so the ONNX file's own outputs "
                                 "are not the patched model's", path=ref_path, where="--onnx-reference",
                                 hint="verify without --onnx-reference")
        why = "ONNX's meaning of the file"
    elif ref_path.suffix.lower() == ".onnx" and not source.get("head") and _drops_resize_attributes(ref_path):
        # OpenVINO would compute this original without them, and the kit's own rewrite of them is what is
        # checked: onnx's evaluator computes the spec.
        why = "a Resize uses attributes OpenVINO's conversion drops"
    else:
        why = None
    if why:
        outputs = OnnxReferenceRunner(ref_path, shapes, values, cut=cut).run(
            preprocess_like_patch(feed, patched, options, layouts)).arrays
        return outputs, f"original model {ref_path} on onnx's reference evaluator ({why})"
    try:
        original = load_model(ref_path, shapes, values, outputs=cut, head=source.get("head"))
    except ConversionFailed:
        if ref_path.suffix.lower() != ".onnx":       # onnx's evaluator is a fallback for ONNX originals only
            raise
        # The patched model's inputs carry the original's names (preprocessing goes after them).
        outputs = OnnxReferenceRunner(ref_path, shapes, values, cut=cut).run(
            preprocess_like_patch(feed, patched, options, layouts)).arrays
        return outputs, f"original model {ref_path} on onnx's reference evaluator (OpenVINO cannot convert it)"
    except KernelkitError as exc:
        if not explicit or not (shapes or values):
            raise
        raise KernelkitError(f"the reference cannot take the patch's recorded inputs: {exc.message}",
                             path=ref_path, where="--reference",
                             hint="the reference needs the inputs patch-report.json names under source "
                                  "(input_shapes, input_values); or pass --expected EXP.npz") from None
    # The reference is the model before patching: it gets the inputs after the recorded preprocessing.
    ref_inputs = preprocess_like_patch(feed, original, options, layouts)
    wanted = OpenVINOCPURunner.of_model(original, path=ref_path).run(ref_inputs).arrays
    return wanted, f"original model {ref_path} on OpenVINO CPU (f32)"


def _drops_resize_attributes(path: Path) -> bool:
    from kernelkit.ir.onnx_graph import load_onnx
    from kernelkit.ir.onnx_resize import has_dropped_attributes

    try:
        return has_dropped_attributes(load_onnx(path, external_data=False))
    except KernelkitError:
        return False             # an unreadable file: the load below says why


def _undo_v10_output_type(array: np.ndarray, result_layer) -> np.ndarray:
    """OpenVINO reads IR v10 outputs the legacy way (integers as i32, other non-f32 types as f32, notes §1.8);
    give an output back the element type its Result has in the XML when that loses nothing."""
    etype = result_layer.inputs[0].element_type if result_layer.inputs else None
    if etype is None or etype in ("f32",):
        return array
    dtype = element_dtype(etype)
    converted = array.astype(dtype)
    return converted if np.array_equal(converted.astype(array.dtype), array) else array


def _result_producers(model) -> list:
    producers = []
    for result in model.results():
        found = model.producer(result, result.inputs[0].id)
        producers.append(found[0] if found else result)
    return producers


def format_verify_result(result: VerifyResult) -> str:
    lines = [f"verify {result.outdir} against {result.reference}"]
    if result.emulated:
        lines.append("  emulated on SHAVE: " + ", ".join(f"{e.name} ({e.type}, {e.calls} call(s))"
                                                        for e in result.emulated))
    for c in result.comparisons:
        lines.append(f"  {_comparison_line(c)}")
    for problem in result.problems:
        lines.append(f"  FAIL {problem}")
    check = result.blob
    if check is not None:
        lines.append(f"compiled blob {check.blob} on the blob interpreter (fp32 accumulator) against the same "
                     "reference:")
        if check.not_run is not None:
            lines.append(f"  NOT CHECKED: {check.not_run}")
        for c in check.comparisons:
            lines.append(f"  {_comparison_line(c)}")
        for problem in check.problems:
            lines.append(f"  FAIL {problem}")
        for note in check.notes:
            lines.append(f"  note: {note}")
        if check.departs_at is not None:
            lines.append(f"  the blob departs from the IR at {check.departs_at}")
        elif check.departs_note:
            lines.append(f"  where it departs: {check.departs_note}")
    if result.passed:
        lines.append("PASSED: every output matches" + (
            "" if check is None else " (the IR only: the blob could not be run)" if check.not_run is not None
            else ", in the IR and in the compiled blob"))
    elif result.ir_passed:
        lines.append("FAILED: the IR matches, the compiled blob does not (what the device runs)")
    elif check is not None and check.passed and check.not_run is None:
        lines.append("FAILED: the compiled blob matches, the IR on OpenVINO CPU does not")
    else:
        lines.append("FAILED")
    return "\n".join(lines)


def _comparison_line(c) -> str:
    verdict = "PASS" if c.passed else "FAIL"
    line = (f"{verdict} {c.name} {list(c.shape)} {c.dtype}: max abs {c.abs_error.max:.3g}, max rel "
            f"{c.rel_error.max:.3g}, {c.mismatches}/{c.elements} outside atol={c.atol:g} rtol={c.rtol:g}"
            + ("" if c.passed else f" - {c.reason}"))
    return line + (f"\n    {c.signal_note}" if c.signal_note else "")
