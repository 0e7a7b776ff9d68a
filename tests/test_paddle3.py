"""PaddlePaddle 3 models (a PIR program `.json` beside its `.pdiparams`) through inspect -> patch -> verify ->
compile. OpenVINO 2026.4 does not read them; kernelkit converts them with paddle2onnx from PATH. The model is
built and saved by paddle itself in the Paddle side environment (tools/venvs.paddle_python, made once; the tests
that need it skip, saying so, where it is absent) and cached with the other framework models; what the tests
expect of it is Paddle's own output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelkit import api
from kernelkit.cli import main
from kernelkit.core.locking import file_lock
from kernelkit.core.paths import cache_dir
from kernelkit.facts.tolerances import BLOB_NOISE_OF_PEAK
from myriad_models import read_blob_with_depthai, require_toolchain

REPO = Path(__file__).resolve().parents[1]
SIDE = Path(__file__).with_name("paddle_side.py")


def paddle_venv_bin() -> Path:
    venv = cache_dir("paddle-side") / "venv"
    if not (venv / "bin" / "paddle2onnx").is_file():
        pytest.skip("the Paddle side environment (tools/venvs.paddle_python: paddlepaddle 3 and paddle2onnx) has "
                    "not been made here")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        from venvs import paddle_python
    finally:
        sys.path.remove(str(REPO / "tools"))
    return paddle_python().parent


@pytest.fixture(scope="module")
def paddle_net():
    """(net.json, Paddle's input and output) saved by paddle.jit.save, cached under framework-models/."""
    bin_dir = paddle_venv_bin()
    folder = cache_dir("framework-models") / "paddle3-net"
    model = folder / "net.json"
    with file_lock(cache_dir("framework-models") / ".lock"):
        if not (folder / "net.io.npz").is_file():
            done = subprocess.run([str(bin_dir / "python"), str(SIDE), str(folder)], capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, done.stderr[-3000:]
    with np.load(folder / "net.io.npz") as io:
        return model, io["x"], io["y"]


@pytest.fixture
def on_path(monkeypatch):
    """paddle2onnx of the side environment on PATH, as a user's activated venv puts it."""
    bin_dir = paddle_venv_bin()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return bin_dir


def test_a_paddle3_json_model_goes_to_a_blob_with_its_names_and_paddles_values(paddle_net, on_path, tmp_path, capsys):
    import openvino as ov

    model, x, y = paddle_net
    assert b'"magic":"pir"' in model.read_bytes()[:200]           # what paddle 3 wrote: a PIR program
    report = api.inspect(model, "2021.4")
    assert set(report["summary"]["by_kind"]) <= {"ir-version", "opset"}   # loaded; only what patch rewrites
    out = tmp_path / "out"
    assert main(["patch", str(model), "-o", str(out), "--no-compile"]) == 0
    patch_report = json.loads((out / "patch-report.json").read_text())
    assert [(i["name"], i["shape"], i["layout"]) for i in patch_report["inputs"]] == [("image", [1, 3, 32, 32],
                                                                                        "NCHW")]
    # The patched IR on OpenVINO CPU gives Paddle's own output.
    got = ov.Core().compile_model(str(out / "model.xml"), "CPU")({"image": x})[0]
    np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)
    assert abs(float(y.sum()) - 1) < 1e-5 and float(y.max() - y.min()) > 0.05      # a softmax that says something
    capsys.readouterr()
    assert main(["verify", str(out), "--no-blob"]) == 0
    require_toolchain()
    blob = tmp_path / "net.blob"
    assert main(["compile", str(out), "-o", str(blob)]) == 0
    read = read_blob_with_depthai(blob)
    # PIR programs name no output tensor: Paddle's inference API calls it fetch_name_0, and so does the blob.
    assert (list(read.networkInputs), list(read.networkOutputs)) == (["image"], ["fetch_name_0"])
    from kernelkit.runners.blob.runner import BlobRunner

    run = BlobRunner(blob).run({"image": x})
    assert not run.failures
    assert float(np.abs(run.outputs["fetch_name_0"] - y).max()) < BLOB_NOISE_OF_PEAK * float(np.abs(y).max())


def test_paddle2onnx_refusing_a_file_is_exit_2_with_its_words(on_path, tmp_path, capsys):
    fake = tmp_path / "broken.json"
    fake.write_text('{"base_code":{"magic":"pir","trainable":true,"version":4},"program":{"regions":[')
    assert main(["inspect", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "paddle2onnx could not convert this PaddlePaddle 3 model" in err and "broken.json" in err
    assert "Traceback (most recent call last)" not in err.split("paddle2onnx could not")[0]


def test_without_paddle2onnx_a_json_model_is_exit_2_saying_what_to_install(tmp_path, monkeypatch, capsys):
    model = tmp_path / "inference.json"
    model.write_text('{"base_code":{"magic":"pir","trainable":true,"version":4},"program":{"regions":[]}}')
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    assert main(["patch", str(model), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "PaddlePaddle 3 (PIR) .json model" in err and "paddle2onnx, which is not on PATH" in err
    assert "pip install paddlepaddle paddle2onnx" in err and "--model_filename inference.json" in err
    assert not (tmp_path / "out").exists()


def test_a_json_that_is_no_paddle_program_is_an_unknown_format(tmp_path, capsys):
    other = tmp_path / "config.json"
    other.write_text('{"model": {"magic": "not pir"}}')
    assert main(["inspect", str(other)]) == 2
    assert "unknown model format '.json'" in capsys.readouterr().err
