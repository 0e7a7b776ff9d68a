"""`kernelkit blob info BLOB [--json]`: what a compiled MYRIAD blob holds, stage by stage.
`kernelkit blob run BLOB [--inputs IN.npz] [--out OUT.npz] [--accumulator fp32|fp16|both]`: execute it on the CPU.

`blob` is a command group: each subcommand is one row of SUBCOMMANDS (name, help, add_arguments, run), so a
sibling (`blob run`) is one more row and one more pair of functions.
"""

from __future__ import annotations

NAME = "blob"
HELP = ("compiled MYRIAD blobs: info (header, I/O, every stage with its params and buffers, HW ops, memory); "
        "run (execute it on the CPU, with the overflow and range check); device-check and compare (device truth "
        "from an OAK owner)")
DESCRIPTION = (HELP + ". info reads every stage of the blob with its parameters and buffers; a damaged blob "
               "is an error (exit 2) naming the file. run exits 1 when a value passes fp16's range (before a HW "
               "op's descale, or inf/NaN) or collapses to zero, when a Custom stage's kernel (run from --kernels "
               "on the SHAVE emulator) writes outside its buffers, leaves output unwritten or differs from its "
               "binding, or (with --reference) when a stage departs from the model. device-check: exit 0 written, "
               "2 bad input, 3 depthai missing. compare: exit 0 every output within tolerance, 1 a mismatch or a "
               "missing output, 2 bad "
               "input.")
ORDER = 45


def _add_info(parser):
    parser.add_argument("blob", help="a .blob written by `kernelkit compile` (or the OpenVINO 2021.4 compile_tool)")
    parser.add_argument("--json", action="store_true", help="print the whole model as JSON instead of tables")


def _run_info(args) -> int:
    import json

    from kernelkit.api import blob_info

    model = blob_info(args.blob)
    if args.json:
        print(json.dumps(model.to_dict(), indent=1))
    else:
        print("\n".join(format_info(model)))
    return 0


def _add_run(parser):
    parser.add_argument("blob", help="a .blob written by `kernelkit compile` (or the OpenVINO 2021.4 compile_tool)")
    parser.add_argument("--inputs", metavar="IN.npz", default=None,
                        help="inputs keyed by the blob's input names or in0, in1, ... in blob order "
                             "(default: seeded standard-normal inputs)")
    parser.add_argument("--out", metavar="OUT.npz", default=None,
                        help="write the outputs here, keyed by the blob's output names (the fp32 run's with "
                             "--accumulator both)")
    parser.add_argument("--accumulator", choices=["fp32", "fp16", "both"], default="both",
                        help="the engine's accumulator, which no public source describes: an fp32 sum (one "
                             "rounding), an fp16 running sum, or both as a bracket (default: both)")
    parser.add_argument("--poison", type=int, default=None, metavar="SEED",
                        help="fill BSS and CMX with random finite values first (a memory plan read right "
                             "leaves the outputs unchanged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--kernels", metavar="DIR", default=None,
                        help="the binding .xml and the kernels' .cl files its Custom stages run with on the SHAVE "
                             "emulator: a `kernelkit patch` output folder, a folder of binding files or one "
                             "binding file (the blob holds the kernels' binaries, not their source)")
    parser.add_argument("--reference", metavar="MODEL", default=None,
                        help="the IR the blob was compiled from (a patch folder's model.xml): name the first stage "
                             "whose output departs from the same tensor of MODEL on OpenVINO CPU (exit 1)")


def _run_run(args) -> int:
    from kernelkit.api import blob_run

    report = blob_run(args.blob, args.inputs, args.out, accumulator=args.accumulator, poison=args.poison,
                      seed=args.seed, kernels=args.kernels, reference=args.reference)
    for line in report.lines():
        print(line)
    for name, values in report.outputs.items():
        peak = float(abs(values).max()) if values.size else 0.0
        print(f"output {name!r}: shape {tuple(values.shape)}, max |y| {peak:.6g}")
    if args.out:
        print(f"wrote {args.out}")
    if report.findings:
        print(f"range check: {len(report.findings)} finding(s); exit 1")
    elif report.exit_code:
        print("the blob departs from the reference; exit 1")
    return report.exit_code


def _add_device_check(parser):
    parser.add_argument("source", metavar="SOURCE", help="an NN Archive (.tar.xz), a .superblob or a .blob")
    parser.add_argument("--out-dir", metavar="DIR", default=None, help="where to write (default: beside SOURCE)")
    parser.add_argument("--inputs", metavar="IN.npz", default=None,
                        help="inputs keyed by the blob's input names (default: seeded: U8 0..255, float standard "
                             "normal rounded to fp16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")


