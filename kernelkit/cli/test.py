"""`kernelkit test`: run kernel conformance cases against the references and write reports."""

from __future__ import annotations

NAME = "test"
HELP = "run kernel conformance cases (emulated fp16 vs numpy, fp32, OpenVINO CPU, ONNX data)"
DESCRIPTION = ("Build each kernel, emulate every case in fp16 and compare with every available reference. "
               "Exit 0 when nothing fails (skips allowed), 1 when a case fails or errors, 2 on bad input.")
ORDER = 40


def add_arguments(parser) -> None:
    parser.add_argument("kernel_dirs", nargs="*", metavar="KERNEL_DIR",
                        help="kernel folders (default: every folder of kernels/)")
    parser.add_argument("--report", metavar="DIR",
                        help="write conformance.json, junit.xml, conformance.html and data/*.npz here")
    parser.add_argument("-k", dest="pattern", metavar="FILTER",
                        help="only cases whose 'kernel::case' id contains FILTER (or matches it as a glob)")
    parser.add_argument("-x", "--fail-fast", action="store_true", help="stop at the first case that fails or errors")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="time limit per emulation (default 60); a kernel that runs longer is an ERROR")
    parser.add_argument("--arithmetic", choices=("fp32", "fp16"), default="fp32",
                        help="how the kernels under test compute half arithmetic: fp32 (default) or fp16, real "
                             "16-bit half with per-operation rounding as on SHAVE (needs clang-15)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case, not only failures")


def run(args) -> int:
    from pathlib import Path

    from kernelkit.harness.report import DATA_DIR, TerminalProgress, summary_text, write_reports
    from kernelkit.core.errors import KernelkitError
    from kernelkit.harness.conformance import DEFAULT_TIMEOUT
    from kernelkit.harness.conformance import run as run_conformance

    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    if not timeout > 0:
        raise KernelkitError(f"--timeout must be a positive number of seconds, not {args.timeout}")

    progress = TerminalProgress(verbose=args.verbose)
    data_dir = Path(args.report) / DATA_DIR if args.report else None
    result = run_conformance(args.kernel_dirs or None, pattern=args.pattern, data_dir=data_dir, timeout=timeout,
                             fail_fast=args.fail_fast, arithmetic=args.arithmetic, on_start=progress.start,
                             on_result=progress.result)
    progress.finish()
    print(summary_text(result))
    if args.report:
        written = write_reports(result, args.report)
        print("reports: " + ", ".join(str(p) for p in written.values()))
    return 0 if result.ok else 1
