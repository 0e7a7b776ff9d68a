"""Run a library kernel's OpenVINO counterpart (`[reference].openvino` of its spec) on OpenVINO's CPU plugin.

The layer form of a library kernel folds some of OpenVINO's constant inputs into attributes (Col2Im's
output_size and kernel_size, Interpolate's sizes and axes); they go back in as constants here. Every case
attribute is passed to the op as it is, so attributes OpenVINO validates (block_size, num_groups,
equation...) are set before the node is checked.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# Attributes OpenVINO takes as constant inputs after the data input, in port order. For these ops only
# the data input is fed (the kernel's other inputs, such as Interpolate-4's sizes/scales/axes, are not).
CONST_INPUTS = {"Col2Im": ("output_size", "kernel_size"), "Interpolate": ("sizes", "axes")}


def openvino_op(spec, inputs: list[np.ndarray], attrs: dict) -> Callable[[], np.ndarray] | None:
    """A callable running the op once on CPU in f32 and returning its output, or None when this OpenVINO
    cannot build the op for these inputs and attributes."""
    from kernelkit.harness.references import coerce_attr

    conf = (spec.reference or {}).get("openvino")
    if not conf:
        return None
    import openvino as ov
    import openvino.opset1 as ops1
    from openvino.utils.node_factory import NodeFactory

    if spec.op in CONST_INPUTS:
        inputs = inputs[:1]
    params = [ops1.parameter(list(x.shape), np.float32 if x.dtype.kind == "f" else np.int32) for x in inputs]
    args = [p.output(0) for p in params]
    consumed = CONST_INPUTS.get(spec.op, ())
    args += [ops1.constant(np.asarray(attrs[name], dtype=np.int64)).output(0) for name in consumed]
    typed = {k: coerce_attr(v) for k, v in attrs.items() if k not in consumed}
    try:
        node = NodeFactory(conf.get("opset", "opset1")).create(conf["op"], args, typed)
        model = ov.Model([ops1.result(node.output(0))], params, spec.name)
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                          "INFERENCE_NUM_THREADS": 1})
    except Exception:
        return None
    request = compiled.create_infer_request()
    feed = [x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32) for x in inputs]
    return lambda: np.array(request.infer(feed)[compiled.outputs[0]])
