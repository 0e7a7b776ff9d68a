"""The library's float64 numpy references agree with ONNX's own operator test data (written by others)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.library.onnx_tests import layer_tests
from kernelkit.core.paths import KERNELS_DIR

# kernel folder -> the IR op type its binding replaces
KERNEL_OPS = {
    "sin_h": "Sin", "cos_h": "Cos", "tan_h": "Tan", "asin_h": "Asin", "acos_h": "Acos", "atan_h": "Atan",
    "sinh_h": "Sinh", "cosh_h": "Cosh", "asinh_h": "Asinh", "acosh_h": "Acosh", "atanh_h": "Atanh",
    "sign_h": "Sign", "trilu_h": "Trilu", "hardmax_h": "Hardmax", "depth_to_space_h": "DepthToSpace",
    "space_to_depth_h": "SpaceToDepth", "layer_norm_h": "LayerNormalization",
    "group_norm_h": "GroupNormalization", "scatter_nd_update_h": "ScatterNDUpdate", "grid_sample_h": "GridSample",
    "affine_grid_h": "AffineGrid", "col2im_h": "Col2Im", "einsum_h": "Einsum", "det_h": "Det",
    "interpolate_cubic_h": "Interpolate",
}


def load_reference(kernel: str):
    path = KERNELS_DIR / kernel / "reference.py"
    spec = importlib.util.spec_from_file_location(f"kernelkit_ref_{kernel}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference


def _cases():
    for kernel, op in KERNEL_OPS.items():
        for test in layer_tests(op, kernel_fit=False):
            yield pytest.param(kernel, test, id=f"{kernel}-{test.name}")


ALL_CASES = list(_cases())


@pytest.mark.parametrize("kernel,test", ALL_CASES)
def test_reference_matches_onnx(kernel, test):
    got = load_reference(kernel)(test.inputs, dict(test.attrs))
    expected = np.asarray(test.expected)
    assert got.shape == expected.shape
    expected64 = expected.astype(np.float64)
    # ONNX computed most expectations in float32; some (GridSample) are printed to 4 decimals by hand.
    finite = expected64[np.isfinite(expected64)]
    atol = 5.1e-5 if np.allclose(finite, np.round(finite, 4), rtol=0, atol=1e-6) else 2e-6
    np.testing.assert_allclose(got, expected64, rtol=2e-5, atol=atol, equal_nan=True)


def test_every_kernel_has_onnx_ground_truth():
    covered = {kernel for kernel, *_ in (p.values for p in ALL_CASES)}
    assert covered == set(KERNEL_OPS), set(KERNEL_OPS) - covered


def test_onnx_tests_that_fit_are_all_used():
    # Cases ONNX has for these ops that we leave out: only zero-sized tensors and cubic antialias.
    names = {p.values[1].name for p in ALL_CASES}
    for must in ["test_gridsample_bicubic_align_corners_1_additional_1", "test_gridsample_reflection_padding",
                 "test_gridsample_volumetric_bilinear_align_corners_1", "test_col2im_5d", "test_det_nd",
                 "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside", "test_depthtospace_crd_mode_example",
                 "test_scatternd_min_with_element_indices", "test_einsum_batch_diagonal", "test_tril_one_row_neg"]:
        assert must in names


@pytest.mark.parametrize("kernel,op", [("trilu_h", "Trilu"), ("hardmax_h", "Hardmax"),
                                        ("scatter_nd_update_h", "ScatterNDUpdate"), ("layer_norm_h", "LayerNormalization"),
                                        ("det_h", "Det"), ("interpolate_cubic_h", "Interpolate")])
def test_kernel_form_of_onnx_tests_keeps_their_meaning(kernel, op):
    # The rank-4 restatement the kernels take must still agree with ONNX's expected output.
    tests = layer_tests(op, kernel_fit=True)
    assert tests
    for test in tests:
        assert np.asarray(test.inputs[0]).ndim in ((3,) if op == "Det" else (4,))
        got = load_reference(kernel)(test.inputs, dict(test.attrs))
        np.testing.assert_allclose(got, np.asarray(test.expected, dtype=np.float64), rtol=2e-5, atol=2e-6)


def test_reference_rejects_bad_attribute_with_a_clear_error():
    with pytest.raises(KernelkitError, match="mode"):
        load_reference("depth_to_space_h")([np.zeros((1, 4, 2, 2))], {"block_size": 2, "mode": "sideways"})
    with pytest.raises(KernelkitError, match="block_size"):
        load_reference("space_to_depth_h")([np.zeros((1, 1, 4, 4))], {})
    with pytest.raises(KernelkitError, match="axis"):
        load_reference("hardmax_h")([np.zeros((2, 3))], {"axis": 5})
    with pytest.raises(KernelkitError, match="num_groups"):
        load_reference("group_norm_h")([np.zeros((1, 4, 2, 2)), np.ones(4), np.zeros(4)], {"num_groups": "two"})
    with pytest.raises(KernelkitError, match="antialias"):
        load_reference("interpolate_cubic_h")([np.zeros((1, 1, 4, 4))], {"sizes": [1, 1, 2, 2], "antialias": 1})
    with pytest.raises(KernelkitError, match="equation"):
        load_reference("einsum_h")([np.zeros(3)], {})


def test_grid_sample_identity_grid_reproduces_the_image():
    # Independent of ONNX: an align_corners identity grid samples every pixel centre exactly.
    image = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    ys, xs = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4), indexing="ij")
    grid = np.stack([xs, ys], axis=-1)[None]
    for mode in ("bilinear", "bicubic", "nearest"):
        out = load_reference("grid_sample_h")([image, grid], {"mode": mode, "align_corners": 1})
        np.testing.assert_allclose(out, image, atol=1e-12)
