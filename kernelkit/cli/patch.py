"""`kernelkit patch MODEL -o OUTDIR --target T`: make a model compile for MYRIAD."""

from __future__ import annotations

NAME = "patch"
HELP = "fix every MYRIAD blocker of an IR/ONNX/TFLite model it can (kernels, rewrites, downgrades, Converts)"
DESCRIPTION = ("Write OUTDIR/model.xml+.bin (IR v10 for 2021.4, v11 otherwise), custom_layers.xml with the "
               "kernel sources, compile.conf (compile_tool -c) and patch-report.json, then compile OUTDIR with the "
               "real MYRIAD 2021.4 plugin where `kernelkit toolchain setup` has provisioned it: OUTDIR/model.blob "
               "and model.graph.dot (the plugin's stage -> layer map). When the plugin refuses, patch names the "
               "layer and the plugin's words, tries the fixes it knows for them and keeps the first that compiles. "
               "The input is never modified. Exit 0: the plugin compiled it (without the toolchain, --no-compile "
               "or another target: the knowledge base finds no blocker); 1: blockers remain or the plugin refuses; "
               "2: bad input; 3: --compile without the toolchain; 4: it compiles once clc builds the custom "
               "layers' kernels (no blob).")
ORDER = 61


def add_arguments(parser) -> None:
    from kernelkit.facts.target import default_target_name, target_names

    parser.add_argument("model", metavar="MODEL", help="IR .xml (with its .bin beside it), .onnx, .tflite, TensorFlow "
                                                       ".pb or SavedModel folder, or PaddlePaddle .pdmodel or PIR .json")
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR", help="output folder (must be empty)")
    parser.add_argument("--target", choices=target_names(), default=default_target_name(),
                        help=f"OpenVINO release whose MYRIAD plugin compiles the model "
                             f"(default: {default_target_name()})")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                        help="fix the shape of input NAME (repeatable; NAME=scalar for 0-d)")
    parser.add_argument("--input-value", action="append", default=[], metavar="NAME=V[,V...]",
                        help="freeze input NAME to these values (repeatable), then fold the If/Loop/Shape "
                             "subgraphs that become constant (ONNX)")
    parser.add_argument("--output", action="append", default=[], metavar="NAME",
                        help="end the model at tensor NAME (repeatable, in output order; a tensor, layer or "
                             "LAYER:PORT name): what feeds no named output, such as a detector's postprocessing, "
                             "is dropped, and verify cuts the original the same way")
    parser.add_argument("--head", choices=["yolo"], default=None,
                        help="yolo: rewrite an Ultralytics YOLO export (v5u/v8/v9/v10/11; output0 "
                             "[1, 4+classes(+extra), anchors]; Detect, Pose, Segment) to the per-stride outputs "
                             "DepthAI's YOLO decoder reads (DFL decoded in the model, conf = max class score; "
                             "keypoints in pixels as kpt_output{i}; mask coefficients as output{i}_masks beside "
                             "protos_output); recorded for `kernelkit archive`, and verify rewrites the original "
                             "the same way")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUTDIR")
    parser.add_argument("--mean", metavar="V[,V...]", help="subtract per-channel mean values (model channel order)")
    parser.add_argument("--scale", metavar="V[,V...]", help="divide by per-channel scale values")
    parser.add_argument("--reverse-channels", action="store_true", help="reverse the channel order (BGR <-> RGB)")
    parser.add_argument("--u8-input", action="store_true", help="take U8 input and convert it inside the model")
    parser.add_argument("--preprocess-input", action="append", default=[], metavar="NAME",
                        help="input to preprocess (repeatable; default: every float 4-D input)")
    parser.add_argument("--layout", action="append", default=[], metavar="NAME=NCHW|NHWC",
                        help="layout of input NAME, whose channel axis --reverse-channels/--mean/--scale act on "
                             "(repeatable; a bare NCHW|NHWC: every 4-D input; default: inferred from the shape "
                             "and the source format, an error when ambiguous; stated in patch-report.json)")
    parser.add_argument("--prefer", choices=["native", "kernel", "fastest", "auto", "rewrite"], default="native",
                        help="for an op with both a native formulation and a library kernel: native (default) "
                             "uses the formulation when its measured fp16 error is within the op's tolerance, "
                             "else the kernel (whose SHAVE .bin needs clc); kernel binds the kernel first; "
                             "fastest is native, then the kernel wherever the compiled formulation is estimated "
                             "more than 2x slower on an OAK (the report has both estimates either way). "
                             "auto and rewrite are old names of native")
    parser.add_argument("--shaves", type=int, default=6, help="SHAVEs (and CMX slices) in compile.conf (default: 6)")
    parser.add_argument("--json", action="store_true", help="print patch-report.json instead of the summary")
    compiling = parser.add_mutually_exclusive_group()
    compiling.add_argument("--no-compile", action="store_true",
                           help="do not compile: the verdict is the knowledge base's only")
    compiling.add_argument("--compile", action="store_true",
                           help="require the real plugin's verdict: exit 3 when the toolchain is not provisioned "
                                "(by default patch compiles where it can and says when it cannot)")


def run(args) -> int:
    from kernelkit.ir.cut import parse_outputs
    from kernelkit.ir.freeze import parse_input_values
    from kernelkit.ir.load import reuse_conversions
    from kernelkit.ir.reshape import parse_input_shapes
    from kernelkit.model.passes.preprocess import Preprocessing, parse_layouts, parse_values

    options = Preprocessing(mean=parse_values(args.mean, "--mean"), scale=parse_values(args.scale, "--scale"),
                            reverse_channels=args.reverse_channels, u8_input=args.u8_input,
                            inputs=list(args.preprocess_input), layouts=parse_layouts(args.layout))
    patch_options = dict(input_shapes=parse_input_shapes(args.input_shape), preprocessing=options,
                         prefer=args.prefer, shaves=args.shaves, input_values=parse_input_values(args.input_value),
                         outputs=parse_outputs(args.output))
    if args.head:
        patch_options["head"] = args.head
    with reuse_conversions():           # the fixes' patches name the layers the first patch named
        return _patch_and_confirm(args, patch_options)


def _patch_and_confirm(args, patch_options: dict) -> int:
    import json

    from kernelkit.doctor.confirm import confirm, record_not_run
    from kernelkit.model.patcher import format_patch_result, patch_model

    result = patch_model(args.model, args.out, args.target, force=args.force, **patch_options)

    if result.exit_code != 0:
        record_not_run(result, args.out, "blockers remain: the plugin would refuse the model")
    elif args.no_compile:
        record_not_run(result, args.out, "--no-compile: the verdict is the knowledge base's only")
    else:
        from kernelkit.core.errors import KernelkitError

        try:
            _, result = confirm(result, args.model, args.out, args.target, patch_options, required=args.compile)
        except KernelkitError as exc:          # --compile and no compiler here: the patch stands, then the error
            record_not_run(result, args.out, exc.message)
            print(json.dumps(result.report, indent=2) if args.json else format_patch_result(result))
            raise
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        from kernelkit.doctor.estimate_use import report_lines

        print("\n".join([format_patch_result(result), *report_lines(result.report)]))
    if getattr(result, "ultralytics_head", False):
        import sys

        print("kernelkit: note: the model ends in an Ultralytics YOLO detection head (output0 [1, 4+classes, "
              "anchors], keypoint or mask rows after); DepthAI's YOLO decoder reads one output per stride: patch "
              "with --head yolo to rewrite it (docs/delivery.md)", file=sys.stderr)
    return result.exit_code
