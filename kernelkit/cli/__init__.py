"""The `kernelkit` command: a thin layer over the library.

Each subcommand is a module in this package (not starting with `_`) that defines
  NAME: str, HELP: str, add_arguments(parser) and run(args) -> int.
Modules import heavy libraries inside run(), so `kernelkit --help` stays fast.
Exit codes: 0 ok, 1 checks failed, 2 bad input or usage, 3 toolchain unavailable.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from kernelkit import __version__
from kernelkit.core.errors import KernelkitError, ToolchainUnavailable


def _commands():
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found.append(module)
    return sorted(found, key=lambda m: getattr(m, "ORDER", 100))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 with one line, as argparse does, plus the command
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kernelkit", description="Custom OpenCL kernels for the Myriad X SHAVE cores.")
    parser.add_argument("--version", action="version", version=f"kernelkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in _commands():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ToolchainUnavailable as exc:
        print(f"kernelkit: {exc}", file=sys.stderr)
        return 3
    except KernelkitError as exc:
        print(f"kernelkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kernelkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
