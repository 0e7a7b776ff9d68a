"""`--head yolo`: an Ultralytics YOLO export (v5u, v8, v9, v10, 11; Detect, Pose and Segment heads) recognised in
the graph and rewritten to the head layout DepthAI's TLBR YOLO decoding reads (luxonis/tools' export for RVC2).

Ultralytics ends its Detect head in one decoded output, `output0` [1, 4 + classes, anchors] (v10: [1, 300, 6] after
its top-k): per stride a box branch (4 x reg_max DFL bins) and a class branch, flattened and concatenated over
the strides, the bins decoded by Softmax and a 1x1 convolution of weights 0..reg_max-1 (DFL), boxes made from
the anchor grid, classes through a Sigmoid. DepthAI's DetectionParser instead reads one 4-D output per stride,
[1, 4 + 1 + classes, H, W]: distances left, top, right, bottom in cells from the cell centre (the DFL decoded in
the model), then max(class scores), then the class scores; outputs named *yolo*, taken in name order, matched to
the strides in order (depthai-core DetectionParserUtils decodeTLBR).

Recognition reads the graph, not names: the DFL convolution (constant weights 0..reg_max-1 after a SoftMax over
the bins) is followed back to the per-stride box tensors, and the Sigmoid over the same anchors to the class
tensors, through the flattening Reshapes and the Concat over strides (Ultralytics 8.4 concatenates boxes and
classes apart; older releases concatenate each stride's [box, class] and split after, which is followed too).
The rewrite cuts the model at those per-stride tensors and builds the DepthAI layout from them; everything after
(anchors, strides, top-k) is dropped. Stride = input size / grid size.

Pose and Segment heads add rows to output0 after the class scores, made from per-stride tensors of their own.
Those rows are followed back to their Concat over strides, and what the graph does between the two is measured
(that subgraph run on OpenVINO CPU with probe inputs): a keypoint's x and y are an affine map of the raw values
(Ultralytics: (2 raw + cell - 0.5) stride), its visibility a Sigmoid; mask coefficients pass unchanged, beside a
second output, the prototypes [1, coefficients, H/4, W/4]. DepthAI 3.12's DetectionParser reads (checked by
running it): per stride `kpt_output{i}` [1, 3 x keypoints, H, W] holding x, y in input pixels and the visibility
logit (it applies the Sigmoid itself), found by the name part "kpt_output" in name order; per stride
`output{i}_masks` [1, coefficients, H, W] (name part "masks") and one `protos_output` (name part "proto"), the
masks decoded when the head's outputs include a name with "_masks". The rewrite bakes the measured affine map in
per stride. An OBB head's angle row is refused: DepthAI 3.12 decodes no angles (every ImgDetection's angle is 0).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir import graph
from kernelkit.ir.graph import Out

OPTION = "--head"
HEADS = ("yolo",)
OUTPUT_NAME = "output{index}_yolov8"        # holds "yolo" (DepthAI's filter); sorts in stride order below 10
KEYPOINTS_NAME = "kpt_output{index}"        # DepthAI looks for "kpt_output" (luxonis/tools' names)
MASKS_NAME = "output{index}_masks"          # DepthAI looks for "masks", and "_masks" among the head's outputs
PROTOS_NAME = "protos_output"               # DepthAI looks for "proto"
_PROBE_TOLERANCE = 1e-4                     # relative: f32 rounding of the measured subgraph
# Ultralytics' model description ("Ultralytics YOLO11n model ...") -> DepthAI's subtype; all decode as TLBR.
SUBTYPES = (("yolo11", "yolov11"), ("yolov10", "yolov10"), ("yolov8", "yolov8"), ("yolov5", "yolov8"),
            ("yolov9", "yolov8"))
DEFAULT_SUBTYPE = "yolov8"
_MAX_METADATA = 1 << 20                     # an Ultralytics `names` entry is a few kB; refuse to parse megabytes


@dataclass
class Level:
    """One stride's tensor [1, C, H, W] and the channels [start, stop) of it that belong to the branch."""

    value: Out
    start: int
    stop: int

    @property
    def grid(self) -> tuple[int, int]:
        return self.value.dims[2], self.value.dims[3]


