"""The blob interpreter against OpenVINO CPU f32 on the same model, in the same run.

    .venv/bin/python benchmarks/bench_blob_interpreter.py [--repeat N] [--no-fp16] [--resnet50 BLOB ONNX]

Each model is compiled by the real 2021.4 MYRIAD plugin (`kernelkit toolchain setup`), then timed: OpenVINO
CPU f32 on the model (with its default threads and with one: on a busy machine one can be faster) and the
interpreter on the blob (reading excluded; numpy's BLAS on one thread, as the interpreter sets it) with the
fp32 accumulator, alternately N times after a warm-up; the ratio is the interpreter's median over the faster
OpenVINO median. The interpreter's first run (which also prepares the HW weights it keeps in the loaded
program) is shown apart; max rel. diff compares its output with OpenVINO's. The fp16 accumulator (a running
fp16 sum, a Python loop over taps) is timed once. The issue's goal: within 20x of OpenVINO CPU f32 on ResNet-50
with the fp32 accumulator.

Models: the small CNN of the tests; a ResNet-style stack of 3x3 convs with residual adds at 56x56; RapidOCR's
detector when its ONNX model is in the contracts cache; ResNet-50 (torchvision, random weights, 1x3x224x224)
from the estimate calibration's cache (`tools/estimate_calibration.py` exports and compiles it with the
torch side environment) or the blob and ONNX given with --resnet50. The small nets are built here with random
weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _w(rng, *shape):
    from openvino import opset1

    return opset1.constant((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32))


def resnet_stage(folder: Path):
    """Stem conv 3->64 at 112x112 with a 2x2 pool, then two residual blocks of 3x3 64->64 convs at 56x56."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(0)
    x = opset1.parameter([1, 3, 112, 112], np.float32, name="x")
    y = opset1.relu(opset1.convolution(x, _w(rng, 64, 3, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]))
    y = opset1.max_pool(y, [2, 2], [0, 0], [0, 0], [2, 2], "floor")
    for _ in range(2):
        z = opset1.relu(opset1.convolution(y, _w(rng, 64, 64, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]))
        z = opset1.convolution(z, _w(rng, 64, 64, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1])
        y = opset1.relu(opset1.add(y, z))
    xml = _save(ov.Model([y], [x], "resnet_stage"), folder / "resnet_stage.xml")
    return xml, _compiled(xml, folder), [1, 3, 112, 112]


def small_cnn(folder: Path):
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(1)
    x = opset1.parameter([1, 3, 32, 32], np.float32, name="x")
    y = opset1.relu(opset1.convolution(x, _w(rng, 16, 3, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]))
    y = opset1.max_pool(y, [2, 2], [0, 0], [0, 0], [2, 2], "floor")
    y = opset1.relu(opset1.convolution(y, _w(rng, 32, 16, 3, 3), [2, 2], [1, 1], [1, 1], [1, 1]))
    y = opset1.reshape(y, opset1.constant(np.int64([1, -1])), False)
    y = opset1.matmul(y, _w(rng, 32 * 8 * 8, 10), False, False)
    xml = _save(ov.Model([y], [x], "cnn"), folder / "cnn.xml")
    return xml, _compiled(xml, folder), [1, 3, 32, 32]


def _save(model, xml: Path) -> Path:
    import openvino as ov

    model.set_rt_info(10, "version")
    ov.serialize(model, str(xml), version="IR_V10")
    return xml


def _compiled(source: Path, folder: Path) -> Path:
    from kernelkit.doctor.workflow import compile_folder

    blob = folder / f"{source.parent.name if source.name == 'model.xml' else source.stem}.blob"
    compile_folder(source.parent if source.name == "model.xml" else source, blob)
    return blob


