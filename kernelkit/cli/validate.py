"""`kernelkit validate`: check MYRIAD (or GPU) binding files against the plugin's rules and the kernel source."""

from __future__ import annotations

import sys

from kernelkit.core.errors import KernelkitError

NAME = "validate"
HELP = "check custom-layer binding XML against the plugin rules and the kernel sources"
DESCRIPTION = ("Parse BINDINGS.xml as the MYRIAD plugin would (or the GPU plugin with --gpu), run the deeper "
               "checks, and cross-check each <Kernel> against the .cl file beside its <Source x.bin> (x.cl). "
               "Exit 0 when clean (warnings allowed), 1 when errors were found, 2 when a file is unreadable "
               "or malformed.")
ORDER = 40


def add_arguments(parser) -> None:
    parser.add_argument("bindings", nargs="+", metavar="BINDINGS.xml", help="binding file(s) to check")
    parser.add_argument("--gpu", action="store_true", help="the files are Intel GPU (SimpleGPU) bindings")
    parser.add_argument("--type", metavar="T", help="check only bindings of layer type T and report which "
                        "alternative the plugin selects (with --attr)")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="an attribute of the layer the bindings are for (repeatable); enables the checks "
                             "that depend on it (Where rules, size-rule names, scalar sources)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def _attrs(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    attrs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise KernelkitError(f"--attr {pair!r} is not KEY=VALUE", hint="e.g. --attr stride=2")
        attrs[key.strip()] = value.strip()
    return attrs


def run(args) -> int:
    from kernelkit.kernel.bindings.validate import validate_file

    attrs = _attrs(args.attr)
    errors = warnings = 0
    for path in args.bindings:
        report = validate_file(path, gpu=args.gpu, layer_type=args.type, layer_attrs=attrs)
        for finding in report.findings:
            if finding.severity == "warning" and args.quiet:
                continue
            print(finding)
        for note in report.notes:
            if not args.quiet:
                print(f"{path}: note: {note}", file=sys.stderr)
        errors += sum(f.severity == "error" for f in report.findings)
        warnings += sum(f.severity == "warning" for f in report.findings)
    print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors else 0