@dataclass
class UltralyticsHead:
    reg_max: int
    n_classes: int
    boxes: list[Level]
    classes: list[Level]
    strides: list[int]
    results: list = field(default_factory=list)
    task: str = "detect"                      # detect | pose | segment
    extra: list[Level] = field(default_factory=list)      # per stride: keypoint or mask coefficient channels
    scale: list = field(default_factory=list)             # pose, per stride: x' = scale * x + shift ([C, H, W])
    shift: list = field(default_factory=list)
    n_keypoints: int = 0
    protos: Out | None = None


def parse_head(text) -> str | None:
    if text is None:
        return None
    if text not in HEADS:
        raise KernelkitError(f"unknown head {text!r}", where=OPTION, hint=f"use one of: {', '.join(HEADS)}")
    return text


def _int_const(model, value: Out):
    found = graph.const_value(model, value)
    return None if found is None else np.asarray(found).astype(np.int64).ravel()


def _levels(model, value: Out) -> list[Level] | None:
    """The per-stride 4-D tensors a [1, C, anchors] value was flattened and concatenated from (through a channel
    split of such a concatenation), or None."""
    layer = value.layer
    kind = layer.type.lower()
    if kind == "concat" and len(value.dims) == 3 and int(layer.attrs.get("axis", 0)) in (-1, 2):
        levels = []
        for index in range(len(layer.inputs)):
            flat = graph.input_of(model, layer, index)
            if flat.layer.type.lower() != "reshape" or len(flat.dims) != 3:
                return None
            grid = graph.input_of(model, flat.layer, 0)
            dims = grid.dims
            if len(dims) != 4 or dims[0] != 1 or dims[1] != flat.dims[1] or dims[2] * dims[3] != flat.dims[2]:
                return None
            levels.append(Level(grid, 0, dims[1]))
        return levels
    if kind in ("variadicsplit", "split") and len(value.dims) == 3:
        axis = _int_const(model, graph.input_of(model, layer, 1))
        if axis is None or axis.size != 1 or int(axis[0]) % 3 != 1:
            return None
        index = [p.id for p in layer.outputs].index(value.port.id)
        start = sum(layer.outputs[i].dims[1] for i in range(index))
        inner = _levels(model, graph.input_of(model, layer, 0))
        if inner is None:
            return None
        return [Level(level.value, level.start + start, level.start + start + value.dims[1]) for level in inner]
    return None


def _dfl_boxes(model, conv) -> tuple[int, list[Level]] | None:
    """(reg_max, box levels) when `conv` is Ultralytics' DFL: Reshape [1, 4, R, A] -> Transpose (0, 2, 1, 3) ->
    SoftMax over the bins -> 1x1 Convolution with weights 0..R-1."""
    dims = conv.inputs[1].dims if len(conv.inputs) > 1 else []
    if len(dims) != 4 or dims[0] != 1 or dims[2:] != [1, 1]:       # shape first: no weights decoded in vain
        return None
    weights = graph.const_value(model, graph.input_of(model, conv, 1))
    if weights is None or weights.ndim != 4 or weights.shape[0] != 1 or weights.shape[2:] != (1, 1):
        return None
    bins = weights.shape[1]
    if bins < 2 or not np.allclose(weights.ravel(), np.arange(bins)):
        return None
    softmax = graph.input_of(model, conv, 0).layer
    if softmax.type.lower() != "softmax" or int(softmax.attrs.get("axis", -1)) != 1:
        return None
    transpose = graph.input_of(model, softmax, 0).layer
    if transpose.type.lower() != "transpose":
        return None
    order = _int_const(model, graph.input_of(model, transpose, 1))
    if order is None or list(order) != [0, 2, 1, 3]:
        return None
    split = graph.input_of(model, transpose, 0).layer
    if split.type.lower() != "reshape" or split.outputs[0].dims[1:3] != [4, bins]:
        return None
    levels = _levels(model, graph.input_of(model, split, 0))
    if not levels or any(level.stop - level.start != 4 * bins for level in levels):
        return None
    return bins, levels


def _reaches(start, targets: set[str], neighbours) -> bool:
    """Whether a walk from the layer `start` over `neighbours(layer)` meets any layer id in `targets`."""
    seen, stack = set(), [start]
    while stack:
        layer = stack.pop()
        if layer.id in targets:
            return True
        if layer.id not in seen:
            seen.add(layer.id)
            stack.extend(neighbours(layer))
    return False


