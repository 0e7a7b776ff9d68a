"""The tensor formats a custom-layer binding may declare, and what the plugins make of each.

MYRIAD (docs/bindings.md; measured with `kernelkit plugin-check` on the 2021.4 plugin, docs/plugin-check.md):
channel-last formats move F (the third axis from the end) last; BFYX/BYXF force a 4-D order and FYX/YXF a 3-D one
(the plugin asserts isOrdersCompatible on another rank); BF and ANY force none, and ANY keeps no layout at all.
The Intel GPU plugin knows fewer formats: a 3-D MYRIAD format is its 4-D one, BF is ANY.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorFormat:
    name: str                 # as a MYRIAD binding writes it (upper case)
    layout: str | None        # the IR layout it stands for; None: any
    rank: int | None          # the rank whose order the plugin forces on the tensor; None: any rank
    channel_last: bool        # F moved last (NHWC, HWC)
    gpu: str                  # the GPU binding's format for the same data


TENSOR_FORMATS = {f.name: f for f in (
    TensorFormat("BFYX", "NCHW", 4, False, "BFYX"),
    TensorFormat("BYXF", "NHWC", 4, True, "BYXF"),
    TensorFormat("FYX", "CHW", 3, False, "BFYX"),
    TensorFormat("YXF", "HWC", 3, True, "BYXF"),
    TensorFormat("BF", "NC", None, False, "ANY"),
    TensorFormat("ANY", None, None, False, "ANY"),
)}

GPU_TENSOR_FORMATS = ("BFYX", "BYXF", "YXFB", "FYXB", "ANY")

# The layout the IR gives a tensor of each rank; the MYRIAD plugin binds only these ranks (rank 0, 1 and 5
# tensors get a layout it reports as "Tensor node has an invalid format").
RANK_LAYOUTS = {2: "NC", 3: "CHW", 4: "NCHW"}
