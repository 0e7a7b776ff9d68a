"""`kernelkit compile`: a real MYRIAD blob from the 2021.4 plugin."""

from __future__ import annotations

import sys

NAME = "compile"
HELP = "compile an IR v10/ONNX model or a patch output folder to a MYRIAD .blob or .superblob (real 2021.4 plugin)"
DESCRIPTION = (HELP + ". A .superblob (DepthAI's format) holds the blob for 8 SHAVEs and a patch for every other "
               "count 1-16, each compiled in its own process. Needs `kernelkit toolchain setup`. Exit 0 compiled, "
               "1 the plugin refused the model, 2 bad input, 3 toolchain unavailable.")
ORDER = 60


def add_arguments(parser):
    from kernelkit.facts.device import DEFAULT_SHAVES
    from kernelkit.myriad.blob import BLOB_VERSIONS

    parser.add_argument("model", metavar="MODEL_OR_OUTDIR", help="IR v10 .xml, .onnx, or a `kernelkit patch` folder")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.blob",
                        help="blob to write (the plugin's internal graph, the stage -> layer map, goes beside it as "
                             "OUT.graph.dot); a name ending in .superblob writes a superblob")
    parser.add_argument("--superblob", action="store_true",
                        help="write a superblob: every SHAVE count 1-16 (CMX slices = SHAVEs, one throughput "
                             "stream), the 8-SHAVE blob as the base and bsdiff patches for the others")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="superblob compiles run at once (default: KERNELKIT_SUPERBLOB_JOBS, else as many "
                             "as the cores and half the free memory allow)")
    parser.add_argument("--shaves", type=int, default=None,
                        help=f"SHAVEs to compile for (default: the folder's compile.conf, else {DEFAULT_SHAVES})")
    parser.add_argument("--cmx-slices", type=int, default=None,
                        help="CMX slices (default: the folder's compile.conf, else as many as SHAVEs)")
    parser.add_argument("--u8-input", action="store_true", default=None,
                        help="U8 network inputs converted on the device (like compile_tool -ip U8); "
                             "default: the patch report's choice, else the IR's input types")
    parser.add_argument("--fp16-output", action="store_true",
                        help="FP16 network outputs, half the bytes of FP32 (like compile_tool -op FP16); "
                             "default: FP32 float outputs, integer outputs keep their type")
    parser.add_argument("--blob-version", choices=list(BLOB_VERSIONS), default=None,
                        help="write this version into the blob header (as blobconverter does)")
    parser.add_argument("--custom-layers", metavar="XML", default=None,
                        help="MYRIAD custom layer bindings (default: the folder's custom_layers.xml)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop the compiler after this long (default: KERNELKIT_COMPILE_TIMEOUT, else 3600)")


def run(args) -> int:
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.myriad.compile import CompileFailed

    if args.timeout is not None and not args.timeout > 0:
        raise KernelkitError("--timeout must be a positive number of seconds", where="--timeout")
    superblob = args.superblob or args.output.lower().endswith(".superblob")
    if args.jobs is not None and not superblob:
        raise KernelkitError("--jobs sets the compiles of a superblob", where="--jobs",
                             hint="add --superblob or name the output NAME.superblob")
    try:
        result = compile_folder(args.model, args.output, shaves=args.shaves, cmx_slices=args.cmx_slices,
                                u8_input=args.u8_input, fp16_output=args.fp16_output,
                                blob_version=args.blob_version,
                                custom_layers=args.custom_layers, timeout=args.timeout,
                                superblob=superblob, jobs=args.jobs)
    except CompileFailed as exc:
        print(f"kernelkit: compile failed: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"plugin: {warning}", file=sys.stderr)
    h = result.header
    if superblob:
        patches = [len(p) for p in result.superblob.patches]
        print(f"wrote {result.path} ({result.size} bytes: the {h.shaves}-SHAVE blob, {h.file_size} bytes, blob "
              f"version {h.version_major}.{h.version_minor}, {h.stages} stages, and patches for "
              f"{sum(1 for p in patches if p)} other SHAVE counts, {sum(patches)} bytes) in {result.seconds:.1f} s "
              f"with {result.jobs} compile(s) at once")
        return 0
    print(f"wrote {result.blob_path} ({result.size} bytes, blob version {h.version_major}.{h.version_minor}, "
          f"{h.stages} stages, {h.shaves} shaves, {h.cmx_slices} CMX slices) in {result.seconds:.1f} s")
    if result.graph_dump is not None:
        print(f"wrote {result.graph_dump} (the plugin's internal graph: which layer each stage comes from)")
    _print_estimate(result.blob_path)
    return 0


def _print_estimate(blob) -> None:
    """One line of `kernelkit estimate`: latency, FPS and the SHAVE count past which more buy little."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.estimate import estimate_blob

    try:
        est = estimate_blob(read_blob(blob))
    except KernelkitError as exc:          # the blob is written; an estimate it cannot give is not a failed compile
        print(f"kernelkit: no estimate of the blob: {exc}", file=sys.stderr)
        return
    fits = est.memory["ddr"]["fits"] and est.memory["cmx"]["fits"]
    print(f"estimate on an OAK (2 inference threads, {est.shaves} SHAVEs): {est.latency_s * 1e3:.1f} ms, "
          f"{est.fps:.1f} FPS; more than {est.enough_shaves} SHAVE{'s' if est.enough_shaves > 1 else ''} buy under "
          f"5 % (--shaves {est.enough_shaves}); memory {'fits' if fits else 'DOES NOT FIT'} (kernelkit estimate {blob})")