def _feeds(model, start, targets: set[str]) -> bool:
    """Whether `start` (a layer) reaches any layer id in `targets` downstream."""
    return _reaches(start, targets, lambda layer: [consumer for port in layer.outputs
                                                   for consumer, _ in model.consumers(layer, port.id)])


def find_head(model) -> UltralyticsHead | None:
    """The Ultralytics detection head of `model` (an IRModel), or None when it has none."""
    found = None
    for layer in model.layers:
        if layer.type.lower() == "convolution":
            dfl = _dfl_boxes(model, layer)
            if dfl is not None:
                if found is not None:
                    raise KernelkitError("the model holds two Ultralytics DFL box decoders; kernelkit rewrites one "
                                         "detection head", path=model.path, where=OPTION,
                                         hint="cut the model at one head's outputs with --output")
                found = (layer, *dfl)
    if found is None:
        return None
    conv, reg_max, boxes = found
    grids = [level.grid for level in boxes]
    anchors = sum(h * w for h, w in grids)
    candidates = []
    for layer in model.layers:
        if layer.type.lower() != "sigmoid" or len(layer.outputs[0].dims) != 3 or \
                layer.outputs[0].dims[2] != anchors:
            continue
        levels = _levels(model, graph.input_of(model, layer, 0))
        if levels and [level.grid for level in levels] == grids:
            candidates.append((levels, layer))
    # An OBB head's angle is a Sigmoid over the same anchors too, scaled after; the class scores' Sigmoid is the
    # one the detection output takes as it is
    direct = {part.layer.id for r in model.results() if _feeds(model, conv, {r.id})
              for part in _channel_parts(model, graph.input_of(model, r, 0))}
    candidates.sort(key=lambda found: found[1].id not in direct)
    classes, classes_sigmoid = candidates[0] if candidates else (None, None)
    if classes is None:
        raise KernelkitError("an Ultralytics DFL box decoder with no class scores (a Sigmoid over the same "
                             f"{anchors} anchors) beside it", path=model.path, where=OPTION,
                             hint="kernelkit rewrites Ultralytics' Detect head; export the model with "
                                  "model.export(format='onnx')")
    n_classes = classes[0].stop - classes[0].start
    results = model.results()
    detection = [r for r in results if _feeds(model, conv, {r.id})]
    if len(detection) != 1:
        names = ", ".join(_result_name(model, r) for r in detection)
        raise KernelkitError(f"the Ultralytics box decoder feeds {len(detection)} outputs ({names}); kernelkit "
                             "rewrites a head that ends in one", path=model.path, where=OPTION,
                             hint="cut the model at the head's output with --output")
    others = [r for r in results if r is not detection[0]]
    head_value = graph.input_of(model, detection[0], 0)
    extras = [part for part in _channel_parts(model, head_value)
              if not _depends_on(model, part, {conv.id, classes_sigmoid.id})]
    strides = _strides(model, grids)
    head = UltralyticsHead(reg_max, n_classes, boxes, classes, strides, results)
    if not extras:
        if others:
            names = ", ".join(_result_name(model, r) for r in others)
            raise KernelkitError(f"the model has outputs beside the detection head's: {names}", path=model.path,
                                 where=OPTION, hint="cut the model at the head's output with --output")
        return head
    if len(extras) != 1:
        raise KernelkitError(f"output {_result_name(model, detection[0])} holds {len(extras)} groups of rows "
                             "after the box and class rows; an Ultralytics Pose or Segment head has one",
                             path=model.path, where=OPTION, hint="export the model with model.export(format='onnx')")
    _measure_extra(model, head, extras[0], grids, others, _result_name(model, detection[0]))
    return head


def _channel_parts(model, value: Out) -> list[Out]:
    """The values a [1, C, A] output concatenates on its channel axis (nested Concats opened), else [value]."""
    layer = value.layer
    if layer.type.lower() == "concat" and len(value.dims) == 3 and int(layer.attrs.get("axis", 0)) in (1, -2):
        parts = []
        for index in range(len(layer.inputs)):
            parts.extend(_channel_parts(model, graph.input_of(model, layer, index)))
        return parts
    return [value]


