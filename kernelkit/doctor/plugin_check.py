"""The real MYRIAD 2021.4 plugin as the judge of custom-layer bindings (`kernelkit plugin-check`).

For each layer to check, a small IR v10 wraps one layer of the binding's type (or a patched model is taken as
it is); every `<Source>` of the binding is replaced by a metadata-only ELF made from the `.cl` beside it
(check_elf.py); the real plugin compiles that with the binding; the blob it writes shows what the plugin
computed (stages.py). The verdict per layer:

    accepted   the blob holds a Custom stage for the layer
    rejected   the plugin refused the model while handling the layer (its message)
    skipped    the plugin never used the binding: it fell back to its own parser (and refused the type, or
               compiled it natively), or its IR reader cannot create an opset layer of the type (an extension
               layer, version="extension", it can: knowledge.EXTENSION_LAYER_VERSION)

For accepted layers the Custom stages are compared with what kernelkit's emulator would launch
(`emulator.plan_launch`): the alternative, work-group counts and sizes, every scalar value, every buffer's
place, order and dims. kernelkit's own reading (parser, validator, emulator) is recorded beside the plugin's,
so a disagreement shows either way.

Blobs compiled here are check artifacts (they embed ELFs with no code): they are written only into a
`--keep` folder, as `*.check.blob`, never where a deployable blob goes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from kernelkit.core import xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import check_elf, compile as compile_mod, stages as stage_reader
from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION

ACCEPTED, REJECTED, SKIPPED = "accepted", "rejected", "skipped"
# A kernel folder's spec case at a shape `kernelkit patch` binds no kernel to (the plugin would run it per
# sample, a rank-0/1 output, ...): never compiled, so no verdict of the plugin's.
UNBINDABLE = "unbindable"
CHECK_BLOB_SUFFIX = ".check.blob"
ELEMENT_TYPES = {"f16": ("FP16", np.float16), "f32": ("FP32", np.float32), "i32": ("I32", np.int32),
                 "i64": ("I64", np.int64), "u8": ("U8", np.uint8), "boolean": ("BOOL", np.bool_)}
# The order the plugin gives a tensor for a binding format; ANY keeps the default order for the rank.
FORMAT_ORDERS = {"BFYX": "NCHW", "BYXF": "NHWC", "FYX": "CHW", "YXF": "HWC"}
DEFAULT_ORDERS = {1: "C", 2: "NC", 3: "CHW", 4: "NCHW", 5: "NCDHW"}
_UNREACHABLE = (re.compile(r"Cannot create (?P<type>\w+) layer .* from unsupported opset: (?P<opset>\S+)"),
                re.compile(r"Opset (?P<opset>\S+) doesn't contain the operation with type: (?P<type>\w+)"))
_FALLBACK = re.compile(r'Failed to compile layer "(?P<name>[^"]+)": unsupported layer type "(?P<type>[^"]+)"')
ALTERNATIVE_NOTE = re.compile(r"alternative (\d+), stage (\d+)")


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


@dataclass
class Verdict:
    """The plugin's verdict on one layer, and kernelkit's reading of the same binding."""

    case: CheckCase
    status: str                                  # accepted | rejected | skipped | unbindable
    message: str = ""                            # the plugin's text, or why it was skipped
    plugin_alternative: int | None = None        # the chosen <CustomLayer>, numbered in the whole file
    stages: list = field(default_factory=list)   # stages.CustomStage
    kernelkit: str = ""                          # "accepts" | "refuses: ..."
    kernelkit_alternative: int | None = None
    findings: list[str] = field(default_factory=list)      # validator findings (severity: message)
    differences: list[str] = field(default_factory=list)   # where the emulator's launch differs from the blob
    blob: Path | None = None

    @property
    def agrees(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict:
        return {
            "layer": self.case.label(), "type": self.case.layer_type, "version": self.case.version,
            "inputs": [list(t.shape) for t in self.case.inputs], "outputs": [list(s) for s in self.case.output_shapes],
            "attrs": self.case.attrs, "status": self.status, "message": self.message,
            "plugin_alternative": self.plugin_alternative, "kernelkit": self.kernelkit,
            "kernelkit_alternative": self.kernelkit_alternative, "findings": self.findings,
            "differences": self.differences,
            "stages": [{"entry": s.entry, "groups": list(s.groups), "local": list(s.local),
                        "max_shaves": s.max_shaves,
                        "args": [{"name": a.name, "kind": a.kind, "value": a.value} for a in s.args],
                        "inputs": [{"order": b.order, "dims": list(b.logical_shape())} for b in s.inputs],
                        "outputs": [{"order": b.order, "dims": list(b.logical_shape())} for b in s.outputs]}
                       for s in self.stages],
            "blob": str(self.blob) if self.blob else None,
        }


# ------------------------------------------------------------------------------------ the check bindings

@dataclass
class _KernelSources:
    alternative: int
    stage: str
    entry: str
    element: object              # the lxml <Kernel>
    cl_paths: list[Path]


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
                cl = (bindings.parent / name).with_suffix(".cl")
                if not cl.is_file():
                    raise KernelkitError(f'<Source filename="{name}">: no OpenCL source {cl.name} beside it, so no '
                                         "check ELF can be made", path=bindings, line=source.sourceline,
                                         hint=f"put the .cl that {name} is built from at {cl}")
                cl_paths.append(cl)
            if not cl_paths:
                continue            # the plugin reports the kernel without a Source itself
            stem = f"{kernel.get('entry') or cl_paths[0].stem}-alt{index}-stage{stage}"
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


# ----------------------------------------------------------------------------------------- the check IR

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


# ------------------------------------------------------------------------------------- kernelkit's reading

def _per_sample(shape, batch: int) -> tuple[int, ...]:
    return (1,) + tuple(shape[1:]) if batch > 1 and len(shape) >= 2 and shape[0] == batch else tuple(shape)


def _kernelkit_reading(bindings: Path, case: CheckCase, verdict: Verdict, batch: int = 1):
    """kernelkit's parser, validator, cross-check and emulator plan for the case; the plan, or None where
    they refuse. `verdict.kernelkit` says what kernelkit expects the plugin to do: "accepts", "skips: why"
    (it uses no binding) or "refuses: why" (its compile fails); errors of the emulator's device checks (the
    kernel would misbehave) do not make the plugin refuse. With a network batch above 1 the plugin compiles
    the network for one sample: so is the plan."""
    from kernelkit.kernel.bindings import crosscheck, myriad_check, myriad_read, myriad_select
    from kernelkit.kernel.emulator.plan import NoBindingApplies, plan_launch
    from kernelkit.facts.knowledge import custom_layer_facts, legacy_params

    try:
        layers = myriad_read.load(bindings)
    except KernelkitError as exc:
        verdict.kernelkit = f"refuses: {exc.message}"
        return None
    facts = custom_layer_facts()
    consts = {i: t.value for i, t in enumerate(case.inputs) if t.value is not None}
    extension_layer = case.version == EXTENSION_LAYER_VERSION
    if extension_layer and facts.extension_layer_refusal(case.layer_type):
        verdict.kernelkit = f"refuses: {facts.extension_layer_refusal(case.layer_type)}"
        return None
    attrs = legacy_params(case.layer_type, facts.extension_layer_attrs(case.layer_type, case.attrs)
                          if extension_layer else case.attrs, consts)
    blobs = {name: consts[port] for port, name in facts.blobs(case.layer_type).items() if port in consts}
    plugin_type = myriad_select.plugin_layer_type(case.layer_type)
    same_type = [layer for layer in layers if layer.name.lower() == plugin_type.lower()]
    for finding in myriad_check.validate(same_type, attrs):
        verdict.findings.append(f"{finding.severity}: {finding.message}")
    lacks = facts.reader_lacks(case.layer_type)
    if lacks and not extension_layer:
        verdict.kernelkit = (f"skips: {lacks}, so no {case.layer_type} layer of {case.version} reaches a binding "
                             f"(an extension layer does)")
        return None
    decomposed = facts.decomposed_by_plugin(case.layer_type)
    if decomposed and not extension_layer:
        verdict.kernelkit = f"skips: the plugin never uses a binding for {case.layer_type} ({decomposed})"
        return None
    arrays = [np.zeros(_per_sample(t.shape, batch), ELEMENT_TYPES[t.element_type][1]) if t.value is None
              else np.asarray(t.value, ELEMENT_TYPES[t.element_type][1]).reshape(t.shape) for t in case.inputs]
    outputs = [_per_sample(s, batch) for s in case.output_shapes]
    try:
        plan = plan_launch(layers, case.layer_type, arrays, attrs, outputs, blobs=blobs)
    except NoBindingApplies as exc:
        verdict.kernelkit = f"skips: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return None
    except KernelkitError as exc:
        verdict.kernelkit = f"refuses: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return None
    chosen = [layer for layer in same_type][plan.alternative]
    claims = [f for f in plan.findings if f.plugin == "rejects"]
    claims += [f for f in myriad_check.validate([chosen], attrs) if f.plugin == "rejects"]
    for kernel in chosen.kernels:
        cl = next(((chosen.base_dir / n).with_suffix(".cl") for n in kernel.sources
                   if (chosen.base_dir / n).with_suffix(".cl").is_file()), None)
        if cl is not None:
            found = crosscheck.check(chosen, {kernel.entry: cl.read_text()}, source_paths={kernel.entry: cl})
            claims += [f for f in found if f.plugin == "rejects"]
    verdict.kernelkit = f"refuses: {claims[0].message}" if claims else "accepts"
    in_file = _alternative_index_in_file(plan)      # numbered as the plugin's alternative: in the whole file
    verdict.kernelkit_alternative = in_file if in_file is not None else plan.alternative
    return plan


def _expected_buffers(kernel) -> dict[str, int]:
    """arg name -> the buffer number the plugin gives it: inputs and input buffers in binding order, then
    data blobs, then the kernel binary, then outputs and output buffers."""
    from kernelkit.kernel.bindings.model import DataParam, TensorParam

    inputs = [p.arg_name for p in kernel.params if isinstance(p, TensorParam) and p.type in ("input", "input_buffer")]
    inputs += [p.arg_name for p in kernel.params if isinstance(p, DataParam) and p.type == "data"]
    outputs = [p.arg_name for p in kernel.params if isinstance(p, TensorParam)
               and p.type in ("output", "output_buffer")]
    numbering = {name: i for i, name in enumerate(inputs)}
    numbering.update({name: len(inputs) + 1 + i for i, name in enumerate(outputs)})
    return numbering


def _pad(values, width: int = 3) -> tuple[int, ...]:
    return tuple(values) + (1,) * (width - len(values))


def compare(plan, custom: list, case: CheckCase, batch: int = 1) -> list[str]:
    """Where the emulator's launch differs from the Custom stages the plugin wrote (empty: identical)."""
    diffs = []
    if len(custom) != len(plan.stages):
        split = len(custom) % max(len(plan.stages), 1) == 0 and custom and custom[0].inputs and \
            custom[0].inputs[0].dims.get("N") == 1
        return [f"the plugin wrote {len(custom)} Custom stage(s), the emulator plans {len(plan.stages)}"
                + (": it split the layer into one stage per sample, each with the whole tensor's work sizes "
                   "(on the device each would overrun its slice)" if split else "")]
    from kernelkit.kernel.emulator.plan import per_sample_stages

    samples = per_sample_stages(plan.layer, [_per_sample(t.shape, batch) if t.value is None else t.shape
                                             for t in case.inputs],
                                [_per_sample(s, batch) for s in case.output_shapes])
    for planned, stage, kernel in zip(plan.stages, custom, plan.layer.kernels):
        at = f"stage {planned.stage} '{planned.entry}'"
        if stage.entry != planned.entry:
            diffs.append(f"{at}: the plugin runs kernel '{stage.entry}'")
        # the blob holds one entry per dimension the binding gives; missing ones are 1
        width = max(len(stage.groups), len(stage.local), len(planned.groups))
        if _pad(stage.groups, width) != _pad(planned.groups, width):
            diffs.append(f"{at}: work groups {tuple(stage.groups)} in the blob, {planned.groups} in the emulator")
        if _pad(stage.local, width) != _pad(planned.local_size, width):
            diffs.append(f"{at}: local size {tuple(stage.local)} in the blob, {planned.local_size} in the emulator")
        if stage.max_shaves != kernel.max_shaves:
            diffs.append(f"{at}: max-shaves {stage.max_shaves} in the blob, {kernel.max_shaves} in the binding")
        names = [a.name for a in stage.args]
        if names != [a.name for a in planned.args]:
            diffs.append(f"{at}: arguments {names} in the blob, {[a.name for a in planned.args]} in the emulator")
            continue
        numbering = _expected_buffers(kernel)
        for mine, theirs in zip(planned.args, stage.args):
            where = f"{at}, argument '{mine.name}'"
            kind = mine.kind if mine.kind != "buffer" else "buffer"
            if theirs.kind != kind:
                diffs.append(f"{where}: {theirs.kind} in the blob, {kind} in the emulator")
                continue
            if kind in ("int", "float", "local"):
                same = (np.float32(theirs.value) == np.float32(mine.value) or
                        (np.isnan(np.float32(theirs.value)) and np.isnan(np.float32(mine.value))))
                if kind != "float":
                    same = int(theirs.value) == int(mine.value)
                if not same:
                    diffs.append(f"{where}: {kind} {theirs.value!r} in the blob, {mine.value!r} in the emulator")
                continue
            expected = numbering.get(mine.name)
            if expected is not None and theirs.value != expected:
                diffs.append(f"{where}: buffer #{theirs.value} in the blob, #{expected} by the binding's order")
            if not 0 <= theirs.value < len(stage.buffers):
                continue
            buffer = stage.buffers[theirs.value]
            if mine.buffer == "scratch" and mine.size is not None and buffer.dims:
                elements = int(np.prod(list(buffer.dims.values())))
                if elements != mine.size:
                    diffs.append(f"{where}: scratch buffer of {elements} elements in the blob, {mine.size} in the "
                                 "emulator")
            if mine.buffer in ("input", "output"):
                shapes = ([t.shape if t.value is not None else _per_sample(t.shape, batch) for t in case.inputs]
                          if mine.buffer == "input" else [_per_sample(s, batch) for s in case.output_shapes])
                shape = tuple(shapes[mine.port]) if mine.port < len(shapes) else None
                if samples > 1 and shape is not None and len(shape) == 2 and shape[0] == samples:
                    shape = (1, shape[1])          # each copy of a split stage holds one sample's slice
                if shape is not None and buffer.dims and buffer.logical_shape() != tuple(shape):
                    diffs.append(f"{where}: dims {buffer.logical_shape()} in the blob, {tuple(shape)} "
                                 f"for {mine.buffer} {mine.port}")
                order = FORMAT_ORDERS.get(mine.format or "ANY") or DEFAULT_ORDERS.get(len(shape or ()))
                if shape is not None and order and len(order) == len(shape) and buffer.order != order:
                    diffs.append(f"{where}: order {buffer.order} in the blob, {order} for format {mine.format}")
    return diffs


