"""`kernelkit inspect MODEL --target T`: every reason the MYRIAD plugin would refuse the model."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

NAME = "inspect"
HELP = "list every MYRIAD blocker of an IR or ONNX model, with the fix `kernelkit patch` would apply"
DESCRIPTION = ("Load MODEL (.xml IR v10/v11 with its .bin, or .onnx), apply the MYRIAD knowledge base of "
               "TARGET and list every blocker: IR version, opset, unsupported op, op limits, precision, "
               "dynamic shapes, element types. Exit 0 when there is none, 1 when there are blockers, 2 on "
               "bad input.")
ORDER = 60


def add_arguments(parser) -> None:
    from kernelkit.facts.target import default_target_name, target_names

    parser.add_argument("model", metavar="MODEL", help="IR .xml (with its .bin beside it) or .onnx")
    parser.add_argument("--target", choices=target_names(), default=default_target_name(),
                        help=f"OpenVINO release whose MYRIAD plugin compiles the model "
                             f"(default: {default_target_name()})")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                        help="fix the shape of input NAME (repeatable; NAME=scalar for 0-d)")
    parser.add_argument("--input-value", action="append", default=[], metavar="NAME=V[,V...]",
                        help="inspect the model as `patch --input-value` leaves it: NAME frozen to these values, "
                             "If/Loop/Shape subgraphs that become constant folded (repeatable)")
    parser.add_argument("--output", action="append", default=[], metavar="NAME",
                        help="inspect the model as `patch --output` leaves it: ended at tensor NAME (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (schema kernelkit.inspect/1)")
    parser.add_argument("--oracle", choices=["myriad"],
                        help="also ask the real 2021.4 MYRIAD plugin (needs `kernelkit toolchain setup`)")


def _oracle(model, model_path: Path, modified: bool) -> dict:
    from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
    from kernelkit.facts.target import compiler_target
    from kernelkit.ir.load import write_temp_ir

    target = compiler_target()
    if model.version not in target.ir_versions:
        return {"available": False, "note": f"the {target} plugin reads IR v{target.ir_version} only: run "
                                            f"`kernelkit patch --target {target}` first and inspect the patched "
                                            "model.xml"}
    try:
        from kernelkit.runners.oracle import plugin_verdict
    except ImportError:
        return {"available": False, "note": "the MYRIAD oracle is not part of this installation"}
    try:
        if modified:
            with tempfile.TemporaryDirectory(prefix="kernelkit-inspect-") as tmp:
                verdict = plugin_verdict(write_temp_ir(model, tmp))
        else:
            verdict = plugin_verdict(model_path)
    except ToolchainUnavailable:
        return {"available": False, "note": "the oracle needs the legacy toolchain: run `kernelkit toolchain setup`"}
    except KernelkitError as exc:      # e.g. an op its reader cannot create: the table already says why
        return {"available": False, "note": f"the {target} plugin could not judge this model: {exc.message}"}
    return {"available": True, "plugin": target.name, "compiled": bool(verdict.compiled),
            "message": verdict.message, "unsupported": [list(u) for u in verdict.unsupported]}


def run(args) -> int:
    from kernelkit.model.blockers import inspect_report
    from kernelkit.ir.load import parse_input_shapes
    from kernelkit.ir.cut import parse_outputs
    from kernelkit.ir.freeze import parse_input_values

    shapes = parse_input_shapes(args.input_shape)
    values = parse_input_values(args.input_value)
    outputs = parse_outputs(args.output)
    model_path = Path(args.model)
    model = _load(model_path, shapes, values, outputs)
    oracle = None
    if args.oracle:
        modified = bool(shapes or values or outputs) or model_path.suffix.lower() == ".onnx"
        oracle = _oracle(model, model_path, modified)
    report = inspect_report(model, args.target, oracle=oracle)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print_table(report)
    return 0 if report["summary"]["ok"] else 1


def _load(model_path: Path, shapes: dict, values: dict, outputs: list[str]):
    """The model to inspect; with values, frozen and folded as patch would. An ONNX model OpenVINO cannot
    convert because of its If/Loop gets the options that would fold them as a hint."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.ir.load import load_model
    from kernelkit.ir.onnx_import import ConversionFailed

    try:
        return load_model(model_path, shapes or None, values or None, fold=bool(values), outputs=outputs or None)
    except ConversionFailed as exc:
        if values:
            raise
        from kernelkit.ir.onnx_freeze import foldable_options

        options = foldable_options(model_path, shapes)
        if not options:
            raise
        raise KernelkitError(exc.message, path=model_path, where="inspect",
                             hint=f"the model has If/Loop that patch can fold: inspect (and patch) again with "
                                  f"{' '.join(options)}") from None


def _print_table(report: dict) -> None:
    blockers = report["blockers"]
    print(f"{report['model']}: IR v{report['ir_version']}, {report['layers']} layers, target {report['target']}")
    if not blockers:
        print("no blockers: the MYRIAD plugin's tables accept this model")
    for b in blockers:
        what = f"{b['layer_name']} ({b['type']}-{b['version'].replace('opset', '')})" if b["layer_id"] else "model"
        print(f"[{b['kind']}] {what}: {b['reason']}")
        print(f"    fix: {b['fix'] or 'no automatic fix'}")
        print(f"    source: {b['source']}")
    oracle = report.get("oracle")
    if oracle is not None:
        if not oracle.get("available"):
            print(f"oracle: {oracle['note']}")
        elif oracle["compiled"]:
            print(f"oracle: the real {oracle['plugin']} MYRIAD plugin compiles this model")
        else:
            print(f"oracle: the real {oracle['plugin']} MYRIAD plugin refuses it: {oracle['message'].strip()}")
            for name, kind, message in oracle["unsupported"]:
                print(f"    {name} ({kind}): {message}")
    if blockers:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report["summary"]["by_kind"].items()))
        print(f"{len(blockers)} blocker(s): {kinds}", file=sys.stderr)
