"""OpenVINO IR (v10/v11) as an editable lxml tree plus the raw `.bin`, with a small graph API.

Faithfulness: the tree is the document. Layer, Port and the attribute views read and write the lxml
elements directly, so whatever kernelkit does not touch is written back as it was read: element order,
attribute order, comments, `<rt_info>`, `<meta_data>`, sub-graph bodies. The text before the root element
(the XML declaration) and after it is kept byte for byte. The only normalisation on save: empty elements
are all written in the style the file used most (`<data ... />`, as OpenVINO writes them, or `<data .../>`),
and character references in the input come out as the characters (UTF-8), except that '>' and tab are
escaped the way the file escaped them (OpenVINO writes '>' raw and a tab as &#09;). The `.bin` is kept as read; new
constants are appended after its last byte, so existing offsets never move.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections import Counter, deque
from collections.abc import MutableMapping
from pathlib import Path
from typing import Iterator

import numpy as np

from kernelkit.core import xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import atomic_write
from kernelkit.ir import elements

MAX_XML_BYTES = 512 * 1024 * 1024
SUPPORTED_IR_VERSIONS = (10, 11)
_NAME_SPLIT = re.compile(r"(?<!\\),")
_DIM = re.compile(r"-?\d+|\?")


def parse_dims_text(text: str) -> list[int]:
    """A shape attribute ("1,3,224,224", "1, 3", "?,3,-1", "") as ints; -1 for any dynamic dim."""
    text = text.strip().strip("[]")
    if not text:
        return []
    dims = []
    for part in text.split(","):
        part = part.strip()
        try:
            dims.append(int(part))
        except ValueError:
            dims.append(-1)          # "?", "1..10", "..." : not static
    return [d if d >= 0 else -1 for d in dims]


def format_shape(dims, sep: str = ",") -> str:
    return sep.join(str(int(d)) for d in dims)


def _indent_unit(sample: str) -> str:
    return "\t" if "\t" in sample or not sample else "  " if sample.endswith("  ") else " "


def _leading_ws(element) -> str:
    """The indentation in front of `element` (the whitespace after the last newline before it)."""
    prev = element.getprevious()
    text = prev.tail if prev is not None else (element.getparent().text if element.getparent() is not None else "")
    text = text or ""
    return text[text.rfind("\n") + 1:] if "\n" in text else ""


def _last_child(parent):
    try:
        return parent[-1]            # O(1) for lxml, unlike len(parent), which counts the children
    except IndexError:
        return None


def _append_formatted(parent, child) -> None:
    """Append `child` to `parent` indented like its siblings (or one level deeper than `parent`)."""
    from lxml import etree

    parent_indent = _leading_ws(parent)
    last = _last_child(parent)
    child_indent = _leading_ws(last) if last is not None else parent_indent + _indent_unit(parent_indent)
    unit = child_indent[len(parent_indent):] or "\t"
    level = len(child_indent) // len(unit) if unit else 0
    etree.indent(child, space=unit, level=level)
    if last is not None:
        last.tail = "\n" + child_indent
    else:
        parent.text = "\n" + child_indent
    child.tail = "\n" + parent_indent
    parent.append(child)


def _attr_text(value) -> str:
    """An attribute value as the IR writes it: lists comma-separated, booleans lower-case."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_attr_text(v) for v in value)
    return str(value)


class DataAttrs(MutableMapping):
    """The layer's `<data>` attributes as a dict of strings; writing creates `<data>` when it is absent."""

    __slots__ = ("_layer",)

    def __init__(self, layer: "Layer"):
        self._layer = layer

    def _data(self, create: bool = False):
        data = self._layer.element.find("data")
        if data is None and create:
            from lxml import etree

            data = etree.Element("data")
            layer = self._layer.element
            first = next((c for c in layer if isinstance(c.tag, str)), None)
            if first is not None:
                data.tail = layer.text
                layer.insert(layer.index(first), data)
            else:
                _append_formatted(layer, data)
        return data

    def __getitem__(self, key):
        data = self._data()
        if data is None or key not in data.attrib:
            raise KeyError(key)
        return data.get(key)

    def __setitem__(self, key, value):
        self._data(create=True).set(key, _attr_text(value))

    def __delitem__(self, key):
        data = self._data()
        if data is None or key not in data.attrib:
            raise KeyError(key)
        del data.attrib[key]

    def __iter__(self):
        data = self._data()
        return iter(list(data.attrib.keys()) if data is not None else [])

    def __len__(self):
        data = self._data()
        return len(data.attrib) if data is not None else 0

    def __repr__(self):
        return repr(dict(self))


