"""Custom stages (type 115) of a blob: each matched to its kernel in the bindings given (`kernels=`), whose `.cl`
the SHAVE emulator runs on the stage's own buffers with the scalars and work sizes the blob records.

The blob holds the kernel's binary (a clc `.bin`, or a check ELF with no code), not its source, so the binding
file and the `.cl` beside it come from a folder: a `kernelkit patch` output (its custom_layers.xml), or any folder
of binding files, or one binding file. A stage is matched by the kernel entry its binary's metadata names,
narrowed by the `.bin` bytes (a real binary is embedded whole) or a check ELF's note (its binding alternative and
stage). What the binding says for the stage's shapes (argument kinds and names, work sizes, scalar values,
max-shaves) is compared with what the blob holds; a difference is a finding, and the blob's values are run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError

BINDINGS_HINT = ("pass the `kernelkit patch` output folder, or a folder with the binding .xml and the kernels' .cl "
                 "files: `kernelkit blob run BLOB --kernels DIR` (BlobRunner(blob, kernels=DIR))")
_NOTE = re.compile(r"alternative (\d+), stage (\d+)")
_HEAD_BYTES = 64 * 1024


@dataclass
class BoundKernel:
    """One <Kernel> of a binding file."""

    file: Path
    alternative: int            # its <CustomLayer>'s position in the file
    layer: object               # kernel.bindings.model.CustomLayer
    kernel: object              # kernel.bindings.model.Kernel

    def label(self) -> str:
        return (f"{self.file.name}: <CustomLayer name=\"{self.layer.name}\"> #{self.alternative}, stage "
                f"{self.kernel.stage} '{self.kernel.entry}'")

    def cl_paths(self) -> list[Path | None]:
        from kernelkit.kernel.bindings.model import source_file

        return [source_file(self.layer, name, line=self.kernel.line, suffix=".cl", missing_ok=True)
                for name in self.kernel.sources]

    @cached_property
    def binary(self) -> bytes | None:
        """The kernel's `.bin` Sources concatenated (as the plugin embeds them), when all are present."""
        from kernelkit.kernel.bindings.model import source_file

        parts = []
        for name in self.kernel.sources:
            path = source_file(self.layer, name, line=self.kernel.line, missing_ok=True)
            if path is None or not path.is_file():
                return None
            parts.append(path.read_bytes())
        return b"".join(parts)

    def sources(self) -> tuple[tuple[str, str], ...]:
        from kernelkit.kernel.bindings import clsource

        found = []
        for name, path in zip(self.kernel.sources, self.cl_paths()):
            if path is None:
                cl = (self.layer.base_dir / name).with_suffix(".cl")
                raise KernelkitError(f"<Source filename=\"{name}\"> of kernel '{self.kernel.entry}': its OpenCL "
                                     f"source {cl.name} is not beside the binding", path=self.file,
                                     line=self.kernel.line, hint=f"the emulator runs {cl}")
            found.append((str(path), clsource.read_source(path)))
        return tuple(found)


