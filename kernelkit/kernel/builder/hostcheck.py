"""The SHAVE host check: compile the generated source with clang-15 as an OpenCL 1.2 SPIR device with
fp16 on and fp64 off, warnings as errors, and the Movidius built-ins declared. Diagnostics are mapped back
to the template file and line that produced the offending text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping

from kernelkit.kernel.bindings.findings import Finding
from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
from kernelkit.core.paths import TOOLCHAIN_DIR

CLANG = "clang-15"
BUILTINS_HEADER = TOOLCHAIN_DIR / "shave" / "movidius_builtins.h"
# SHAVE's 32-bit work-item functions; the emulator puts the same header in front of its prelude.
WORK_ITEMS_PATH = Path(__file__).with_name("shave_work_items.h")
BASE_FLAGS = ["-x", "cl", "-target", "spir64", "-cl-std=CL1.2", "-Xclang", "-finclude-default-header",
              "-Xclang", "-cl-ext=-cl_khr_fp64,+cl_khr_fp16", "-Werror", "-fsyntax-only"]
_DIAGNOSTIC = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<kind>fatal error|error|warning): "
                         r"(?P<message>.*)$", re.MULTILINE)


def clang() -> str:
    found = shutil.which(CLANG)
    if not found:
        raise ToolchainUnavailable(f"{CLANG} is not installed; the SHAVE host check needs it",
                                   hint="apt-get install clang-15 (./kit setup does it)")
    return found


def clang_version() -> str:
    try:
        out = subprocess.run([clang(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.splitlines()[0] if out else "unknown"


def command(cl_path: str | Path, *, defines: Mapping[str, object] | None = None,
            include_builtins: bool = True) -> list[str]:
    cmd = [clang(), *BASE_FLAGS]
    if include_builtins:
        cmd += ["-include", str(WORK_ITEMS_PATH), "-include", str(BUILTINS_HEADER)]
    for name, value in (defines or {}).items():
        cmd.append(f"-D{name}={value}")
    return cmd + [str(cl_path)]


def host_check(source, *, name: str = "kernel.cl", defines: Mapping[str, object] | None = None,
               view: str | None = None, include_builtins: bool = True) -> list[Finding]:
    """Compile `source` (a RenderedSource or plain text) with clang-15; one Finding per diagnostic.

    With a RenderedSource, each finding points at the template line; `where` names the generated line."""
    text = source if isinstance(source, str) else source.text
    origin = None if isinstance(source, str) else source.origin
    with tempfile.TemporaryDirectory(prefix="kernelkit-hostcheck-") as tmp:
        cl_path = Path(tmp) / name
        cl_path.write_text(text)
        try:
            proc = subprocess.run(command(cl_path, defines=defines, include_builtins=include_builtins),
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise KernelkitError(f"{CLANG} took more than 120 s on {name}", where=name) from None
    findings = []
    label = f" ({view} view)" if view else ""
    for m in _DIAGNOSTIC.finditer(proc.stderr):
        kind = "warning" if m.group("kind") == "warning" else "error"
        line, col = int(m.group("line")), int(m.group("col"))
        message = f"{m.group('message')}{label}"
        if Path(m.group("file")).name == name:
            mapped = origin(line, col) if origin else None
            where = f"{name}:{line}:{col}"
            path, tline = mapped if mapped else (name, line)
            findings.append(Finding(kind, message, path=path, line=tline, where=where))
        else:
            findings.append(Finding(kind, message, path=m.group("file"), line=line))
    if proc.returncode != 0 and not any(f.is_error for f in findings):
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        findings.append(Finding("error", f"{CLANG} failed{label}: {detail}", path=name))
    return findings
