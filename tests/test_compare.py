"""fp16-aware comparison: Polygraphy's elementwise rule, NaN/Inf rules, ulps, statistics, required tolerances."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL, FP16_SMALLEST_NORMAL
from kernelkit.runners.compare import compare, summary_line, ulp_distance_fp16


def test_identical_arrays_pass_with_zero_error():
    x = np.linspace(-3, 3, 30, dtype=np.float16).reshape(5, 6)
    result = compare(x, x)
    assert result.passed and result.mismatches == 0
    assert result.abs_error.max == 0 and result.rel_error.max == 0 and result.max_ulp == 0
    assert result.required_atol == 0 and result.required_rtol == 0
    assert (result.atol, result.rtol) == (DEFAULT_ATOL, DEFAULT_RTOL)


def test_element_fails_only_when_both_abs_and_rel_exceed():
    expected = np.array([1.0, 2.0, 0.0, 100.0])
    actual = np.array([1.0005, 2.1, 0.0005, 100.5])
    # 0: abs 5e-4 <= atol. 1: abs 0.1 and rel 0.05 both over. 2: abs 5e-4 <= atol (rel is infinite).
    # 3: abs 0.5 over atol, but rel 0.005 <= rtol.
    result = compare(actual, expected, atol=1e-3, rtol=1e-2)
    assert not result.passed
    assert result.mismatches == 1
    assert result.worst_index == (1,)
    assert result.worst_actual == pytest.approx(2.1) and result.worst_expected == 2.0
    assert "1 of 4 elements" in result.reason
    # Smallest atol with rtol fixed: the abs error of every element over rtol (elements 1 and 2) -> 0.1.
    assert result.required_atol == pytest.approx(0.1)
    # Smallest rtol with atol fixed: the rel error of every element over atol (elements 1 and 3) -> 0.05.
    assert result.required_rtol == pytest.approx(0.05)
    assert compare(actual, expected, atol=0.1 + 1e-12, rtol=1e-2).passed
    assert compare(actual, expected, atol=1e-3, rtol=0.05 + 1e-12).passed
    assert not compare(actual, expected, atol=0.099, rtol=1e-2).passed


def test_error_statistics_on_known_errors():
    expected = np.array([1.0, 1.0, 1.0, 1.0])
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    result = compare(actual, expected)
    assert result.abs_error.max == 3 and result.abs_error.mean == 1.5 and result.abs_error.median == 1.5
    assert result.rel_error.max == 3
    assert result.abs_error.p90 == pytest.approx(2.7) and result.abs_error.p99 == pytest.approx(2.97)
    assert result.worst_index == (3,)
    assert result.mismatches == 3


@pytest.mark.parametrize("actual,expected,ok", [
    (math.nan, math.nan, True),
    (math.nan, 1.0, False),
    (1.0, math.nan, False),
    (math.inf, math.inf, True),
    (-math.inf, -math.inf, True),
    (math.inf, -math.inf, False),
    (math.inf, 65504.0, False),
    (65504.0, math.inf, False),
    (math.inf, math.nan, False),
])
def test_nan_and_inf_rules(actual, expected, ok):
    result = compare(np.array([actual, 1.0]), np.array([expected, 1.0]), atol=1e9, rtol=1e9)
    assert result.passed is ok
    if not ok:
        assert result.nonfinite_mismatches == 1
        assert result.required_atol is None and result.required_rtol is None
        assert result.worst_index == (0,)
        assert "non-finite" in result.reason


def test_nan_inf_zero_counts_for_each_side():
    actual = np.array([np.nan, np.inf, 0.0, -0.0, 2.0], dtype=np.float16)
    expected = np.array([np.nan, np.inf, 0.0, 1.0, 2.0])
    counts = compare(actual, expected).counts
    assert counts["actual"] == {"nan": 1, "inf": 1, "zero": 2}
    assert counts["expected"] == {"nan": 1, "inf": 1, "zero": 1}


def test_integer_outputs_must_be_exact():
    expected = np.array([1, 2, 3], dtype=np.int32)
    assert compare(np.array([1, 2, 3], dtype=np.int64), expected).passed
    result = compare(np.array([1, 2, 4], dtype=np.int32), expected, atol=10, rtol=10)
    assert not result.passed and result.mismatches == 1 and result.worst_index == (2,)


def test_shape_is_checked_before_values():
    result = compare(np.zeros((2, 3)), np.zeros((3, 2)))
    assert not result.passed
    assert "shape mismatch" in result.reason and "[2, 3]" in result.reason
    assert result.required_atol is None


def test_integer_against_float_is_a_dtype_mismatch():
    result = compare(np.array([1.0, 2.0]), np.array([1, 2], dtype=np.int32))
    assert not result.passed and "dtype mismatch" in result.reason


def test_empty_outputs_pass():
    result = compare(np.zeros((0, 3), np.float16), np.zeros((0, 3)))
    assert result.passed and result.worst_index is None


@pytest.mark.parametrize("a,b,ulps", [
    (1.0, 1.0, 0),
    (1.0, 1.0 + 2 ** -10, 1),           # fp16 spacing at 1.0
    (1.0, 1.0 - 2 ** -11, 1),           # spacing below 1.0 is half as large
    (0.0, -0.0, 0),
    (2 ** -24, -(2 ** -24), 2),          # smallest subnormals either side of zero
    (65504.0, math.inf, 1),
    (2.0, 4.0, 1024),                    # one binade holds 1024 fp16 values
])
def test_fp16_ulp_distance(a, b, ulps):
    assert int(ulp_distance_fp16(np.array([a]), np.array([b]))[0]) == ulps
    assert int(ulp_distance_fp16(np.array([b]), np.array([a]))[0]) == ulps


def test_max_ulp_reported_and_histogram_counts_every_nonzero_error():
    expected = np.ones(100)
    actual = np.ones(100)
    actual[:10] += 2 ** -10
    actual[10:13] += 0.5
    result = compare(actual, expected)
    assert result.max_ulp == 512
    assert sum(result.histogram["counts"]) == 13
    assert result.histogram["exact"] == 87
    assert len(result.histogram["edges"]) == len(result.histogram["counts"]) + 1


def test_summary_line_names_output_and_needed_tolerance():
    line = summary_line(compare(np.array([1.5]), np.array([1.0]), name="out3"))
    assert line.startswith("out3: FAIL") and "needs atol>=0.5 or rtol>=0.5" in line


# ------------------------------------------------------------------ outputs within the tolerance of zero

def test_a_small_signal_is_compared_relative_to_itself():
    x = np.random.default_rng(0).standard_normal((2, 10))
    expected = 1e-5 * x
    # The wrong sign passed against atol 1e-3 (every |a - e| is below it); relative to the signal it fails.
    wrong = compare(-expected, expected)
    assert not wrong.passed and wrong.mismatches == expected.size
    assert wrong.signal == pytest.approx(np.abs(expected).max())
    assert wrong.atol == pytest.approx(DEFAULT_RTOL * FP16_SMALLEST_NORMAL)
    assert wrong.signal_note.startswith(f"values within the tolerance of zero (max |ref| = {wrong.signal:.3g}, "
                                        "atol=0.001): compared relative to the signal")
    # fp16 rounding of the same values still passes; a 10 % scale error does not.
    assert compare(expected.astype(np.float16), expected).passed
    assert not compare(1.1 * expected, expected).passed
    # Above fp16's smallest normal value the scaled atol follows the signal itself.
    larger = 3e-4 * x
    assert compare(larger, larger).atol == pytest.approx(DEFAULT_RTOL * np.abs(larger).max())
    assert "(rtol x max |ref|)" in compare(larger, larger).signal_note
    assert not compare(larger * 1.05, larger).passed


def test_normal_magnitudes_and_integers_keep_atol():
    expected = np.array([0.5, -0.002, 0.0])
    result = compare(expected + 5e-4, expected)
    assert result.passed and result.atol == DEFAULT_ATOL and result.signal_note == ""
    assert compare(np.zeros(3, np.int32), np.zeros(3, np.int32)).signal_note == ""


def test_all_zeros_on_both_sides_is_an_exact_match():
    result = compare(np.zeros((2, 3), np.float16), np.zeros((2, 3), np.float32))
    assert result.passed and result.signal == 0
    assert result.signal_note == "all zeros in the reference and the result: an exact match"
    assert "all zeros in the reference and the result" in summary_line(result)
    # A zero reference against a result that is not zero is no exact match: it fails beyond fp16's noise.
    assert not compare(np.full(3, 1e-5), np.zeros(3)).passed


# ------------------------------------------------------------------ properties

finite_f16 = st.floats(min_value=-65504, max_value=65504, width=16, allow_nan=False)
any_f16 = st.floats(width=16, allow_nan=True, allow_infinity=True)


def _pairs(elements):
    return st.integers(1, 40).flatmap(lambda n: st.tuples(
        hnp.arrays(np.float16, n, elements=elements), hnp.arrays(np.float16, n, elements=elements)))


def _element_ok(a: float, e: float, atol: float, rtol: float) -> bool:
    """The rule written out per element in plain Python floats."""
    if math.isnan(a) or math.isnan(e):
        return math.isnan(a) and math.isnan(e)
    if math.isinf(a) or math.isinf(e):
        return a == e
    diff = abs(a - e)
    rel = diff / abs(e) if e != 0 else (0.0 if diff == 0 else math.inf)
    return diff <= atol or rel <= rtol


tolerances = st.floats(min_value=0, max_value=10, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(_pairs(any_f16), tolerances, tolerances)
def test_verdict_matches_the_elementwise_rule(pair, atol, rtol):
    actual, expected = pair
    result = compare(actual, expected, atol=atol, rtol=rtol)
    # the rule holds with the applied atol: rtol x the signal for a reference within atol of zero
    finite = expected[np.isfinite(expected)].astype(np.float64)
    signal = float(np.abs(finite).max()) if finite.size else math.inf
    scaled = rtol * max(signal, FP16_SMALLEST_NORMAL)
    assert result.atol == (scaled if signal <= atol and scaled < atol else atol)
    assert bool(result.signal_note) == (result.atol != atol)
    oks = [_element_ok(float(a), float(e), result.atol, rtol) for a, e in zip(actual, expected)]
    assert result.mismatches == oks.count(False)
    assert result.passed == all(oks)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float16, st.integers(0, 30), elements=any_f16))
def test_an_array_always_matches_itself(x):
    assert compare(x, x, atol=0, rtol=0).passed


@settings(max_examples=150, deadline=None)
@given(_pairs(finite_f16), st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
def test_required_tolerances_are_the_smallest_that_pass(pair, atol, rtol):
    actual, expected = pair
    result = compare(actual, expected, atol=atol, rtol=rtol)
    assert compare(actual, expected, atol=atol, rtol=max(rtol, result.required_rtol)).passed
    if result.required_rtol > 0:
        smaller_rtol = float(np.nextafter(result.required_rtol, 0))
        assert not compare(actual, expected, atol=atol, rtol=smaller_rtol).passed
    if result.required_atol is None:   # compared relative to the signal: only rtol loosens it
        assert result.signal_note
        return
    loosened = compare(actual, expected, atol=max(atol, result.required_atol), rtol=rtol)
    assert loosened.passed or loosened.signal_note   # an atol reaching the reference's values is scaled
    if not result.passed:
        assert result.required_atol > atol and result.required_rtol > rtol
    if result.required_atol > 0:
        smaller_atol = float(np.nextafter(result.required_atol, 0))
        assert not compare(actual, expected, atol=smaller_atol, rtol=rtol).passed


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-64992.0, max_value=64992.0, width=16, allow_nan=False))
def test_neighbouring_fp16_values_are_one_ulp_apart(value):
    x = np.float16(value)
    up = np.nextafter(x, np.float16(np.inf))
    assert int(ulp_distance_fp16(np.array([x]), np.array([up]))[0]) == 1