# ------------------------------------------------------------------------------------------- the checks

def _classify(verdict: Verdict, run, blob_path: Path, case: CheckCase) -> None:
    if run.ok:
        data = blob_path.read_bytes()
        custom = stage_reader.custom_stages(data)
        if not custom:
            verdict.status = SKIPPED
            verdict.message = ("the plugin compiled the layer with its own implementation: no binding "
                               "alternative was chosen")
            return
        verdict.status, verdict.stages = ACCEPTED, custom
        notes = [ALTERNATIVE_NOTE.search(check_elf.read_note(s.binary) or "") for s in custom]
        if notes and notes[0]:
            verdict.plugin_alternative = int(notes[0].group(1))
        return
    message = run.message
    unreachable = next((m for m in (p.search(message) for p in _UNREACHABLE) if m), None)
    if unreachable:
        verdict.status = SKIPPED
        verdict.message = (f"the 2021.4 IR reader cannot create a {unreachable['type']} layer "
                           f"({unreachable['opset']}); as an extension layer (version \"{EXTENSION_LAYER_VERSION}\") "
                           f"the plugin binds it by type ({message})")
    elif _FALLBACK.search(message):
        verdict.status = SKIPPED
        verdict.message = f"the plugin used no binding alternative and fell back to its own parser: {message}"
    else:
        verdict.status, verdict.message = REJECTED, message


