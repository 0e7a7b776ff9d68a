"""`kernelkit toolchain setup|status`: the legacy MYRIAD compiler under the user cache."""

from __future__ import annotations

NAME = "toolchain"
HELP = "provision (setup) or show (status) the legacy MYRIAD compiler (openvino 2021.4.2 on Python 3.9)"
DESCRIPTION = (HELP + ". Everything goes under the kernelkit cache folder (KERNELKIT_CACHE_DIR); nothing "
               "system-wide. status exits 0 when complete, 3 when something is missing.")
ORDER = 90


def add_arguments(parser):
    parser.add_argument("action", choices=["setup", "status"], help="setup: provision what is missing; "
                        "status: list what is there")


def run(args) -> int:
    from ..myriad import toolchain

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
    if all(c.present for c in components):
        return 0
    print(f"  -> {toolchain.SETUP_HINT}")
    return 3