class Port:
    """One `<port>` of a layer: a view over the element (reads and writes go to the XML)."""

    __slots__ = ("element", "layer", "is_input")

    def __init__(self, element, layer: "Layer", is_input: bool):
        self.element = element
        self.layer = layer
        self.is_input = is_input

    @property
    def id(self) -> str:
        return self.element.get("id")

    @property
    def precision(self) -> str | None:
        return self.element.get("precision")

    @precision.setter
    def precision(self, value: str) -> None:
        self.element.set("precision", elements.require(value).precision)

    @property
    def element_type(self) -> str | None:
        """The element type name (f16, i32, ...) of the precision string, None when absent or unknown."""
        found = elements.lookup(self.precision)
        return found.name if found else None

    @property
    def dims(self) -> list[int]:
        return [_parse_dim(d.text) for d in self.element.iterfind("dim")]

    @dims.setter
    def dims(self, values) -> None:
        from lxml import etree

        old = self.element.findall("dim")
        template_tail = old[0].tail if len(old) > 1 else None
        for d in old:
            self.element.remove(d)
        if not values:
            self.element.text = None
            return
        indent = _leading_ws(self.element)
        child_indent = indent + _indent_unit(indent)
        if template_tail is not None and "\n" in template_tail:
            child_indent = template_tail[template_tail.rfind("\n") + 1:]
        self.element.text = "\n" + child_indent
        for i, value in enumerate(values):
            dim = etree.SubElement(self.element, "dim")
            dim.text = str(int(value))
            dim.tail = "\n" + (child_indent if i + 1 < len(values) else indent)

    @property
    def names(self) -> list[str]:
        text = self.element.get("names")
        if not text:
            return []
        return [part.replace("\\,", ",") for part in _NAME_SPLIT.split(text)]

    @names.setter
    def names(self, values) -> None:
        if values:
            self.element.set("names", ",".join(v.replace(",", "\\,") for v in values))
        elif "names" in self.element.attrib:
            del self.element.attrib["names"]

    def __repr__(self):
        kind = "in" if self.is_input else "out"
        return f"<Port {self.layer.name}:{self.id} {kind} {self.precision} {self.dims}>"


# The element types the IR v10 reader of OpenVINO 2021.4 knows (notes §1.9).
V10_ELEMENT_TYPES = {"f16", "f32", "i32", "i64", "u8", "i8", "boolean", "u1", "u64", "u32", "i16", "u16", "f64"}


def v10_obstacle(model: "IRModel") -> tuple["Layer", "Port", str] | None:
    """The first port that an IR v10 file for the 2021.4 reader cannot hold, with why: a dimension that is
    dynamic or zero (that reader takes positive dims only: "dimension (-1) in node dim must be a non-negative
    integer") or an element type it lacks. Output ports in graph order come first: the layer that makes such a
    dim, not the Result that receives it. None: the model can be written as v10."""
    layers = model.topological_order()
    for port in [p for layer in layers for p in layer.outputs] + [p for layer in layers for p in layer.inputs]:
        if any(d <= 0 for d in port.dims):
            what = "dynamic" if any(d < 0 for d in port.dims) else "zero"
            return port.layer, port, f"port {port.id} has a {what} dimension {port.dims}"
        etype = port.element_type
        if etype is not None and etype not in V10_ELEMENT_TYPES:
            return port.layer, port, f"port {port.id} has element type {etype}, which the 2021.4 reader lacks"
    return None


def _parse_dim(text: str | None) -> int:
    try:
        value = int((text or "").strip())
    except ValueError:
        return -1
    return value if value >= 0 else -1


