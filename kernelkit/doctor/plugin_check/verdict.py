"""The plugin's verdict on one layer, read from the compile (its message) and the blob (its Custom stages)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from kernelkit.doctor.plugin_check.check_model import CheckCase, per_sample
from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION
from kernelkit.facts.target import compiler_target
from kernelkit.myriad import check_elf, stages as stage_reader


ACCEPTED, REJECTED, SKIPPED = "accepted", "rejected", "skipped"
# A kernel folder's spec case at a shape `kernelkit patch` binds no kernel to (the plugin would run it per
# sample, a rank-0/1 output, ...): never compiled, so no verdict of the plugin's.
UNBINDABLE = "unbindable"
_UNREACHABLE = (re.compile(r"Cannot create (?P<type>\w+) layer .* from unsupported opset: (?P<opset>\S+)"),
                re.compile(r"Opset (?P<opset>\S+) doesn't contain the operation with type: (?P<type>\w+)"))
_FALLBACK = re.compile(r'Failed to compile layer "(?P<name>[^"]+)": unsupported layer type "(?P<type>[^"]+)"')
ALTERNATIVE_NOTE = re.compile(r"alternative (\d+), stage (\d+)")


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


def _unreachable_prefix() -> str:
    return f"the {compiler_target()} IR reader cannot create"


def classify(verdict: Verdict, compiled, blob_path: Path) -> None:
    """Set the verdict from the compile (a kernelkit.runners.oracle.Verdict) and the blob it wrote."""
    if compiled.compiled:
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
    message = compiled.message
    unreachable = next((m for m in (p.search(message) for p in _UNREACHABLE) if m), None)
    if unreachable:
        verdict.status = SKIPPED
        verdict.message = (f"{_unreachable_prefix()} a {unreachable['type']} layer "
                           f"({unreachable['opset']}); as an extension layer (version \"{EXTENSION_LAYER_VERSION}\") "
                           f"the plugin binds it by type ({message})")
    elif _FALLBACK.search(message):
        verdict.status = SKIPPED
        verdict.message = f"the plugin used no binding alternative and fell back to its own parser: {message}"
    else:
        verdict.status, verdict.message = REJECTED, message


def group_stages(custom: list) -> list[list]:
    """Custom stages grouped per layer: a layer's stages run in order, from its stage 0."""
    groups: list[list] = []
    for stage in custom:
        note = ALTERNATIVE_NOTE.search(check_elf.read_note(stage.binary) or "")
        if not groups or note is None or int(note.group(2)) == 0:
            groups.append([stage])
        else:
            groups[-1].append(stage)
    return groups


def read_layer_stages(verdicts: list[Verdict], layers: list, blob: Path, batch: int) -> None:
    """Each bound layer's verdict from the blob of the whole patched model: its Custom stages are the group
    whose last stage writes the layer's (per-sample) output shape."""
    from kernelkit.facts.knowledge import custom_layer_facts

    groups = group_stages(stage_reader.custom_stages(blob.read_bytes()))
    for verdict, layer in zip(verdicts, layers):
        want = per_sample(layer.outputs[0].dims, batch)
        slice_ = per_sample(want, want[0] if want else 1)
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


def read_model_refusal(verdicts: list[Verdict], layers: list, compiled, blob: Path) -> None:
    """The plugin refused the whole patched model: the layer its message names (or every layer, when it names
    none) gets the refusal; the others were never judged."""
    from kernelkit.myriad.compile import parse_compile_error

    name, _ = parse_compile_error(compiled.message)
    for verdict, layer in zip(verdicts, layers):
        if name is None or name == layer.name:
            classify(verdict, compiled, blob)
        else:
            verdict.status = SKIPPED
            verdict.message = f"the plugin refused layer \"{name}\" first: {compiled.message}"


def blob_batch(blob: Path) -> int:
    from kernelkit.myriad import blob as blobfmt

    return max(blobfmt.read_header(blob.read_bytes()).batch_size, 1)


def reachable(verdict: Verdict) -> bool:
    """Whether the layer reached a binding (the reader created it)."""
    return not verdict.message.startswith(_unreachable_prefix())


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """0 when the plugin accepted every layer it was given (one at least), else 1."""
    judged = [v for v in verdicts if v.status != UNBINDABLE]
    return 0 if judged and all(v.status == ACCEPTED for v in judged) else 1
