#!/usr/bin/env python3
"""Ask the real MYRIAD plugin (pip openvino 2021.4.2) which opset1-7 ops it compiles.

Builds one-op IR v10 models with the host's OpenVINO Python API (f16 Parameters unless the variant says
otherwise), runs query_network and a real compile on each (`kernelkit.runners.oracle`), and writes
  kernelkit/facts/data/plugin-verdicts-2021.4.json   (op, version, variant, verdict, query, message)
  docs/myriad-plugin-verdicts.md                      (the table, and where the documentation disagrees)

    .venv/bin/python toolchain/probe_support.py [--jobs 4] [--only REGEX] [--keep DIR]

Needs `kernelkit toolchain setup`. Each compile takes a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JSON_OUT = REPO / "kernelkit" / "facts" / "data" / "plugin-verdicts-2021.4.json"
MD_OUT = REPO / "docs" / "myriad-plugin-verdicts.md"

F16, F32, I32, I64 = np.float16, np.float32, np.int32, np.int64
SHAPE = [1, 3, 8, 8]


@dataclass
class Probe:
    op: str
    version: str          # "opset1" ... "opset7"
    variant: str
    build: Callable       # () -> (outputs, parameters)


PROBES: list[Probe] = []


def probe(op: str, version: int, variant: str = "f16"):
    def register(build):
        PROBES.append(Probe(op, f"opset{version}", variant, build))
        return build
    return register


# --------------------------------------------------------------------------------------------- helpers
def ops():
    from openvino import opset1, opset2, opset3, opset4, opset5, opset6, opset7, opset10
    return opset1, opset2, opset3, opset4, opset5, opset6, opset7, opset10


def param(shape=None, dtype=F16, name="x"):
    from openvino import opset1
    return opset1.parameter(list(shape or SHAPE), dtype, name=name)


def const(value, dtype=None):
    from openvino import opset1
    return opset1.constant(np.array(value, dtype=dtype), dtype=dtype)


def binary_filters(shape):
    import openvino as ov
    return ov.op.Constant(ov.Type.u1, ov.Shape(shape), [1] * int(np.prod(shape)))


def o4_range(start, stop, step, output_type, name):
    # openvino.opset4.range is Range-1; the opset4 module's ops hold Range-4.
    from openvino.opset4 import ops as opset4_ops
    return opset4_ops.range(start, stop, step, output_type, name=name)


def added_to_input(node):
    """A constant-producing op made part of a graph with an input, so the network is not empty."""
    from openvino import opset1
    x = opset1.parameter(list(node.get_output_shape(0)), node.get_output_element_type(0), name="x")
    return opset1.add(x, node), [x]


def rand(shape, dtype=F16, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


# ------------------------------------------------------------------------------------------- the probes
o1, o2, o3, o4, o5, o6, o7, o10 = ops()

UNARY = [  # (op type, version, builder taking x)
    ("Abs", 1, o1.absolute), ("Acos", 1, o1.acos), ("Asin", 1, o1.asin), ("Atan", 1, o1.atan),
    ("Ceiling", 1, o1.ceiling), ("Cos", 1, o1.cos), ("Cosh", 1, o1.cosh), ("Erf", 1, o1.erf), ("Exp", 1, o1.exp),
    ("Floor", 1, o1.floor), ("Log", 1, o1.log), ("Negative", 1, o1.negative), ("Relu", 1, o1.relu),
    ("Sigmoid", 1, o1.sigmoid), ("Sign", 1, o1.sign), ("Sin", 1, o1.sin), ("Sinh", 1, o1.sinh), ("Sqrt", 1, o1.sqrt),
    ("Tan", 1, o1.tan), ("Tanh", 1, o1.tanh), ("Gelu", 2, o2.gelu), ("Acosh", 4, o4.acosh), ("Asinh", 4, o4.asinh),
    ("Atanh", 4, o4.atanh), ("HSwish", 4, o4.hswish), ("Mish", 4, o4.mish), ("SoftPlus", 4, o4.softplus),
    ("HSigmoid", 5, o5.hsigmoid),
]
for _type, _version, _fn in UNARY:
    probe(_type, _version)((lambda fn: lambda: (fn(x := param(), name="probe"), [x]))(_fn))

BINARY = [
    ("Add", o1.add), ("Subtract", o1.subtract), ("Multiply", o1.multiply), ("Divide", o1.divide),
    ("Maximum", o1.maximum), ("Minimum", o1.minimum), ("Power", o1.power),
    ("SquaredDifference", o1.squared_difference), ("FloorMod", o1.floor_mod), ("Mod", o1.mod),
    ("Equal", o1.equal), ("NotEqual", o1.not_equal), ("Greater", o1.greater), ("GreaterEqual", o1.greater_equal),
    ("Less", o1.less), ("LessEqual", o1.less_equal),
]
for _type, _fn in BINARY:
    for _dtype, _variant in ((F16, "f16"), (I32, "i32")):
        probe(_type, 1, _variant)((lambda fn, dt: lambda: (
            fn(a := param(dtype=dt, name="a"), b := param(dtype=dt, name="b"), name="probe"), [a, b]))(_fn, _dtype))

for _type, _fn in (("LogicalAnd", o1.logical_and), ("LogicalOr", o1.logical_or), ("LogicalXor", o1.logical_xor)):
    probe(_type, 1, "boolean")((lambda fn: lambda: (
        fn(a := param(dtype=bool, name="a"), b := param(dtype=bool, name="b"), name="probe"), [a, b]))(_fn))
probe("LogicalNot", 1, "boolean")(lambda: (o1.logical_not(a := param(dtype=bool, name="a"), name="probe"), [a]))
probe("Greater", 1, "f16 in, then Select")(lambda: (o1.select(
    o1.greater(a := param(name="a"), b := param(name="b"), name="probe"), a, b), [a, b]))

probe("Clamp", 1)(lambda: (o1.clamp(x := param(), -0.5, 0.5, name="probe"), [x]))
probe("Elu", 1)(lambda: (o1.elu(x := param(), 1.0, name="probe"), [x]))
probe("HardSigmoid", 1)(lambda: (o1.hard_sigmoid(x := param(), const(0.2, F16), const(0.5, F16), name="probe"), [x]))
probe("Selu", 1)(lambda: (o1.selu(x := param(), const([1.67], F16), const([1.05], F16), name="probe"), [x]))
probe("PRelu", 1)(lambda: (o1.prelu(x := param(), const([0.1, 0.2, 0.3], F16), name="probe"), [x]))
probe("GRN", 1)(lambda: (o1.grn(x := param(), 1e-6, name="probe"), [x]))
probe("LRN", 1)(lambda: (o1.lrn(x := param(), const([1], I64), 1e-4, 0.75, 1.0, 3, name="probe"), [x]))
probe("NormalizeL2", 1, "axes=[1]")(lambda: (o1.normalize_l2(x := param(), const([1], I64), 1e-6, "add", name="probe"), [x]))
probe("NormalizeL2", 1, "axes=[1,2,3]")(lambda: (o1.normalize_l2(x := param(), const([1, 2, 3], I64), 1e-6, "add",
                                                                 name="probe"), [x]))
probe("Softmax", 1)(lambda: (o1.softmax(x := param(), 1, name="probe"), [x]))
probe("LogSoftmax", 5)(lambda: (o5.log_softmax(x := param(), 1, name="probe"), [x]))
# The host API gives a beta-less Swish an f32 beta input: probe it on f32 data.
probe("Swish", 4, "f32, default beta")(lambda: (o4.swish(x := param(dtype=F32), name="probe"), [x]))
probe("Swish", 4, "with beta")(lambda: (o4.swish(x := param(), const(1.5, F16), name="probe"), [x]))
probe("Round", 5, "half_to_even")(lambda: (o5.round(x := param(), "half_to_even", name="probe"), [x]))
probe("Round", 5, "half_away_from_zero")(lambda: (o5.round(x := param(), "half_away_from_zero", name="probe"), [x]))
probe("Gelu", 7, "erf")(lambda: (o7.gelu(x := param(), "erf", name="probe"), [x]))
probe("Gelu", 7, "tanh")(lambda: (o7.gelu(x := param(), "tanh", name="probe"), [x]))
probe("MVN", 2)(lambda: (o2.mvn(x := param(), False, True, 1e-9, name="probe"), [x]))
probe("MVN", 6, "axes=[2,3]")(lambda: (o6.mvn(x := param(), const([2, 3], I64), True, 1e-9, "inside_sqrt",
                                              name="probe"), [x]))
probe("BatchNormInference", 1)(lambda: (o1.batch_norm_inference(
    x := param(), const([1, 1, 1], F16), const([0, 0, 0], F16), const([0, 0, 0], F16), const([1, 1, 1], F16), 1e-5,
    name="probe"), [x]))
probe("BatchNormInference", 5)(lambda: (o5.batch_norm_inference(
    x := param(), const([1, 1, 1], F16), const([0, 0, 0], F16), const([0, 0, 0], F16), const([1, 1, 1], F16), 1e-5,
    name="probe"), [x]))
probe("Convert", 1, "f16->i32")(lambda: (o1.convert(x := param(), "i32", name="probe"), [x]))
probe("Convert", 1, "i32->f16")(lambda: (o1.convert(x := param(dtype=I32), "f16", name="probe"), [x]))
probe("Convert", 1, "u8->f16")(lambda: (o1.convert(x := param(dtype=np.uint8), "f16", name="probe"), [x]))
probe("ConvertLike", 1)(lambda: (o1.convert_like(x := param(dtype=I32), const([0], F16), name="probe"), [x]))
probe("FakeQuantize", 1)(lambda: (o1.fake_quantize(x := param(), const(-1, F16), const(1, F16), const(-1, F16),
                                                   const(1, F16), 256, name="probe"), [x]))

# Convolution family
probe("Convolution", 1)(lambda: (o1.convolution(x := param(), const(rand((4, 3, 3, 3))), [1, 1], [1, 1], [1, 1],
                                                [1, 1], name="probe"), [x]))
probe("Convolution", 1, "3D")(lambda: (o1.convolution(x := param([1, 3, 4, 8, 8]), const(rand((4, 3, 3, 3, 3))),
                                                      [1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], name="probe"), [x]))
probe("GroupConvolution", 1)(lambda: (o1.group_convolution(x := param(), const(rand((3, 1, 1, 3, 3))), [1, 1], [1, 1],
                                                           [1, 1], [1, 1], name="probe"), [x]))
probe("ConvolutionBackpropData", 1)(lambda: (o1.convolution_backprop_data(
    x := param(), const(rand((3, 4, 2, 2))), [2, 2], name="probe"), [x]))
probe("GroupConvolutionBackpropData", 1)(lambda: (o1.group_convolution_backprop_data(
    x := param(), const(rand((3, 1, 1, 2, 2))), [2, 2], name="probe"), [x]))
probe("BinaryConvolution", 1)(lambda: (o1.binary_convolution(
    x := param(), binary_filters([4, 3, 3, 3]), [1, 1], [0, 0], [0, 0], [1, 1], "xnor-popcount", 0.0, name="probe"), [x]))
probe("DeformableConvolution", 1)(lambda: (o1.deformable_convolution(
    x := param(), const(rand((1, 18, 6, 6))), const(rand((4, 3, 3, 3))), [1, 1], [0, 0], [0, 0], [1, 1],
    name="probe"), [x]))
probe("MatMul", 1, "x * const")(lambda: (o1.matmul(x := param([1, 16]), const(rand((16, 8))), False, False,
                                                   name="probe"), [x]))
probe("MatMul", 1, "x * y")(lambda: (o1.matmul(a := param([1, 4, 16], name="a"), b := param([1, 16, 8], name="b"),
                                               False, False, name="probe"), [a, b]))
probe("AvgPool", 1)(lambda: (o1.avg_pool(x := param(), [2, 2], [0, 0], [0, 0], [2, 2], True, name="probe"), [x]))
probe("MaxPool", 1)(lambda: (o1.max_pool(x := param(), [2, 2], [0, 0], [0, 0], [2, 2], name="probe"), [x]))
probe("MaxPool", 1, "3D")(lambda: (o1.max_pool(x := param([1, 3, 4, 8, 8]), [2, 2, 2], [0, 0, 0], [0, 0, 0],
                                               [2, 2, 2], name="probe"), [x]))

# Shapes and data movement
probe("Reshape", 1)(lambda: (o1.reshape(x := param(), const([1, 3, 64], I64), False, name="probe"), [x]))
probe("Squeeze", 1)(lambda: (o1.squeeze(x := param(), const([0], I64), name="probe"), [x]))
probe("Unsqueeze", 1)(lambda: (o1.unsqueeze(x := param([3, 8, 8]), const([0], I64), name="probe"), [x]))
probe("Transpose", 1)(lambda: (o1.transpose(x := param(), const([0, 2, 3, 1], I64), name="probe"), [x]))
probe("Concat", 1)(lambda: (o1.concat([a := param(name="a"), b := param(name="b")], 1, name="probe"), [a, b]))
probe("Split", 1)(lambda: (o1.split(x := param([1, 4, 8, 8]), const(1, I64), 2, name="probe"), [x]))
probe("VariadicSplit", 1)(lambda: (o1.variadic_split(x := param(), const(1, I64), const([1, 2], I64), name="probe"), [x]))
probe("StridedSlice", 1)(lambda: (o1.strided_slice(x := param(), const([0, 0, 1, 1], I64), const([1, 3, 7, 7], I64),
                                                   const([1, 1, 1, 1], I64), [0, 0, 0, 0], [0, 0, 0, 0],
                                                   name="probe"), [x]))
probe("StridedSlice", 1, "stride 2")(lambda: (o1.strided_slice(x := param(), const([0, 0, 0, 0], I64),
                                                               const([1, 3, 8, 8], I64), const([1, 1, 2, 2], I64),
                                                               [0, 0, 0, 0], [0, 0, 0, 0], name="probe"), [x]))
probe("Tile", 1)(lambda: (o1.tile(x := param(), const([1, 1, 2, 2], I64), name="probe"), [x]))
probe("Broadcast", 1)(lambda: (o1.broadcast(x := param([1, 3, 1, 1]), const(SHAPE, I64), name="probe"), [x]))
probe("Broadcast", 3, "numpy")(lambda: (o3.broadcast(x := param([1, 3, 1, 1]), const(SHAPE, I64), name="probe"), [x]))
probe("Broadcast", 3, "bidirectional")(lambda: (o3.broadcast(x := param([1, 3, 1, 1]), const([1, 1, 8, 8], I64),
                                                             broadcast_spec="BIDIRECTIONAL", name="probe"), [x]))
for _mode in ("constant", "edge", "reflect", "symmetric"):
    probe("Pad", 1, f"{_mode}, 4D")((lambda mode: lambda: (o1.pad(
        x := param(), const([0, 0, 1, 1], I64), const([0, 0, 1, 1], I64), mode,
        const(0, F16) if mode == "constant" else None, name="probe"), [x]))(_mode))
probe("Pad", 1, "constant, 2D")(lambda: (o1.pad(x := param([4, 8]), const([1, 1], I64), const([1, 1], I64), "constant",
                                                const(0, F16), name="probe"), [x]))
probe("Pad", 1, "constant, value 1")(lambda: (o1.pad(x := param(), const([0, 0, 1, 1], I64), const([0, 0, 1, 1], I64),
                                                     "constant", const(1, F16), name="probe"), [x]))
probe("DepthToSpace", 1)(lambda: (o1.depth_to_space(x := param([1, 12, 4, 4]), "blocks_first", 2, name="probe"), [x]))
probe("SpaceToDepth", 1)(lambda: (o1.space_to_depth(x := param(), "blocks_first", 2, name="probe"), [x]))
probe("ShuffleChannels", 3)(lambda: (o3.shuffle_channels(x := param([1, 4, 8, 8]), 1, 2, name="probe"), [x]))
probe("BatchToSpace", 2, "batch-4 network input")(lambda: (o2.batch_to_space(x := param([4, 3, 4, 4]), const([1, 1, 2, 2], I64),
                                                    const([0, 0, 0, 0], I64), const([0, 0, 0, 0], I64),
                                                    name="probe"), [x]))
probe("SpaceToBatch", 2)(lambda: (o2.space_to_batch(x := param(), const([1, 1, 2, 2], I64), const([0, 0, 0, 0], I64),
                                                    const([0, 0, 0, 0], I64), name="probe"), [x]))
probe("ShapeOf", 1)(lambda: (o1.convert(o1.shape_of(x := param(), name="probe"), "f16"), [x]))
probe("ShapeOf", 3)(lambda: (o1.convert(o3.shape_of(x := param(), "i32", name="probe"), "f16"), [x]))
probe("Gather", 1)(lambda: (o1.gather(x := param(), const([2, 0], I32), const(1, I64), name="probe"), [x]))
probe("Gather", 1, "indices input")(lambda: (o1.gather(x := param(), i := param([2], I32, "indices"), const(1, I64),
                                                       name="probe"), [x, i]))
probe("Gather", 7)(lambda: (o7.gather(x := param(), const([2, 0], I32), const(1, I64), name="probe"), [x]))
probe("GatherND", 5)(lambda: (o5.gather_nd(x := param([4, 8]), const([[1], [3]], I32), name="probe"), [x]))
probe("GatherElements", 6)(lambda: (o6.gather_elements(x := param([4, 8]), const(np.zeros((4, 8)), I32), 1,
                                                       name="probe"), [x]))
probe("GatherTree", 1)(lambda: (o1.gather_tree(s := param([3, 1, 2], name="steps"), p := param([3, 1, 2], name="parents"),
                                               const([3], F16), const(0, F16), name="probe"), [s, p]))
probe("ScatterUpdate", 3)(lambda: (o3.scatter_update(x := param([4, 8]), const([1, 2], I32), u := param([2, 8], name="u"),
                                                     const(0, I64), name="probe"), [x, u]))
probe("ScatterElementsUpdate", 3)(lambda: (o3.scatter_elements_update(
    x := param([4, 8]), const(np.zeros((2, 8)), I32), u := param([2, 8], name="u"), const(0, I64), name="probe"), [x, u]))
probe("ScatterNDUpdate", 4)(lambda: (o4.scatter_nd_update(x := param([4, 8]), const([[1], [2]], I32),
                                                          u := param([2, 8], name="u"), name="probe"), [x, u]))
probe("OneHot", 1)(lambda: (o1.one_hot(i := param([4], I32, "indices"), const(5, I64), const(1, F16), const(0, F16), -1,
                                       name="probe"), [i]))
probe("Select", 1)(lambda: (o1.select(c := param(dtype=bool, name="c"), a := param(name="a"), b := param(name="b"),
                                      name="probe"), [c, a, b]))
probe("ReverseSequence", 1)(lambda: (o1.reverse_sequence(x := param([2, 4, 8]), const([4, 2], I32), 0, 1,
                                                         name="probe"), [x]))
probe("Range", 1, "constant inputs, added to x")(lambda: (o1.add(
    x := param([8]), o1.range(const(0, F16), const(8, F16), const(1, F16), name="probe")), [x]))
probe("Range", 4, "constant inputs, added to x")(lambda: (o1.add(
    x := param([8]), o4_range(const(0, F16), const(8, F16), const(1, F16), "f16", name="probe")), [x]))
probe("NonZero", 3)(lambda: (o1.convert(o3.non_zero(x := param(), "i32", name="probe"), "f16"), [x]))
probe("TopK", 1)(lambda: (o1.topk(x := param([1, 16]), const(4, I64), 1, "max", "value", name="probe"), [x]))
probe("TopK", 3)(lambda: (o3.topk(x := param([1, 16]), const(4, I64), 1, "max", "value", name="probe"), [x]))
probe("Bucketize", 3)(lambda: (o3.bucketize(x := param([8]), const([0, 0.5], F16), "i32", name="probe"), [x]))
probe("CumSum", 3)(lambda: (o3.cumsum(x := param(), const(1, I32), name="probe"), [x]))
probe("Roll", 7)(lambda: (o7.roll(x := param(), const([1], I64), const([2], I64), name="probe"), [x]))
probe("Einsum", 7, "ij,jk->ik")(lambda: (o7.einsum([a := param([4, 8], name="a"), b := param([8, 2], name="b")],
                                                   "ij,jk->ik", name="probe"), [a, b]))
probe("DFT", 7)(lambda: (o7.dft(x := param([1, 8, 8, 2]), const([1, 2], I64), name="probe"), [x]))
probe("IDFT", 7)(lambda: (o7.idft(x := param([1, 8, 8, 2]), const([1, 2], I64), name="probe"), [x]))
probe("ExtractImagePatches", 3)(lambda: (o3.extract_image_patches(x := param(), [2, 2], [2, 2], [1, 1], "valid",
                                                                  name="probe"), [x]))

for _name, _fn in (("ReduceSum", o1.reduce_sum), ("ReduceMean", o1.reduce_mean), ("ReduceMax", o1.reduce_max),
                   ("ReduceMin", o1.reduce_min), ("ReduceProd", o1.reduce_prod), ("ReduceL1", o4.reduce_l1),
                   ("ReduceL2", o4.reduce_l2)):
    probe(_name, 4 if _name in ("ReduceL1", "ReduceL2") else 1, "axes=[2,3]")((lambda fn: lambda: (
        fn(x := param(), const([2, 3], I64), True, name="probe"), [x]))(_fn))
for _name, _fn in (("ReduceLogicalAnd", o1.reduce_logical_and), ("ReduceLogicalOr", o1.reduce_logical_or)):
    probe(_name, 1, "boolean")((lambda fn: lambda: (fn(x := param(dtype=bool), const([2, 3], I64), True,
                                                       name="probe"), [x]))(_fn))

# Resize
for _mode in ("nearest", "linear", "cubic", "area"):
    probe("Interpolate", 1, _mode)((lambda mode: lambda: (o1.interpolate(
        x := param(), const([16, 16], I64), {"axes": [2, 3], "mode": mode}, name="probe"), [x]))(_mode))
for _mode in ("nearest", "linear", "linear_onnx", "cubic"):
    probe("Interpolate", 4, _mode)((lambda mode: lambda: (o10.interpolate(
        x := param(), const([16, 16], I32), const([2, 2], F32), mode, "sizes", axes=const([2, 3], I64),
        name="probe"), [x]))(_mode))
probe("Interpolate", 4, "nearest, align_corners")(lambda: (o10.interpolate(
    x := param(), const([16, 16], I32), const([2, 2], F32), "nearest", "sizes",
    coordinate_transformation_mode="align_corners", axes=const([2, 3], I64), name="probe"), [x]))

# Detection and sequence heads
PROPOSAL_ATTRS = {"base_size": np.uint32(16), "pre_nms_topn": np.uint32(20), "post_nms_topn": np.uint32(5),
                  "nms_thresh": 0.7, "feat_stride": np.uint32(16), "min_size": np.uint32(4), "ratio": [1.0],
                  "scale": [1.0, 2.0, 4.0]}
probe("RegionYolo", 1)(lambda: (o1.region_yolo(x := param([1, 255, 13, 13]), 4, 80, 3, False, [0, 1, 2], 1, 3,
                                                [10, 14, 23, 27, 37, 58], name="probe"), [x]))
probe("ReorgYolo", 2)(lambda: (o2.reorg_yolo(x := param([1, 4, 8, 8]), [2], name="probe"), [x]))
probe("PriorBox", 1, "constant sizes, added to x")(lambda: added_to_input(o1.prior_box(
    const([8, 8], I64), const([64, 64], I64), {"min_size": [16.0], "aspect_ratio": [1.0], "variance": [0.1], "offset": 0.5},
    name="probe")))
probe("PriorBoxClustered", 1, "constant sizes, added to x")(lambda: added_to_input(o1.prior_box_clustered(
    const([8, 8], I64), const([64, 64], I64), {"width": [4.0], "height": [4.0], "variance": [0.1], "offset": 0.5}, name="probe")))
probe("DetectionOutput", 1)(lambda: (o1.detection_output(
    bx := param([1, 16], name="boxes"), cl := param([1, 8], name="classes"), pr := param([1, 2, 16], name="priors"),
    {"num_classes": 2, "background_label_id": 0, "top_k": 4, "variance_encoded_in_target": False,
     "keep_top_k": [4], "code_type": "caffe.PriorBoxParameter.CENTER_SIZE", "share_location": True,
     "nms_threshold": 0.5, "confidence_threshold": 0.1, "normalized": True}, name="probe"), [bx, cl, pr]))
probe("Proposal", 1)(lambda: (o1.proposal(
    c := param([1, 6, 4, 4], name="cls"), d := param([1, 12, 4, 4], name="deltas"), const([64, 64, 1], F16),
    PROPOSAL_ATTRS, name="probe"), [c, d]))
probe("Proposal", 4)(lambda: (o4.proposal(
    c := param([1, 6, 4, 4], name="cls"), d := param([1, 12, 4, 4], name="deltas"), const([64, 64, 1], F16),
    PROPOSAL_ATTRS, name="probe"), [c, d]))
probe("ROIPooling", 2)(lambda: (o2.roi_pooling(x := param(), r := param([2, 5], name="rois"), [2, 2], 1.0,
                                               name="probe"), [x, r]))
probe("PSROIPooling", 1)(lambda: (o1.psroi_pooling(x := param([1, 8, 8, 8]), r := param([2, 5], name="rois"), 2, 2,
                                                   1.0, 1, 1, "average", name="probe"), [x, r]))
probe("ROIAlign", 3)(lambda: (o3.roi_align(x := param(), r := param([2, 4], name="rois"), const([0, 0], I32), 2, 2, 2,
                                           1.0, "avg", name="probe"), [x, r]))
probe("DeformablePSROIPooling", 1)(lambda: (o1.deformable_psroi_pooling(
    x := param([1, 8, 8, 8]), r := param([2, 5], name="rois"), 2, 1.0, 2, name="probe"), [x, r]))
probe("CTCGreedyDecoder", 1)(lambda: (o1.ctc_greedy_decoder(x := param([8, 1, 5]), const(np.ones((8, 1)), F16),
                                                            name="probe"), [x]))
probe("CTCGreedyDecoderSeqLen", 6)(lambda: (o6.ctc_greedy_decoder_seq_len(x := param([1, 8, 5]), const([8], I32),
                                                                          name="probe"), [x]))
probe("CTCLoss", 4)(lambda: (o4.ctc_loss(x := param([1, 8, 5]), const([8], I32), const(np.zeros((1, 8)), I32),
                                         const([2], I32), name="probe"), [x]))
for _version, _fn, _extra in ((1, o1.non_max_suppression, {}), (3, o3.non_max_suppression, {"output_type": "i32"}),
                              (4, o4.non_max_suppression, {"output_type": "i32"}),
                              (5, o5.non_max_suppression, {"output_type": "i32"})):
    for _descending in (True, False):
        probe("NonMaxSuppression", _version, f"sort_result_descending={str(_descending).lower()}")(
            (lambda fn, extra, descending: lambda: (fn(
                b := param([1, 10, 4], name="boxes"), s := param([1, 2, 10], name="scores"), const(5, I64),
                const(0.5, F32), const(0.0, F32), sort_result_descending=descending, name="probe", **extra),
                [b, s]))(_fn, _extra, _descending))

# Embeddings and recurrent cells
probe("EmbeddingBagOffsetsSum", 3)(lambda: (o3.embedding_bag_offsets_sum(
    t := param([10, 4]), const([1, 2, 3], I32), const([0, 2], I32), name="probe"), [t]))
probe("EmbeddingBagPackedSum", 3)(lambda: (o3.embedding_bag_packed_sum(t := param([10, 4]), const([[1, 2], [3, 4]], I32),
                                                                       name="probe"), [t]))
probe("EmbeddingSegmentsSum", 3)(lambda: (o3.embedding_segments_sum(
    t := param([10, 4]), const([1, 2, 3], I32), const([0, 0, 1], I32), const(2, I32), name="probe"), [t]))
H, IN = 4, 8
probe("LSTMCell", 1)(lambda: (o1.lstm_cell(x := param([1, IN]), h := param([1, H], name="h"), c := param([1, H], name="c"),
                                           const(rand((4 * H, IN))), const(rand((4 * H, H))), const(rand((4 * H,))), H,
                                           name="probe"), [x, h, c]))
probe("LSTMCell", 4)(lambda: (o4.lstm_cell(x := param([1, IN]), h := param([1, H], name="h"), c := param([1, H], name="c"),
                                           const(rand((4 * H, IN))), const(rand((4 * H, H))), const(rand((4 * H,))), H,
                                           name="probe"), [x, h, c]))
probe("GRUCell", 3)(lambda: (o3.gru_cell(x := param([1, IN]), h := param([1, H], name="h"), const(rand((3 * H, IN))),
                                         const(rand((3 * H, H))), const(rand((3 * H,))), H, name="probe"), [x, h]))
probe("RNNCell", 3)(lambda: (o3.rnn_cell(x := param([1, IN]), h := param([1, H], name="h"), const(rand((H, IN))),
                                         const(rand((H, H))), const(rand((H,))), H, ["tanh"], [], [], name="probe"),
                             [x, h]))
probe("LSTMSequence", 5)(lambda: (o5.lstm_sequence(
    x := param([1, 3, IN]), h := param([1, 1, H], name="h"), c := param([1, 1, H], name="c"), const([3], I32),
    const(rand((1, 4 * H, IN))), const(rand((1, 4 * H, H))), const(rand((1, 4 * H))), H, "forward", name="probe"),
    [x, h, c]))
probe("GRUSequence", 5)(lambda: (o5.gru_sequence(
    x := param([1, 3, IN]), h := param([1, 1, H], name="h"), const([3], I32), const(rand((1, 3 * H, IN))),
    const(rand((1, 3 * H, H))), const(rand((1, 3 * H))), H, "forward", name="probe"), [x, h]))
probe("RNNSequence", 5)(lambda: (o5.rnn_sequence(
    x := param([1, 3, IN]), h := param([1, 1, H], name="h"), const([3], I32), const(rand((1, H, IN))),
    const(rand((1, H, H))), const(rand((1, H))), H, "forward", name="probe"), [x, h]))

# What the 2021.4 documentation (reference notes §2.3, "Supported Layers" VPU column) says, per op type.
DOC_SAYS = {
    **{op: "yes" for op in (
        "Convolution GroupConvolution ConvolutionBackpropData GroupConvolutionBackpropData MaxPool AvgPool MatMul Add "
        "Subtract Multiply Divide Maximum Minimum Power SquaredDifference Equal NotEqual Greater GreaterEqual Less "
        "LessEqual LogicalAnd LogicalOr LogicalXor LogicalNot FloorMod Relu Clamp Elu PRelu Sigmoid Tanh Exp Log "
        "Floor Ceiling Round Erf Gelu HSwish Mish Swish SoftPlus HSigmoid Abs Sqrt Negative Softmax MVN NormalizeL2 "
        "LRN GRN BatchNormInference Concat Split VariadicSplit Reshape Squeeze Unsqueeze Transpose StridedSlice Tile "
        "Broadcast Pad Gather GatherND GatherElements ScatterUpdate ScatterElementsUpdate OneHot TopK "
        "NonMaxSuppression NonZero ReduceSum ReduceMean ReduceMax ReduceMin ReduceLogicalAnd Select Convert "
        "Interpolate ReverseSequence CTCGreedyDecoder CTCGreedyDecoderSeqLen DetectionOutput PriorBox "
        "PriorBoxClustered Proposal ROIPooling PSROIPooling ROIAlign RegionYolo ReorgYolo LSTMCell LSTMSequence "
        "Sign").split()},
    **{op: "no" for op in (
        "DeformableConvolution BinaryConvolution HardSigmoid Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh "
        "Selu LogSoftmax DepthToSpace SpaceToDepth ShuffleChannels BatchToSpace SpaceToBatch ReduceProd "
        "ReduceLogicalOr ReduceL1 ReduceL2 ScatterNDUpdate CumSum Range Einsum DFT IDFT Roll FakeQuantize Bucketize "
        "EmbeddingBagOffsetsSum EmbeddingBagPackedSum EmbeddingSegmentsSum GRUCell RNNCell GRUSequence "
        "RNNSequence").split()},
}
# Variants the documentation singles out (matched on a substring of the variant); they win over DOC_SAYS.
DOC_SAYS_VARIANT = {
    **{key: "no" for key in (
        ("Convolution", "3D"), ("MaxPool", "3D"), ("Interpolate", "cubic"), ("Interpolate", "area"),
        ("Pad", "constant, 2D"), ("NormalizeL2", "axes=[1,2,3]"), ("LogicalOr", "boolean"), ("LogicalXor", "boolean"),
        # Eltwise: S32 only for Sum/Prod/Max/Min/Div; comparisons want FP16; logical S32 for AND/NOT.
        *((op, "i32") for op in ("Power", "SquaredDifference", "FloorMod", "Equal", "NotEqual", "Greater",
                                 "GreaterEqual", "Less", "LessEqual")))},
    ("Range", "constant inputs"): "?",   # the notes exclude only a Range that is not constant-folded
}


# ------------------------------------------------------------------------------------------ the runner
def build_models(probes: list[Probe], folder: Path) -> list[tuple[Probe, Path | None, str]]:
    import openvino as ov

    built = []
    for index, item in enumerate(probes):
        xml = folder / f"{index:03d}_{item.op}_{item.version}.xml"
        try:
            outputs, params = item.build()
            results = outputs.outputs() if hasattr(outputs, "outputs") else outputs
            model = ov.Model(list(results), params, f"{item.op}_{item.version}")
            model.set_rt_info(10, "version")
            ov.serialize(model, str(xml), version="IR_V10")
            built.append((item, xml, ""))
        except Exception as exc:  # a probe the host API cannot build is reported, not fatal
            built.append((item, None, f"{type(exc).__name__}: {exc}".splitlines()[0]))
    return built


def doc_claim(item: Probe) -> str:
    for (op, variant), claim in DOC_SAYS_VARIANT.items():
        if item.op == op and variant in item.variant:
            return claim
    return DOC_SAYS.get(item.op, "?")


def run(probes: list[Probe], jobs: int, keep: Path | None) -> list[dict]:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners import oracle

    with tempfile.TemporaryDirectory(prefix="kernelkit-probe-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        built = build_models(probes, folder)
        models = [xml for _, xml, _ in built if xml is not None]
        verdicts = iter(oracle.plugin_verdicts(models, jobs=jobs)) if models else iter(())
        rows = []
        for item, xml, build_error in built:
            row = {"op": item.op, "version": item.version, "variant": item.variant, "docs": doc_claim(item)}
            if xml is None:
                row.update(verdict="not-built", query="", message=build_error)
            else:
                try:
                    v = next(verdicts)
                except KernelkitError as exc:
                    row.update(verdict="not-built", query="", message=str(exc))
                    rows.append(row)
                    continue
                q = v.query
                row["query"] = ("error" if not q.get("ok") else
                                "unsupported" if q.get("unsupported") else "supported")
                row["verdict"] = "compiled" if v.compiled else "refused"
                row["message"] = v.message.replace("\n", " ") if not v.compiled else ""
                if not q.get("ok"):
                    row["query_message"] = q.get("error", "")
            rows.append(row)
        return rows


def disagreements(rows: list[dict]) -> tuple[list[str], list[str]]:
    """(documentation vs the compile, query_network vs the compile)"""
    docs, query = [], []
    for row in rows:
        if row["verdict"] not in ("compiled", "refused"):
            continue
        label = f"{row['op']}-{row['version'][5:]} ({row['variant']})"
        why = " (the IR's dynamic output dims, see below)" if "dimension (-1)" in row["message"] else ""
        if row["docs"] == "yes" and row["verdict"] == "refused":
            docs.append(f"- {label}: documented as supported, the plugin refuses it{why}: {row['message']}")
        elif row["docs"] == "no" and row["verdict"] == "compiled":
            docs.append(f"- {label}: documented as unsupported, the plugin compiles it")
        if row["query"] == "supported" and row["verdict"] == "refused":
            query.append(f"- {label}: query_network says supported, the compile refuses it")
        elif row["query"] == "unsupported" and row["verdict"] == "compiled":
            query.append(f"- {label}: query_network leaves it out, the compile accepts it")
    return docs, query


def write_outputs(rows: list[dict], seconds: float) -> None:
    sys.path.insert(0, str(REPO))
    from kernelkit.core.fsutil import atomic_write

    payload = {
        "plugin": "MYRIAD, pip openvino==2021.4.2 (Python 3.9), compiled offline with VPU_MYRIAD_PLATFORM=VPU_MYRIAD_2480",
        "generator": "toolchain/probe_support.py",
        "models": "one op per IR v10 model, f16 Parameters unless the variant says otherwise",
        "run_seconds": round(seconds),
        "verdicts": rows,
    }
    atomic_write(JSON_OUT, json.dumps(payload, indent=1) + "\n")
    docs_notes, query_notes = disagreements(rows)
    compiled = sum(r["verdict"] == "compiled" for r in rows)
    refused = sum(r["verdict"] == "refused" for r in rows)
    lines = [
        "# What the real MYRIAD plugin (OpenVINO 2021.4.2) compiles",
        "",
        "Generated by `toolchain/probe_support.py` (do not edit by hand; rerun it). Each row is a one-op IR v10",
        "model (f16 inputs unless the variant says otherwise) put through `query_network` and then a real compile",
        "by the plugin from pip `openvino==2021.4.2`, offline (see docs/toolchain.md). The compile is the final",
        f"word. {len(rows)} probes: {compiled} compiled, {refused} refused, "
        f"{len(rows) - compiled - refused} not built; run took {seconds:.0f} s.",
        "Data: `kernelkit/facts/data/plugin-verdicts-2021.4.json`. `docs` is what the 2021.4 documentation says",
        "(reference notes ir-and-myriad-support.md §2.3): yes / no / ? (not listed).",
        "",
        "## Where the documentation and the real plugin disagree",
        "",
        *(docs_notes or ["- none found"]),
        "",
        "## Where query_network and the real compile disagree",
        "",
        *(query_notes or ["- none found"]),
        "",
        "## Reading the table",
        "",
        "- Rows whose message names another layer (`Abs_723`, `StaticShapeNonMaxSuppression_732`, ...) failed in a",
        "  layer the plugin's own nGraph passes made from the probed op (e.g. Mod and ReduceL1 decompose into Abs,",
        "  which 2021.4 has no parser for).",
        "- `dimension (-1) in node dim` (NonZero, NonMaxSuppression-5): the host OpenVINO writes data-dependent output",
        "  dims as -1 in IR v10, which the 2021.4 reader refuses; such IRs need static (upper-bound) dims.",
        "- BatchToSpace with a batch-4 network input fails because the plugin splits the network batch first;",
        "  it says nothing about a BatchToSpace inside a batch-1 network.",
        "- query_network answers by layer name; ops the plugin's passes rename or decompose (Subtract, Divide,",
        "  Concat, Split, BatchNormInference, DepthToSpace, ...) drop out of its answer although they compile. So",
        "  `unsupported` from query_network alone is no verdict, in either direction.",
        "- `query_network` = `error` means the 2021.4 reader or the plugin's passes threw before any verdict.",
        "",
        "## Not probed",
        "",
        "Loop-5, TensorIterator-1 (need sub-graphs), Assign-3/ReadValue-3 (stateful), and the six",
        "ExperimentalDetectron* ops of opset6 (no builder in the host Python API). Parameter, Result and Constant",
        "appear in every probe.",
        "",
        "## All probes",
        "",
        "| op | version | variant | docs | query_network | compile | plugin message |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        message = r["message"].replace("|", "\\|")
        if len(message) > 160:
            message = message[:157] + "..."
        lines.append(f"| {r['op']} | {r['version']} | {r['variant']} | {r['docs']} | {r['query'] or '-'} | "
                     f"{r['verdict']} | {message} |")
    atomic_write(MD_OUT, "\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--jobs", type=int, default=4, help="parallel compiles (default 4)")
    parser.add_argument("--only", metavar="REGEX", help="probe only ops whose name matches (no files written)")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the Markdown (and JSON) from the existing JSON, without compiling")
    parser.add_argument("--dry-run", action="store_true", help="only build the models and report build errors")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the generated models in DIR")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    probes = [p for p in PROBES if not args.only or re.search(args.only, p.op)]
    if args.render_only:
        payload = json.loads(JSON_OUT.read_text())
        write_outputs(payload["verdicts"], payload.get("run_seconds", 0))
        return 0
    if args.dry_run:
        with tempfile.TemporaryDirectory() as tmp:
            for item, xml, error in build_models(probes, args.keep or Path(tmp)):
                if error:
                    print(f"{item.op}-{item.version} ({item.variant}): {error}")
        return 0
    start = time.monotonic()
    rows = run(probes, args.jobs, args.keep)
    seconds = time.monotonic() - start
    if args.only:
        for r in rows:
            print(f"{r['op']:28} {r['version']:7} {r['variant']:24} {r['query']:12} {r['verdict']:10} {r['message'][:140]}")
        return 0
    write_outputs(rows, seconds)
    print(f"{len(rows)} probes in {seconds:.0f} s -> {JSON_OUT.relative_to(REPO)}, {MD_OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