class Layer:
    """One top-level `<layer>`: id, name, type, version, `<data>` attrs and ports, all live views."""

    __slots__ = ("element", "model")

    def __init__(self, element, model: "IRModel"):
        self.element = element
        self.model = model

    @property
    def id(self) -> str:
        return self.element.get("id")

    @property
    def name(self) -> str:
        return self.element.get("name", "")

    @name.setter
    def name(self, value: str) -> None:
        names = self.model._names
        old = self.name
        names[old] -= 1
        if not names[old]:
            del names[old]
        self.element.set("name", value)
        names[value] += 1

    @property
    def type(self) -> str:
        return self.element.get("type", "")

    @type.setter
    def type(self, value: str) -> None:
        self.element.set("type", value)

    @property
    def version(self) -> str:
        return self.element.get("version", "")

    @version.setter
    def version(self, value: str) -> None:
        self.element.set("version", value)

    @property
    def attrs(self) -> DataAttrs:
        return DataAttrs(self)

    @property
    def inputs(self) -> list[Port]:
        group = self.element.find("input")
        return [] if group is None else [Port(p, self, True) for p in group.iterfind("port")]

    @property
    def outputs(self) -> list[Port]:
        group = self.element.find("output")
        return [] if group is None else [Port(p, self, False) for p in group.iterfind("port")]

    def port(self, port_id) -> Port:
        port_id = str(port_id)
        for port in self.inputs + self.outputs:
            if port.id == port_id:
                return port
        raise KernelkitError(f"layer has no port {port_id}", where=self.describe())

    def describe(self) -> str:
        return f"layer {self.id} {self.name!r} ({self.type})"

    def __repr__(self):
        return f"<Layer {self.id} {self.name!r} {self.type}-{self.version}>"


class Edge:
    __slots__ = ("element",)

    def __init__(self, element):
        self.element = element

    from_layer = property(lambda self: self.element.get("from-layer"))
    from_port = property(lambda self: self.element.get("from-port"))
    to_layer = property(lambda self: self.element.get("to-layer"))
    to_port = property(lambda self: self.element.get("to-port"))

    def __repr__(self):
        return f"<Edge {self.from_layer}:{self.from_port} -> {self.to_layer}:{self.to_port}>"


