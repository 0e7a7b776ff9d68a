"""Contract 5 (package data and entry points): the knowledge data files and native-fp16.json are content-identical
wherever they now live under kernelkit/ (found by file name); the `module:function` entry points named in
kernel.toml files still import; the console script and the pytest plugin (pyproject's pytest11 `kernelkit`) load,
and the plugin still registers its options and collects kernel.toml cases."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from contract_checks import check_golden, golden_paths
from contract_support import (GOLDEN, REPO, cli_env, kernel_toml_entry_points, locate_by_name, pytest_plugin_runs,
                              sha256)

IMPORT_CHECK = r"""
import importlib, json, sys
result = {}
for name in sys.argv[1:]:
    module, _, attr = name.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        result[name] = "ok" if callable(obj) else "not callable"
    except Exception as exc:
        result[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
"""


def import_all(names):
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHECK, *names], env=cli_env(), cwd=GOLDEN,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


PINNED_FILES = json.loads((GOLDEN / "data" / "files.json").read_text())["files"]


def _missing(current, pinned, where: str) -> list[str]:
    """Every key and value of `pinned` that `current` no longer holds (keys and table entries added are fine)."""
    if isinstance(pinned, dict):
        if not isinstance(current, dict):
            return [f"{where}: was a table"]
        return [m for key, value in pinned.items()
                for m in ([f"{where}.{key}: gone"] if key not in current else _missing(current[key], value,
                                                                                     f"{where}.{key}"))]
    if isinstance(pinned, list) and isinstance(current, list) and pinned and isinstance(pinned[0], dict):
        # an array of tables ([[limit]], [[rule]]): every pinned entry is still there; entries may be added
        return [f"{where}: entry {entry!r} gone" for entry in pinned
                if not any(not _missing(candidate, entry, where) for candidate in current)]
    return [] if current == pinned else [f"{where}: {pinned!r} became {current!r}"]


@pytest.mark.parametrize("name", sorted(PINNED_FILES))
def test_data_file_keeps_its_content(name):
    found = locate_by_name(name)
    assert len(found) == 1, f"{name}: expected exactly one file of that name under kernelkit/, found {found}"
    if "content" in PINNED_FILES[name]:        # TOML: a reader of the old file finds all it read
        missing = _missing(tomllib.loads(found[0].read_text(encoding="utf-8")), PINNED_FILES[name]["content"], name)
        assert not missing, f"{found[0]} lost content:\n" + "\n".join(missing)
    else:
        assert sha256(found[0].read_bytes()) == PINNED_FILES[name]["sha256"], f"{found[0]} changed"


def test_kernel_toml_entry_points_import():
    pinned = json.loads((GOLDEN / "data" / "entry-points.json").read_text())["entry_points"]
    names = sorted(set(pinned) | set(kernel_toml_entry_points()))
    assert pinned and names
    result = import_all(names)
    assert {n: r for n, r in result.items() if r != "ok"} == {}


def test_console_script_loads():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "kernelkit" in scripts
    assert import_all([scripts["kernelkit"]]) == {scripts["kernelkit"]: "ok"}


@pytest.mark.parametrize("path", golden_paths("data/"))
def test_pytest_plugin_registers_its_options(contract, path):
    runs = pytest_plugin_runs(contract)
    assert runs["help"].returncode == 0, runs["help"].stderr
    assert runs["collect"].returncode == 0, runs["collect"].stdout + runs["collect"].stderr
    check_golden(contract, path)