def _is_binding(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(_HEAD_BYTES)
    return b"<CustomLayer" in head and b"<net" not in head


class KernelSet:
    """The binding files (and the `.cl` beside them) the interpreter runs Custom stages with."""

    def __init__(self, path):
        from kernelkit.kernel.bindings import myriad_read
        from kernelkit.model import patchdir

        self.path = Path(path)
        if self.path.is_file():
            files = [self.path]
        elif self.path.is_dir():
            own = self.path / patchdir.CUSTOM_LAYERS_FILE
            files = [own] if own.is_file() else sorted(p for p in self.path.glob("*.xml") if _is_binding(p))
        else:
            raise KernelkitError("no such file or folder", path=self.path, where="--kernels", hint=BINDINGS_HINT)
        if not files:
            raise KernelkitError("no MYRIAD binding file (an .xml of <CustomLayer> elements) in the folder",
                                 path=self.path, where="--kernels", hint=BINDINGS_HINT)
        self.files = files
        self.kernels = [BoundKernel(file, index, layer, kernel) for file in files
                        for index, layer in enumerate(myriad_read.load(file)) for kernel in layer.kernels]
        model = self.path / patchdir.MODEL_FILE if self.path.is_dir() else None
        self.model_xml = model if model is not None and model.is_file() else None
        self._ir = None

    def describe(self) -> str:
        return ", ".join(str(f) for f in self.files)

    # --- which kernel ----------------------------------------------------------------------------------
    def candidates(self, custom) -> list[BoundKernel]:
        """The kernels a Custom stage may run, best first."""
        from kernelkit.myriad import check_elf

        found = [k for k in self.kernels if custom.entry is not None and k.kernel.entry == custom.entry]
        if custom.binary and not check_elf.is_check_elf(custom.binary):
            same = [k for k in (found or self.kernels) if k.binary == custom.binary]
            if same:
                return same
        note = _NOTE.search(check_elf.read_note(custom.binary) or "") if custom.binary else None
        if note is not None:
            alternative, stage = int(note.group(1)), int(note.group(2))
            exact = [k for k in found if (k.alternative, k.kernel.stage) == (alternative, stage)]
            found = exact + [k for k in found if k not in exact]
        return found

    # --- the layer in the patch folder's IR, for its attributes ---------------------------------------
    def layer_attrs(self, name: str | None) -> dict[str, str] | None:
        """The layer's parameters as the plugin's legacy layer gives them to a binding, when the folder holds
        the IR (a patch folder) and the stage's layer is known (the graph dump beside the blob)."""
        if self.model_xml is None or not name or "," in name:
            return None
        from kernelkit.facts.knowledge import legacy_params
        from kernelkit.ir.load import load_model
        from kernelkit.kernel.bindings import myriad_select

        if self._ir is None:
            self._ir = load_model(self.model_xml)
        layer = next((l for l in self._ir.layers if l.name == name), None)
        if layer is None:
            return None
        consts = {}
        for index, port in enumerate(layer.inputs):
            producer = self._ir.producer(layer, port.id)
            if producer is not None and producer[0].type.lower() == "const":
                consts[index] = self._ir.const_value(producer[0])
        attrs = dict(layer.attrs.items())
        return myriad_select.plugin_attrs(layer.type, legacy_params(layer.type, attrs, consts))


# --- what the binding says, against the blob --------------------------------------------------------------

def _context(bound: BoundKernel, shapes_in: dict[int, tuple], shapes_out: dict[int, tuple], attrs):
    """The emulator's planning context for the stage's layer, with the shapes this stage shows (ports it does
    not bind are empty placeholders: values read from them are not checked)."""
    from kernelkit.kernel.emulator.plan import Context

    def arrays(shapes):
        return [np.broadcast_to(np.float16(0), shapes[i]) if i in shapes else np.zeros((0,), np.float16)
                for i in range(max(shapes, default=-1) + 1)]

    return Context(bound.layer, bound.alternative, arrays(shapes_in), [tuple(a.shape) for a in arrays(shapes_out)],
                   dict(attrs or {}), "fp16")


def _port_known(kind: str, index, shapes_in, shapes_out) -> bool:
    return index is not None and index in (shapes_in if kind == "input" else shapes_out)


def cross_check(bound: BoundKernel, custom, signature, attrs) -> list[str]:
    """What the binding says for this stage's shapes (the emulator's own reading of it: plan.scalar_value,
    plan.work_sizes) that the blob does not hold. Values that need a layer attribute are checked when `attrs`
    (the layer's, from the IR) is given."""
    from kernelkit.kernel.bindings.model import DataParam, ScalarParam, TensorParam
    from kernelkit.kernel.emulator import plan

    params = {p.arg_name: p for p in bound.kernel.params}
    shapes_in: dict[int, tuple] = {}
    shapes_out: dict[int, tuple] = {}
    differences = []
    for index, (decl, arg) in enumerate(zip(signature.args, custom.args)):
        if arg.name is not None and arg.name != decl.name:
            differences.append(f"argument {index} is '{arg.name}' in the blob's kernel and '{decl.name}' in the .cl")
        param = params.get(decl.name)
        if param is None:
            differences.append(f"the binding has no parameter for argument '{decl.name}' (the blob passes a "
                               f"{arg.kind})")
            continue
        if isinstance(param, ScalarParam):
            expected = "scalar"
        elif isinstance(param, DataParam) and param.type == "local_data":
            expected = "local"
        else:
            expected = "buffer"
        got = "scalar" if arg.kind in ("int", "float") else arg.kind
        if got != expected:
            differences.append(f"argument '{decl.name}' is a {expected} in the binding and a {arg.kind} in the blob")
            continue
        if isinstance(param, TensorParam) and param.type in ("input", "output") and arg.kind == "buffer":
            buffer = custom.buffers[int(arg.value)]
            (shapes_in if param.type == "input" else shapes_out)[param.port_index] = buffer.logical_shape()
    ctx = _context(bound, shapes_in, shapes_out, attrs)
    for decl, arg in zip(signature.args, custom.args):
        param = params.get(decl.name)
        if not isinstance(param, ScalarParam) or arg.kind not in ("int", "float"):
            continue
        source = param.source
        if "." in source and not _port_known("input" if source.startswith("I.") else "output", param.port_index,
                                             shapes_in, shapes_out):
            continue                # a shape this stage does not show
        if attrs is None and "." not in source and source[:1] not in tuple("0123456789+-."):
            continue                # an attribute of a layer not known here (no XML name starts so)
        try:
            value = plan.scalar_value(ctx, bound.kernel, param)
        except KernelkitError:
            continue                # the plugin would have refused the binding: not this check's business
        kind = "int" if isinstance(value, np.int32) else "float"
        same = kind == arg.kind and (value == arg.value or (kind == "float" and np.isnan(value) and
                                                            math.isnan(arg.value)))
        if not same:
            differences.append(f"scalar '{decl.name}' is {kind} {value.item()!r} by the binding (source "
                               f"\"{source}\") and {arg.kind} {arg.value!r} in the blob")
    if custom.max_shaves != bound.kernel.max_shaves:
        differences.append(f"max-shaves is {bound.kernel.max_shaves} in the binding and {custom.max_shaves} in the "
                           "blob")
    ws = bound.kernel.work_sizes
    if _port_known(ws.dim.kind, ws.dim.index, shapes_in, shapes_out):
        try:
            expected = plan.work_sizes(ctx, bound.kernel, signature)
        except KernelkitError:
            expected = None         # an attribute not known here, or sizes the plugin would not launch
        try:
            got = launch_sizes(custom, "")
        except KernelkitError:
            got = None              # the run itself reports it, naming the stage
        if expected is not None and got is not None:
            if len(ws.global_) != len(custom.groups) or (expected[0][:3], expected[1][:3]) != got:
                differences.append(f"work sizes: the binding gives global {expected[0]} local {expected[1]}, the "
                                   f"blob groups {tuple(custom.groups)} of local {tuple(custom.local)} (global "
                                   f"{got[0]} local {got[1]})")
    return differences


def launch_sizes(custom, where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global, local) in 3 dimensions from the groups and local sizes the blob records (groups × local; a local
    size with no group count is one group, as emulate() launches it)."""
    groups, local = list(custom.groups), list(custom.local)
    if any(custom.offsets):
        raise KernelkitError(f"{where}: global offsets {tuple(custom.offsets)}; the emulator launches from 0",
                             hint="report it with the blob")
    glob = [g * l for g, l in zip(groups, local)] + local[len(groups):]
    if len(glob) > 3 or len(local) > 3:
        raise KernelkitError(f"{where}: {len(glob)} work dimensions; a SHAVE kernel launches at most 3")
    glob += [1] * (3 - len(glob))
    local += [1] * (3 - len(local))
    if any(v <= 0 for v in glob + local):
        raise KernelkitError(f"{where}: work sizes {tuple(glob)} / {tuple(local)}: no work group would run",
                             hint="the binding's work sizes give no work for these shapes")
    from kernelkit.core import limits

    total = math.prod(glob)
    if total > limits.WORK_ITEMS.value():          # PoCL would run it for hours (a damaged blob can ask)
        raise KernelkitError(f"{where}: the NDRange {tuple(glob)} is {total:,} work items, above the "
                             f"{limits.WORK_ITEMS.value():,} the emulator runs", hint=limits.WORK_ITEMS.hint())
    return tuple(glob), tuple(local)