def _depends_on(model, value: Out, targets: set[str]) -> bool:
    """Whether `value` is computed from any layer id in `targets`."""
    return _reaches(value.layer, targets,
                    lambda layer: [graph.input_of(model, layer, i).layer for i in range(len(layer.inputs))])


def _extra_levels(model, value: Out, grids) -> tuple[Out, list[Level]] | None:
    """The nearest value upstream of `value` that concatenates per-stride tensors of these grids, and its levels."""
    seen, queue = set(), [value]
    while queue:
        current = queue.pop(0)
        if current.layer.id in seen:
            continue
        seen.add(current.layer.id)
        levels = _levels(model, current)
        if levels and [level.grid for level in levels] == grids:
            return current, levels
        queue.extend(graph.input_of(model, current.layer, i) for i in range(len(current.layer.inputs)))
    return None


def probe(model, source: Out, target: Out, feeds: list[np.ndarray]) -> list[np.ndarray] | None:
    """`target` computed from `source` alone, for each feed: the subgraph between them on OpenVINO CPU (f32).
    None when `target` needs more than `source` (another model input)."""
    from kernelkit.ir.cut import drop_unreachable
    from kernelkit.ir.openvino_run import run_openvino

    sub = model.copy()
    src = graph.Out(sub.layer(source.layer.id), sub.layer(source.layer.id).port(source.port.id))
    dst = graph.Out(sub.layer(target.layer.id), sub.layer(target.layer.id).port(target.port.id))
    dims = source.dims
    param = sub.add_layer("Parameter", "opset1", sub.unique_name("kk_probe"),
                          {"shape": ",".join(map(str, dims)), "element_type": "f32"}, outputs=[("FP32", dims)])
    graph.move_consumers(sub, src, graph.out(param))
    for result in sub.results():
        sub.remove_layer(result)
    sink = sub.add_layer("Result", "opset1", sub.unique_name("kk_probe/sink"), inputs=[(dst.precision, dst.dims)])
    sub.connect(dst.layer, dst.port.id, sink, sink.inputs[0].id)
    drop_unreachable(sub)
    if [p.id for p in sub.parameters()] != [param.id]:
        return None
    xml = sub.to_xml_bytes()
    return [run_openvino(xml, sub.bin_data, [feed], path=model.path)[0] for feed in feeds]


