"""A side environment for the tools that need packages the kit must not depend on (torch, ultralytics)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def side_python(venv: Path, requirements: list[str], stamp_name: str) -> Path:
    """The python of `venv`, made and filled with `requirements` when the stamp file says they changed."""
    python = venv / "bin" / "python"
    stamp = venv / stamp_name
    if not stamp.is_file() or stamp.read_text() != " ".join(requirements):
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
        stamp.write_text(" ".join(requirements))
    return python
