"""Small editing helpers over `kernelkit.ir.model.IRModel` shared by the patch passes.

A value in a graph is an `Out`: a producer layer and one of its output ports. Patchers build new layers
from `Out`s, move consumers from an old `Out` to a new one, and keep the legacy output name (the
producer's layer name, §1.4 of the IR notes) on whatever now feeds a Result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.op_kinds import COMPARISON_KINDS
from kernelkit.ir import elements

FLOAT_PRECISIONS = {"FP32", "FP16", "FP64", "BF16"}


def numpy_dtype(precision: str):
    """numpy dtype for a port precision ("FP16" -> float16)."""
    found = elements.lookup(precision)
    return np.dtype(found.numpy) if found and found.numpy else np.dtype(np.float32)


def precision_of(element_type: str) -> str:
    return elements.require(element_type).precision


@dataclass(frozen=True)
class Out:
    """One output port of one layer: a value of the graph."""

    layer: object
    port: object

    @property
    def precision(self) -> str:
        return self.port.precision

    @property
    def dims(self) -> list[int]:
        return list(self.port.dims)


def out(layer, index: int = 0) -> Out:
    return Out(layer, layer.outputs[index])


def input_of(model, layer, index: int) -> Out:
    """The value feeding input `index` of `layer`."""
    inputs = layer.inputs
    found = model.producer(layer, inputs[index].id) if index < len(inputs) else None
    if found is None:                         # an IR may declare a port no edge feeds
        raise KernelkitError(f"input {index} is not connected", path=model.path, where=layer.describe(),
                             hint="every input of a layer needs an <edge> into it")
    return Out(*found)


def const_value(model, value: Out):
    """The numpy value of a Const feeding a port (also through a Convert, as in FP16-compressed IRs where
    constants are `Const f16 -> Convert f32`), or None when it is computed."""
    kind = value.layer.type.lower()
    if kind in ("const", "constant"):
        return model.const_value(value.layer)
    if kind == "convert" and value.layer.inputs:
        inner = const_value(model, input_of(model, value.layer, 0))
        if inner is not None:
            return np.asarray(inner).astype(numpy_dtype(precision_of(value.layer.attrs["destination_type"])))
    return None


# The plugin folds these when every input is constant: TFLite-converted IRs feed convolution weights
# through `Const f16 -> Convert -> Reshape/Transpose`.
_CONSTANT_CHAIN = {"convert", "reshape", "squeeze", "unsqueeze", "transpose"}


def constant_source(model, value: Out):
    """The Const layer behind `value`, also through a chain of Convert/Reshape/Squeeze/Unsqueeze/Transpose
    whose other inputs are constants too; None when `value` is computed at run time."""
    layer = value.layer
    while layer.type.lower() not in ("const", "constant"):
        if layer.type.lower() not in _CONSTANT_CHAIN or not layer.inputs:
            return None
        if any(model.producer(layer, port.id) is None for port in layer.inputs):
            return None
        if any(constant_source(model, input_of(model, layer, i)) is None for i in range(1, len(layer.inputs))):
            return None
        layer = input_of(model, layer, 0).layer
    return layer


def constant_input(model, layer, index: int):
    """The numpy value of constant input `index`, or None when it is not a Const."""
    if index >= len(layer.inputs):
        return None
    return const_value(model, input_of(model, layer, index))


def folded_constant(model, value: Out):
    """The numpy value of `value` when it is a constant: a Const, or one behind the chain the plugin folds
    (Convert, Reshape, Squeeze, Unsqueeze, Transpose; see constant_source), in the value's own shape."""
    layer = value.layer
    kind = layer.type.lower()
    if kind in ("const", "constant"):
        return np.asarray(model.const_value(layer)).reshape(value.dims)
    if kind not in _CONSTANT_CHAIN or constant_source(model, value) is None:
        return None
    inner = folded_constant(model, input_of(model, layer, 0))
    if inner is None:
        return None
    if kind == "convert":
        return inner.astype(numpy_dtype(precision_of(layer.attrs["destination_type"])))
    if kind == "transpose":
        order = folded_constant(model, input_of(model, layer, 1))
        return None if order is None else np.transpose(inner, [int(a) for a in np.ravel(order)])
    return inner.reshape(value.dims)


