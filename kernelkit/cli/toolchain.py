"""`kernelkit toolchain setup|status`: the legacy MYRIAD compiler under the user cache, and what the emulator
and the host checks run on."""

from __future__ import annotations

NAME = "toolchain"
HELP = "provision (setup) or show (status) the legacy MYRIAD compiler (openvino 2021.4.2 on Python 3.9)"
DESCRIPTION = (HELP + ". Everything goes under the kernelkit cache folder (KERNELKIT_CACHE_DIR); nothing "
               "system-wide. status also shows what the SHAVE emulator and the host checks run on (PoCL, "
               "clang-15, the host's fp16 conversion) and exits 0 when everything is there, 3 when something "
               "is missing.")
ORDER = 90


def add_arguments(parser):
    parser.add_argument("action", choices=["setup", "status"], help="setup: provision what is missing; "
                        "status: list what is there")


def run(args) -> int:
    from kernelkit.myriad import toolchain

    if args.action == "setup":
        result = toolchain.setup(log=print)
        if result.done:
            print(f"toolchain ready in {result.toolchain.root} ({len(result.done)} step(s), {result.seconds:.1f} s)")
        else:
            print(f"toolchain already provisioned in {result.toolchain.root}: nothing to do")
        return 0
    tc = toolchain.locate()
    components = tc.components()
    print(f"legacy MYRIAD toolchain (openvino {toolchain.OPENVINO_VERSION}) in {tc.root}")
    for c in components:
        print(f"  [{'ok' if c.present else 'missing'}] {c.name}: {c.path}")
    complete = all(c.present for c in components)
    if not complete:
        print(f"  -> {toolchain.SETUP_HINT}")
    print("SHAVE emulator and host checks")
    for present, name, detail in _emulator_parts():
        print(f"  [{'ok' if present else 'missing' if present is False else 'off'}] {name}: {detail}")
        complete = complete and present is not False
    return 0 if complete else 3


def _emulator_parts():
    """(present: True / False / None for optional and off, name, detail) of what the emulator runs on."""
    from kernelkit.kernel.builder import hostcheck
    from kernelkit.kernel.emulator import host_fp16

    try:
        import pyopencl as cl

        from kernelkit.kernel.emulator.worker import _pocl_platform

        platform, version = _pocl_platform(cl)
        pocl = (platform is not None and version >= (3, 1),
                platform.version if platform is not None else "no PoCL platform (apt-get install pocl-opencl-icd)")
    except Exception as exc:  # no ICD loader, no platform: say so, do not fail the listing
        pocl = (False, f"{type(exc).__name__}: {exc}")
    yield pocl[0], "PoCL 3.1+ (runs the kernels)", pocl[1]
    try:
        yield True, "clang-15 (host checks, the fp16 helper)", hostcheck.clang()
    except Exception as exc:
        yield False, "clang-15 (host checks, the fp16 helper)", str(exc)
    used, detail = host_fp16.status()
    yield (True if used else None), "fp16 input conversion in the host's copy (else on the device)", detail
