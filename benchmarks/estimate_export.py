"""Export the published RVC2 table's models to ONNX with random weights (benchmarks/estimate_calibration.py runs
this file in its own torch environment; torch is no dependency of the kit).

    python estimate_export.py OUT_DIR ROW [ROW ...]     # writes OUT_DIR/<row>.onnx and OUT_DIR/<row>.json

A row is `<model>_<size>` (ROWS in estimate_calibration.py). Weights are random and seeded: the blob's work
depends on the architecture and input size, not on the weights. Nothing is downloaded: torchvision and timm
constructors with pretrained off, Ultralytics models built from their yaml.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from torchvision_cpu import use_python_ops  # noqa: E402




def _torchvision(name):
    import torchvision

    def build():
        if name.startswith("deeplabv3"):
            inner = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)
            return _Wrapped(inner, lambda m, x: m(x)["out"])
        return getattr(torchvision.models, name)(weights=None)
    return build, f"torchvision {torchvision.__version__} models.{name}"


def _timm(name):
    import timm

    def build():
        from timm.utils.model import reparameterize_model

        # MobileOne deploys reparameterized (one conv per block), as Apple and Luxonis run it
        return reparameterize_model(timm.create_model(name, pretrained=False).eval())
    return build, f"timm {timm.__version__} {name} (reparameterized)"


def _ultralytics(yaml):
    import ultralytics

    def build():
        from ultralytics.nn.tasks import DetectionModel

        model = DetectionModel(yaml, verbose=False).eval()
        model.fuse(verbose=False)
        head = model.model[-1]
        head.export, head.format = True, "onnx"         # the decoded (1, 4+classes, anchors) output, no NMS
        if hasattr(head, "end2end"):
            head.end2end = False                         # YOLOv10: the one-to-many branch, no TopK selection
        return model
    return build, f"ultralytics {ultralytics.__version__} {yaml} (built from yaml)"


class _Wrapped:
    def __new__(cls, inner, forward):
        import torch

        class Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return forward(self.inner, x)
        return Module()


MODELS = {
    "resnet18": lambda: _torchvision("resnet18"),
    "resnet50": lambda: _torchvision("resnet50"),
    "deeplabv3_mobilenet_v3_large": lambda: _torchvision("deeplabv3_mobilenet_v3_large"),
    "mobileone_s0": lambda: _timm("mobileone_s0"),
    **{f"{v}{s}": (lambda y=f"{v}{s}.yaml": _ultralytics(y))
       for v in ("yolov8", "yolov9", "yolov10", "yolo11") for s in ("n", "t", "s", "m")},
}


def export(row: str, out_dir: Path) -> dict:
    import torch

    use_python_ops()

    name, size = row.rsplit("_", 1)
    build, source = MODELS[name]()
    torch.manual_seed(0)
    model = build().eval()
    x = torch.rand(1, 3, int(size), int(size))
    path = out_dir / f"{row}.onnx"
    started = time.monotonic()
    with torch.no_grad():
        torch.onnx.export(model, (x,), str(path), opset_version=11, input_names=["input"], dynamo=False,
                          do_constant_folding=True)
    meta = {"row": row, "source": source + " (random weights)", "torch": torch.__version__, "opset": 11,
            "input": [1, 3, int(size), int(size)], "export_seconds": round(time.monotonic() - started, 1)}
    (out_dir / f"{row}.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for row in argv[1:]:
        try:
            print(json.dumps(export(row, out_dir)), flush=True)
        except Exception as exc:          # one failed export must not stop the others
            failed += 1
            print(json.dumps({"row": row, "error": f"{type(exc).__name__}: {exc}"[:400]}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
