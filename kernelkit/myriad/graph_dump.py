"""The MYRIAD plugin's internal-graph dump (`MYRIAD_DUMP_INTERNAL_GRAPH_FILE_NAME`): the only stage -> IR layer map.

The blob holds no layer names. The 2021.4 plugin's `BackEnd::dumpModelToDot` writes its final internal graph as
Graphviz: one node per data (`data_0x...`, a label with its usage, desc, location, origData) and per stage
(`stage_0x...`, caption `[EXEC / INDEX] Stage NAME`, then type, origLayer [name, type, precision], numSHAVEs,
extraAttrs such as the HW tiling), then stage <-> data edges. Facts from that source and from dumps of real
compiles (tests/test_graph_dump.py):

- stages are dumped in the model's stage order; EXEC is -1 for the plugin's "special" stages (Expand, Split,
  Concat done in place...), which are not serialized, and counts the others from 0;
- a HW stage's injected stage (a software stage that runs alongside, nested in the host's record) is dumped
  right after its host with the host's EXEC number, and a dashed "Injected Stage" edge joins them;
- so blob stage k is the dump's k-th stage with EXEC >= 0 that is not an injected stage (`blob_stages`).

kernelkit keeps the dump beside every blob it compiles as `<blob stem>.graph.dot` (`dump_path`), with the
plugin's object addresses numbered in order of appearance so the same compile gives the same file
(`stable_addresses`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input

DUMP_SUFFIX = ".graph.dot"
DUMP_LIMIT = 512 * 1024 * 1024       # MobileNetV2's is 1.4 MB; a large model's stays far below this

_NODE = re.compile(r'^ {4}((?:data|stage)_0x[0-9a-fA-F]+) \[\n(.*?)^ {4}\];', re.S | re.M)
_EDGE = re.compile(r'^ {4}((?:data|stage)_0x[0-9a-fA-F]+) -> ((?:data|stage)_0x[0-9a-fA-F]+) \[\n(.*?)^ {4}\];',
                   re.S | re.M)
_LABEL = re.compile(r'label="((?:[^"\\]|\\.)*)"', re.S)
_CAPTION = re.compile(r"^\[(-?\d+) / (-?\d+)\] Stage (.*)$", re.S)


@dataclass(frozen=True)
class Layer:
    """An IR layer as the plugin names it (after its own nGraph passes: usually the IR's name), with the
    plugin's legacy layer type (Eltwise for Add or Greater, FullyConnected for MatMul, Pooling for MaxPool)."""

    name: str
    type: str

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


@dataclass
class DumpData:
    node: str                       # the dot node id
    name: str
    usage: str                      # Input | Output | Const | Intermediate | Temp | Fake
    attrs: dict

    @property
    def location(self) -> str | None:
        return self.attrs.get("dataLocation")


@dataclass
class DumpStage:
    node: str                       # the dot node id
    exec_index: int                 # -1: a special stage (not in the blob)
    index: int                      # the plugin's own stage index
    name: str
    type: str
    orig_layer: Layer | None
    shaves: int
    attrs: dict                     # extraAttrs, nested dicts/strings as the dump writes them
    injected: bool = False          # runs inside its host HW stage's record
    host: str | None = None         # the host's node id, for an injected stage
    inputs: list[str] = field(default_factory=list)     # data names, in port order
    outputs: list[str] = field(default_factory=list)
    input_nodes: list[str] = field(default_factory=list)    # the same data as dot node ids (names may repeat)
    output_nodes: list[str] = field(default_factory=list)

    @property
    def tiling(self) -> dict:
        """A HW stage's tiling (mode, numDescr, outChansPerDescr, cost...), {} for others."""
        value = self.attrs.get("tiling")
        return value if isinstance(value, dict) else {}


@dataclass
class GraphDump:
    name: str                       # the network's name
    attrs: dict                     # the graph label's pairs (batchSize, extraAttrs: resources, usedMemory)
    stages: list[DumpStage]         # every stage in the dump's order (special and injected ones included)
    data: dict[str, DumpData]       # by node id
    path: Path | None = None

    def blob_stages(self) -> list[DumpStage]:
        """The stages the blob holds, in blob order: EXEC >= 0, injected stages left out (they are nested)."""
        found = [s for s in self.stages if s.exec_index >= 0 and not s.injected]
        for number, stage in enumerate(found):
            if stage.exec_index != number:
                raise _bad(f"stage {stage.name!r} has exec index {stage.exec_index} where {number} was expected",
                           self.path)
        return found

    def stage_layers(self) -> dict[int, list[Layer]]:
        """Blob stage index -> the IR layer(s) it computes (its origLayer, and its injected stage's).
        Stages the plugin adds on its own (input/output Converts, CMX<->DDR copies) map to []."""
        injected = {s.host: s for s in self.stages if s.injected}
        mapping = {}
        for number, stage in enumerate(self.blob_stages()):
            layers = [stage.orig_layer] if stage.orig_layer else []
            inner = injected.get(stage.node)
            if inner is not None and inner.orig_layer and inner.orig_layer not in layers:
                layers.append(inner.orig_layer)
            mapping[number] = layers
        return mapping

    def ir_tensors(self, is_tensor=None) -> list[DumpTensor]:
        """Every data node holding an IR tensor (its origData) in BSS, CMX or the network's I/O, ordered by the
        blob stage after which it is whole: its producer's, or for the output of a special stage done in place
        (a concat of tiles, a reshape) the last of its inputs'. Each names the blob stages that compute it from
        the IR tensors before it (tiles, their copies, the crops between) and their IR layers.

        `is_tensor(name)`, when given, says which names are tensors of the IR: a data node `NAME@adjust-strides`
        with no origData then holds NAME too (the plugin's rewrite of a 1x1 spatial chain, a squeeze-excite
        block's, keeps its tensors only under that name: seen in RapidOCR's detector)."""
        return _ir_tensors(self, is_tensor)

    def layer_of(self, name: str) -> Layer | None:
        """The IR layer behind a plugin-internal stage or data name (`conv@expand-input`, `MVN_2426`): a stage
        of that name, else the stage that produces data of that name."""
        for stage in self.stages:
            if stage.name == name and stage.orig_layer:
                return stage.orig_layer
        for stage in self.stages:
            if name in stage.outputs and stage.orig_layer:
                return stage.orig_layer
        return None


@dataclass
class DumpTensor:
    """A data node of the dump that holds an IR tensor (its `origData`), where the blob keeps it and when it is
    whole: what a blob run can be compared with, tensor by tensor, against the IR."""

    node: str                       # the dot node id
    name: str                       # the plugin's data name (`conv@FP16`, `b0_r1`)
    ir_name: str                    # origData name: the IR layer's output it holds (`LAYER`, or `LAYER.PORT`)
    ir_dims: tuple[int, ...]
    data_type: str                  # FP16, FP32, S32, U8, I8
    order: str                      # dims order, outermost first ("NCHW", "NHWC")
    dims: dict[str, int]            # by letter
    strides: dict[str, int]         # bytes, by letter
    location: str                   # BSS, CMX, Input, Output (Blob and None are not listed)
    offset: int
    io_index: int | None
    ready_after: int                # the blob stage after which every value is written
    stages: tuple[int, ...]         # the blob stages that compute it from the IR tensors before it
    layers: tuple[Layer, ...]       # the IR layers (origLayer) of the computing ones, in stage order
    computed_at: int                # the last computing one (not a Copy, not the plugin's own): the stage to name

    def buffer(self):
        """Where it lives as a blob_reader.Buffer, so one view function reads it like any stage buffer."""
        from kernelkit.myriad.blob_reader import Buffer

        return Buffer(self.data_type, self.order, dict(self.dims), dict(self.strides), self.location, self.offset,
                      io_index=self.io_index, rank=len(self.order),
                      dims_innermost=tuple(self.dims[letter] for letter in reversed(self.order)),
                      strides_innermost=tuple(self.strides[letter] for letter in reversed(self.order)),
                      name=self.name)


_LETTER_VALUES = re.compile(r"([A-Za-z0-9]+) : (-?\d+)")
_DATA_LOCATIONS = ("BSS", "CMX", "Input", "Output")


def _by_letter(text) -> dict[str, int] | None:
    if not isinstance(text, str):
        return None
    found = _LETTER_VALUES.findall(text)
    return {letter: int(value) for letter, value in found} if found else None


_SAME_VALUES = "@adjust-strides"        # a data node the plugin re-strides: the same tensor, other strides


def _ir_tensors(dump: GraphDump, is_tensor=None) -> list[DumpTensor]:
    def holds(data: DumpData) -> str | None:
        """The IR tensor a data node holds: its origData, or a re-strided copy's when the IR has that name."""
        orig = data.attrs.get("origData")
        if isinstance(orig, dict):
            return orig.get("name", "")
        base = data.name
        while is_tensor is not None and base.endswith(_SAME_VALUES):
            base = base[:-len(_SAME_VALUES)]
            if is_tensor(base):
                return base
        return None

    blob_index: dict[str, int] = {}
    for number, stage in enumerate(dump.blob_stages()):
        blob_index[stage.node] = number
    for stage in dump.stages:
        if stage.injected and stage.host in blob_index:
            blob_index[stage.node] = blob_index[stage.host]
    producer = {node: stage for stage in dump.stages for node in stage.output_nodes}
    memo: dict[str, tuple[int, frozenset]] = {}

    def walk(node: str, depth: int = 0) -> tuple[int, frozenset]:
        """(ready after stage, blob stages computing it since the last IR tensor) of a data node."""
        if node in memo:
            return memo[node]
        stage = producer.get(node)
        if stage is None or depth > 500:
            return -1, frozenset()
        memo[node] = (-1, frozenset())          # a cycle (none expected) ends here
        ready, stages = blob_index.get(stage.node, -1), set()
        if stage.node in blob_index:
            stages.add(blob_index[stage.node])
        for source in stage.input_nodes:
            data = dump.data.get(source)
            if data is None or data.usage in ("Const", "Fake"):
                continue
            before, through = walk(source, depth + 1)
            if stage.node not in blob_index:         # a special stage (in place): whole when its inputs are
                ready = max(ready, before)
            if holds(data) is None:                 # an internal tensor: its stages count as this one's
                stages |= through
        memo[node] = (ready, frozenset(stages))
        return memo[node]

    stage_by_index = {number: stage for number, stage in enumerate(dump.blob_stages())}
    injected = {s.host: s for s in dump.stages if s.injected}
    tensors = []
    for node, data in dump.data.items():
        ir_name, desc = holds(data), data.attrs.get("desc")
        if ir_name is None or not isinstance(desc, dict) or data.usage not in ("Intermediate", "Output"):
            continue
        orig = data.attrs.get("origData") if isinstance(data.attrs.get("origData"), dict) else {}
        dims, strides = _by_letter(desc.get("dims")), _by_letter(data.attrs.get("strides"))
        order = desc.get("dimsOrder", "")
        offset = _int(data.attrs.get("dataOffset"), -1)
        if data.location not in _DATA_LOCATIONS or not dims or not strides or set(order) != set(dims) or \
                set(strides) != set(dims) or offset < 0 or min(dims.values()) < 1 or min(strides.values()) < 1:
            continue                    # nothing a view can be made of (a damaged dump, or an empty tensor)
        ready, stages = walk(node)
        if ready < 0:
            continue
        # A DMA Copy carries the layer of the stage it feeds (the residual's copy names the next conv), and the
        # plugin's own Converts none, so the computing stages are the others; a tensor only those compute
        # keeps them.
        computing = [n for n in sorted(stages) if stage_by_index[n].type != "Copy" and
                     stage_by_index[n].orig_layer] or sorted(stages)
        layers: list[Layer] = []
        for number in computing:
            host = stage_by_index[number]
            for found in (host, injected.get(host.node)):
                if found is not None and found.orig_layer and found.orig_layer not in layers:
                    layers.append(found.orig_layer)
        extra = data.attrs.get("extraAttrs") if isinstance(data.attrs.get("extraAttrs"), dict) else {}
        io_index = _int(extra.get("ioIdx"), -1) if data.location in ("Input", "Output") else None
        ir_dims = orig.get("dims") or ""
        tensors.append(DumpTensor(node, data.name, ir_name,
                                  tuple(int(v) for v in re.findall(r"-?\d+", ir_dims)) if ir_dims else
                                  tuple(dims[letter] for letter in order),
                                  desc.get("type", ""), order, dims, strides, data.location,
                                  offset, io_index, ready, tuple(sorted(stages)),
                                  tuple(layers), computing[-1] if computing else ready))
    tensors.sort(key=lambda t: (t.ready_after, t.node))
    return tensors


def _bad(message: str, path) -> KernelkitError:
    return KernelkitError(f"unreadable MYRIAD internal-graph dump: {message}", path=path,
                          hint="compile the model again with kernelkit compile (it writes the dump beside the blob)")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: m.group(1), text)


