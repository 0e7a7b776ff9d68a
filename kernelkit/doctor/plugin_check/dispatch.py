"""plugin-check of whatever the user points at: a kernel folder, a patch folder, or one binding file."""

from __future__ import annotations

from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.model import patchdir


def check_target(target, *, case=None, jobs: int | None = None, keep=None) -> list:
    """The Verdicts for a kernel folder (every spec case), a patch folder (every custom layer) or a binding
    file (`case`, a CheckCase or a function making one, says which layer to wrap it in; made only for a file)."""
    from kernelkit.doctor.plugin_check.binding_file import check
    from kernelkit.doctor.plugin_check.kernel_folder import check_kernel_dir
    from kernelkit.doctor.plugin_check.patch_folder import check_patch_dir

    target = Path(target)
    if jobs is not None and jobs < 1:
        raise KernelkitError("--jobs must be at least 1", where="--jobs")
    if target.is_dir() and (target / "kernel.toml").is_file():
        return check_kernel_dir(target, jobs=jobs, keep=keep)
    if target.is_dir() and (target / patchdir.MODEL_FILE).is_file():
        return check_patch_dir(target, jobs=jobs, keep=keep)
    if target.is_dir():
        raise KernelkitError("folder has neither kernel.toml nor model.xml", path=target,
                             hint="pass a kernel folder, a `kernelkit patch` output folder or a binding file")
    if not target.is_file():
        raise KernelkitError("no such file or folder", path=target)
    if case is None:
        raise KernelkitError("a binding file needs the layer to wrap it in", path=target,
                             hint="give --type and --in-shape (the API: a CheckCase)")
    return check(target, [case() if callable(case) else case], jobs=jobs, keep=keep)


def overall_exit_code(verdicts) -> int:
    """0 when every layer was accepted and the emulator agrees with the blob, else 1."""
    from kernelkit.doctor.plugin_check.verdict import exit_code

    return 1 if exit_code(verdicts) or any(v.differences for v in verdicts) else 0
