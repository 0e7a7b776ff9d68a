"""Fold patcher: replace layers computed only from constants by the constants they compute.

The MYRIAD plugin folds constants itself, but only after its IR reader and op checks: a `Range-4` or an
opset8 `Gather` on a `ShapeOf` of a static tensor blocks the model before folding could remove it (ONNX
exports are full of such shape arithmetic). OpenVINO CPU computes each folded layer, so the values are
exactly what the layer would produce. `ShapeOf` of a tensor with static dims folds to those dims.
Decompression Converts (a Const feeding a Convert) are kept, and outputs above MAX_ELEMENTS stay computed.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.passes.base import PatchContext, describe
from kernelkit.ir.graph import add_const, move_consumers, out, remove_with_dead_inputs, take_over_name

NAME = "fold"
MAX_ELEMENTS = 1 << 16
_NEVER = {"parameter", "const", "result", "readvalue", "assign", "randomuniform", "multinomial"}
_PLAIN_CHILDREN = {"data", "input", "output", "rt_info"}


def _is_const(model, layer, port) -> bool:
    found = model.producer(layer, port.id)
    return found is not None and found[0].type.lower() == "const"


def _static(dims) -> bool:
    return all(d >= 0 for d in dims)


def _foldable(model, layer) -> bool:
    kind = layer.type.lower()
    if kind in _NEVER or not layer.outputs or layer.version in ("extension", "experimental"):
        return False
    if any(child.tag not in _PLAIN_CHILDREN for child in layer.element):
        return False                       # sub-graph bodies (Loop, If, TensorIterator)
    if not all(_static(p.dims) and int(np.prod(p.dims, dtype=np.int64)) <= MAX_ELEMENTS for p in layer.outputs):
        return False
    if kind == "convert" and model.iter_input_types(layer) and next(model.iter_input_types(layer))[1] == "f16":
        return False                       # f16 weights decompressed to f32: the IR's own storage form
    if kind == "shapeof":
        found = model.producer(layer, layer.inputs[0].id)
        return found is not None and _static(found[1].dims)
    return bool(layer.inputs) and all(_is_const(model, layer, p) for p in layer.inputs)


def _evaluate(model, layer) -> list[np.ndarray]:
    """Run the one layer on OpenVINO CPU with its constant inputs."""
    from kernelkit.ir.model import IRModel
    from kernelkit.ir.openvino_run import run_openvino

    if layer.type.lower() == "shapeof":
        dims = model.producer(layer, layer.inputs[0].id)[1].dims
        return [np.array(dims, dtype=np.int32 if layer.attrs.get("output_type") == "i32" else np.int64)]
    single = IRModel.from_bytes(b'<?xml version="1.0"?>\n<net name="fold" version="11">\n<layers>\n</layers>\n'
                                b'<edges>\n</edges>\n</net>\n', b"")
    consts = [out(single.add_const(model.const_value(model.producer(layer, p.id)[0]), f"in{i}"))
              for i, p in enumerate(layer.inputs)]
    copy = single.add_layer(layer.type, layer.version, "folded", dict(layer.attrs.items()),
                            inputs=[(c.precision, c.dims) for c in consts],
                            outputs=[(p.precision, p.dims) for p in layer.outputs])
    for index, value in enumerate(consts):
        single.connect(value.layer, value.port.id, copy, copy.inputs[index].id)
    for index, port in enumerate(copy.outputs):
        result = single.add_layer("Result", "opset1", f"out{index}", inputs=[(port.precision, port.dims)])
        single.connect(copy, port.id, result, result.inputs[0].id)
    return run_openvino(single.to_xml_bytes(), single.bin_data, [])


def apply(ctx: PatchContext) -> None:
    from kernelkit.core.errors import KernelkitError

    model = ctx.model
    for layer in list(model.topological_order()):
        if not _foldable(model, layer):
            continue
        try:
            values = _evaluate(model, layer)
        except KernelkitError as exc:      # OpenVINO cannot run it alone: leave it to the other patchers
            ctx.refuse(NAME, layer, f"cannot be evaluated on its own: {exc.message}")
            continue
        before, name = describe(layer), layer.name
        for index, (port, value) in enumerate(zip(layer.outputs, values)):
            dtype = _port_dtype(port)
            const = add_const(model, np.asarray(value).astype(dtype).reshape(port.dims), f"{name}/folded{index}")
            const.port.names = port.names
            port.names = []
            move_consumers(model, out(layer, index), const)
            if index == 0:
                take_over_name(model, layer, const.layer)
        remove_with_dead_inputs(model, layer)
        ctx.record(NAME, name, before, f"Const {_shape_text(values)}")


def _port_dtype(port):
    from kernelkit.ir import elements

    found = elements.lookup(port.precision)
    return np.dtype(found.numpy) if found and found.numpy else np.dtype(np.float32)


def _shape_text(values) -> str:
    return ", ".join(str(list(np.shape(v))) for v in values)
