"""The one error type for user-facing failures. The CLI maps it to exit code 2."""

from __future__ import annotations

from pathlib import Path


class KernelkitError(Exception):
    """Bad input or an unusable environment: says which file, which element and what to do.

    path  -- the file at fault (shown first, with the line when known)
    where -- the element, key, layer or argument inside it
    hint  -- what the user can do about it
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        location = ""
        if self.path:
            location = self.path + (f":{self.line}" if self.line else "") + ": "
        where = f"{self.where}: " if self.where else ""
        text = f"{location}{where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ToolchainUnavailable(KernelkitError):
    """A legacy toolchain (clc, the MYRIAD plugin) is needed but not provisioned. CLI exit code 3."""
