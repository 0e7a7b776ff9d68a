"""Small ONNX models with If and Loop, built with onnx's helper API, for the freeze/fold tests.

Each builder writes the model to `path` and returns it. Loops carry an explicit `true` start condition:
onnx 1.23's reference evaluator runs no iteration when that optional input is left empty (the spec says
"true"), and it stacks scan outputs with np.vstack, so scan values here are 1-D.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def _save(graph, path, opset=13):
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _info(name, elem=T.FLOAT, dims=None):
    return h.make_tensor_value_info(name, elem, dims)


def audio_vad(path):
    """A voice-activity detector of the usual shape: audio [1, samples], a sample rate choosing the front end
    with If (16 kHz: frames of 16, hop 8; 8 kHz: frames of 8, hop 4), a recurrent state updated by a Loop of
    3 steps, a speech probability and the new state out."""
    rng = np.random.default_rng(0)

    def front_end(tag, width, hop, reduce):
        nodes = [h.make_node("Reshape", ["audio", "as_image"], [f"image_{tag}"]),
                 h.make_node("Conv", [f"image_{tag}", f"filters_{tag}"], [f"bands_{tag}"], kernel_shape=[1, width],
                             strides=[1, hop]),
                 h.make_node(reduce, [f"bands_{tag}"], [f"feat_{tag}"], axes=[2, 3], keepdims=0)]
        return h.make_graph(nodes, f"front_end_{tag}", [], [_info(f"feat_{tag}", dims=[1, 16])])

    body = h.make_graph(
        [h.make_node("MatMul", ["h_in", "w_rec"], ["h_rec"]), h.make_node("Add", ["h_rec", "feat"], ["h_pre"]),
         h.make_node("Tanh", ["h_pre"], ["h_out"]), h.make_node("Identity", ["go_in"], ["go_out"])], "step",
        [_info("step", T.INT64, []), _info("go_in", T.BOOL, []), _info("h_in", dims=[1, 16])],
        [_info("go_out", T.BOOL, []), _info("h_out", dims=[1, 16])])
    nodes = [h.make_node("Equal", ["sr", "rate_16k"], ["is_16k"], name="rate_check"),
             h.make_node("If", ["is_16k"], ["feat"], name="choose_rate",
                         then_branch=front_end("16k", 16, 8, "ReduceMean"),
                         else_branch=front_end("8k", 8, 4, "ReduceMax")),
             h.make_node("Loop", ["steps", "true", "state"], ["h_final"], body=body, name="recurrence"),
             h.make_node("MatMul", ["h_final", "w_out"], ["logit"], name="classifier"),
             h.make_node("Sigmoid", ["logit"], ["speech"], name="speech"),
             h.make_node("Identity", ["h_final"], ["new_state"], name="state_out")]
    inits = [nh.from_array(np.array(16000, np.int64), "rate_16k"),
             nh.from_array(np.array([1, 1, 1, -1], np.int64), "as_image"),
             nh.from_array((rng.standard_normal((16, 1, 1, 16)) * 0.2).astype(np.float32), "filters_16k"),
             nh.from_array((rng.standard_normal((16, 1, 1, 8)) * 0.3).astype(np.float32), "filters_8k"),
             nh.from_array(np.array(3, np.int64), "steps"), nh.from_array(np.array(True), "true"),
             nh.from_array((rng.standard_normal((16, 16)) * 0.3).astype(np.float32), "w_rec"),
             nh.from_array((rng.standard_normal((16, 1)) * 0.3).astype(np.float32), "w_out")]
    graph = h.make_graph(nodes, "vad", [_info("audio", dims=[1, "samples"]), _info("sr", T.INT64, []),
                                        _info("state", dims=[1, 16])],
                         [_info("speech", dims=[1, 1]), _info("new_state", dims=[1, 16])], initializer=inits)
    return _save(graph, path)


def if_on_scalar(path):
    """y = If(sr == 16000, x * gain + x (gain: a branch initializer), x + 1 (a Constant node)). The main graph
    also defines `t`, and `choose/then/t`, the name the inlined then branch would give its own `t` next."""
    then_branch = h.make_graph([h.make_node("Mul", ["x", "gain"], ["t"]), h.make_node("Add", ["t", "x"], ["t2"])],
                               "then", [], [_info("t2", dims=[1, 8])],
                               initializer=[nh.from_array(np.array(2.0, np.float32), "gain")])
    else_branch = h.make_graph([h.make_node("Constant", [], ["one"], value=nh.from_array(np.array(1.0, np.float32))),
                                h.make_node("Add", ["x", "one"], ["u"])], "else", [], [_info("u", dims=[1, 8])])
    nodes = [h.make_node("Equal", ["sr", "rate"], ["cond"]),
             h.make_node("If", ["cond"], ["y"], name="choose", then_branch=then_branch, else_branch=else_branch),
             h.make_node("Neg", ["x"], ["t"]), h.make_node("Abs", ["x"], ["choose/then/t"]),
             h.make_node("Sum", ["y", "t", "choose/then/t"], ["z"])]
    graph = h.make_graph(nodes, "if_scalar", [_info("x", dims=[1, 8]), _info("sr", T.INT64, [])],
                         [_info("z", dims=[1, 8])], initializer=[nh.from_array(np.array(16000, np.int64), "rate")])
    return _save(graph, path)


def if_on_shape(path):
    """y = If(x.shape[1] > 256, ReduceMax(x), ReduceMean(x)): static once --input-shape fixes x."""
    def branch(op, tag):
        return h.make_graph([h.make_node(op, ["x"], [f"r_{tag}"], axes=[1], keepdims=1)], tag, [],
                            [_info(f"r_{tag}", dims=[1, 1])])

    nodes = [h.make_node("Shape", ["x"], ["shape"]), h.make_node("Gather", ["shape", "one"], ["n"], axis=0),
             h.make_node("Greater", ["n", "limit"], ["long"]),
             h.make_node("If", ["long"], ["y"], name="by_length", then_branch=branch("ReduceMax", "long"),
                         else_branch=branch("ReduceMean", "short"))]
    graph = h.make_graph(nodes, "if_shape", [_info("x", dims=[1, "n"])], [_info("y", dims=[1, 1])],
                         initializer=[nh.from_array(np.array(1, np.int64), "one"),
                                      nh.from_array(np.array(256, np.int64), "limit")])
    return _save(graph, path)


def loop_counted(path, trip=5, exit_after=3, opset=11):
    """acc_k = acc_{k-1} + x * k for k = 0.. while k < trip and the body's exit test (k < exit_after) held at
    the end of the previous step; scan output: every acc_k. Opset 11: Unsqueeze takes axes as an attribute."""
    body = h.make_graph(
        [h.make_node("Cast", ["k"], ["k_f"], to=T.FLOAT), h.make_node("Mul", ["x", "k_f"], ["xk"]),
         h.make_node("Add", ["acc_in", "xk"], ["acc_out"]), h.make_node("Less", ["k", "exit_after"], ["go_out"]),
         h.make_node("Identity", ["acc_out"], ["acc_seen"])], "body",
        [_info("k", T.INT64, []), _info("go_in", T.BOOL, []), _info("acc_in", dims=[4])],
        [_info("go_out", T.BOOL, []), _info("acc_out", dims=[4]), _info("acc_seen", dims=[4])])
    nodes = [h.make_node("Loop", ["trip", "true", "acc0"], ["acc", "history"], body=body, name="accumulate")]
    graph = h.make_graph(nodes, "loop", [_info("x", dims=[4]), _info("acc0", dims=[4])],
                         [_info("acc", dims=[4]), _info("history", dims=["steps", 4])],
                         initializer=[nh.from_array(np.array(trip, np.int64), "trip"),
                                      nh.from_array(np.array(True), "true"),
                                      nh.from_array(np.array(exit_after, np.int64), "exit_after")])
    return _save(graph, path, opset)


def loop_data_exit(path):
    """Doubles acc until its sum reaches 10: the exit depends on data, so it cannot be unrolled."""
    body = h.make_graph(
        [h.make_node("Add", ["acc_in", "acc_in"], ["acc_out"]), h.make_node("ReduceSum", ["acc_out"], ["total"],
                                                                            keepdims=0),
         h.make_node("Less", ["total", "ten"], ["go_out"])], "body",
        [_info("k", T.INT64, []), _info("go_in", T.BOOL, []), _info("acc_in", dims=[4])],
        [_info("go_out", T.BOOL, []), _info("acc_out", dims=[4])])
    nodes = [h.make_node("Loop", ["trip", "true", "x"], ["acc"], body=body, name="grow")]
    graph = h.make_graph(nodes, "loop_data", [_info("x", dims=[4])], [_info("acc", dims=[4])],
                         initializer=[nh.from_array(np.array(8, np.int64), "trip"),
                                      nh.from_array(np.array(True), "true"),
                                      nh.from_array(np.array(10.0, np.float32), "ten")])
    return _save(graph, path)


def nested_if(path):
    """Outer If on sr; its then branch computes a local tensor and holds an inner If on `mode` that reads
    it, the outer scope's x, and its own initializer."""
    inner_then = h.make_graph([h.make_node("Mul", ["scaled", "three"], ["in_t"])], "inner_then", [],
                              [_info("in_t", dims=[1, 8])],
                              initializer=[nh.from_array(np.array(3.0, np.float32), "three")])
    inner_else = h.make_graph([h.make_node("Sub", ["scaled", "x"], ["in_e"])], "inner_else", [],
                              [_info("in_e", dims=[1, 8])])
    outer_then = h.make_graph(
        [h.make_node("Mul", ["x", "x"], ["scaled"]), h.make_node("Greater", ["mode", "zero"], ["positive"]),
         h.make_node("If", ["positive"], ["picked"], name="inner", then_branch=inner_then, else_branch=inner_else)],
        "outer_then", [], [_info("picked", dims=[1, 8])])
    outer_else = h.make_graph([h.make_node("Neg", ["x"], ["negated"])], "outer_else", [],
                              [_info("negated", dims=[1, 8])])
    nodes = [h.make_node("Equal", ["sr", "rate"], ["is_rate"]),
             h.make_node("If", ["is_rate"], ["y"], name="outer", then_branch=outer_then, else_branch=outer_else)]
    graph = h.make_graph(nodes, "nested",
                         [_info("x", dims=[1, 8]), _info("sr", T.INT64, []), _info("mode", T.INT64, [])],
                         [_info("y", dims=[1, 8])],
                         initializer=[nh.from_array(np.array(16000, np.int64), "rate"),
                                      nh.from_array(np.array(0, np.int64), "zero")])
    return _save(graph, path)


