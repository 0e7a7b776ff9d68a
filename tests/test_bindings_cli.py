"""`kernelkit validate`: output format and exit codes."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernelkit.cli import main

DATA = Path(__file__).parent / "data" / "bindings"


def run(capsys, *args):
    code = main(["validate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_file_exits_zero(capsys):
    code, out, err = run(capsys, DATA / "mvn2.xml")
    assert code == 0 and out == ""
    assert "0 error(s), 0 warning(s)" in err


def test_warnings_only_exit_zero(capsys):
    code, out, _ = run(capsys, DATA / "scale_shift2.xml", "--type", "ScaleShift2", "--attr", "alpha=0.5")
    assert code == 0
    assert re.search(r"scale_shift2\.xml:3: warning: .*no attribute 'mode'", out)


def test_selection_is_reported(capsys):
    code, _, err = run(capsys, DATA / "scale_shift2.xml", "--type", "scaleshift2", "--attr", "alpha=0.5",
                       "--attr", "mode=0")
    assert code == 0 and "selects the <CustomLayer> at line 3" in err


def test_no_selectable_binding_is_an_error(capsys):
    code, out, _ = run(capsys, DATA / "scale_shift2.xml", "--type", "Other")
    assert code == 1 and "selects no binding for type 'Other'" in out


def test_crosscheck_errors_exit_one(tmp_path, capsys):
    shutil.copy(DATA / "mvn2.xml", tmp_path / "mvn2.xml")
    shutil.copy(DATA / "mvn2_scale.cl", tmp_path / "mvn2_scale.cl")
    broken = (DATA / "mvn2_reduce.cl").read_text().replace("int width)", "int width, int extra)")
    (tmp_path / "mvn2_reduce.cl").write_text(broken)
    code, out, _ = run(capsys, tmp_path / "mvn2.xml")
    assert code == 1
    line = next(l for l in out.splitlines() if "'extra'" in l)
    assert re.match(rf"{re.escape(str(tmp_path / 'mvn2.xml'))}:18: error: ", line)


def test_missing_source_is_a_note(tmp_path, capsys):
    shutil.copy(DATA / "mvn2.xml", tmp_path / "mvn2.xml")
    code, _, err = run(capsys, tmp_path / "mvn2.xml")
    assert code == 0 and "not cross-checked" in err


@pytest.mark.parametrize("content, message", [
    ("<CustomLayer", "malformed XML"),
    ('<!DOCTYPE x [<!ENTITY a "b">]><CustomLayer/>', "DTD"),
    ('<CustomLayer name="A" type="MVCL" version="1"/>', "has no <Kernel>"),
])
def test_bad_input_exits_two(tmp_path, capsys, content, message):
    path = tmp_path / "bad.xml"
    path.write_text(content)
    code, _, err = run(capsys, path)
    assert code == 2 and message in err and str(path) in err


def test_bad_attr_argument_exits_two(capsys):
    code, _, err = run(capsys, DATA / "mvn2.xml", "--attr", "novalue")
    assert code == 2 and "KEY=VALUE" in err


def test_gpu_mode(capsys):
    code, out, _ = run(capsys, "--gpu", DATA / "scale_shift2.gpu.xml")
    assert code == 0 and out == ""
    code, _, err = run(capsys, DATA / "scale_shift2.gpu.xml")
    assert code == 2 and "--gpu" in err


def test_console_script():
    script = Path(sys.executable).parent / "kernelkit"
    result = subprocess.run([str(script), "validate", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--attr KEY=VALUE" in result.stdout


def test_many_bindings_of_one_source_preprocess_it_once(tmp_path, capsys, monkeypatch):
    """A binding file repeating one <CustomLayer> 300 times ran clang once per copy (minutes for a fuzzed file)."""
    from kernelkit.kernel.bindings import clsource

    text = (DATA / "scale_shift2.xml").read_text()
    start, end = text.index("<CustomLayer"), text.rindex("</CustomLayer>") + len("</CustomLayer>")
    shutil.copy(DATA / "scale_shift2.cl", tmp_path / "scale_shift2.cl")
    (tmp_path / "many.xml").write_text(text[:start] + "\n".join([text[start:end]] * 300) + text[end:])
    runs = []
    real_preprocess = clsource.preprocess
    monkeypatch.setattr(clsource, "preprocess", lambda *a, **k: runs.append(1) or real_preprocess(*a, **k))
    code, out, err = run(capsys, tmp_path / "many.xml")
    assert code == 0 and out.count("this alternative is never chosen") == 299
    if clsource.clang_available():
        assert len(runs) == 1
