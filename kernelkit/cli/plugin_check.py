"""`kernelkit plugin-check`: the real MYRIAD 2021.4 plugin's verdict on custom-layer bindings."""

from __future__ import annotations

import re

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION, Knowledge
from kernelkit.facts.target import compiler_target

NAME = "plugin-check"
HELP = "let the real MYRIAD 2021.4 plugin judge custom-layer bindings (metadata-only kernel ELFs, no clc)"
DESCRIPTION = ("Compile with the real MYRIAD 2021.4 plugin, each kernel's .bin replaced by a metadata-only ELF made "
               "from the .cl beside it, and report per layer: accepted (the blob holds a Custom stage for it), "
               "rejected (the plugin's message) or skipped (the plugin used no binding). For accepted layers the "
               "blob's work sizes, scalars and buffers are compared with what the emulator launches. TARGET is a "
               "binding file (with --type and --in-shape, as for emulate), a kernel folder (every spec case) or a "
               "`kernelkit patch` output folder. Exit 0: every layer accepted and the emulator agrees; 1: a layer "
               "rejected or skipped, or a disagreement; 2: bad input; 3: no toolchain.")
ORDER = 42
SHAPE = re.compile(r"^(?P<dims>scalar|\d+(?:,\d+)*)(?::(?P<type>[a-z0-9]+))?$")


def add_arguments(parser) -> None:
    parser.add_argument("target", metavar="TARGET", help="BINDINGS.xml, a kernel folder or a patch output folder")
    parser.add_argument("--type", metavar="T", help="binding file: the layer type (IR op type) to wrap")
    parser.add_argument("--version", metavar="opsetN", help="binding file: the layer's IR version (default: the one "
                                                            "the 2021.4 reader was seen to create; `extension` "
                                                            "for a type no opset of that reader has)")
    parser.add_argument("--in-shape", action="append", default=[], metavar="D0,D1,...[:TYPE]",
                        help="binding file: one per layer input, in port order; `scalar` for 0-d; TYPE f32 "
                             "(default), f16, i32 or i64")
    parser.add_argument("--const", action="append", default=[], metavar="INDEX=V[,V...]",
                        help="binding file: input INDEX is a Const with these values (repeatable)")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="binding file: a layer attribute as the IR <data> holds it (repeatable)")
    parser.add_argument("--out-shape", action="append", default=[], metavar="D0,D1,...",
                        help="binding file: output shape (default: input 0's shape)")
    parser.add_argument("--keep", metavar="DIR", help="keep the check files (bindings, ELFs, IRs, *.check.blob) in DIR")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiles (default: the CPU count)")
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def _shapes(items: list[str]) -> list[tuple[tuple[int, ...], str]]:
    from kernelkit.doctor.plugin_check.check_model import ELEMENT_TYPES

    shapes = []
    for item in items:
        match = SHAPE.match(item.strip())
        if not match:
            raise KernelkitError(f"--in-shape {item!r} is not D0,D1,...[:TYPE] or scalar[:TYPE]", where="--in-shape")
        dims = () if match["dims"] == "scalar" else tuple(int(d) for d in match["dims"].split(","))
        etype = match["type"] or "f32"
        if etype not in ELEMENT_TYPES:
            raise KernelkitError(f"--in-shape {item!r}: type {etype!r} is not one of {', '.join(ELEMENT_TYPES)}",
                                 where="--in-shape")
        if any(d <= 0 for d in dims):
            raise KernelkitError(f"--in-shape {item!r} has a dimension <= 0", where="--in-shape")
        shapes.append((dims, etype))
    return shapes


def _consts(items: list[str], count: int) -> dict[int, list[float]]:
    consts = {}
    for item in items:
        index, sep, values = item.partition("=")
        try:
            position = int(index)
            numbers = [float(v) for v in values.split(",")]
        except ValueError:
            raise KernelkitError(f"--const {item!r} is not INDEX=V[,V...] with numbers", where="--const") from None
        if not sep or not 0 <= position < count:
            raise KernelkitError(f"--const {item!r}: INDEX must name one of the {count} --in-shape inputs",
                                 where="--const")
        consts[position] = numbers
    return consts


def _binding_case(args):
    import numpy as np

    from kernelkit.cli.emulate import _parse_attrs, _parse_shapes
    from kernelkit.doctor.plugin_check.check_model import CheckCase, TensorSpec, version_for

    if not args.type or not args.in_shape:
        raise KernelkitError("a binding file needs --type and one --in-shape per layer input", where="TARGET",
                             hint="e.g. --type Sinh --in-shape 1,3,8,8")
    shapes = _shapes(args.in_shape)
    consts = _consts(args.const, len(shapes))
    inputs = []
    for index, (dims, etype) in enumerate(shapes):
        value = None
        if index in consts:
            size = int(np.prod(dims)) if dims else 1
            if len(consts[index]) not in (1, size):
                raise KernelkitError(f"--const {index}: {len(consts[index])} values for a {size}-element input",
                                     where="--const")
            value = np.broadcast_to(np.array(consts[index]), (size,)).reshape(dims)
        inputs.append(TensorSpec(dims, etype, value))
    outputs = _parse_shapes(args.out_shape) or [shapes[0][0]]
    version = args.version or version_for(args.type, None)
    if Knowledge.opset_number(version) is None and version != EXTENSION_LAYER_VERSION:
        raise KernelkitError(f"--version {version!r} is not opsetN or {EXTENSION_LAYER_VERSION}", where="--version")
    return CheckCase(args.type, inputs, outputs, _parse_attrs(args.attr), version)


def run(args) -> int:
    import json

    from kernelkit.doctor.plugin_check.dispatch import check_target, overall_exit_code

    verdicts = check_target(args.target, case=lambda: _binding_case(args), jobs=args.jobs, keep=args.keep)
    if args.json:
        print(json.dumps({"plugin": f"MYRIAD {compiler_target()}", "verdicts": [v.to_dict() for v in verdicts],
                          "exit_code": overall_exit_code(verdicts)}, indent=2))
    else:
        print(format_verdicts(verdicts))
    return overall_exit_code(verdicts)


def format_verdicts(verdicts) -> str:
    lines = [f"plugin-check: {len(verdicts)} layer(s) against the real MYRIAD {compiler_target()} plugin"]
    for v in verdicts:
        lines.append(f"  {v.status:<10} {v.case.label()}")
        if v.stages:
            sizes = "; ".join(f"'{s.entry}' groups {tuple(s.groups)} x local {tuple(s.local)}" for s in v.stages)
            alternative = f"alternative #{v.plugin_alternative}, " if v.plugin_alternative is not None else ""
            lines.append(f"             {alternative}{sizes}")
        if v.message:
            lines.append(f"             {v.message}")
        for difference in v.differences:
            lines.append(f"             differs: {difference}")
    counts = {s: sum(v.status == s for v in verdicts) for s in ("accepted", "rejected", "skipped", "unbindable")}
    disagreements = sum(bool(v.differences) for v in verdicts)
    unbindable = (f", {counts['unbindable']} at a shape kernelkit patch binds no kernel to (not compiled)"
                  if counts["unbindable"] else "")
    lines.append(f"{counts['accepted']} accepted, {counts['rejected']} rejected, {counts['skipped']} skipped"
                 f"{unbindable}; {disagreements} with a difference between the plugin and kernelkit's reading")
    return "\n".join(lines)