def _blob_batch(blob: Path) -> int:
    from kernelkit.myriad import blob as blobfmt

    return max(blobfmt.read_header(blob.read_bytes()).batch_size, 1)


def _alternative_index_in_file(plan) -> int | None:
    """The plan's alternative as its position among all <CustomLayer> elements of the file."""
    from kernelkit.kernel.bindings import myriad_read

    if plan is None or plan.layer.path is None:
        return None
    layers = myriad_read.load(plan.layer.path)
    same_type = [i for i, layer in enumerate(layers) if layer.name.lower() == plan.layer.name.lower()]
    return same_type[plan.alternative] if plan.alternative < len(same_type) else None


def check(bindings: str | Path, cases: Sequence[CheckCase], *, jobs: int | None = None,
          keep: str | Path | None = None, config: dict[str, str] | None = None) -> list[Verdict]:
    """The plugin's verdict on `bindings` for each case (one compile each, in parallel)."""
    from kernelkit.myriad import toolchain

    tc = toolchain.require()
    bindings = Path(bindings)
    if not bindings.is_file():
        raise KernelkitError("binding file not found", path=bindings)
    jobs = jobs or max(os.cpu_count() or 1, 1)
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-") as tmp:
        folder = Path(tmp)
        check_xml = prepare_bindings(bindings, folder)
        full_config = compile_mod.make_config(custom_layers=check_xml, extra=config)

        def one(index_case):
            index, case = index_case
            case_dir = folder / f"case{index}"
            case_dir.mkdir()
            model = write_check_model(case, case_dir / "model.xml")
            blob = case_dir / ("model" + CHECK_BLOB_SUFFIX)
            run = compile_mod.run_shim(model, blob, full_config, toolchain=tc)
            verdict = Verdict(case, REJECTED)
            _classify(verdict, run, blob, case)
            _compare_with_kernelkit(verdict, bindings, _blob_batch(blob) if run.ok else 1)
            if keep is not None and blob.is_file():
                verdict.blob = blob
            return verdict

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            verdicts = list(pool.map(one, enumerate(cases)))
        if keep is not None:
            _keep(folder, Path(keep), verdicts)
    return verdicts


