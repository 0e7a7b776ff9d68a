"""The library kernels: specs load, builds pass the host checks, the plugin would pick the right binding,
and each kernel, run on the emulator, reproduces ONNX's own node test data (ground truth written by others).

The full conformance (every spec case against numpy, pyopencl f32, OpenVINO CPU and ONNX) runs with
`kernelkit test kernels/<name>` or `pytest kernels/`; this file keeps one ONNX run per kernel.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernelkit.kernel.bindings import myriad_read, myriad_select
from kernelkit.library.catalog import library_kernels
from kernelkit.library.onnx_tests import einsum_unary_tests, layer_tests
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import load_spec

from test_library_references import KERNEL_OPS

LIBRARY = dict(KERNEL_OPS, einsum_unary_h="Einsum")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from kernelkit.kernel.builder.build import build_kernel

    out = tmp_path_factory.mktemp("library")
    return {name: build_kernel(KERNELS_DIR / name, out / name) for name in LIBRARY}


def test_catalog_lists_every_library_kernel_with_its_op():
    listed = {k.name: k.op for k in library_kernels()}
    for name, op in LIBRARY.items():
        assert listed.get(name) == op, name


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_spec_loads_and_declares_its_references(name):
    spec = load_spec(KERNELS_DIR / name)
    assert spec.name == name and spec.op == LIBRARY[name]
    assert spec.reference["module"] == "reference.py"
    assert "adapter" in spec.reference["onnx"]
    assert len(spec.cases) >= 4
    shapes = [s for case in spec.cases for s in [*case.shapes, case.output_shape or case.shapes[0]]]
    assert any(len(s) and s[-1] % 8 for s in shapes), "a width that is not a multiple of 8"
    assert "one_by_one" in {case.name for case in spec.cases}, "a 1x1 case"
    assert any(int(np.prod(s)) >= 4096 for s in shapes), "a large case"


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_build_passes_host_checks(built, name):
    result = built[name]
    assert result.cl_path.is_file() and result.xml_path.is_file()
    assert not [f for f in result.findings if f.severity == "error"]
    layers = myriad_read.load(result.xml_path)
    assert layers and all(layer.name == LIBRARY[name] for layer in layers)


def _scalars(layer) -> dict[str, str]:
    return {p.arg_name: p.source for k in layer.kernels for p in k.params if type(p).__name__ == "ScalarParam"}


@pytest.mark.parametrize("name,attrs,expected", [
    ("grid_sample_h", {"mode": "bicubic", "padding_mode": "reflection", "align_corners": True},
     {"mode": "1", "padding": "2", "align": "1"}),
    ("grid_sample_h", {"mode": "nearest", "padding_mode": "zeros", "align_corners": False},
     {"mode": "2", "padding": "0", "align": "0"}),
    ("depth_to_space_h", {"block_size": 2, "mode": "depth_first"}, {"depth_first": "1"}),
    ("space_to_depth_h", {"block_size": 2, "mode": "blocks_first"}, {"depth_first": "0"}),
    ("scatter_nd_update_h", {"reduction": "max"}, {"reduction": "5"}),
    ("scatter_nd_update_h", {}, {"reduction": "0"}),  # opset3 layers have no reduction attribute
    ("interpolate_cubic_h", {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
     {"coordinate_mode": "4"}),
    ("einsum_h", {"equation": "ij,kj->ik"}, {"b_transposed": "1", "batch": "1"}),
    ("einsum_unary_h", {"equation": "bii->bi"}, {"mode": "3"}),
])
def test_plugin_picks_the_binding_for_string_attributes(built, name, attrs, expected):
    layer = myriad_select.select(myriad_read.load(built[name].xml_path), LIBRARY[name], attrs)
    assert layer is not None
    scalars = _scalars(layer)
    assert {k: scalars[k] for k in expected} == expected


def test_interpolate_binding_leaves_non_cubic_modes_to_the_plugin(built):
    layers = myriad_read.load(built["interpolate_cubic_h"].xml_path)
    linear = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    assert myriad_select.select(layers, "Interpolate", linear) is None


def _onnx_ground_truth(name):
    tests = einsum_unary_tests() if name == "einsum_unary_h" else layer_tests(LIBRARY[name])
    assert tests, name
    return tests[-1]


@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_emulated_kernel_reproduces_onnx_node_test(built, name):
    from kernelkit.kernel.emulator.run import emulate

    test = _onnx_ground_truth(name)
    inputs = [np.asarray(x).astype(np.float16) if np.asarray(x).dtype.kind == "f" else np.asarray(x).astype(np.int32)
              for x in test.inputs]
    expected = np.asarray(test.expected, dtype=np.float64)
    result = emulate(built[name].xml_path, LIBRARY[name], inputs, dict(test.attrs), [expected.shape], as_patched=True)
    got = result.outputs[0].astype(np.float64)
    assert got.shape == expected.shape
    # fp16 storage: half an fp16 ULP of relative error per rounding, a few roundings deep
    np.testing.assert_allclose(got, expected, rtol=1.5e-2, atol=4e-3)


@pytest.mark.parametrize("name,attrs,shape", [
    ("hardmax_h", {"axis": 1}, (2, 3, 4, 5)),
    ("layer_norm_h", {"axis": 2, "epsilon": 1e-5}, (2, 3, 4, 5)),
    ("group_norm_h", {"num_groups": 2, "epsilon": 1e-5}, (2, 4, 3, 5)),
])
def test_per_element_launch_of_the_gpu_binding_gives_the_same_result(built, name, attrs, shape):
    # The GPU binding cannot size its launch from attributes: it launches one item per element (or channel)
    # and the surplus items redo the last lane. Emulate that launch through the MYRIAD catch-all binding.
    from kernelkit.kernel.emulator.run import emulate

    spec = load_spec(KERNELS_DIR / name)
    layer = myriad_read.load(built[name].xml_path)[-1]
    layer.kernels[0].work_sizes.global_ = list(spec.work.global_)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, shape).astype(np.float16)
    extra = []
    if name == "layer_norm_h":
        extra = [rng.uniform(0.5, 1.5, shape[2:]).astype(np.float16), rng.uniform(-1, 1, shape[2:]).astype(np.float16)]
    elif name == "group_norm_h":
        extra = [rng.uniform(0.5, 1.5, shape[1]).astype(np.float16), rng.uniform(-1, 1, shape[1]).astype(np.float16)]
    exact = emulate(built[name].xml_path, spec.op, [x, *extra], attrs, as_patched=True).outputs[0]
    per_element = emulate([layer], spec.op, [x, *extra], attrs, as_patched=True).outputs[0]
    np.testing.assert_array_equal(per_element, exact)


OPENVINO_KERNELS = sorted(name for name in LIBRARY if load_spec(KERNELS_DIR / name).reference.get("openvino"))


@pytest.mark.parametrize("name", OPENVINO_KERNELS)
def test_emulated_kernel_agrees_with_openvino_cpu(built, name):
    # OpenVINO's own CPU implementation of the op (written by others), on every spec case of the kernel.
    from kernelkit.kernel.emulator.run import emulate
    from kernelkit.harness.inputs import generate_inputs
    from kernelkit.runners.openvino_op import OpenVINOOpRunner

    spec = load_spec(KERNELS_DIR / name)
    compared = 0
    for case in spec.cases:
        if case.name == "large":
            continue
        inputs = generate_inputs(case, path=spec.path)
        # a ReferenceSkipped here (OpenVINO cannot build the op) fails the test: it must really compare
        (expected,) = OpenVINOOpRunner(spec, case.attrs).run(inputs).arrays
        expected = expected.astype(np.float64)
        shape = tuple(case.output_shape) if case.output_shape is not None else inputs[0].shape
        got = emulate(built[name].xml_path, spec.op, inputs, case.attrs, [shape],
                      as_patched=True).outputs[0].astype(np.float64)
        np.testing.assert_allclose(got, expected.reshape(got.shape), rtol=1e-2, atol=2e-3, equal_nan=True,
                                   err_msg=f"{name}::{case.name}")
        compared += 1
    assert compared >= 3


def test_every_library_kernel_but_det_is_checked_against_openvino():
    # OpenVINO 2026 has no Det op and its ONNX frontend cannot convert ONNX Det (see test_harness_references).
    assert sorted(set(LIBRARY) - set(OPENVINO_KERNELS)) == ["det_h"]
