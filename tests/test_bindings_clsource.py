"""Kernel signatures from OpenCL source, with clang-15 preprocessing and without it."""

import shutil

import pytest

from kernelkit.kernel.bindings import clsource
from kernelkit.core.errors import KernelkitError

needs_clang = pytest.mark.skipif(shutil.which("clang-15") is None, reason="clang-15 is not installed")

SOURCE = """#pragma OPENCL EXTENSION cl_khr_fp16 : enable
// __kernel void commented_out(int a) {}
/* __kernel void also_commented(
   int b) {} */
__kernel __attribute__((reqd_work_group_size(8, 1, 1)))
void first(__global const half* restrict src, __global half *dst,
           __local half8 *tile, unsigned int n, const float alpha, short s)
{
    if (n) { dst[0] = src[0]; }
}

static int helper(int kernel_count) { return kernel_count; }

kernel void second(global uchar4 *p, constant float *table, int values[4]) { }
__kernel void proto(__global int *x);
"""


@pytest.mark.parametrize("preprocessor", [pytest.param(True, marks=needs_clang), False])
def test_kernels_and_parameters(preprocessor):
    kernels = clsource.parse_kernels(SOURCE, preprocessor=preprocessor)
    assert [k.name for k in kernels] == ["first", "second", "proto"]
    first, second, proto = kernels
    assert first.line == 6 and second.line == 14 and proto.line == 15
    assert first.attributes == {"reqd_work_group_size": (8, 1, 1)}
    assert first.has_body and not proto.has_body
    src, dst, tile, n, alpha, s = first.args
    assert (src.name, src.address_space, src.base_type, src.pointer, src.const, src.restrict) == \
        ("src", "global", "half", True, True, True)
    assert (dst.address_space, dst.const, dst.restrict) == ("global", False, False)
    assert (tile.address_space, tile.base_type, tile.vector_width, tile.scalar_type) == ("local", "half8", 8, "half")
    assert (n.base_type, n.pointer, n.address_space) == ("uint", False, "private")
    assert (alpha.base_type, alpha.const) == ("float", True)
    assert s.base_type == "short"
    p, table, values = second.args
    assert (p.address_space, p.base_type) == ("global", "uchar4")
    assert table.address_space == "constant"
    assert values.array and values.pointer


@needs_clang
def test_macros_are_expanded_with_defines():
    source = """#define T half
#define ARGS(t) __global const t *restrict in, __global t *restrict out
#ifdef WIDE
__kernel void k(ARGS(T), int n, int extra) {}
#else
__kernel void k(ARGS(T), int n) {}
#endif
"""
    narrow, = clsource.parse_kernels(source)
    assert [a.name for a in narrow.args] == ["in", "out", "n"]
    assert narrow.args[0].base_type == "half" and narrow.line == 6
    wide, = clsource.parse_kernels(source, {"WIDE": 1})
    assert [a.name for a in wide.args] == ["in", "out", "n", "extra"] and wide.line == 4


def test_const_before_the_star_makes_the_data_read_only_after_it_only_the_pointer():
    # OpenVINO's own st.cl writes through `__global half *const restrict dst_data`
    kernel, = clsource.parse_kernels("__kernel void k(const __global half *a, __global half *const restrict b,\n"
                                     "                __global const half *const c, __global half *d) {}")
    assert [(arg.name, arg.const) for arg in kernel.args] == [("a", True), ("b", False), ("c", True), ("d", False)]


def test_without_preprocessor_macro_parameters_are_reported_unreadable():
    source = "#define ARGS __global half *a\n__kernel void k(ARGS, int n) {}\n"
    kernel, = clsource.parse_kernels(source, preprocessor=False)
    assert kernel.unreadable == ["ARGS"]
    assert [a.name for a in kernel.args] == ["n"]


@needs_clang
def test_preprocessor_errors_name_the_file(tmp_path):
    with pytest.raises(KernelkitError) as info:
        clsource.parse_kernels('#include "missing.h"\n__kernel void k() {}\n', path=tmp_path / "k.cl")
    assert "does not preprocess" in str(info.value) and "missing.h" in str(info.value)


@needs_clang
def test_includes_resolve_beside_the_source(tmp_path):
    (tmp_path / "args.h").write_text("#define ARGS __global half *a, int n\n")
    kernel, = clsource.parse_kernels('#include "args.h"\n__kernel void k(ARGS) {}\n', path=tmp_path / "k.cl")
    assert [a.name for a in kernel.args] == ["a", "n"] and kernel.line == 2


def test_dma_companions():
    source = """
__kernel void __dma_preload_grn(__global half *src, __local half *tile) {}
__kernel void grn(__global half *src, __local half *tile) {}
__kernel void __dma_postwrite_grn(__global half *src, __local half *tile) {}
__kernel void __dma_preload_other(__global half *src) {}
"""
    kernels = clsource.parse_kernels(source, preprocessor=False)
    assert [(k.name, k.companion_kind, k.companion_of) for k in kernels] == [
        ("__dma_preload_grn", "preload", "grn"), ("grn", None, None), ("__dma_postwrite_grn", "postwrite", "grn"),
        ("__dma_preload_other", "preload", "other")]
    assert [k.name for k in clsource.entry_points(kernels)] == ["grn", "__dma_preload_other"]


def test_strip_comments_keeps_lines_and_strings():
    text = 'a /* x\ny */ b // c\n"/* not a comment */"'
    stripped = clsource.strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert "x" not in stripped and "c" not in stripped.split("\n")[1]
    assert '"/* not a comment */"' in stripped


def test_no_kernels():
    assert clsource.parse_kernels("int f(int a) { return a; }", preprocessor=False) == []


def test_read_source_errors(tmp_path):
    with pytest.raises(KernelkitError, match="not found"):
        clsource.read_source(tmp_path / "none.cl")
    bad = tmp_path / "bad.cl"
    bad.write_bytes(b"\xff\xfe kernel")
    with pytest.raises(KernelkitError, match="not UTF-8"):
        clsource.read_source(bad)