def _keep(folder: Path, keep: Path, verdicts: list[Verdict]) -> None:
    """Copy the check folder (bindings, ELFs, IRs, check blobs) to `keep`, replacing what it held."""
    from kernelkit.core.fsutil import staged_directory

    with staged_directory(keep, force=True) as stage:
        for item in folder.iterdir():
            target = stage / item.name
            shutil.copytree(item, target) if item.is_dir() else shutil.copy2(item, target)
    for verdict in verdicts:
        if verdict.blob is not None:
            verdict.blob = keep / verdict.blob.parent.name / verdict.blob.name


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """0 when the plugin accepted every layer it was given (one at least), else 1."""
    judged = [v for v in verdicts if v.status != UNBINDABLE]
    return 0 if judged and all(v.status == ACCEPTED for v in judged) else 1


# ----------------------------------------------------------------------------------- kernel folders

def reader_versions(layer_type: str) -> list[str]:
    """The op versions of `layer_type` the 2021.4 IR reader was seen to create (the plugin probes' data)."""
    from kernelkit.facts.knowledge import plugin_verdicts

    found = {row["version"] for row in plugin_verdicts() if row["op"].lower() == layer_type.lower()}
    return sorted(found, key=lambda v: int(v[5:]) if v[5:].isdigit() else 0)


