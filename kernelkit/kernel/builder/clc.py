"""The SHAVE offline compiler `clc` from an OpenVINO 2021.4-2022.3 install (it is not redistributable).

Found through KERNELKIT_CLC (the clc executable) or KERNELKIT_OPENVINO_DIR (an install root:
`deployment_tools/tools/cl_compiler` in 2021.x, `tools/cl_compiler` in 2022.x). It runs as the OpenVINO build
runs it: `clc --strip-binary-header -d ma2x8x in.cl -o out.bin`, with the four SHAVE_* variables pointing into
the cl_compiler folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core.errors import KernelkitError

ENV_CLC = "KERNELKIT_CLC"
ENV_OPENVINO = "KERNELKIT_OPENVINO_DIR"
INSTALL_LAYOUTS = ("deployment_tools/tools/cl_compiler", "tools/cl_compiler")   # 2021.x, 2022.x
MISSING_NOTE = (f"the .bin needs the SHAVE clc compiler: set {ENV_OPENVINO} to an OpenVINO 2021.4-2022.3 "
                f"install (or {ENV_CLC} to its clc)")


@dataclass
class Clc:
    executable: Path
    root: Path              # the cl_compiler folder: bin/, lib/, ldscripts/

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        lib = self.root / "lib"
        scripts = self.root / "ldscripts"
        if (scripts / "ma2x8x").is_dir():      # later cltools take the SoC as a subfolder
            scripts = scripts / "ma2x8x"
        env.update({
            "SHAVE_MA2X8XLIBS_DIR": f"{lib}/",
            "SHAVE_LDSCRIPT_DIR": f"{scripts}/",
            "SHAVE_MYRIAD_LD_DIR": f"{self.root / 'bin'}/",
            "SHAVE_MOVIASM_DIR": f"{self.root / 'bin'}/",
            "LD_LIBRARY_PATH": os.pathsep.join(p for p in (str(lib), env.get("LD_LIBRARY_PATH", "")) if p),
        })
        return env

    def command(self, cl_path: Path, bin_path: Path) -> list[str]:
        return [str(self.executable), "--strip-binary-header", "-d", "ma2x8x", str(cl_path), "-o", str(bin_path)]

    def identity(self) -> str:
        """What the build cache keys on: the clc binary's content."""
        return hashlib.sha256(self.executable.read_bytes()).hexdigest()[:16]

    def compile(self, cl_path: Path, bin_path: Path, *, timeout: float = 300) -> None:
        try:
            proc = subprocess.run(self.command(cl_path, bin_path), capture_output=True, text=True,
                                  env=self.environment(), cwd=cl_path.parent, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise KernelkitError(f"clc took more than {timeout:.0f} s", path=cl_path) from None
        except OSError as exc:
            raise KernelkitError(f"cannot run clc: {exc.strerror}", path=self.executable) from None
        if proc.returncode != 0 or not bin_path.is_file():
            detail = (proc.stderr or proc.stdout).strip() or f"exit code {proc.returncode}"
            raise KernelkitError(f"clc failed: {detail}", path=cl_path,
                                 hint="the host check passed, so this is a SHAVE-specific limit; see the message")


def find_clc() -> Clc | None:
    """The configured clc, or None when neither variable is set. A variable set to a wrong place is an error."""
    explicit = os.environ.get(ENV_CLC)
    if explicit:
        exe = Path(explicit)
        if not exe.is_file() or not os.access(exe, os.X_OK):
            raise KernelkitError(f"{ENV_CLC}={explicit} is not an executable file",
                                 hint=f"point {ENV_CLC} at cl_compiler/bin/clc, or unset it")
        return Clc(exe, exe.resolve().parent.parent)
    install = os.environ.get(ENV_OPENVINO)
    if install:
        for layout in INSTALL_LAYOUTS:
            root = Path(install) / layout
            exe = root / "bin" / "clc"
            if exe.is_file():
                return Clc(exe, root)
        raise KernelkitError(f"{ENV_OPENVINO}={install} has no cl_compiler/bin/clc "
                             f"(looked in {' and '.join(INSTALL_LAYOUTS)})",
                             hint="point it at an OpenVINO 2021.4-2022.3 install root, or unset it")
    return None
