"""The bundled example kernels compute what their references say: every case of every spec, built and run on
the SHAVE emulator (PoCL) through the generated MYRIAD binding, against an independent float64 numpy form."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from kernelkit.kernel.builder.build import build_kernel
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import load_spec

KERNELS = ["mish_h", "hard_sigmoid_h", "cumsum", "upsample_nearest_h", "reduce_prod_h"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("kernels")
    return {name: build_kernel(KERNELS_DIR / name, out) for name in KERNELS}


def case_inputs(spec, case):
    rng = np.random.default_rng(case.seed)
    arrays = []
    for index, (shape, dtype) in enumerate(zip(case.shapes, case.dtypes)):
        if index in case.fixed:
            arrays.append(np.asarray(case.fixed[index], dtype=np.int32 if dtype == "i32" else np.float16))
        elif dtype == "i32":
            arrays.append(rng.integers(int(case.low), int(case.high), size=shape, endpoint=True).astype(np.int32))
        else:
            data = rng.uniform(case.low, case.high, size=shape)
            if case.values == "edges":
                flat = data.reshape(-1)
                edges = [0.0, -0.0, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -24), 1.0, -1.0]
                flat[:len(edges)] = edges[:flat.size]
            arrays.append(data.astype(np.float16))
    return arrays


def flag(value) -> bool:
    return str(value).strip().lower() in ("1", "true")


# Written independently of the specs' [reference] sections.
def expected(name, inputs, attrs):
    x = inputs[0].astype(np.float64)
    if name == "mish_h":
        with np.errstate(over="ignore"):
            return x * np.tanh(np.log1p(np.exp(x)))
    if name == "hard_sigmoid_h":
        return np.minimum(1.0, np.maximum(0.0, float(attrs["alpha"]) * x + float(attrs["beta"])))
    if name == "upsample_nearest_h":
        f = int(attrs["factor"])
        n, c, h, w = x.shape
        rows = np.arange(h * f) // f
        cols = np.arange(w * f) // f
        return x[:, :, rows][:, :, :, cols]
    if name == "reduce_prod_h":
        axis = int(inputs[1].reshape(-1)[0]) % x.ndim
        result = np.ones_like(np.take(x, [0], axis=axis))
        for k in range(x.shape[axis]):
            result = result * np.take(x, [k], axis=axis)
        return result if flag(attrs["keep_dims"]) else np.squeeze(result, axis=axis)
    if name == "cumsum":
        axis = int(inputs[1].reshape(-1)[0]) % x.ndim
        out = np.zeros_like(x)
        length = x.shape[axis]
        for position in range(length):
            if flag(attrs["reverse"]):
                chosen = range(position + (1 if flag(attrs["exclusive"]) else 0), length)
            else:
                chosen = range(0, position + (0 if flag(attrs["exclusive"]) else 1))
            index = [slice(None)] * x.ndim
            index[axis] = position
            total = np.zeros_like(np.take(x, 0, axis=axis))
            for k in chosen:
                total = total + np.take(x, k, axis=axis)
            out[tuple(index)] = total
        return out
    raise AssertionError(name)


CASES = [(name, case.name) for name in KERNELS for case in load_spec(KERNELS_DIR / name).cases]


@pytest.mark.parametrize("name,case_name", CASES)
def test_bundled_kernel_case_matches_reference(built, name, case_name):
    from kernelkit.kernel.emulator.run import emulate

    spec = load_spec(KERNELS_DIR / name)
    case = next(c for c in spec.cases if c.name == case_name)
    inputs = case_inputs(spec, case)
    output_shape = case.output_shape or case.shapes[0]
    result = emulate(built[name].xml_path, spec.op, inputs, attrs=dict(case.attrs), output_shapes=[output_shape],
                     as_patched=True, fold_batch=spec.family == "elementwise")
    actual = np.asarray(result.outputs[0], dtype=np.float64)
    want = expected(name, inputs, case.attrs)
    assert actual.shape == want.shape == tuple(output_shape)
    atol = case.atol if case.atol is not None else 2e-3
    rtol = case.rtol if case.rtol is not None else 1e-2
    both_inf = np.isinf(want) & (actual == want)
    bad = ~both_inf & (np.abs(actual - want) > atol + rtol * np.abs(want))
    assert not bad.any(), f"{bad.sum()} of {bad.size} elements off; worst {np.max(np.abs(actual - want)[bad])}"


def test_spec_references_agree_with_the_independent_ones():
    # The numpy expressions and module in the specs are what the harness uses: check them here too.
    for name in KERNELS:
        spec = load_spec(KERNELS_DIR / name)
        for case in spec.cases:
            inputs = case_inputs(spec, case)
            names = {t.name: x.astype(np.float64) for t, x in zip(spec.inputs, inputs)}
            if "numpy" in spec.reference:
                with np.errstate(over="ignore"):
                    got = eval(spec.reference["numpy"], {"__builtins__": {}, "np": np, **case.attrs, **names})
            else:
                module_spec = importlib.util.spec_from_file_location("ref", spec.dir / spec.reference["module"])
                module = importlib.util.module_from_spec(module_spec)
                module_spec.loader.exec_module(module)
                got = module.reference(inputs, dict(case.attrs))
            np.testing.assert_allclose(got, expected(name, inputs, case.attrs), rtol=1e-12, atol=1e-12)


TWO_STAGE_SPEC = """
[kernel]
name = "row_center"
op = "RowCenter"
family = "custom"
template = "row_center.cl.j2"

[[kernel.inputs]]
name = "x"

[kernel.output]
name = "y"

[[kernel.scalars]]
name = "W"
type = "int"
source = "I.X"
port = 0

