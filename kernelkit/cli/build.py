"""`kernelkit build`: kernel folders -> .cl + MYRIAD .xml + GPU .xml (+ .bin with clc) in OUT."""

from __future__ import annotations

NAME = "build"
HELP = "render, check and write a kernel's .cl, MYRIAD .xml and GPU .gpu.xml (and .bin with clc)"
DESCRIPTION = ("Render each KERNEL_DIR's spec, run the clang-15 host check, the SHAVE lint and the binding checks, "
               "then write OUT/<name>.cl, OUT/<name>.xml and OUT/<name>.gpu.xml together (and OUT/<name>.bin when "
               "clc is found through KERNELKIT_OPENVINO_DIR or KERNELKIT_CLC). An unchanged rebuild does no work. "
               "Exit 0 ok, 1 checks failed (nothing written), 2 bad input.")
ORDER = 20


def add_arguments(parser) -> None:
    parser.add_argument("kernels", nargs="+", metavar="KERNEL_DIR", help="kernel folder(s) holding kernel.toml")
    parser.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (other files in it are kept)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite same-named files in OUT even if kernelkit did not write them")


def run(args) -> int:
    from kernelkit.kernel.builder.build import build_all

    return build_all(args.kernels, args.out, force=args.force)
