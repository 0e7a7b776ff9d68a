"""torchvision on a CPU-only torch: the side environment's torchvision wheel is a CUDA build whose compiled ops
(`torchvision._C`) cannot load beside torch+cpu, and importing torchvision then fails on the missing `nms`.

`use_python_ops()`, called before torchvision is imported, declares the two schemas torchvision registers fakes for
and gives `nms` a plain torch implementation, so detection models trace (their ONNX export maps the op to ONNX
NonMaxSuppression through torchvision's own symbolic; the Python body only runs during tracing).
"""

from __future__ import annotations

_LIBRARY = None


def _nms(dets, scores, iou_threshold: float):
    import torch

    order = torch.argsort(scores, descending=True)
    keep = []
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    for rank, index in enumerate(order.tolist()):
        if suppressed[rank]:
            continue
        keep.append(index)
        rest = order[rank + 1:]
        width = (torch.minimum(x2[rest], x2[index]) - torch.maximum(x1[rest], x1[index])).clamp(min=0)
        height = (torch.minimum(y2[rest], y2[index]) - torch.maximum(y1[rest], y1[index])).clamp(min=0)
        overlap = width * height
        iou = overlap / (areas[rest] + areas[index] - overlap)
        suppressed[rank + 1:] |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def use_python_ops() -> None:
    global _LIBRARY
    import torch

    if _LIBRARY is not None:
        return
    try:
        torch.ops.torchvision.nms
        return                      # the compiled ops loaded: nothing to stand in for
    except (AttributeError, RuntimeError):
        pass
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.impl("nms", _nms, "CPU")
    import torchvision.extension

    # batched_nms asks whether the compiled ops loaded before it calls nms; the stand-in answers for them
    torchvision.extension._has_ops = _ops_present


def _ops_present() -> bool:
    return True
