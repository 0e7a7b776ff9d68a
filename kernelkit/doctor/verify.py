"""Run a patched model on OpenVINO CPU (f32) with custom-bound layers executed by the SHAVE emulator, and
compare every output with a reference.

The MYRIAD custom layers keep their op type in the IR (a binding overrides by type), so OpenVINO CPU would
run its own implementation of them. To run the kernel instead, an in-memory copy of the XML retypes each
bound layer to an extension type, and a Python `openvino.Op` of that type calls `emulate()` in `evaluate`
(reference notes §4: identity comes from an overridden `get_type_info`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError

EXTENSION_VERSION = "kernelkit"
EXTENSION_PREFIX = "KernelkitEmulated_"


def _core():
    import openvino as ov

    return ov.Core()


def run_openvino(xml: bytes | str, weights: bytes, inputs: list[np.ndarray], *, extensions=(),
                 path=None) -> list[np.ndarray]:
    """Infer once on CPU with INFERENCE_PRECISION_HINT=f32; outputs in the model's Result order."""
    import openvino as ov

    core = _core()
    for extension in extensions:
        core.add_extension(ov.OpExtension(extension))
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    try:
        model = core.read_model(model=text, weights=ov.Tensor(np.frombuffer(weights or b"\0", np.uint8).copy()))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO CPU cannot load the model: {_first_line(exc)}", path=path) from None
    if len(inputs) != len(compiled.inputs):
        raise KernelkitError(f"the model has {len(compiled.inputs)} inputs but {len(inputs)} arrays were given",
                             path=path, hint="IN.npz must hold in0, in1, ... one per model input, in order")
    feed = {}
    for index, (port, array) in enumerate(zip(compiled.inputs, inputs)):
        expected = tuple(port.get_partial_shape().to_shape()) if port.get_partial_shape().is_static else None
        if expected is not None and tuple(np.shape(array)) != expected:
            raise KernelkitError(f"input in{index} has shape {list(np.shape(array))}, the model wants "
                                 f"{list(expected)}", path=path, where=f"in{index}")
        # np.array, not ascontiguousarray: that one turns a 0-d input into shape (1,).
        feed[index] = np.array(array, dtype=port.get_element_type().to_dtype(), order="C")
    try:
        result = compiled(feed)
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO CPU inference failed: {_first_line(exc)}", path=path) from None
    return [np.array(result[port]) for port in compiled.outputs]


def _first_line(exc) -> str:
    """The informative line of an OpenVINO exception (the first one only names the C++ file)."""
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    useful = [l for l in lines if not l.startswith("Exception from") and not l.startswith("Check '")]
    return (useful or lines or [type(exc).__name__])[0][:300]


# ---- custom-bound layers run through the emulator ---------------------------------------------------------

@dataclass
class EmulatedLayer:
    name: str
    type: str                      # the IR type the binding overrides
    ext_type: str                  # the extension type of the in-memory copy
    attrs: dict
    outputs: list                  # [(element type, dims)]
    calls: int = 0
    absorbed: dict = field(default_factory=dict)   # parameters the plugin makes of constant inputs


def _element_dtype(element_type: str):
    from kernelkit.ir import elements

    found = elements.lookup(element_type)
    return np.dtype(found.numpy) if found and found.numpy else np.dtype(np.float32)