def _reachable(verdict: Verdict) -> bool:
    return not verdict.message.startswith("the 2021.4 IR reader cannot create")


def _version_for(layer_type: str, preferred: str | None) -> str:
    from kernelkit.facts.knowledge import custom_layer_facts

    if custom_layer_facts().needs_extension_layer(layer_type):
        return EXTENSION_LAYER_VERSION
    known = reader_versions(layer_type)
    if preferred in known:
        return preferred
    if known:
        return known[-1]
    # Not in the probes: let the reader itself say whether it knows the type.
    return preferred if preferred and preferred[5:].isdigit() and int(preferred[5:]) <= 7 else "opset1"


def kernel_types(spec) -> list[str]:
    """The layer types `kernelkit patch` binds a library kernel to: its op and its OpenVINO reference op."""
    types = [spec.op]
    reference = (spec.reference.get("openvino") or {}) if isinstance(spec.reference, dict) else {}
    if reference.get("op") and reference["op"].lower() != spec.op.lower():
        types.insert(0, reference["op"])
    return types


def cases_for_kernel(spec, layer_type: str) -> list[CheckCase]:
    """One CheckCase per spec case, with the layer the harness's OpenVINO reference builds: the fed kernel
    inputs (Const where the case fixes their value), then the reference's constant inputs, and the case's
    other attributes (renamed as the reference renames them)."""
    from kernelkit.kernel.bindings.myriad_select import legacy_param_string
    from kernelkit.harness.inputs import generate_inputs
    from kernelkit.runners.references import _const_value, _openvino_conf

    conf = _openvino_conf(spec) or {}
    is_reference = conf.get("op", "").lower() == layer_type.lower() and conf.get("frontend") is None
    version = _version_for(layer_type, conf.get("opset") if is_reference else None)
    cases = []
    for case in spec.cases:
        arrays = generate_inputs(case, path=spec.path)
        values = dict(case.attrs)
        inputs = []
        fed = conf.get("feed") if is_reference and conf.get("feed") is not None else range(len(arrays))
        for index in fed:
            dtype = case.dtypes[index] if index < len(case.dtypes) else "f16"
            inputs.append(TensorSpec(tuple(arrays[index].shape), dtype,
                                     arrays[index] if index in case.fixed else None))
        if is_reference:
            for index, entry in enumerate(conf.get("const_inputs", [])):
                value = _const_value(spec, entry, values, index)
                dtype = "f16" if value.dtype.kind == "f" else "i32"
                inputs.append(TensorSpec(tuple(value.shape), dtype, value))
            renames = conf.get("attrs", {})
            values = {renames.get(k, k): v for k, v in values.items()}
        out_shape = tuple(case.output_shape) if case.output_shape is not None else tuple(arrays[0].shape)
        cases.append(CheckCase(layer_type, inputs, [out_shape],
                               {k: legacy_param_string(v) for k, v in values.items()}, version,
                               name=f"{spec.name}::{case.name} as {layer_type}-{version.removeprefix('opset')}",
                               output_types=[spec.output.dtype]))
    return cases


