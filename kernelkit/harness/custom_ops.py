"""IRs holding one layer of the kernel library's own op types (Trilu, Hardmax, LayerNormalization, AffineGrid,
Det: no OpenVINO opset has them, so OpenVINO cannot build or run them), with the numpy reference of the kernel
that binds the type: for measuring and testing their native formulations (kernelkit/model/formulations/native_custom.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


_PRECISIONS = {"f32": "FP32", "f16": "FP16", "i32": "I32", "i64": "I64", "u8": "U8"}


def one_layer_ir(path: Path, layer_type: str, attrs: dict, input_shapes: list[list[int]],
                 output_shape: list[int], input_types: list[str] | None = None) -> Path:
    """An IR v11 .xml (empty .bin): Parameters in0, in1, ... (f32 unless `input_types` says) -> one
    `layer_type` extension layer -> Result (f32)."""
    from lxml import etree

    net = etree.Element("net", name=layer_type.lower(), version="11")
    layers = etree.SubElement(net, "layers")
    edges = etree.SubElement(net, "edges")

    def port(parent, port_id, dims, precision="FP32"):
        element = etree.SubElement(parent, "port", id=str(port_id), precision=precision)
        for d in dims:
            etree.SubElement(element, "dim").text = str(d)

    types = list(input_types or []) + ["f32"] * (len(input_shapes) - len(input_types or []))
    for i, shape in enumerate(input_shapes):
        param = etree.SubElement(layers, "layer", id=str(i), name=f"in{i}", type="Parameter", version="opset1")
        etree.SubElement(param, "data", shape=",".join(map(str, shape)), element_type=types[i])
        port(etree.SubElement(param, "output"), 0, shape, _PRECISIONS[types[i]])
    op_id = len(input_shapes)
    layer = etree.SubElement(layers, "layer", id=str(op_id), name="y", type=layer_type, version="extension")
    if attrs:
        etree.SubElement(layer, "data", {k: ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
                                         for k, v in attrs.items()})
    inputs = etree.SubElement(layer, "input")
    for i, shape in enumerate(input_shapes):
        port(inputs, i, shape, _PRECISIONS[types[i]])
        etree.SubElement(edges, "edge", {"from-layer": str(i), "from-port": "0", "to-layer": str(op_id),
                                         "to-port": str(i)})
    port(etree.SubElement(layer, "output"), len(input_shapes), output_shape)
    result = etree.SubElement(layers, "layer", id=str(op_id + 1), name="y/sink_port_0", type="Result",
                              version="opset1")
    port(etree.SubElement(result, "input"), 0, output_shape)
    etree.SubElement(edges, "edge", {"from-layer": str(op_id), "from-port": str(len(input_shapes)),
                                     "to-layer": str(op_id + 1), "to-port": "0"})
    path.write_bytes(etree.tostring(net, xml_declaration=True, encoding="utf-8", pretty_print=True))
    path.with_suffix(".bin").write_bytes(b"")
    return path


def reference(layer_type: str, inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    """The float64 numpy reference of the library kernel that binds `layer_type`."""
    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.model.passes.custom_layer import kernel_index
    from kernelkit.runners.numpy_ref import numpy_reference

    specs = kernel_index(KERNELS_DIR).get(layer_type.lower())
    if not specs:
        raise LookupError(f"no library kernel binds {layer_type}")
    return numpy_reference(specs[0], inputs, {k: v for k, v in attrs.items()})[0]
