"""Runs in the torch side environment (tools/venvs.torch_python): Ultralytics models built from their yaml with
seeded random weights (BatchNorm statistics taken from Ultralytics' bus.jpg, the head's last convolutions
rescaled to that image's features) so a few cells detect with confidence, exported with Ultralytics' own
`model.export(format="onnx")`; and Ultralytics' own decoding (non_max_suppression) of an output0 array.

    python ultralytics_side.py export YAML SIZE OUT_DIR     # OUT_DIR/<stem>.onnx, OUT_DIR/<stem>.image.npz
    python ultralytics_side.py decode OUTPUT0.npy CONF IOU [NC]  # JSON list of [x1, y1, x2, y2, conf, class, extra...]
    python ultralytics_side.py masks PROTOS.npy ROWS.json SIZE OUT.npy  # process_mask of the kept rows' coefficients
    python ultralytics_side.py paint PROTOS.npy ROWS.json SIZE OUT.npy  # the same rows as DepthAI paints its index mask

NC: the class count, when output0 holds rows after the class scores (Pose keypoints, Segment mask coefficients).
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("YOLO_AUTOINSTALL", "False")      # never pip-install from inside a test
os.environ.setdefault("YOLO_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))


def export(yaml, size, out_dir):
    size = int(size)
    from torchvision_cpu import use_python_ops

    use_python_ops()
    import numpy as np
    import torch
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    import cv2
    import ultralytics

    torch.manual_seed(0)
    model = YOLO(yaml)
    image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    image = LetterBox((size, size), auto=False)(image=image)
    x = np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
    net = model.model.eval()
    head = net.model[-1]
    proto = getattr(head, "proto", None)
    if proto is not None and isinstance(getattr(proto, "upsample", None), torch.nn.ConvTranspose2d):
        # a Segment head: its random 2x2 transposed convolution paints a checkerboard over the prototypes, which
        # no trained model has; made the nearest-neighbour upsample Ultralytics' own comment names instead
        with torch.no_grad():
            proto.upsample.weight.copy_(proto.upsample.weight[:, :, :1, :1].expand_as(proto.upsample.weight))

    def normalise(bn, args):
        # each BatchNorm's statistics taken from this image, as training would have: activations stay near 1
        # through the network (random weights alone shrink them to ~1e-8, which fp16 flushes to zero)
        x = args[0]
        bn.running_mean.copy_(x.mean((0, 2, 3)))
        bn.running_var.copy_(x.var((0, 2, 3)))
    norms = [m.register_forward_pre_hook(normalise) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        net(torch.from_numpy(x))
    for hook in norms:
        hook.remove()
    boxes = list(head.cv2) + list(getattr(head, "one2one_cv2", None) or [])     # YOLOv10: its one-to-one branch
    classes = list(head.cv3) + list(getattr(head, "one2one_cv3", None) or [])
    finals = [(branch[-1], "box") for branch in boxes] + [(branch[-1], "cls") for branch in classes]
    seen = {}
    hooks = [conv.register_forward_hook(lambda m, i, o, key=id(conv): seen.__setitem__(key, i[0]))
             for conv, _ in finals]
    with torch.no_grad():
        net(torch.from_numpy(x))
    for hook in hooks:
        hook.remove()
    # Random weights score every cell alike: rescale each final conv to the features this image gives, so the
    # class logits spread (std 2.5) and about 12 (cell, class) pairs per stride pass 0.5, and the DFL bins
    # peak near 1.5 cells with some spread: a few confident, separate boxes.
    with torch.no_grad():
        for conv, kind in finals:
            z = torch.nn.functional.conv2d(seen[id(conv)], conv.weight)
            conv.weight.mul_((2.5 if kind == "cls" else 0.8) / float(z.std()))
            z = torch.nn.functional.conv2d(seen[id(conv)], conv.weight)
            if kind == "cls":
                conv.bias.fill_(-float(torch.quantile(z.flatten(), 1.0 - 12.0 / z.numel())))
            else:
                conv.bias.copy_(-0.6 * (torch.arange(head.reg_max).repeat(4) - 1.5) ** 2)
    stem = Path(yaml).stem
    out_dir = Path(out_dir)
    onnx_path = model.export(format="onnx", imgsz=size)
    Path(onnx_path).replace(out_dir / f"{stem}.onnx")
    np.savez(out_dir / f"{stem}.image.npz", images=x)
    print(json.dumps({"onnx": str(out_dir / f"{stem}.onnx"), "ultralytics": ultralytics.__version__}))


def decode(path, conf, iou, nc="0"):
    from torchvision_cpu import use_python_ops

    use_python_ops()
    import numpy as np
    import torch
    from ultralytics.utils.nms import non_max_suppression

    pred = torch.from_numpy(np.load(path))
    (boxes,) = non_max_suppression(pred, conf_thres=float(conf), iou_thres=float(iou), agnostic=True, max_det=300,
                                   nc=int(nc))
    print(json.dumps(boxes.tolist()))


def masks(protos, rows, size, out):
    """Ultralytics' own mask decoding (ops.process_mask, upsampled to the input as its predictor does) of the
    rows `decode` kept: [x1, y1, x2, y2, conf, class, coefficients...]."""
    from torchvision_cpu import use_python_ops

    use_python_ops()
    import numpy as np
    import torch
    from ultralytics.utils.ops import process_mask

    protos = torch.from_numpy(np.load(protos))[0]
    kept = torch.tensor(json.loads(Path(rows).read_text()), dtype=torch.float32).reshape(-1, 6 + protos.shape[0])
    found = process_mask(protos, kept[:, 6:], kept[:, :4], (int(size), int(size)), upsample=True)
    np.save(out, found.numpy().astype(np.uint8))
    print(json.dumps({"masks": list(found.shape)}))


def paint(protos, rows, size, out):
    """The index mask DepthAI's YOLO segmentation decoding (depthai-core DetectionParserUtils segmentationDecode)
    makes of these rows, written from its documented steps with OpenCV as it uses OpenCV: per detection in order,
    logits = coefficients x prototypes; the box's crop of the prototype map (box corners floored / ceiled in image
    pixels, divided by the integer image/prototype ratio) resized to the box (INTER_LINEAR); pixels with a logit
    above 0 not yet claimed get the detection's index; 255 elsewhere."""
    import math

    import cv2
    import numpy as np

    protos = np.load(protos)[0].astype(np.float32)
    c, mh, mw = protos.shape
    size = int(size)
    sx, sy = size // mw, size // mh
    index = np.full((size, size), 255, np.uint8)
    for i, row in enumerate(json.loads(Path(rows).read_text())):
        logits = (np.asarray(row[6:6 + c], np.float32) @ protos.reshape(c, -1)).reshape(mh, mw)
        x0, y0 = (min(max(int(math.floor(v)), 0), size - 1) for v in row[0:2])
        x1, y1 = (min(max(int(math.ceil(v)), 0), size) for v in row[2:4])
        if x1 <= x0 or y1 <= y0:
            continue
        roi = cv2.resize(logits[y0 // sy:y1 // sy, x0 // sx:x1 // sx], (x1 - x0, y1 - y0),
                         interpolation=cv2.INTER_LINEAR)
        target = index[y0:y1, x0:x1]
        target[(roi > 0) & (target == 255)] = min(i, 254)
    np.save(out, index)
    print(json.dumps({"painted": int((index != 255).sum())}))


if __name__ == "__main__":
    {"export": export, "decode": decode, "masks": masks, "paint": paint}[sys.argv[1]](*sys.argv[2:])
