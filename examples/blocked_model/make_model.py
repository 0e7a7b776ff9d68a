"""Build examples/blocked_model/model.onnx: a small image model that MYRIAD 2021.4 cannot compile as is.

Run: .venv/bin/python examples/blocked_model/make_model.py   (writes model.onnx next to this script)

Each blocker is one a real user meets, and each is fixed by a different patcher:
  HardSigmoid               unsupported layer type on MYRIAD      -> rewrite (Clamp(alpha*x + beta))
  MaxPool (ONNX opset 13)   converts to MaxPool-8, too new        -> version (MaxPool-1)
  CumSum                    unsupported layer type                -> custom layer (kernels/cumsum)
  Greater on int64          "input #0 has type S32, but one of [FP16] is expected" -> precision (Convert)
  Softmax axis=-1           converts to SoftMax-8, too new        -> version (SoftMax-1, axis normalised)
  Gather index -1           converts to Gather-8, too new         -> version (Gather-7, index normalised)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build() -> onnx.ModelProto:
    rng = np.random.default_rng(4)
    weights = rng.uniform(-0.5, 0.5, size=(4, 3, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(weights, "conv_w"),
        numpy_helper.from_array(np.array(2, dtype=np.int64), "width_axis"),
        numpy_helper.from_array(np.array(4.0, dtype=np.float32), "four"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "one_i64"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("HardSigmoid", ["conv"], ["gate"], alpha=0.25, beta=0.5, name="gate"),
        helper.make_node("MaxPool", ["gate"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("CumSum", ["pooled", "width_axis"], ["running"], name="running_sum"),
        # An integer bucket of the running sum, compared as integers: S32 into a comparison on MYRIAD.
        helper.make_node("Mul", ["running", "four"], ["scaled"], name="scale_up"),
        helper.make_node("Cast", ["scaled"], ["bucket"], to=TensorProto.INT64, name="bucket"),
        helper.make_node("Greater", ["bucket", "one_i64"], ["busy"], name="busy"),
        helper.make_node("Cast", ["busy"], ["busy_f"], to=TensorProto.FLOAT, name="busy_float"),
        helper.make_node("Mul", ["running", "busy_f"], ["masked"], name="masked"),
        helper.make_node("Softmax", ["masked"], ["probs"], axis=-1, name="probs"),
        helper.make_node("Gather", ["probs", "last"], ["last_column"], axis=3, name="last_column"),
    ]
    graph = helper.make_graph(
        nodes, "blocked_model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 4, 4, 4]),
         helper.make_tensor_value_info("last_column", TensorProto.FLOAT, [1, 4, 4, 1])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="kernelkit examples/blocked_model/make_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    out = Path(__file__).resolve().parent / "model.onnx"
    onnx.save(build(), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
