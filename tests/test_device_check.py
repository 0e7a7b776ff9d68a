"""`kernelkit blob device-check`: the DepthAI v3 script an OAK owner runs, and the comparison of what it saves.

No OAK is attached here, so the device run itself is not exercised: the script is run with `--dry-run` against the
real depthai 3.12 (it reads the model with depthai, builds the NNData and reads it back), run without a device (a
clean "no OAK" exit), and every depthai name it uses is looked up in depthai 3.12 from the script's syntax tree.
`dai.Pipeline(False)` cannot hold a NeuralNetwork node ("Pipeline is host only, cannot create device node"), so the
pipeline itself cannot be built here."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from kernelkit.cli import main

from test_archive_layout import face_folder  # noqa: F401  (the patched, compiled MediaPipe face detector)

pytestmark = pytest.mark.toolchain
FACE_OUTPUTS = {"regressors": [1, 896, 16], "classificators": [1, 896, 1]}    # MediaPipe's


def _dai():
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    import depthai as dai

    return dai


def _run_script(script, *args, **env):
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DEPTHAI_LEVEL": "error", **env})


@pytest.fixture(scope="module")
def face_archive(face_folder, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("archive") / "face.tar.xz"
    assert main(["archive", str(face_folder), "--blob", "-o", str(out)]) == 0
    return out


def test_script_beside_an_archive_dry_runs_on_depthai(face_archive, capsys):
    assert main(["blob", "device-check", str(face_archive)]) == 0
    assert "face.device_check.py" in capsys.readouterr().out
    script, inputs = face_archive.with_name("face.device_check.py"), face_archive.with_name("face.inputs.npz")
    with np.load(inputs) as npz:
        assert npz.files == ["input"]
        assert npz["input"].dtype == np.uint8 and npz["input"].shape == (1, 128, 128, 3)
        assert npz["input"].min() < 10 and npz["input"].max() > 245        # spread over 0..255
    proc = _run_script(script, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "input uint8 [1, 128, 128, 3]" in proc.stdout and "stopping before connecting a device" in proc.stdout
    # with no device: a one-line exit, no outputs file
    proc = _run_script(script, DEPTHAI_SEARCH_TIMEOUT="300")
    assert proc.returncode == 1 and "no OAK to run on" in proc.stderr and "Traceback" not in proc.stderr
    assert not face_archive.with_name("face.device.npz").exists()


def test_script_for_a_blob_a_superblob_and_a_superblob_archive(face_folder, tmp_path):  # noqa: F811
    superblob = tmp_path / "face.superblob"
    assert main(["compile", str(face_folder), "-o", str(superblob)]) == 0
    archive = tmp_path / "facesb.tar.xz"
    assert main(["archive", str(superblob), "-o", str(archive)]) == 0
    for source, kind in ((face_folder / "model.blob", "blob"), (superblob, "superblob"), (archive, "archive")):
        assert main(["blob", "device-check", str(source), "--out-dir", str(tmp_path / kind)]) == 0
        script = next((tmp_path / kind).glob("*.device_check.py"))
        proc = _run_script(script, "--dry-run", "--shaves", "6")
        assert proc.returncode == 0, proc.stderr
        assert f"({kind})" in proc.stdout
    proc = _run_script(script, "--dry-run", "--shaves", "17")
    assert proc.returncode == 2 and "a superblob holds 1 to 16" in proc.stderr


def test_a_float_input_is_fed_as_fp32_nndata(tmp_path):
    from test_archive_layout import _conv_onnx
    from myriad_models import compile_blob

    assert main(["patch", str(_conv_onnx(tmp_path / "conv.onnx", nhwc=False)), "-o", str(tmp_path / "out")]) == 0
    blob = compile_blob(tmp_path / "out", tmp_path / "conv.blob").blob_path
    assert main(["blob", "device-check", str(blob)]) == 0
    with np.load(tmp_path / "conv.inputs.npz") as npz:
        image = npz["image"]
    assert image.dtype == np.float32 and image.shape == (1, 3, 24, 40)
    assert np.array_equal(image.astype(np.float16).astype(np.float32), image) and image.std() > 0.5
    proc = _run_script(tmp_path / "conv.device_check.py", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "image float32 [1, 3, 24, 40]" in proc.stdout


def test_every_depthai_name_the_script_uses_exists_in_depthai(face_archive):
    dai = _dai()
    assert main(["blob", "device-check", str(face_archive)]) == 0
    script = face_archive.with_name("face.device_check.py")
    tree = ast.parse(script.read_text())
    # attribute chains rooted at the module: dai.node.NeuralNetwork, dai.TensorInfo.DataType, ...
    chains = set()
    for node in ast.walk(tree):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id == "dai" and parts:
            chains.add(tuple(parts))
    assert ("node", "NeuralNetwork") in chains and ("ModelType", "SUPERBLOB") in chains
    for chain in chains:
        obj = dai
        for part in chain:
            assert hasattr(obj, part), f"depthai {dai.__version__} has no dai.{'.'.join(chain)}"
            obj = getattr(obj, part)
    # methods called on the objects the script makes, by the variable names it gives them
    types = {"pipeline": dai.Pipeline, "nn": dai.node.NeuralNetwork, "in_queue": dai.InputQueue,
             "out_queue": dai.MessageQueue, "data": dai.NNData, "result": dai.NNData, "archive": dai.NNArchive}
    members = {"input": dai.Node.Input, "out": dai.Node.Output}
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in types:
                called.add((owner.id, node.func.attr))
                assert hasattr(types[owner.id], node.func.attr), f"{owner.id}.{node.func.attr}"
            elif isinstance(owner, ast.Attribute) and owner.attr in members and getattr(owner.value, "id", "") == "nn":
                called.add((f"nn.{owner.attr}", node.func.attr))
                assert hasattr(members[owner.attr], node.func.attr), f"nn.{owner.attr}.{node.func.attr}"
    assert {("nn", "setNNArchive"), ("nn.input", "createInputQueue"), ("nn.out", "createOutputQueue"),
            ("in_queue", "send"), ("out_queue", "get"), ("data", "addTensor"), ("pipeline", "start")} <= called
    # the script's own pre-flight list resolves too, and names what a depthai without it lacks
    spec = importlib.util.spec_from_file_location("face_device_check", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)                       # importing runs nothing
    assert module.missing_api(dai) == []
    assert "node.NeuralNetwork" in module.missing_api(type("old_depthai", (), {})())


def test_given_inputs_are_checked_against_the_blob(face_archive, tmp_path, capsys):
    frame = np.random.default_rng(5).integers(0, 256, (1, 128, 128, 3)).astype(np.uint8)
    cases = [({"input": frame[:, :64]}, "input \"input\" has shape [1, 64, 128, 3], the blob takes [1, 128, 128, 3]"),
             ({"input": frame, "extra": frame}, "arrays the blob does not take: extra"),
             ({"image": frame}, "no array \"input\""),
             ({"input": frame.astype(np.float32) + 0.5}, "float32 with values uint8 cannot hold")]
    for arrays, message in cases:
        np.savez(tmp_path / "in.npz", **arrays)
        assert main(["blob", "device-check", str(face_archive), "--inputs", str(tmp_path / "in.npz"),
                     "--out-dir", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
    np.savez(tmp_path / "in.npz", input=frame.astype(np.float32))      # whole numbers: taken as U8
    assert main(["blob", "device-check", str(face_archive), "--inputs", str(tmp_path / "in.npz"),
                 "--out-dir", str(tmp_path / "good")]) == 0
    with np.load(tmp_path / "good" / "face.inputs.npz") as npz:
        assert npz["input"].dtype == np.uint8 and np.array_equal(npz["input"], frame)


def test_compare_judges_device_outputs_against_a_reference(face_folder, tmp_path, capsys):  # noqa: F811
    import openvino as ov

    frame = np.random.default_rng(7).integers(0, 256, (1, 128, 128, 3)).astype(np.uint8)
    compiled = ov.Core().compile_model(str(face_folder / "model.xml"), "CPU")
    result = compiled({"input": frame})
    reference = {name: np.asarray(result[compiled.output(name)], np.float32) for name in FACE_OUTPUTS}
    assert {n: list(a.shape) for n, a in reference.items()} == FACE_OUTPUTS
    np.savez(tmp_path / "ref.npz", **reference)
    # an FP16 device's outputs: the reference rounded to fp16
    np.savez(tmp_path / "fp16.npz", **{n: a.astype(np.float16).astype(np.float32) for n, a in reference.items()})
    assert main(["blob", "compare", str(tmp_path / "fp16.npz"), str(tmp_path / "ref.npz")]) == 0
    out = capsys.readouterr().out
    assert "regressors: PASS" in out and "classificators: PASS" in out
    wrong = dict(reference)
    wrong["regressors"] = reference["regressors"].copy()
    wrong["regressors"][0, 10, :4] += 3.0                        # one anchor's box off by 3 px
    np.savez(tmp_path / "wrong.npz", **wrong)
    assert main(["blob", "compare", str(tmp_path / "wrong.npz"), str(tmp_path / "ref.npz")]) == 1
    out = capsys.readouterr().out
    assert "regressors: FAIL" in out and "classificators: PASS" in out
    np.savez(tmp_path / "half.npz", classificators=reference["classificators"])
    assert main(["blob", "compare", str(tmp_path / "half.npz"), str(tmp_path / "ref.npz")]) == 1
    assert "regressors: FAIL | the device file has no such output" in capsys.readouterr().out
    np.savez(tmp_path / "other.npz", something=reference["classificators"])
    assert main(["blob", "compare", str(tmp_path / "other.npz"), str(tmp_path / "ref.npz")]) == 2
    assert "share no output name" in capsys.readouterr().err


def test_bad_sources_exit_2(tmp_path, capsys):
    (tmp_path / "model.onnx").write_bytes(b"x")
    for source, message in ((tmp_path / "model.onnx", "not an NN Archive"), (tmp_path, "a folder"),
                            (tmp_path / "none.blob", "no such")):
        assert main(["blob", "device-check", str(source)]) == 2
        assert message in capsys.readouterr().err