class IRModel:
    """An IR document plus weights. Build it with `load_model` or `IRModel.from_bytes`."""

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, xml: bytes, bin_data: bytes | None = None, *, path=None, bin_path=None) -> "IRModel":
        root = xmlsafe.parse_document(xml, path=path, huge=len(xml) > 10 * xmlsafe.MiB)
        start = _root_start(xml)
        closing = xml.rfind(b"</" + str(root.tag).encode())
        end = xml.find(b">", closing) + 1 if closing >= 0 else xml.rfind(b">") + 1
        empty_style = b" />" if xml.count(b" />") >= xml.count(b"\"/>") else b"/>"
        model = cls.__new__(cls)
        model.root = root
        model.path = Path(path) if path is not None else None
        model.bin_path = Path(bin_path) if bin_path is not None else None
        model._prolog, model._epilog, model._empty_style = xml[:start], xml[end:], empty_style
        # OpenVINO's writer (pugixml) leaves '>' unescaped and writes a tab as &#09;; lxml writes &gt; and &#9;
        model._escape_gt = b"&gt;" in xml
        model._padded_char_refs = b"&#0" in xml
        model._bin = bytearray(bin_data or b"")
        model._bin_missing = bin_data is None
        model._check_header()
        model._index()
        model._check_consts()
        return model

    def copy(self) -> "IRModel":
        return IRModel.from_bytes(self.to_xml_bytes(), bytes(self._bin), path=self.path, bin_path=self.bin_path)

    # ---- header -------------------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.root.get("version"))

    @version.setter
    def version(self, value: int) -> None:
        self.root.set("version", str(int(value)))

    @property
    def name(self) -> str:
        return self.root.get("name", "")

    @property
    def bin_data(self) -> bytes:
        return bytes(self._bin)

    def _err(self, message, *, where=None, hint=None, line=None):
        return KernelkitError(message, path=self.path, where=where, hint=hint, line=line)

    def _check_header(self) -> None:
        if self.root.tag != "net":
            raise self._err(f"root element is <{self.root.tag}>, not <net>: this is not an OpenVINO IR",
                            hint="pass the model .xml written by Model Optimizer / openvino.save_model")
        version = self.root.get("version")
        if version is None or not version.strip().isdigit() or int(version) not in SUPPORTED_IR_VERSIONS:
            raise self._err(f"IR version {version!r} is not supported; kernelkit reads IR v10 and v11",
                            where="<net version>", line=self.root.sourceline,
                            hint="re-export the model with OpenVINO 2021.4 or newer")
        if self.root.find("layers") is None:
            raise self._err("the IR has no <layers> element", where="<net>")

    # ---- indexing and validation --------------------------------------------------------------------
    def _index(self) -> None:
        self._layers_el = self.root.find("layers")
        self._edges_el = self.root.find("edges")     # None until the first connect() when the file has none
        self._by_id: dict[str, Layer] = {}
        self._names: Counter[str] = Counter()
        self._next_suffix: dict[str, int] = {}   # per base name: where unique_name resumes probing
        self._port_ids: dict[str, tuple[frozenset, frozenset]] = {}   # layer id -> (input ids, output ids)
        self._max_id = -1
        from kernelkit.core import limits

        limits.LAYERS.check(sum(1 for _ in self._layers_el.iterfind("layer")), "<layers> holds", path=self.path)
        for element in self._layers_el.iterfind("layer"):
            self._register_layer(element)
        self._in_edge: dict[tuple[str, str], Edge] = {}
        self._out_edges: dict[tuple[str, str], list[Edge]] = {}
        for element in self._edges_el.iterfind("edge") if self._edges_el is not None else ():
            self._register_edge(Edge(element))
        self.topological_order()          # refuses cycles

    def _register_layer(self, element) -> Layer:
        line = element.sourceline
        lid = element.get("id")
        if lid is None or not lid.strip():
            raise self._err("a <layer> has no id", line=line, where=f"layer {element.get('name')!r}")
        if lid in self._by_id:
            other = self._by_id[lid]
            raise self._err(f"duplicate layer id {lid}: used by {other.name!r} and {element.get('name')!r}",
                            line=line, where=f"layer {lid}", hint="give every <layer> a unique id")
        for attr in ("type", "version"):
            if not element.get(attr):
                raise self._err(f"layer has no {attr} attribute", line=line,
                                where=f"layer {lid} {element.get('name')!r}")
        layer = Layer(element, self)
        seen = set()
        ports_by_side = ([], [])
        for side, group_tag in enumerate(("input", "output")):
            group = element.find(group_tag)
            if group is None:
                continue
            for port in group.iterfind("port"):
                pid = port.get("id")
                if pid is None:
                    raise self._err("a <port> has no id", line=port.sourceline, where=layer.describe())
                if pid in seen:
                    raise self._err(f"duplicate port id {pid}", line=port.sourceline,
                                    where=f"{layer.describe()}, port {pid}",
                                    hint="port ids must be unique across a layer's inputs and outputs")
                seen.add(pid)
                ports_by_side[side].append(pid)
                precision = port.get("precision")
                if precision is not None and elements.lookup(precision) is None:
                    elements.require(precision, path=self.path, line=port.sourceline,
                                     where=f"{layer.describe()}, port {pid}")
                for dim in port.iterfind("dim"):
                    text = (dim.text or "").strip()
                    if not (text.isdigit() or _DIM.fullmatch(text)):
                        raise self._err(f"dimension {text!r} is not an integer", line=dim.sourceline,
                                        where=f"{layer.describe()}, port {pid}")
        self._port_ids[lid] = (frozenset(ports_by_side[0]), frozenset(ports_by_side[1]))
        if layer.type == "Parameter" or layer.type == "Const":
            etype = layer.attrs.get("element_type")
            if etype is not None:
                elements.require(etype, path=self.path, line=line, where=layer.describe())
        self._by_id[lid] = layer
        self._names[layer.name] += 1
        if lid.isascii() and lid.isdigit():       # '²'.isdigit() is True, and int() refuses it
            self._max_id = max(self._max_id, int(lid))
        return layer

    def _register_edge(self, edge: Edge) -> None:
        line = edge.element.sourceline
        ends = (edge.from_layer, edge.from_port, edge.to_layer, edge.to_port)
        if any(v is None for v in ends):
            raise self._err("an <edge> lacks from-layer, from-port, to-layer or to-port", line=line)
        for layer_id, port_id, is_input in ((edge.from_layer, edge.from_port, False),
                                            (edge.to_layer, edge.to_port, True)):
            layer = self._by_id.get(layer_id)
            if layer is None:
                raise self._err(f"dangling edge: layer {layer_id} does not exist", line=line,
                                where=f"edge {edge.from_layer}:{edge.from_port} -> {edge.to_layer}:{edge.to_port}",
                                hint="remove the edge or add the layer it names")
            if port_id not in self._port_ids[layer_id][0 if is_input else 1]:
                # ports may have been added to the element since it was indexed
                ids = tuple(frozenset(p.id for p in ports) for ports in (layer.inputs, layer.outputs))
                self._port_ids[layer_id] = ids
            if port_id not in self._port_ids[layer_id][0 if is_input else 1]:
                side = "input" if is_input else "output"
                raise self._err(f"edge refers to {side} port {port_id}, which {layer.describe()} does not have",
                                line=line, where=f"edge {edge.from_layer}:{edge.from_port} -> "
                                                 f"{edge.to_layer}:{edge.to_port}",
                                hint="fix the port id in the edge or in the layer")
        key = (edge.to_layer, edge.to_port)
        if key in self._in_edge:
            raise self._err(f"input port {edge.to_port} of {self._by_id[edge.to_layer].describe()} has two "
                            f"incoming edges", line=line, hint="an input port takes exactly one edge")
        self._in_edge[key] = edge
        self._out_edges.setdefault((edge.from_layer, edge.from_port), []).append(edge)

    def _check_consts(self) -> None:
        """Every Const (sub-graph bodies included) must lie inside the .bin and be large enough."""
        for element in self.root.iter("layer"):
            if element.get("type", "").lower() != "const":
                continue
            data = element.find("data")
            if data is None or data.get("offset") is None:
                continue
            self._const_span(element)

    def _const_span(self, element) -> tuple[elements.ElementType, int, int, list[int]]:
        """(element type, offset, size, dims) of a Const, checked against the .bin and its own shape."""
        data = element.find("data")
        where = f"Const layer {element.get('id')} {element.get('name')!r}"
        line = element.sourceline
        if data is None or data.get("offset") is None:
            raise self._err("Const has no offset: its value is not in the .bin", where=where, line=line)
        try:
            offset, size = int(data.get("offset")), int(data.get("size", "0"))
        except ValueError:
            raise self._err("offset/size are not integers", where=where, line=line) from None
        if offset < 0 or size < 0:
            raise self._err("negative offset or size", where=where, line=line)
        etype = elements.require(data.get("element_type"), path=self.path, where=where, line=line)
        if size and self._bin_missing:
            raise self._err(f"the weights file is missing ({self.bin_path or 'no .bin given'})", where=where,
                            hint="put the .bin next to the .xml with the same stem")
        if offset + size > len(self._bin):
            raise self._err(f"Const data ends at byte {offset + size} but the .bin has only "
                            f"{len(self._bin)} bytes", where=where, line=line,
                            hint="the .bin is truncated or belongs to another model")
        dims = parse_dims_text(data.get("shape", ""))
        if any(d < 0 for d in dims):
            raise self._err(f"Const shape {data.get('shape')!r} is not static", where=where)
        count = math.prod(dims)            # exact: numpy's int64 product wraps for absurd shapes
        if etype.bits and size < elements.byte_size(etype, count):
            raise self._err(f"Const holds {size} bytes but shape {dims} of {etype.name} needs "
                            f"{elements.byte_size(etype, count)}", where=where, line=line)
        return etype, offset, size, dims

    # ---- graph queries ------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        by_id = self._by_id
        return [by_id[e.get("id")] for e in self._layers_el.iterfind("layer")]

    @property
    def edges(self) -> list[Edge]:
        return [] if self._edges_el is None else [Edge(e) for e in self._edges_el.iterfind("edge")]

    def layer(self, layer_id) -> Layer:
        try:
            return self._by_id[str(layer_id)]
        except KeyError:
            raise self._err(f"no layer with id {layer_id}") from None

    def find(self, name: str) -> Layer | None:
        for layer in self.layers:
            if layer.name == name:
                return layer
        return None

    def producer(self, layer: Layer, port_id) -> tuple[Layer, Port] | None:
        edge = self._in_edge.get((layer.id, str(port_id)))
        if edge is None:
            return None
        source = self._by_id[edge.from_layer]
        return source, source.port(edge.from_port)

    def consumers(self, layer: Layer, port_id) -> list[tuple[Layer, Port]]:
        found = []
        for edge in self._out_edges.get((layer.id, str(port_id)), ()):
            target = self._by_id[edge.to_layer]
            found.append((target, target.port(edge.to_port)))
        return found

    def input_edge(self, layer: Layer, port_id) -> Edge | None:
        return self._in_edge.get((layer.id, str(port_id)))

    def output_edges(self, layer: Layer, port_id) -> list[Edge]:
        return list(self._out_edges.get((layer.id, str(port_id)), ()))

    def parameters(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.type == "Parameter"]

    def results(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.type == "Result"]

    def topological_order(self) -> list[Layer]:
        """Producers before consumers; ties keep XML order. A cycle is a KernelkitError."""
        layers = self.layers
        indegree = {layer.id: 0 for layer in layers}
        successors: dict[str, list[str]] = {layer.id: [] for layer in layers}
        for (to_layer, _), edge in self._in_edge.items():
            indegree[to_layer] += 1
            successors[edge.from_layer].append(to_layer)
        ready = deque(layer.id for layer in layers if indegree[layer.id] == 0)
        order = []
        while ready:
            lid = ready.popleft()
            order.append(self._by_id[lid])
            for nxt in successors[lid]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(layers):
            stuck = [layer for layer in layers if indegree[layer.id] > 0]
            names = ", ".join(f"{l.id} {l.name!r}" for l in stuck[:5])
            raise self._err(f"the graph has a cycle through layers {names}", where=stuck[0].describe(),
                            hint="an IR must be a directed acyclic graph; check the <edges>")
        return order

    def iter_input_types(self, layer: Layer) -> Iterator[tuple[Port, str | None]]:
        """Each input port with the element type flowing into it (from the producer's output precision)."""
        for port in layer.inputs:
            found = self.producer(layer, port.id)
            yield port, (found[1].element_type if found else port.element_type)

    # ---- constants ----------------------------------------------------------------------------------
    def const_value(self, layer: Layer) -> np.ndarray:
        if layer.type.lower() != "const":
            raise self._err("not a Const layer", where=layer.describe())
        etype, offset, size, dims = self._const_span(layer.element)
        try:
            return elements.decode(etype, bytes(self._bin[offset:offset + size]), tuple(dims))
        except KernelkitError as exc:
            raise self._err(exc.message, where=layer.describe()) from None

    def add_const(self, array, name: str, *, after: Layer | None = None) -> Layer:
        """A new Const holding `array`, its bytes appended to the .bin (existing offsets do not move)."""
        array = np.asarray(array)
        etype, payload = elements.encode(array)
        offset = len(self._bin)
        self._bin.extend(payload)
        dims = list(array.shape)
        return self.add_layer("Const", "opset1", name,
                              {"element_type": etype.name, "shape": format_shape(dims, ", "),
                               "offset": offset, "size": len(payload)},
                              outputs=[(etype.precision, dims)], after=after)

    # ---- editing ------------------------------------------------------------------------------------
    def next_layer_id(self) -> str:
        return str(self._max_id + 1)

    def unique_name(self, base: str) -> str:
        """`base`, or `base_N` with the smallest N no layer uses."""
        if not self._names[base]:
            return base
        # Resume where the last call for this base stopped: patchers ask for the same base many times,
        # and probing from 1 each time made large patches quadratic.
        n = self._next_suffix.get(base, 1)
        while self._names[f"{base}_{n}"]:
            n += 1
        self._next_suffix[base] = n + 1
        return f"{base}_{n}"

    def add_layer(self, type: str, version: str, name: str, attrs: dict | None = None,
                  inputs=(), outputs=(), *, after: Layer | None = None) -> Layer:
        """Append a layer (or put it right after `after`). Ports get ids 0.. inputs first, then outputs.

        inputs/outputs: (precision, dims) pairs; precision as "FP16" or "f16".
        """
        from lxml import etree

        element = etree.Element("layer", {"id": self.next_layer_id(), "name": name, "type": type,
                                          "version": version})
        if attrs:
            etree.SubElement(element, "data", {k: _attr_text(v) for k, v in attrs.items()})
        port_id = 0
        for group_name, specs in (("input", inputs), ("output", outputs)):
            if not specs:
                continue
            group = etree.SubElement(element, group_name)
            for precision, dims in specs:
                port = etree.SubElement(group, "port", {"id": str(port_id),
                                                        "precision": elements.require(precision).precision})
                for d in dims:
                    etree.SubElement(port, "dim").text = str(int(d))
                port_id += 1
        if after is not None:
            anchor = after.element
            indent = _leading_ws(anchor)
            unit = _indent_unit(indent)
            etree.indent(element, space=unit, level=len(indent) // max(len(unit), 1))
            element.tail = anchor.tail
            anchor.tail = "\n" + indent
            anchor.addnext(element)
        else:
            _append_formatted(self._layers_el, element)
        return self._register_layer(element)

    def connect(self, src_layer: Layer, src_port_id, dst_layer: Layer, dst_port_id) -> Edge:
        from lxml import etree

        element = etree.Element("edge", {"from-layer": src_layer.id, "from-port": str(src_port_id),
                                         "to-layer": dst_layer.id, "to-port": str(dst_port_id)})
        edge = Edge(element)
        if self._edges_el is None:
            from lxml import etree

            self._edges_el = etree.Element("edges")
            old_tail = self._layers_el.tail
            self._layers_el.tail = "\n" + _leading_ws(self._layers_el)
            self._layers_el.addnext(self._edges_el)
            self._edges_el.tail = old_tail
        _append_formatted(self._edges_el, element)
        try:
            self._register_edge(edge)
        except KernelkitError:
            self._drop_element(element)
            raise
        return edge

    def disconnect(self, edge: Edge) -> None:
        key = (edge.to_layer, edge.to_port)
        registered = self._in_edge.get(key)
        if registered is None or (registered.element is not edge.element and
                                  (registered.from_layer, registered.from_port) != (edge.from_layer, edge.from_port)):
            raise self._err(f"no such edge {edge!r}")
        del self._in_edge[key]
        outs = self._out_edges[(registered.from_layer, registered.from_port)]
        outs[:] = [e for e in outs if e.element is not registered.element]
        self._drop_element(registered.element)

    def remove_layer(self, layer: Layer) -> None:
        """Remove a layer and every edge into or out of it."""
        touching = [self._in_edge[(layer.id, p.id)] for p in layer.inputs if (layer.id, p.id) in self._in_edge]
        for port in layer.outputs:
            touching.extend(self._out_edges.get((layer.id, port.id), ()))
        for edge in touching:
            self.disconnect(edge)
        self._drop_element(layer.element)
        del self._by_id[layer.id]
        self._port_ids.pop(layer.id, None)
        self._names[layer.name] -= 1
        if not self._names[layer.name]:
            del self._names[layer.name]

    @staticmethod
    def _drop_element(element) -> None:
        """Remove an element and keep the surrounding whitespace tidy."""
        parent = element.getparent()
        prev = element.getprevious()
        if prev is not None:
            prev.tail = element.tail
        elif element.getnext() is None:
            parent.text = element.tail
        parent.remove(element)

    # ---- output -------------------------------------------------------------------------------------
    def to_xml_bytes(self) -> bytes:
        from lxml import etree

        body = etree.tostring(self.root, encoding="UTF-8", xml_declaration=False)
        if self._empty_style == b" />":
            body = body.replace(b"/>", b" />")
        if not self._escape_gt:
            body = body.replace(b"&gt;", b">")
        if self._padded_char_refs:
            body = body.replace(b"&#9;", b"&#09;")
        prolog = self._prolog if self._prolog.strip() else b'<?xml version="1.0"?>\n'
        return prolog + body + self._epilog

    def save(self, xml_path) -> tuple[Path, Path]:
        """Write `xml_path` and the .bin beside it (same stem), each atomically. Returns both paths."""
        xml_path = Path(xml_path)
        bin_path = xml_path.with_suffix(".bin")
        self.topological_order()
        atomic_write(bin_path, bytes(self._bin))
        atomic_write(xml_path, self.to_xml_bytes())
        return xml_path, bin_path


def _root_start(xml: bytes) -> int:
    """Offset of the root element's `<` (after the declaration, comments and processing instructions)."""
    pos = 0
    while True:
        pos = xml.find(b"<", pos)
        if pos < 0:
            return 0
        if xml.startswith(b"<?", pos):
            pos = xml.find(b"?>", pos) + 2
        elif xml.startswith(b"<!--", pos):
            pos = xml.find(b"-->", pos) + 3
        else:
            return pos


def write_temp_ir(model: IRModel, folder: str | Path | None = None) -> Path:
    """Save `model` into a fresh temporary folder (for tools that need files); returns the .xml path."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="kernelkit-ir-"))
    xml_path, _ = model.save(folder / "model.xml")
    return xml_path
