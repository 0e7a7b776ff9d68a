"""Build: outputs written all together or not at all, host check mapped to templates, lint, cache, clc driver."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from kernelkit.kernel.builder.build import BuildChecksFailed, build_all, build_kernel, check_spec
from kernelkit.kernel.builder.clc import find_clc
from kernelkit.kernel.builder.hostcheck import BASE_FLAGS, host_check
from kernelkit.kernel.builder.lint import lint_source, local_memory_estimate, private_memory_estimate
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import load_spec

CONTRACT_CLANG = ["clang-15", *BASE_FLAGS]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KERNELKIT_CLC", raising=False)
    monkeypatch.delenv("KERNELKIT_OPENVINO_DIR", raising=False)


def copy_kernel(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "kernels" / name
    shutil.copytree(KERNELS_DIR / name, target)
    return target


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- building --------------------------------------------------------------------------------------

def test_build_writes_exactly_cl_xml_gpu_xml(tmp_path):
    out = tmp_path / "out"
    result = build_kernel(KERNELS_DIR / "mish_h", out)
    assert sorted(p.name for p in out.iterdir()) == ["mish_h.cl", "mish_h.gpu.xml", "mish_h.xml"]
    assert (result.cl_path, result.xml_path, result.gpu_xml_path) == (out / "mish_h.cl", out / "mish_h.xml",
                                                                      out / "mish_h.gpu.xml")
    assert result.bin_path is None and not result.cached
    assert any("clc" in note for note in result.notes)
    # The .cl as written passes the contract's clang command, without the Movidius declarations.
    subprocess.run([*CONTRACT_CLANG, str(result.cl_path)], check=True, capture_output=True)


def test_unchanged_rebuild_does_no_work(tmp_path):
    out = tmp_path / "out"
    build_kernel(KERNELS_DIR / "mish_h", out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = build_kernel(KERNELS_DIR / "mish_h", out)
    assert again.cached
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_output_folder_inside_the_kernel_folder_stays_up_to_date(tmp_path):
    kernel = copy_kernel(tmp_path, "mish_h")
    build_kernel(kernel, kernel / "out")
    assert build_kernel(kernel, kernel / "out").cached


def test_cache_restores_a_deleted_output_without_rendering(tmp_path, monkeypatch):
    out = tmp_path / "out"
    build_kernel(KERNELS_DIR / "mish_h", out)
    first = listing(out)
    shutil.rmtree(out)
    import kernelkit.kernel.builder.build as build_module

    def no_checks(spec):
        raise AssertionError("a cached build must not render or check")
    monkeypatch.setattr(build_module, "check_spec", no_checks)
    again = build_kernel(KERNELS_DIR / "mish_h", out)
    assert again.cached and listing(out) == first


def test_a_changed_spec_rebuilds(tmp_path):
    kernel = copy_kernel(tmp_path, "hard_sigmoid_h")
    out = tmp_path / "out"
    build_kernel(kernel, out)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text().replace("fmin(1.0f, alpha * x + beta)", "fmin(1.0f, alpha * x + beta + 0.0f)"))
    again = build_kernel(kernel, out)
    assert not again.cached
    assert "beta + 0.0f" in again.cl_path.read_text()


def test_other_kernels_outputs_stay(tmp_path):
    out = tmp_path / "out"
    build_kernel(KERNELS_DIR / "mish_h", out)
    build_kernel(KERNELS_DIR / "cumsum", out)
    assert {p.name for p in out.iterdir()} == {"mish_h.cl", "mish_h.xml", "mish_h.gpu.xml", "cumsum.cl",
                                               "cumsum.xml", "cumsum.gpu.xml"}


def test_refuses_to_overwrite_a_file_kernelkit_did_not_write(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mish_h.xml").write_text("<!-- my own bindings -->\n")
    with pytest.raises(KernelkitError, match="did not write") as info:
        build_kernel(KERNELS_DIR / "mish_h", out)
    assert info.value.path.endswith("mish_h.xml")
    assert listing(out) == {"mish_h.xml": b"<!-- my own bindings -->\n"}
    build_kernel(KERNELS_DIR / "mish_h", out, force=True)
    assert "written by kernelkit" in (out / "mish_h.xml").read_text()


def test_output_path_that_is_a_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(KernelkitError, match="not a folder"):
        build_kernel(KERNELS_DIR / "mish_h", target)


BROKEN_TEMPLATE = """\
{% import "_skeleton/macros.cl.j2" as kk with context %}
{{ kk.header() }}
{{ kk.signature() }}
{
    const int i = (int)get_global_id(0);
    dst[i] = src[i] + undeclared_thing;
}
"""


def custom_kernel(tmp_path: Path, template: str) -> Path:
    folder = tmp_path / "ck"
    folder.mkdir(exist_ok=True)
    (folder / "kernel.toml").write_text(textwrap.dedent("""
        [kernel]
        name = "ck"
        op = "Ck"
        family = "custom"
        template = "ck.cl.j2"
        [[kernel.inputs]]
        name = "src"
        [kernel.output]
        name = "dst"
        [kernel.work]
        dim = "input,0"
        global = ["8", "Y", "F*B"]
        local = ["8", "1", "1"]
    """))
    (folder / "ck.cl.j2").write_text(template)
    return folder


def test_compile_error_maps_to_the_template_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(KernelkitError) as info:
        build_kernel(custom_kernel(tmp_path, BROKEN_TEMPLATE), out)
    err = info.value
    assert err.path.endswith("ck.cl.j2") and err.line == 6
    assert "undeclared_thing" in err.message
    assert err.where.startswith("generated ck.cl:")
    assert listing(out) == {"keep.txt": b"mine"}


def test_double_literal_is_a_compile_error_with_fp64_off(tmp_path):
    template = BROKEN_TEMPLATE.replace("src[i] + undeclared_thing", "src[i] * 2.0")
    with pytest.raises(KernelkitError) as info:
        build_kernel(custom_kernel(tmp_path, template), tmp_path / "out")
    assert info.value.line == 6 and "double" in info.value.message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_gpu_view_is_compiled_too(tmp_path):
    # Uses W only in the MYRIAD view: the GPU view has no W (no scalar declared), so it fails there.
    template = BROKEN_TEMPLATE.replace("+ undeclared_thing", "").replace(
        "{{ kk.header() }}", "{{ kk.header() }}\n#ifdef KERNELKIT_GPU\n#error gpu view\n#endif")
    with pytest.raises(KernelkitError) as info:
        build_kernel(custom_kernel(tmp_path, template), tmp_path / "out")
    assert "GPU view" in info.value.message and info.value.line == 4


def test_lint_errors_fail_the_build_with_findings(tmp_path):
    template = BROKEN_TEMPLATE.replace("src[i] + undeclared_thing", "src[i]").replace(
        "const int i = (int)get_global_id(0);", "__local half big[60000];\n    const int i = (int)get_global_id(0);\n"
                                                "    big[0] = src[0];")
    with pytest.raises(BuildChecksFailed) as info:
        build_kernel(custom_kernel(tmp_path, template), tmp_path / "out")
    messages = [f.message for f in info.value.findings if f.is_error]
    assert any("120000 bytes" in m for m in messages)
    bad = next(f for f in info.value.findings if f.is_error)
    assert bad.path.endswith("ck.cl.j2") and bad.line == 5


def test_binding_cross_check_runs_on_the_generated_pair(tmp_path):
    # A template that declares an argument the spec does not know: the MYRIAD binding cannot bind it.
    template = BROKEN_TEMPLATE.replace("{{ kk.signature() }}",
                                      "__kernel void ck(__global const half* restrict src,"
                                      " __global half* restrict dst, int extra)").replace(" + undeclared_thing", "")
    with pytest.raises(BuildChecksFailed) as info:
        build_kernel(custom_kernel(tmp_path, template), tmp_path / "out")
    assert any("extra" in f.message for f in info.value.findings if f.is_error)


def test_build_all_reports_each_kernel(tmp_path, capsys):
    import io

    stream, errors = io.StringIO(), io.StringIO()
    status = build_all([tmp_path / "missing", KERNELS_DIR / "mish_h"], tmp_path / "out", stream=stream,
                       err_stream=errors)
    assert status == 2
    assert "built mish_h: mish_h.cl, mish_h.xml, mish_h.gpu.xml" in stream.getvalue()
    assert errors.getvalue().startswith(f"kernelkit: error: {tmp_path / 'missing'}: kernel folder not found")
    stream = io.StringIO()
    assert build_all([KERNELS_DIR / "mish_h"], tmp_path / "out", stream=stream) == 0
    assert "up to date mish_h" in stream.getvalue() and "no work done" in stream.getvalue()


@pytest.mark.parametrize("name", ["mish_h", "hard_sigmoid_h", "cumsum", "upsample_nearest_h", "reduce_prod_h"])
def test_bundled_kernels_check_clean(name):
    checked = check_spec(load_spec(KERNELS_DIR / name))
    assert [str(f) for f in checked.findings] == []


# --- host check and lint ---------------------------------------------------------------------------

def test_host_check_declares_the_movidius_builtins():
    source = textwrap.dedent("""
        __kernel void k(__global const half* restrict a, __global half* restrict b) {
            __local half tile[64];
            event_t e = async_work_group_copy_2D2D(tile, a, 8, 8, 0, 0, 0);
            wait_group_events(1, &e);
            e = async_work_group_copy_3D3D(b, tile, 8, 2, 0, 0, 4, 0, 0, 0);
            wait_group_events(1, &e);
            __private half p[16];
            item_dma_event_t d = WorkItemDmaCreateTransaction(a, p, 32, 0);
            WaitWorkItemDmaEvents(1, &d);
        }
    """)
    assert host_check(source) == []
    errors = host_check(source, include_builtins=False)
    assert any("async_work_group_copy_2D2D" in f.message for f in errors)


def test_lint_flags_what_shave_lacks():
    source = textwrap.dedent("""
        #pragma OPENCL EXTENSION cl_khr_fp16 : enable
        __kernel void k(__global const half* a, __global float* restrict b, read_only image2d_t img) {
            double d = 1;
            long n = 2;
            printf("%d", 1);
            b[0] = a[0] + d + n;
            if (get_global_id(0) > 4) return;
        }
    """)
    findings = lint_source(source, path="k.cl")
    errors = {f.message.split(" (")[0] for f in findings if f.is_error}
    assert errors == {"SHAVE has no fp64", "64-bit integers are not used on SHAVE", "SHAVE kernels have no printf",
                      "SHAVE kernels have no image support"}
    double = next(f for f in findings if "fp64" in f.message)
    assert (double.path, double.line) == ("k.cl", 4)
    warnings = [f.message for f in findings if not f.is_error]
    assert any("early `return`" in m for m in warnings)
    assert any("'a' lacks `restrict`" in m for m in warnings)
    assert not any("'b' lacks" in m for m in warnings)


def test_lint_ignores_comments_and_strings():
    source = ('#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n'
              '/* no double here, no printf( either */\n'
              '__kernel void k(__global half* restrict a) { a[0] = 1; // long comment\n}\n')
    assert lint_source(source) == []


def test_local_memory_estimate_counts_fp16_bytes():
    source = textwrap.dedent("""
        #define TILE 1024
        #define ROWS (TILE / 256)
        __kernel void k(__global half* restrict a) {
            __local half in_tile[TILE];
            local float sums[ROWS][16];
            __local int8 packed[2 * 4];
            __private half row[64];
            float scratch[3];
            event_t events[2];
        }
        void helper(void) { __local half not_in_a_kernel[99]; }
    """)
    assert local_memory_estimate(source) == [("in_tile", 2048), ("sums", 256), ("packed", 256)]
    assert private_memory_estimate(source) == [("row", 128), ("scratch", 12)]


def test_memory_estimates_count_size_t_as_the_shaves_32_bits():
    source = textwrap.dedent("""
        __kernel void k(__global half* restrict a) {
            __local size_t offsets[16];
            size_t index[4];
            __local unsigned int flags[3];
        }
    """)
    assert local_memory_estimate(source) == [("offsets", 64), ("flags", 12)]
    assert private_memory_estimate(source) == [("index", 16)]


def test_cmx_budget_warning_and_error():
    def kernel(halves: int) -> str:
        return ("#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
                f"__kernel void k(__global half* restrict a) {{ __local half t[{halves}]; t[0] = a[0]; }}\n")
    assert lint_source(kernel(30 * 1024)) == []                            # 60 KB
    warning = lint_source(kernel(40 * 1024))                               # 80 KB
    assert [f.severity for f in warning] == ["warning"] and "81920 bytes" in warning[0].message
    error = lint_source(kernel(60 * 1024))                                 # 120 KB
    assert [f.severity for f in error] == ["error"]
    extra = lint_source(kernel(30 * 1024), local_data_bytes=8 * 1024)     # plus local_data arguments
    assert [f.severity for f in extra] == ["warning"]


def test_lint_reports_arrays_it_cannot_size():
    source = ("#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n"
              "__kernel void k(__global half* restrict a) { __local half t[SIZE_FROM_BUILD]; t[0] = a[0]; }\n")
    assert any("cannot size array 't'" in f.message for f in lint_source(source))


# --- clc ---------------------------------------------------------------------------------------------

FAKE_CLC = """#!/usr/bin/env python3
# Stands in for the licence-restricted SHAVE compiler: records how it was called, writes an output file.
import json, os, sys
args = sys.argv[1:]
record = {"args": args, "env": {k: os.environ.get(k) for k in
          ("SHAVE_MA2X8XLIBS_DIR", "SHAVE_LDSCRIPT_DIR", "SHAVE_MYRIAD_LD_DIR", "SHAVE_MOVIASM_DIR")}}