def _make_op_class(layer: EmulatedLayer, bindings, failures: list):
    """A Python openvino.Op whose evaluate() runs the layer's MYRIAD binding on the SHAVE emulator."""
    import openvino as ov
    from openvino import DiscreteTypeInfo, Op

    from kernelkit.kernel.emulator.run import emulate

    class EmulatedOp(Op):
        def __init__(self, inputs=None, attrs=None):
            super().__init__(self)
            # String defaults make OpenVINO hand every <data> value over as text, as the plugin reads it.
            self._attrs = {k: "" for k in layer.attrs} if attrs is None else dict(attrs)
            if inputs is not None:
                self.set_arguments(inputs)
                self.constructor_validate_and_infer_types()

        @staticmethod
        def get_type_info():
            return DiscreteTypeInfo(layer.ext_type, EXTENSION_VERSION)

        def validate_and_infer_types(self):
            for index, (etype, dims) in enumerate(layer.outputs):
                self.set_output_type(index, ov.Type(_element_dtype(etype)), ov.PartialShape(dims))

        def clone_with_new_inputs(self, new_inputs):
            return EmulatedOp(new_inputs, self._attrs)

        def visit_attributes(self, visitor):
            visitor.on_attributes(self._attrs)
            return True

        def has_evaluate(self):
            return True

        def evaluate(self, outputs, inputs):
            arrays = [np.array(t.data) for t in inputs]
            try:
                result = emulate(bindings, layer.type, arrays, {**self._attrs, **layer.absorbed},
                                 output_shapes=[tuple(d) for _, d in layer.outputs])
            except Exception as exc:       # reported after inference: OpenVINO would hide it
                failures.append((layer, exc))
                return False
            layer.calls += 1
            for index, array in enumerate(result.outputs):
                outputs[index].shape = list(array.shape)
                outputs[index].data[...] = np.asarray(array).astype(outputs[index].data.dtype)
            return True

    EmulatedOp.__name__ = layer.ext_type
    return EmulatedOp


def emulated_copy(model, bindings_path: Path):
    """An in-memory copy of `model` whose custom-bound layers are extension ops, and those layers."""
    from kernelkit.kernel.bindings import myriad_read, myriad_select
    from kernelkit.facts.knowledge import legacy_params

    bindings = myriad_read.load(bindings_path)
    copy = model.copy()
    emulated = []
    for layer in copy.layers:
        attrs = dict(layer.attrs.items())
        consts = {}
        for index, port in enumerate(layer.inputs):
            producer = copy.producer(layer, port.id)
            if producer is not None and producer[0].type.lower() == "const":
                consts[index] = copy.const_value(producer[0])
        params = legacy_params(layer.type, attrs, consts)
        if layer.type in ("Parameter", "Result", "Const") or myriad_select.select(bindings, layer.type, params) is None:
            continue
        ext_type = f"{EXTENSION_PREFIX}{len(emulated)}"
        emulated.append(EmulatedLayer(layer.name, layer.type, ext_type, attrs,
                                      [(p.element_type or "f32", p.dims) for p in layer.outputs],
                                      absorbed={k: v for k, v in params.items() if k not in attrs}))
        layer.type = ext_type
        layer.version = EXTENSION_VERSION
    return copy, emulated


# ---- inputs and references --------------------------------------------------------------------------------

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
        dtype = _element_dtype(etype)
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


def preprocess_like_patch(inputs: list[np.ndarray], model, options: dict) -> list[np.ndarray]:
    """Apply the patch's recorded preprocessing in numpy, so the original model sees what the patched one
    computes from the same raw inputs (U8 -> float, reversed channels, (x - mean) / scale)."""
    if not options or not any(options.get(k) for k in ("mean", "scale", "reverse_channels", "u8_input")):
        return inputs
    names = options.get("inputs") or []
    result = []
    for param, array in zip(model.parameters(), inputs):
        chosen = param.name in names if names else (array.ndim == 4 and (array.dtype.kind == "f" or
                                                                         options.get("u8_input")))
        if not chosen:
            result.append(array)
            continue
        x = array.astype(np.float32)
        if options.get("reverse_channels"):
            x = x[:, ::-1]
        channels = x.shape[1]
        for key, fn in (("mean", np.subtract), ("scale", np.divide)):
            values = options.get(key)
            if values:
                per = np.array(values * (channels if len(values) == 1 else 1), np.float32).reshape(1, -1, 1, 1)
                x = fn(x, per)
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

    @property
    def passed(self) -> bool:
        return not self.problems and bool(self.comparisons) and all(c.passed for c in self.comparisons)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        return {"outdir": str(self.outdir), "reference": self.reference, "passed": self.passed,
                "emulated_layers": [{"name": e.name, "type": e.type, "calls": e.calls} for e in self.emulated],
                "problems": self.problems, "outputs": [c.to_dict() for c in self.comparisons]}