def parse_label(label: str) -> tuple[str, dict]:
    """A DotLabel: its caption and its `key = value` pairs, `key = [ ... ]` nested (lines end in `\\l`)."""
    lines = label.split("\\l")
    caption = _unescape(lines[0])
    root: dict = {}
    stack = [root]
    for raw in lines[1:]:
        line = raw.strip()
        if not line:
            continue
        if line == "]":
            if len(stack) > 1:
                stack.pop()
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            key, value = line.rstrip(" ="), ""
        key, value = _unescape(key), _unescape(value)
        if value == "[":
            child: dict = {}
            stack[-1][key] = child
            stack.append(child)
        else:
            stack[-1][key] = value
    return caption, root


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_dump(text: str, path: Path | None = None) -> GraphDump:
    """Read the dump's text (what `MYRIAD_DUMP_INTERNAL_GRAPH_FILE_NAME` wrote)."""
    if not text.lstrip().startswith("digraph"):
        raise _bad("not a Graphviz digraph", path)
    graph_label = _LABEL.search(text[:text.find("\n    data_") if "\n    data_" in text else len(text)])
    caption, graph_attrs = parse_label(graph_label.group(1)) if graph_label else ("Graph ?", {})
    stages: list[DumpStage] = []
    data: dict[str, DumpData] = {}
    by_node: dict[str, DumpStage] = {}
    for node, body in _NODE.findall(text):
        label = _LABEL.search(body)
        if not label:
            continue
        head, attrs = parse_label(label.group(1))
        if node.startswith("data_"):
            data[node] = DumpData(node, head.removeprefix("Data "), attrs.get("usage", ""), attrs)
            continue
        m = _CAPTION.match(head)
        if not m:
            raise _bad(f"stage node {node} has the caption {head[:80]!r}", path)
        orig = attrs.get("origLayer")
        layer = Layer(orig.get("name", ""), orig.get("type", "")) if isinstance(orig, dict) else None
        extra = attrs.get("extraAttrs")
        stage = DumpStage(node, int(m.group(1)), int(m.group(2)), m.group(3), attrs.get("type", ""), layer,
                          _int(attrs.get("numSHAVEs")), extra if isinstance(extra, dict) else {})
        stages.append(stage)
        by_node[node] = stage
    ports: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for source, target, body in _EDGE.findall(text):
        label = _LABEL.search(body)
        head, attrs = parse_label(label.group(1)) if label else ("", {})
        if head == "Injected Stage" and target in by_node:
            by_node[target].injected = True
            by_node[target].host = source
        elif head == "StageInput" and target in by_node and source in data:
            ports.setdefault((target, "in"), []).append((_int(attrs.get("portInd")), source))
        elif head == "StageOutput" and source in by_node and target in data:
            ports.setdefault((source, "out"), []).append((_int(attrs.get("portInd")), target))
    for (node, side), found in ports.items():
        found.sort(key=lambda item: item[0])
        names = [data[data_node].name for _, data_node in found]
        nodes = [data_node for _, data_node in found]
        if side == "in":
            by_node[node].inputs, by_node[node].input_nodes = names, nodes
        else:
            by_node[node].outputs, by_node[node].output_nodes = names, nodes
    if not stages:
        raise _bad("no stage in the dump", path)
    return GraphDump(caption.removeprefix("Graph "), graph_attrs, stages, data, path)


