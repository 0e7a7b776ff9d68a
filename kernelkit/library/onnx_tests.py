"""ONNX's own operator tests (`onnx.backend.test.case.node`) as ground truth for the library's references.

`layer_form(kernel, test)` restates one ONNX node test in the custom layer's terms: OpenVINO attribute names
and spellings, constant inputs folded into attributes. It returns None when the test does not fit the layer
(an unsupported attribute, or a shape that is not static and non-empty).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np


@dataclass
class NodeTest:
    name: str
    op_type: str
    attrs: dict
    inputs: dict[str, np.ndarray]  # by the node's input name; empty (omitted) inputs are absent
    input_order: list[str]  # the node's input names, '' for omitted ones
    outputs: list[np.ndarray]


@dataclass
class LayerTest:
    name: str
    inputs: list[np.ndarray]
    attrs: dict
    expected: np.ndarray
    onnx_attrs: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _all_tests() -> dict[str, list[NodeTest]]:
    import onnx
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    by_op: dict[str, list[NodeTest]] = {}
    for case in cases:
        nodes = case.model.graph.node
        if len(nodes) != 1 or not case.data_sets:
            continue
        node = nodes[0]
        attrs = {}
        for attribute in node.attribute:
            value = onnx.helper.get_attribute_value(attribute)
            attrs[attribute.name] = value.decode() if isinstance(value, bytes) else value
        data_inputs, data_outputs = case.data_sets[0]
        names = [n for n in node.input if n]
        by_op.setdefault(node.op_type, []).append(NodeTest(
            name=case.name, op_type=node.op_type, attrs=attrs,
            inputs=dict(zip(names, data_inputs)), input_order=list(node.input), outputs=list(data_outputs)))
    return by_op


def node_tests(op_type: str) -> list[NodeTest]:
    return list(_all_tests().get(op_type, []))


def _input(test: NodeTest, position: int) -> np.ndarray | None:
    if position >= len(test.input_order) or not test.input_order[position]:
        return None
    return test.inputs.get(test.input_order[position])


def _ints(array) -> list[int]:
    return [int(v) for v in np.asarray(array).ravel()]


_ONNX_MODES = {"DCR": "blocks_first", "CRD": "depth_first"}
_GRID_MODES = {"linear": "bilinear", "bilinear": "bilinear", "cubic": "bicubic", "bicubic": "bicubic",
               "nearest": "nearest"}
_SCATTER = {"none": "none", "add": "sum", "mul": "prod", "min": "min", "max": "max"}


def _convert(kernel_op: str, test: NodeTest) -> tuple[list[np.ndarray], dict] | None:
    a = test.attrs
    x = _input(test, 0)
    if kernel_op in ("DepthToSpace", "SpaceToDepth"):
        return [x], {"block_size": a["blocksize"], "mode": _ONNX_MODES[a.get("mode", "DCR")]}
    if kernel_op == "Trilu":
        k = _input(test, 1)
        return [x], {"upper": int(a.get("upper", 1)), "k": int(k) if k is not None else 0}
    if kernel_op == "Hardmax":
        return [x], {"axis": int(a.get("axis", -1))}
    if kernel_op == "ReduceProd":
        axes = _input(test, 1)
        if axes is None and "axes" in a:
            axes = a["axes"]
        attrs = {"keep_dims": int(a.get("keepdims", 1))}
        if axes is not None and len(np.asarray(axes).ravel()):
            attrs["axes"] = _ints(axes)
        return [x], attrs
    if kernel_op == "LayerNormalization":
        inputs = [x, _input(test, 1)] + ([_input(test, 2)] if _input(test, 2) is not None else [])
        return inputs, {"axis": int(a.get("axis", -1)), "epsilon": float(a.get("epsilon", 1e-5))}
    if kernel_op == "GroupNormalization":
        return [x, _input(test, 1), _input(test, 2)], {"num_groups": int(a["num_groups"]),
                                                        "epsilon": float(a.get("epsilon", 1e-5))}
    if kernel_op == "ScatterNDUpdate":
        return [x, _input(test, 1), _input(test, 2)], {"reduction": _SCATTER[a.get("reduction", "none")]}
    if kernel_op == "GridSample":
        return [x, _input(test, 1)], {"mode": _GRID_MODES[a.get("mode", "linear")],
                                      "padding_mode": a.get("padding_mode", "zeros"),
                                      "align_corners": bool(a.get("align_corners", 0))}
    if kernel_op == "AffineGrid":
        return [x], {"size": _ints(_input(test, 1)), "align_corners": int(a.get("align_corners", 0))}
    if kernel_op == "Col2Im":
        rank = len(_ints(_input(test, 1)))
        pads = list(a.get("pads", [0] * (2 * rank)))
        return [x], {"output_size": _ints(_input(test, 1)), "kernel_size": _ints(_input(test, 2)),
                     "strides": list(a.get("strides", [1] * rank)), "dilations": list(a.get("dilations", [1] * rank)),
                     "pads_begin": pads[:rank], "pads_end": pads[rank:]}
    if kernel_op == "Einsum":
        # the plugin compares <Where equation=...> as a string: the IR form has no spaces
        return [test.inputs[n] for n in test.input_order if n], {"equation": a["equation"].replace(" ", "")}
    if kernel_op == "Interpolate":
        if a.get("mode") != "cubic" or int(a.get("antialias", 0)) or a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            return None
        attrs = {"mode": "cubic",
                 "coordinate_transformation_mode": a.get("coordinate_transformation_mode", "half_pixel"),
                 "cube_coeff": float(a.get("cubic_coeff_a", -0.75)),
                 "exclude_outside": int(a.get("exclude_outside", 0))}
        if "axes" in a:
            attrs["axes"] = list(a["axes"])
        scales, sizes = _input(test, 2), _input(test, 3)
        if scales is not None and scales.size:
            attrs["scales"] = [float(s) for s in scales]
        elif sizes is not None and sizes.size:
            attrs["sizes"] = _ints(sizes)
        return [x], attrs
    # element-wise and parameterless ops
    return [test.inputs[n] for n in test.input_order if n], dict(a)


# custom-layer op type -> ONNX op type of the node tests that check it
ONNX_OP = {"ScatterNDUpdate": "ScatterND", "Interpolate": "Resize"}
# ops whose library kernel takes fp16 data (ONNX tests some of them on int64)
_FLOAT_DATA = {"Trilu"}


def _to_rank4(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array.reshape((1,) * (4 - array.ndim) + array.shape) if array.ndim < 4 else array


def _fit_kernel(kernel_op: str, test: LayerTest) -> LayerTest | None:
    """Restate a test in the form the library kernel takes: rank-4 NCHW data (leading 1s added where the op
    allows), fp16-friendly dtypes, constant inputs the kernel reads as tensors. None when it cannot fit."""
    inputs, attrs, expected = list(test.inputs), dict(test.attrs), np.asarray(test.expected)
    # bfloat16 (an ml_dtypes type numpy sees as void-like) holds values float32 represents exactly
    inputs = [np.asarray(i).astype(np.float32) if "bfloat16" in str(np.asarray(i).dtype) else i for i in inputs]
    if "bfloat16" in str(expected.dtype):
        expected = expected.astype(np.float32)
    if kernel_op in _FLOAT_DATA:
        inputs[0] = np.asarray(inputs[0]).astype(np.float32)
        expected = expected.astype(np.float32)
    x = np.asarray(inputs[0])
    lead = 4 - x.ndim
    if x.ndim > 4:
        return None
    if kernel_op in ("Hardmax", "LayerNormalization"):
        attrs["axis"] = attrs["axis"] % x.ndim + lead
        inputs[0], expected = _to_rank4(x), _to_rank4(expected)
    elif kernel_op == "ReduceProd":
        axes = attrs.pop("axes", list(range(x.ndim)))
        axes4 = sorted(a % x.ndim + lead for a in axes)
        inputs = [_to_rank4(x), np.asarray(axes4, dtype=np.int32)]
        shape4 = inputs[0].shape
        if attrs.get("keep_dims"):
            expected = expected.reshape([1 if i in axes4 else d for i, d in enumerate(shape4)])
        else:
            expected = expected.reshape([d for i, d in enumerate(shape4) if i not in axes4])
    elif kernel_op == "ScatterNDUpdate":
        indices = np.asarray(inputs[1])
        if indices.ndim != 2:
            return None
        pad = np.zeros((indices.shape[0], lead), dtype=indices.dtype)
        inputs = [_to_rank4(x), np.concatenate([pad, indices], axis=1), inputs[2]]
        expected = _to_rank4(expected)
    elif kernel_op == "Det":
        if x.ndim < 3:
            inputs[0], expected = x.reshape((1,) + x.shape), expected.reshape((1,))
    elif kernel_op in ("GridSample", "AffineGrid", "Col2Im"):
        spatial = len(attrs.get("size", [0, 0, 0, 0])) - 2 if kernel_op == "AffineGrid" else \
            len(attrs["output_size"]) if kernel_op == "Col2Im" else x.ndim - 2
        if spatial != 2:
            return None
    elif kernel_op == "Interpolate":
        if attrs.get("exclude_outside") or x.ndim != 4:
            return None
        if "scales" in attrs:
            sizes = [d * s for d, s in zip(x.shape, attrs["scales"])]
            if any(abs(s - round(s)) > 1e-6 for s in sizes):
                return None  # the kernel derives the scale from the sizes
            attrs["sizes"] = [int(round(s)) for s in sizes]
            del attrs["scales"]
        if attrs["sizes"][:2] != list(x.shape[:2]):
            return None
        # the kernel resizes H and W only, as an OpenVINO Interpolate-4 with axes [2, 3] and its 4 inputs
        attrs["sizes"], attrs["axes"] = attrs["sizes"][2:], [2, 3]
        scales = [s / d for s, d in zip(attrs["sizes"], x.shape[2:])]
        inputs = [x, np.asarray(attrs["sizes"], dtype=np.int32), np.asarray(scales, dtype=np.float32),
                  np.asarray([2, 3], dtype=np.int32)]
    elif kernel_op == "Einsum":
        if len(inputs) != 2 or attrs["equation"] not in _EINSUM_BINARY:
            return None
    elif kernel_op in ("DepthToSpace", "SpaceToDepth", "GroupNormalization", "EinsumUnary"):
        pass
    else:  # element-wise and Trilu: leading 1s change nothing (and the elementwise family mis-sizes rank 1)
        inputs = [_to_rank4(i) for i in inputs]
        expected = _to_rank4(expected)
    return LayerTest(test.name, inputs, attrs, expected, test.onnx_attrs)


# the equations the library's Einsum kernels bind (einsum_h: two operands, einsum_unary_h: one)
_EINSUM_BINARY = {"bij,bjk->bik", "bij,bkj->bik", "ij,jk->ik", "ij,kj->ik", "i,i->", "i,i"}
_EINSUM_UNARY = {"ij->ji", "ij->i", "ij->j", "bii->bi", "...ii->...i", "bij->bji", "bij->bi"}


def einsum_unary_tests(kernel_op: str = "Einsum") -> list[LayerTest]:
    """ONNX's one-operand Einsum tests the einsum_unary_h kernel binds (layer_tests takes the two-operand ones)."""
    out = []
    for test in layer_tests("Einsum", kernel_fit=False):
        if len(test.inputs) == 1 and test.attrs["equation"] in _EINSUM_UNARY:
            out.append(_fit_kernel("EinsumUnary", test))
    return out


def layer_tests(kernel_op: str, kernel_fit: bool = True) -> list[LayerTest]:
    """ONNX node tests of `kernel_op`'s ONNX counterpart restated in the custom layer's terms.

    kernel_fit=True (what the conformance harness calls) also reshapes them to what the library kernel
    takes and drops the ones it does not support; False keeps them as ONNX wrote them (reference checks).
    """
    out = []
    for test in node_tests(ONNX_OP.get(kernel_op, kernel_op)):
        converted = _convert(kernel_op, test)
        if converted is None:
            continue
        inputs, attrs = converted
        if any(np.asarray(i).size == 0 for i in inputs) or np.asarray(test.outputs[0]).size == 0:
            continue  # zero-sized tensors cannot be laid out on the VPU
        layer_test = LayerTest(test.name, inputs, attrs, test.outputs[0], test.attrs)
        if kernel_fit:
            expected = np.asarray(test.outputs[0], dtype=np.float64)
            if np.abs(expected[np.isfinite(expected)]).max(initial=0.0) > 65504.0:
                continue  # the expected output itself does not fit fp16
            layer_test = _fit_kernel(kernel_op, layer_test)
        if layer_test is not None:
            out.append(layer_test)
    return out