def _measure_extra(model, head: UltralyticsHead, part: Out, grids, others, output_name: str) -> None:
    """Fill `head` with what the rows `part` of the detection output are: keypoints (Pose) or mask coefficients
    (Segment), measured by running the graph from their per-stride tensors to the rows."""
    found = _extra_levels(model, part, grids)
    rows = part.dims[1] if len(part.dims) == 3 else 0
    if found is None:
        raise KernelkitError(f"output {output_name} holds {rows} rows after the box and class rows, computed from "
                             "no per-stride tensors", path=model.path, where=OPTION,
                             hint="only Ultralytics' Detect, Pose and Segment heads are rewritten")
    source, levels = found
    shape = source.dims
    ramp = np.random.default_rng(0).uniform(-3.0, 3.0, shape).astype(np.float32)
    feeds = [np.zeros(shape, np.float32), np.ones(shape, np.float32), ramp]
    same = (source.layer.id, source.port.id) == (part.layer.id, part.port.id)
    measured = feeds if same else probe(model, source, part, feeds)
    if measured is None or measured[0].shape != tuple(shape):
        raise KernelkitError(f"the {rows} rows after the box and class rows of output {output_name} are no "
                             "element-wise function of their per-stride tensors", path=model.path, where=OPTION,
                             hint="only Ultralytics' Detect, Pose and Segment heads are rewritten")
    at0, at1, at_ramp = (m.astype(np.float64) for m in measured)
    scale, shift = at1 - at0, at0

    def close(a, b):
        return np.abs(a - b) <= _PROBE_TOLERANCE * (1.0 + np.abs(b))
    affine = close(at_ramp, shift + scale * ramp)[0].all(axis=1)
    sigmoid = close(at_ramp, 1.0 / (1.0 + np.exp(-ramp.astype(np.float64))))[0].all(axis=1) & \
        close(at0, np.full_like(at0, 0.5))[0].all(axis=1)
    identity = affine & close(scale, np.ones_like(scale))[0].all(axis=1) & close(shift, 0 * shift)[0].all(axis=1)
    channels = shape[1]
    protos = [graph.input_of(model, r, 0) for r in others]
    if identity.all():
        fitting = [p for p in protos if len(p.dims) == 4 and p.dims[:2] == [1, channels]]
        if len(fitting) != 1 or len(others) != 1:
            raise KernelkitError(f"output {output_name} carries {channels} mask coefficients per anchor, and the "
                                 f"model has {len(fitting)} prototype outputs [1, {channels}, H, W] "
                                 f"(outputs beside it: {len(others)})", path=model.path, where=OPTION,
                                 hint="a Segment head's prototypes must stay an output: export with "
                                      "model.export(format='onnx')")
        head.task, head.protos = "segment", fitting[0]
        head.extra = levels
        return
    if others:
        names = ", ".join(_result_name(model, r) for r in others)
        raise KernelkitError(f"the model has outputs beside the detection head's: {names}", path=model.path,
                             where=OPTION, hint="cut the model at the head's output with --output")
    visibility = np.arange(channels) % 3 == 2
    if channels % 3 == 0 and (sigmoid == visibility).all() and affine[~visibility].all():
        head.task, head.n_keypoints, head.extra = "pose", channels // 3, levels
        start = 0
        for level in levels:
            h, w = level.grid
            cells = slice(start, start + h * w)
            a = np.where(visibility[:, None], 1.0, scale[0, :, cells]).reshape(channels, h, w)
            b = np.where(visibility[:, None], 0.0, shift[0, :, cells]).reshape(channels, h, w)
            head.scale.append(a.astype(np.float32))
            head.shift.append(b.astype(np.float32))
            start += h * w
        return
    if channels % 2 == 0 and affine.all() and not sigmoid.any():
        raise KernelkitError(f"output {output_name} carries keypoints of x and y only ({channels // 2} keypoints, "
                             "no visibility)", path=model.path, where=OPTION,
                             hint="DepthAI's parser reads x, y and a visibility per keypoint: train the pose model "
                                  "with kpt_shape [N, 3]")
    what = "an OBB head's angle" if channels == 1 else f"{channels} rows of neither keypoints nor mask coefficients"
    raise KernelkitError(f"output {output_name} holds {what} after the box and class rows", path=model.path,
                         where=OPTION, hint="DepthAI 3.12's DetectionParser decodes no rotated boxes (every angle "
                                            "is 0), so OBB heads are not rewritten; Detect, Pose and Segment are")


def _result_name(model, result) -> str:
    return graph.input_of(model, result, 0).layer.name