def rapidocr_det(folder: Path):
    from kernelkit.core.paths import cache_dir
    from kernelkit.model.patcher import patch_model

    onnx = cache_dir() / "contracts" / "models" / "rapidocr_det_v4.onnx"
    if not onnx.is_file():
        return None
    patch_model(onnx, folder / "det", "2021.4", input_shapes={"x": [1, 3, 128, 128]})
    xml = folder / "det" / "model.xml"
    return xml, _compiled(xml, folder), [1, 3, 128, 128]


def resnet50(folder: Path, given: list[str] | None):
    """The estimate calibration's ResNet-50 (read only; compiled here when only its ONNX is there)."""
    from kernelkit.core.paths import cache_dir

    if given:
        blob, onnx = Path(given[0]), Path(given[1])
    else:
        root = cache_dir() / "estimate"
        blob, onnx = root / "blobs" / "resnet50_224.blob", root / "models" / "resnet50_224.onnx"
    if not onnx.is_file():
        return None
    if not blob.is_file():
        blob = _compiled(onnx, folder)
    return onnx, blob, [1, 3, 224, 224]


def timed(fns, repeat: int) -> list[float]:
    """Medians of `repeat` runs of each function, after a warm-up, alternated so that a change in the
    machine's load hits all of them."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-fp16", action="store_true", help="skip the fp16 accumulator (slow on ResNet-50)")
    parser.add_argument("--resnet50", nargs=2, metavar=("BLOB", "ONNX"),
                        help="ResNet-50's blob and the ONNX it was compiled from (default: the estimate cache)")
    args = parser.parse_args(argv)
    import openvino as ov

    from kernelkit.runners.blob import interpreter
    from kernelkit.runners.blob.runner import load_program

    print(f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"median of {args.repeat}, alternated")
    print("| model | stages (HW ops) | OpenVINO CPU f32, default threads | 1 thread | interpreter fp32 "
          "(first run) | ratio to the faster CPU | max rel. diff | interpreter fp16 (1 run) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    models = (("small CNN 3x32x32", small_cnn), ("ResNet-style stage 3x112x112", resnet_stage),
              ("RapidOCR det v4 3x128x128", rapidocr_det),
              ("ResNet-50 3x224x224", lambda folder: resnet50(folder, args.resnet50)))
    with tempfile.TemporaryDirectory(prefix="kernelkit-bench-blob-") as tmp:
        for number, (label, make) in enumerate(models):
            folder = Path(tmp) / str(number)
            folder.mkdir()
            made = make(folder)
            if made is None:
                print(f"| {label} | (model not in the cache) | | | | | | | |", flush=True)
                continue
            model, blob, shape = made
            program = load_program(blob)
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            core = ov.Core()
            ir = core.read_model(str(model))
            # OpenVINO's threads wait their turn on a busy machine too: its faster setting is the reference.
            cpu_default = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            cpu_one = core.compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
            outputs = {}
            first = once(lambda: outputs.update(fp32=interpreter.run_program(program, [x], accumulator="fp32")))
            cpu2, cpu1, fp32 = timed([lambda: cpu_default([x]), lambda: cpu_one([x]),
                                      lambda: interpreter.run_program(program, [x])], args.repeat)
            cpu = min(cpu2, cpu1)
            ref = np.asarray(cpu_default([x])[0], np.float64)
            got = np.asarray(next(iter(outputs["fp32"].outputs.values())), np.float64).reshape(ref.shape)
            diff = float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
            fp16 = None if args.no_fp16 else once(lambda: interpreter.run_program(program, [x], accumulator="fp16"))
            hw_ops = sum(len(s.hw_ops) for s in program.stages)
            fp16_cells = "| |" if fp16 is None else f"| {fp16 * 1e3:.0f} ms | {fp16 / cpu:.0f}x |"
            print(f"| {label} | {len(program.stages)} ({hw_ops}) | {cpu2 * 1e3:.2f} ms | {cpu1 * 1e3:.2f} ms | "
                  f"{fp32 * 1e3:.1f} ms ({first * 1e3:.0f} ms) | **{fp32 / cpu:.1f}x** | {diff:.1e} {fp16_cells}",
                  flush=True)
    print(f"load average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
