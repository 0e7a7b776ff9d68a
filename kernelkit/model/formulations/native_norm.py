"""Native formulations of the normalisations the MYRIAD 2021.4 plugin has no stage for, through its MVN-6
stage (mean and variance over constant axes, computed by the stage, not by fp16 reductions in the graph):
GroupNormalization-12; MVN-2, whose one input the 2021.4 parser refuses, as MVN-6; and MVN on a rank other
than 3 or 4 ("2 input rank provided to MVN_8 layer, but only 3D and 4D supported") on a 3-D view.
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, constant_input, input_of

MVN_RANKS = (3, 4)          # the only ranks the MYRIAD plugin's MVN stage takes


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


def plugin_takes_axes(rank: int, axes) -> bool:
    """Whether the 2021.4 MVN stage takes these axes: rank 3 or 4, the innermost axis normalised, and on 4-D
    not the batch ("Unsupported combination of indices in layer "L". Only across channel, width and full batch
    supported." for 4-D axes [1], [1, 2], [0, 1, 2, 3] and 3-D [1]; [3], [1, 3], 3-D [2] and [0, 1, 2] compile:
    measured on the real plugin, tests/test_patch_confirm.py)."""
    normalised = {a % rank for a in axes}
    return rank in MVN_RANKS and rank - 1 in normalised and (rank != 4 or 0 not in normalised)


def mvn(c: Composer, x: Out, axes: list[int], attrs: dict) -> Out:
    """MVN-6 of `x` over `axes`; where the plugin's MVN stage refuses the rank or the axes, over a 3-D view
    [outer, normalised, 1] (axes 1, 2) of `x`, its normalised axes moved last by a Transpose when they are not."""
    rank = len(x.dims)
    if plugin_takes_axes(rank, axes):
        return c.op("MVN", [x, c.ints(axes, "axes")], attrs, version="opset6")
    normalised = sorted({a % rank for a in axes})
    if any(d <= 0 for d in x.dims):
        raise Refuse("a dynamic or zero dimension")
    if 0 in normalised and _network_batch(c.model):
        # measured: the plugin compiles such a network one sample at a time and refuses the view across samples
        raise Refuse("an MVN across the samples of a network the plugin compiles one sample at a time")
    order = [a for a in range(rank) if a not in normalised] + normalised
    moved = c.transpose(x, order) if order != list(range(rank)) else x
    dims = [x.dims[a] for a in order]
    outer = int(np.prod(dims[:rank - len(normalised)], dtype=np.int64))
    view = c.reshape(moved, [outer, int(np.prod(dims, dtype=np.int64)) // outer, 1])
    back = c.reshape(c.op("MVN", [view, c.ints([1, 2], "axes")], attrs, version="opset6"), dims)
    return c.transpose(back, [order.index(a) for a in range(rank)]) if moved is not x else back


def _network_batch(model) -> int | None:
    from kernelkit.kernel.bindings.myriad_select import network_batch

    return network_batch([p.outputs[0].dims for p in model.parameters()])


def _mvn2_axes(layer, rank: int) -> list[int]:
    """MVN-2's normalised axes: `reduction_axes`, else from axis 1 (across_channels) or 2 on."""
    given = layer.attrs.get("reduction_axes")
    if given:
        return [int(a) for a in given.split(",")]
    across = layer.attrs.get("across_channels", "false").lower() in ("true", "1")
    return list(range(1 if across else 2, rank))


@formulation("mvn", text="MVN-6 (MVN-2's axes as an input; a rank or axes the stage refuses on a 3-D view "
             "[outer, normalised, 1], axes 1 and 2, the normalised axes moved last)")
def mvn_the_plugin_takes(model, layer) -> Out:
    """MVN-2 (the 2021.4 parser wants MVN-6's axes input) or MVN-6 of a rank or axes its stage refuses (a
    LayerNormalization over a [N, C] tensor, an MVN over the channels alone)."""
    x = input_of(model, layer, 0)
    c = Composer(model, layer, x)
    if len(layer.inputs) < 2:
        attrs = {"normalize_variance": layer.attrs["normalize_variance"], "eps": layer.attrs["eps"],
                 "eps_mode": "inside_sqrt"}          # MVN-2 adds eps to the variance
        return mvn(c, x, _mvn2_axes(layer, len(x.dims)), attrs)
    axes = constant_input(model, layer, 1)
    if axes is None:
        raise Refuse("the axes are computed at run time")
    axes = [int(a) for a in np.ravel(axes)]
    if plugin_takes_axes(len(x.dims), axes):
        raise Refuse(f"a {len(x.dims)}-D MVN-6 over axes {axes}: a form the plugin takes")
    return mvn(c, x, axes, dict(layer.attrs.items()))
