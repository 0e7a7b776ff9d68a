"""fc_as_conv: the real 2021.4 MYRIAD compiler on MLP layers of real transformers, as FullyConnected (the
plugin's own MatMul conversion) and as the 1x1 Convolution kernelkit patches them into.

    .venv/bin/python benchmarks/bench_fc_as_conv.py [--full]

Each layer is one MatMul with constant weights (random) followed by a Relu, patched for 2021.4 twice, with and
without the fc_as_conv patcher, then compiled by the real plugin (`kernelkit compile`, needs `kernelkit
toolchain setup`). Reported per layer: the blob's stages (all, and hardware ones), the compile wall time of each
form, and the FullyConnected / Convolution ratio of both. `--full` adds ConvNeXt-T's stage-1 MLP (3,136 rows;
its FullyConnected compile takes minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LAYERS = [   # (where it comes from, activation shape, output features)
    ("ViT-B/16 attention output", [1, 197, 768], 768),
    ("ConvNeXt-T stage 3 MLP", [1, 14, 14, 384], 1536),
    ("Swin-T stage 3 window qkv", [4, 49, 384], 1152),
]
FULL = [("ConvNeXt-T stage 1 MLP", [1, 56, 56, 96], 384)]


def mlp_model(path: Path, dims: list[int], features: int) -> Path:
    import openvino as ov
    import openvino.opset8 as ops

    x = ops.parameter(dims, np.float32, name="x")
    w = (np.random.default_rng(0).standard_normal((dims[-1], features)) * 0.05).astype(np.float32)
    y = ops.relu(ops.matmul(x, ops.constant(w), False, False))
    ov.save_model(ov.Model([y], [x], "mlp"), str(path), compress_to_fp16=False)
    return path


def measure(folder: Path) -> dict:
    from kernelkit.myriad import stages
    from kernelkit.doctor.workflow import compile_folder

    blob = folder / "model.bench.blob"
    start = time.perf_counter()
    compile_folder(folder, blob)
    seconds = time.perf_counter() - start
    kinds = [s.type_name for s in stages.read_stages(blob.read_bytes())]
    return {"seconds": seconds, "stages": len(kinds), "hw": kinds.count("MyriadXHwOp")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also the 3,136-row ConvNeXt layer (minutes)")
    args = parser.parse_args(argv)
    from kernelkit.model import patcher
    from kernelkit.model.patcher import patch_model

    print("| layer | rows | FC stages (HW) | conv stages (HW) | FC compile | conv compile | stages FC/conv | compile FC/conv |")
    print("|---|---|---|---|---|---|---|---|")
    for label, dims, features in LAYERS + (FULL if args.full else []):
        with tempfile.TemporaryDirectory(prefix="kernelkit-bench-fc-") as tmp:
            model = mlp_model(Path(tmp) / "mlp.xml", dims, features)
            patch_model(model, Path(tmp) / "conv", "2021.4")
            passes, patcher.PASSES = patcher.PASSES, tuple(p for p in patcher.PASSES if p.name != "fc_as_conv")
            try:
                patch_model(model, Path(tmp) / "fc", "2021.4")
            finally:
                patcher.PASSES = passes
            fc, conv = measure(Path(tmp) / "fc"), measure(Path(tmp) / "conv")
        rows = int(np.prod(dims[:-1]))
        print(f"| {label} `{dims} x [{dims[-1]}, {features}]` | {rows} | {fc['stages']} ({fc['hw']}) | "
              f"{conv['stages']} ({conv['hw']}) | {fc['seconds']:.2f} s | {conv['seconds']:.2f} s | "
              f"{fc['stages'] / conv['stages']:.0f}× | {fc['seconds'] / conv['seconds']:.0f}× |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
