"""fp16 conversion of input tensors on the host, in the copy into the arena (fp16_host.c).

Rounding while copying saves the worker a whole pass over every float input. Used where the CPU converts fp16
in hardware (x86-64 with F16C, aarch64) and the kit's clang builds the library; anywhere else the worker rounds
on the device, to the same bits. KERNELKIT_HOST_FP16=0 turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kernelkit.core.paths import cache_dir

SOURCE = Path(__file__).with_name("fp16_host.c")


def _hardware_fp16() -> list[str] | None:
    """Compiler flags for the CPU's fp16 conversions, or None when it has none."""
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return []
    if machine in ("x86_64", "amd64"):
        try:
            flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("flags")), "")
        except OSError:
            return None
        return ["-mf16c"] if " f16c" in flags else None
    return None


def _build(flags: list[str]) -> Path | str:
    """The built library, or why there is none."""
    from kernelkit.kernel.builder.hostcheck import clang

    source = SOURCE.read_text(encoding="utf-8")
    try:
        compiler = clang()
    except Exception:
        return "no clang-15 to build it (apt-get install clang-15; ./kit setup does it)"
    tag = hashlib.sha256("\0".join([source, compiler, platform.machine(), *flags]).encode()).hexdigest()[:16]
    try:
        library = cache_dir("native") / f"fp16_host-{tag}.so"
        if library.exists():
            return library
        fd, tmp = tempfile.mkstemp(prefix=".fp16_host-", suffix=".so", dir=library.parent)
    except OSError as exc:         # a cache folder we cannot write: the device pass does the work
        return f"cannot write the kernelkit cache folder: {exc}"
    os.close(fd)
    try:
        done = subprocess.run([compiler, "-O3", "-shared", "-fPIC", *flags, "-o", tmp, str(SOURCE)],
                              capture_output=True, timeout=120)
        if done.returncode != 0:
            return f"{compiler} could not build {SOURCE.name}: {done.stderr.decode(errors='replace').strip()[:300]}"
        os.replace(tmp, library)          # another process may have built it too: the same bytes
        return library
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{compiler} could not build {SOURCE.name}: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """The library and where it is, or None and why not."""
    if os.environ.get("KERNELKIT_HOST_FP16", "1") == "0":
        return None, "turned off (KERNELKIT_HOST_FP16=0)"
    flags = _hardware_fp16()
    if flags is None:
        return None, f"this CPU ({platform.machine()}) has no fp16 conversion instructions kernelkit uses"
    built = _build(flags)
    if isinstance(built, str):
        return None, built
    try:
        lib = ctypes.CDLL(str(built))
    except OSError as exc:
        return None, f"cannot load {built}: {exc}"
    for name in ("kk_round_to_fp16", "kk_widen_fp16"):
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        fn.restype = None
    return lib, str(built)


def _library() -> ctypes.CDLL | None:
    return _load()[0]


def available() -> bool:
    return _library() is not None


def reset() -> None:
    """Decide again on the next use (after KERNELKIT_HOST_FP16 changed). Plans made before keep their choice."""
    _load.cache_clear()


def status() -> tuple[bool, str]:
    """Whether inputs are converted on the host, and the library's path or why they are not."""
    lib, detail = _load()
    return lib is not None, detail


def convert_into(dst: np.ndarray, src: np.ndarray) -> None:
    """dst (a dense float32 buffer) = src (float32 rounded to the nearest fp16 value, or float16 widened)."""
    if dst.dtype != np.float32 or not dst.flags.c_contiguous or dst.size != src.size:
        raise ValueError("convert_into needs a dense float32 destination of the source's size")
    if src.dtype == np.float16:
        convert = _library().kk_widen_fp16
    elif src.dtype == np.float32:
        convert = _library().kk_round_to_fp16
    else:
        raise ValueError(f"convert_into takes float32 or float16, not {src.dtype}")
    src = np.ascontiguousarray(src)
    convert(src.ctypes.data, dst.ctypes.data, src.size)
