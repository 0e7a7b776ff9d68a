"""IR layer speed: inspect (load + find_blockers) and patch (load + edits + save) vs OpenVINO's read_model.

    .venv/bin/python benchmarks/bench_ir.py [--sizes 1000 10000 50000] [--repeat 3] [--markdown]

Synthetic IR v11 models: a chain of Add(bias Const) -> Relu -> Sigmoid blocks on [1,16] f32, and every
tenth block a side branch Convert(i32) -> Greater(i32 Const) -> Result, which is the seed's precision
blocker. "patch" inserts a Convert to f32 in front of both inputs of every Greater (what the precision
patcher does) and saves .xml + .bin. Every time is the best of --repeat runs, in process CPU seconds
(the benchmark host is shared, so wall time is noisy); ratios are against `openvino.Core().read_model`
of the same file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH = 16


def synthetic_ir(n_layers: int, folder: Path) -> Path:
    """Write an IR of at least n_layers layers; returns the .xml path."""
    dims = "".join(f"<dim>{d}</dim>" for d in (1, WIDTH))
    layers, edges, weights = [], [], bytearray()
    next_id = 0

    def layer(kind, name, data=None, inputs=(), outputs=()):
        nonlocal next_id
        lid = next_id
        next_id += 1
        parts = [f'\t\t<layer id="{lid}" name="{name}" type="{kind}" version="opset1">']
        if data:
            parts.append("\t\t\t<data " + " ".join(f'{k}="{v}"' for k, v in data.items()) + " />")
        port = 0
        for group, precisions in (("input", inputs), ("output", outputs)):
            if precisions:
                parts.append(f"\t\t\t<{group}>")
                for precision in precisions:
                    parts.append(f'\t\t\t\t<port id="{port}" precision="{precision}">{dims}</port>')
                    port += 1
                parts.append(f"\t\t\t</{group}>")
        parts.append("\t\t</layer>")
        layers.append("\n".join(parts))
        return lid

    def const(name, array):
        offset = len(weights)
        weights.extend(array.tobytes())
        etype = {"float32": "f32", "int32": "i32"}[array.dtype.name]
        precision = {"f32": "FP32", "i32": "I32"}[etype]
        return layer("Const", name, {"element_type": etype, "shape": f"1, {WIDTH}", "offset": offset,
                                     "size": array.nbytes}, outputs=[precision])

    def edge(src, src_port, dst, dst_port):
        edges.append(f'\t\t<edge from-layer="{src}" from-port="{src_port}" to-layer="{dst}" to-port="{dst_port}" />')

    prev = layer("Parameter", "x", {"shape": f"1,{WIDTH}", "element_type": "f32"}, outputs=["FP32"])
    prev_port, block = 0, 0
    rng = np.random.default_rng(0)
    while next_id < n_layers - 1:
        bias = const(f"bias{block}", rng.standard_normal((1, WIDTH)).astype(np.float32))
        add = layer("Add", f"add{block}", {"auto_broadcast": "numpy"}, ["FP32", "FP32"], ["FP32"])
        edge(prev, prev_port, add, 0)
        edge(bias, 0, add, 1)
        relu = layer("ReLU", f"relu{block}", None, ["FP32"], ["FP32"])
        edge(add, 2, relu, 0)
        sig = layer("Sigmoid", f"sig{block}", None, ["FP32"], ["FP32"])
        edge(relu, 1, sig, 0)
        if block % 10 == 0:
            conv = layer("Convert", f"to_int{block}", {"destination_type": "i32"}, ["FP32"], ["I32"])
            edge(sig, 1, conv, 0)
            limit = const(f"limit{block}", np.full((1, WIDTH), 1, np.int32))
            gt = layer("Greater", f"gt{block}", {"auto_broadcast": "numpy"}, ["I32", "I32"], ["BOOL"])
            edge(conv, 1, gt, 0)
            edge(limit, 0, gt, 1)
            res = layer("Result", f"gt{block}/sink_port_0", None, ["BOOL"])
            edge(gt, 2, res, 0)
        prev, prev_port, block = sig, 1, block + 1
    res = layer("Result", "out/sink_port_0", None, ["FP32"])
    edge(prev, prev_port, res, 0)
    xml = ('<?xml version="1.0"?>\n<net name="synthetic" version="11">\n\t<layers>\n' + "\n".join(layers) +
           "\n\t</layers>\n\t<edges>\n" + "\n".join(edges) + "\n\t</edges>\n</net>\n")
    path = folder / f"synthetic_{n_layers}.xml"
    path.write_text(xml)
    path.with_suffix(".bin").write_bytes(bytes(weights))
    return path


def inspect_once(path: Path):
    from kernelkit.model.blockers import find_blockers
    from kernelkit.ir.load import load_model

    return find_blockers(load_model(path), "2021.4")


def patch_once(path: Path, out: Path) -> int:
    from kernelkit.ir.load import load_model

    model = load_model(path)
    edits = 0
    for layer in [l for l in model.layers if l.type == "Greater"]:
        for port in layer.inputs:
            edge = model.input_edge(layer, port.id)
            src = model.layer(edge.from_layer)
            model.disconnect(edge)
            conv = model.add_layer("Convert", "opset1", model.unique_name(f"{layer.name}/to_f32"),
                                   {"destination_type": "f32"}, inputs=[("I32", port.dims)],
                                   outputs=[("FP32", port.dims)], after=layer)
            model.connect(src, edge.from_port, conv, conv.inputs[0].id)
            model.connect(conv, conv.outputs[0].id, layer, port.id)
            port.precision = "FP32"
            edits += 1
    model.save(out)
    return edits


def best_of(repeat: int, fn, *args) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = fn(*args)
        best = min(best, time.process_time() - start)
    return best, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    import openvino as ov

    core = ov.Core()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kernelkit-bench-") as tmp:
        folder = Path(tmp)
        for n in args.sizes:
            path = synthetic_ir(n, folder)
            layers = path.read_text().count("<layer ")
            t_ov, _ = best_of(args.repeat, lambda: core.read_model(str(path)))
            t_inspect, blockers = best_of(args.repeat, inspect_once, path)
            t_patch, edits = best_of(args.repeat, patch_once, path, folder / f"patched_{n}.xml")
            patched = core.read_model(str(folder / f"patched_{n}.xml"))        # the patch must stay readable
            assert len(patched.get_ordered_ops()) >= layers
            rows.append((layers, len(blockers), edits, t_ov, t_inspect, t_patch))
            print(f"{layers} layers done", file=sys.stderr)
    header = ("layers", "blockers", "patch edits", "OV read_model cpu s", "inspect cpu s", "inspect/OV",
              "patch cpu s", "patch/OV", "inspect µs/layer", "patch µs/layer")
    lines = []
    for layers, nb, edits, t_ov, t_i, t_p in rows:
        lines.append((f"{layers}", f"{nb}", f"{edits}", f"{t_ov:.3f}", f"{t_i:.3f}", f"{t_i / t_ov:.2f}",
                      f"{t_p:.3f}", f"{t_p / t_ov:.2f}", f"{t_i / layers * 1e6:.1f}", f"{t_p / layers * 1e6:.1f}"))
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
        print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(v.rjust(w) for v, w in zip(line, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
