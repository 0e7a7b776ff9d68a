"""TFLite custom ops whose meaning is public, converted to OpenVINO ops (conversion extensions for OpenVINO's
TFLite frontend), so the models that use them convert.

Convolution2DTransposeBias (MediaPipe, mediapipe/util/tflite/operations/transpose_conv_bias.cc): a transposed
convolution of an NHWC input by OHWI weights plus a bias per output channel. Its custom options are
TfLiteTransposeConvParams {int32 padding (1 SAME, 2 VALID), int32 stride_width, int32 stride_height}. With SAME
the total padding per axis is max(0, k - (in - 1) % stride - 1), half of it (rounded down) at the start; the
output is stride * (in - 1) + k - that padding. Input pixel (y, x) adds into output (y * stride - pad_begin + fy,
...), the rest cropped: exactly ConvolutionBackpropData with those pads."""

from __future__ import annotations

import struct

from kernelkit.core.errors import KernelkitError

CONVERTIBLE = ("Convolution2DTransposeBias",)


def extensions(graph, path, errors: list) -> list:
    """The conversion extensions for the custom ops of `graph` (a tflite_file.TfliteGraph) kernelkit converts.
    The frontend translates operators in the file's order; each call takes the next operator of its type. A
    KernelkitError raised inside is appended to `errors` (OpenVINO re-raises it as its own error type)."""
    from openvino.frontend import ConversionExtension

    def guarded(convert, queue):
        def run(ctx):
            try:
                return convert(ctx, queue, graph, path)
            except KernelkitError as exc:
                errors.append(exc)
                raise
        return run

    result = []
    for op, convert in (("Convolution2DTransposeBias", _transpose_conv_bias),):
        queue = [o for o in graph.operators if o.custom and o.op == op]
        if queue:
            result.append(ConversionExtension(op, guarded(convert, queue)))
    return result


def _transpose_conv_bias(ctx, queue, graph, path):
    import numpy as np
    import openvino.opset13 as ops

    if not queue:
        raise KernelkitError("OpenVINO converted more Convolution2DTransposeBias ops than the file holds", path=path)
    operator = queue.pop(0)
    where = f"custom op {operator.describe()}"
    if ctx.get_input_size() != 3 or len(operator.options) < 12:
        raise KernelkitError("Convolution2DTransposeBias needs 3 inputs and 12 bytes of options (padding, "
                             f"stride_width, stride_height); this one has {ctx.get_input_size()} inputs and "
                             f"{len(operator.options)} bytes", path=path, where=where)
    padding, stride_w, stride_h = struct.unpack_from("<iii", operator.options)
    data, weights, bias = (ctx.get_input(i) for i in range(3))
    declared = graph.tensors[operator.inputs[1]].shape if 0 <= operator.inputs[1] < len(graph.tensors) else None
    shape = data.get_partial_shape()
    wshape = weights.get_partial_shape()
    if not (shape.is_static and wshape.is_static and len(shape) == 4 and len(wshape) == 4):
        raise KernelkitError("Convolution2DTransposeBias needs static 4-D input and weights", path=path, where=where)
    in_h, in_w = shape[1].get_length(), shape[2].get_length()
    out_c, k_h, k_w = (wshape[i].get_length() for i in range(3))
    if declared is not None and list(declared) != [out_c, k_h, k_w, wshape[3].get_length()]:
        raise KernelkitError(f"the converted weights {[out_c, k_h, k_w]} are not this op's {declared}: the frontend "
                             "translated the ops in another order than the file", path=path, where=where)
    if padding not in (1, 2) or stride_w < 1 or stride_h < 1:
        raise KernelkitError(f"padding {padding}, strides {stride_w}x{stride_h}: expected padding 1 (SAME) or 2 "
                             "(VALID) and positive strides", path=path, where=where)
    pads = [0, 0]
    if padding == 1:
        pads = [max(0, k - (n - 1) % s - 1) for k, n, s in ((k_h, in_h, stride_h), (k_w, in_w, stride_w))]
    nchw = ops.transpose(data, np.array([0, 3, 1, 2], np.int64))
    iohw = ops.transpose(weights, np.array([3, 0, 1, 2], np.int64))
    deconv = ops.convolution_backprop_data(nchw, iohw, strides=[stride_h, stride_w],
                                           pads_begin=[p // 2 for p in pads], pads_end=[p - p // 2 for p in pads],
                                           dilations=[1, 1])
    biased = ops.add(deconv, ops.reshape(bias, np.array([1, out_c, 1, 1], np.int64), special_zero=False))
    return [ops.transpose(biased, np.array([0, 2, 3, 1], np.int64)).output(0)]
