"""The elementwise family at every rank the plugin can describe (0-4): generated kernels run on the SHAVE
emulator through their MYRIAD binding and match numpy; the work sizes tile the element count exactly."""

from __future__ import annotations

import math
import shutil
import textwrap

import numpy as np
import pytest

from kernelkit.kernel.bindings import expr, gpu, myriad_check
from kernelkit.kernel.builder.build import build_kernel
from kernelkit.core.errors import KernelkitError
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.render import gpu_layer, myriad_layers
from kernelkit.kernel.spec import load_spec

SHAPES = [(), (1,), (5,), (10000,), (7, 3), (64, 24), (3, 5, 7), (2, 16, 9), (1, 3, 5, 7), (2, 3, 4, 300),
          (1, 8, 16, 64), (3, 1, 1, 1)]


@pytest.fixture(scope="module")
def hard_sigmoid(tmp_path_factory):
    return build_kernel(KERNELS_DIR / "hard_sigmoid_h", tmp_path_factory.mktemp("hs"))


def _emulate(result, op, inputs, attrs=None):
    # rank 0-1 tensors and 2-D batches as patch binds them (the real plugin takes no rank 0-1 tensor, and
    # splits a 2-D batch per sample)
    from kernelkit.kernel.emulator.run import emulate

    run = emulate(result.xml_path, op, inputs, attrs=attrs or {}, as_patched=True, fold_batch=True)
    assert not [f for f in run.findings if f.severity == "error"]
    return np.asarray(run.outputs[0], dtype=np.float64)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)) or "scalar")
def test_hard_sigmoid_at_every_rank(hard_sigmoid, shape):
    x = np.random.default_rng(len(shape)).uniform(-6, 6, shape).astype(np.float16)
    got = _emulate(hard_sigmoid, "HardSigmoidH", [x], {"alpha": 0.25, "beta": 0.375})
    want = np.clip(0.25 * x.astype(np.float64) + 0.375, 0.0, 1.0)
    assert got.shape == shape
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-3)


def _oracle_group(shape):
    """What the local size must be: the larger of gcd(elements, 256) and the row width X when X <= 256."""
    dims = expr.dims_bfyx(shape)
    elements = math.prod(dims.values())
    return max(math.gcd(elements, 256), dims["X"] if dims["X"] <= 256 else 0)


@pytest.mark.parametrize("shape", SHAPES + [(1, 3, 299, 299), (1, 1000), (512, 768), (1, 64, 64, 256), (1, 1, 1, 5000)])
def test_work_sizes_tile_the_element_count_exactly(shape):
    work = load_spec(KERNELS_DIR / "mish_h").work
    variables = expr.size_variables(shape, {"alpha": 2})
    global_size = expr.evaluate(work.global_[0], variables)
    local_size = expr.evaluate(work.local[0], variables)
    assert global_size == math.prod(shape)
    assert local_size == _oracle_group(shape)
    assert global_size % local_size == 0 and 1 <= local_size <= 256
    if global_size % 8 == 0:
        assert local_size % 8 == 0          # clc keeps its vectorised variant


def test_gpu_binding_takes_the_same_work_sizes():
    # The sizes use only + - * / %, which the GPU plugin's expression language has too.
    spec = load_spec(KERNELS_DIR / "mish_h")
    layer = gpu_layer(spec)
    assert not [f for f in gpu.validate([layer]) if f.severity == "error"]
    assert (layer.global_, layer.local) == (spec.work.global_, spec.work.local)
    assert not [f for f in myriad_check.validate(myriad_layers(spec)) if f.severity == "error"]


def _binary_kernel(tmp_path, staging="direct"):
    folder = tmp_path / f"blend_{staging}"
    folder.mkdir()
    (folder / "kernel.toml").write_text(textwrap.dedent(f"""
        [kernel]
        name = "blend_{staging}"
        op = "Blend"
        family = "elementwise"
        [[kernel.inputs]]
        name = "a"
        [[kernel.inputs]]
        name = "b"
        [kernel.output]
        name = "y"
        [[kernel.scalars]]
        name = "w"
        type = "float"
        source = "weight"
        [kernel.params]
        expr = "w * a + (1.0f - w) * b * b"
        staging = "{staging}"
    """))
    return folder


@pytest.mark.parametrize("staging", ["direct", "cmx"])
@pytest.mark.parametrize("shape", [(), (9,), (6, 10), (2, 3, 17), (1, 4, 8, 32)], ids=str)
def test_binary_expression_both_stagings(tmp_path, staging, shape):
    result = build_kernel(_binary_kernel(tmp_path, staging), tmp_path / "out")
    if staging == "cmx":
        assert "async_work_group_copy(" in result.cl_path.read_text()
    rng = np.random.default_rng(5)
    a = rng.uniform(-2, 2, shape).astype(np.float16)
    b = rng.uniform(-2, 2, shape).astype(np.float16)
    got = _emulate(result, "Blend", [a, b], {"weight": 0.75})
    ad, bd = a.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(got, 0.75 * ad + 0.25 * bd * bd, atol=4e-3, rtol=2e-3)


def test_mish_takes_onnx_rank_one_data(tmp_path):
    # ONNX's Mish node test is a rank-1 tensor of 10000 values (not a multiple of 256: groups of 16).
    result = build_kernel(KERNELS_DIR / "mish_h", tmp_path)
    x = np.linspace(-8, 8, 10000).astype(np.float16)
    got = _emulate(result, "MishH", [x])
    xd = x.astype(np.float64)
    np.testing.assert_allclose(got, xd * np.tanh(np.log1p(np.exp(xd))), atol=2e-3, rtol=2e-3)


def test_rank_five_case_is_refused_with_a_reshape_hint(tmp_path):
    kernel = tmp_path / "mish_h"
    shutil.copytree(KERNELS_DIR / "mish_h", kernel)
    toml = kernel / "kernel.toml"
    toml.write_text(toml.read_text() + '\n[[cases]]\nname = "five"\nshapes = [[1, 2, 3, 4, 5]]\n')
    with pytest.raises(KernelkitError) as info:
        load_spec(kernel)
    assert "rank 5" in info.value.message and "reshape to rank 4" in info.value.hint
    assert info.value.where.startswith("cases[") and info.value.where.endswith("].shapes[0]")


def test_bad_staging_is_reported_at_the_template(tmp_path):
    folder = _binary_kernel(tmp_path, "dma")
    with pytest.raises(KernelkitError, match="staging must be"):
        build_kernel(folder, tmp_path / "out")


def test_cmx_staging_fits_one_group_of_256_halves_per_tensor(tmp_path):
    from kernelkit.kernel.builder.lint import local_memory_estimate
    from kernelkit.kernel.render import render_source

    spec = load_spec(_binary_kernel(tmp_path, "cmx"))
    assert local_memory_estimate(render_source(spec).text) == [("a_tile", 512), ("b_tile", 512), ("y_tile", 512)]
    assert local_memory_estimate(render_source(load_spec(KERNELS_DIR / "mish_h")).text) == []
