"""Native formulations of the normalisations the MYRIAD 2021.4 plugin has no stage for, through its MVN-6
stage (mean and variance over constant axes, computed by the stage, not by fp16 reductions in the graph):
GroupNormalization-12.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, input_of


@formulation("groupnormalization", text="Reshape to groups, MVN-6 over each group, Reshape back, times scale plus "
             "bias")
def group_normalization(model, layer) -> Out:
    """GroupNormalization-12 = Reshape [N, G, C/G * spatial], MVN-6 over the last axis (eps inside the
    square root), Reshape back, times scale[C] plus bias[C]."""
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input is {x.precision}; the formulation is for floating point")
    if len(x.dims) < 2 or any(d <= 0 for d in x.dims):
        raise Refuse("a dynamic or zero dimension")
    groups = int(layer.attrs["num_groups"])
    n, channels = x.dims[:2]
    if channels % groups:
        raise Refuse(f"{channels} channels do not split into {groups} groups")
    c = Composer(model, layer, x)
    grouped = c.reshape(x, [n, groups, int(np.prod(x.dims[1:])) // groups])
    normalised = c.op("MVN", [grouped, c.ints([2], "axes")],
                      {"normalize_variance": "true", "eps": layer.attrs.get("epsilon", "1e-5"),
                       "eps_mode": "inside_sqrt"}, version="opset6")
    back = c.reshape(normalised, x.dims)
    per_channel = [1, channels] + [1] * (len(x.dims) - 2)
    scale = c.reshape(input_of(model, layer, 1), per_channel)
    bias = c.reshape(input_of(model, layer, 2), per_channel)
    return c.add(c.mul(back, scale), bias)