def _read_report(outdir: Path) -> dict:
    path = outdir / "patch-report.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise KernelkitError(f"unreadable patch report: {exc}", path=path) from None


def run_patched(outdir, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list[EmulatedLayer], list[str]]:
    """Outputs of OUTDIR/model.xml on CPU with its custom-bound layers emulated, the layers, and problems."""
    from kernelkit.ir.load import load_model

    outdir = Path(outdir)
    model = load_model(outdir / "model.xml")
    bindings_path = outdir / "custom_layers.xml"
    extensions, emulated, failures = [], [], []
    run_model = model
    if bindings_path.is_file():
        run_model, emulated = emulated_copy(model, bindings_path)
        extensions = [_make_op_class(layer, bindings_path, failures) for layer in emulated]
    try:
        outputs = run_openvino(run_model.to_xml_bytes(), run_model.bin_data, inputs, extensions=extensions,
                               path=outdir / "model.xml")
    except KernelkitError:
        if failures:
            outputs = []
        else:
            raise
    problems = [f"emulated layer {layer.name!r} ({layer.type}) failed: {exc}" for layer, exc in failures]
    return outputs, emulated, problems


def verify(outdir, *, inputs=None, expected=None, reference=None, seed: int = 0, atol: float | None = None,
           rtol: float | None = None) -> VerifyResult:
    """Compare the patched model in OUTDIR (custom layers emulated) with expected outputs or a reference
    model (default: the original model recorded in patch-report.json, on the same inputs)."""
    from kernelkit.runners.compare import DEFAULT_ATOL, DEFAULT_RTOL, compare
    from kernelkit.ir.load import load_model

    outdir = Path(outdir)
    if not (outdir / "model.xml").is_file():
        raise KernelkitError("folder has no model.xml", path=outdir,
                             hint="pass the output folder of `kernelkit patch`")
    if expected is not None and reference is not None:
        raise KernelkitError("give --expected or --reference, not both", where="--expected/--reference")
    report = _read_report(outdir)
    patched = load_model(outdir / "model.xml")
    feed = _load_npz(inputs, "in", "IN.npz") if inputs is not None else random_inputs(patched, seed)
    actual, emulated, problems = run_patched(outdir, feed)

    if expected is not None:
        wanted = _load_npz(expected, "out", "EXP.npz")
        label = f"expected outputs {expected}"
    else:
        source = report.get("source", {})
        ref_path = Path(reference) if reference is not None else (Path(source["model"]) if source.get("model")
                                                                  else None)
        if ref_path is None:
            raise KernelkitError("no reference: the folder has no patch-report.json naming the original model",
                                 path=outdir, hint="pass --expected EXP.npz or --reference MODEL")
        wanted, label = _run_reference(ref_path, reference is not None, source, report, feed, patched)
    result = VerifyResult(outdir, label, emulated=emulated, problems=problems)
    if actual and len(actual) != len(wanted):
        result.problems.append(f"the patched model has {len(actual)} outputs, the reference {len(wanted)}")
    names = [r.name for r in _result_producers(patched)]
    if patched.version == 10:
        actual = [_undo_v10_output_type(a, result_layer) for a, result_layer in zip(actual, patched.results())]
    for index, (a, e) in enumerate(zip(actual, wanted)):
        name = f"out{index}" + (f" ({names[index]})" if index < len(names) else "")
        result.comparisons.append(compare(a, e, atol=DEFAULT_ATOL if atol is None else atol,
                                          rtol=DEFAULT_RTOL if rtol is None else rtol, name=name))
    return result


