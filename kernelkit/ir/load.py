"""Load an IR, ONNX, TFLite, TensorFlow or Paddle model with the options of inspect and patch applied: `--input-value` (`freeze`, and
`onnx_fold` for ONNX), `--output` (`cut`), `--input-shape` (`reshape`), `--head yolo` (`yolo_head`). The top of the ir layer: nothing in it
imports this module."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from kernelkit.core import limits, xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input
from kernelkit.ir.cut import cut_ir, cut_onnx
from kernelkit.ir.framework_import import convert_framework, source_format
from kernelkit.ir.freeze import freeze_ir
from kernelkit.ir.model import MAX_XML_BYTES, IRModel
from kernelkit.ir.onnx_fold import FoldLog, freeze_onnx
from kernelkit.ir.onnx_graph import has_control_flow, load_onnx, real_inputs, set_static_shape
from kernelkit.ir.onnx_resize import has_dropped_attributes, rewrite_resizes
from kernelkit.ir.onnx_import import ConversionFailed, check_onnx_file, convert_onnx
from kernelkit.ir.reshape import apply_input_shapes, bound_data_dependent_dims
from kernelkit.ir.yolo_head import apply_head, parse_head


_REUSE: list[dict] = []          # active `reuse_conversions` scopes: conversion key -> (xml, weights)


@contextlib.contextmanager
def reuse_conversions():
    """Within this scope an ONNX file converted again with the same options gives the same IR bytes: OpenVINO
    names the nodes it makes from a per-process counter (`MVN_335205`, then `MVN_337665`), and a patch made
    again (kernelkit.doctor.confirm's fixes) must name the same layers as the first."""
    _REUSE.append({})
    try:
        yield
    finally:
        _REUSE.pop()


def _reused(key, convert):
    """`convert()`, or within a `reuse_conversions` scope the bytes it gave for the same key."""
    if not _REUSE:
        return convert()
    memo = _REUSE[-1]
    if key not in memo:
        memo.clear()                 # one model at a time: the IR bytes can be large
        memo[key] = convert()
    return memo[key]


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _convert(path: Path, shapes, frozen):
    key = _file_key(path) + (repr(sorted((shapes or {}).items())),
                             frozen.SerializeToString() if frozen is not None else None)
    return _reused(key, lambda: convert_onnx(path, shapes, model=frozen))


def load_model(path, input_shapes: dict[str, list[int]] | None = None, input_values: dict[str, list] | None = None,
               *, fold: bool = False, outputs: list[str] | None = None, head: str | None = None) -> IRModel:
    """An IR (.xml with its .bin), an ONNX model (converted with OpenVINO in memory) or a TFLite / TensorFlow /
    Paddle model (OpenVINO's frontends, `framework_import`; then edited as an IR), with shapes fixed.

    input_values (`--input-value`) replace those inputs by constants. fold: for ONNX, also fold what became
    constant, If and Loop included (`kernelkit.ir.onnx_fold`). What was frozen and folded is
    `model.freeze_log` (a FoldLog, or None when nothing was asked or needed). outputs (`--output`): the
    tensors that become the model's outputs, what feeds none of them dropped (`kernelkit.ir.cut`). head
    (`--head yolo`): an Ultralytics YOLO head rewritten to DepthAI's per-stride layout (`kernelkit.ir.yolo_head`);
    what the archive's head needs is `model.head` (None without). A data-dependent dim (NonZero's) holds its
    upper bound (`kernelkit.ir.reshape.bound_data_dependent_dims`)."""
    model = _load(path, input_shapes, input_values, fold=fold, outputs=outputs)
    bound_data_dependent_dims(model)
    model.head = apply_head(model, head, source_path=path) if parse_head(head) else None
    return model


def _load(path, input_shapes, input_values, *, fold: bool, outputs) -> IRModel:
    path = Path(path)
    framework = source_format(path)
    if path.is_dir() and framework is None:
        raise KernelkitError("expected a model file, got a folder", path=path,
                             hint="pass the IR .xml, the .onnx or .tflite file, or a TensorFlow SavedModel "
                                  "folder (holding saved_model.pb)")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        check_onnx_file(path)

        log = frozen = None
        resizes_done = False
        if outputs:
            frozen = cut_onnx(load_onnx(path), outputs, path=path)
        if input_values or fold:
            source = frozen if frozen is not None else load_onnx(path)
            if input_values or has_control_flow(source):
                frozen, log = freeze_onnx(source, input_shapes=input_shapes, input_values=input_values, fold=fold,
                                          path=path)
                resizes_done = fold
        if not resizes_done:
            # Resize attributes OpenVINO's conversion drops are made explicit on every path (inspect's too), so
            # no load computes without them. The nodes alone say whether it is needed: weights are read only then.
            source = frozen if frozen is not None else load_onnx(path, external_data=False)
            if has_dropped_attributes(source):
                if frozen is None:
                    source = load_onnx(path)
                if input_shapes:
                    for info in real_inputs(source.graph):
                        if info.name in input_shapes and info.name not in (input_values or {}):
                            set_static_shape(info, input_shapes[info.name])
                frozen, log = source, log if log is not None else FoldLog()
                rewrite_resizes(frozen, log, path=path)
        shapes = {k: v for k, v in (input_shapes or {}).items() if k not in (input_values or {})}
        try:
            xml, weights = _convert(path, shapes or None, frozen)
        except ConversionFailed as exc:
            if log is None or not log.options():
                raise
            raise ConversionFailed(exc.message, path=path, hint="If/Loop left in the model may be what OpenVINO "
                                   f"fails on; fold them with {' '.join(log.options())}") from None
        model = IRModel.from_bytes(xml, weights, path=path)
        model.source_format = "onnx"
        model.freeze_log = log
        return model
    if framework is not None:
        xml, weights, fmt = _reused(_file_key(path), lambda: convert_framework(path))
        model = IRModel.from_bytes(xml, weights, path=path)
        model.source_format = fmt
    elif suffix != ".xml":
        raise KernelkitError(f"unknown model format {suffix or '(no suffix)'!r}", path=path,
                             hint="pass an OpenVINO IR .xml (with its .bin), an .onnx, a .tflite, a TensorFlow "
                                  ".pb or SavedModel folder, or a PaddlePaddle .pdmodel or PIR .json program")
    else:
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
        model.freeze_log = FoldLog(frozen=freeze_ir(model, input_values, input_shapes))
    if input_shapes or input_values:
        apply_input_shapes(model, {k: v for k, v in (input_shapes or {}).items() if k not in (input_values or {})})
    if outputs:
        cut_ir(model, outputs)
    if fold:
        _refuse_ir_control_flow(model)
    return model


def _refuse_ir_control_flow(model: IRModel) -> None:
    """IR sub-graph ops are not inlined (documented): say so for each, and where the fold does happen."""
    for layer in model.layers:
        if layer.type in ("If", "Loop", "TensorIterator"):
            if model.freeze_log is None:
                model.freeze_log = FoldLog()
            model.freeze_log.refusals.append(
                (layer.name, layer.type, f"kernelkit inlines {layer.type} only in ONNX models; patch the ONNX model "
                                         "this IR came from (with --input-value / --input-shape)"))
