"""Case inputs: seeded, dtype per input, fp16-representable, edge values mixed in."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelkit.core.errors import KernelkitError
from kernelkit.harness.inputs import EDGE_FRACTION, FLOAT_EDGES, generate_inputs
from kernelkit.kernel.spec import Case


def make_case(**overrides) -> Case:
    fields = dict(name="c", shapes=[(2, 3, 4, 5)], dtypes=["f16"], low=-1.0, high=1.0, values="uniform", seed=0)
    fields.update(overrides)
    return Case(**fields)


def test_same_case_gives_same_inputs_and_seed_changes_them():
    case = make_case(shapes=[(1, 3, 5, 7), (1, 3, 5, 7)], dtypes=["f16", "f16"])
    first, second = generate_inputs(case), generate_inputs(case)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert not np.array_equal(first[0], first[1])           # inputs do not repeat each other
    other = generate_inputs(make_case(shapes=case.shapes, dtypes=case.dtypes, seed=1))
    assert not np.array_equal(first[0], other[0])


def test_float_inputs_are_fp16_within_range():
    (x,) = generate_inputs(make_case(low=-4.0, high=2.5, shapes=[(3, 1000)]))
    assert x.dtype == np.float16 and x.shape == (3, 1000)
    assert x.min() >= -4.0 and x.max() <= 2.5
    assert x.min() < -3.5 and x.max() > 2.0                 # spread over the range, not clustered
    assert np.array_equal(x.astype(np.float32).astype(np.float16), x)


def test_integer_inputs_are_int32_within_inclusive_range():
    (x,) = generate_inputs(make_case(dtypes=["i32"], low=-3, high=5, shapes=[(4000,)]))
    assert x.dtype == np.int32
    assert set(np.unique(x)) == set(range(-3, 6))


def test_edges_mix_in_every_fp16_edge_value():
    (x,) = generate_inputs(make_case(values="edges", shapes=[(1, 2, 8, 10)], low=-0.5, high=0.5))
    flat = x.reshape(-1)
    for value in FLOAT_EDGES:
        if value == 0.0:
            want_negative = np.signbit(np.float64(value))
            assert np.any((flat == 0) & (np.signbit(flat) == want_negative)), value
        else:
            assert np.any(flat == np.float16(value)), value
    outside = np.count_nonzero(np.abs(flat.astype(np.float64)) > 0.5)
    assert outside >= 2                                      # +-65504 at least, outside the uniform range
    assert outside <= int(round(flat.size * EDGE_FRACTION))


def test_edges_on_tiny_tensor_still_fill_it():
    (x,) = generate_inputs(make_case(values="edges", shapes=[(1, 1, 1, 3)]))
    assert set(np.abs(x.astype(np.float64)).reshape(-1).tolist()) <= {abs(v) for v in FLOAT_EDGES}


def test_integer_edges_stay_inside_the_range():
    (x,) = generate_inputs(make_case(values="edges", dtypes=["i32"], low=0, high=9, shapes=[(200,)]))
    assert x.min() >= 0 and x.max() <= 9
    assert {0, 1, 9} <= set(x.tolist())


def test_unknown_dtype_names_the_case():
    with pytest.raises(KernelkitError) as err:
        generate_inputs(make_case(name="bad_one", dtypes=["f64"]))
    assert "bad_one" in str(err.value) and "f64" in str(err.value)


def test_integer_range_without_integers_is_reported():
    with pytest.raises(KernelkitError) as err:
        generate_inputs(make_case(name="narrow", dtypes=["i32"], low=0.2, high=0.7))
    assert "narrow" in str(err.value) and "low/high" in str(err.value)


def test_float_range_beyond_fp16_is_reported():
    with pytest.raises(KernelkitError) as err:
        generate_inputs(make_case(name="huge", low=-1e5, high=1.0))
    assert "huge" in str(err.value) and "fp16 range" in str(err.value)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.lists(st.integers(1, 6), min_size=1, max_size=4),
       st.floats(-65504, 65504), st.floats(0, 1000), st.sampled_from(["uniform", "edges"]))
def test_float_inputs_property(seed, shape, low, span, values):
    high = min(low + span, 65504.0)
    case = make_case(shapes=[tuple(shape)], low=low, high=high, values=values, seed=seed)
    (x,) = generate_inputs(case)
    (again,) = generate_inputs(case)
    assert x.dtype == np.float16 and x.shape == tuple(shape)
    assert np.array_equal(x.view(np.uint16), again.view(np.uint16))          # bit-identical, -0 included
    assert np.all(np.isfinite(x))
    if values == "uniform":
        # Rounding to fp16 may move a value by half an fp16 step past the bounds, never further.
        step = np.spacing(np.float16(max(abs(low), abs(high))))
        assert x.min() >= low - step and x.max() <= high + step


# ---------------------------------------------------------------- fixed inputs

def test_fixed_number_fills_the_input_and_draws_nothing():
    free = generate_inputs(make_case(shapes=[(2, 3), (4,)], dtypes=["f16", "f16"], seed=5))
    data, axis, last = generate_inputs(make_case(shapes=[(2, 3), (), (4,)], dtypes=["f16", "i32", "f16"],
                                                 fixed={1: -2}, seed=5))
    assert axis.dtype == np.int32 and axis.shape == () and int(axis) == -2
    # the fixed input took nothing from the generator: the others are what they would be without it
    np.testing.assert_array_equal(data, free[0])
    np.testing.assert_array_equal(last, free[1])


def test_fixed_arrays_keep_their_values_and_floats_round_to_fp16():
    sizes, scales = generate_inputs(make_case(shapes=[(2,), (2,)], dtypes=["i32", "f16"],
                                              fixed={0: [10, 14], 1: [2.0, 0.1]}))
    assert sizes.tolist() == [10, 14] and sizes.dtype == np.int32
    assert scales.dtype == np.float16 and scales.tolist() == [2.0, float(np.float16(0.1))]
    (filled,) = generate_inputs(make_case(shapes=[(2, 2)], fixed={0: [[1.5]]}))
    assert filled.tolist() == [[1.5, 1.5], [1.5, 1.5]]


@pytest.mark.parametrize("dtype,value,message", [
    ("i32", [1, 2, 3], "shape [3], the case declares [2]"),
    ("i32", [0.5, 1], "whole numbers"),
    ("i32", [2 ** 40, 0], "int32"),
    ("f16", [70000.0, 0], "fp16 range"),
])
def test_fixed_values_that_do_not_fit_name_case_and_input(dtype, value, message):
    case = make_case(name="pinned", shapes=[(3,), (2,)], dtypes=["f16", dtype], fixed={1: value})
    with pytest.raises(KernelkitError) as err:
        generate_inputs(case, path="kernel.toml")
    text = str(err.value)
    assert "case pinned" in text and "input 1" in text and message in text


def test_fixed_values_of_a_real_spec_reach_the_inputs():
    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.kernel.spec import load_spec

    spec = load_spec(KERNELS_DIR / "interpolate_cubic_h")
    case = next(c for c in spec.cases if c.name == "half_pixel_9x10")
    _, sizes, scales, axes = generate_inputs(case, path=spec.path)
    assert sizes.tolist() == [9, 10] and scales.tolist() == [2.25, 2.5] and axes.tolist() == [2, 3]
