"""`kernelkit lint`: the SHAVE lint (and the clang-15 host check) on a kernel folder or a .cl file."""

from __future__ import annotations

import sys
from pathlib import Path

NAME = "lint"
HELP = "SHAVE lint and host check of a kernel folder (its generated source) or of a .cl file"
DESCRIPTION = ("Check OpenCL C for the Myriad X SHAVE cores: no double/printf/images/long/64-bit atomics, on-chip "
               "memory per work group against the ~100 KB CMX budget (warning above 64 KB), early exits, missing "
               "restrict; plus the clang-15 host check. For a kernel folder, the binding checks run too and "
               "findings point at the template lines. Exit 0 clean (warnings allowed), 1 errors, 2 bad input.")
ORDER = 30


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="kernel folder or .cl file")
    parser.add_argument("--no-host-check", action="store_true", help="skip the clang-15 compile of a .cl file")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run(args) -> int:
    from kernelkit.kernel.builder.build import check_spec
    from kernelkit.kernel.builder.hostcheck import host_check
    from kernelkit.kernel.builder.lint import lint_source
    from kernelkit.core.errors import KernelkitError
    from kernelkit.kernel.spec import SPEC_FILE, load_spec

    findings = []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir() or path.name == SPEC_FILE:
            findings += check_spec(load_spec(path)).findings
        elif path.suffix == ".cl" and path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise KernelkitError(f"cannot read: {exc}", path=path) from None
            if not args.no_host_check:
                findings += host_check(text, name=path.name)
                for f in findings:
                    if f.path == path.name:
                        f.path = str(path)
            findings += lint_source(text, path=str(path))
        else:
            raise KernelkitError("not a kernel folder or a .cl file", path=path,
                                 hint=f"pass a folder holding {SPEC_FILE}, or an OpenCL C file")
    errors = sum(f.is_error for f in findings)
    warnings = len(findings) - errors
    for finding in findings:
        if args.quiet and not finding.is_error:
            continue
        print(finding)
    print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0
