"""`kernelkit new`: scaffold a kernel folder that builds at once."""

from __future__ import annotations

NAME = "new"
HELP = "scaffold a kernel folder (spec, template for --family custom, one conformance case)"
DESCRIPTION = ("Create DIR/NAME/kernel.toml for a kernel of FAMILY binding layer type TYPE, with one conformance "
               "case and a numpy reference; `kernelkit build DIR/NAME -o OUT` works straight away. For the "
               "elementwise family, --expr is the C expression over the input names (x, or a and b); for "
               "index_map it is the source X coordinate over the output coordinates.")
ORDER = 10


def add_arguments(parser) -> None:
    parser.add_argument("name", metavar="NAME", help="kernel name: a C identifier (entry point and file stem)")
    parser.add_argument("--family", "-f", required=True, metavar="F",
                        help="template family: elementwise, axis_scan, index_map or custom")
    parser.add_argument("--type", "-t", required=True, metavar="T", dest="op",
                        help="the IR layer type the MYRIAD binding replaces, e.g. MishH")
    parser.add_argument("--expr", "-e", metavar="E", help="the kernel's expression (see above)")
    parser.add_argument("-d", "--dir", default=".", metavar="DIR", help="parent folder (default: current folder)")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR/NAME folder")


def run(args) -> int:
    from kernelkit.kernel.builder.scaffold import new_kernel

    folder = new_kernel(args.name, args.family, args.op, args.dir, expr=args.expr, force=args.force)
    print(f"created {folder}/ (edit kernel.toml; build with: kernelkit build {folder} -o OUT)")
    if "# TODO" in (folder / "kernel.toml").read_text():
        print(f"note: no numpy form of the expression was found; write [reference] in {folder}/kernel.toml "
              "before `kernelkit test`")
    return 0
