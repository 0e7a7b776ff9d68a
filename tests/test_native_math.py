"""Native formulations of the element-wise math ops: exact enough on OpenVINO CPU f32, and within the
harness tolerance when every layer rounds to fp16 (the VPU's arithmetic, kernelkit.runners.fp16_layers)."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.runners.compare import compare
from kernelkit.runners.fp16_layers import run_fp16
from kernelkit.ir.load import load_model
from kernelkit.model.formulations import native_math
from kernelkit.model.passes import rewrite
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target

OPS = sorted(native_math.REFERENCES)
DOMAIN = {"asin": (-1, 1), "acos": (-1, 1), "atanh": (-0.999, 0.999), "acosh": (1, 3000)}


def _fp16_grid(low, high, count):
    values = np.linspace(low, high, count).astype(np.float16).astype(np.float32)
    return np.unique(values)


def _patched(tmp_path, name, size):
    x = ops.parameter([size], np.float32, name="x")
    node = getattr(ops, name)(x)
    node.set_friendly_name("y")
    path = tmp_path / f"{name}.xml"
    ov.save_model(ov.Model([node], [x], name), str(path), compress_to_fp16=False)
    model = load_model(path)
    ctx = PatchContext(model, get_target("2021.4"))
    rewrite.apply(ctx)
    assert not ctx.refusals and name not in {l.type.lower() for l in model.layers}
    assert model.find("y") is not None, "the formulation's last layer keeps the output name"
    return model


def test_every_formulation_matches_numpy_in_f32(tmp_path):
    for name in OPS:
        low, high = DOMAIN.get(name, (-30, 30))
        x = _fp16_grid(low, high, 997)
        model = _patched(tmp_path, name, x.size)
        got = run_openvino(model.to_xml_bytes(), model.bin_data, [x])[0]
        with np.errstate(all="ignore"):
            expected = native_math.REFERENCES[name](x.astype(np.float64))
        result = compare(got, expected.astype(np.float32), rtol=2e-3, atol=1e-4)
        assert result.passed, f"{name}: {result.reason}"


@pytest.mark.parametrize("name,low,high", [("sin", -3200, 3200), ("tan", 1.4, 1.75), ("acos", -1, 1),
                                           ("asinh", -65504, 65504), ("cosh", -11.7, 11.7)])
def test_fp16_rounding_between_layers_stays_within_tolerance(tmp_path, name, low, high):
    x = _fp16_grid(low, high, 4001)
    model = _patched(tmp_path, name, x.size)
    got = run_fp16(model.to_xml_bytes(), model.bin_data, [x])[0]
    with np.errstate(all="ignore"):
        ideal = native_math.REFERENCES[name](x.astype(np.float64)).astype(np.float16)
    result = compare(got, ideal)             # the harness's fp16 tolerance (atol 1e-3, rtol 1e-2)
    assert result.passed, f"{name}: {result.reason}"


def test_naive_formulas_fail_in_fp16_where_these_do_not(tmp_path):
    # The yardstick can fail: sinh as (e^x - e^-x)/2 loses everything near 0 and overflows at 11.09.
    x = ops.parameter([5], np.float32, name="x")
    naive = ops.multiply(ops.subtract(ops.exp(x), ops.exp(ops.negative(x))), np.float32(0.5))
    path = tmp_path / "naive.xml"
    ov.save_model(ov.Model([naive], [x], "naive"), str(path), compress_to_fp16=False)
    model = load_model(path)
    data = np.array([1e-3, 0.01, 2, 11.2, 11.5], np.float32)
    got = run_fp16(model.to_xml_bytes(), model.bin_data, [data])[0]
    assert not compare(got, np.sinh(data.astype(np.float64)).astype(np.float16)).passed
    ours = _patched(tmp_path, "sinh", 5)
    assert compare(run_fp16(ours.to_xml_bytes(), ours.bin_data, [data])[0],
                   np.sinh(data.astype(np.float64)).astype(np.float16)).passed
