"""fp16-aware comparison of outputs against a reference's (no runner, no I/O): the one comparator of verify,
the harness and the model flow's measurements. It takes arrays, so it never imports a runner.

Element rule (Polygraphy's elementwise check): an element mismatches only when its absolute difference
exceeds atol AND its relative difference exceeds rtol. Non-finite values are exact: NaN matches only NaN,
and +Inf/-Inf match only the same infinity. Integer outputs must be equal. Shape and dtype kind are
checked before any value.

A float output whose reference lies within atol of zero could not fail against atol, so it is compared
relative to its signal: atol becomes rtol x max |reference| (kernelkit.facts.tolerances.FP16_SMALLEST_NORMAL
is the least signal counted), and `signal_note` says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL, FP16_SMALLEST_NORMAL

HISTOGRAM_BINS = 24


@dataclass
class ErrorStats:
    max: float = 0.0
    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0
    p99: float = 0.0


@dataclass
class OutputComparison:
    """Everything known about one output against one reference. `passed` is the verdict."""

    name: str
    passed: bool
    reason: str                      # one line: why it failed, or "within tolerance"
    atol: float                      # the atol applied: scaled to the signal when signal_note is set
    rtol: float
    shape: tuple
    expected_shape: tuple
    dtype: str
    expected_dtype: str
    elements: int = 0
    mismatches: int = 0
    abs_error: ErrorStats = field(default_factory=ErrorStats)
    rel_error: ErrorStats = field(default_factory=ErrorStats)
    max_ulp: int = 0                 # fp16 ulp distance (both sides rounded to fp16); floats only
    worst_index: tuple | None = None  # the element furthest outside (or least inside) the tolerance
    worst_actual: float | None = None
    worst_expected: float | None = None
    signal: float = 0.0              # max |reference| over its finite values (float outputs)
    signal_note: str = ""            # set when the reference lies within atol of zero: how it was compared
    # The smallest atol that passes with rtol fixed, and the smallest rtol with atol fixed. None when no
    # tolerance can pass (a NaN/Inf mismatch, a shape or dtype mismatch); required_atol alone is None for
    # an output compared relative to its signal (only rtol loosens that).
    required_atol: float | None = 0.0
    required_rtol: float | None = 0.0
    nonfinite_mismatches: int = 0
    counts: dict = field(default_factory=dict)   # nan/inf/zero counts of each side
    histogram: dict = field(default_factory=dict)  # log10(abs error) histogram: edges, counts

    def to_dict(self) -> dict:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["expected_shape"] = list(self.expected_shape)
        data["worst_index"] = list(self.worst_index) if self.worst_index is not None else None
        return data


def _is_integer(array: np.ndarray) -> bool:
    return array.dtype.kind in "iub"


def _stats(values: np.ndarray) -> ErrorStats:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ErrorStats()
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return ErrorStats(max=float(values.max()), mean=float(values.mean()), median=float(p50),
                      p90=float(p90), p99=float(p99))


def _counts(array: np.ndarray) -> dict:
    if _is_integer(array):
        return {"nan": 0, "inf": 0, "zero": int(np.count_nonzero(array == 0))}
    return {"nan": int(np.isnan(array).sum()), "inf": int(np.isinf(array).sum()),
            "zero": int(np.count_nonzero(array == 0))}


def fp16_ordinal(values: np.ndarray) -> np.ndarray:
    """Map fp16 values to integers whose difference is their distance in ulps (-0 and +0 coincide)."""
    bits = np.ascontiguousarray(values, dtype=np.float16).view(np.uint16).astype(np.int32)
    magnitude = bits & 0x7FFF
    return np.where(bits & 0x8000, -magnitude, magnitude)


def ulp_distance_fp16(actual, expected) -> np.ndarray:
    """Elementwise distance in fp16 ulps after rounding both sides to fp16 (NaN positions give 0)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        distance = np.abs(fp16_ordinal(actual.astype(np.float16)) - fp16_ordinal(expected.astype(np.float16)))
    return np.where(np.isnan(actual) | np.isnan(expected), 0, distance)


