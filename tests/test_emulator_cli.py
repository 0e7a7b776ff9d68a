"""`kernelkit emulate`: the CLI contract (files in, OUT.npz out, exit codes 0 / 1 / 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernelkit.cli import main

DATA = Path(__file__).parent / "data" / "shave"


def _inputs(tmp_path, **arrays):
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    return path


def test_success_writes_out0(tmp_path):
    x = np.random.default_rng(3).uniform(-1, 1, (1, 2, 3, 9)).astype(np.float32)
    out = tmp_path / "out.npz"
    code = main(["emulate", str(DATA / "scale_bias.xml"), "--type", "ScaleBias",
                 "--inputs", str(_inputs(tmp_path, in0=x)), "--attr", "mode=0", "--attr", "alpha=0.5",
                 "--out", str(out)])
    assert code == 0
    with np.load(out) as data:
        assert data.files == ["out0"]
        expected = (x.astype(np.float16).astype(np.float32) * 0.5 + 0.25).astype(np.float16)
        np.testing.assert_allclose(data["out0"].astype(np.float32), expected.astype(np.float32), atol=1e-3)


def test_out_shape_option(tmp_path):
    x = np.random.default_rng(4).uniform(-1, 1, (1, 2, 6, 16)).astype(np.float32)
    out = tmp_path / "out.npz"
    code = main(["emulate", str(DATA / "kernels.xml"), "--type", "EvenRows", "--inputs",
                 str(_inputs(tmp_path, in0=x)), "--out-shape", "1,2,3,16", "--out", str(out)])
    assert code == 0
    with np.load(out) as data:
        assert data["out0"].shape == (1, 2, 3, 16)


def test_device_check_failure_exits_1_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out.npz"
    code = main(["emulate", str(DATA / "bad.xml"), "--type", "SkipOdd", "--inputs",
                 str(_inputs(tmp_path, in0=np.ones((1, 1, 2, 4), np.float32))), "--out", str(out)])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err
    assert "never written" in err and "SkipOdd binding #0, stage 0 'skip_odd', argument 'dst'" in err


def test_bad_inputs_file_exits_2(tmp_path, capsys):
    out = tmp_path / "out.npz"
    args = ["emulate", str(DATA / "scale_bias.xml"), "--type", "ScaleBias", "--attr", "mode=1", "--attr",
            "alpha=1", "--out", str(out), "--inputs"]
    assert main(args + [str(_inputs(tmp_path, x=np.zeros(3)))]) == 2
    assert "inputs are named in0, in1" in capsys.readouterr().err
    assert main(args + [str(_inputs(tmp_path, in1=np.zeros(3)))]) == 2
    assert "numbered from in0" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "missing.npz")]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(args + [str(tmp_path / "junk.npz")]) == 2
    assert "not a readable .npz file" in capsys.readouterr().err
    assert not out.exists()


def test_bad_options_exit_2(tmp_path, capsys):
    inputs = str(_inputs(tmp_path, in0=np.ones((1, 1, 1, 8), np.float32)))
    base = ["emulate", str(DATA / "scale_bias.xml"), "--type", "ScaleBias", "--inputs", inputs,
            "--out", str(tmp_path / "o.npz")]
    assert main(base + ["--attr", "novalue"]) == 2
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert main(base + ["--attr", "mode=1", "--attr", "alpha=1", "--out-shape", "1,x"]) == 2
    assert "--out-shape" in capsys.readouterr().err
    assert main(base + ["--attr", "mode=7"]) == 2
    assert "no binding alternative applies" in capsys.readouterr().err
