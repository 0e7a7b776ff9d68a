"""The authoring commands through the real CLI (subprocess): new, build, render, lint; the issue's contract."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kernelkit.kernel.bindings import clsource, gpu, myriad_read
from kernelkit.kernel.builder.hostcheck import BASE_FLAGS
from kernelkit.core.paths import KERNELS_DIR

CONTRACT_EXPR = "x * tanh(log(1.0f + exp(x)))"


@pytest.fixture
def cli(tmp_path):
    env = dict(os.environ, KERNELKIT_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("KERNELKIT_CLC", None)
    env.pop("KERNELKIT_OPENVINO_DIR", None)

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "kernelkit", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd or tmp_path, timeout=300)
    return run


def test_contract_new_then_build(cli, tmp_path):
    new = cli("new", "mish_h", "--family", "elementwise", "--type", "MishH", "--expr", CONTRACT_EXPR,
              "-d", tmp_path / "DIR")
    assert new.returncode == 0, new.stderr
    assert (tmp_path / "DIR" / "mish_h" / "kernel.toml").is_file()
    out = tmp_path / "OUT"
    build = cli("build", tmp_path / "DIR" / "mish_h", "-o", out)
    assert build.returncode == 0, build.stderr + build.stdout
    files = sorted(p.name for p in out.iterdir())
    assert [f for f in files if f.endswith(".cl")] == ["mish_h.cl"]
    assert [f for f in files if f.endswith(".xml") and not f.endswith(".gpu.xml")] == ["mish_h.xml"]
    assert [f for f in files if f.endswith(".gpu.xml")] == ["mish_h.gpu.xml"]
    assert files == ["mish_h.cl", "mish_h.gpu.xml", "mish_h.xml"]
    assert "needs the SHAVE clc compiler" in build.stdout
    # The .cl passes the contract's clang-15 command exactly as written there.
    check = subprocess.run(["clang-15", *BASE_FLAGS, str(out / "mish_h.cl")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # The MYRIAD XML binds every kernel argument, each exactly once.
    source = (out / "mish_h.cl").read_text()
    assert CONTRACT_EXPR in source
    layers = myriad_read.load(out / "mish_h.xml")
    assert [layer.name for layer in layers] == ["MishH"]
    kernel = layers[0].kernels[0]
    args = next(k for k in clsource.parse_kernels(source) if k.name == kernel.entry).args
    assert sorted(p.arg_name for p in kernel.params) == sorted(a.name for a in args)
    assert kernel.sources == ["mish_h.bin"]
    gpu_layers = gpu.load(out / "mish_h.gpu.xml")
    assert gpu_layers[0].sources == ["mish_h.cl"] and gpu_layers[0].name == "MishH"


def test_rebuild_says_it_did_no_work(cli, tmp_path):
    assert cli("build", KERNELS_DIR / "cumsum", "-o", tmp_path / "o").returncode == 0
    again = cli("build", KERNELS_DIR / "cumsum", "-o", tmp_path / "o")
    assert again.returncode == 0 and "up to date cumsum" in again.stdout


@pytest.mark.parametrize("family", ["elementwise", "axis_scan", "index_map", "custom"])
def test_every_family_scaffold_builds_at_once(cli, tmp_path, family):
    assert cli("new", f"k_{family}", "--family", family, "--type", "K", "-d", tmp_path).returncode == 0
    build = cli("build", tmp_path / f"k_{family}", "-o", tmp_path / "out")
    assert build.returncode == 0, build.stdout + build.stderr
    lint = cli("lint", tmp_path / f"k_{family}")
    assert lint.returncode == 0 and "0 error(s), 0 warning(s)" in lint.stderr


def test_new_binary_elementwise_gets_two_inputs_and_a_numpy_reference(cli, tmp_path):
    assert cli("new", "addmul", "-f", "elementwise", "-t", "AddMul", "-e", "fmax(a, b) * 0.5f",
               "-d", tmp_path).returncode == 0
    text = (tmp_path / "addmul" / "kernel.toml").read_text()
    assert text.count("[[kernel.inputs]]") == 2
    assert 'numpy = "np.maximum(a, b) * 0.5"' in text
    assert cli("build", tmp_path / "addmul", "-o", tmp_path / "out").returncode == 0


def test_new_refuses_an_existing_folder(cli, tmp_path):
    (tmp_path / "k" / "mine.txt").parent.mkdir()
    (tmp_path / "k" / "mine.txt").write_text("keep")
    result = cli("new", "k", "--family", "elementwise", "--type", "K", "-d", tmp_path)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["mine.txt"]


def test_new_rejects_bad_names_and_families(cli, tmp_path):
    bad_name = cli("new", "9lives", "--family", "elementwise", "--type", "K", "-d", tmp_path)
    assert bad_name.returncode == 2 and "C identifier" in bad_name.stderr
    bad_family = cli("new", "k", "--family", "reduce", "--type", "K", "-d", tmp_path)
    assert bad_family.returncode == 2 and "axis_scan" in bad_family.stderr
    bad_type = cli("new", "k", "--family", "elementwise", "--type", "My Op", "-d", tmp_path)
    assert bad_type.returncode == 2 and "kernel.op" in bad_type.stderr
    assert not (tmp_path / "k").exists()


def test_build_with_malformed_spec_exits_2_and_names_the_file(cli, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "kernel.toml").write_text("[kernel\nname = 1\n")
    result = cli("build", folder, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert f"kernelkit: error: {folder / 'kernel.toml'}:1: malformed TOML" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_build_with_compile_error_exits_2_naming_the_template_line(cli, tmp_path):
    assert cli("new", "ck", "--family", "custom", "--type", "Ck", "-d", tmp_path).returncode == 0
    template = tmp_path / "ck" / "kernel.cl.j2"
    lines = template.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "= {{ spec.inputs[0].name }}[i];" in line)
    lines[number - 1] = lines[number - 1].replace("[i];", "[i] + nonsense;")
    template.write_text("\n".join(lines) + "\n")
    result = cli("build", tmp_path / "ck", "-o", tmp_path / "out")
    assert result.returncode == 2
    assert f"{template}:{number}: generated ck.cl:" in result.stderr
    assert "nonsense" in result.stderr


def test_build_with_template_syntax_error_exits_2(cli, tmp_path):
    assert cli("new", "ck", "--family", "custom", "--type", "Ck", "-d", tmp_path).returncode == 0
    template = tmp_path / "ck" / "kernel.cl.j2"
    template.write_text(template.read_text().replace("{{ kk.signature() }}", "{% if %}"))
    result = cli("build", tmp_path / "ck", "-o", tmp_path / "out")
    assert result.returncode == 2 and f"{template}:5: template syntax error" in result.stderr


def test_render_prints_each_artefact(cli):
    cl = cli("render", KERNELS_DIR / "hard_sigmoid_h")
    assert cl.returncode == 0 and "__kernel void hard_sigmoid_h(" in cl.stdout
    xml = cli("render", KERNELS_DIR / "hard_sigmoid_h", "--what", "xml")
    assert xml.returncode == 0 and myriad_read.loads(xml.stdout)[0].name == "HardSigmoidH"
    gpu_xml = cli("render", KERNELS_DIR / "hard_sigmoid_h", "--what", "gpu")
    assert gpu_xml.returncode == 0 and 'type="SimpleGPU"' in gpu_xml.stdout
    bad = cli("render", KERNELS_DIR / "hard_sigmoid_h", "--stage", "3")
    assert bad.returncode == 2 and "stage" in bad.stderr


def test_lint_a_cl_file(cli, tmp_path):
    clean = tmp_path / "ok.cl"
    clean.write_text("#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
                     "__kernel void k(__global half* restrict a) { a[get_global_id(0)] = (half)1.0f; }\n")
    assert cli("lint", clean).returncode == 0
    bad = tmp_path / "bad.cl"
    bad.write_text("__kernel void k(__global float* restrict a) { printf(\"%f\", a[0]); }\n")
    result = cli("lint", bad, "--no-host-check")
    assert result.returncode == 1 and f"{bad}:1: error: SHAVE kernels have no printf" in result.stdout
    compiled = cli("lint", bad)
    assert compiled.returncode == 1
    assert cli("lint", tmp_path / "nothing.txt").returncode == 2


@pytest.mark.parametrize("command", ["new", "build", "render", "lint"])
def test_help(cli, command):
    result = cli(command, "--help")
    assert result.returncode == 0 and "usage: kernelkit " + command in result.stdout


def test_usage_errors_exit_2(cli):
    assert cli("build").returncode == 2
    assert cli("new", "k").returncode == 2


def test_new_says_when_it_cannot_write_the_reference(cli, tmp_path):
    result = cli("new", "k", "-f", "elementwise", "-t", "K", "-e", "x > 0.0f ? x : 0.0f", "-d", tmp_path)
    assert result.returncode == 0 and "write [reference]" in result.stdout
    assert "# numpy =" in (tmp_path / "k" / "kernel.toml").read_text()
    assert cli("build", tmp_path / "k", "-o", tmp_path / "out").returncode == 0


def test_build_without_clang_exits_3(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path / "empty-bin"), KERNELKIT_CACHE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-m", "kernelkit", "build", str(KERNELS_DIR / "mish_h"), "-o",
                             str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 3 and "clang-15 is not installed" in result.stderr
    assert not (tmp_path / "out").exists()
