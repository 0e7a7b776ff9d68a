"""`kernelkit inspect MODEL --target T`: every reason the MYRIAD plugin would refuse the model."""

from __future__ import annotations

import json
import sys

NAME = "inspect"
HELP = "list every MYRIAD blocker of an IR, ONNX or TFLite model, with the fix `kernelkit patch` would apply"
DESCRIPTION = ("Load MODEL (.xml IR v10/v11 with its .bin, .onnx, .tflite, TensorFlow .pb / SavedModel, Paddle "
               ".pdmodel or PIR .json), apply the MYRIAD knowledge base of "
               "TARGET and list every blocker: IR version, opset, unsupported op, op limits, precision, "
               "dynamic shapes, element types. An .onnx file also gets the real 2021.4 plugin's verdict on its "
               "straight compile where the toolchain is provisioned. Exit 0 when there is no blocker, 1 when "
               "there are blockers, 2 on bad input; with --oracle myriad (and the toolchain), 0 when the real "
               "plugin compiles the model (an .onnx file: as it is), 1 when it refuses.")
ORDER = 60


def add_arguments(parser) -> None:
    from kernelkit.facts.target import default_target_name, target_names

    parser.add_argument("model", metavar="MODEL", help="IR .xml (with its .bin beside it), .onnx, .tflite, TensorFlow "
                                                       ".pb or SavedModel folder, or PaddlePaddle .pdmodel or PIR .json")
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
                        help="also ask the real 2021.4 MYRIAD plugin (needs `kernelkit toolchain setup`): an IR as "
                             "inspected, an .onnx file as it is; its verdict is the exit code")


def run(args) -> int:
    from kernelkit.doctor.inspection import inspect_model
    from kernelkit.ir.cut import parse_outputs
    from kernelkit.ir.freeze import parse_input_values
    from kernelkit.ir.reshape import parse_input_shapes

    report = inspect_model(args.model, args.target, input_shapes=parse_input_shapes(args.input_shape),
                           input_values=parse_input_values(args.input_value), outputs=parse_outputs(args.output),
                           oracle=bool(args.oracle))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print_table(report)
    oracle = report.get("oracle") or {}
    if args.oracle and oracle.get("available"):          # asked for, the plugin's verdict is the exit code
        return 0 if oracle.get("compiled") else 1
    return 0 if report["summary"]["ok"] else 1


def _print_table(report: dict) -> None:
    blockers = report["blockers"]
    print(f"{report['model']}: IR v{report['ir_version']}, {report['layers']} layers, target {report['target']}")
    if not blockers:
        print("no blockers: the MYRIAD plugin's tables accept this model")
    # One entry per layer: its reasons, then what patch does about them and the sources.
    entries: dict = {}
    for b in blockers:
        entries.setdefault(b["layer_id"] or f"model:{len(entries)}", []).append(b)
    for found in entries.values():
        for b in found:
            what = f"{b['layer_name']} ({b['type']}-{b['version'].replace('opset', '')})" if b["layer_id"] else "model"
            print(f"[{b['kind']}] {what}: {b['reason']}")
        fixes = list(dict.fromkeys(b["fix"] for b in found if b["fix"]))
        unfixed = list(dict.fromkeys(b["kind"] for b in found if not b["fix"]))
        if fixes and unfixed:
            fixes.append(f"no automatic fix for the {', '.join(unfixed)} reason")
        print(f"    fix: {'; '.join(fixes) if fixes else 'no automatic fix'}")
        print(f"    source: {'; '.join(dict.fromkeys(b['source'] for b in found))}")
    oracle = report.get("oracle")
    if oracle is not None:
        if not oracle.get("available"):
            print(f"oracle: {oracle['note']}")
        elif oracle["compiled"]:
            if oracle.get("straight"):
                print(f"oracle: the real {oracle['plugin']} MYRIAD plugin compiles this file as it is "
                      f"(`kernelkit compile {report['model']}`)" +
                      ("; the blockers above are on patch's way through OpenVINO's IR" if blockers else ""))
            else:
                print(f"oracle: the real {oracle['plugin']} MYRIAD plugin compiles this model")
        else:
            what = "this file as it is" if oracle.get("straight") else "it"
            print(f"oracle: the real {oracle['plugin']} MYRIAD plugin refuses {what}: {oracle['message'].strip()}")
            for name, kind, message in oracle["unsupported"]:
                print(f"    {name} ({kind}): {message}")
        if oracle.get("available") and oracle.get("note"):
            print(f"    ({oracle['note']})")
    if blockers:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report["summary"]["by_kind"].items()))
        print(f"{len(blockers)} blocker(s): {kinds}", file=sys.stderr)