[[kernel.stages]]
entry = "row_center_mean"
args = ["x", "means_out", "W"]
dim = "input,0"
global = ["1", "Y", "F*B"]
local = ["1", "1", "1"]
max_shaves = 4

[[kernel.stages.buffers]]
name = "means_out"
type = "output_buffer"
id = 0
dim = "input,0"
size = "Y*F*B*4"

[[kernel.stages]]
entry = "row_center_sub"
args = ["x", "means", "y", "W"]
dim = "input,0"
global = ["8", "Y", "F*B"]
local = ["8", "1", "1"]

[[kernel.stages.buffers]]
name = "means"
type = "input_buffer"
id = 0
dim = "input,0"
size = "Y*F*B*4"
"""

TWO_STAGE_TEMPLATE = """\
{% import "_skeleton/macros.cl.j2" as kk with context %}
{{ kk.header() }}
{{ kk.signature() }}
{
    const int row = (int)(get_global_id(2) * get_global_size(1) + get_global_id(1));
{% if stage.index == 0 %}
    float total = 0.0f;
    for (int i = 0; i < W; ++i)
        total += (float)x[row * W + i];
    means_out[row] = total / (float)W;
{% else %}
    const int lanes = (int)get_local_size(0);
    for (int s = 0; s < (W + lanes - 1) / lanes; ++s) {
        const int i = row * W + min(s * lanes + (int)get_local_id(0), W - 1);
        y[i] = (half)((float)x[i] - means[row]);
    }
{% endif %}
}
"""


def test_two_stage_kernel_with_a_scratch_buffer_runs(tmp_path):
    from kernelkit.kernel.emulator.run import emulate

    folder = tmp_path / "row_center"
    folder.mkdir()
    (folder / "kernel.toml").write_text(TWO_STAGE_SPEC)
    (folder / "row_center.cl.j2").write_text(TWO_STAGE_TEMPLATE)
    result = build_kernel(folder, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["row_center.cl", "row_center.stage1.cl",
                                                                    "row_center.xml"]
    assert result.gpu_xml_path is None and any("one kernel per layer" in n for n in result.notes)
    x = np.random.default_rng(5).uniform(-3, 3, (1, 2, 3, 11)).astype(np.float16)
    run = emulate(result.xml_path, "RowCenter", [x], as_patched=True)
    xd = x.astype(np.float64)
    np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), xd - xd.mean(axis=-1, keepdims=True),
                               atol=4e-3, rtol=1e-2)


FAMILY_REDUCE_SPEC = """
[kernel]
name = "reducer"
op = "Reducer"
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
tile = 16
"""


@pytest.mark.parametrize("combine,axis", [("max", 3), ("min", 1), ("mean", -1), ("sum", 2), ("mean", 0)])
def test_axis_scan_family_reductions_with_an_attribute_axis(tmp_path, combine, axis):
    from kernelkit.kernel.emulator.run import emulate

    folder = tmp_path / "reducer"
    folder.mkdir()
    (folder / "kernel.toml").write_text(FAMILY_REDUCE_SPEC.replace("COMBINE", combine))
    result = build_kernel(folder, tmp_path / "out")
    x = np.random.default_rng(7).uniform(-2, 2, (2, 3, 5, 37)).astype(np.float16)   # 37 > tile: 3 tiles per row
    xd = x.astype(np.float64)
    want = {"max": np.max, "min": np.min, "mean": np.mean, "sum": np.sum}[combine](xd, axis=axis, keepdims=True)
    run = emulate(result.xml_path, "Reducer", [x], attrs={"axis": axis}, output_shapes=[want.shape], as_patched=True)
    np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), want, atol=2e-2, rtol=1e-2)


def test_cumsum_on_random_shapes_axes_and_flags(built):
    """Property check of the scan indexing: any 4-D shape, any axis (either sign), any flag combination."""
    from hypothesis import given, settings, strategies as st

    from kernelkit.kernel.emulator.run import emulate

    @settings(max_examples=12, deadline=None, derandomize=True)
    @given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 20)),
           axis=st.integers(-4, 3), exclusive=st.booleans(), reverse=st.booleans(), seed=st.integers(0, 9))
    def check(shape, axis, exclusive, reverse, seed):
        x = np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float16)
        inputs = [x, np.array(axis, dtype=np.int32)]
        attrs = {"exclusive": exclusive, "reverse": reverse}
        run = emulate(built["cumsum"].xml_path, "CumSum", inputs, attrs=attrs, as_patched=True)
        np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), expected("cumsum", inputs, attrs),
                                   atol=1e-2, rtol=1e-2)
    check()


@pytest.mark.parametrize("exclusive,reverse", [(False, False), (True, False), (False, True), (True, True)])
def test_scan_carries_across_cmx_tiles(tmp_path, exclusive, reverse):
    from kernelkit.kernel.emulator.run import emulate

    kernel = tmp_path / "cumsum"
    shutil.copytree(KERNELS_DIR / "cumsum", kernel)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text().replace('axis_from = "input"\n', 'axis_from = "input"\ntile = 16\n'))
    result = build_kernel(kernel, tmp_path / "out")
    x = np.random.default_rng(3).uniform(-1, 1, (1, 2, 3, 37)).astype(np.float16)   # 3 tiles per row
    inputs = [x, np.array(3, dtype=np.int32)]
    attrs = {"exclusive": exclusive, "reverse": reverse}
    run = emulate(result.xml_path, "CumSum", inputs, attrs=attrs, as_patched=True)
    np.testing.assert_allclose(np.asarray(run.outputs[0], dtype=np.float64), expected("cumsum", inputs, attrs),
                               atol=1e-2, rtol=1e-2)
