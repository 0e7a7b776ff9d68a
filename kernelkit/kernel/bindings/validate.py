"""One call that checks a binding file the way `kernelkit validate` reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from kernelkit.kernel.bindings import clsource, crosscheck, gpu, myriad_check, myriad_read, myriad_select
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import source_file


@dataclass
class ValidationReport:
    path: Path
    layers: list
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)     # what was not checked and why
    selected: object | None = None                      # with layer_type: the alternative the plugin picks

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


def validate_file(path: str | Path, *, gpu: bool = False, layer_type: str | None = None,
                  layer_attrs: Mapping[str, object] | None = None) -> ValidationReport:
    """Parse (KernelkitError when unreadable or refused by the plugin), validate and cross-check."""
    path = Path(path)
    if gpu:
        return _validate_gpu(path, layer_type)
    layers = myriad_read.load(path)
    report = ValidationReport(path, layers)
    if layer_type is not None:
        layers = [layer for layer in layers if layer.name.lower() == layer_type.lower()]
        selected, reasons = myriad_select.select_with_reasons(report.layers, layer_type, layer_attrs or {})
        report.selected = selected
        if selected is None:
            report.findings.append(Finding("error", f"the plugin selects no binding for type '{layer_type}'"
                                           f"{' with these attributes' if layer_attrs else ''}: " + "; ".join(reasons),
                                           path=path))
        else:
            report.notes.append(f"type {layer_type}: the plugin selects the <CustomLayer> at line {selected.line} "
                                f"(entry {', '.join(k.entry for k in selected.kernels)})")
    report.findings += myriad_check.validate(layers, layer_attrs)
    for layer in layers:
        for kernel in layer.kernels:
            cl_path = next(filter(None, (source_file(layer, name, line=kernel.line, suffix=".cl", missing_ok=True)
                                         for name in kernel.sources)), None)
            if cl_path is None:
                report.notes.append(f"line {kernel.line}: no .cl beside {', '.join(kernel.sources)}; "
                                    f"entry '{kernel.entry}' not cross-checked")
                continue
            text = clsource.read_source(cl_path)
            report.findings += crosscheck.check(layer, {kernel.entry: text}, source_paths={kernel.entry: cl_path})
    if not clsource.clang_available():
        report.notes.append(f"{clsource.CLANG} not found: kernel sources were read without expanding macros")
    return report


def _validate_gpu(path: Path, layer_type: str | None) -> ValidationReport:
    layers = gpu.load(path)
    report = ValidationReport(path, layers)
    if layer_type is not None:
        chosen = [layer for layer in layers if layer.name == layer_type]
        report.selected = chosen[-1] if chosen else None
        if not chosen:
            report.findings.append(Finding("error", f"no SimpleGPU binding for type '{layer_type}' (names are "
                                           "matched with exact case)", path=path))
        layers = chosen
    report.findings += gpu.validate(layers)
    for layer in layers:
        found = [s for s in (source_file(layer, name, line=layer.line, missing_ok=True) for name in layer.sources)
                 if s is not None]
        if not found:
            report.notes.append(f"line {layer.line}: source {', '.join(layer.sources)} not found; not cross-checked")
            continue
        text = "\n".join(clsource.read_source(s) for s in found)
        report.findings += crosscheck.check_gpu(layer, text, cl_path=found[0])
    return report
