"""`kernelkit archive`: pack a compiled superblob (or blob) into a Luxonis NN Archive."""

from __future__ import annotations

import argparse
import sys

NAME = "archive"
HELP = ("pack a patch folder's superblob (compiled if it has none), a .superblob or a .blob into an NN Archive "
        "(.tar.xz) for DepthAI")
DESCRIPTION = (HELP + ". Inputs, outputs and their types are read from the compiled model, each input's layout "
               "(NCHW/NHWC) as `kernelkit patch` stated it (a TFLite input is NHWC); the preprocessing "
               "`kernelkit patch` built into the model is not declared again. Exit 0 written, 1 the plugin "
               "refused a SHAVE count, 2 bad input, 3 toolchain unavailable.")
ORDER = 65


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def add_arguments(parser):
    from kernelkit.delivery.heads import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, PARSERS, YOLO_FAMILIES

    parser.add_argument("source", metavar="SOURCE", help="a `kernelkit patch` folder, a .superblob or a .blob")
    parser.add_argument("-o", "--output", required=True, metavar="NAME.tar.xz", help="archive to write")
    parser.add_argument("--name", help="model name in the archive (default: from the output file name)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--superblob", dest="superblob", action="store_const", const=True, default=None,
                      help="pack a superblob (the default for a folder: its .superblob, else one compiled from its "
                           "model.xml for every SHAVE count 1-16; DepthAI runs it at 8 SHAVEs unless told)")
    kind.add_argument("--blob", dest="superblob", action="store_const", const=False,
                      help="pack a plain .blob instead (a folder's one .blob, at the SHAVEs it was compiled for)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="compiles at once when a superblob is compiled (default: KERNELKIT_SUPERBLOB_JOBS, "
                             "else as many as the cores and half the free memory allow)")
    parser.add_argument("--fp16-output", action="store_true",
                        help="the superblob compiled here gets FP16 float outputs, half the bytes of FP32 (like "
                             "compile_tool -op FP16); a blob already compiled must have them. Output dtypes in "
                             "config.json are always the blob's own")
    pre = parser.add_argument_group("preprocessing DepthAI applies before the model (declare it only when the "
                                    "model does not do it itself; `kernelkit patch` builds its own into the model)")
    pre.add_argument("--mean", type=_floats, help="per-channel mean, e.g. 123.7,116.3,103.5 (default 0)")
    pre.add_argument("--scale", type=_floats, help="per-channel scale, e.g. 58.4,57.1,57.4 (default 1)")
    pre.add_argument("--reverse-channels", action=argparse.BooleanOptionalAction, default=None,
                     help="the model wants RGB rather than DepthAI's BGR frames (default no); sets dai_type RGB…")
    head = parser.add_argument_group("head: how DepthAI decodes the outputs (luxonis-ml config v1.0 `heads`)")
    head.add_argument("--head", choices=list(PARSERS),
                      help="yolo and ssd are decoded by DepthAI's DetectionParser; classification and "
                           "segmentation by depthai-nodes (default: no head; a folder of `patch --head yolo` "
                           "declares its YOLO head, with its keypoints or masks, by itself)")
    head.add_argument("--classes", type=_names, metavar="A,B,...", help="class names, in the model's order")
    head.add_argument("--n-classes", type=int, metavar="N",
                      help="class count (default: --classes, else read from the outputs' channels where they say)")
    head.add_argument("--subtype", metavar="NAME",
                      help=f"YOLO decoding subtype, needed with --head yolo: {', '.join(YOLO_FAMILIES)}")
    head.add_argument("--strides", type=_ints, metavar="S,S,...",
                      help="YOLO strides, one per output in name order (default: input size / grid size)")
    head.add_argument("--iou-threshold", type=float, metavar="T", help=f"NMS IoU threshold (default {DEFAULT_IOU})")
    head.add_argument("--conf-threshold", type=float, metavar="T",
                      help=f"confidence threshold (default {DEFAULT_CONF})")
    head.add_argument("--max-det", type=int, metavar="N",
                      help=f"detections per image (default: YOLO {DEFAULT_MAX_DET}, SSD the DetectionOutput rows)")
    head.add_argument("--anchors", metavar="JSON",
                      help="YOLO anchors per output as JSON [[[w,h],...],...] (anchor-based subtypes)")
    head.add_argument("--is-softmax", action=argparse.BooleanOptionalAction, default=None,
                      help="classification/segmentation scores are already softmaxed (default no)")
    head.add_argument("--head-outputs", type=_names, metavar="NAME,...",
                      help="the outputs the head reads (default: YOLO the outputs named *yolo*, else all)")


def run(args) -> int:
    from kernelkit.delivery.archive import build_archive
    from kernelkit.delivery.heads import HeadOptions

    head = HeadOptions(kind=args.head, classes=args.classes, n_classes=args.n_classes, subtype=args.subtype,
                       strides=args.strides, iou_threshold=args.iou_threshold, conf_threshold=args.conf_threshold,
                       max_det=args.max_det, anchors=args.anchors, is_softmax=args.is_softmax,
                       outputs=args.head_outputs)
    if args.jobs is not None and args.jobs < 1:
        from kernelkit.core.errors import KernelkitError

        raise KernelkitError(f"{args.jobs} compiles at once: give at least 1", where="--jobs")
    from kernelkit.myriad.compile import CompileFailed

    try:
        result = build_archive(args.source, args.output, name=args.name, mean=args.mean, scale=args.scale,
                               reverse_channels=args.reverse_channels, superblob=args.superblob, head=head,
                               jobs=args.jobs, fp16_output=args.fp16_output)
    except CompileFailed as exc:
        print(f"kernelkit: compile failed: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"kernelkit: warning: {warning}", file=sys.stderr)
    model = result.config["model"]
    heads = ", ".join(h["parser"] for h in model["heads"]) or "no head"
    made = " (compiled for every SHAVE count 1-16)" if result.compiled else ""
    print(f"wrote {result.path}: {result.blob_name}{made}, {len(model['inputs'])} input(s), "
          f"{len(model['outputs'])} output(s), {heads}")
    return 0
