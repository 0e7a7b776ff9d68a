"""The blob interpreter (kernelkit.runners.blob) on real blobs compiled here by the real MYRIAD 2021.4 plugin.

Each software stage type alone, the engine's HW ops and a small CNN against OpenVINO CPU f32 on the same IR;
junk poisoning of BSS/CMX; re-tiling invariance; the overflow check on a model built to overflow.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from myriad_models import require_toolchain, save_ir

RNG = np.random.default_rng(7)
S4 = [1, 4, 6, 8]


def _w(*shape, std=None):
    from openvino import opset1

    std = std if std is not None else 1.0 / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else 1)
    return opset1.constant((RNG.standard_normal(shape) * std).astype(np.float32))


def _conv(ic, oc, k, stride=1, *, relu=False, bias=False, wstd=None, leaky=None, clamp=None, hw=16):
    def build(x):
        from openvino import opset1

        y = opset1.convolution(x, _w(oc, ic, k, k, std=wstd), [stride] * 2, [k // 2] * 2, [k // 2] * 2, [1, 1])
        if bias:
            y = opset1.add(y, _w(1, oc, 1, 1, std=1.0))
        if relu:
            y = opset1.relu(y)
        if leaky:
            y = opset1.prelu(y, opset1.constant(np.float32([leaky])))
        if clamp:
            y = opset1.clamp(y, 0.0, clamp)
        return y
    return build, [[1, ic, hw, hw]]


def _cnn(x):
    """conv-bn-relu-pool, a strided conv, flatten, FC: the plugin fuses the BN and runs CONV_POOL and FC on HW."""
    from openvino import opset1

    def positive(n):
        return opset1.constant((np.abs(RNG.standard_normal(n)) + 0.5).astype(np.float32))

    y = opset1.convolution(x, _w(16, 3, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1])
    y = opset1.batch_norm_inference(y, positive(16), _w(16, std=1.0), _w(16, std=1.0), positive(16), 1e-5)
    y = opset1.max_pool(opset1.relu(y), [2, 2], [0, 0], [0, 0], [2, 2], "floor")
    y = opset1.relu(opset1.convolution(y, _w(32, 16, 3, 3), [2, 2], [1, 1], [1, 1], [1, 1]))
    y = opset1.reshape(y, opset1.constant(np.int64([1, -1])), False)
    return opset1.matmul(y, _w(32 * 8 * 8, 10, std=0.02), False, False)


def _deep(x):
    """Three 3x3 convs (+bias, ReLU) and a pool on 64x64: big enough that SHAVE and CMX settings re-tile it."""
    from openvino import opset1

    y = x
    for ic, oc in ((3, 32), (32, 64), (64, 64)):
        y = opset1.convolution(y, _w(oc, ic, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1])
        y = opset1.relu(opset1.add(y, _w(1, oc, 1, 1, std=0.1)))
    y = opset1.max_pool(y, [2, 2], [0, 0], [0, 0], [2, 2], "floor")
    return opset1.convolution(y, _w(16, 64, 1, 1), [1, 1], [0, 0], [0, 0], [1, 1])


def _bottleneck(x):
    """A ResNet-50 bottleneck with a strided projection, then an average pool: the stage kinds of ResNet-50
    (1x1 and 3x3 HW convs at strides 1 and 2 in channel blocks, the residual Sum, ReLU, Copy, a HW pool)."""
    from openvino import opset1

    def conv(y, ic, oc, k, stride, relu=True):
        y = opset1.convolution(y, _w(oc, ic, k, k), [stride] * 2, [k // 2] * 2, [k // 2] * 2, [1, 1])
        y = opset1.add(y, _w(1, oc, 1, 1, std=0.1))
        return opset1.relu(y) if relu else y

    a = conv(conv(conv(x, 64, 64, 1, 1), 64, 64, 3, 2), 64, 256, 1, 1, relu=False)
    y = opset1.relu(opset1.add(a, conv(x, 64, 256, 1, 2, relu=False)))
    return opset1.avg_pool(y, [1, 1], [0, 0], [0, 0], [14, 14], True, "floor")


HW_OFF = {"config": {"MYRIAD_ENABLE_HW_ACCELERATION": "NO"}}


def _interp(mode, align=False):
    def build(x):
        from openvino import opset1

        return opset1.interpolate(x, opset1.constant(np.int64([12, 16])),
                                  {"axes": [2, 3], "mode": mode, "align_corners": align, "antialias": False,
                                   "pads_begin": [0], "pads_end": [0]})
    return build


def _ops():
    import openvino as ov
    from openvino import opset1, opset8

    return {
        # name: (builder, input shapes, stage type codes the blob must hold[, compile options])
        "sum": (lambda a, b: opset1.add(a, b), [S4, S4], {12}),
        "prod": (lambda a, b: opset1.multiply(a, b), [S4, S4], {13}),
        "max": (lambda a, b: opset1.maximum(a, b), [S4, S4], {14}),
        "min": (lambda a, b: opset1.minimum(a, b), [S4, S4], {76}),
        "div": (lambda a, b: opset1.divide(a, b), [S4, S4], {13, 26}),     # the plugin's a * b**-1
        "sub": (lambda a, b: opset1.subtract(a, b), [S4, S4], {12, 26}),
        "relu": (lambda a: opset1.relu(a), [S4], {6}),
        "leaky_relu": (lambda a: opset1.prelu(a, opset1.constant(np.float32([0.1]))), [S4], {44}),
        "sigmoid": (lambda a: opset1.sigmoid(a), [S4], {20}),
        "tanh": (lambda a: opset1.tanh(a), [S4], {21}),
        "exp": (lambda a: opset1.exp(a), [S4], {101}),
        "floor": (lambda a: opset1.floor(a), [S4], {102}),
        "clamp": (lambda a: opset1.clamp(a, -0.5, 0.7), [S4], {57}),
        "power": (lambda a: opset1.add(opset1.multiply(a, opset1.constant(np.float32(1.5))),
                                       opset1.constant(np.float32(0.25))), [S4], {26}),
        "softmax": (lambda a: opset1.softmax(a, 1), [S4], {3}),
        "mvn": (lambda a: opset8.mvn(a, opset1.constant(np.int64([2, 3])), True, 1e-5, "inside_sqrt"), [S4], {62}),
        # axes with W and not H: the stage's across_width, one row at a time (a LayerNormalization's MVN)
        "mvn_last_axis": (lambda a: opset8.mvn(a, opset1.constant(np.int64([3])), True, 1e-5, "outside_sqrt"), [S4],
                          {62}),
        "mvn_last_axis_3d": (lambda a: opset8.mvn(a, opset1.constant(np.int64([2])), True, 1e-6, "outside_sqrt"),
                             [[1, 6, 8]], {62}),
        "gemm": (lambda a, b: opset1.matmul(a, b, False, True), [[1, 2, 5, 7], [1, 2, 6, 7]], {91}),
        "permute": (lambda a: opset1.transpose(a, opset1.constant(np.int64([0, 2, 3, 1]))), [S4], {34}),
        "pad": (lambda a: opset1.pad(a, opset1.constant(np.int64([0, 0, 1, 2])),
                                     opset1.constant(np.int64([0, 0, 2, 1])), "constant",
                                     opset1.constant(np.float32(0.5))), [S4], {71}),
        "gather": (lambda a: ov.opset7.gather(a, opset1.constant(np.int32([3, 0, 2])), opset1.constant(np.int64(3))),
                   [S4], {100}),
        "resample_nearest": (_interp("nearest"), [S4], {72}),
        "interp_linear": (_interp("linear"), [S4], {67}),
        "sw_avgpool": (lambda a: opset1.avg_pool(a, [2, 2], [1, 1], [1, 1], [3, 3], True, "floor"), [[1, 4, 9, 9]],
                       {2}),
        "sw_dilated_conv": (lambda a: opset1.convolution(a, _w(4, 4, 3, 3), [1, 1], [2, 2], [2, 2], [2, 2]),
                            [[1, 4, 9, 9]], {0}),
        "hswish": (lambda a: ov.opset4.hswish(a), [S4], {137}),
        "gelu": (lambda a: ov.opset2.gelu(a), [S4], {132}),
        "swish": (lambda a: ov.opset4.swish(a), [S4], {135}),
        "round": (lambda a: ov.opset5.round(a, "half_to_even"), [S4], {140}),
        "concat": (lambda a, b: opset1.concat([a, b], 1), [S4, S4], {19}),
        "broadcast_tile": (lambda a: opset1.broadcast(a, opset1.constant(np.int64([1, 4, 6, 8]))), [[1, 4, 1, 8]],
                           {28}),
        "tile": (lambda a: opset1.tile(a, opset1.constant(np.int64([1, 1, 2, 1]))), [S4], {28}),
        "strided_slice": (lambda a: opset1.strided_slice(a, opset1.constant(np.int64([0, 1, 1, 0])),
                                                         opset1.constant(np.int64([1, 4, 6, 8])),
                                                         opset1.constant(np.int64([1, 1, 2, 3])), [0] * 4, [0] * 4),
                          [S4], {133}),
        "convert_i32": (lambda a: opset1.convert(a, "i32"), [S4], {111}),
        "log": (lambda a: opset1.log(opset1.sigmoid(a)), [S4], {92}),
        "elu": (lambda a: opset1.elu(a, 0.7), [S4], {23}),
        "prelu_per_channel": (lambda a: opset1.prelu(a, opset1.constant(np.float32([0.1, 0.2, 0.3, 0.4])
                                                                         .reshape(1, 4, 1, 1))), [S4], {10}),
        "scale_shift": (lambda a: opset1.add(opset1.multiply(a, _w(1, 4, 1, 1, std=1.0)), _w(1, 4, 1, 1, std=1.0)),
                        [S4], {47}),
        "softmax_innermost": (lambda a: opset1.softmax(a, 3), [S4], {3}),
        "gemm_transpose_a_3d": (lambda a, b: opset1.matmul(a, b, True, False), [[2, 7, 5], [2, 7, 6]], {91}),
        "permute_3d": (lambda a: opset1.transpose(a, opset1.constant(np.int64([2, 0, 1]))), [[3, 5, 7]], {34}),
        "interp_align_corners": (_interp("linear", align=True), [S4], {67}),
        "broadcast_bidirectional": (lambda a: ov.opset3.broadcast(a, opset1.constant(np.int64([1, 4, 6, 8])),
                                                                  "bidirectional"), [[1, 1, 6, 1]], {28}),
        "select_greater": (lambda a, b: opset1.select(opset1.greater(a, b), a, b), [S4, S4], {80, 90}),
        "logical_and_less": (lambda a, b: opset1.convert(opset1.logical_and(
            opset1.greater(a, b), opset1.less(a, opset1.constant(np.float32(0.5)))), "f32"), [S4, S4], {82, 85}),
        "squared_diff": (lambda a, b: opset1.squared_difference(a, b), [S4, S4], {77}),
        "pow": (lambda a, b: opset1.power(opset1.sigmoid(a), b), [S4, S4], {88}),
        "floor_mod": (lambda a, b: opset1.floor_mod(a, opset1.add(opset1.sigmoid(b), opset1.constant(np.float32(0.5)))),
                      [S4, S4], {89}),
        "erf": (lambda a: opset1.erf(a), [S4], {110}),
        "mish": (lambda a: ov.opset4.mish(a), [S4], {131}),
        "softplus": (lambda a: ov.opset4.softplus(a), [S4], {134}),
        "ceiling": (lambda a: opset1.ceiling(a), [S4], {138}),
        "reduce_min": (lambda a: opset1.reduce_min(a, opset1.constant(np.int64([1])), True), [S4], {105}),
        "sum_i32": (lambda a, b: opset1.convert(opset1.add(opset1.convert(a, "i32"), opset1.convert(b, "i32")), "f32"),
                    [S4, S4], {12}),
        "topk_values": (lambda a: opset1.topk(a, opset1.constant(np.int64(3)), 1, "max", "value").output(0),
                        [[1, 8, 4, 4]], {104}),
        "lrn": (lambda a: opset1.lrn(a, opset1.constant(np.int64([1])), 0.0001, 0.75, 1.0, 5), [[1, 8, 4, 4]], {11}),
        "deconv_upsampling": (lambda a: opset1.convolution_backprop_data(
            a, _w(8, 4, 3, 3), strides=[2, 2], pads_begin=[1, 1], pads_end=[1, 1], dilations=[1, 1]),
            [[1, 8, 8, 8]], {73}),               # zero insertion, then a HW conv
        # a single output stays a software FC with HW on (2 or more become the HW conv; MediaPipe's hand flags)
        "fc_single_output": (lambda a: opset1.matmul(a, _w(672, 1), False, False), [[1, 672]], {4}),
        # HW off: FC over a 4D input, which the plugin permutes to HWC (weights [HW][IC][OC])
        "fc_4d_hw_off": (lambda a: opset1.matmul(opset1.reshape(a, opset1.constant(np.int64([1, -1])), False),
                                                 _w(60, 7), False, False), [[1, 4, 3, 5]], {4}, HW_OFF),
        # HW acceleration off: the software convolutions and pooling, in the plugin's HWC layout
        "sw_conv3x3": (lambda a: opset1.convolution(a, _w(32, 16, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]),
                       [[1, 16, 12, 12]], {0}, HW_OFF),
        "sw_conv_im2col_5x5": (lambda a: opset1.convolution(a, _w(32, 16, 5, 5), [1, 1], [2, 2], [2, 2], [1, 1]),
                               [[1, 16, 12, 12]], {49}, HW_OFF),
        "sw_depthwise": (lambda a: opset1.group_convolution(a, _w(8, 1, 1, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1]),
                         [[1, 8, 12, 12]], {8}, HW_OFF),
        "sw_maxpool_pad": (lambda a: opset1.max_pool(a, [2, 2], [1, 1], [1, 1], [3, 3], "floor"), [[1, 8, 12, 12]],
                           {1}, HW_OFF),
    }


HW_MODELS = {
    "conv3x3_3to16_relu": (*_conv(3, 16, 3, relu=True, hw=32), "CONV"),
    "conv3x3_16to32_s2_bias": (*_conv(16, 32, 3, 2, bias=True, hw=32), "CONV"),
    "conv1x1_64to128_relu_bias": (*_conv(64, 128, 1, relu=True, bias=True), "CONV"),
    "conv3x3_256to256_relu": (*_conv(256, 256, 3, relu=True, hw=14), "CONV"),
    "conv3x3_leaky_relu": (*_conv(32, 32, 3, leaky=0.1), "CONV"),
    "conv3x3_relu6": (*_conv(32, 32, 3, clamp=6.0), "CONV"),
    "conv_pool": (lambda a: __import__("openvino").opset1.max_pool(
        __import__("openvino").opset1.relu(__import__("openvino").opset1.convolution(
            a, _w(32, 32, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1])), [2, 2], [0, 0], [0, 0], [2, 2], "floor"),
        [[1, 32, 16, 16]], "CONV_POOL"),
    "maxpool": (lambda a: __import__("openvino").opset1.max_pool(a, [2, 2], [0, 0], [0, 0], [2, 2], "floor"),
                [[1, 16, 16, 16]], "POOL"),
    "maxpool_3x3_s2": (lambda a: __import__("openvino").opset1.max_pool(a, [2, 2], [0, 0], [0, 0], [3, 3], "floor"),
                       [[1, 4, 9, 9]], "POOL"),
    "avgpool": (lambda a: __import__("openvino").opset1.avg_pool(a, [2, 2], [0, 0], [0, 0], [2, 2], True, "floor"),
                [[1, 16, 16, 16]], "POOL"),
    "avgpool_3x3_pad": (lambda a: __import__("openvino").opset1.avg_pool(a, [1, 1], [1, 1], [1, 1], [3, 3], False,
                                                                          "floor"), [[1, 16, 12, 12]], "POOL"),
    "maxpool_3x3_pad": (lambda a: __import__("openvino").opset1.max_pool(a, [1, 1], [1, 1], [1, 1], [3, 3], "floor"),
                        [[1, 16, 12, 12]], "POOL"),
    "reduce_max_as_pool": (lambda a: __import__("openvino").opset1.reduce_max(
        a, __import__("openvino").opset1.constant(np.int64([1])), True), [S4], "POOL"),
    "fc": (lambda a: __import__("openvino").opset1.matmul(a, _w(64, 10, std=0.125), False, False), [[1, 64]], "CONV"),
}


class Blobs:
    """Compiles each (model, settings) once per session."""

    def __init__(self, root: Path):
        self.root = root
        self.cache = {}

    def get(self, name: str, build, shapes, **compile_options):
        key = (name, repr(sorted(compile_options.items())))
        if key not in self.cache:
            import openvino as ov
            from openvino import opset1

            from kernelkit.myriad.compile import compile_model

            require_toolchain()
            global RNG
            RNG = np.random.default_rng(zlib.crc32(name.encode()))     # the same weights for every compile
            folder = self.root / f"{name}-{len(self.cache)}"
            folder.mkdir()
            xml = folder / f"{name}.xml"
            if not xml.exists():
                params = [opset1.parameter(s, np.float32, name=f"x{i}") for i, s in enumerate(shapes)]
                outs = build(*params)
                save_ir(ov.Model(list(outs) if isinstance(outs, (list, tuple)) else [outs], params, name), xml)
            blob = folder / f"{name}.blob"
            compile_model(xml, blob, **compile_options)
            self.cache[key] = (xml, blob)
        return self.cache[key]


@pytest.fixture(scope="session")
def blobs(tmp_path_factory):
    return Blobs(tmp_path_factory.mktemp("blob-interpreter"))


def cpu_f32(xml: Path, inputs):
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    return OpenVINOCPURunner(xml.read_bytes(), xml.with_suffix(".bin").read_bytes()).run(inputs).arrays


def random_inputs(shapes, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in shapes]


def rel_error(got, ref) -> float:
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64).reshape(ref.shape)
    return float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-6))


def stage_codes(program) -> set[int]:
    return {s.type_code for s in program.stages} | {s.injected.type_code for s in program.stages if s.injected}


# --- software stages, one at a time ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(_ops()))
def test_software_stage_matches_openvino_cpu(blobs, name):
    from kernelkit.runners.blob.runner import BlobRunner

    build, shapes, codes, *options = _ops()[name]
    xml, blob = blobs.get(name, build, shapes, **(options[0] if options else {}))
    runner = BlobRunner(blob)
    assert codes <= stage_codes(runner.program), f"the blob lacks stage types {codes - stage_codes(runner.program)}"
    inputs = random_inputs(shapes)
    if name == "div":
        inputs[1] = np.where(np.abs(inputs[1]) < 0.25, 0.25, inputs[1]).astype(np.float32)
    result = runner.run(inputs)
    (ref,) = cpu_f32(xml, inputs)
    assert not result.failures
    # One fp16 rounding of the input and one of the output: about 2**-11 of the signal each.
    assert rel_error(result.arrays[0], ref) < 2e-3


# --- the engine's HW ops ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(HW_MODELS))
def test_hw_op_matches_openvino_cpu(blobs, name):
    from kernelkit.runners.blob.runner import BlobRunner

    build, shapes, op_name = HW_MODELS[name]
    xml, blob = blobs.get(name, build, shapes)
    runner = BlobRunner(blob)
    ops = [op.name.split()[0] for s in runner.program.stages for op in s.hw_ops]
    assert op_name in ops, f"the blob's HW ops are {ops}"
    inputs = random_inputs(shapes)
    (ref,) = cpu_f32(xml, inputs)
    for accumulator, bound in (("fp32", 2e-3), ("fp16", 3e-2)):
        result = BlobRunner(runner.program, accumulator=accumulator).run(inputs)
        assert not result.failures
        assert rel_error(result.arrays[0], ref) < bound, accumulator


def test_hw_conv_with_many_output_blocks_uses_channel_offsets(blobs):
    from kernelkit.runners.blob.runner import BlobRunner

    build, shapes, _ = HW_MODELS["conv3x3_256to256_relu"]
    _, blob = blobs.get("conv3x3_256to256_relu", build, shapes)
    ops = [op for s in BlobRunner(blob).program.stages for op in s.hw_ops]
    assert len({op.out_chan_offset for op in ops}) > 1


def test_small_cnn_matches_openvino_cpu_within_fp16_noise(blobs):
    from kernelkit.runners.blob.runner import run_blob

    xml, blob = blobs.get("cnn", _cnn, [[1, 3, 32, 32]])
    inputs = random_inputs([[1, 3, 32, 32]])
    (ref,) = cpu_f32(xml, inputs)
    report = run_blob(blob, inputs)
    assert report.exit_code == 0 and not report.depends
    assert rel_error(report.runs["fp32"].outputs[next(iter(report.outputs))], ref) < 1e-2
    assert rel_error(report.runs["fp16"].outputs[next(iter(report.outputs))], ref) < 1e-2


@pytest.mark.parametrize("accumulator", ["fp32", "fp16"])
def test_the_fast_hw_path_stores_the_same_bits_as_the_reference(blobs, accumulator):
    """The fast path (weights unpacked once per program, one input's columns shared by the ops of a stage)
    against the reference (each op unpacks its stage's whole weights and sums through hw.conv): every byte of
    BSS, CMX and the outputs is equal after a run, and so are the findings, on a first run and on a second
    one that reuses what the first prepared."""
    from kernelkit.runners.blob import interpreter
    from kernelkit.runners.blob.runner import load_program

    cases = [("bottleneck", _bottleneck, [[1, 64, 28, 28]]), ("cnn", _cnn, [[1, 3, 32, 32]]),
             ("conv3x3_256to256_relu", *HW_MODELS["conv3x3_256to256_relu"][:2]),
             ("conv3x3_relu6", *HW_MODELS["conv3x3_relu6"][:2])]
    for name, build, shapes in cases:
        _, blob = blobs.get(name, build, shapes)
        program = load_program(blob)
        inputs = random_inputs(shapes, scale=4.0)

        def run(**options):
            run = interpreter.Interpreter(program, accumulator=accumulator, **options)
            run.set_inputs(inputs)
            run.run()
            return {k: a.copy() for k, a in run.memory.arenas.items() if k != "Blob"}, run.findings

        reference, ref_findings = run(reference=True)
        assert reference["BSS"].any() or reference["CMX"].any()
        for _ in range(2):
            fast, findings = run()
            assert fast.keys() == reference.keys() and findings == ref_findings, name
            for key in reference:
                assert np.array_equal(fast[key], reference[key]), (name, key)
        assert any(isinstance(k, tuple) and "weights" in k for k in program.prepared), name


def test_fp16_rounder_gives_the_values_of_a_half_cast_round_trip():
    """The fp16 accumulator rounds with integer and float32 passes instead of numpy's half casts: on every fp16
    value, the midpoints between neighbours (the ties), a float32 step either side of each, fp16's subnormal
    and overflow edges, and a million random float32 bit patterns, it gives the cast's bits (NaN as NaN)."""
    from kernelkit.runners.blob.hw import Fp16Rounder

    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)
    finite = np.sort(halves[np.isfinite(halves)])
    ties = (finite[:-1].astype(np.float64) + finite[1:]) / 2
    points = np.concatenate([halves, ties.astype(np.float32), np.float32([65504, 65519.996, 65520, 1e30, 2.0 ** -25,
                                                                          2.0 ** -26, 3 * 2.0 ** -26, 1e-30])])
    points = np.concatenate([points, -points])
    with np.errstate(all="ignore"):
        values = np.concatenate([points, np.nextafter(points, np.float32(np.inf)),
                                 np.nextafter(points, np.float32(-np.inf)),
                                 np.random.default_rng(3).integers(0, 1 << 32, 1 << 20, dtype=np.uint64)
                                 .astype(np.uint32).view(np.float32)])
        expected = values.astype(np.float16).astype(np.float32)
    got = values.copy()
    Fp16Rounder(got.size)(got)
    same = (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), values[~same][:5]


# --- the memory plan ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cnn", "deep"])
def test_junk_poisoning_leaves_outputs_bit_identical(blobs, name):
    from kernelkit.runners.blob.runner import BlobRunner

    build, shape = {"cnn": (_cnn, [1, 3, 32, 32]), "deep": (_deep, [1, 3, 64, 64])}[name]
    _, blob = blobs.get(name, build, [shape])
    inputs = random_inputs([shape])
    clean = BlobRunner(blob).run(inputs).arrays[0]
    for seed in (1, 2):
        poisoned = BlobRunner(blob, poison=seed).run(inputs).arrays[0]
        assert np.array_equal(poisoned, clean)


def test_poison_reaches_memory_a_stage_reads_but_nothing_wrote(blobs):
    """The 3 -> 4 input-channel Expand leaves the engine's pad channel unwritten; it is multiplied by zero
    weights. Finite junk there changes nothing, NaN junk (never what the device holds) would: so the poisoning
    test does exercise reads of memory no stage wrote."""
    from kernelkit.runners.blob import interpreter
    from kernelkit.runners.blob.runner import BlobRunner

    build, shapes, _ = HW_MODELS["conv3x3_3to16_relu"]
    _, blob = blobs.get("conv3x3_3to16_relu", build, shapes)
    program = BlobRunner(blob).program
    conv_inputs = [s.buffers[op.input] for s in program.stages for op in s.hw_ops]
    assert conv_inputs[0].dims["C"] == 4                      # the plugin's Expand: 3 channels padded to 4
    inputs = random_inputs(shapes)
    clean = interpreter.run_program(program, inputs).outputs
    run = interpreter.Interpreter(program)
    run.memory.arenas["CMX"].view(np.float16)[:] = np.float16("nan")
    run.memory.arenas["BSS"].view(np.float16)[:] = np.float16("nan")
    run.set_inputs(inputs)
    run.run()
    nan_out = next(iter(run.get_outputs().values()))
    assert np.isnan(nan_out).any()
    assert np.array_equal(next(iter(interpreter.run_program(program, inputs, poison=5).outputs.values())),
                          next(iter(clean.values())))


def test_retiling_and_hw_off_give_the_same_outputs(blobs):
    """SHAVEs/CMX 1 vs 6 and a small CMX tiling limit re-tile the convs; with the fp32 accumulator (exact sums,
    one rounding) the outputs are bit-identical. HW acceleration off runs software convs whose outputs are
    rounded to fp16 before a separate Bias/ReLU stage: within fp16 noise of the default."""
    from kernelkit.runners.blob.runner import BlobRunner

    inputs = random_inputs([[1, 3, 64, 64]])
    _, default = blobs.get("deep", _deep, [[1, 3, 64, 64]])
    reference = BlobRunner(default).run(inputs).arrays[0]
    stages = len(BlobRunner(default).program.stages)
    for options in ({"shaves": 1}, {"config": {"MYRIAD_TILING_CMX_LIMIT_KB": "64"}},
                    {"config": {"MYRIAD_ENABLE_WEIGHTS_ANALYSIS": "NO"}}):
        _, blob = blobs.get("deep", _deep, [[1, 3, 64, 64]], **options)
        runner = BlobRunner(blob)
        if "shaves" in options or "MYRIAD_TILING_CMX_LIMIT_KB" in options.get("config", {}):
            assert len(runner.program.stages) > stages, f"{options} did not re-tile"
        assert np.array_equal(runner.run(inputs).arrays[0], reference), options
    _, blob = blobs.get("deep", _deep, [[1, 3, 64, 64]], config={"MYRIAD_ENABLE_HW_ACCELERATION": "NO"})
    runner = BlobRunner(blob)
    assert not any(s.type_code == 38 for s in runner.program.stages)
    got = runner.run(inputs).arrays[0]
    assert not np.array_equal(got, reference)         # a different computation, not the same stages again
    assert rel_error(got, reference) < 2e-3           # measured 8.3e-4: fp16 roundings between 4 layers


# --- the range check ---------------------------------------------------------------------------------------------

OVERFLOW_SHAPE = [1, 64, 32, 32]


def _overflow(x):
    """The reference's case: a 3x3 conv 64 -> 32 with weights ~N(0, 0.003); weights analysis scales it by 256."""
    from openvino import opset1

    return opset1.convolution(x, _w(32, 64, 3, 3, std=0.003), [1, 1], [1, 1], [1, 1], [1, 1])


def test_overflow_before_descale_is_flagged_and_weights_analysis_off_clears_it(blobs):
    from kernelkit.runners.blob.runner import run_blob

    inputs = random_inputs([OVERFLOW_SHAPE], scale=1000.0)
    xml, blob = blobs.get("overflow", _overflow, [OVERFLOW_SHAPE])
    (ref,) = cpu_f32(xml, inputs)
    assert np.abs(ref).max() < 65504 / 100            # the true output is far inside fp16's range
    report = run_blob(blob, inputs)
    found = [f for _, f in report.findings if f.kind == "overflow before descale"]
    assert report.exit_code == 1 and found
    assert found[0].value > 65504 and found[0].stage_type == "MyriadXHwOp"
    assert "MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO" in found[0].message()
    _, plain = blobs.get("overflow", _overflow, [OVERFLOW_SHAPE],
                         config={"MYRIAD_ENABLE_WEIGHTS_ANALYSIS": "NO"})
    clean = run_blob(plain, inputs)
    assert clean.exit_code == 0, clean.lines()
    assert rel_error(clean.outputs[next(iter(clean.outputs))], ref) < 2e-3


def test_a_tensor_that_becomes_inf_is_flagged(blobs):
    from kernelkit.runners.blob.runner import run_blob

    build, shapes, *_ = _ops()["exp"]
    _, blob = blobs.get("exp", build, shapes)
    inputs = [np.full(S4, 12.0, np.float32)]              # e**12 = 162755 > 65504
    report = run_blob(blob, inputs, accumulator="fp32")
    assert report.exit_code == 1
    assert [f.kind for _, f in report.findings] == ["inf"]
    assert report.findings[0][1].stage_type == "Exp"


# --- inputs, outputs and errors ----------------------------------------------------------------------------------

def test_inputs_by_name_or_position_and_outputs_by_name(blobs):
    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners.blob.runner import run_blob

    build, shapes, *_ = _ops()["sub"]
    xml, blob = blobs.get("sub", build, shapes)
    a, b = random_inputs(shapes)
    by_name = run_blob(blob, {"x0": a, "x1": b}, accumulator="fp32")
    by_position = run_blob(blob, {"in0": a, "in1": b}, accumulator="fp32")
    import openvino as ov

    out_name = ov.Core().read_model(str(xml)).outputs[0].get_node().input_value(0).get_node().get_friendly_name()
    assert list(by_name.outputs) == [out_name]
    assert np.array_equal(by_name.outputs[out_name], by_position.outputs[out_name])
    with pytest.raises(KernelkitError, match="x1"):
        run_blob(blob, {"x0": a}, accumulator="fp32")


def test_a_stage_type_it_cannot_run_is_an_error_naming_the_stage(blobs):
    import openvino as ov

    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners.blob.runner import run_blob

    _, blob = blobs.get("reorg_yolo", lambda a: ov.opset2.reorg_yolo(a, [2]), [[1, 4, 6, 8]])
    # the layer's name comes from the plugin's graph dump kept beside the blob
    with pytest.raises(KernelkitError, match=r"stage \d+ \(ReorgYolo\) of layer 'ReorgYolo_\d+': the interpreter "
                                             r"cannot run stage type 30"):
        run_blob(blob, accumulator="fp32")


def test_cli_blob_run_writes_named_outputs_and_exits_1_on_overflow(blobs, tmp_path):
    import subprocess
    import sys

    inputs = random_inputs([OVERFLOW_SHAPE], scale=1000.0)
    xml, blob = blobs.get("overflow", _overflow, [OVERFLOW_SHAPE])
    np.savez(tmp_path / "in.npz", in0=inputs[0])
    out = tmp_path / "out.npz"
    repo = Path(__file__).resolve().parents[1]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kernelkit", "blob", "run", str(blob), *args],
                              capture_output=True, text=True, cwd=repo,
                              env={**__import__("os").environ, "PYTHONPATH": str(repo)})

    flagged = run("--inputs", str(tmp_path / "in.npz"), "--out", str(out), "--accumulator", "fp32")
    assert flagged.returncode == 1, flagged.stdout + flagged.stderr
    assert "before its descale" in flagged.stdout and "MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO" in flagged.stdout
    (ref,) = cpu_f32(xml, inputs)
    written = dict(np.load(out))
    assert len(written) == 1 and rel_error(next(iter(written.values())), ref) < 2e-3
    np.savez(tmp_path / "small.npz", in0=inputs[0] / 1000)
    clean = run("--inputs", str(tmp_path / "small.npz"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "fp16 accumulator" in clean.stdout
    missing = run("--inputs", str(tmp_path / "nope.npz"))
    assert missing.returncode == 2 and "nope.npz" in missing.stderr and "Traceback" not in missing.stderr


def test_a_batched_blob_runs_once_per_item(blobs):
    """The plugin compiles a batch-3 model as the graph of one item (header batch_size 3); the runtime runs it
    per item."""
    from openvino import opset1

    from kernelkit.runners.blob.runner import BlobRunner

    shape = [3, 4, 8, 8]
    xml, blob = blobs.get("batch3", lambda a: opset1.relu(opset1.convolution(
        a, _w(8, 4, 3, 3), [1, 1], [1, 1], [1, 1], [1, 1])), [shape])
    runner = BlobRunner(blob)
    assert runner.program.header.batch_size == 3
    assert runner.program.inputs[0].buffer.logical_shape()[0] == 1
    inputs = random_inputs([shape])
    (ref,) = cpu_f32(xml, inputs)
    got = runner.run(inputs).arrays[0]
    assert got.shape == ref.shape and rel_error(got, ref) < 2e-3


def test_topk_values_and_indices(blobs):
    """A stage that writes two tensors: TopK's values (fp16) and indices (S32)."""
    from openvino import opset1

    from kernelkit.runners.blob.runner import BlobRunner

    def build(a):
        node = opset1.topk(a, opset1.constant(np.int64(3)), 1, "max", "value")
        return [node.output(0), node.output(1)]

    xml, blob = blobs.get("topk_both", build, [[1, 8, 4, 4]])
    inputs = random_inputs([[1, 8, 4, 4]])
    values, indices = cpu_f32(xml, inputs)
    got = BlobRunner(blob).run(inputs).arrays
    assert len(got) == 2
    assert rel_error(got[0], values) < 2e-3
    assert np.array_equal(got[1].reshape(indices.shape), indices)


def test_damaged_blobs_are_errors_never_tracebacks(blobs):
    """Bytes of real blobs' stage sections changed at random: each run ends in outputs or a KernelkitError
    (a damaged header, a buffer past its memory, parameters asking for too much), never another exception."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.runners.blob.runner import run_blob

    sources = []
    for name in ("cnn", "sw_conv3x3", "strided_slice", "gather"):
        build, shapes, *rest = (_cnn, [[1, 3, 32, 32]]) if name == "cnn" else _ops()[name]
        options = rest[1] if len(rest) > 1 else {}
        sources.append(blobs.get(name, build, shapes, **options)[1].read_bytes())
    rng = np.random.default_rng(11)
    outcomes = {"ran": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(sources[rng.integers(len(sources))])
        for _ in range(rng.integers(1, 4)):
            data[rng.integers(320, len(data))] = rng.integers(256)
        try:
            with np.errstate(all="ignore"):
                run_blob(bytes(data), accumulator="fp32")
            outcomes["ran"] += 1
        except KernelkitError:
            outcomes["refused"] += 1
    assert outcomes["ran"] and outcomes["refused"]
