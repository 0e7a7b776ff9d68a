"""Findings: problems a check reports without stopping (validate, cross-check, lint, device checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal


@dataclass
class Finding:
    """One problem found by a check. `error` means the plugin (or the device) would fail; `warning` means it
    would run but probably not as the author meant."""

    severity: Literal["error", "warning"]
    message: str
    path: str | Path | None = None
    line: int | None = None
    where: str | None = None          # the element, layer or argument at fault
    hint: str | None = None           # what to do about it
    plugin: str | None = None         # what the real plugin then does, where a check knows: "rejects" (its
                                      # compile fails), "skips" (it never uses this alternative) or "splits"
                                      # (it runs the stages once per sample, each over the whole tensor)

    def __post_init__(self):
        if self.severity not in ("error", "warning"):
            raise ValueError(f"Finding severity must be 'error' or 'warning', not {self.severity!r}")
        if self.plugin not in (None, "rejects", "skips", "splits"):
            raise ValueError(f"Finding plugin must be None, 'rejects', 'skips' or 'splits', not {self.plugin!r}")
        if self.path is not None:
            self.path = str(self.path)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        location = ""
        if self.path:
            location = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        where = f"{self.where}: " if self.where else ""
        text = f"{location}{self.severity}: {where}{self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


def error(message: str, **kwargs) -> Finding:
    return Finding("error", message, **kwargs)


def warning(message: str, **kwargs) -> Finding:
    return Finding("warning", message, **kwargs)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


def errors_only(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