def _run_device_check(args) -> int:
    from kernelkit.api import device_check

    made = device_check(args.source, args.out_dir, inputs=args.inputs, seed=args.seed)
    fed = ", ".join(f"{name} {spec['dtype']} {spec['shape']}" for name, spec in made.input_specs.items())
    print(f"wrote {made.script} and {made.inputs} ({fed})")
    print(f"on a machine with an OAK and depthai 3: python3 {made.script.name}  (writes {made.device_out.name}; "
          "--dry-run stops before connecting)")
    print(f"reference on the same inputs: kernelkit blob run BLOB --inputs {made.inputs.name} --out REFERENCE.npz; "
          f"then: kernelkit blob compare {made.device_out.name} REFERENCE.npz")
    return 0


def _add_compare(parser):
    parser.add_argument("device", metavar="DEVICE.npz", help="the outputs the blob device-check saved")
    parser.add_argument("reference", metavar="REFERENCE.npz",
                        help="a reference's outputs on the same inputs, keyed by output name (blob run --out, "
                             "OpenVINO CPU)")
    parser.add_argument("--atol", type=float, default=None, help="absolute tolerance (default: kernelkit's fp16 one)")
    parser.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: kernelkit's fp16 one)")


def _run_compare(args) -> int:
    from kernelkit.api import device_compare
    from kernelkit.runners.compare import summary_line

    result = device_compare(args.device, args.reference, atol=args.atol, rtol=args.rtol)
    for comparison in result.comparisons:
        print(summary_line(comparison))
    for name in result.missing:
        print(f"{name}: FAIL | the device file has no such output")
    for name in result.extra:
        print(f"{name}: not compared | the reference has no such output")
    print("PASS: the device agrees with the reference" if result.passed else "FAIL")
    return 0 if result.passed else 1


SUBCOMMANDS = [
    ("info", "header, I/O, every stage with its params and buffers, HW ops, memory, stage counts",
     _add_info, _run_info),
    ("run", "execute the blob on the CPU stage by stage (fp32 and fp16 accumulators) with the range check",
     _add_run, _run_run),
    ("device-check", "write the DepthAI v3 script an OAK owner runs to save the device's outputs for fixed inputs "
     "(an archive, .superblob or .blob), and the inputs .npz it feeds", _add_device_check, _run_device_check),
    ("compare", "compare the device's outputs .npz with a reference's (blob run --out, OpenVINO CPU), output by output",
     _add_compare, _run_compare),
]


def add_arguments(parser):
    sub = parser.add_subparsers(dest="blob_command", metavar="SUBCOMMAND", required=True)
    for name, help_text, add, run in SUBCOMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add(cmd)
        cmd.set_defaults(_blob_run=run)


def run(args) -> int:
    return args._blob_run(args)


# ------------------------------------------------------------------------------------------------ printing

