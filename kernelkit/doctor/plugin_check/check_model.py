"""What plugin-check compiles: a copy of the binding file whose Sources are check ELFs (metadata-only, made from
the `.cl` beside each `.bin`), a small IR v10 around one layer, and the cases that describe one layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core import xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import named_file
from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION
from kernelkit.facts.target import compiler_target
from kernelkit.myriad import check_elf


# IR element type -> (port precision, numpy dtype)
ELEMENT_TYPES = {"f16": ("FP16", np.float16), "f32": ("FP32", np.float32), "i32": ("I32", np.int32),
                 "i64": ("I64", np.int64), "u8": ("U8", np.uint8), "boolean": ("BOOL", np.bool_)}


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    element_type: str = "f16"            # IR element type
    value: np.ndarray | None = None      # a Const input (the layer then reads a constant)


@dataclass
class CheckCase:
    """One layer for the plugin to compile with the binding: what `kernelkit emulate` also takes."""

    layer_type: str
    inputs: list[TensorSpec]
    output_shapes: list[tuple[int, ...]]
    attrs: dict[str, str] = field(default_factory=dict)     # the IR <data> strings
    version: str | None = None                              # the layer's IR version (opsetN)
    name: str = ""
    output_types: list[str] | None = None

    def label(self) -> str:
        shapes = " ".join("x".join(map(str, t.shape)) or "scalar" for t in self.inputs)
        return self.name or f"{self.layer_type} [{shapes}]"


def _children(element, tag: str) -> list:
    return [c for c in element if isinstance(c.tag, str) and c.tag == tag]


def prepare_bindings(bindings: Path, folder: Path) -> Path:
    """A copy of the binding file in `folder` whose Sources name check ELFs made from the `.cl` beside each
    `.bin`; everything else stays as written, so the plugin judges the user's binding, not kernelkit's
    reading of it. Each ELF's note names its alternative and stage (the blob embeds the ELF it used)."""
    from lxml import etree

    bindings = Path(bindings)
    data = xmlsafe.read_limited(bindings, 4 * xmlsafe.MiB)
    root = xmlsafe.parse_fragment_run(data, path=bindings)
    index = 0
    for element in root:
        if not isinstance(element.tag, str):
            continue
        for kernel in _children(element, "Kernel"):
            sources = _children(kernel, "Source")
            stage = kernel.get("stage", "0")
            cl_paths = []
            for source in sources:
                name = source.get("filename", "")
                cl = named_file(bindings.parent, name, source=bindings, line=source.sourceline,
                                where="<Source filename>", what="kernel source", inside=False, suffix=".cl",
                                missing_ok=True)
                if cl is None:
                    cl = (bindings.parent / name).with_suffix(".cl")    # a name named_file accepted: shown only
                    raise KernelkitError(f'<Source filename="{name}">: no OpenCL source {cl.name} beside it, so no '
                                         "check ELF can be made", path=bindings, line=source.sourceline,
                                         hint=f"put the .cl that {name} is built from at {cl}")
                cl_paths.append(cl)
            if not cl_paths:
                continue            # the plugin reports the kernel without a Source itself
            # the entry names the output: cut so that the file system takes the name (alt/stage keep it unique)
            stem = f"{(kernel.get('entry') or cl_paths[0].stem)[:200]}-alt{index}-stage{stage[:20]}"
            elf = folder / check_elf.check_elf_name(re.sub(r"[^A-Za-z0-9_.-]", "_", stem))
            check_elf.write_check_elf(cl_paths, elf, note=f"alternative {index}, stage {stage}")
            sources[0].set("filename", elf.name)
            for extra in sources[1:]:
                kernel.remove(extra)
        index += 1
    text = (root.text or "") + "".join(etree.tostring(child, encoding="unicode") for child in root)
    out = folder / "bindings.check.xml"
    out.write_text(text)
    return out


def _dims(parent, shape) -> None:
    from lxml import etree

    for d in shape:
        etree.SubElement(parent, "dim").text = str(int(d))