def renamed_bindings(xml_path: Path, layer_type: str, folder: Path) -> Path:
    """A copy of a binding file beside its sources with every <CustomLayer name> set to `layer_type`, as
    `kernelkit patch` renames a library kernel's binding to the layer type it binds."""
    from lxml import etree

    root = xmlsafe.parse_fragment_run(xmlsafe.read_limited(xml_path, 4 * xmlsafe.MiB), path=xml_path)
    for element in root:
        if isinstance(element.tag, str):
            element.set("name", layer_type)
    out = folder / f"{xml_path.stem}.as-{layer_type}.xml"
    out.write_text((root.text or "") + "".join(etree.tostring(c, encoding="unicode") for c in root))
    for source in xml_path.parent.glob("*.cl"):
        if not (folder / source.name).exists():
            shutil.copyfile(source, folder / source.name)
    return out


# ------------------------------------------------------------------------------------------ patch folders

_PRECISION_TYPES = {"FP16": "f16", "FP32": "f32", "I32": "i32", "I64": "i64", "U8": "u8", "BOOL": "boolean",
                    "BOOLEAN": "boolean"}


def _layer_case(model, layer, name: str) -> CheckCase:
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


def _group_stages(custom: list) -> list[list]:
    """Custom stages grouped per layer: a layer's stages run in order, from its stage 0."""
    groups: list[list] = []
    for stage in custom:
        note = ALTERNATIVE_NOTE.search(check_elf.read_note(stage.binary) or "")
        if not groups or note is None or int(note.group(2)) == 0:
            groups.append([stage])
        else:
            groups[-1].append(stage)
    return groups


@dataclass
class PatchCheck:
    """A patch folder compiled with check ELFs: the plugin's word on the whole model and per bound layer."""

    compiled: bool
    message: str                      # the plugin's error when it refused the model
    verdicts: list[Verdict]
    header: object = None             # blob.BlobHeader of the check blob


def check_patch_dir(outdir: str | Path, *, jobs: int | None = None, keep: str | Path | None = None,
                    label: str | None = None) -> list[Verdict]:
    """The plugin's verdict on every layer a patch output folder binds to a kernel (see check_patch)."""
    return check_patch(outdir, keep=keep, label=label).verdicts


