"""`kernelkit device-check script SOURCE` / `kernelkit device-check compare DEVICE.npz REFERENCE.npz`.

A standalone group until `kernelkit blob` (kernelkit/cli/blob.py) is on main: each subcommand is one row of
SUBCOMMANDS (name, help, add_arguments, run), the shape of blob.py's, so the rows move into that group as they are.
"""

from __future__ import annotations

NAME = "device-check"
HELP = ("device truth: write a DepthAI v3 script (and its inputs .npz) an OAK owner runs to save the device's "
        "outputs; compare those with a reference")
DESCRIPTION = (HELP + ". script: exit 0 written, 2 bad input, 3 depthai missing. compare: exit 0 every output "
               "within tolerance, 1 a mismatch or a missing output, 2 bad input.")
ORDER = 66


def _add_script(parser):
    parser.add_argument("source", metavar="SOURCE", help="an NN Archive (.tar.xz), a .superblob or a .blob")
    parser.add_argument("--out-dir", metavar="DIR", default=None, help="where to write (default: beside SOURCE)")
    parser.add_argument("--inputs", metavar="IN.npz", default=None,
                        help="inputs keyed by the blob's input names (default: seeded: U8 0..255, float standard "
                             "normal rounded to fp16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")


def _run_script(args) -> int:
    from kernelkit.api import device_check

    made = device_check(args.source, args.out_dir, inputs=args.inputs, seed=args.seed)
    fed = ", ".join(f"{name} {spec['dtype']} {spec['shape']}" for name, spec in made.input_specs.items())
    print(f"wrote {made.script} and {made.inputs} ({fed})")
    print(f"on a machine with an OAK and depthai 3: python3 {made.script.name}  (writes {made.device_out.name}; "
          "--dry-run stops before connecting)")
    print(f"reference on the same inputs: kernelkit blob run BLOB --inputs {made.inputs.name} --out REFERENCE.npz; "
          f"then: kernelkit device-check compare {made.device_out.name} REFERENCE.npz")
    return 0


def _add_compare(parser):
    parser.add_argument("device", metavar="DEVICE.npz", help="the outputs the device-check script saved")
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
    ("script", "write SOURCE's DepthAI v3 device-check script and the inputs .npz it feeds", _add_script,
     _run_script),
    ("compare", "compare the device's outputs .npz with a reference's, output by output", _add_compare,
     _run_compare),
]


def add_arguments(parser):
    sub = parser.add_subparsers(dest="device_check_command", metavar="SUBCOMMAND", required=True)
    for name, help_text, add, run in SUBCOMMANDS:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add(cmd)
        cmd.set_defaults(_device_check_run=run)


def run(args) -> int:
    return args._device_check_run(args)