def dead_branch(path):
    """y = If(sr == 16000, ReduceMean(x), ReduceMean(Reshape(x, [-1, 3]))): with x of 512 samples the else
    branch cannot be shape-inferred, so OpenVINO refuses the whole model, dead branch included (as it does
    silero-vad's)."""
    then_branch = h.make_graph([h.make_node("ReduceMean", ["x"], ["mean_all"], axes=[1], keepdims=1)], "then", [],
                               [_info("mean_all", dims=[1, 1])])
    else_branch = h.make_graph([h.make_node("Reshape", ["x", "triples"], ["grouped"]),
                                h.make_node("ReduceMean", ["grouped"], ["mean_3"], axes=[1], keepdims=1)], "else", [],
                               [_info("mean_3", dims=["k", 1])])
    nodes = [h.make_node("Equal", ["sr", "rate"], ["is_rate"]),
             h.make_node("If", ["is_rate"], ["y"], name="pick", then_branch=then_branch, else_branch=else_branch)]
    graph = h.make_graph(nodes, "dead_branch", [_info("x", dims=[1, "n"]), _info("sr", T.INT64, [])],
                         [_info("y", dims=["k", 1])],
                         initializer=[nh.from_array(np.array(16000, np.int64), "rate"),
                                      nh.from_array(np.array([-1, 3], np.int64), "triples")])
    return _save(graph, path)
