"""Recurrent sequences unrolled into native ops, against OpenVINO CPU running the sequence ops (f32), and
LSTMSequence with weights fed as inputs (which the real 2021.4 plugin refuses) compiled once unrolled."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.ir.load import load_model
from kernelkit.model.patcher import patch_model
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.doctor.verify import verify
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

RNG = np.random.default_rng(11)
BATCH, STEPS, INPUT, HIDDEN = 2, 4, 3, 5


def _arrays(gates, directions):
    shapes = {"x": (BATCH, STEPS, INPUT), "h": (BATCH, directions, HIDDEN), "c": (BATCH, directions, HIDDEN),
              "w": (directions, gates * HIDDEN, INPUT), "r": (directions, gates * HIDDEN, HIDDEN)}
    return {k: RNG.uniform(-0.8, 0.8, s).astype(np.float32) for k, s in shapes.items()}


def _check(tmp_path, build, gates, direction, lengths, bias_gates=None):
    directions = 2 if direction == "bidirectional" else 1
    data = _arrays(gates, directions)
    params = {k: ops.parameter(list(v.shape), np.float32, name=k) for k, v in data.items()}
    bias = RNG.uniform(-0.5, 0.5, (directions, (bias_gates or gates) * HIDDEN)).astype(np.float32)
    node = build(params, np.array(lengths, np.int32), bias, direction)
    used = [k for k in data if k != "c" or gates == 4]
    path = tmp_path / "seq.xml"
    ov.save_model(ov.Model(list(node.outputs()), [params[k] for k in used], "seq"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if l.type.endswith("Sequence")]
    inputs = [data[k] for k in used]
    for got, expected in zip(run_openvino(model.to_xml_bytes(), model.bin_data, inputs),
                             run_openvino(original.to_xml_bytes(), original.bin_data, inputs)):
        np.testing.assert_allclose(got, expected, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("direction,lengths", [("forward", [4, 4]), ("reverse", [3, 4]), ("bidirectional", [2, 4])])
def test_rnn_sequence(tmp_path, direction, lengths):
    _check(tmp_path, lambda p, n, b, d: ov.opset5.rnn_sequence(p["x"], p["h"], n, p["w"], p["r"], b, HIDDEN, d,
                                                               activations=["relu"] if d == "reverse" else ["tanh"]),
           1, direction, lengths)


@pytest.mark.parametrize("direction,lengths,linear", [("forward", [4, 4], False), ("bidirectional", [3, 4], True)])
def test_gru_sequence(tmp_path, direction, lengths, linear):
    _check(tmp_path, lambda p, n, b, d: ov.opset5.gru_sequence(p["x"], p["h"], n, p["w"], p["r"], b, HIDDEN, d,
                                                               linear_before_reset=linear),
           3, direction, lengths, 4 if linear else 3)


@pytest.mark.parametrize("direction,lengths", [("forward", [4, 2]), ("bidirectional", [4, 4])])
def test_lstm_sequence(tmp_path, direction, lengths):
    _check(tmp_path, lambda p, n, b, d: ov.opset5.lstm_sequence(p["x"], p["h"], p["c"], n, p["w"], p["r"], b, HIDDEN,
                                                                d),
           4, direction, lengths)


def test_lstm_with_input_weights_compiles_once_unrolled(tmp_path):
    from myriad_models import require_toolchain, save_ir

    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.myriad.compile import CompileFailed, compile_model

    require_toolchain()
    data = _arrays(4, 1)
    params = {k: ops.parameter(list(v.shape), np.float32, name=k) for k, v in data.items()}
    node = ov.opset5.lstm_sequence(params["x"], params["h"], params["c"], np.array([STEPS, STEPS], np.int32),
                                   params["w"], params["r"], np.zeros((1, 4 * HIDDEN), np.float32), HIDDEN, "forward")
    raw = save_ir(ov.Model(list(node.outputs()), list(params.values()), "lstm"), tmp_path / "lstm.xml")
    with pytest.raises(CompileFailed):
        compile_model(raw, tmp_path / "raw.blob")           # the plugin's LSTMSequence wants constant weights
    out = tmp_path / "out"
    result = patch_model(raw, out, "2021.4")
    assert result.exit_code == 0 and [c.patcher for c in result.changes if c.layer == node.get_friendly_name()]
    assert compile_folder(out, out / "model.blob").header.outputs == 3
    assert verify(out).passed


@pytest.mark.parametrize("read", [(1, 2), (0,)], ids=["Y-unused", "only-Y"])
def test_lstm_with_an_unused_output_compiles_once_unrolled(tmp_path, read):
    # The real 2021.4 plugin asserts (!expired()) on an LSTMSequence with an output nobody reads, constant
    # weights and all: silero-vad reads only Y_h and Y_c, ddddocr's recogniser only Y.
    from myriad_models import require_toolchain, save_ir

    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.myriad.compile import CompileFailed, compile_model

    require_toolchain()
    data = _arrays(4, 1)
    x, h, c = (ops.parameter(list(data[k].shape), np.float32, name=k) for k in ("x", "h", "c"))
    node = ov.opset5.lstm_sequence(x, h, c, np.array([STEPS, STEPS], np.int32), data["w"], data["r"],
                                   np.zeros((1, 4 * HIDDEN), np.float32), HIDDEN, "forward")
    raw = save_ir(ov.Model([node.output(i) for i in read], [x, h, c], "lstm"), tmp_path / "lstm.xml")
    with pytest.raises(CompileFailed, match="expired"):
        compile_model(raw, tmp_path / "raw.blob")
    out = tmp_path / "out"
    assert patch_model(raw, out, "2021.4").exit_code == 0
    assert compile_folder(out, out / "model.blob").header.outputs == len(read)
    assert verify(out).passed


def test_cells(tmp_path):
    x = ops.parameter([BATCH, INPUT], np.float32, name="x")
    h = ops.parameter([BATCH, HIDDEN], np.float32, name="h")
    w3, r3 = RNG.uniform(-0.8, 0.8, (3 * HIDDEN, INPUT)), RNG.uniform(-0.8, 0.8, (3 * HIDDEN, HIDDEN))
    w1, r1 = RNG.uniform(-0.8, 0.8, (HIDDEN, INPUT)), RNG.uniform(-0.8, 0.8, (HIDDEN, HIDDEN))
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    nodes = [ov.opset3.gru_cell(x, h, f32(w3), f32(r3), f32(RNG.uniform(-1, 1, 4 * HIDDEN)), HIDDEN,
                                linear_before_reset=True),
             ov.opset3.rnn_cell(x, h, f32(w1), f32(r1), f32(RNG.uniform(-1, 1, HIDDEN)), HIDDEN, ["tanh"], [], [])]
    path = tmp_path / "cells.xml"
    ov.save_model(ov.Model(nodes, [x, h], "cells"), str(path), compress_to_fp16=False)
    original, model = load_model(path), load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and not [l for l in model.layers if l.type.endswith("Cell")]
    data = [RNG.uniform(-1, 1, (BATCH, INPUT)).astype(np.float32), RNG.uniform(-1, 1, (BATCH, HIDDEN)).astype(np.float32)]
    for got, want in zip(run_openvino(model.to_xml_bytes(), model.bin_data, data),
                         run_openvino(original.to_xml_bytes(), original.bin_data, data)):
        np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)