def _run_reference(ref_path: Path, explicit: bool, source: dict, report: dict, feed, patched):
    """The reference outputs and their label. The patch's --input-shape and --input-value apply to any
    reference, so a model with frozen inputs is compared with the original at those values (its If and Loop
    run by OpenVINO, not folded). An ONNX original OpenVINO cannot convert (a dead branch it cannot
    shape-infer) runs on onnx's reference evaluator instead."""
    from kernelkit.ir.load import load_model
    from kernelkit.ir.onnx_import import ConversionFailed

    shapes, values = source.get("input_shapes") or None, source.get("input_values") or None
    cut = source.get("outputs") or None
    options = report.get("preprocessing", {})
    try:
        original = load_model(ref_path, shapes, values, outputs=cut)
    except ConversionFailed:
        # The patched model's inputs carry the original's names (preprocessing goes after them).
        outputs = run_onnx_reference(ref_path, shapes, values, preprocess_like_patch(feed, patched, options),
                                     cut=cut)
        return outputs, f"original model {ref_path} on onnx's reference evaluator (OpenVINO cannot convert it)"
    except KernelkitError as exc:
        if not explicit or not (shapes or values):
            raise
        raise KernelkitError(f"the reference cannot take the patch's recorded inputs: {exc.message}",
                             path=ref_path, where="--reference",
                             hint="the reference needs the inputs patch-report.json names under source "
                                  "(input_shapes, input_values); or pass --expected EXP.npz") from None
    # The reference is the model before patching: it gets the inputs after the recorded preprocessing.
    ref_inputs = preprocess_like_patch(feed, original, options)
    wanted = run_openvino(original.to_xml_bytes(), original.bin_data, ref_inputs, path=ref_path)
    return wanted, f"original model {ref_path} on OpenVINO CPU (f32)"


def run_onnx_reference(path, shapes, values, inputs: list[np.ndarray], cut=None) -> list[np.ndarray]:
    """Outputs of the ONNX model at `path` on onnx's reference evaluator, with `values` frozen and
    `shapes` set, ended at the tensors `cut` names (`--output`); inputs in model input order."""
    from onnx.reference import ReferenceEvaluator

    from kernelkit.ir.cut import cut_onnx
    from kernelkit.ir.onnx_freeze import explicit_loop_conditions, freeze_onnx, input_dtype, load_onnx, real_inputs

    source = load_onnx(path)
    if cut:
        source = cut_onnx(source, cut, path=path)
    model, _ = freeze_onnx(source, input_shapes=shapes, input_values=values, fold=False, path=path)
    explicit_loop_conditions(model)
    names = real_inputs(model.graph)
    if len(names) != len(inputs):
        raise KernelkitError(f"the reference has {len(names)} inputs but {len(inputs)} arrays were given",
                             path=path, hint="IN.npz must hold in0, in1, ... one per model input, in order")
    feeds = {info.name: np.asarray(array).astype(input_dtype(info), copy=False) for info, array in zip(names, inputs)}
    try:
        with np.errstate(all="ignore"):            # its sigmoid overflows exp() on large inputs, harmlessly
            return [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]
    except Exception as exc:             # the evaluator's own errors are of many types
        raise KernelkitError(f"onnx's reference evaluator cannot run the reference either: {exc}", path=path,
                             hint="pass --expected EXP.npz with outputs computed elsewhere") from None


def _undo_v10_output_type(array: np.ndarray, result_layer) -> np.ndarray:
    """OpenVINO reads IR v10 outputs the legacy way (integers as i32, other non-f32 types as f32, notes §1.8);
    give an output back the element type its Result has in the XML when that loses nothing."""
    etype = result_layer.inputs[0].element_type if result_layer.inputs else None
    if etype is None or etype in ("f32",):
        return array
    dtype = _element_dtype(etype)
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
        verdict = "PASS" if c.passed else "FAIL"
        lines.append(f"  {verdict} {c.name} {list(c.shape)} {c.dtype}: max abs {c.abs_error.max:.3g}, "
                     f"max rel {c.rel_error.max:.3g}, {c.mismatches}/{c.elements} outside "
                     f"atol={c.atol:g} rtol={c.rtol:g}" + ("" if c.passed else f" - {c.reason}"))
    for problem in result.problems:
        lines.append(f"  FAIL {problem}")
    lines.append("PASSED: every output matches" if result.passed else "FAILED")
    return "\n".join(lines)
