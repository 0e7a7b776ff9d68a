"""`--input-shape NAME=D0,D1,...`: make dynamic inputs of an IR static and re-infer every port's dims; the upper
bound of a data-dependent dim (NonZero, NonMaxSuppression) in place of its -1.

For ONNX the shapes go to OpenVINO's conversion instead (`kernelkit.ir.onnx_import`).
"""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.model import IRModel, format_shape
from kernelkit.ir.onnx_import import openvino_error_text


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
        raise KernelkitError(f"OpenVINO cannot apply the input shapes: {openvino_error_text(exc)}", path=model.path,
                             where="--input-shape", hint="check the shapes against what the model expects") from None
    _copy_inferred(model, ov_model)


# A bound past this is no buffer size (an unbounded dim OpenVINO reports as a huge interval).
_MAX_BOUND = 2 ** 31 - 1


def _dim(d, bounded: bool) -> int:
    if d.is_static:
        return d.get_length()
    top = d.get_max_length()
    return top if bounded and 0 <= top <= _MAX_BOUND else -1


def _sets_a_bound(op) -> bool:
    """A data-dependent op the plugin sizes by its upper bound (facts.op_kinds.DATA_DEPENDENT_SHAPE_OPS)."""
    from kernelkit.facts.op_kinds import DATA_DEPENDENT_SHAPE_OPS

    kind = op.get_type_name()
    if kind not in DATA_DEPENDENT_SHAPE_OPS:
        return False
    if kind == "NonMaxSuppression" and op.get_input_size() > 2:
        return op.input_value(2).get_node().get_type_name() == "Constant"
    return True


def _copy_inferred(model: IRModel, ov_model) -> None:
    """Copy OpenVINO's output dims of each op into the XML ports of the layer with the same name (input ports
    take their producer's dims). A dim whose size depends on the data (NonZero's, NonMaxSuppression's count,
    and the ops that follow them) gets its upper bound, as Model Optimizer 2021.4 wrote it and the MYRIAD
    plugin sizes its buffers; a dim set by an input's value (a Slice's ends fed at run time) stays dynamic,
    for --input-value to settle."""
    inferred: dict[str, list[list[int]]] = {}
    bounded_ops: set = set()
    for op in ov_model.get_ordered_ops():
        bounded = _sets_a_bound(op) or any(
            source.get_node() in bounded_ops and source.get_partial_shape().is_dynamic
            for source in (op.input_value(i) for i in range(op.get_input_size())))
        if bounded:
            bounded_ops.add(op)
        inferred.setdefault(op.get_friendly_name(), [
            [_dim(d, bounded) for d in op.get_output_partial_shape(i)]
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


def bound_data_dependent_dims(model: IRModel) -> None:
    """Give each dynamic dim that depends on the data (the outputs of NonZero, NonMaxSuppression and what follows
    them) OpenVINO's upper bound: the 2021.4 reader takes no -1, and the plugin sizes those outputs by the bound.
    Reads the model into OpenVINO only when a layer past the inputs has a dynamic dim."""
    if not any(d < 0 for layer in model.layers if layer.type != "Parameter"
               for port in layer.outputs for d in port.dims):
        return
    import openvino as ov

    try:
        weights = ov.Tensor(np.frombuffer(model.bin_data or b"\0", dtype=np.uint8).copy())
        ov_model = ov.Core().read_model(model=model.to_xml_bytes().decode("utf-8"), weights=weights)
    except RuntimeError:
        return          # whoever runs the model next reports OpenVINO's words; the dims stay as they are
    _copy_inferred(model, ov_model)


def _param_shape(model: IRModel, name: str) -> list[int]:
    layer = model.find(name)
    return [d if d >= 0 else -1 for d in layer.outputs[0].dims]
