"""Patched models compile on the real OpenVINO 2021.4 MYRIAD plugin (skipped when `kernelkit toolchain
setup` has not provisioned it). One model holds a branch per rewrite and downgrade, so one compile proves
them all; the unpatched model is refused by the same plugin."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import toolchain
from kernelkit.model.patcher import patch_model
from kernelkit.core.paths import EXAMPLES_DIR
from kernelkit.doctor.verify import verify
from myriad_models import compile_blob

pytestmark = pytest.mark.skipif(not toolchain.locate().ready(), reason="legacy MYRIAD toolchain not provisioned "
                                                                       "(kernelkit toolchain setup)")


def _every_fix_model(path):
    n = helper.make_node
    c = numpy_helper.from_array
    branches = [
        n("HardSigmoid", ["x"], ["hard_sigmoid"], alpha=0.3, beta=0.4),
        n("Softsign", ["x"], ["softsign"]),
        n("Selu", ["x"], ["selu"]),
        n("LogSoftmax", ["x"], ["log_softmax"], axis=1),
        n("ReduceL1", ["x"], ["reduce_l1"], axes=[3], keepdims=1),
        n("ReduceL2", ["x"], ["reduce_l2"], axes=[1], keepdims=1),
        n("Mod", ["x", "divisor"], ["fmod"], fmod=1),
        n("Sign", ["x"], ["sign"]),
        n("DepthToSpace", ["x"], ["depth_to_space"], blocksize=2),
        n("CumSum", ["x", "axis2"], ["cumsum"]),
        n("ArgMax", ["x"], ["argmax_last"], axis=1, select_last_index=1, keepdims=1),
        n("Slice", ["x", "starts", "ends", "axes", "steps"], ["slice"]),
        n("Resize", ["x", "", "scales"], ["resize"], mode="linear"),
        n("TopK", ["x", "k"], ["topk", "topk_index"], axis=3),
        n("Pad", ["x", "pads"], ["pad"], mode="reflect"),
        n("Softmax", ["x"], ["softmax"], axis=-1),
        n("Gather", ["x", "gather_index"], ["gather"], axis=3),
        n("MaxPool", ["x"], ["maxpool"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Cast", ["x"], ["x_int"], to=T.INT64),
        n("Greater", ["x_int", "one"], ["greater_bool"]),
        n("Cast", ["greater_bool"], ["greater"], to=T.FLOAT),
        n("Cast", ["argmax_last"], ["argmax"], to=T.FLOAT),
        n("GreaterOrEqual", ["x", "half"], ["ge_bool"]), n("Cast", ["ge_bool"], ["greater_equal"], to=T.FLOAT),
        n("LessOrEqual", ["x", "half"], ["le_bool"]), n("Cast", ["le_bool"], ["less_equal"], to=T.FLOAT),
    ]
    inits = [c(np.full([1, 4, 6, 8], 1.5, np.float32), "divisor"), c(np.array(2, np.int64), "axis2"),
             c(np.array([1, -1], np.int64), "starts"), c(np.array([4, 0], np.int64), "ends"),
             c(np.array([2, 3], np.int64), "axes"), c(np.array([1, -2], np.int64), "steps"),
             c(np.array([1, 1, 2, 2], np.float32), "scales"), c(np.array([3], np.int64), "k"),
             c(np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64), "pads"), c(np.array([-1, 0], np.int64), "gather_index"),
             c(np.array(1, np.int64), "one"), c(np.array(0.5, np.float32), "half")]
    outputs = ["hard_sigmoid", "softsign", "selu", "log_softmax", "reduce_l1", "reduce_l2", "fmod", "sign",
               "depth_to_space", "cumsum", "argmax", "slice", "resize", "topk", "pad", "softmax", "gather",
               "maxpool", "greater", "greater_equal", "less_equal"]
    graph = helper.make_graph(branches, "every_fix", [helper.make_tensor_value_info("x", T.FLOAT, [1, 4, 6, 8])],
                              [helper.make_tensor_value_info(o, T.FLOAT, None) for o in outputs], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def test_every_rewrite_and_downgrade_compiles_on_the_real_plugin(tmp_path):
    from kernelkit.ir.load import load_model
    from kernelkit.myriad.compile import CompileFailed

    source = tmp_path / "every_fix.onnx"
    _every_fix_model(source)
    # Unpatched (converted by OpenVINO 2026, as users get it) the 2021.4 plugin refuses the model.
    raw = tmp_path / "raw"
    raw.mkdir()
    load_model(source).save(raw / "model.xml")
    with pytest.raises((CompileFailed, KernelkitError)):
        compile_blob(raw, tmp_path / "raw.blob")

    out = tmp_path / "out"
    result = patch_model(source, out, "2021.4", prefer="rewrite")
    assert result.exit_code == 0, result.remaining
    assert verify(out).passed
    compiled = compile_blob(out, tmp_path / "every_fix.blob")
    assert (compiled.header.outputs, compiled.header.shaves) == (21, 6)


def test_example_compiles_with_rewrites_only(tmp_path):
    out = tmp_path / "out"
    assert patch_model(EXAMPLES_DIR / "blocked_model" / "model.onnx", out, "2021.4", prefer="rewrite").exit_code == 0
    assert compile_blob(out, tmp_path / "example.blob").size > 0


def test_attention_fold_and_boolean_fixes_compile_on_the_real_plugin(tmp_path):
    n = helper.make_node
    c = numpy_helper.from_array
    vi = helper.make_tensor_value_info
    nodes = [
        n("Attention", ["q", "k", "v"], ["causal"], is_causal=1),                       # SDPA-13 rewrite
        n("IsNaN", ["q"], ["nan_bool"]), n("Cast", ["nan_bool"], ["nan"], to=T.FLOAT),  # IsNaN-10 rewrite
        n("Greater", ["q", "half"], ["big"]), n("Less", ["q", "minus_half"], ["small"]),
        n("Or", ["big", "small"], ["either_bool"]), n("Cast", ["either_bool"], ["either"], to=T.FLOAT),
        n("Xor", ["big", "small"], ["xor_bool"]), n("Cast", ["xor_bool"], ["xor"], to=T.FLOAT),
        n("Pad", ["flat", "pads"], ["padded"]),                                        # 2-D Pad lifted to 3-D
        n("Shape", ["q"], ["shape"]), n("Gather", ["shape", "last"], ["width"], axis=0),   # folded
        n("Cast", ["width"], ["width_f"], to=T.FLOAT), n("Range", ["zero", "width_f", "one"], ["ramp"]),
        n("Add", ["q", "ramp"], ["ramped"]),
        n("QuantizeLinear", ["q", "step", "zero_u8"], ["q_u8"]),                        # FakeQuantize rewrite
        n("DequantizeLinear", ["q_u8", "step", "zero_u8"], ["dequantized"]),
    ]
    inits = [c(np.array(0.5, np.float32), "half"), c(np.array(-0.5, np.float32), "minus_half"),
             c(np.array([1, 2, 0, 1], np.int64), "pads"), c(np.array(-1, np.int64), "last"),
             c(np.array(0, np.float32), "zero"), c(np.array(1, np.float32), "one"),
             c(np.array(0.05, np.float32), "step"), c(np.array(128, np.uint8), "zero_u8")]
    graph = helper.make_graph(nodes, "attention", [vi("q", T.FLOAT, [1, 2, 4, 8]), vi("k", T.FLOAT, [1, 2, 6, 8]),
                                                   vi("v", T.FLOAT, [1, 2, 6, 8]), vi("flat", T.FLOAT, [4, 8])],
                              [vi(o, T.FLOAT, None) for o in ("causal", "nan", "either", "xor", "padded", "ramped",
                                                              "dequantized")],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    source = tmp_path / "attention.onnx"
    onnx.save(model, source)
    out = tmp_path / "out"
    result = patch_model(source, out, "2021.4", prefer="rewrite")
    assert result.exit_code == 0, result.remaining
    assert {"rewrite", "fold", "precision"} <= {c.patcher for c in result.changes}
    assert verify(out).passed
    assert compile_blob(out, tmp_path / "attention.blob").header.outputs == 7


def _run_cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "kernelkit", *map(str, args)], capture_output=True, text=True)


def _one_node_model(path, node, shape=(1, 3, 8, 8)):
    graph = helper.make_graph([node], "one", [helper.make_tensor_value_info("x", T.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", T.FLOAT, list(shape))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_patch_compile_confirms_with_the_real_plugin(tmp_path):
    # HardSigmoid is refused by the 2021.4 plugin; patched into native ops it compiles into a real blob.
    model = _one_node_model(tmp_path / "hs.onnx", helper.make_node("HardSigmoid", ["x"], ["y"], alpha=0.3, beta=0.4))
    result = _run_cli("patch", model, "-o", tmp_path / "out", "--compile")
    assert result.returncode == 0, result.stderr
    assert "compiled by the real MYRIAD 2021.4 plugin: model.blob and model.graph.dot" in result.stdout
    blob = (tmp_path / "out" / "model.blob").read_bytes()
    from kernelkit.myriad.blob import read_header

    header = read_header(blob)
    assert header.file_size == len(blob) and header.stages > 0 and (header.inputs, header.outputs) == (1, 1)


def test_patch_compile_says_custom_kernels_need_clc(tmp_path):
    # CumSum is bound to a library kernel, whose SHAVE binary only clc builds: the plugin compiles the model with
    # a check ELF in its place and takes the binding, but no blob can be written.
    node = helper.make_node("CumSum", ["x", "axis"], ["y"])
    axis = helper.make_tensor("axis", T.INT64, [], [3])
    graph = helper.make_graph([node], "cs", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", T.FLOAT, [1, 3, 8, 8])], initializer=[axis])
    model = tmp_path / "cs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), model)
    result = _run_cli("patch", model, "-o", tmp_path / "out", "--compile", "--prefer", "kernel")
    assert result.returncode == 4, result.stdout + result.stderr
    assert "compiles for MYRIAD once clc's binaries replace the check ELFs" in result.stdout
    assert "cumsum.bin" in result.stdout
    assert not (tmp_path / "out" / "model.blob").exists()
