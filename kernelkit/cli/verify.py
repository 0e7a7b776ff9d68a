"""`kernelkit verify OUTDIR`: run a patched model on OpenVINO CPU with its custom layers emulated."""

from __future__ import annotations

NAME = "verify"
HELP = "check a patched model against the original (or expected outputs), custom layers on the SHAVE emulator"
DESCRIPTION = ("Run OUTDIR/model.xml on OpenVINO CPU (f32) with every custom-bound layer executed by the SHAVE "
               "emulator, and compare each output with EXP.npz (out0, out1, ...), a reference model, or by "
               "default the original model named in patch-report.json on the same inputs. The compiled blob "
               "(OUTDIR/model.blob, which patch writes where the plugin runs, or --blob) is also run by the blob "
               "interpreter on the same inputs and compared with the same reference: the result says which of "
               "the two failed. IN.npz holds in0, in1, ... in model input order (default: seeded random "
               "inputs). Exit 0 pass, 1 mismatch, 2 bad input.")
ORDER = 62


def add_arguments(parser) -> None:
    parser.add_argument("outdir", metavar="OUTDIR", help="output folder of `kernelkit patch`")
    parser.add_argument("--inputs", metavar="IN.npz", help="inputs in0, in1, ... (default: seeded random)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--expected", metavar="EXP.npz", help="expected outputs out0, out1, ...")
    group.add_argument("--reference", metavar="MODEL", help="reference model run on OpenVINO CPU (f32)")
    parser.add_argument("--onnx-reference", action="store_true",
                        help="run an ONNX original on onnx's reference evaluator instead of OpenVINO CPU: checks "
                             "OpenVINO's conversion of the file too (slow on large models)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default: 0)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (default: the harness's fp16 default)")
    parser.add_argument("--rtol", type=float, help="relative tolerance (default: the harness's fp16 default)")
    blob = parser.add_mutually_exclusive_group()
    blob.add_argument("--blob", metavar="B.blob", help="the compiled blob to check (default: OUTDIR/model.blob)")
    blob.add_argument("--no-blob", action="store_true", help="check the IR only, not the compiled blob")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args) -> int:
    import json

    from kernelkit.doctor.verify import format_verify_result, verify

    result = verify(args.outdir, inputs=args.inputs, expected=args.expected, reference=args.reference,
                    seed=args.seed, atol=args.atol, rtol=args.rtol, blob=args.blob, check_blob=not args.no_blob,
                    onnx_reference=args.onnx_reference)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_verify_result(result))
    return result.exit_code