def pool_window_pads(layer, in_dims, out_dims) -> list[tuple[int, int]] | None:
    """Per spatial axis of a pooling layer, how far its windows reach before the input's start and past its
    end (begin, end; negative: short of the end), from its attributes and output size, so auto_pad and the
    ceil rounding modes come out as the layer computes them. None for dynamic dims."""
    spatial = len(in_dims) - 2
    if spatial < 1 or len(out_dims) != len(in_dims) or any(d < 0 for d in list(in_dims) + list(out_dims)):
        return None

    def ints(name, default):
        values = [int(v) for v in layer.attrs.get(name, "").split(",") if v.strip()]
        return values if len(values) == spatial else [default] * spatial

    kernel, strides, dilations = ints("kernel", 1), ints("strides", 1), ints("dilations", 1)
    explicit = ints("pads_begin", 0)
    auto = layer.attrs.get("auto_pad", "explicit").lower()
    found = []
    for i in range(spatial):
        size, length = in_dims[2 + i], out_dims[2 + i]
        reach = (length - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1
        total = max(reach - size, 0)
        begin = {"same_upper": total // 2, "same_lower": (total + 1) // 2, "valid": 0}.get(auto, explicit[i])
        found.append((begin, reach - size - begin))
    return found


def add_const(model, array, name: str) -> Out:
    return out(model.add_const(np.asarray(array), model.unique_name(name)))


def add_op(model, type_: str, version: str, name: str, inputs: list[Out], attrs: dict | None = None,
           outputs: list[tuple[str, list[int]]] | None = None, *, unique: bool = True) -> object:
    """Add a layer fed by `inputs`; output precision/dims default to what `infer` computes."""
    attrs = {k: str(v) for k, v in (attrs or {}).items()}
    if outputs is None:
        outputs = [infer(model, type_, inputs, attrs)]
    layer = model.add_layer(type_, version, model.unique_name(name) if unique else name, attrs,
                            inputs=[(v.precision, v.dims) for v in inputs], outputs=outputs)
    for index, value in enumerate(inputs):
        model.connect(value.layer, value.port.id, layer, layer.inputs[index].id)
    return layer


def op(model, type_: str, name: str, inputs: list[Out], attrs: dict | None = None, version: str = "opset1",
       outputs=None) -> Out:
    """Add a single-output layer and return its value."""
    return out(add_op(model, type_, version, name, inputs, attrs, outputs))


def scalar_like(model, value: Out, number, name: str) -> Out:
    """A Const of `value`'s element type holding `number`, shaped to broadcast as a scalar (rank 0)."""
    dtype = numpy_dtype(value.precision)
    return add_const(model, np.array(number, dtype=dtype), name)


ELEMENTWISE = {"add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "squareddifference",
               "floormod", "mod", "logicaland", "logicalor", "logicalxor", "prelu"}
def broadcast_dims(shapes) -> list[int] | None:
    """Numpy broadcasting where -1 is a dynamic length (it meets 1 or itself; a static length wins, since the
    model is only valid when the two agree). None when the shapes cannot broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    dims = [1] * rank
    for shape in shapes:
        for i, d in enumerate((1,) * (rank - len(shape)) + tuple(shape)):
            have = dims[i]
            if d == 1 or d == have:
                continue
            if have == 1 or have == -1:
                dims[i] = d
            elif d != -1:
                return None
    return dims


def infer(model, type_: str, inputs: list[Out], attrs: dict[str, str]) -> tuple[str, list[int]]:
    """Output (precision, dims) of the few op types the patchers create."""
    kind = type_.lower()
    first = inputs[0]
    if kind in ELEMENTWISE or kind in COMPARISON_KINDS or kind == "select":
        shapes = [tuple(v.dims) for v in inputs]
        dims = broadcast_dims(shapes)
        if dims is None:
            raise KernelkitError(f"cannot broadcast shapes {shapes} for a new {type_} layer", where=type_)
        if kind in COMPARISON_KINDS:
            return "BOOL", dims
        return (inputs[1].precision if kind == "select" else first.precision), dims
    if kind == "convert":
        return precision_of(attrs["destination_type"]), first.dims
    if kind in ("reducesum", "reducemax", "reducemin", "reducemean", "reduceprod"):
        axes = const_value(model, inputs[1])
        rank = len(first.dims)
        axes = {int(a) % rank for a in np.atleast_1d(axes)} if rank else set()
        keep = attrs.get("keep_dims", "false").lower() == "true"
        dims = [1 if i in axes else d for i, d in enumerate(first.dims) if keep or i not in axes]
        return first.precision, dims
    if kind == "matmul":
        a, b = list(first.dims), list(inputs[1].dims)
        vector_a, vector_b = len(a) == 1, len(b) == 1      # 1-D operands are unsqueezed, then squeezed
        if attrs.get("transpose_a", "false") == "true" and not vector_a:
            a[-2:] = a[-2:][::-1]
        if attrs.get("transpose_b", "false") == "true" and not vector_b:
            b[-2:] = b[-2:][::-1]
        a, b = ([1] + a if vector_a else a), (b + [1] if vector_b else b)
        batch = list(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
        return first.precision, batch + ([] if vector_a else [a[-2]]) + ([] if vector_b else [b[-1]])
    if kind == "reshape":
        return first.precision, [int(d) for d in const_value(model, inputs[1])]
    if kind == "transpose":
        order = [int(d) for d in const_value(model, inputs[1])]
        return first.precision, [first.dims[i] for i in order]
    # Unary ops keep type and shape: Clamp, Exp, Log, Sqrt, Floor, Elu, Relu, Sigmoid, Abs, SoftMax...
    return first.precision, first.dims


def move_consumers(model, old: Out, new: Out, *, skip=()) -> None:
    """Every consumer of `old` (except layers in `skip`) now reads `new`."""
    skip_ids = {layer.id for layer in skip}
    for edge in model.output_edges(old.layer, old.port.id):
        if edge.to_layer in skip_ids:
            continue
        consumer, port_id = model.layer(edge.to_layer), edge.to_port
        model.disconnect(edge)
        model.connect(new.layer, new.port.id, consumer, port_id)
        consumer.port(port_id).precision = new.precision      # input precision is informational; keep it true


def take_over_name(model, old_layer, new_layer) -> None:
    """Give `new_layer` the legacy output name of `old_layer` (which is being replaced).

    The blob's output (and DepthAI's layer lookup) is named after the layer that feeds the Result, so the
    replacement's last layer must carry the old name; the old layer gets a free one until it is removed.
    """
    name = old_layer.name
    old_layer.name = model.unique_name(f"{name}/kk_replaced")
    new_layer.name = name


def copy_tensor_names(old: Out, new: Out) -> None:
    """Tensor names (port `names`) follow the value: new takes old's, old loses them."""
    names = old.port.names
    if names:
        new.port.names = names
        old.port.names = []


def replace(model, old_layer, new: Out, index: int = 0) -> None:
    """Finish a rewrite: consumers of old output `index` read `new`, which takes the old name; drop old
    and whatever fed only it."""
    old = out(old_layer, index)
    move_consumers(model, old, new)
    copy_tensor_names(old, new)
    take_over_name(model, old_layer, new.layer)
    remove_with_dead_inputs(model, old_layer)


def unused(model, layer, index: int) -> bool:
    return not model.consumers(layer, layer.outputs[index].id)


def _feeds_nothing(model, layer) -> bool:
    return all(not model.consumers(layer, port.id) for port in layer.outputs)


def remove_with_dead_inputs(model, layer) -> None:
    """Remove `layer`, then every producer left feeding nothing (Parameters stay). Local: only the layers
    upstream of the removed one are looked at, so a patch over a large model stays linear."""
    pending = [layer]
    while pending:
        current = pending.pop()
        producers = [found[0] for port in current.inputs if (found := model.producer(current, port.id))]
        model.remove_layer(current)
        for producer in producers:
            if producer.type not in ("Parameter", "Result") and producer.outputs and _feeds_nothing(model, producer) \
                    and producer not in pending:
                pending.append(producer)


def prune_dead(model, layers) -> None:
    """Remove each of `layers` (and what fed only it) that no longer feeds anything."""
    for layer in layers:
        if layer.type not in ("Parameter", "Result") and _is_present(model, layer) and _feeds_nothing(model, layer):
            remove_with_dead_inputs(model, layer)


def _is_present(model, layer) -> bool:
    return layer.element.getparent() is not None
