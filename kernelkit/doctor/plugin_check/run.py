"""The compile of a check model through the real plugin, and the check folder kept for the user.

Blobs compiled here are check artifacts (they embed ELFs with no code): they are written only into a `--keep`
folder, as `*.check.blob`, never where a deployable blob goes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kernelkit.doctor.plugin_check.verdict import Verdict
from kernelkit.runners.oracle import PluginRunner, Verdict as CompileVerdict

CHECK_BLOB_SUFFIX = ".check.blob"


def compile_check(model: Path, blob: Path, config: dict[str, str], toolchain) -> CompileVerdict:
    """One real compile of the check model into `blob` (kept): the plugin's verdict (compiled, message)."""
    return PluginRunner(model, config, blob=blob, toolchain=toolchain).run().detail


def keep_check_folder(folder: Path, keep: Path, verdicts: list[Verdict]) -> None:
    """Copy the check folder (bindings, ELFs, IRs, check blobs) to `keep`, replacing what it held."""
    from kernelkit.core.fsutil import staged_directory

    with staged_directory(keep, force=True) as stage:
        for item in folder.iterdir():
            target = stage / item.name
            shutil.copytree(item, target) if item.is_dir() else shutil.copy2(item, target)
    for verdict in verdicts:
        if verdict.blob is not None:
            verdict.blob = keep / verdict.blob.parent.name / verdict.blob.name
