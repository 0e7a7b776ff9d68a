"""float64 reference: Col2Im (OpenVINO opset15 / ONNX opset 18): sum sliding blocks back into an image.

Input (N, C*prod(kernel_size), L) gives (N, C, *output_size). Attributes: output_size, kernel_size,
strides, dilations, pads_begin, pads_end (OpenVINO names; ONNX passes the first two as inputs).
"""

import numpy as np

from kernelkit.library.attrs import attr_ints


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    x = np.asarray(inputs[0], dtype=np.float64)
    image = [int(v) for v in np.asarray(inputs[1]).ravel()] if len(inputs) > 1 else attr_ints(attrs, "output_size")
    block = [int(v) for v in np.asarray(inputs[2]).ravel()] if len(inputs) > 2 else attr_ints(attrs, "kernel_size")
    rank = len(image)
    strides = attr_ints(attrs, "strides", [1] * rank)
    dilations = attr_ints(attrs, "dilations", [1] * rank)
    pads_begin = attr_ints(attrs, "pads_begin", [0] * rank)
    pads_end = attr_ints(attrs, "pads_end", [0] * rank)
    padded = [i + b + e for i, b, e in zip(image, pads_begin, pads_end)]
    counts = [(p - (d * (k - 1) + 1)) // s + 1 for p, d, k, s in zip(padded, dilations, block, strides)]
    n = x.shape[0]
    channels = x.shape[1] // int(np.prod(block))
    columns = x.reshape([n, channels] + block + counts)
    out = np.zeros([n, channels] + padded)
    for offset in np.ndindex(*block):
        window = tuple(slice(o * d, o * d + s * (c - 1) + 1, s)
                       for o, d, s, c in zip(offset, dilations, strides, counts))
        out[(slice(None), slice(None)) + window] += columns[(slice(None), slice(None)) + offset]
    crop = tuple(slice(b, b + i) for b, i in zip(pads_begin, image))
    return out[(slice(None), slice(None)) + crop]
