"""`kernelkit emulate`: run a MYRIAD binding on the SHAVE emulator (PoCL)."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from kernelkit.core.errors import KernelkitError

NAME = "emulate"
HELP = "run a MYRIAD custom-layer binding on the SHAVE emulator"
DESCRIPTION = ("Run the binding the MYRIAD plugin would choose for a layer of type T on PoCL, with device checks. "
               "IN.npz holds in0, in1... (logical layout, NCHW for 4-D); OUT.npz receives out0. "
               "Exit 0: ran clean; 1: a device check failed; 2: bad input.")
ORDER = 40


def add_arguments(parser) -> None:
    parser.add_argument("bindings", metavar="BINDINGS.xml", help="MYRIAD custom-layer binding file")
    parser.add_argument("--type", required=True, metavar="T", help="the layer type (IR op type) to emulate")
    parser.add_argument("--inputs", required=True, metavar="IN.npz", help="input tensors in0, in1, ...")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="a layer attribute as the IR <data> holds it (repeatable)")
    parser.add_argument("--out-shape", action="append", default=[], metavar="D0,D1,...",
                        help="output shape (repeatable, one per output; default: input 0's shape)")
    parser.add_argument("--out", required=True, metavar="OUT.npz", help="where to write out0")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16",
                        help="fp16 (default): tensors rounded to fp16 as the VPU stores them; fp32: no rounding")
    parser.add_argument("--arithmetic", choices=("fp32", "fp16"), default="fp32",
                        help="fp32 (default): half arithmetic inside kernels runs in float32; fp16: real 16-bit "
                             "half storage and arithmetic, rounded per operation as on SHAVE (needs clang-15)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a run is stopped (default 60)")


def _read_inputs(path: Path) -> list:
    from kernelkit.core.npzfile import load_npz

    arrays = load_npz(path, what="input file")
    names = sorted((n for n in arrays if re.fullmatch(r"in\d+", n)), key=lambda n: int(n[2:]))
    other = sorted(set(arrays) - set(names))
    if other:
        raise KernelkitError(f"unexpected array(s) {', '.join(other)}; inputs are named in0, in1, ...", path=path)
    if not names:
        raise KernelkitError("no arrays named in0, in1, ...", path=path)
    expected = [f"in{i}" for i in range(len(names))]
    if names != expected:
        raise KernelkitError(f"inputs must be numbered from in0 without gaps; found {', '.join(names)}", path=path)
    for name in names:
        if 0 in arrays[name].shape:
            raise KernelkitError(f"{name} has the shape {list(arrays[name].shape)}, with no elements", path=path,
                                 where=name, hint="a device tensor has at least one element in every dimension")
    return [arrays[n] for n in names]


def _parse_attrs(items: list[str]) -> dict[str, str]:
    attrs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise KernelkitError(f"--attr {item!r} is not KEY=VALUE", where="--attr")
        attrs[key.strip()] = value
    return attrs


def _parse_shapes(items: list[str]) -> list[tuple[int, ...]] | None:
    shapes = []
    for item in items:
        try:
            shape = tuple(int(d) for d in item.split(","))
        except ValueError:
            raise KernelkitError(f"--out-shape {item!r} is not a comma-separated list of integers",
                                 where="--out-shape") from None
        if any(d <= 0 for d in shape):
            raise KernelkitError(f"--out-shape {item!r} has a dimension <= 0", where="--out-shape")
        shapes.append(shape)
    return shapes or None


def run(args) -> int:
    import numpy as np

    from kernelkit.kernel.emulator.run import DeviceCheckFailed, emulate
    from kernelkit.core.fsutil import atomic_write

    inputs = _read_inputs(Path(args.inputs))
    attrs = _parse_attrs(args.attr)
    shapes = _parse_shapes(args.out_shape)
    if args.timeout <= 0:
        raise KernelkitError("--timeout must be positive", where="--timeout")
    try:
        result = emulate(args.bindings, args.type, inputs, attrs, shapes, precision=args.precision,
                         arithmetic=args.arithmetic, timeout=args.timeout)
    except DeviceCheckFailed as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        print(f"kernelkit: device check failed ({sum(f.severity == 'error' for f in exc.findings)} error(s)); "
              f"{args.out} not written", file=sys.stderr)
        return 1
    for finding in result.findings:
        print(finding, file=sys.stderr)
    buffer = io.BytesIO()
    np.savez(buffer, **{f"out{i}": out for i, out in enumerate(result.outputs)})
    atomic_write(args.out, buffer.getvalue())
    layer = result.layer
    shapes_text = ", ".join("x".join(map(str, o.shape)) for o in result.outputs)
    print(f"{layer.name} (binding at {layer.path}:{layer.line}, {len(layer.kernels)} stage(s)) -> "
          f"{args.out} [{shapes_text}] in {result.timings.get('total', 0.0) * 1000:.0f} ms")
    return 0