def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ",".join(_num(v) for v in value[:8]) + (",..." if len(value) > 8 else "") + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_num(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_params(stage) -> str:
    params = dict(stage.params)
    if stage.type_name == "Permute":        # eight slots, -1 padded: the permutation is the used ones
        params = {"perm": [params[f"perm{i}"] for i in range(8) if params[f"perm{i}"] >= 0]}
    elif stage.type_name == "Pad":
        params = {"pads(begin,end) innermost first": [[params[f"pad_begin{i}"], params[f"pad_end{i}"]]
                                                      for i in range(4)], "value": params["pad_value"],
                  "mode": params["pad_mode"]}
    elif stage.type_name == "Custom":
        params = {k: params[k] for k in ("groups", "local", "max_shaves", "kernel_id")} | \
            {"args": len(params["args"])}
    return " ".join(f"{k}={_num(v)}" for k, v in params.items())


def format_buffer(b) -> str:
    dims = "x".join(map(str, b.shape)) if b.dims else "dynamic"
    where = f"{b.location}[{b.io_index}]" if b.io_index is not None else f"{b.location}+{b.offset}"
    if b.location in ("Input", "Output") and b.offset:
        where += f"+{b.offset}"
    return f"{where} {b.data_type} {b.order} {dims}"


def format_hw_op(stage, op) -> str:
    ic, oc = op.mode_channels
    parts = [op.op_type + (f"/{op.pool_type}" if op.pool_type else ""), f"mode {op.op_mode} ({ic}x{oc})"]
    if op.op_type == "FC":
        parts.append(f"fc in {op.fc_input_offset}+{op.fc_input_num} out {op.fc_output_offset}+{op.fc_output_num}"
                     + (" accum" if op.fc_accum else ""))
    else:
        parts.append(f"k{op.kernel_width}x{op.kernel_height} s{op.kernel_stride}")
        parts.append(f"out ch {op.out_chan_offset}+{op.out_num_chans}")
    if op.pool_kernel_width:
        parts.append(f"pool {op.pool_kernel_width}x{op.pool_kernel_height}")
    if op.with_pad:
        parts.append(f"pad (mode {op.pad_mode})")
    if op.with_relu:
        parts.append(f"relu t0={op.t0} a0={op.a0} a1={op.a1}")
    if op.with_clamp:
        parts.append(f"clamp {op.clamp_max:g}")
    idx = lambda i: "-" if i is None else f"#{i}"  # noqa: E731
    parts.append(f"buffers in={idx(op.input_index)} w={idx(op.coeffs_index)} b={idx(op.biases_index)} "
                 f"s={idx(op.scales_index)} out={idx(op.output_index)}")
    if op.reuse_data or op.reuse_coeff:
        parts.append("reuse " + "+".join(n for n, f in (("data", op.reuse_data), ("coeff", op.reuse_coeff)) if f))
    from kernelkit.myriad.blob_reader import hw_op_cost

    cost = hw_op_cost(stage, op)
    parts.append(f"{cost['lane_cycles']} lane-cycles, tiler score {cost['tiler_cost']}")
    return ", ".join(parts)


def _stage_row(stage, label: str) -> str:
    ins = ", ".join(format_buffer(b) for b in stage.inputs) or "-"
    outs = ", ".join(format_buffer(b) for b in stage.outputs) or "-"
    temps = "".join(f" (temp {format_buffer(b)})" for b in stage.temps)
    params = format_params(stage)
    return f"  {label:>4}  {stage.type_name:<14} {stage.shaves:>2}  {params}\n        {ins} -> {outs}{temps}"


def format_info(model) -> list[str]:
    h = model.header
    lines = [f"blob: {model.path} ({h.file_size} bytes, version {h.version_major}.{h.version_minor}, "
             f"{h.stages} stages, {h.shaves} SHAVEs, {h.cmx_slices} CMX slices, batch {h.batch_size})"]
    if model.graph_dump:
        lines.append(f"internal-graph dump: {model.graph_dump} (each stage's IR layers below)")
    for kind, entries in (("inputs", model.inputs), ("outputs", model.outputs)):
        lines.append(f"{kind}:")
        for b in entries:
            shape = "x".join(map(str, b.logical_shape())) or "dynamic"
            lines.append(f"  {b.io_index}  {b.name!r} {b.data_type} {b.order} {shape} (io offset {b.offset})")
    lines.append("stages (index, type, SHAVEs, params; inputs -> outputs):")
    for stage in model.stages:
        lines.append(_stage_row(stage, str(stage.index)))
        if model.stage_layers is not None:
            lines.append("        from " + (", ".join(map(str, model.stage_layers[stage.index])) or "(no IR layer)"))
        if stage.injected is not None:
            lines.append(_stage_row(stage.injected, "+inj"))
    hw = [s for s in model.stages if s.hw_ops]
    if hw:
        lines.append("HW ops:")
        for stage in hw:
            for i, op in enumerate(stage.hw_ops):
                lines.append(f"  stage {stage.index} op {i}: {format_hw_op(stage, op)}")
            if stage.injected is not None:
                lines.append(f"  stage {stage.index} injected: {stage.injected.type_name} "
                             f"{format_params(stage.injected)}".rstrip())
    m = model.memory()
    lines.append(f"memory: BSS {m['bss_bytes']} B, CMX {m['cmx_slices']} slices ({m['cmx_bytes']} B), const "
                 f"{m['const_bytes']} B, inputs {m['inputs_bytes']} B, outputs {m['outputs_bytes']} B; reached: "
                 + ", ".join(f"{k} {v} B" for k, v in m["extent"].items()))
    cost = model.cost()
    if cost["hw_descriptors"]:
        lines.append(f"HW cost: {cost['hw_stages']} HW stages, {cost['hw_descriptors']} descriptors, "
                     f"{cost['lane_cycles']} lane-cycles, tiler score {cost['tiler_cost']}; DMA {cost['dma_bytes']} B")
    c = model.counts()
    lines.append(f"stage counts: {c['stages']} stages: HW {c['HW']} ({c['hw_ops']} ops), SHAVE {c['SHAVE']}, "
                 f"DMA {c['DMA']}, injected {c['injected']}; by type: "
                 + ", ".join(f"{k} {v}" for k, v in c["by_type"].items()))
    return lines
