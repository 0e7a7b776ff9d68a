"""Export models to ONNX for the model-zoo run (tools/model_zoo.py runs this file): torchvision architectures,
timm's small vision transformers as timm's own exporter writes them, and Ultralytics detectors as `yolo export
format=onnx` writes them (its default opset and onnxslim pass).

Runs in the zoo's own Python environment (the torch side environment of tools/venvs.py), never in kernelkit's:
torch is not a dependency of the kit. Weights are random (constructors with weights=None / pretrained=False,
Ultralytics models built from their yaml, seeded): what blocks a model on MYRIAD depends on its graph, not on
its weights. Nothing is downloaded.

    python zoo_export.py OUT_DIR NAME [NAME ...]      # writes OUT_DIR/<name>.onnx and OUT_DIR/<name>.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# name -> (torchvision constructor, input shape(s), ONNX opset, extra constructor arguments)
MODELS = {
    "mobilenet_v2": ("models.mobilenet_v2", [(1, 3, 224, 224)], 13, {}),
    "mobilenet_v2_op11": ("models.mobilenet_v2", [(1, 3, 224, 224)], 11, {}),
    "mobilenet_v3_small": ("models.mobilenet_v3_small", [(1, 3, 224, 224)], 13, {}),
    "mobilenet_v3_large": ("models.mobilenet_v3_large", [(1, 3, 224, 224)], 13, {}),
    "mobilenet_v3_large_op17": ("models.mobilenet_v3_large", [(1, 3, 224, 224)], 17, {}),
    "efficientnet_b0": ("models.efficientnet_b0", [(1, 3, 224, 224)], 13, {}),
    "efficientnet_b0_op11": ("models.efficientnet_b0", [(1, 3, 224, 224)], 11, {}),
    "regnet_y_400mf": ("models.regnet_y_400mf", [(1, 3, 224, 224)], 13, {}),
    "shufflenet_v2_x1_0": ("models.shufflenet_v2_x1_0", [(1, 3, 224, 224)], 13, {}),
    "squeezenet1_1": ("models.squeezenet1_1", [(1, 3, 224, 224)], 11, {}),
    "resnet18": ("models.resnet18", [(1, 3, 224, 224)], 13, {}),
    "resnet18_op17": ("models.resnet18", [(1, 3, 224, 224)], 17, {}),
    "convnext_tiny": ("models.convnext_tiny", [(1, 3, 224, 224)], 13, {}),
    "convnext_tiny_op17": ("models.convnext_tiny", [(1, 3, 224, 224)], 17, {}),
    "vit_b_16": ("models.vit_b_16", [(1, 3, 224, 224)], 14, {}),      # attention exports from opset 14
    "swin_t": ("models.swin_t", [(1, 3, 224, 224)], 13, {}),
    "ssdlite320_mobilenet_v3_large": ("models.detection.ssdlite320_mobilenet_v3_large", [(3, 320, 320)], 13,
                                      {"weights_backbone": None}),
    "fcos_resnet50_fpn": ("models.detection.fcos_resnet50_fpn", [(3, 320, 320)], 13,
                          {"weights_backbone": None, "min_size": 320, "max_size": 320}),
    "retinanet_resnet50_fpn": ("models.detection.retinanet_resnet50_fpn", [(3, 320, 320)], 13,
                               {"weights_backbone": None, "min_size": 320, "max_size": 320}),
    "deeplabv3_mobilenet_v3_large": ("models.segmentation.deeplabv3_mobilenet_v3_large", [(1, 3, 256, 256)], 13,
                                     {"weights_backbone": None}),
    "lraspp_mobilenet_v3_large": ("models.segmentation.lraspp_mobilenet_v3_large", [(1, 3, 256, 256)], 13,
                                  {"weights_backbone": None}),
    "raft_small": ("models.optical_flow.raft_small", [(1, 3, 128, 128), (1, 3, 128, 128)], 17, {}),
}


# timm models: exported by timm.utils.onnx.onnx_export with its defaults (the TorchScript exporter at torch's
# default opset, a dynamic batch axis on input0), as timm's onnx_export.py script does.
TIMM_MODELS = ["deit_tiny_patch16_224", "mobilevit_xxs", "levit_128s", "efficientformerv2_s0"]

# Ultralytics detectors: YOLO(yaml).export(format="onnx") with every default (opset, simplify, 640x640, no NMS).
YOLO_MODELS = {"yolov8n_ultralytics": "yolov8n.yaml", "yolo11n_ultralytics": "yolo11n.yaml"}

ALL = [*MODELS, *TIMM_MODELS, *YOLO_MODELS]


def _detections(model, image):
    """torchvision's detection models take a list of images: one image's boxes, scores and labels."""
    result = model([image])[0]
    return result["boxes"], result["scores"], result["labels"]


# What to export of models whose forward() returns more than a tensor, by torchvision sub-package.
OUTPUTS = {
    "detection": _detections,
    "segmentation": lambda model, x: model(x)["out"],
    "optical_flow": lambda model, first, second: model(first, second, num_flow_updates=6)[-1],   # the last flow
}


def _exported(model, forward):
    import torch

    class Exported(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, *inputs):
            return forward(self.inner, *inputs)

    return Exported()


def _unzero_weights(module) -> int:
    """Weights a constructor leaves at zero (torchvision's ViT zeroes its classification head) make the output
    a constant no check can fail: they get seeded small normal weights. Returns how many."""
    import torch

    zeroed = [m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
              and not torch.any(m.weight)]
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in zeroed:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.02)
    return len(zeroed)


def _calibrate_batchnorm(module, shapes) -> int:
    """Random weights with BatchNorm's default statistics (mean 0, variance 1) shrink a deep network's
    activations layer after layer (EfficientNet-B0 reaches 1e-8, which fp16 flushes to zero): a property of the
    random weights, not of the architecture, that trained statistics do not have. So, as with trained weights,
    each BatchNorm's statistics are those of its own input: measured over a few seeded inputs in [-1, 1) (what
    `kernelkit verify` feeds), BatchNorm layers alone in training mode. Returns how many were calibrated."""
    import torch

    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None            # a plain average over the calibration passes
        norm.train()
    generator = torch.Generator().manual_seed(1)

    def sample(shape):
        return torch.rand(shape, generator=generator) * 2 - 1

    with torch.no_grad():              # batches of 8: a 1x1 map holds one value per channel at batch 1
        for _ in range(4):
            if len(shapes[0]) == 3:    # a detector: a list of images
                getattr(module, "inner", module)([sample(shapes[0]) for _ in range(8)])
            else:
                module(*(sample((8, *shape[1:])) for shape in shapes))
    for norm in norms:
        norm.eval()
    return len(norms)


def _onnx_facts(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    inputs = {i.name: [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    return {"opset": opset, "inputs": inputs}


def export_timm(name: str, out_dir: Path) -> dict:
    import timm
    import torch
    from timm.utils.onnx import onnx_export

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    path = out_dir / f"{name}.onnx"
    size = model.pretrained_cfg["input_size"]
    calibrated = _calibrate_batchnorm(model, [(1, *size)])
    started = time.monotonic()
    onnx_export(model, str(path), batch_size=1, input_size=size)
    facts = _onnx_facts(path)
    # timm exports a dynamic batch: the OAK user fixes it to 1
    args = ["--input-shape", "input0=1," + ",".join(str(d) for d in size)]
    meta = {"name": name, "source": f"timm {timm.__version__} {name} (pretrained=False, random weights)",
            "torch": torch.__version__, **facts, "args": args, "batchnorm_calibrated": calibrated,
            "export_seconds": round(time.monotonic() - started, 1)}
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return meta


def export_yolo(name: str, out_dir: Path) -> dict:
    import os
    import shutil
    import tempfile

    import torch

    os.environ.setdefault("YOLO_OFFLINE", "1")          # no update check, no font download
    import ultralytics
    from ultralytics import YOLO

    torch.manual_seed(0)
    yaml = YOLO_MODELS[name]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)                                    # the exporter writes beside the yaml's name
        try:
            yolo = YOLO(yaml)
            calibrated = _calibrate_batchnorm(yolo.model, [(1, 3, 320, 320)])
            written = yolo.export(format="onnx", imgsz=640)
        finally:
            os.chdir(cwd)
        shutil.move(str(Path(tmp) / written), out_dir / f"{name}.onnx")
    facts = _onnx_facts(out_dir / f"{name}.onnx")
    meta = {"name": name, "source": f"ultralytics {ultralytics.__version__} {yaml} (built from yaml, random "
            "weights; `yolo export format=onnx` defaults)", "torch": torch.__version__, **facts, "args": [],
            "batchnorm_calibrated": calibrated,
            "export_seconds": round(time.monotonic() - started, 1)}
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return meta


def export(name: str, out_dir: Path) -> dict:
    import torch

    if name in TIMM_MODELS or name in YOLO_MODELS:
        from torchvision_cpu import use_python_ops

        use_python_ops()                 # timm and ultralytics import torchvision
        return (export_timm if name in TIMM_MODELS else export_yolo)(name, out_dir)

    from torchvision_cpu import use_python_ops

    use_python_ops()
    import torchvision

    constructor, shapes, opset, extra = MODELS[name]
    torch.manual_seed(0)
    # The fused attention fast path exports to nothing ONNX knows; the plain path exports MatMul/Softmax.
    torch.backends.mha.set_fastpath_enabled(False)
    factory = torchvision
    for part in constructor.split("."):
        factory = getattr(factory, part)
    model = factory(weights=None, **extra).eval()
    package = constructor.split(".")[1] if constructor.count(".") > 1 else None
    module = _exported(model, OUTPUTS[package]) if package in OUTPUTS else model
    unzeroed = _unzero_weights(module)
    calibrated = _calibrate_batchnorm(module, shapes)
    inputs = tuple(torch.rand(shape) for shape in shapes)
    names = ["input"] if len(shapes) == 1 else [f"input{i}" for i in range(len(shapes))]
    path = out_dir / f"{name}.onnx"
    started = time.monotonic()
    with torch.no_grad():
        torch.onnx.export(module, inputs, str(path), opset_version=opset, input_names=names, dynamo=False,
                          do_constant_folding=True)
    meta = {"name": name, "source": f"torchvision {torchvision.__version__} {constructor} (random weights)",
            "torch": torch.__version__, "opset": opset, "batchnorm_calibrated": calibrated,
            "zero_weights_replaced": unzeroed, "inputs": {n: list(s) for n, s in zip(names, shapes)},
            "export_seconds": round(time.monotonic() - started, 1)}
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2))
    return meta


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in argv[1:] or ALL:
        try:
            print(json.dumps(export(name, out_dir)), flush=True)
        except Exception as exc:          # one failed export must not stop the corpus
            failed += 1
            print(json.dumps({"name": name, "error": f"{type(exc).__name__}: {exc}"[:400]}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