def check_patch(outdir: str | Path, *, keep: str | Path | None = None, label: str | None = None) -> PatchCheck:
    """Compile a patch output folder as it is, with check ELFs in place of the kernels' `.bin`, and judge
    every layer it binds to a kernel."""
    from kernelkit.ir.load import load_model
    from kernelkit.myriad import blob as blobfmt
    from kernelkit.myriad import toolchain
    from kernelkit.facts.knowledge import custom_layer_facts

    outdir = Path(outdir)
    source = compile_mod.resolve_input(outdir)
    if source.custom_layers is None or not source.custom_layers.is_file():
        raise KernelkitError("the patch output binds no custom layer (no custom_layers.xml)", path=outdir,
                             hint="plugin-check judges custom-layer bindings; `kernelkit compile` the folder")
    report = source.report or {}
    bound = [(entry["type"], name) for entry in report.get("custom_layers", []) for name in entry.get("layers", [])]
    model = load_model(source.model)
    order = [layer for layer in model.topological_order() if any(layer.name == n for _, n in bound)]
    cases = [_layer_case(model, layer, f"{label + ': ' if label else ''}{layer.name} ({layer.type})")
             for layer in order]
    tc = toolchain.require()
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-") as tmp:
        folder = Path(tmp)
        for item in outdir.iterdir():
            if item.is_file() and item.suffix in (".xml", ".bin", ".cl"):
                shutil.copyfile(item, folder / item.name)
        check_xml = prepare_bindings(folder / source.custom_layers.name, folder)
        config = dict(source.config)
        shaves = int(config.pop(compile_mod.SHAVES_KEY, compile_mod.DEFAULT_SHAVES))
        cmx = config.pop(compile_mod.CMX_KEY, None)
        full = compile_mod.make_config(shaves=shaves, cmx_slices=int(cmx) if cmx else None, custom_layers=check_xml,
                                       extra=config)
        blob = folder / ("model" + CHECK_BLOB_SUFFIX)
        run = compile_mod.run_shim(folder / source.model.name, blob, full, toolchain=tc)
        verdicts = [Verdict(case, REJECTED) for case in cases]
        batch = 1
        if run.ok:
            batch = _blob_batch(blob)
            groups = _group_stages(stage_reader.custom_stages(blob.read_bytes()))
            for verdict, layer in zip(verdicts, order):
                want = _per_sample(layer.outputs[0].dims, batch)
                slice_ = _per_sample(want, want[0] if want else 1)
                match = next((g for g in groups if tuple(g[-1].outputs[0].logical_shape()) == want), None)
                if match is None:       # the plugin split the stage per sample: every slice's stages
                    pieces = [g for g in groups if tuple(g[-1].outputs[0].logical_shape()) == slice_]
                    match = [stage for g in pieces for stage in g] if pieces else None
                    for g in pieces:
                        groups.remove(g)
                    if pieces:
                        groups.insert(0, match)
                if match is None:
                    verdict.status = SKIPPED
                    decomposed = custom_layer_facts().decomposed_by_plugin(layer.type)
                    verdict.message = (f"the plugin replaced the layer before looking for a binding: {decomposed}"
                                       if decomposed else
                                       "the blob holds no Custom stage for this layer: the plugin used no binding")
                    continue
                groups.remove(match)
                verdict.status, verdict.stages = ACCEPTED, match
                note = ALTERNATIVE_NOTE.search(check_elf.read_note(match[0].binary) or "")
                verdict.plugin_alternative = int(note.group(1)) if note else None
        else:
            name, _ = compile_mod.parse_compile_error(run.message)
            for verdict, layer in zip(verdicts, order):
                if name is None or name == layer.name:
                    _classify(verdict, run, blob, verdict.case)
                else:
                    verdict.status = SKIPPED
                    verdict.message = f"the plugin refused layer \"{name}\" first: {run.message}"
        for verdict in verdicts:
            _compare_with_kernelkit(verdict, source.custom_layers, batch)
            if keep is not None and blob.is_file():
                verdict.blob = Path(keep) / blob.name
        header = blobfmt.read_header(blob.read_bytes()) if run.ok else None
        if keep is not None:
            _keep(folder, Path(keep), [])
    return PatchCheck(run.ok, run.message, verdicts, header)


def _compare_with_kernelkit(verdict: Verdict, bindings: Path, batch: int = 1) -> None:
    plan = _kernelkit_reading(bindings, verdict.case, verdict, batch)
    if verdict.status == ACCEPTED and plan is not None:
        verdict.differences = compare(plan, verdict.stages, verdict.case, batch)
        in_file = _alternative_index_in_file(plan)
        if verdict.plugin_alternative is not None and in_file is not None and in_file != verdict.plugin_alternative:
            verdict.differences.insert(0, f"the plugin chose alternative #{verdict.plugin_alternative} of the "
                                       f"file, the emulator #{in_file}")
    elif verdict.status == ACCEPTED:
        verdict.differences.append(f"the plugin accepts the binding; kernelkit {verdict.kernelkit}")
    elif verdict.kernelkit == "accepts" and _reachable(verdict):
        verdict.differences.append(f"kernelkit accepts the binding; the plugin {verdict.status} it")


# ----------------------------------------------------------------------------------------- kernel folders

def _extension_layer_model(path: Path, spec, case, arrays) -> Path:
    """The case as one extension layer of the kernel's op type: what a patched model holds where OpenVINO
    has no such layer (the 2021.4 plugin binds it by type)."""
    from kernelkit.kernel.bindings.myriad_select import legacy_param_string
    from kernelkit.harness.custom_ops import one_layer_ir

    types = [case.dtypes[i] if i < len(case.dtypes) else "f32" for i in range(len(arrays))]
    types = ["f32" if t == "f16" else t for t in types]
    out_shape = list(case.output_shape) if case.output_shape is not None else list(arrays[0].shape)
    return one_layer_ir(path, spec.op, {k: legacy_param_string(v) for k, v in case.attrs.items()},
                        [list(a.shape) for a in arrays], out_shape, types)


