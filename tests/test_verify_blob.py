"""`kernelkit verify` judges the compiled blob too: the blob interpreter on the same inputs, the same reference."""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.doctor.verify import format_verify_result, verify
from myriad_models import conv_relu, save_ir

pytestmark = pytest.mark.toolchain


def _patched(tmp_path, xml):
    out = tmp_path / "patched"
    assert main(["patch", str(xml), "-o", str(out)]) == 0
    assert (out / "model.blob").is_file()
    return out


def _overflowing_conv(folder):
    """A 3x3 conv 64 -> 32 with weights ~N(0, 0.003): weights analysis scales it by 2**8 (shared reference on the
    blob, section 3), so an input of std 1000 holds more than fp16's 65504 before the descale."""
    import openvino as ov
    from openvino import opset1

    x = opset1.parameter([1, 64, 16, 16], np.float32, name="x")
    weights = (np.random.default_rng(3).standard_normal((32, 64, 3, 3)) * 0.003).astype(np.float32)
    conv = opset1.convolution(x, opset1.constant(weights), [1, 1], [1, 1], [1, 1], [1, 1], name="conv")
    return save_ir(ov.Model([conv], [x], "overflow"), folder / "overflow.xml")


def test_the_blob_is_run_and_compared_beside_the_ir(tmp_path):
    out = _patched(tmp_path, conv_relu(tmp_path))
    result = verify(out)
    assert result.ir_passed and result.blob is not None and result.passed
    (comparison,) = result.blob.comparisons
    # the IR on OpenVINO CPU is exact here; the blob ran in fp16, so it differs a little: it really ran
    assert result.comparisons[0].abs_error.max == 0 and 0 < comparison.abs_error.max
    assert comparison.abs_error.max < comparison.atol / 10      # fp16 noise: under 1e-3 of the output's peak
    assert "in the IR and in the compiled blob" in format_verify_result(result)


def test_an_overflow_only_the_device_would_hit_passes_the_ir_and_fails_the_blob(tmp_path, capsys):
    out = _patched(tmp_path, _overflowing_conv(tmp_path))
    feed = tmp_path / "in.npz"
    np.savez(feed, in0=(np.random.default_rng(0).standard_normal((1, 64, 16, 16)) * 1000).astype(np.float32))
    assert main(["verify", str(out), "--inputs", str(feed)]) == 1
    text = capsys.readouterr().out
    assert "PASS out0" in text.split("compiled blob")[0]          # the IR check alone would have said PASSED
    assert "MYRIAD_ENABLE_WEIGHTS_ANALYSIS NO" in text
    assert "FAILED: the IR matches, the compiled blob does not" in text
    # without the blob check the same run passes: the case verify used to miss
    assert main(["verify", str(out), "--inputs", str(feed), "--no-blob"]) == 0


def test_a_blob_of_another_model_is_a_clear_error(tmp_path, capsys):
    out = _patched(tmp_path, conv_relu(tmp_path))
    other = _patched(tmp_path / "o", _overflowing_conv(tmp_path))
    assert main(["verify", str(out), "--blob", str(other / "model.blob")]) == 2
    err = capsys.readouterr().err
    assert "input" in err and "'x'" in err
