"""Provisioning and status of the legacy MYRIAD toolchain."""

from __future__ import annotations

import subprocess

import pytest

from kernelkit.cli import main
from kernelkit.core.errors import ToolchainUnavailable
from kernelkit.myriad import toolchain
from myriad_models import require_toolchain


def test_status_on_an_empty_cache_lists_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path))
    assert main(["toolchain", "status"]) == 3
    out = capsys.readouterr().out
    legacy, emulator = out.split("SHAVE emulator and host checks")
    assert legacy.count("[missing]") == 4
    assert "kernelkit toolchain setup" in legacy
    assert "[ok] PoCL 3.1+" in emulator and "[ok] clang-15" in emulator
    with pytest.raises(ToolchainUnavailable, match="not provisioned"):
        toolchain.require()


def test_unreachable_archive_gives_a_clear_message(tmp_path, monkeypatch, capsys):
    # A local port nothing listens on: apt fails at once, and setup must say what could not be had.
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("KERNELKIT_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    assert main(["toolchain", "setup"]) == 3
    err = capsys.readouterr().err
    assert "bullseye" in err and "hint:" in err
    assert not (tmp_path / "toolchain" / "python3.9").exists()


def test_mirror_comes_from_the_system_sources(monkeypatch):
    monkeypatch.delenv("KERNELKIT_DEBIAN_MIRROR", raising=False)
    mirror = toolchain.debian_mirror()
    assert mirror.startswith("http") and mirror.endswith("/debian")
    sources = subprocess.run(["sh", "-c", "cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null"],
                             capture_output=True, text=True).stdout
    assert mirror in sources


def test_package_list_pins_the_39_distutils():
    packages = toolchain.debian_packages()
    assert "python3.9-minimal" in packages
    assert "python3-distutils=3.9.2-1" in packages and "python3-lib2to3=3.9.2-1" in packages


@pytest.mark.toolchain
def test_second_setup_does_nothing(capsys):
    require_toolchain()
    assert main(["toolchain", "setup"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert toolchain.setup(log=lambda _: None).done == []


@pytest.mark.toolchain
def test_status_reports_everything_present(capsys):
    require_toolchain()
    assert main(["toolchain", "status"]) == 0
    legacy, emulator = capsys.readouterr().out.split("SHAVE emulator and host checks")
    assert legacy.count("[ok]") == 4
    assert emulator.count("[ok]") == 3        # PoCL, clang-15 and the fp16 helper all run here


@pytest.mark.toolchain
def test_python39_and_openvino_2021_4_run():
    tc = require_toolchain()
    proc = subprocess.run([str(tc.python), "-c", "import sys, openvino.inference_engine as ie; "
                           "print(sys.version_info[:2], ie.get_version())"], env=tc.env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "(3, 9)" in proc.stdout and "2021.4" in proc.stdout


@pytest.mark.toolchain
def test_shim_uses_only_symbols_the_wheel_exports():
    """Every OpenVINO symbol the shim needs is an exported definition of the wheel's libinference_engine.so."""
    tc = require_toolchain()
    needed = subprocess.run(["nm", "-D", "--undefined-only", str(tc.shim)], capture_output=True, text=True,
                            check=True).stdout.split()
    exported = set(subprocess.run(["nm", "-D", "--defined-only", str(tc.openvino_libs / "libinference_engine.so")],
                                  capture_output=True, text=True, check=True).stdout.split())
    ov_symbols = [s for s in needed if "InferenceEngine" in s]
    # Core::Core, Core::LoadNetwork (a path; a CNNNetwork), Core::AddExtension, ExecutableNetwork::Export, and for
    # FP16 outputs Core::ReadNetwork, CNNNetwork::getOutputsInfo, Data::getPrecision, Data::setPrecision
    assert len(ov_symbols) == 9
    assert all(s in exported for s in ov_symbols)


@pytest.mark.toolchain
def test_shim_rejects_bad_usage():
    tc = require_toolchain()
    proc = subprocess.run([str(tc.shim)], env=tc.env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([str(tc.shim), "m.xml", "o.blob", "NOEQUALS"], env=tc.env(), capture_output=True, text=True)
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr
    proc = subprocess.run([str(tc.shim), "m.xml", "o.blob", "KERNELKIT_OUTPUT_PRECISION=U8"], env=tc.env(),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "only FP16" in proc.stderr


# ------------------------------------------------------------------------- the committed probe results

def _verdicts():
    import json

    from kernelkit.core.paths import REPO_ROOT

    data = json.loads((REPO_ROOT / "kernelkit" / "facts" / "data" / "plugin-verdicts-2021.4.json").read_text())
    return {(r["op"], r["version"], r["variant"]): r for r in data["verdicts"]}


def test_committed_verdicts_hold_the_measured_facts():
    """Facts measured by hand on the 2021.4 plugin (issue 6) must be what the probe recorded."""
    v = _verdicts()
    assert v[("CumSum", "opset3", "f16")]["verdict"] == "refused"
    assert 'unsupported layer type "CumSum"' in v[("CumSum", "opset3", "f16")]["message"]
    for op in ("HardSigmoid", "ScatterNDUpdate"):
        (row,) = [r for (name, _, _), r in v.items() if name == op]
        assert row["verdict"] == "refused" and "unsupported layer type" in row["message"]
    greater = v[("Greater", "opset1", "i32")]
    assert (greater["query"], greater["verdict"]) == ("supported", "refused")
    assert "input #0 has type S32, but one of [FP16] is expected" in greater["message"]
    for version in ("opset1", "opset4"):
        assert "'nearest' and 'linear' modes only" in v[("Interpolate", version, "cubic")]["message"]
        assert v[("Interpolate", version, "nearest")]["verdict"] == "compiled"
    for key in [("Interpolate", "opset4", "linear_onnx"), ("Gelu", "opset2", "f16"), ("SoftPlus", "opset4", "f16"),
                ("Erf", "opset1", "f16"), ("HSwish", "opset4", "f16"), ("GatherND", "opset5", "f16"),
                ("Einsum", "opset7", "ij,jk->ik"), ("Convolution", "opset1", "f16")]:
        assert v[key]["verdict"] == "compiled", key


def test_probe_models_all_build(tmp_path):
    """Every probe's one-op model builds with the host OpenVINO (no compiler needed)."""
    import sys

    from kernelkit.core.paths import REPO_ROOT

    proc = subprocess.run([sys.executable, str(REPO_ROOT / "toolchain" / "probe_support.py"), "--dry-run",
                           "--keep", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", proc.stdout  # dry-run prints only the probes that failed to build
    assert len(list(tmp_path.glob("*.xml"))) == len(_verdicts())
    assert all('version="10"' in p.read_text()[:200] for p in tmp_path.glob("*.xml"))
