"""The library's kernels: which folder binds which IR op type. `kernels/*/kernel.toml` is the truth; this
reads it (without the full spec validation, so listing stays fast and never fails on one bad spec)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core.fsutil import is_leftover
from kernelkit.core.paths import KERNELS_DIR


@dataclass(frozen=True)
class LibraryKernel:
    name: str           # folder and kernel name
    op: str             # the IR op type its MYRIAD binding replaces
    dir: Path
    where: tuple        # the <Where> conditions of its bindings ((), when one binding takes every layer)


def library_kernels(root: Path = KERNELS_DIR) -> list[LibraryKernel]:
    out = []
    for spec_path in sorted(p for p in root.glob("*/kernel.toml") if not is_leftover(p.parent.name)):
        try:
            data = tomllib.loads(spec_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # `kernelkit build` reports broken specs; a listing skips them
        kernel = data.get("kernel", {})
        if not isinstance(kernel.get("op"), str):
            continue
        where = tuple(tuple(sorted(alt.get("where", {}).items())) for alt in kernel.get("alternatives", []))
        out.append(LibraryKernel(kernel.get("name", spec_path.parent.name), kernel["op"], spec_path.parent, where))
    return out
