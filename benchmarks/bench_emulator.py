"""Emulator benchmark: overhead against a bare pyopencl launch, and elementwise vs copy bandwidth.

    .venv/bin/python benchmarks/bench_emulator.py [--elements 1048576] [--repeats 15] [--markdown FILE]

1. Overhead: the same SHAVE kernel (tests/data/shave/scale_bias.xml, alternative mode=1: one work item per
   element, vload_half/vstore_half) on a 1M-element tensor, after warm-up. "Bare" is what a hand-written
   pyopencl script does per call: upload the input, launch, read the output back (program built once, same
   PoCL source and options). "Emulator" is a whole emulate() call: plan, worker round trip, fp16 rounding at
   the boundary, guard zones, poison and checks. Timed in pairs, one of each, the order alternating from pair
   to pair, so load from other processes and each side's traces in the caches hit both alike; the ratio is
   median emulator / median bare, with the median and quartiles of the per-pair ratios beside it. For
   context: emulate() given the input as float16 (what the conformance harness passes), emulate() with the
   input rounded by the worker on the device instead of in the host's copy (KERNELKIT_HOST_FP16=0), each side
   timed on its own back to back (their data stays in the caches), and a bare call that also rounds input and
   output to fp16 in numpy.
2. Bandwidth: kernel time only (queue.finish around the launch), in this process, for a plain float copy
   kernel and for elementwise kernels on float-backed half buffers of the same size (the hand-written one
   above, and the generated kernels/hard_sigmoid_h built into a temporary folder); bytes read + written per
   second, and each elementwise kernel's fraction of the copy kernel's bandwidth, the two timed in turn.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BINDINGS = REPO / "tests" / "data" / "shave" / "scale_bias.xml"
COPY_KERNEL = "__kernel void copy(__global const float* restrict src, __global float* restrict dst)\n" \
              "{ const size_t i = get_global_id(0); dst[i] = src[i]; }\n"


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _round_robin_medians(fns, repeats):
    """Each function timed once per round, in turn, so noise hits all alike: the median time of each."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - t0)
    return [statistics.median(spent) for spent in times]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=1 << 20)
    parser.add_argument("--repeats", type=int, default=201, help="pairs per paired measurement")
    parser.add_argument("--markdown", type=Path, help="also write the results as a Markdown page")
    args = parser.parse_args(argv)

    from kernelkit.core.paths import cache_dir
    os.environ.setdefault("POCL_CACHE_DIR", str(cache_dir("pocl")))
    import pyopencl as cl

    from kernelkit.kernel.bindings import clsource
    from kernelkit.kernel.emulator import cache, host_fp16
    from kernelkit.kernel.emulator.run import emulate
    from kernelkit.kernel.emulator import source as shave_source
    from kernelkit.kernel.emulator.worker import _pocl_platform

    width = 256
    shape = (1, args.elements // (width * 64), 64, width)
    n = int(np.prod(shape))
    x = np.random.default_rng(0).uniform(-4, 4, shape).astype(np.float32)
    attrs = {"mode": 1, "alpha": 0.5}

    # --- emulator -----------------------------------------------------------------------------------------
    for _ in range(3):
        result = emulate(BINDINGS, "ScaleBias", [x], attrs)
    expected = (x.astype(np.float16).astype(np.float32) * 0.5 + 0.25) * -1
    assert np.allclose(result.outputs[0].astype(np.float32), expected, atol=4e-3), "emulator result is wrong"

    # --- bare pyopencl, same program --------------------------------------------------------------------
    plat, _ = _pocl_platform(cl)
    ctx = cl.Context([plat.get_devices()[0]])
    queue = cl.CommandQueue(ctx)
    cl_path = BINDINGS.with_name("scale_bias_alt.cl")
    program_text = shave_source.transform([(str(cl_path), clsource.read_source(cl_path))], "scale_bias_neg")
    import warnings
    warnings.filterwarnings("ignore", category=cl.CompilerWarning)
    program = cl.Program(ctx, program_text).build(options=shave_source.build_options("fp16"))
    kernel = cl.Kernel(program, "scale_bias_neg")
    host_in = x.astype(np.float16).astype(np.float32).reshape(-1)
    host_out = np.empty_like(host_in)
    mf = cl.mem_flags

    def bare(source=host_in):
        src = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=source)
        dst = cl.Buffer(ctx, mf.WRITE_ONLY, source.nbytes)
        kernel.set_args(src, dst, np.float32(0.5), np.float32(0.25))
        cl.enqueue_nd_range_kernel(queue, kernel, (n,), (width,))
        cl.enqueue_copy(queue, host_out, dst)
        queue.finish()

    def bare_fp16():
        """The bare call plus the fp16 storage rounding the emulator applies, done in numpy."""
        bare(x.reshape(-1).astype(np.float16).astype(np.float32))
        return host_out.astype(np.float16)

    def paired(emulated, repeats=args.repeats):
        """Median emulate() and bare times over `repeats` pairs (order alternating), and the per-pair ratios."""
        for _ in range(30):       # warm-up: programs, plans, the pools' pages, the caches
            emulated()
            bare()
        emu_times, bare_times = [], []
        for i in range(repeats):
            for side in ((emulated, bare) if i % 2 == 0 else (bare, emulated)):
                t0 = time.perf_counter()
                side()
                (emu_times if side is emulated else bare_times).append(time.perf_counter() - t0)
        ratios = [e / b for e, b in zip(emu_times, bare_times)]
        quartiles = statistics.quantiles(ratios, n=4)
        return statistics.median(emu_times), statistics.median(bare_times), statistics.median(ratios), quartiles

    phases = []            # each headline call's timings: where a warm call spends its time
    emu, bare_time, pair_ratio, pair_quartiles = paired(
        lambda: phases.append(emulate(BINDINGS, "ScaleBias", [x], attrs).timings))
    ratio = emu / bare_time
    # the harness passes float16 inputs: the same values, the same bare call (whose input is already rounded)
    x16 = x.astype(np.float16)
    emu16, bare16, pair16, _ = paired(lambda: emulate(BINDINGS, "ScaleBias", [x16], attrs))
    # the input rounded on the device (what runs where the host cannot convert fp16 in hardware)
    host_path = host_fp16.available()
    previous = os.environ.get("KERNELKIT_HOST_FP16")
    os.environ["KERNELKIT_HOST_FP16"] = "0"
    host_fp16.reset()
    cache.PLANS.clear()
    emu_dev, bare_dev, pair_dev, _ = paired(lambda: emulate(BINDINGS, "ScaleBias", [x], attrs))
    if previous is None:
        del os.environ["KERNELKIT_HOST_FP16"]
    else:
        os.environ["KERNELKIT_HOST_FP16"] = previous
    host_fp16.reset()
    cache.PLANS.clear()
    emu_alone = _median_time(lambda: emulate(BINDINGS, "ScaleBias", [x], attrs), args.repeats)
    bare_alone = _median_time(bare, args.repeats)
    for _ in range(3):
        bare_fp16()
    bare_fp16_time = _median_time(bare_fp16, 41)

    # --- bandwidth: kernel time only ----------------------------------------------------------------------
    copy = cl.Kernel(cl.Program(ctx, COPY_KERNEL).build(), "copy")
    src = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=host_in)
    dst = cl.Buffer(ctx, mf.WRITE_ONLY, host_in.nbytes)
    copy.set_args(src, dst)
    kernel.set_args(src, dst, np.float32(0.5), np.float32(0.25))

    def launch(k):
        def run():
            cl.enqueue_nd_range_kernel(queue, k, (n,), (width,))
            queue.finish()
        return run

    for _ in range(3):
        launch(copy)()
        launch(kernel)()
    copy_time, elementwise_time = _round_robin_medians([launch(copy), launch(kernel)], args.repeats)
    moved = 2 * host_in.nbytes
    copy_bw = moved / copy_time / 1e9
    elementwise_bw = moved / elementwise_time / 1e9
    fraction = elementwise_bw / copy_bw

    # --- a generated elementwise kernel (kernels/hard_sigmoid_h, family elementwise), if the build area works --
    generated_line = "| generated hard_sigmoid_h | | not measured: kernelkit.kernel.builder.build is unavailable |"
    try:
        import tempfile

        from kernelkit.kernel.builder.build import build_kernel

        with tempfile.TemporaryDirectory() as folder:
            built = build_kernel(REPO / "kernels" / "hard_sigmoid_h", folder, force=True)
            hs_attrs = {"alpha": 0.2, "beta": 0.5}
            out = emulate(built.xml_path, "HardSigmoidH", [x], hs_attrs).outputs[0]
            xs = x.astype(np.float16).astype(np.float64)
            assert np.allclose(out, np.clip(0.2 * xs + 0.5, 0, 1), atol=2e-3), "generated kernel result is wrong"
            from kernelkit.kernel.bindings import myriad_read
            sizes = myriad_read.load(built.xml_path)[0].kernels[0].work_sizes
            gen_source = shave_source.transform([(str(built.cl_path), built.cl_path.read_text())], "hard_sigmoid_h")
        gen = cl.Kernel(cl.Program(ctx, gen_source).build(options=shave_source.build_options("fp16")),
                        "hard_sigmoid_h")
        gen.set_args(src, dst, np.float32(0.2), np.float32(0.5))
        # the launch geometry the binding asks for, evaluated as the plugin would
        from kernelkit.kernel.bindings import expr
        variables = expr.size_variables(shape, hs_attrs)
        gen_global = tuple(expr.evaluate(e, variables) for e in sizes.global_)
        gen_local = tuple(expr.evaluate(e, variables) for e in sizes.local)

        def run_generated():
            cl.enqueue_nd_range_kernel(queue, gen, gen_global, gen_local)
            queue.finish()

        for _ in range(3):
            run_generated()
        gen_copy_time, gen_time = _round_robin_medians([launch(copy), run_generated], args.repeats)
        gen_bw = moved / gen_time / 1e9
        generated_line = (f"| generated elementwise kernel (hard_sigmoid_h: one item per element, global "
                          f"{gen_global}, local {gen_local}), kernel only | {gen_time * 1e3:.2f} | {gen_bw:.1f} GB/s = "
                          f"**{gen_bw / (moved / gen_copy_time / 1e9):.0%}** of copy timed alongside it "
                          f"(goal >= 50%) |")
    except Exception as exc:      # the benchmark reports what it could not measure
        generated_line = f"| generated hard_sigmoid_h | | not measured: {type(exc).__name__}: {exc} |"

    lines = [
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, {plat.version}, Python {sys.version.split()[0]}",
        f"tensor: {shape} = {n} elements (fp16 on the device, float32 on PoCL); median of {args.repeats} after "
        "warm-up",
        "",
        "| measurement | time (ms) | result |",
        "|---|---|---|",
        f"| bare pyopencl call (upload, launch, read back) | {bare_time * 1e3:.2f} | |",
        f"| emulate() call (plan, worker, guards, poison, checks; input rounded "
        f"{'in the host copy' if host_path else 'on the device'}) | {emu * 1e3:.2f} | overhead ratio "
        f"**{ratio:.2f}x** (goal <= 1.5x); per pair: median {pair_ratio:.2f}x, quartiles "
        f"{pair_quartiles[0]:.2f}-{pair_quartiles[2]:.2f} |",
        f"| emulate() with a float16 input (the harness's dtype) / bare call, paired (context) | "
        f"{emu16 * 1e3:.2f} / {bare16 * 1e3:.2f} | ratio {emu16 / bare16:.2f}x; per pair {pair16:.2f}x |",
        f"| emulate() rounding the input on the device (KERNELKIT_HOST_FP16=0) / bare call, paired (context) | "
        f"{emu_dev * 1e3:.2f} / {bare_dev * 1e3:.2f} | ratio {emu_dev / bare_dev:.2f}x; per pair {pair_dev:.2f}x |",
        f"| emulate() / bare call, each timed on its own back to back (context) | {emu_alone * 1e3:.2f} / "
        f"{bare_alone * 1e3:.2f} | ratio {emu_alone / bare_alone:.2f}x |",
        f"| bare call + fp16 rounding of input and output in numpy (context) | {bare_fp16_time * 1e3:.2f} | "
        f"emulator / this = {emu / bare_fp16_time:.2f}x |",
        f"| copy kernel, kernel only | {copy_time * 1e3:.2f} | {copy_bw:.1f} GB/s |",
        f"| elementwise kernel (scale_bias_neg), kernel only | {elementwise_time * 1e3:.2f} | "
        f"{elementwise_bw:.1f} GB/s = **{fraction:.0%}** of copy (goal >= 50%) |",
        generated_line,
        "",
        f"load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs share them)",
        "",
        "emulate() phases, median over the headline's calls (ms): "
        + ", ".join(f"{k} {statistics.median(t[k] for t in phases[-args.repeats:]) * 1e3:.2f}" for k in phases[-1]),
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
