"""docs/api.md's notebook session runs as written: each ```python block in order, in one namespace, from a
folder holding the repository's examples/ and kernels/ (outputs go to its out/)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "api.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_doc_has_a_session():
    assert len(_blocks()) >= 3


def test_the_api_exposes_the_verbs_and_loads_lazily():
    import subprocess
    import sys

    code = ("import sys, kernelkit; assert 'kernelkit.api' not in sys.modules; "
            "assert callable(kernelkit.patch); assert 'openvino' not in sys.modules; print(sorted(kernelkit.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(sorted(["inspect", "patch", "verify", "compile", "archive", "device_check",
                                      "device_compare", "emulate", "build", "plugin_check", "blob_info", "blob_run",
                                      "estimate"]))


@pytest.mark.toolchain
@pytest.mark.slow
def test_the_notebook_session_runs(tmp_path, capsys):
    from kernelkit.myriad import toolchain

    if not toolchain.locate().ready():
        pytest.skip("the session compiles a blob: run `kernelkit toolchain setup`")
    for name in ("examples", "kernels"):
        (tmp_path / name).symlink_to(REPO / name)
    namespace: dict = {}
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in _blocks():
            exec(compile(block, str(DOC), "exec"), namespace)      # noqa: S102 - the doc's own code
    finally:
        os.chdir(here)
    printed = capsys.readouterr().out
    assert "verify: passed" in printed and (tmp_path / "out" / "model.tar.xz").is_file()
