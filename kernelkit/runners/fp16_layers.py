"""Run an IR the way the VPU rounds it: layer by layer, every floating-point tensor rounded to fp16.

The MYRIAD plugin stores every float tensor as FP16: the network inputs, the constants (FP32 weights are
converted when the blob is built) and each layer's output. A formulation that is accurate in f32 can lose
everything in fp16 (x*x overflows above 256, 1 + x forgets x below 2**-11), so native formulations are
measured with this evaluator, not with a plain f32 run.

How: the IR is read by OpenVINO; each layer, in topological order, runs alone on its already-rounded
inputs, through OpenVINO's reference implementation of the op (`Node.evaluate`, in f32; the code its
constant folding uses) or, for ops without one, on OpenVINO CPU with INFERENCE_PRECISION_HINT=f32; its
float outputs are rounded to fp16 (round to nearest even; beyond 65504 they become infinities, as a half
conversion does). So each layer computes exactly and rounds once: the model of a SHAVE stage that works
in float internally. Stages that compute in half internally round more often; that is not modelled.
Inserting Convert f32->f16->f32 pairs into one model does not work: the CPU plugin removes them when it
lowers f16 to f32.
"""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.openvino_run import first_line
from kernelkit.runners.base import Runner, RunResult, named_outputs

# Layers whose output is one of their inputs or pure data movement: evaluating them costs a compile each and
# changes nothing, so they are evaluated in numpy when that is exact.
_PASSTHROUGH = {"Result"}


def round_fp16(array) -> np.ndarray:
    """Round a float array to fp16 values (kept in its own dtype); other dtypes unchanged."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or array.dtype == np.float16:
        return array
    with np.errstate(over="ignore"):
        return array.astype(np.float16).astype(array.dtype)


class FP16LayersRunner(Runner):
    """A whole IR with fp16 rounding after every layer (run_fp16)."""

    name = "openvino-cpu-fp16-layers"

    def __init__(self, xml: bytes | str, weights: bytes, *, path=None):
        self.xml = xml
        self.weights = weights
        self.path = path

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        return RunResult(self.name, named_outputs(run_fp16(self.xml, self.weights, inputs, path=self.path)))


def run_fp16(xml: bytes | str, weights: bytes, inputs: list[np.ndarray], *, path=None) -> list[np.ndarray]:
    """Outputs (in Result order) of the IR with fp16 rounding between layers; see the module docstring."""
    import openvino as ov

    core = ov.Core()
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    try:
        model = core.read_model(model=text, weights=ov.Tensor(np.frombuffer(weights or b"\0", np.uint8).copy()))
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO cannot read the model: {first_line(exc)}", path=path) from None
    parameters = model.get_parameters()
    if len(inputs) != len(parameters):
        raise KernelkitError(f"the model has {len(parameters)} inputs but {len(inputs)} arrays were given", path=path)
    values: dict[tuple[str, int], np.ndarray] = {}
    for parameter, array in zip(parameters, inputs):
        dtype = parameter.get_output_element_type(0).to_dtype()
        values[(parameter.get_name(), 0)] = round_fp16(np.array(array, dtype=dtype))
    for node in model.get_ordered_ops():
        kind = node.get_type_name()
        if kind == "Parameter":
            continue
        if kind == "Constant":
            values[(node.get_name(), 0)] = round_fp16(np.array(node.get_data()))
            continue
        feeds = [values[(v.get_node().get_name(), v.get_index())] for v in node.input_values()]
        if kind in _PASSTHROUGH:
            values[(node.get_name(), 0)] = feeds[0]
            continue
        for index, result in enumerate(_run_layer(core, node, feeds, path)):
            values[(node.get_name(), index)] = round_fp16(result)
    return [values[(r.input_value(0).get_node().get_name(), r.input_value(0).get_index())]
            for r in model.get_results()]


def _run_layer(core, node, feeds: list[np.ndarray], path) -> list[np.ndarray]:
    """One layer alone on CPU f32: computed inputs become Parameters, constant inputs stay Constants (shape,
    axes and order inputs must stay constant for static shapes). The layer is rewired in place (the Python
    API cannot clone a node): the caller reads every input of a layer before the layer runs."""
    import openvino as ov
    from openvino import opset1

    params, args, fed = [], [], []
    for value, array in zip(node.input_values(), feeds):
        producer = value.get_node()
        if producer.get_type_name() == "Constant":
            args.append(opset1.constant(array, dtype=array.dtype).output(0))
            continue
        param = opset1.parameter(list(array.shape), array.dtype)
        params.append(param)
        args.append(param.output(0))
        fed.append(array)
    try:
        node.set_arguments(args)
        node.validate_and_infer_types()
        evaluated = _evaluate(node, [a for a in feeds])
        if evaluated is not None:
            return evaluated
        submodel = ov.Model([node.output(i) for i in range(node.get_output_size())], params, "layer")
        compiled = core.compile_model(submodel, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        result = compiled([np.array(a, order="C") for a in fed]) if fed else compiled({})
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO CPU cannot run layer {node.get_friendly_name()!r} "
                             f"({node.get_type_name()}) alone: {first_line(exc)}", path=path) from None
    return [np.array(result[port]) for port in compiled.outputs]


def _evaluate(node, feeds: list[np.ndarray]) -> list[np.ndarray] | None:
    """The layer through OpenVINO's own reference implementation of the op (`Node.evaluate`, the code its
    constant folding runs, in the inputs' f32): no compile, so a thousand times faster. None when the op
    has none for these types, or an output shape is not static; then it runs on CPU."""
    import openvino as ov

    outputs = []
    for index in range(node.get_output_size()):
        shape = node.get_output_partial_shape(index)
        if not shape.is_static:
            return None
        outputs.append(ov.Tensor(node.get_output_element_type(index), shape.to_shape()))
    inputs = [ov.Tensor(np.ascontiguousarray(a)) if a.ndim else ov.Tensor(np.array(a).reshape(()))
              for a in feeds]
    try:
        if not node.evaluate(outputs, inputs):
            return None
    except RuntimeError:
        return None
    return [np.array(t.data).reshape(tuple(t.shape)) for t in outputs]
