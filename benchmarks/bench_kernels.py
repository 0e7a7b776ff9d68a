"""Benchmark the library kernels: emulator time against OpenVINO CPU's native op of the same shape, plus the
estimated on-chip memory and DDR traffic per work group of the binding the plugin would pick.

    .venv/bin/python benchmarks/bench_kernels.py [KERNEL ...] [--repeat N]   # prints a Markdown table

Each kernel runs its spec case named "large". Times are the best of N warm runs (the first run, which
compiles the kernel, is not counted), in one process on this machine: compare ratios, not absolute times.
The emulator runs the kernel on PoCL (CPU threads), so its time says nothing about the SHAVE's; the ratio
shows what the emulator costs against the CPU plugin's optimised op. DDR traffic is a lower bound: every
input and output element moved once (gather-heavy kernels such as GridSample re-read inputs).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kernelkit.kernel.bindings import expr
from kernelkit.kernel.builder.build import build_kernel
from kernelkit.kernel.builder.lint import local_memory_estimate, private_memory_estimate
from kernelkit.kernel.emulator.run import emulate
from kernelkit.harness.inputs import generate_inputs
from kernelkit.runners.base import RunnerSkipped
from kernelkit.runners.openvino_op import OpenVINOOpRunner
from kernelkit.library.catalog import library_kernels
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import load_spec

LIBRARY_SUFFIX = "_h"


def best_time(run, repeat: int) -> float:
    run()  # warm-up: kernel build, OpenVINO compile caches
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def work_groups(layer, inputs, output_shape, attrs) -> int:
    sizes = layer.kernels[0].work_sizes
    shape = inputs[sizes.dim.index].shape if sizes.dim.kind == "input" else output_shape
    variables = expr.size_variables(shape, {k: ",".join(map(str, v)) if isinstance(v, list) else v
                                            for k, v in attrs.items()})
    groups = 1
    for g, l in zip(sizes.global_, sizes.local):
        groups *= expr.evaluate(g, variables) // max(expr.evaluate(l, variables), 1)
    return groups


def bench(name: str, out_dir: Path, repeat: int) -> dict:
    spec = load_spec(KERNELS_DIR / name)
    case = next((c for c in spec.cases if c.name == "large"), spec.cases[-1])
    build = build_kernel(KERNELS_DIR / name, out_dir / name)
    inputs = generate_inputs(case, path=spec.path)
    output_shape = tuple(case.output_shape) if case.output_shape is not None else inputs[0].shape
    result = emulate(build.xml_path, spec.op, inputs, case.attrs, [output_shape], checks=False)
    emulated = best_time(lambda: emulate(build.xml_path, spec.op, inputs, case.attrs, [output_shape],
                                         checks=False), repeat)
    try:
        native = OpenVINOOpRunner(spec, case.attrs, threads=1).compiled(inputs)
    except RunnerSkipped:
        native = None   # no OpenVINO counterpart (or this OpenVINO cannot build it): no ratio
    native_time = best_time(native, repeat) if native else None
    source = build.cl_path.read_text()
    local_bytes = sum(b for _, b in local_memory_estimate(source))
    private_bytes = sum(b for _, b in private_memory_estimate(source))
    groups = work_groups(result.layer, inputs, output_shape, case.attrs)
    traffic = sum(x.nbytes for x in inputs) + 2 * int(np.prod(output_shape))
    return dict(kernel=name, op=spec.op, case=case.name, shape="x".join(map(str, inputs[0].shape)),
                emulator_ms=emulated * 1e3, openvino_ms=native_time * 1e3 if native_time else None,
                ratio=emulated / native_time if native_time else None, groups=groups,
                cmx_bytes=local_bytes + private_bytes, ddr_bytes_per_group=traffic / groups)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", help="kernel folder names (default: every library kernel, *_h)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    names = args.kernels or [k.name for k in library_kernels() if k.name.endswith(LIBRARY_SUFFIX)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append(bench(name, Path(tmp), args.repeat))
            print(f"# {name} done", file=sys.stderr)
    header = ["kernel", "op", "input shape", "emulator ms", "OpenVINO CPU ms", "ratio", "work groups",
              "CMX bytes/group (arrays)", "DDR bytes/group (>=)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["kernel"], r["op"], r["shape"], f"{r['emulator_ms']:.2f}",
                 f"{r['openvino_ms']:.3f}" if r["openvino_ms"] else "n/a",
                 f"{r['ratio']:.2g}x" if r["ratio"] else "n/a", str(r["groups"]), str(r["cmx_bytes"]),
                 f"{r['ddr_bytes_per_group']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