with open(os.environ["FAKE_CLC_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if "FAIL" in open(args[args.index("-o") - 1]).read():
    print("error: kernel too big for SHAVE", file=sys.stderr)
    sys.exit(1)
with open(args[args.index("-o") + 1], "wb") as out:
    out.write(b"\\x7fELF fake")
"""


def install_fake_clc(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "lib").mkdir()
    (root / "ldscripts" / "ma2x8x").mkdir(parents=True)
    clc = root / "bin" / "clc"
    clc.write_text(FAKE_CLC)
    clc.chmod(clc.stat().st_mode | stat.S_IEXEC)
    return clc


def test_clc_runs_as_the_openvino_build_does(tmp_path, monkeypatch):
    install = tmp_path / "openvino_2021.4"
    root = install / "deployment_tools" / "tools" / "cl_compiler"
    install_fake_clc(root)
    log = tmp_path / "clc.log"
    monkeypatch.setenv("KERNELKIT_OPENVINO_DIR", str(install))
    monkeypatch.setenv("FAKE_CLC_LOG", str(log))
    out = tmp_path / "out"
    result = build_kernel(KERNELS_DIR / "mish_h", out)
    assert result.bin_path == out / "mish_h.bin" and result.bin_path.read_bytes() == b"\x7fELF fake"
    assert sorted(p.name for p in out.iterdir()) == ["mish_h.bin", "mish_h.cl", "mish_h.gpu.xml", "mish_h.xml"]
    assert result.notes == []
    record = json.loads(log.read_text().splitlines()[0])
    args = record["args"]
    assert args[:3] == ["--strip-binary-header", "-d", "ma2x8x"]
    assert args[3].endswith("mish_h.cl") and args[4] == "-o" and args[5].endswith("mish_h.bin")
    assert record["env"] == {"SHAVE_MA2X8XLIBS_DIR": f"{root}/lib/",
                             "SHAVE_LDSCRIPT_DIR": f"{root}/ldscripts/ma2x8x/",
                             "SHAVE_MYRIAD_LD_DIR": f"{root}/bin/", "SHAVE_MOVIASM_DIR": f"{root}/bin/"}
    # Unchanged rebuild: clc is not run again.
    assert build_kernel(KERNELS_DIR / "mish_h", out).cached
    assert len(log.read_text().splitlines()) == 1


def test_clc_from_a_2022_layout_and_from_kernelkit_clc(tmp_path, monkeypatch):
    install = tmp_path / "ov2022"
    clc = install_fake_clc(install / "tools" / "cl_compiler")
    monkeypatch.setenv("KERNELKIT_OPENVINO_DIR", str(install))
    assert find_clc().executable == clc
    monkeypatch.delenv("KERNELKIT_OPENVINO_DIR")
    monkeypatch.setenv("KERNELKIT_CLC", str(clc))
    found = find_clc()
    assert found.executable == clc and found.root == clc.resolve().parent.parent


def test_clc_variables_pointing_nowhere_are_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELKIT_OPENVINO_DIR", str(tmp_path))
    with pytest.raises(KernelkitError, match="no cl_compiler/bin/clc"):
        find_clc()
    monkeypatch.delenv("KERNELKIT_OPENVINO_DIR")
    monkeypatch.setenv("KERNELKIT_CLC", str(tmp_path / "clc"))
    with pytest.raises(KernelkitError, match="not an executable"):
        find_clc()


def test_clc_failure_writes_nothing(tmp_path, monkeypatch):
    install_fake_clc(tmp_path / "ov" / "tools" / "cl_compiler")
    monkeypatch.setenv("KERNELKIT_OPENVINO_DIR", str(tmp_path / "ov"))
    monkeypatch.setenv("FAKE_CLC_LOG", str(tmp_path / "log"))
    kernel = copy_kernel(tmp_path, "mish_h")
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text().replace('description = "', 'description = "FAIL '))
    with pytest.raises(KernelkitError, match="kernel too big"):
        build_kernel(kernel, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_compile_error_in_an_expression_names_the_spec_key(tmp_path):
    kernel = copy_kernel(tmp_path, "mish_h")
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text().replace("x * tanh(log(", "x * tanhh(log("))
    with pytest.raises(KernelkitError) as info:
        build_kernel(kernel, tmp_path / "out")
    err = info.value
    assert err.path.endswith("elementwise/kernel.cl.j2") and "tanhh" in err.message
    assert f"kernel.params.expr in {toml.resolve()}" in err.hint


def test_host_check_takes_what_clc_takes_on_a_32_bit_device():
    # size_t is 32 bits on SHAVE: min(size_t expression, uint) is one overload there (ambiguous on spir64 as such);
    # the SAU.SUMX intrinsic is declared. The same work-item header serves the emulator.
    source = ("__kernel void k(__global const half* src, __global half* dst, int n)\n"
              "{\n"
              "    const uint g = min(get_global_id(0) + 1, (uint)n);\n"
              "    dst[g] = __builtin_shave_sau_sumx_f16_r(vload8(g, src));\n"
              "}\n")
    assert host_check(source, name="k.cl") == []
    undeclared = source.replace("__builtin_shave_sau_sumx_f16_r", "__builtin_shave_not_an_intrinsic")
    assert any("not_an_intrinsic" in f.message for f in host_check(undeclared, name="k.cl"))
