"""`kernelkit estimate BLOB_OR_OUTDIR [--shaves N] [--threads 1|2] [--json]`: latency, FPS and memory on an OAK."""

from __future__ import annotations

NAME = "estimate"
HELP = "how fast and how big a blob is on an OAK (RVC2): latency, FPS, per-stage breakdown, DDR and CMX memory"
DESCRIPTION = (HELP + ". The estimate reads the compiled blob (HW engine work, SHAVE stages, DMA, stage count) and "
               "applies rates fitted on Luxonis's published RVC2 table (docs/estimate.md: its error on rows it did "
               "not see). Exit 0 it fits the device, 1 it does not fit (DDR or CMX), 2 bad input.")
ORDER = 46
TOP = 10


def add_arguments(parser):
    parser.add_argument("blob", metavar="BLOB_OR_OUTDIR",
                        help="a .blob (kernelkit compile), or a patch folder holding model.blob")
    parser.add_argument("--shaves", type=int, default=None,
                        help="SHAVEs the NeuralNetwork node runs the blob on (default: the blob's own)")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=2,
                        help="inference threads (DepthAI's default and the published table's: 2)")
    parser.add_argument("--json", action="store_true", help="print the whole estimate as JSON")


def run(args) -> int:
    import json

    from kernelkit.api import estimate

    est = estimate(args.blob, shaves=args.shaves, threads=args.threads)
    if args.json:
        print(json.dumps(est.to_dict(), indent=1))
    else:
        print("\n".join(format_estimate(est)))
    return 0 if est.memory["ddr"]["fits"] and est.memory["cmx"]["fits"] else 1


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def format_estimate(est, top: int = TOP) -> list[str]:
    parts = est.parts
    total = est.latency_s
    shaves = f"{est.shaves} SHAVEs" + (f" (compiled for {est.blob_shaves})" if est.shaves != est.blob_shaves else "")
    lines = [f"blob: {est.path}",
             f"OAK (RVC2), {shaves}, {est.threads} inference thread{'s' if est.threads > 1 else ''}:",
             f"  latency {total * 1e3:.1f} ms, {est.fps:.1f} FPS (fitted on the published RVC2 table; "
             "docs/estimate.md has its held-out error)",
             "  " + ", ".join(f"{p} {v * 1e3:.2f} ms ({v / total * 100:.0f} %)" for p, v in parts.items()),
             f"top {min(top, len(est.stages))} of {len(est.stages)} stages by time "
             "(index, type, ms: engine / SHAVE / DMA / fixed, IR layers):"]
    for row in est.top(top):
        layers = ", ".join(f"{n} ({t})" for n, t in row.layers[:3]) + (" ..." if len(row.layers) > 3 else "")
        lines.append(f"  {row.index:>4}{'+' if row.injected else ' '} {row.type:<14} {row.seconds * 1e3:7.3f}  "
                     f"{row.engine * 1e3:.3f} / {row.shave * 1e3:.3f} / {row.dma * 1e3:.3f} / {row.fixed * 1e3:.3f}"
                     + (f"  {layers}" if layers else ""))
    enough, curve = est.enough_shaves, est.shave_curve
    lines.append(f"SHAVEs: {enough} come within 5 % of 16's latency ({curve[enough] * 1e3:.1f} ms against "
                 f"{curve[16] * 1e3:.1f} ms): `kernelkit compile --shaves {enough}` leaves the other SHAVEs to the "
                 "pipeline (engine tiling as compiled; a recompile re-tiles)")
    ddr, cmx = est.memory["ddr"], est.memory["cmx"]
    lines += [f"DDR: needs {_mib(ddr['need_bytes'])} of the {_mib(ddr['heap_bytes'])} an idle OAK leaves a "
              f"pipeline ({ddr['share_of_heap'] * 100:.0f} %): blob {_mib(ddr['blob_bytes'])} "
              f"(weights/const {_mib(ddr['weights_bytes'])}), per thread BSS {_mib(ddr['bss_bytes'])} + I/O "
              f"{_mib(ddr['inputs_bytes'] + ddr['outputs_bytes'])} x {ddr['threads']}, output pool "
              f"{ddr['output_pool_frames']} x {_mib(ddr['outputs_bytes'])}"]
    if not ddr["fits"]:
        lines += [f"  DOES NOT FIT; the device says: {ddr['device_message']}",
                  f"  what to change: {ddr['what_to_change']}"]
    lines.append(f"CMX: peak {cmx['peak_bytes'] / 1024:.0f} KiB (stage {cmx['peak_stage']}) of "
                 f"{cmx['bytes'] / 1024:.0f} KiB ({cmx['slices']} slices)")
    if not cmx["fits"]:
        lines += [f"  DOES NOT FIT in {len(cmx['stages_over'])} stage(s); the device says: {cmx['device_message']}",
                  f"  what to change: {cmx['what_to_change']}"]
    return lines
