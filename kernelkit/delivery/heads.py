"""NN Archive heads: what `kernelkit archive --head` declares about a model's outputs, as luxonis-ml's config v1.0
writes it and DepthAI's DetectionParser reads it (depthai-core src/pipeline/node/DetectionParser.cpp).

DepthAI decodes YOLO (parser "YOLO") and SSD (parser "SSD") heads itself; classification and segmentation heads
are read by depthai-nodes' host parsers. The checks here are the ones DepthAI would otherwise fail on at run time,
or silently decode wrongly: a YOLO output whose name lacks "yolo" is never found, a channel count that does not
match the classes and the subtype's family is skipped, an SSD output must hold 7-value rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from kernelkit.core.errors import KernelkitError

EXTENDED_PARSER = "YOLOExtendedParser"   # a YOLO head with keypoints or masks (DepthAI reads both names)
PARSERS = {"yolo": "YOLO", "ssd": "SSD", "classification": "ClassificationParser",
           "segmentation": "SegmentationParser"}
# The subtype picks DepthAI's YOLO decoding family (DetectionParser::yoloDecodingFamilyResolver).
YOLO_FAMILIES = {
    "yolov6r1": "R1AF",
    "yolov6r2": "TLBR", "yolov6": "TLBR", "yolov8": "TLBR", "yolov10": "TLBR", "yolov11": "TLBR",
    "yolov3": "v3AB", "yolov3-tiny": "v3AB",
    "yolov5": "v5AB", "yolov7": "v5AB", "yolo-p": "v5AB", "yolov5-u": "v5AB",
}
ANCHOR_FAMILIES = ("v3AB", "v5AB")
YOLO_NAME_TERM = "yolo"          # DepthAI decodes only outputs whose names hold this (getSortedDetectionLayerNames)
SSD_ROW = 7                      # image_id, label, confidence, xmin, ymin, xmax, ymax (DetectionOutput)
# luxonis/tools' defaults for the detection thresholds
DEFAULT_IOU, DEFAULT_CONF, DEFAULT_MAX_DET = 0.5, 0.5, 300


@dataclass
class HeadOptions:
    kind: str | None = None                  # yolo | ssd | classification | segmentation
    classes: list[str] | None = None
    n_classes: int | None = None
    subtype: str | None = None
    strides: list[int] | None = None
    iou_threshold: float | None = None
    conf_threshold: float | None = None
    max_det: int | None = None
    anchors: str | list | None = None        # JSON text or nested lists: [[[w, h], ...] per output]
    is_softmax: bool | None = None
    outputs: list[str] | None = None         # the outputs the head reads (default: all)
    extra: dict | None = None                # Pose / Segment metadata recorded by `patch --head yolo`


_OPTION_NAMES = {"classes": "--classes", "n_classes": "--n-classes", "subtype": "--subtype",
                 "strides": "--strides", "iou_threshold": "--iou-threshold", "conf_threshold": "--conf-threshold",
                 "max_det": "--max-det", "anchors": "--anchors", "is_softmax": "--is-softmax",
                 "outputs": "--head-outputs"}
_APPLIES = {
    "yolo": {"classes", "n_classes", "subtype", "strides", "iou_threshold", "conf_threshold", "max_det", "anchors",
             "outputs"},
    "ssd": {"classes", "n_classes", "iou_threshold", "conf_threshold", "max_det", "outputs"},
    "classification": {"classes", "n_classes", "is_softmax", "outputs"},
    "segmentation": {"classes", "n_classes", "is_softmax", "outputs"},
}


def _refuse(option: str, message: str, hint: str | None = None) -> KernelkitError:
    return KernelkitError(message, where=_OPTION_NAMES.get(option, option), hint=hint)


def _spatial(entry: dict) -> tuple[int, int, int] | None:
    """(channels, height, width) of a 4-D tensor by its layout letters, else None."""
    layout, shape = entry["layout"], entry["shape"]
    if len(shape) != 4 or not all(letter in layout for letter in "CHW"):
        return None
    return tuple(shape[layout.index(letter)] for letter in "CHW")


def _class_count(options: HeadOptions) -> int | None:
    if options.classes is not None and options.n_classes is not None and len(options.classes) != options.n_classes:
        raise _refuse("classes", f"{len(options.classes)} class names for --n-classes {options.n_classes}",
                      "give one name per class, or leave out --n-classes")
    return len(options.classes) if options.classes is not None else options.n_classes


def _anchors(options: HeadOptions, outputs: int) -> list | None:
    value = options.anchors
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _refuse("anchors", f"not JSON: {exc.msg} at character {exc.pos}",
                          "e.g. --anchors '[[[10,13],[16,30],[33,23]],[[30,61],[62,45],[59,119]]]'") from None
    ok = isinstance(value, list) and all(
        isinstance(level, list) and level and all(
            isinstance(a, list) and len(a) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        and math.isfinite(v) and v > 0 for v in a)
            for a in level)
        for level in value) and value
    if not ok:
        raise _refuse("anchors", "anchors must be a list per output of [width, height] pairs of positive numbers",
                      "e.g. --anchors '[[[10,13],[16,30],[33,23]],[[30,61],[62,45],[59,119]]]'")
    if len(value) != outputs:
        raise _refuse("anchors", f"{len(value)} anchor lists for {outputs} YOLO outputs",
                      "give one list of anchors per output, smallest stride first")
    return [[[float(v) for v in a] for a in level] for level in value]


def recorded_options(options: HeadOptions, recorded: dict | None, outputs: list[dict]) -> HeadOptions:
    """`options` completed from the head `kernelkit patch --head yolo` recorded (patch-report.json "head"): what
    the user gives wins, the rest (subtype, strides, classes, outputs) is the recognised model's. Unchanged when
    nothing was recorded, another head is asked for, or the blob lacks the recorded outputs (another model)."""
    if not isinstance(recorded, dict) or recorded.get("parser") != "YOLO" or options.kind not in (None, "yolo"):
        return options
    names = recorded.get("yolo_outputs")
    if not isinstance(names, list) or not names or not set(names) <= {o["name"] for o in outputs}:
        return options
    classes, count = options.classes, options.n_classes
    if classes is None and count is None:
        recorded_classes = recorded.get("classes")
        if isinstance(recorded_classes, list) and all(isinstance(c, str) for c in recorded_classes):
            classes = list(recorded_classes)
        elif isinstance(recorded.get("n_classes"), int):
            count = recorded["n_classes"]
    strides = recorded.get("strides")
    extra = _recorded_extra(recorded, len(names), {o["name"] for o in outputs})
    return replace(options, kind="yolo", subtype=options.subtype or str(recorded.get("subtype") or "yolov8"),
                   strides=options.strides or (list(strides) if isinstance(strides, list) else None),
                   classes=classes, n_classes=count, outputs=options.outputs or [str(n) for n in names],
                   extra=extra)


def _recorded_extra(recorded: dict, levels: int, present: set[str]) -> dict | None:
    """The Pose / Segment metadata a recorded head carries (luxonis-ml's keys), when the blob has its outputs."""
    if recorded.get("task") == "pose":
        names, count = recorded.get("keypoints_outputs"), recorded.get("n_keypoints")
        if isinstance(names, list) and len(names) == levels and set(names) <= present and isinstance(count, int):
            return {"n_keypoints": count, "keypoints_outputs": [str(n) for n in names]}
    if recorded.get("task") == "segment":
        names, protos, count = (recorded.get(k) for k in ("mask_outputs", "protos_outputs", "n_prototypes"))
        if isinstance(names, list) and len(names) == levels and set(names) | {protos} <= present and \
                isinstance(count, int):
            return {"n_prototypes": count, "mask_outputs": [str(n) for n in names], "protos_outputs": str(protos)}
    return None


def make_head(options: HeadOptions, inputs: list[dict], outputs: list[dict],
              recorded: dict | None = None) -> dict | None:
    """The config.json head for `options` over the compiled model's `inputs` and `outputs`, or None without a
    head. `recorded`: the head `kernelkit patch --head` wrote to the patch report, which fills what the options
    leave out. KernelkitError naming the option for a combination DepthAI would not decode."""
    options = recorded_options(options, recorded, outputs)
    given = {name for name in _OPTION_NAMES if getattr(options, name) not in (None, [])}
    if options.kind is None:
        if given:
            name = sorted(given)[0]
            raise _refuse(name, "describes a head, and no --head is given",
                          f"add --head {'|'.join(PARSERS)}")
        return None
    if options.kind not in PARSERS:
        raise _refuse("--head", f"unknown head {options.kind!r}", f"use one of: {', '.join(PARSERS)}")
    for name in sorted(given - _APPLIES[options.kind]):
        raise _refuse(name, f"does not apply to a {options.kind} head",
                      f"a {options.kind} head takes: "
                      f"{', '.join(sorted(_OPTION_NAMES[n] for n in _APPLIES[options.kind]))}")
    by_name = {o["name"]: o for o in outputs}
    head_outputs = options.outputs or [o["name"] for o in outputs]
    if options.kind == "yolo" and not options.outputs:
        head_outputs = [n for n in head_outputs if YOLO_NAME_TERM in n] or head_outputs
    for name in head_outputs:
        if name not in by_name:
            raise _refuse("outputs", f"the model has no output {name!r}",
                          f"its outputs: {', '.join(by_name)}")
    if options.n_classes is not None and options.n_classes < 1:
        raise _refuse("n_classes", f"{options.n_classes} classes: give at least 1")
    for name in ("iou_threshold", "conf_threshold"):
        value = getattr(options, name)
        if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise _refuse(name, f"{value} is not a threshold between 0 and 1")
    if options.max_det is not None and options.max_det < 1:
        raise _refuse("max_det", f"{options.max_det} detections: give at least 1")
    build = {"yolo": _yolo, "ssd": _ssd, "classification": _classifier,
             "segmentation": _segmenter}[options.kind]
    metadata = build(options, inputs, [by_name[n] for n in head_outputs])
    head_outputs = metadata.get("yolo_outputs", head_outputs)
    parser = PARSERS[options.kind]
    if options.kind == "yolo" and options.extra:
        # luxonis/tools' Pose / Segment archives: DepthAI decodes keypoints when n_keypoints is set, masks when
        # the head's outputs include a name with "_masks"; depthai-nodes knows the parser by this name
        metadata |= options.extra
        parser = EXTENDED_PARSER
        head_outputs = head_outputs + list(options.extra.get("keypoints_outputs", [])) + \
            list(options.extra.get("mask_outputs", [])) + \
            ([options.extra["protos_outputs"]] if "protos_outputs" in options.extra else [])
    return {"parser": parser, "metadata": metadata, "outputs": head_outputs}


def _class_names(count: int, options: HeadOptions) -> list[str]:
    # luxonis-ml requires names; without them each class is named by its index
    return list(options.classes) if options.classes is not None else [str(i) for i in range(count)]


def _detection_common(options: HeadOptions, count: int, max_det: int) -> dict:
    return {"classes": _class_names(count, options), "n_classes": count,
            "iou_threshold": DEFAULT_IOU if options.iou_threshold is None else options.iou_threshold,
            "conf_threshold": DEFAULT_CONF if options.conf_threshold is None else options.conf_threshold,
            "max_det": max_det if options.max_det is None else options.max_det}


def _input_size(inputs: list[dict]) -> tuple[int, int] | None:
    for entry in inputs:
        dims = _spatial(entry)
        if dims:
            return dims[1], dims[2]
    return None


def _ultralytics_end_to_end(inputs: list[dict], outputs: list[dict]) -> dict | None:
    """The output shaped [1, 4 + classes, N] with N the cells of strides 8, 16 and 32 (Ultralytics' v8/11
    export), if there is one."""
    size = _input_size(inputs)
    if size is None:
        return None
    cells = sum((size[0] // s) * (size[1] // s) for s in (8, 16, 32))
    for o in outputs:
        shape = o["shape"]
        if len(shape) == 3 and shape[0] == 1 and cells in shape[1:] and max(shape[1:]) > 4 and \
                min(shape[1:]) > 4:
            return o
    return None


def _yolo(options: HeadOptions, inputs: list[dict], outputs: list[dict]) -> dict:
    if options.subtype is None:
        raise _refuse("subtype", "a YOLO head needs its subtype: it picks DepthAI's decoding",
                      f"e.g. --subtype yolov8; one of: {', '.join(YOLO_FAMILIES)}")
    subtype = options.subtype.lower()
    family = YOLO_FAMILIES.get(subtype)
    if family is None:
        raise _refuse("subtype", f"DepthAI knows no YOLO subtype {options.subtype!r}",
                      f"use one of: {', '.join(YOLO_FAMILIES)}")
    end_to_end = _ultralytics_end_to_end(inputs, outputs)
    if end_to_end:
        raise _refuse("outputs", f"output {end_to_end['name']!r} {end_to_end['shape']} is Ultralytics' end-to-end "
                      "output (boxes already decoded from every stride, then 4 + classes rows): DepthAI's YOLO "
                      "decoder reads the raw head instead, one 4-D output per stride",
                      "patch the exported model with `kernelkit patch MODEL --head yolo` (it rewrites an "
                      "Ultralytics head to one output per stride) and archive that folder")
    unnamed = [o["name"] for o in outputs if YOLO_NAME_TERM not in o["name"]]
    if unnamed:
        raise _refuse("outputs", f"DepthAI's YOLO decoder reads only outputs whose names contain "
                      f"{YOLO_NAME_TERM!r}; these do not: {', '.join(unnamed)}",
                      "name the grid outputs e.g. output1_yolov8 (one per stride), or list the YOLO outputs "
                      "with --head-outputs")
    # DepthAI takes them in name order, matched to the strides in order
    outputs = sorted(outputs, key=lambda o: o["name"])
    grids = []
    for o in outputs:
        dims = _spatial(o)
        if dims is None:
            raise _refuse("outputs", f"YOLO output {o['name']!r} has shape {o['shape']} ({o['layout']}): DepthAI "
                          "decodes 4-D grid outputs, one per stride", "cut the model at the per-stride outputs")
        grids.append(dims)
    anchors = _anchors(options, len(outputs))
    if family in ANCHOR_FAMILIES and anchors is None:
        raise _refuse("anchors", f"subtype {subtype} decodes with anchors (DepthAI's {family} family)",
                      "give them: --anchors '[[[w,h],...] per output]'")
    per_box = 1 if anchors is None else len(anchors[0])
    count = _class_count(options)
    channels = {c for c, _, _ in grids}
    if count is None:
        if len(channels) != 1 or next(iter(channels)) % per_box or next(iter(channels)) // per_box <= 5:
            raise _refuse("n_classes", f"cannot tell the class count from the YOLO outputs' channels "
                          f"({sorted(channels)})", "give --n-classes or --classes")
        count = next(iter(channels)) // per_box - 5
    expected = per_box * (count + 5)
    wrong = [f"{o['name']} ({c})" for o, (c, _, _) in zip(outputs, grids) if c != expected]
    if wrong:
        raise _refuse("n_classes", f"{count} classes with {per_box} box(es) per cell need {expected} channels "
                      f"(4 box values, 1 score, {count} class scores) per YOLO output; these have other counts: "
                      f"{', '.join(wrong)}", "check --n-classes/--classes against the model's head")
    strides = options.strides
    if strides is None:
        size = _input_size(inputs)
        if size is None:
            raise _refuse("strides", "cannot tell the strides: the model has no 4-D image input",
                          "give --strides, e.g. 8,16,32")
        strides = []
        for o, (_, h, w) in zip(outputs, grids):
            if size[0] % h or size[1] % w or size[0] // h != size[1] // w:
                raise _refuse("strides", f"output {o['name']!r} ({h}x{w}) does not divide the {size[0]}x{size[1]} "
                              "input evenly", "give --strides")
            strides.append(size[0] // h)
    if len(strides) != len(outputs) or any(s < 1 for s in strides):
        raise _refuse("strides", f"{len(strides)} strides for {len(outputs)} YOLO outputs",
                      "give one positive stride per output, in the outputs' name order")
    return {"subtype": subtype, "yolo_outputs": [o["name"] for o in outputs],
            **_detection_common(options, count, DEFAULT_MAX_DET), "anchors": anchors, "strides": list(strides)}


def _ssd(options: HeadOptions, inputs: list[dict], outputs: list[dict]) -> dict:
    rows = [o for o in outputs if o["shape"] and o["shape"][-1] == SSD_ROW]
    if len(outputs) != 1 or not rows:
        raise _refuse("outputs", f"DepthAI's SSD decoder reads one DetectionOutput tensor of [1, 1, N, {SSD_ROW}] "
                      f"rows; the head's outputs are {[(o['name'], o['shape']) for o in outputs]}",
                      "name that output with --head-outputs")
    count = _class_count(options)
    if count is None:
        raise _refuse("n_classes", "an SSD head needs its class count (the DetectionOutput rows do not say it)",
                      "give --n-classes or --classes")
    detections = math.prod(rows[0]["shape"]) // SSD_ROW
    return _detection_common(options, count, detections)


def _scores_channels(outputs: list[dict], kind: str) -> int | None:
    o = outputs[0]
    if kind == "classification":
        return o["shape"][-1] if o["shape"] else None
    dims = _spatial(o)
    return dims[0] if dims else None


def _classifier(options, inputs, outputs):
    return _scores_head(options, outputs, "classification")


def _segmenter(options, inputs, outputs):
    return _scores_head(options, outputs, "segmentation")


def _scores_head(options: HeadOptions, outputs: list[dict], kind: str) -> dict:
    if len(outputs) != 1:
        raise _refuse("outputs", f"a {kind} head reads one output; the model has "
                      f"{', '.join(o['name'] for o in outputs)}", "name it with --head-outputs")
    found = _scores_channels(outputs, kind)
    count = _class_count(options)
    if count is None:
        if not found:
            raise _refuse("n_classes", f"cannot tell the class count from output {outputs[0]['name']!r}",
                          "give --n-classes or --classes")
        count = found
    elif found and count != found:
        raise _refuse("n_classes", f"{count} classes, and output {outputs[0]['name']!r} ({outputs[0]['shape']}, "
                      f"{outputs[0]['layout']}) holds {found}", "check --n-classes/--classes")
    return {"classes": _class_names(count, options), "n_classes": count, "is_softmax": bool(options.is_softmax)}
