"""`kernelkit test`: exit codes, filters, report files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from kernelkit.cli import main
from kernelkit.core.xmlsafe import parse_file

DATA = Path(__file__).parent / "data" / "harness"
ELU, WRONG = DATA / "elu_h", DATA / "elu_wrong_h"


def test_all_passing_exits_0_and_writes_reports(tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["test", str(ELU), "-k", "odd_width", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "PASS hk_elu_h::odd_width" in out and "1 case(s): 1 pass" in out
    data = json.loads((report / "conformance.json").read_text())
    assert data["summary"]["pass"] == 1 and data["cases"][0]["id"] == "hk_elu_h::odd_width"
    assert parse_file(report / "junit.xml").get("tests") == "1"
    assert "<svg" not in (report / "conformance.html").read_text()      # nothing failed, no histogram
    saved = np.load(report / "data" / "hk_elu_h" / "odd_width.npz")
    assert saved["in0"].shape == (1, 3, 5, 7)


def test_json_report_is_identical_between_runs(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["test", str(ELU), "-k", "edges", "--report", str(tmp_path / name)]) == 0
    first = (tmp_path / "a" / "conformance.json").read_text()
    assert first == (tmp_path / "b" / "conformance.json").read_text()
    assert json.loads(first)["cases"][0]["data_file"] == "data/hk_elu_h/edges.npz"


def test_a_failing_case_exits_1_with_histogram_in_html(tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["test", str(ELU), str(WRONG), "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "FAIL hk_elu_wrong_h::negative" in out and "not passing: hk_elu_wrong_h::negative" in out
    page = (report / "conformance.html").read_text()
    assert page.count("<svg") == 2          # numpy and openvino outputs failed; the fp32 emulator passed
    junit = parse_file(report / "junit.xml")
    assert junit.get("failures") == "1" and junit.get("tests") == "6"


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["test", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["test", str(ELU), "-k", "no_such_case"]) == 2
    assert "no case matches" in capsys.readouterr().err
    assert main(["test", str(ELU), "--timeout", "0"]) == 2
    assert "--timeout must be a positive" in capsys.readouterr().err
    broken = tmp_path / "broken_h"
    shutil.copytree(ELU, broken)
    (broken / "kernel.toml").write_text((ELU / "kernel.toml").read_text().replace("[[cases]]", "[[casez]]", 1))
    assert main(["test", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "kernel.toml" in err and "casez" in err and "Traceback" not in err


def test_command_line_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kernelkit", "test", str(WRONG)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL hk_elu_wrong_h::negative" in proc.stdout and "reproduce: kernelkit test" in proc.stdout
