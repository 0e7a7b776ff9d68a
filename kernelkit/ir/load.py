"""Entry points: load an IR or ONNX model, and fix dynamic input shapes (`--input-shape NAME=D0,D1,...`)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from kernelkit.core import limits, xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input
from kernelkit.ir.model import MAX_XML_BYTES, IRModel, format_shape


def parse_input_shape(text: str) -> tuple[str, list[int]]:
    """`NAME=1,3,224,224` -> ("NAME", [1, 3, 224, 224]); `NAME=scalar` -> ("NAME", [])."""
    name, sep, dims_text = text.rpartition("=")
    if not sep or not name:
        raise KernelkitError(f"--input-shape {text!r} is not NAME=D0,D1,...", where="--input-shape",
                             hint="e.g. --input-shape images=1,3,224,224 (or NAME=scalar for a 0-d input)")
    dims_text = dims_text.strip()
    if dims_text.lower() == "scalar":
        return name, []
    try:
        dims = [int(part) for part in dims_text.replace("x", ",").split(",")]
    except ValueError:
        raise KernelkitError(f"--input-shape {text!r}: dimensions must be positive integers",
                             where="--input-shape", hint="MYRIAD needs static shapes, e.g. 1,3,224,224") from None
    if any(d <= 0 for d in dims):
        raise KernelkitError(f"--input-shape {text!r}: dimensions must be positive integers",
                             where="--input-shape", hint="MYRIAD needs static shapes, e.g. 1,3,224,224")
    return name, dims


def parse_input_shapes(items) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    for item in items or ():
        name, dims = parse_input_shape(item)
        shapes[name] = dims
    return shapes


def load_model(path, input_shapes: dict[str, list[int]] | None = None, input_values: dict[str, list] | None = None,
               *, fold: bool = False, outputs: list[str] | None = None) -> IRModel:
    """An IR (.xml with its .bin) or an ONNX model (converted with OpenVINO in memory), with shapes fixed.

    input_values (`--input-value`) replace those inputs by constants. fold: for ONNX, also fold what became
    constant, If and Loop included (`kernelkit.ir.onnx_freeze`). What was frozen and folded is
    `model.freeze_log` (a FoldLog, or None when nothing was asked or needed). outputs (`--output`): the
    tensors that become the model's outputs, what feeds none of them dropped (`kernelkit.ir.cut`)."""
    path = Path(path)
    if path.is_dir():
        raise KernelkitError("expected a model file, got a folder", path=path,
                             hint="pass the IR .xml or the .onnx file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from kernelkit.ir.onnx_import import ConversionFailed, check_onnx_file, convert_onnx

        check_onnx_file(path)

        log = frozen = None
        if outputs:
            from kernelkit.ir.cut import cut_onnx
            from kernelkit.ir.onnx_freeze import load_onnx

            frozen = cut_onnx(load_onnx(path), outputs, path=path)
        if input_values or fold:
            from kernelkit.ir.onnx_freeze import freeze_onnx, has_control_flow, load_onnx

            source = frozen if frozen is not None else load_onnx(path)
            if input_values or has_control_flow(source):
                frozen, log = freeze_onnx(source, input_shapes=input_shapes, input_values=input_values, fold=fold,
                                          path=path)
        shapes = {k: v for k, v in (input_shapes or {}).items() if k not in (input_values or {})}
        try:
            xml, weights = convert_onnx(path, shapes or None, model=frozen)
        except ConversionFailed as exc:
            if log is None or not log.options():
                raise
            raise ConversionFailed(exc.message, path=path, hint="If/Loop left in the model may be what OpenVINO "
                                   f"fails on; fold them with {' '.join(log.options())}") from None
        model = IRModel.from_bytes(xml, weights, path=path)
        model.source_format = "onnx"
        model.freeze_log = log
        return model
    if suffix != ".xml":
        raise KernelkitError(f"unknown model format {suffix or '(no suffix)'!r}", path=path,
                             hint="pass an OpenVINO IR .xml (with its .bin) or an .onnx file")
    xml = xmlsafe.read_limited(path, MAX_XML_BYTES)
    bin_path = path.with_suffix(".bin")
    weights = None
    if os.path.lexists(bin_path):
        weights = read_input(bin_path, limits.WEIGHTS_BYTES.value(), what="weights file (.bin)",
                             limit=limits.WEIGHTS_BYTES)
    model = IRModel.from_bytes(xml, weights, path=path, bin_path=bin_path)
    model.source_format = "ir"
    model.freeze_log = None
    if input_values:
        from kernelkit.ir.freeze import freeze_ir
        from kernelkit.ir.onnx_freeze import FoldLog

        model.freeze_log = FoldLog(frozen=freeze_ir(model, input_values, input_shapes))
    if input_shapes or input_values:
        apply_input_shapes(model, {k: v for k, v in (input_shapes or {}).items() if k not in (input_values or {})})
    if outputs:
        from kernelkit.ir.cut import cut_ir

        cut_ir(model, outputs)
    if fold:
        _refuse_ir_control_flow(model)
    return model


def _refuse_ir_control_flow(model: IRModel) -> None:
    """IR sub-graph ops are not inlined (documented): say so for each, and where the fold does happen."""
    from kernelkit.ir.onnx_freeze import FoldLog

    for layer in model.layers:
        if layer.type in ("If", "Loop", "TensorIterator"):
            if model.freeze_log is None:
                model.freeze_log = FoldLog()
            model.freeze_log.refusals.append(
                (layer.name, layer.type, f"kernelkit inlines {layer.type} only in ONNX models; patch the ONNX model "
                                         "this IR came from (with --input-value / --input-shape)"))


def match_parameters(model: IRModel, shapes: dict, option: str = "--input-shape"):
    """[(Parameter layer, value)] for each NAME of `shapes` (a layer name or one of its tensor names)."""
    params = model.parameters()
    matched = []
    for name, dims in shapes.items():
        found = next((p for p in params if p.name == name), None)
        if found is None:
            found = next((p for p in params if p.outputs and name in p.outputs[0].names), None)
        if found is None:
            known = ", ".join(p.name for p in params) or "(none)"
            raise KernelkitError(f"{option} names {name!r}, which is not an input of the model",
                                 path=model.path, where=option, hint=f"inputs are: {known}")
        matched.append((found, dims))
    return matched


def apply_input_shapes(model: IRModel, shapes: dict[str, list[int]]) -> None:
    """Make the named Parameters static and re-infer every port's dims with OpenVINO's shape inference.

    OpenVINO reads the model from memory, reshapes it, and the static output dims of each op are copied
    back into the XML ports of the layer with the same name (input ports take their producer's dims).
    Nothing else in the XML changes. Layers OpenVINO does not report (dropped as dead code) keep theirs.
    """
    import openvino as ov

    matched = match_parameters(model, shapes)
    for layer, dims in matched:
        layer.attrs["shape"] = format_shape(dims)
        layer.outputs[0].dims = dims
    core = ov.Core()
    try:
        weights = ov.Tensor(np.frombuffer(model.bin_data or b"\0", dtype=np.uint8).copy())
        ov_model = core.read_model(model=model.to_xml_bytes().decode("utf-8"), weights=weights)
        if matched:
            ov_model.reshape({p.output(0): ov.PartialShape(_param_shape(model, p.get_friendly_name()))
                              for p in ov_model.get_parameters() if model.find(p.get_friendly_name())})
    except RuntimeError as exc:
        from kernelkit.ir.onnx_import import openvino_error_text

        raise KernelkitError(f"OpenVINO cannot apply the input shapes: {openvino_error_text(exc)}", path=model.path,
                             where="--input-shape", hint="check the shapes against what the model expects") from None
    inferred: dict[str, list[list[int]]] = {}
    for op in ov_model.get_ordered_ops():
        inferred.setdefault(op.get_friendly_name(), [
            [d.get_length() if d.is_static else -1 for d in op.get_output_partial_shape(i)]
            if op.get_output_partial_shape(i).rank.is_static else None
            for i in range(op.get_output_size())])
    for layer in model.topological_order():
        outs = inferred.get(layer.name)
        if outs is not None and len(outs) == len(layer.outputs):
            for port, dims in zip(layer.outputs, outs):
                if dims is not None and port.dims != dims:
                    port.dims = dims
        for port in layer.inputs:
            found = model.producer(layer, port.id)
            if found and port.dims != found[1].dims:
                port.dims = found[1].dims


def _param_shape(model: IRModel, name: str) -> list[int]:
    layer = model.find(name)
    return [d if d >= 0 else -1 for d in layer.outputs[0].dims]


def write_temp_ir(model: IRModel, folder: str | Path | None = None) -> Path:
    """Save `model` into a fresh temporary folder (for tools that need files); returns the .xml path."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="kernelkit-ir-"))
    xml_path, _ = model.save(folder / "model.xml")
    return xml_path
