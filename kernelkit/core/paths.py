"""Where things live: the kit's own folders and the per-user cache."""

from __future__ import annotations

import os
from pathlib import Path

# The package is installed editable (`pip install -e .`), so the repository sits one level up.
REPO_ROOT = Path(os.environ.get("KERNELKIT_HOME", Path(__file__).resolve().parents[2]))
KERNELS_DIR = REPO_ROOT / "kernels"
TEMPLATES_DIR = REPO_ROOT / "templates"
TOOLCHAIN_DIR = REPO_ROOT / "toolchain"
EXAMPLES_DIR = REPO_ROOT / "examples"


def cache_dir(*parts: str) -> Path:
    """A per-user cache folder (KERNELKIT_CACHE_DIR, else $XDG_CACHE_HOME/kernelkit), created on demand."""
    base = os.environ.get("KERNELKIT_CACHE_DIR")
    if base:
        root = Path(base)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernelkit"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