_ADDRESS = re.compile(rb"0x[0-9a-fA-F]+")


def stable_addresses(dump: bytes) -> bytes:
    """The dump with the plugin's object addresses (node ids `stage_0x55...`, `copy-for-0x7ffc...` in names),
    which change from run to run, numbered in order of first appearance: the same compile, the same file."""
    numbers: dict[bytes, bytes] = {}

    def number(m: re.Match) -> bytes:
        return numbers.setdefault(m.group(0), b"0x%x" % (len(numbers) + 1))

    return _ADDRESS.sub(number, dump)


def read_dump(path: str | Path) -> GraphDump:
    path = Path(path)
    raw = read_input(path, DUMP_LIMIT, what="internal-graph dump")
    return parse_dump(raw.decode("utf-8", errors="replace"), path)


def dump_path(blob: str | Path) -> Path:
    """Where kernelkit keeps a blob's dump: `<blob stem>.graph.dot` beside it."""
    blob = Path(blob)
    return blob.with_name(blob.stem + DUMP_SUFFIX)


def matching_dump(blob: str | Path, data: bytes | None = None) -> GraphDump | None:
    """The dump beside `blob` (None: no dump), checked against the blob: as many stages, and each stage's type
    the same where the blob's type code has a name (a stale dump is an error, not a guess)."""
    from kernelkit.myriad import stages as stages_mod

    blob = Path(blob)
    dump_file = dump_path(blob)
    if not dump_file.is_file():
        return None
    dump = read_dump(dump_file)
    if data is None:
        data = read_input(blob, 2 ** 31, what="MYRIAD blob")
    in_blob = stages_mod.read_stages(data)
    in_dump = dump.blob_stages()
    if len(in_blob) != len(in_dump):
        raise _bad(f"it lists {len(in_dump)} stages, the blob {blob.name} has {len(in_blob)}: it belongs to "
                   "another compile", dump_file)
    for blob_stage, dump_stage in zip(in_blob, in_dump):
        named = stages_mod.STAGE_TYPE_NAMES.get(blob_stage.type_code)
        if named and named != dump_stage.type:
            raise _bad(f"stage {blob_stage.index} is {named} in the blob and {dump_stage.type} in the dump: it "
                       "belongs to another compile", dump_file)
    return dump


def blob_stage_layers(blob: str | Path, data: bytes | None = None) -> list[list[Layer]] | None:
    """The IR layer(s) of each stage of `blob`, in blob order, from the dump beside it (None: no dump; a dump of
    another compile is an error: `matching_dump`). For the blob reader (`kernelkit blob info`)."""
    dump = matching_dump(blob, data)
    if dump is None:
        return None
    mapping = dump.stage_layers()
    return [mapping[i] for i in range(len(mapping))]


def read_blob_with_layers(blob: str | Path):
    """The blob read whole (blob_reader.BlobModel) with each stage's IR layers from the dump beside it, when
    there is one (`.stage_layers`, `.graph_dump`). KernelkitError naming the file if either is damaged."""
    from kernelkit.myriad.blob_reader import read_blob

    path = Path(blob)
    model = read_blob(path)
    model.stage_layers = blob_stage_layers(path, model.data)
    if model.stage_layers is not None:
        model.graph_dump = str(dump_path(path))
    return model