def _strides(model, grids) -> list[int]:
    images = [p for p in model.parameters() if len(p.outputs[0].dims) == 4]
    if len(images) != 1:
        raise KernelkitError(f"the model has {len(images)} 4-D inputs; the YOLO strides are the image size over "
                             "each grid", path=model.path, where=OPTION, hint="give the model one image input")
    height, width = images[0].outputs[0].dims[2:]
    strides = []
    for h, w in grids:
        if h < 1 or w < 1 or height % h or width % w or height // h != width // w:
            raise KernelkitError(f"a {h}x{w} grid does not divide the {height}x{width} input evenly", path=model.path,
                                 where=OPTION, hint="fix the input size with --input-shape (a multiple of 32)")
        strides.append(height // h)
    if strides != sorted(strides):
        raise KernelkitError(f"strides {strides} are not in increasing order", path=model.path, where=OPTION)
    return strides


def _channels(model, level: Level, name: str) -> Out:
    """The level's channels [start, stop) as a value of their own."""
    dims = level.value.dims
    if (level.start, level.stop) == (0, dims[1]):
        return level.value
    begin = graph.add_const(model, np.array([0, level.start, 0, 0], np.int64), f"{name}/begin")
    end = graph.add_const(model, np.array([0, level.stop, 0, 0], np.int64), f"{name}/end")
    step = graph.add_const(model, np.array([1, 1, 1, 1], np.int64), f"{name}/stride")
    return graph.op(model, "StridedSlice", name, [level.value, begin, end, step],
                    {"begin_mask": "1,0,1,1", "end_mask": "1,0,1,1", "new_axis_mask": "0,0,0,0",
                     "shrink_axis_mask": "0,0,0,0", "ellipsis_mask": "0,0,0,0"},
                    outputs=[(level.value.precision, [1, level.stop - level.start, dims[2], dims[3]])])


def rewrite(model, head: UltralyticsHead) -> list[str]:
    """Replace the model's outputs by DepthAI's per-stride TLBR outputs; their names, in stride order."""
    from kernelkit.ir.cut import drop_unreachable

    names = []
    for index, (box_level, cls_level) in enumerate(zip(head.boxes, head.classes), start=1):
        name = OUTPUT_NAME.format(index=index)
        if model.find(name) is not None:
            raise KernelkitError(f"the model already has a layer named {name!r}", path=model.path, where=OPTION,
                                 hint="rename it, or cut the model before its head with --output")
        h, w = box_level.grid
        base = f"kk_yolo_head/stride{head.strides[index - 1]}"
        box = _channels(model, box_level, f"{base}/box")
        bins = graph.op(model, "Reshape", f"{base}/bins", [box, graph.add_const(
            model, np.array([1, 4, head.reg_max, h * w], np.int64), f"{base}/bins_shape")], {"special_zero": "false"})
        bins = graph.op(model, "Transpose", f"{base}/bins_first", [bins, graph.add_const(
            model, np.array([0, 2, 1, 3], np.int64), f"{base}/bins_order")])
        probs = graph.op(model, "SoftMax", f"{base}/dfl_softmax", [bins], {"axis": 1})
        weights = graph.add_const(model, np.arange(head.reg_max, dtype=np.float32).reshape(1, head.reg_max, 1, 1),
                                  f"{base}/dfl_weights")
        expected = graph.op(model, "Convolution", f"{base}/dfl_projection", [probs, weights],
                            {"strides": "1,1", "dilations": "1,1", "pads_begin": "0,0", "pads_end": "0,0",
                             "auto_pad": "explicit"}, outputs=[(probs.precision, [1, 1, 4, h * w])])
        distances = graph.op(model, "Reshape", f"{base}/ltrb", [expected, graph.add_const(
            model, np.array([1, 4, h, w], np.int64), f"{base}/ltrb_shape")], {"special_zero": "false"})
        scores = graph.op(model, "Sigmoid", f"{base}/scores", [_channels(model, cls_level, f"{base}/cls")])
        best = graph.op(model, "ReduceMax", f"{base}/conf", [scores, graph.add_const(
            model, np.array([1], np.int64), f"{base}/conf_axis")], {"keep_dims": "true"})
        joined = graph.add_op(model, "Concat", "opset1", name, [distances, best, scores], {"axis": 1},
                              outputs=[(scores.precision, [1, 5 + head.n_classes, h, w])], unique=False)
        joined.outputs[0].names = [name]
        sink = model.add_layer("Result", "opset1", model.unique_name(f"{name}/sink_port_0"),
                               inputs=[(scores.precision, [1, 5 + head.n_classes, h, w])])
        model.connect(joined, joined.outputs[0].id, sink, sink.inputs[0].id)
        names.append(name)
    extra = _rewrite_extra(model, head)
    for result in head.results:
        model.remove_layer(result)
    for name, value in extra:
        _output(model, value, name)
    drop_unreachable(model)
    return names + [name for name, _ in extra]


def _free_name(model, name: str) -> str:
    if model.find(name) is not None:
        raise KernelkitError(f"the model already has a layer named {name!r}", path=model.path, where=OPTION,
                             hint="rename it, or cut the model before its head with --output")
    return name


def _rewrite_extra(model, head: UltralyticsHead) -> list[tuple[str, Out]]:
    """The Pose / Segment outputs DepthAI reads, as (name, value): the values exist, the Results come later."""
    found = []
    for index, level in enumerate(head.extra, start=1):
        base = f"kk_yolo_head/stride{head.strides[index - 1]}"
        if head.task == "pose":
            name = _free_name(model, KEYPOINTS_NAME.format(index=index))
            raw = _channels(model, level, f"{base}/kpt")
            scale, shift = head.scale[index - 1], head.shift[index - 1]
            per_channel = np.all(scale == scale[:, :1, :1], axis=(1, 2))
            factor = scale[:, :1, :1][None] if per_channel.all() else scale[None]
            scaled = graph.op(model, "Multiply", f"{base}/kpt_scale", [raw, graph.add_const(
                model, factor.astype(np.float32), f"{base}/kpt_scale_value")], {"auto_broadcast": "numpy"})
            value = graph.op(model, "Add", f"{base}/kpt_shift", [scaled, graph.add_const(
                model, shift[None].astype(np.float32), f"{base}/kpt_shift_value")], {"auto_broadcast": "numpy"})
        else:
            name = _free_name(model, MASKS_NAME.format(index=index))
            value = _channels(model, level, f"{base}/masks")
        found.append((name, value))
    if head.task == "segment":
        found.append((_free_name(model, PROTOS_NAME), head.protos))
    return found


def _output(model, value: Out, name: str) -> None:
    """Make `value` an output named `name`: the blob names an output after the layer feeding its Result."""
    layer = value.layer
    layer.name = name
    value.port.names = [name]
    sink = model.add_layer("Result", "opset1", model.unique_name(f"{name}/sink_port_0"),
                           inputs=[(value.precision, value.dims)])
    model.connect(layer, value.port.id, sink, sink.inputs[0].id)


def has_head(model) -> bool:
    """Whether `model` holds an Ultralytics detection head `--head yolo` would rewrite (for a hint, never an error)."""
    try:
        return find_head(model) is not None
    except (KernelkitError, ValueError, IndexError, KeyError, TypeError):   # an odd graph: no hint, never a crash
        return False


def ultralytics_metadata(path) -> dict:
    """What an Ultralytics ONNX export says of itself (metadata_props: description, names, stride, task), as far
    as it says it; {} for another file."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        return {}
    from kernelkit.ir.onnx_graph import load_onnx

    props = {p.key: p.value for p in load_onnx(path, external_data=False).metadata_props}
    found = {}
    if "description" in props:
        found["description"] = props["description"][:200]
    if "task" in props:
        found["task"] = props["task"][:40]
    names = props.get("names")
    if names and len(names) <= _MAX_METADATA:
        try:
            value = ast.literal_eval(names)       # a Python dict literal {0: 'person', ...}: literals only
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, dict) and sorted(value) == list(range(len(value))):
            found["classes"] = [str(value[i]) for i in range(len(value))]
    return found


def subtype_of(description: str | None) -> str:
    text = (description or "").lower().replace(" ", "")
    for key, subtype in SUBTYPES:
        if key in text:
            return subtype
    return DEFAULT_SUBTYPE


def apply_head(model, head: str, source_path=None) -> dict:
    """`--head yolo` on a loaded model: find the Ultralytics head, rewrite it; the archive head's metadata."""
    found = find_head(model)
    if found is None:
        raise KernelkitError("no Ultralytics YOLO detection head found: --head yolo looks for the DFL box decoder "
                             "(SoftMax over the bins, then a 1x1 convolution of weights 0..reg_max-1) and the "
                             "class Sigmoid over the same anchors", path=model.path, where=OPTION,
                             hint="pass the model as Ultralytics exports it (model.export(format='onnx')); a model "
                                  "already in DepthAI's per-stride layout needs no --head in patch")
    meta = ultralytics_metadata(source_path) if source_path is not None else {}
    classes = meta.get("classes")
    if classes is not None and len(classes) != found.n_classes:
        classes = None                            # the metadata describes another head: trust the graph
    outputs = rewrite(model, found)
    n = len(found.strides)
    recorded = {"parser": "YOLO", "family": "ultralytics", "subtype": subtype_of(meta.get("description")),
                "n_classes": found.n_classes, "classes": classes, "strides": found.strides,
                "reg_max": found.reg_max, "yolo_outputs": outputs[:n], "description": meta.get("description"),
                "task": found.task}
    if found.task == "pose":
        recorded |= {"n_keypoints": found.n_keypoints, "keypoints_outputs": outputs[n:]}
    elif found.task == "segment":
        recorded |= {"n_prototypes": found.protos.dims[1], "mask_outputs": outputs[n:2 * n],
                     "protos_outputs": outputs[2 * n]}
    return recorded
