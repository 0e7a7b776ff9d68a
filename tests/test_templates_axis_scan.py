"""The axis_scan family at input ranks 1-4: kernels built for a rank (params.rank) scan and reduce along any
axis, either sign, on the SHAVE emulator, against numpy; ONNX's CumSum node tests pass at ranks 1 and 2."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kernelkit.kernel.builder.build import build_kernel
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import load_spec
from shave_bindings import emulate_unsplit


def cumsum_for_rank(folder: Path, rank: int, onnx: bool = False) -> Path:
    """kernels/cumsum rebuilt for one input rank (its own cases are rank 3-4, so they are dropped)."""
    kernel = folder / f"cumsum_rank{rank}"
    shutil.copytree(KERNELS_DIR / "cumsum", kernel)
    toml = kernel / "kernel.toml"
    text = toml.read_text()
    text = text[:text.index("[[cases]]")].replace('axis_from = "input"\n', f'axis_from = "input"\nrank = {rank}\n')
    # The library spec lists ONNX's CumSum tests (ONNX leaves default attributes out; the layer gets them as
    # the converter would write them).
    onnx_line = 'onnx = { op = "CumSum", defaults = { exclusive = 0, reverse = 0 } }\n'
    assert onnx_line in text
    if not onnx:
        text = text.replace(onnx_line, "")
    toml.write_text(text)
    return kernel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan")
    return {rank: build_kernel(cumsum_for_rank(folder, rank), folder / f"out{rank}") for rank in (1, 2, 3)}


def numpy_cumsum(x, axis, exclusive, reverse):
    x = x.astype(np.float64)
    if reverse:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis)
    if exclusive:
        out = out - x
    return np.flip(out, axis) if reverse else out


def _run(result, x, axis, exclusive, reverse):
    # a 2-D batch is a layer the plugin would split per sample (patch refuses to bind it): the index math is
    # checked over the whole tensor
    run = emulate_unsplit(result.xml_path, "CumSum", [x, np.array(axis, dtype=np.int32)],
                          attrs={"exclusive": exclusive, "reverse": reverse}, as_patched=True)
    return np.asarray(run.outputs[0], dtype=np.float64)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_cumsum_any_axis_any_flags(built, rank):
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=10, deadline=None, derandomize=True)
    @given(shape=st.lists(st.integers(1, 11), min_size=rank, max_size=rank), data=st.data(),
           exclusive=st.booleans(), reverse=st.booleans())
    def check(shape, data, exclusive, reverse):
        axis = data.draw(st.integers(-rank, rank - 1))
        x = np.random.default_rng(sum(shape)).uniform(-1, 1, shape).astype(np.float16)
        got = _run(built[rank], x, axis, exclusive, reverse)
        np.testing.assert_allclose(got, numpy_cumsum(x, axis % rank, exclusive, reverse), atol=1e-2, rtol=1e-2)
    check()


def test_rank_two_rows_longer_than_a_cmx_tile(tmp_path):
    kernel = cumsum_for_rank(tmp_path, 2)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text().replace("rank = 2\n", "rank = 2\ntile = 16\n"))
    result = build_kernel(kernel, tmp_path / "out")
    x = np.random.default_rng(1).uniform(-1, 1, (3, 37)).astype(np.float16)      # 3 tiles per row
    for axis, exclusive, reverse in [(1, False, False), (-1, True, True), (0, True, False)]:
        np.testing.assert_allclose(_run(result, x, axis, exclusive, reverse),
                                   numpy_cumsum(x, axis % 2, exclusive, reverse), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("rank", [1, 2])
def test_onnx_cumsum_node_tests_pass(tmp_path, rank):
    from kernelkit.runners.onnx_node import onnx_cases

    kernel = cumsum_for_rank(tmp_path, rank, onnx=True)
    result = build_kernel(kernel, tmp_path / "out")
    cases, _ = onnx_cases(load_spec(kernel))
    # this rank's tests on float data (the kernel's x is half; ONNX's int32 CumSum tests do not apply)
    mine = [c for c in cases if c.inputs[0].ndim == rank and c.inputs[0].dtype.kind == "f"]
    assert len(mine) >= 3
    for case in mine:
        run = emulate_unsplit(result.xml_path, "CumSum", case.inputs, attrs=case.attrs, as_patched=True)
        np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), case.expected[0],
                                   atol=1e-2, rtol=1e-3, err_msg=case.name)


REDUCER = """
[kernel]
name = "sum_rank2"
op = "SumRank2"
family = "axis_scan"
[[kernel.inputs]]
name = "x"
[kernel.output]
name = "y"
[[kernel.scalars]]
name = "axis"
type = "int"
source = "axis"
[kernel.params]
mode = "reduce"
combine = "COMBINE"
axis_from = "scalar"
rank = 2
"""


@pytest.mark.parametrize("combine,axis", [("sum", 0), ("max", 1), ("mean", -1), ("prod", -2)])
def test_rank_two_reductions(tmp_path, combine, axis):
    folder = tmp_path / "reducer"
    folder.mkdir()
    (folder / "kernel.toml").write_text(REDUCER.replace("COMBINE", combine))
    result = build_kernel(folder, tmp_path / "out")
    x = np.random.default_rng(2).uniform(0.5, 1.5, (4, 13)).astype(np.float16)
    want = {"sum": np.sum, "max": np.max, "mean": np.mean, "prod": np.prod}[combine](
        x.astype(np.float64), axis=axis, keepdims=True)
    run = emulate_unsplit(result.xml_path, "SumRank2", [x], attrs={"axis": axis}, output_shapes=[want.shape],
                          as_patched=True)
    np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), want, atol=2e-2, rtol=1e-2)


def test_low_ranks_bind_no_lookup_that_the_plugin_would_refuse(tmp_path):
    from kernelkit.kernel.bindings.model import ScalarParam
    from kernelkit.kernel.render import myriad_layers

    for rank, sources in [(1, {"I.X"}), (2, {"I.X"}), (3, {"I.X", "I.F"}), (4, {"I.X", "I.F"})]:
        spec = load_spec(cumsum_for_rank(tmp_path / str(rank), rank))
        shape_sources = {p.source for p in myriad_layers(spec)[0].kernels[0].params
                         if isinstance(p, ScalarParam) and "." in p.source}
        assert shape_sources == sources
        assert spec.ranks == [rank]
        # ranks 1-2: one group per row of the last dimension (the plugin's B), none idle
        assert spec.work.global_ == (["8", "1", "B"] if rank <= 2 else ["8", "Y", "F*B"])


def test_unsupported_rank_parameter_is_refused(tmp_path):
    kernel = cumsum_for_rank(tmp_path, 5)
    with pytest.raises(KernelkitError) as info:
        load_spec(kernel)
    assert info.value.where == "kernel.params.rank" and "one of 1, 2, 3, 4" in info.value.message


def test_case_of_another_rank_is_refused_with_the_parameter_to_set(tmp_path):
    kernel = cumsum_for_rank(tmp_path, 2)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text() + textwrap.dedent("""
        [[cases]]
        name = "one_d"
        shapes = [[5], []]
        dtypes = ["f16", "i32"]
        attrs = { exclusive = false, reverse = false }
        fixed = { axis = 0 }
    """))
    with pytest.raises(KernelkitError) as info:
        load_spec(kernel)
    assert info.value.where == "cases[0].shapes[0]" and "built for rank 2" in info.value.message
    assert "rank = 1" in info.value.hint
