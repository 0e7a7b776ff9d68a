"""Small models for the MYRIAD toolchain tests (compile, blob, archive, oracle), built with the host OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def save_ir(model, xml: Path, version: int = 10) -> Path:
    import openvino as ov

    if version == 10:
        model.set_rt_info(10, "version")
        ov.serialize(model, str(xml), version="IR_V10")
    else:
        ov.serialize(model, str(xml))
    return xml


def conv_relu(folder: Path, name: str = "convrelu", version: int = 10, dtype=np.float32) -> Path:
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 3, 32, 32], dtype, name="input")
    weights = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(dtype)
    conv = opset1.convolution(x, opset1.constant(weights), [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    relu = opset1.relu(conv, name="relu")
    return save_ir(ov.Model([relu], [x], name), folder / f"{name}.xml", version)


def cumsum(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1, opset3

    x = opset1.parameter([1, 3, 8, 8], np.float16, name="x")
    node = opset3.cumsum(x, opset1.constant(np.int32(1)), name="running_total")
    return save_ir(ov.Model([node], [x], "cumsum"), folder / "cumsum.xml")


def greater_i32(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1

    a = opset1.parameter([1, 4], np.int32, name="a")
    b = opset1.parameter([1, 4], np.int32, name="b")
    node = opset1.greater(a, b, name="is_bigger")
    return save_ir(ov.Model([node], [a, b], "greater"), folder / "greater_i32.xml")


def opset8_softmax(folder: Path) -> Path:
    import openvino as ov
    from openvino import opset1, opset8

    x = opset1.parameter([1, 10], np.float32, name="x")
    node = opset8.softmax(x, -1, name="probs")
    return save_ir(ov.Model([node], [x], "softmax8"), folder / "softmax8.xml")


def relu_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6  # the 2021.4 ONNX importer predates newer IR versions
    path = folder / "relu.onnx"
    onnx.save(model, str(path))
    return path


def require_toolchain():
    """The provisioned legacy toolchain, or a loud skip saying how to get it."""
    from kernelkit.myriad import toolchain

    tc = toolchain.locate()
    missing = [c.name for c in tc.components() if not c.present]
    if missing:
        pytest.skip(f"LEGACY MYRIAD TOOLCHAIN NOT PROVISIONED in {tc.root} (missing: {', '.join(missing)}); "
                    "run `kernelkit toolchain setup` to run these tests")
    return tc


def compile_blob(source, blob: Path):
    """`kernelkit compile` of a model file or patch folder to `blob`, skipping loudly without the toolchain."""
    from kernelkit.doctor.workflow import compile_folder

    require_toolchain()
    return compile_folder(source, blob)


def read_blob_with_depthai(path: Path):
    import os

    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai.OpenVINO.Blob(str(path))