def _bind_anyway(patched: Path, out: Path, spec, library: Path) -> tuple[Path, str]:
    """A copy of a patch folder whose layers of the kernel's types are bound to it although the plugin
    compiles them itself (a binding overrides the plugin's own stage): (folder, "") or (folder, why not)."""
    import json

    from kernelkit.ir.load import load_model
    from kernelkit.model.patcher import COMPILE_CONF, CUSTOM_LAYERS_FILE, REPORT_FILE, _compile_conf
    from kernelkit.model.passes.base import PatchContext
    from kernelkit.model.passes.custom_layer import Binder, write_bindings

    model = load_model(patched / "model.xml")
    types = {t.lower() for t in kernel_types(spec)}
    layers = [layer for layer in model.topological_order() if layer.type.lower() in types]
    if not layers:
        return patched, "OpenVINO has no layer of this type in the op's model (it decomposes the op)"
    ctx = PatchContext(model, "2021.4")
    binder = Binder(ctx, library)
    try:
        reasons = [why for layer in layers if (why := binder.bind(layer))]
        if not binder.bindings:
            return patched, "; ".join(reasons)
        out.mkdir()
        model.save(out / "model.xml")
        write_bindings(binder.bindings, out, CUSTOM_LAYERS_FILE)
        (out / COMPILE_CONF).write_text(_compile_conf("2021.4", True, compile_mod.DEFAULT_SHAVES))
        report = {"custom_layers": [{"type": b.layer_type, "kernel": b.spec.name, "layers": b.bound_layers}
                                    for b in binder.bindings.values()]}
        (out / REPORT_FILE).write_text(json.dumps(report))
    finally:
        binder.close()
    return out, ""


def check_kernel_dir(kernel_dir: str | Path, *, jobs: int | None = None, keep: str | Path | None = None
                     ) -> list[Verdict]:
    """The plugin's verdict on a library kernel at every spec case: the case's one-op OpenVINO reference model
    (constant inputs where the case fixes them), patched for 2021.4 with this kernel only, then checked as a
    patch folder. A case patch does not bind is skipped with patch's reason."""
    from kernelkit.harness.inputs import generate_inputs
    from kernelkit.runners.references import ReferenceSkipped, openvino_model
    from kernelkit.model.patcher import patch_model
    from kernelkit.kernel.spec import load_spec
    from kernelkit.facts.knowledge import custom_layer_facts

    import openvino as ov

    spec = load_spec(kernel_dir)
    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-kernel-") as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        (library / spec.dir.name).symlink_to(spec.dir.resolve())
        for case in spec.cases:
            label = f"{spec.name}::{case.name}"
            arrays = generate_inputs(case, path=spec.path)
            placeholder = CheckCase(spec.op, [TensorSpec(tuple(a.shape)) for a in arrays],
                                    [tuple(arrays[0].shape)], name=label)
            case_dir = Path(tmp) / re.sub(r"[^A-Za-z0-9_.-]", "_", case.name)
            case_dir.mkdir()
            try:
                model, _, _ = openvino_model(spec, arrays, dict(case.attrs), embedded=set(case.fixed))
                ov.save_model(model, str(case_dir / "reference.xml"), compress_to_fp16=False)
                why = None
            except ReferenceSkipped as exc:
                why = f"no OpenVINO model of the op: {exc}"
            if why is not None and custom_layer_facts().reader_lacks(spec.op):
                _extension_layer_model(case_dir / "reference.xml", spec, case, arrays)
                why = None
            if why is not None:
                verdicts.append(Verdict(placeholder, SKIPPED, why))
                continue
            result = patch_model(case_dir / "reference.xml", case_dir / "patched", "2021.4", prefer="kernel",
                                 kernels_dir=library)
            folder = case_dir / "patched"
            if not result.report.get("custom_layers"):
                why = "; ".join(r.reason for r in result.refusals)
                if not why:         # the plugin compiles the op itself: bind the kernel anyway, to judge it
                    folder, why = _bind_anyway(folder, case_dir / "bound", spec, library)
                unbindable = f"patch binds no kernel: {why}" if why else None
                if why and custom_layer_facts().reader_lacks(spec.op):
                    # OpenVINO's layer of the op does not take the kernel (none, or another input form):
                    # judge the kernel on one extension layer of its own op type
                    _extension_layer_model(case_dir / "own_op.xml", spec, case, arrays)
                    folder = case_dir / "own_op"
                    result = patch_model(case_dir / "own_op.xml", folder, "2021.4", prefer="kernel",
                                         kernels_dir=library)
                    reasons = "; ".join(r.reason for r in result.refusals)
                    if result.report.get("custom_layers"):
                        unbindable = None
                    elif reasons:
                        unbindable = (f"patch binds no kernel to OpenVINO's model of the op nor to one {spec.op} "
                                      f"extension layer: {reasons}")
                if unbindable:
                    verdicts.append(Verdict(placeholder, UNBINDABLE, unbindable))
                    continue
            kept = Path(keep) / case_dir.name if keep is not None else None
            verdicts += check_patch_dir(folder, jobs=jobs, keep=kept, label=label)
    return verdicts
