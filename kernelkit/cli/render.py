"""`kernelkit render`: print a kernel's generated OpenCL source or binding XML, without checks or files."""

from __future__ import annotations

import sys

NAME = "render"
HELP = "print the generated .cl (or MYRIAD/GPU XML) of a kernel folder to stdout"
DESCRIPTION = "Render KERNEL_DIR's spec and print one artefact to stdout; nothing is checked or written."
ORDER = 25


def add_arguments(parser) -> None:
    parser.add_argument("kernel", metavar="KERNEL_DIR", help="kernel folder holding kernel.toml")
    parser.add_argument("--what", choices=("cl", "xml", "gpu"), default="cl",
                        help="cl: the OpenCL source (default); xml: the MYRIAD binding; gpu: the SimpleGPU binding")
    parser.add_argument("--stage", type=int, default=0, help="which stage's source to print (multi-stage kernels)")


def run(args) -> int:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.kernel.render import render_gpu_xml, render_myriad_xml, render_source
    from kernelkit.kernel.spec import load_spec

    spec = load_spec(args.kernel)
    if args.what == "cl":
        if not 0 <= args.stage < len(spec.stages):
            raise KernelkitError(f"--stage {args.stage}: the kernel has stages 0..{len(spec.stages) - 1}",
                                 path=spec.path)
        text = render_source(spec, args.stage).text
    elif args.what == "xml":
        text = render_myriad_xml(spec)
    else:
        text = render_gpu_xml(spec)
    sys.stdout.write(text)
    return 0
