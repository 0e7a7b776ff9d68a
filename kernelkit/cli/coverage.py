"""`kernelkit coverage`: op -> MYRIAD native / rewrite / library kernel / not covered, per target toolkit."""

from __future__ import annotations

import sys

NAME = "coverage"
HELP = "show how each op runs on MYRIAD per target: native, rewrite, library kernel or not covered"
DESCRIPTION = ("Print the op coverage table from the knowledge base, the rewrite patcher and kernels/. "
               "docs/coverage.md is `kernelkit coverage --markdown`.")
ORDER = 70


def add_arguments(parser) -> None:
    from kernelkit.facts.target import target_names

    parser.add_argument("--target", action="append", metavar="T",
                        help=f"target toolkit ({', '.join(target_names())}); repeat for several; default: all")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown page (docs/coverage.md)")


def run(args) -> int:
    from kernelkit.doctor.coverage import coverage_markdown, coverage_text

    render = coverage_markdown if args.markdown else coverage_text
    sys.stdout.write(render(args.target))
    return 0