def write_check_model(case: CheckCase, xml_path: Path) -> Path:
    """An IR v10 with one layer of the case's type: a Parameter (or Const) per input, one Result per output."""
    from lxml import etree

    if case.version is None:
        raise KernelkitError(f"no IR version for a {case.layer_type} layer", where=case.layer_type,
                             hint="give the op version, e.g. --version opset1")
    net = etree.Element("net", name="plugin_check", version="10")
    layers = etree.SubElement(net, "layers")
    edges = etree.SubElement(net, "edges")
    weights = bytearray()
    layer_id = len(case.inputs)
    for i, tensor in enumerate(case.inputs):
        if tensor.element_type not in ELEMENT_TYPES:
            raise KernelkitError(f"input {i}: element type {tensor.element_type!r} is not one of "
                                 f"{', '.join(ELEMENT_TYPES)}", where=f"input {i}")
        precision, dtype = ELEMENT_TYPES[tensor.element_type]
        shape_text = ",".join(str(int(d)) for d in tensor.shape)
        if tensor.value is None:
            layer = etree.SubElement(layers, "layer", id=str(i), name=f"in{i}", type="Parameter", version="opset1")
            etree.SubElement(layer, "data", shape=shape_text, element_type=tensor.element_type)
        else:
            raw = np.asarray(tensor.value, dtype=dtype).reshape(tensor.shape).tobytes()
            layer = etree.SubElement(layers, "layer", id=str(i), name=f"in{i}", type="Const", version="opset1")
            etree.SubElement(layer, "data", element_type=tensor.element_type, shape=shape_text,
                             offset=str(len(weights)), size=str(len(raw)))
            weights += raw
        _dims(etree.SubElement(etree.SubElement(layer, "output"), "port", id="0", precision=precision), tensor.shape)
        etree.SubElement(edges, "edge", {"from-layer": str(i), "from-port": "0", "to-layer": str(layer_id),
                                         "to-port": str(i)})
    probe = etree.SubElement(layers, "layer", id=str(layer_id), name="probe", type=case.layer_type,
                             version=case.version)
    etree.SubElement(probe, "data", {k: str(v) for k, v in case.attrs.items()})
    if case.inputs:
        ports = etree.SubElement(probe, "input")
        for i, tensor in enumerate(case.inputs):
            _dims(etree.SubElement(ports, "port", id=str(i), precision=ELEMENT_TYPES[tensor.element_type][0]),
                  tensor.shape)
    outputs = etree.SubElement(probe, "output")
    out_types = case.output_types or ["f16"] * len(case.output_shapes)
    for o, shape in enumerate(case.output_shapes):
        port_id = len(case.inputs) + o
        precision = ELEMENT_TYPES[out_types[o]][0]
        _dims(etree.SubElement(outputs, "port", id=str(port_id), precision=precision), shape)
        result_id = layer_id + 1 + o
        result = etree.SubElement(layers, "layer", id=str(result_id), name=f"out{o}", type="Result",
                                  version="opset1")
        _dims(etree.SubElement(etree.SubElement(result, "input"), "port", id="0", precision=precision), shape)
        etree.SubElement(edges, "edge", {"from-layer": str(layer_id), "from-port": str(port_id),
                                         "to-layer": str(result_id), "to-port": "0"})
    xml_path.write_bytes(etree.tostring(net, xml_declaration=True, encoding="utf-8", pretty_print=True))
    xml_path.with_suffix(".bin").write_bytes(bytes(weights))
    return xml_path


_PRECISION_TYPES = {"FP16": "f16", "FP32": "f32", "I32": "i32", "I64": "i64", "U8": "u8", "BOOL": "boolean",
                    "BOOLEAN": "boolean"}


def per_sample(shape, batch: int) -> tuple[int, ...]:
    """A tensor shape as the plugin compiles it: for one sample of a network batch above 1."""
    return (1,) + tuple(shape[1:]) if batch > 1 and len(shape) >= 2 and shape[0] == batch else tuple(shape)