def _histogram(abs_error: np.ndarray) -> dict:
    """Counts of log10(abs error) over finite, non-zero errors; exact matches are counted apart."""
    finite = abs_error[np.isfinite(abs_error)]
    exact = int(np.count_nonzero(finite == 0))
    nonzero = finite[finite > 0]
    if nonzero.size == 0:
        return {"edges": [], "counts": [], "exact": exact}
    logs = np.log10(nonzero)
    low, high = math.floor(logs.min()), math.ceil(logs.max())
    if high <= low:
        high = low + 1
    counts, edges = np.histogram(logs, bins=HISTOGRAM_BINS, range=(low, high))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "exact": exact}


def compare(actual, expected, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
            name: str = "out0") -> OutputComparison:
    """Compare `actual` (the device under test) with `expected` (the reference)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    result = OutputComparison(name=name, passed=False, reason="", atol=float(atol), rtol=float(rtol),
                              shape=tuple(int(d) for d in actual.shape),
                              expected_shape=tuple(int(d) for d in expected.shape),
                              dtype=str(actual.dtype), expected_dtype=str(expected.dtype),
                              elements=int(expected.size), counts={"actual": _counts(actual),
                                                                   "expected": _counts(expected)})
    if actual.shape != expected.shape:
        result.reason = f"shape mismatch: got {list(actual.shape)}, reference has {list(expected.shape)}"
        result.required_atol = result.required_rtol = None
        return result
    if _is_integer(expected) != _is_integer(actual):
        result.reason = f"dtype mismatch: got {actual.dtype}, reference has {expected.dtype}"
        result.required_atol = result.required_rtol = None
        return result

    integer = _is_integer(expected)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_err = np.abs(a - e)
        # Relative to the reference; a zero reference makes any nonzero difference infinitely relative.
        rel_err = np.where(e != 0, abs_err / np.abs(e), np.where(abs_err == 0, 0.0, np.inf))

    requested_atol = atol
    if not integer:
        atol = _scale_to_signal(result, a, e, atol, rtol)

    both_nan = np.isnan(a) & np.isnan(e)
    nonfinite = ~np.isfinite(a) | ~np.isfinite(e)
    # Non-finite pairs are exact: same infinity or both NaN. Everything else non-finite mismatches.
    nonfinite_ok = both_nan | (np.isinf(a) & np.isinf(e) & (a == e))
    nonfinite_bad = nonfinite & ~nonfinite_ok
    finite = ~nonfinite
    abs_err = np.where(finite, abs_err, 0.0)
    rel_err = np.where(finite, rel_err, 0.0)

    if integer:
        value_bad = finite & (abs_err != 0)
    else:
        value_bad = finite & (abs_err > atol) & (rel_err > rtol)
    bad = value_bad | nonfinite_bad

    result.mismatches = int(bad.sum())
    result.nonfinite_mismatches = int(nonfinite_bad.sum())
    result.abs_error = _stats(abs_err[finite])
    result.rel_error = _stats(rel_err[finite])
    if not integer:
        result.max_ulp = int(ulp_distance_fp16(a, e).max()) if a.size else 0
    result.histogram = _histogram(abs_err[finite])

    if result.nonfinite_mismatches:
        result.required_atol = result.required_rtol = None
    elif integer:
        result.required_atol = float(abs_err.max()) if a.size else 0.0
        result.required_rtol = float(rel_err.max()) if a.size else 0.0
    else:
        # Failing for atol means rel > rtol: those elements need atol >= their abs error, and vice versa.
        over_rtol = finite & (rel_err > rtol)
        over_atol = finite & (abs_err > atol)
        if result.signal_note:
            # Only rtol loosens a comparison relative to the signal. Each element passes once rtol covers its
            # relative error or, scaled by the signal (up to the requested atol), its absolute error.
            counted = max(result.signal, FP16_SMALLEST_NORMAL)
            result.required_atol = None
            with np.errstate(divide="ignore", invalid="ignore"):
                by_signal = np.where(abs_err <= requested_atol, abs_err / counted, np.inf)
            result.required_rtol = float(np.minimum(by_signal, rel_err)[finite].max()) if finite.any() else 0.0
        else:
            result.required_atol = float(abs_err[over_rtol].max()) if over_rtol.any() else 0.0
            result.required_rtol = float(rel_err[over_atol].max()) if over_atol.any() else 0.0

    if a.size:
        # Worst element: a non-finite mismatch first, else the one with the largest tolerance excess.
        if nonfinite_bad.any():
            flat = int(np.flatnonzero(nonfinite_bad)[0])
        else:
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                scale_a = abs_err / atol if atol > 0 else np.where(abs_err > 0, np.inf, 0.0)
                scale_r = rel_err / rtol if rtol > 0 else np.where(rel_err > 0, np.inf, 0.0)
                excess = np.nan_to_num(np.minimum(scale_a, scale_r), nan=0.0) if not integer else abs_err
            flat = int(np.argmax(np.where(finite, excess, -1.0)))
        index = np.unravel_index(flat, a.shape)
        result.worst_index = tuple(int(i) for i in index)
        result.worst_actual = float(a.flat[flat])
        result.worst_expected = float(e.flat[flat])

    if result.mismatches == 0:
        result.passed = True
        result.reason = "within tolerance" if not integer else "exact"
    else:
        where = list(result.worst_index) if result.worst_index is not None else []
        what = "non-finite mismatch" if result.nonfinite_mismatches else "out of tolerance"
        result.reason = (f"{result.mismatches} of {result.elements} elements mismatch ({what}); worst at "
                         f"{where}: got {result.worst_actual:.6g}, expected {result.worst_expected:.6g}")
    return result


def _scale_to_signal(result: OutputComparison, actual: np.ndarray, expected: np.ndarray, atol: float,
                     rtol: float) -> float:
    """The atol to apply: rtol x the reference's signal when the reference lies within atol of zero (where
    atol alone passes anything of that size), else atol. Records the signal and, when scaled, why."""
    finite = expected[np.isfinite(expected)]
    if finite.size == 0:
        return atol
    result.signal = signal = float(np.abs(finite).max())
    counted = max(signal, FP16_SMALLEST_NORMAL)
    scaled = rtol * counted
    if signal > atol or scaled >= atol:
        return atol
    result.atol = scaled
    if not np.any(expected) and not np.any(actual):
        result.signal_note = "all zeros in the reference and the result: an exact match"
    else:
        basis = ("rtol x max |ref|" if counted == signal
                 else f"rtol x {FP16_SMALLEST_NORMAL:.3g}, fp16's smallest normal")
        result.signal_note = (f"values within the tolerance of zero (max |ref| = {signal:.3g}, atol={atol:g}): "
                              f"compared relative to the signal, atol={scaled:.3g} ({basis})")
    return scaled


def compare_outputs(actual, expected, *, atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
                    names: list[str] | None = None) -> list[OutputComparison]:
    """compare() of each output with the reference's output at the same position, named `names` (default
    out0, out1, ...). Outputs beyond the shorter list are not compared: the caller words a count mismatch."""
    pairs = list(zip(actual, expected))
    names = list(names or [])
    return [compare(a, e, atol=atol, rtol=rtol, name=names[i] if i < len(names) else f"out{i}")
            for i, (a, e) in enumerate(pairs)]


def summary_line(comparison: OutputComparison) -> str:
    """One line for terminals and JUnit messages."""
    c = comparison
    if c.required_rtol is None:
        needed = "no tolerance passes"
    elif c.required_atol is None:     # compared relative to the signal
        needed = f"needs rtol>={c.required_rtol:.3g}"
    else:
        needed = f"needs atol>={c.required_atol:.3g} or rtol>={c.required_rtol:.3g}"
    return (f"{c.name}: {'PASS' if c.passed else 'FAIL'} | max abs {c.abs_error.max:.3g}, max rel "
            f"{c.rel_error.max:.3g}, max ulp {c.max_ulp} | atol={c.atol:g} rtol={c.rtol:g} | "
            f"{c.reason}" + ("" if c.passed else f" | {needed}")
            + (f" | {c.signal_note}" if c.signal_note else ""))
