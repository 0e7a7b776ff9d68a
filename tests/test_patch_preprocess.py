"""Preprocessing embedded in the model: U8 input, channel reversal, mean and scale."""

from __future__ import annotations

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.model.passes import preprocess
from kernelkit.model.passes.base import PatchContext
from kernelkit.ir.openvino_run import run_openvino
from kernelkit.facts.target import get_target


def _model(tmp_path):
    x = ops.parameter([1, 3, 4, 5], np.float32, name="image")
    y = ops.multiply(x, np.float32(2.0))
    y.set_friendly_name("doubled")
    path = tmp_path / "m.xml"
    ov.save_model(ov.Model([y], [x], "m"), str(path), compress_to_fp16=False)
    return load_model(path)


def test_mean_scale_reverse_u8(tmp_path):
    model = _model(tmp_path)
    options = preprocess.Preprocessing(mean=[10, 20, 30], scale=[2, 4, 8], reverse_channels=True, u8_input=True)
    ctx = PatchContext(model, get_target("2021.4"))
    preprocess.apply(ctx, options)
    patched = load_model(model.save(tmp_path / "p.xml")[0])
    frame = np.random.default_rng(0).integers(0, 256, size=(1, 3, 4, 5)).astype(np.uint8)
    got = run_openvino(patched.to_xml_bytes(), patched.bin_data, [frame])[0]
    # What the original model computes on a BGR->RGB, normalised float frame, written out by hand.
    normalised = (frame[:, ::-1].astype(np.float32) - np.array([10, 20, 30], np.float32).reshape(1, 3, 1, 1)) \
        / np.array([2, 4, 8], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(got, normalised * 2, rtol=1e-6)
    assert patched.find("image").attrs["element_type"] == "u8"
    assert "reverse channels" in ctx.changes[0].after


def test_single_mean_value_broadcasts(tmp_path):
    model = _model(tmp_path)
    preprocess.apply(PatchContext(model, get_target("2021.4")), preprocess.Preprocessing(mean=[127.5], scale=[127.5]))
    x = np.full((1, 3, 4, 5), 255, np.float32)
    got = run_openvino(model.to_xml_bytes(), model.bin_data, [x])[0]
    np.testing.assert_allclose(got, np.full_like(x, 2.0), rtol=1e-6)


def test_wrong_number_of_values_is_bad_input(tmp_path):
    model = _model(tmp_path)
    with pytest.raises(KernelkitError, match="2 values for 3 channels"):
        preprocess.apply(PatchContext(model, get_target("2021.4")), preprocess.Preprocessing(mean=[1, 2]))


@pytest.mark.parametrize("text", ["1,x", "", "[]"])
def test_bad_value_lists(text):
    with pytest.raises(KernelkitError):
        preprocess.parse_values(text, "--mean")


def test_zero_scale_is_refused():
    with pytest.raises(KernelkitError, match="divides by zero"):
        preprocess.parse_values("1,0,1", "--scale")