def layer_case(model, layer, name: str) -> CheckCase:
    """A CheckCase describing one layer of an IR as it stands (ports, constant inputs, attributes)."""
    inputs = []
    for port in layer.inputs:
        producer = model.producer(layer, port.id)
        value = None
        if producer is not None and producer[0].type.lower() == "const":
            value = model.const_value(producer[0])
        etype = _PRECISION_TYPES.get((port.precision or "FP32").upper(), "f32")
        inputs.append(TensorSpec(tuple(port.dims), etype, value))
    outputs = [tuple(p.dims) for p in layer.outputs]
    out_types = [_PRECISION_TYPES.get((p.precision or "FP32").upper(), "f32") for p in layer.outputs]
    return CheckCase(layer.type, inputs, outputs, dict(layer.attrs.items()), layer.version, name=name,
                     output_types=out_types)


def extension_layer_model(path: Path, spec, case, arrays) -> Path:
    """The case as one extension layer of the kernel's op type: what a patched model holds where OpenVINO
    has no such layer (the compiler target's plugin binds it by type)."""
    from kernelkit.kernel.bindings.myriad_select import legacy_param_string
    from kernelkit.harness.custom_ops import one_layer_ir

    types = [case.dtypes[i] if i < len(case.dtypes) else "f32" for i in range(len(arrays))]
    types = ["f32" if t == "f16" else t for t in types]
    out_shape = list(case.output_shape) if case.output_shape is not None else list(arrays[0].shape)
    return one_layer_ir(path, spec.op, {k: legacy_param_string(v) for k, v in case.attrs.items()},
                        [list(a.shape) for a in arrays], out_shape, types)


def reader_versions(layer_type: str) -> list[str]:
    """The op versions of `layer_type` the compiler target's IR reader was seen to create (the plugin
    probes' data)."""
    from kernelkit.facts.knowledge import plugin_verdicts

    found = {row["version"] for row in plugin_verdicts() if row["op"].lower() == layer_type.lower()}
    return sorted(found, key=lambda v: int(v[5:]) if v[5:].isdigit() else 0)


def reader_opsets_hold(layer_type: str) -> bool:
    """Whether an opset the compiler target's IR reader knows (opset1 to its ceiling) has `layer_type`. The
    host OpenVINO's opsets of those numbers answer: an opset never changes once released."""
    from openvino.utils.node_factory import NodeFactory

    for number in range(1, compiler_target().opset_ceiling + 1):
        try:
            NodeFactory(f"opset{number}").create(layer_type)
        except RuntimeError:     # "op_node != nullptr": the opset has no such type
            continue
        return True
    return False


def version_for(layer_type: str, preferred: str | None) -> str:
    """The version a check layer of `layer_type` gets: an extension layer where the reader cannot create the
    type (the only way such a layer reaches its binding), else `preferred` or the newest the reader was seen
    to create."""
    from kernelkit.facts.knowledge import custom_layer_facts

    if custom_layer_facts().needs_extension_layer(layer_type):
        return EXTENSION_LAYER_VERSION
    known = reader_versions(layer_type)
    if preferred in known:
        return preferred
    if known:
        return known[-1]
    if not reader_opsets_hold(layer_type):
        return EXTENSION_LAYER_VERSION
    # Not in the probes: let the reader itself say whether it knows the type.
    return preferred if preferred and preferred[5:].isdigit() and int(preferred[5:]) <= compiler_target().opset_ceiling else "opset1"


def kernel_types(spec) -> list[str]:
    """The layer types `kernelkit patch` binds a library kernel to: its op and its OpenVINO reference op."""
    types = [spec.op]
    reference = (spec.reference.get("openvino") or {}) if isinstance(spec.reference, dict) else {}
    if reference.get("op") and reference["op"].lower() != spec.op.lower():
        types.insert(0, reference["op"])
    return types
