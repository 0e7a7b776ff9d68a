"""The blob interpreter against OpenVINO CPU f32 on the same model, in the same run.

    .venv/bin/python benchmarks/bench_blob_interpreter.py [--repeat N]

Each model is built here (random weights), compiled by the real 2021.4 MYRIAD plugin (`kernelkit toolchain
setup`), then timed: OpenVINO CPU f32 on the IR (one inference after a warm-up) and the interpreter on the
blob (reading excluded), once with the fp32 and once with the fp16 accumulator; the median of N runs. The
issue's goal is within 20x of OpenVINO CPU f32 on ResNet-50 with the fp32 accumulator; this reports the ratio
on what can be built without torch: a ResNet-style stack of 3x3 convs with residual adds at 56x56, the small
CNN of the tests, and RapidOCR's detector when its ONNX model is in the contracts cache.
"""

from __future__ import annotations

import argparse
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


def resnet_stage(folder: Path) -> tuple[Path, list[int]]:
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
    xml = folder / "resnet_stage.xml"
    return _save(ov.Model([y], [x], "resnet_stage"), xml), [1, 3, 112, 112]


def small_cnn(folder: Path) -> tuple[Path, list[int]]:
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(1)
    x = opset1.parameter([1, 3, 32, 32], np.float32, name="x")
    y = opset1.relu(opset1.convolution(x, _w(rng, 16, 3, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]))
    y = opset1.max_pool(y, [2, 2], [0, 0], [0, 0], [2, 2], "floor")
    y = opset1.relu(opset1.convolution(y, _w(rng, 32, 16, 3, 3), [2, 2], [1, 1], [1, 1], [1, 1]))
    y = opset1.reshape(y, opset1.constant(np.int64([1, -1])), False)
    y = opset1.matmul(y, _w(rng, 32 * 8 * 8, 10), False, False)
    return _save(ov.Model([y], [x], "cnn"), folder / "cnn.xml"), [1, 3, 32, 32]


def _save(model, xml: Path) -> Path:
    import openvino as ov

    model.set_rt_info(10, "version")
    ov.serialize(model, str(xml), version="IR_V10")
    return xml


def rapidocr_det(folder: Path):
    from kernelkit.core.paths import cache_dir
    from kernelkit.model.patcher import patch_model

    onnx = cache_dir() / "contracts" / "models" / "rapidocr_det_v4.onnx"
    if not onnx.is_file():
        return None
    patch_model(onnx, folder / "det", "2021.4", input_shapes={"x": [1, 3, 128, 128]})
    return folder / "det" / "model.xml", [1, 3, 128, 128]


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import openvino as ov

    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.runners.blob import interpreter
    from kernelkit.runners.blob.runner import load_program

    print("| model | stages (HW ops) | OpenVINO CPU f32 | interpreter fp32 | ratio | interpreter fp16 | ratio |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="kernelkit-bench-blob-") as tmp:
        for label, make in (("small CNN 3x32x32", small_cnn), ("ResNet-style stage 3x112x112", resnet_stage),
                            ("RapidOCR det v4 3x128x128", rapidocr_det)):
            made = make(Path(tmp))
            if made is None:
                print(f"| {label} | (model not in the contracts cache) | | | | | |")
                continue
            xml, shape = made
            blob = Path(tmp) / f"{xml.stem}-{len(label)}.blob"
            compile_folder(xml.parent if xml.name == "model.xml" else xml, blob)
            program = load_program(blob)
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            cpu = timed(lambda: compiled([x]), args.repeat)
            fp32 = timed(lambda: interpreter.run_program(program, [x], accumulator="fp32"), args.repeat)
            fp16 = timed(lambda: interpreter.run_program(program, [x], accumulator="fp16"), args.repeat)
            hw_ops = sum(len(s.hw_ops) for s in program.stages)
            print(f"| {label} | {len(program.stages)} ({hw_ops}) | {cpu * 1e3:.2f} ms | {fp32 * 1e3:.1f} ms | "
                  f"{fp32 / cpu:.0f}x | {fp16 * 1e3:.0f} ms | {fp16 / cpu:.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
