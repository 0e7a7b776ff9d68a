"""`inspect` as one call: load a model as patch would see it, list its blockers, and ask the real plugin."""

from __future__ import annotations

import tempfile
from pathlib import Path


def load_for_inspection(model_path: Path, shapes: dict, values: dict, outputs: list[str]):
    """The model to inspect; with values, frozen and folded as patch would. An ONNX model OpenVINO cannot
    convert because of its If/Loop gets the options that would fold them as a hint."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.ir.load import load_model
    from kernelkit.ir.onnx_import import ConversionFailed

    try:
        return load_model(model_path, shapes or None, values or None, fold=bool(values), outputs=outputs or None)
    except ConversionFailed as exc:
        if values or Path(model_path).suffix.lower() != ".onnx":
            raise
        from kernelkit.ir.onnx_fold import foldable_options

        options = foldable_options(model_path, shapes)
        if not options:
            raise
        raise KernelkitError(exc.message, path=model_path, where="inspect",
                             hint=f"the model has If/Loop that patch can fold: inspect (and patch) again with "
                                  f"{' '.join(options)}") from None


def oracle_verdict(model, model_path: Path, modified: bool, options_given: bool = False,
                   timeout: float | None = None) -> dict:
    """The real plugin's word on the model as `inspect --oracle myriad` reports it (never raises for a
    toolchain that is missing: the report says why there is no verdict)."""
    from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
    from kernelkit.facts.target import compiler_target
    from kernelkit.ir.model import write_temp_ir
    from kernelkit.runners.oracle import plugin_verdict

    target = compiler_target()
    if model_path.suffix.lower() == ".onnx":
        return straight_verdict(model_path, options_given, timeout)
    if model.version not in target.ir_versions:
        return {"available": False, "note": f"the {target} plugin reads IR v{target.ir_version} only: run "
                                            f"`kernelkit patch --target {target}` first and inspect the patched "
                                            "model.xml"}
    try:
        if modified:
            with tempfile.TemporaryDirectory(prefix="kernelkit-inspect-") as tmp:
                verdict = plugin_verdict(write_temp_ir(model, tmp))
        else:
            verdict = plugin_verdict(model_path)
    except ToolchainUnavailable:
        return {"available": False, "note": "the oracle needs the legacy toolchain: run `kernelkit toolchain setup`"}
    except KernelkitError as exc:      # e.g. an op its reader cannot create: the table already says why
        return {"available": False, "note": f"the {target} plugin could not judge this model: {exc.message}"}
    return {"available": True, "plugin": target.name, "compiled": bool(verdict.compiled),
            "message": verdict.message, "unsupported": [list(u) for u in verdict.unsupported]}


IMPLICIT_COMPILE_SECONDS = 120.0     # the straight compile inspect runs unasked never holds it up longer


def straight_verdict(model_path: Path, options_given: bool, timeout: float | None = None) -> dict:
    """The real plugin's word on an ONNX file as it is (its 2021.4 reader takes ONNX): what `kernelkit compile
    FILE` would say, before any patch. `options_given`: --input-shape/-value/--output, which a straight compile
    cannot apply (the verdict is the file's)."""
    from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
    from kernelkit.facts.target import compiler_target
    from kernelkit.myriad.refusal import model_layer_types
    from kernelkit.runners.oracle import plugin_verdict

    target = compiler_target()
    try:
        verdict = plugin_verdict(model_path, **({"timeout": timeout} if timeout else {}))
    except ToolchainUnavailable:
        return {"available": False, "note": "the oracle needs the legacy toolchain: run `kernelkit toolchain setup`"}
    except KernelkitError as exc:
        return {"available": False, "note": f"the {target} plugin could not judge this file: {exc.message}"}
    types = model_layer_types(model_path)
    unsupported = [[name, kind or types.get(name, ""), message] for name, kind, message in verdict.unsupported]
    found = {"available": True, "plugin": target.name, "compiled": bool(verdict.compiled), "straight": True,
             "message": verdict.message, "unsupported": unsupported}
    if options_given:
        found["note"] = "the verdict on the file as it is: a straight compile takes no --input-shape/-value/--output"
    return found


def inspect_model(model_path, target, *, input_shapes: dict | None = None, input_values: dict | None = None,
                  outputs: list[str] | None = None, oracle: bool = False) -> dict:
    """The `kernelkit.inspect/1` report of the model file at `model_path` for `target`. An ONNX file gets the
    real plugin's verdict on its straight compile wherever the toolchain is provisioned, asked or not."""
    from kernelkit.facts.target import get_target
    from kernelkit.model.blockers import inspect_report
    from kernelkit.myriad import toolchain

    model_path = Path(model_path)
    shapes, values, outputs = input_shapes or {}, input_values or {}, outputs or []
    model = load_for_inspection(model_path, shapes, values, outputs)
    verdict = None
    onnx = model_path.suffix.lower() == ".onnx"
    timeout = None
    if onnx and not oracle and get_target(target).compiler and toolchain.locate().ready():
        oracle, timeout = True, IMPLICIT_COMPILE_SECONDS
    if oracle:
        modified = bool(shapes or values or outputs) or model_path.suffix.lower() != ".xml"
        verdict = oracle_verdict(model, model_path, modified, bool(shapes or values or outputs), timeout)
    return inspect_report(model, str(target), oracle=verdict)
