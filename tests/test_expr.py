"""The MYRIAD size-expression language: fixed cases worked out by hand, and a property test against an
independent evaluator (numpy float32 + Python integers with C truncation) over generated expression trees."""

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kernelkit.kernel.bindings import expr
from kernelkit.kernel.bindings.expr import INT_MAX, INT_MIN, ExprError
from kernelkit.core.errors import KernelkitError

VARS = {"B": 1, "F": 3, "Y": 5, "X": 7, "stride": 2, "num": 5, "top_height": 9, "factor": 0.5}


@pytest.mark.parametrize("text, expected", [
    ("Y*F/(stride*stride)", 3),          # 15/4 truncates
    ("((X*Y+7)/8)*8", 40),               # 35 rounded up to a multiple of 8
    ("round(Y*factor)", 3),              # round(2.5) is 3 (half away from zero)
    ("floor(Y*factor)", 2),
    ("ceil(X/2)", 3),                    # X/2 is already the int 3
    ("ceil(X*0.5)", 4),
    ("7/2*2", 6),                        # left to right, integer division first
    ("0-7/2", -3),                       # truncation toward zero, not floor
    ("(0-7)/2", -3),
    ("(0-7)%3", -1),                     # C remainder takes the dividend's sign
    ("7%(0-3)", 1),
    ("X-Y-F", -1),                       # left associative
    ("X - Y*F + 1", -7),
    ("2+3*4", 14),
    ("(2+3)*4", 20),
    ("abs(0-X)", 7),
    ("sqrt(16)", 4),
    ("sqrt(2)*sqrt(2)", 1),              # float32 gives 1.9999999, then truncation
    ("Y*factor", 2),                     # 2.5 truncated
    ("1.5+1.5", 3),
    ("  X\t* 2 ", 14),
    ("top_height", 9),
    ("x*y", 35),                         # lower-case shape letters
])
def test_known_values(text, expected):
    variables = dict(VARS, x=7, y=5)
    assert expr.evaluate(text, variables) == expected


def test_int_operand_is_rounded_to_float32_before_a_float_operation():
    # 16777217 is not a float32; the plugin converts it to 16777216 first, then multiplies
    assert expr.evaluate("big*3.0", {"big": 16777217}) == 50331648
    assert expr.evaluate("big+0.0", {"big": 16777217}) == 16777216


def test_value_keeps_int_or_float():
    assert expr.evaluate_value("X/2", VARS) == 3 and isinstance(expr.evaluate_value("X/2", VARS), int)
    assert expr.evaluate_value("X/2.0", VARS) == 3.5
    assert isinstance(expr.evaluate_value("floor(X)", VARS), float)   # functions compute in float


@pytest.mark.parametrize("text, message, column, kind", [
    # the plugin's parser refuses these when it chooses a binding: it skips the binding (probes expr.parse-*)
    ("(X+1", "never closed", 1, "parse"),
    ("X+1)", "no matching", 4, "parse"),
    ("max(X)", "unknown identifier 'max'", 1, "parse"),
    ("Z*2", "unknown identifier 'Z'", 1, "parse"),
    ("X$2", "unexpected character", 2, "parse"),
    ("X,Y", "','", 2, "parse"),
    (".5*X", "unexpected character", 1, "parse"),
    # these parse, and the compile fails when the plugin evaluates them (probes expr.unary-minus, ...)
    ("-1", "operator '-' has only 1 operand", 1, "evaluate"),
    ("X*-1", "operator '*' has only 1 operand", 2, "evaluate"),   # X * 1 - in postfix
    ("X+*2", "operator '+' has only 1 operand", 2, "evaluate"),
    ("X+", "operator '+' has only 1 operand", 2, "evaluate"),
    ("2 3", "2 values with no operator", None, "evaluate"),
    ("X(1)", "2 values with no operator", None, "evaluate"),
    ("floor()", "function floor has no argument", 1, "evaluate"),
    ("", "no value", None, "evaluate"),
    ("X%1.5", "needs two integers", 2, "evaluate"),
    ("X/0", "division by zero", 2, "evaluate"),
    ("X%(Y-Y)", "remainder by zero", 2, "evaluate"),
])
def test_errors_name_expression_position_and_kind(text, message, column, kind):
    with pytest.raises(ExprError) as info:
        expr.evaluate(text, VARS)
    error = info.value
    assert isinstance(error, KernelkitError)
    assert message in str(error)
    assert repr(text) in str(error)
    assert error.kind == kind
    if column is not None:
        assert error.position == column - 1
        assert f"column {column}" in str(error)


@pytest.mark.parametrize("text, expected", [
    ("floor X", 7),                 # probe expr.function-without-parentheses: floor(X)
    ("ceil X/4.0", 1),              # ...-precedence: ceil(X)/4.0, the function binds tighter than '/'
    ("X()", 7),                     # expr.trailing-parentheses
    ("sqrt(0-1)", INT_MIN),         # expr.sqrt-negative: NaN converts to -2^31
    ("X/(0.5-0.5)", INT_MIN),       # inf
    ("X*1e10", INT_MIN),            # expr.float-overflow: outside int32
    ("65536*65536", 0),             # int arithmetic wraps
    ("X*536870912", -536870912),    # 7*2^29 wraps
    ("99999999999", INT_MAX),       # an int literal above 2^31-1 saturates
])
def test_what_the_plugin_accepts(text, expected):
    assert expr.evaluate(text, VARS) == expected


@pytest.mark.parametrize("text", ["floor X", "X()", "-1", "2 3", ""])
def test_strict_parse_refuses_what_the_plugin_accepts_or_fails_on(text):
    with pytest.raises(ExprError):
        expr.parse(text)                       # strict: for authoring (specs, GPU formulas)
    expr.parse(text, strict=False)             # the plugin's own parser takes it


def test_parse_without_variables_collects_identifiers():
    parsed = expr.parse("round(Y*factor)+stride")
    assert parsed.identifiers == {"Y", "factor", "stride"}
    assert parsed.evaluate({"Y": 5, "factor": 0.5, "stride": 2}) == 5
    with pytest.raises(ExprError, match="unknown identifier 'stride'"):
        parsed.evaluate({"Y": 5, "factor": 0.5})


def test_variable_shadows_function_name():
    assert expr.evaluate("floor+1", {"floor": 4}) == 5


# --- size_variables ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, bfyx", [
    ([2, 3, 5, 7], (2, 3, 5, 7)),         # NCHW
    ([3, 5, 7], (1, 3, 5, 7)),            # CHW
    ([4, 10], (4, 10, 1, 1)),             # NC
    ([6], (1, 6, 1, 1)),                  # C
    ([], (1, 1, 1, 1)),
    ([2, 3, 4, 5, 6], (2, 3, 5, 6)),      # NCDHW: D is not visible
])
def test_size_variables_follow_data_desc(shape, bfyx):
    variables = expr.size_variables(shape)
    assert tuple(variables[k] for k in "BFYX") == bfyx
    assert tuple(variables[k] for k in "bfyx") == bfyx


def test_size_variables_take_numeric_attributes_only():
    variables = expr.size_variables([1, 3, 5, 7], {"stride": "2", "factor": "0.50000000", "kernel": "3,3",
                                                   "flag": "true", "mode": "nearest", "count": 4, "ok": True,
                                                   "pads": [1, 1]})
    assert variables["stride"] == 2 and isinstance(variables["stride"], int)
    assert variables["factor"] == 0.5 and isinstance(variables["factor"], float)
    assert variables["count"] == 4
    for skipped in ("kernel", "flag", "mode", "ok", "pads"):
        assert skipped not in variables


def test_attribute_named_like_a_dimension_wins():
    variables = expr.size_variables([1, 3, 5, 7], {"X": "100"})
    assert variables["X"] == 100 and variables["x"] == 7


def test_rank_above_five_is_refused():
    with pytest.raises(KernelkitError, match="rank 6"):
        expr.size_variables([1] * 6)


# --- property test against an independent evaluator ---------------------------------------------------------

class _Undefined(Exception):
    """The plugin's compile fails (integer division by zero, '%' on a float): evaluate must raise ExprError."""


INT32 = (-(2 ** 31), 2 ** 31 - 1)
FLOAT_LITERALS = ["0.5", "2.25", "3.0", "1e2", "7.75", "0.1", "1024.5"]
PROP_VARS = {"X": 7, "Y": 13, "F": 3, "B": 2, "big": 16777217, "factor": np.float32(0.3)}
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}


def _oracle_binary(op, a, b):
    if isinstance(a, int) and isinstance(b, int):
        if op in "/%" and b == 0:
            raise _Undefined
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = int(Decimal(a) / Decimal(b))            # Decimal -> int truncates toward zero
        else:
            r = a - b * int(Decimal(a) / Decimal(b))     # C identity: a == (a/b)*b + a%b
        return int(np.array(r % 2 ** 32, dtype=np.uint64).astype(np.uint32).view(np.int32))   # wraps
    if op == "%":
        raise _Undefined
    fa, fb = np.float32(a), np.float32(b)
    with np.errstate(all="ignore"):
        return {"+": fa + fb, "-": fa - fb, "*": fa * fb, "/": fa / fb}[op]


def _oracle_function(name, x):
    fx = np.float32(x)
    if name == "sqrt" and fx < 0:
        return np.float32(np.nan)
    if not np.isfinite(fx):
        return np.abs(fx) if name == "abs" else fx
    if name == "round":
        return np.float32(int(Decimal(float(fx)).quantize(Decimal(1), rounding=ROUND_HALF_UP)))
    return {"floor": np.floor, "ceil": np.ceil, "abs": np.abs, "sqrt": np.sqrt}[name](fx)


def _leaves():
    ints = st.one_of(st.integers(0, 20), st.integers(0, 2 ** 31 - 1))
    return st.one_of(
        ints.map(lambda v: (str(v), v, 3)),
        st.integers(1, 50).map(lambda v: (f"(0-{v})", -v, 3)),     # negatives need a subtraction

        st.sampled_from(FLOAT_LITERALS).map(lambda s: (s, np.float32(float(s)), 3)),
        st.sampled_from(sorted(PROP_VARS)).map(lambda k: (k, PROP_VARS[k], 3)),
    )


def _extend(children):
    def binary(args):
        op, (lt, lv, lp), (rt, rv, rp) = args
        left = lt if lp >= _PREC[op] else f"({lt})"
        right = rt if rp > _PREC[op] else f"({rt})"
        return (f"{left}{op}{right}", ("bin", op, lv, rv), _PREC[op])

    def function(args):
        name, (t, v, _) = args
        return (f"{name}({t})", ("fn", name, v), 3)

    def paren(node):
        t, v, _ = node
        return (f" ( {t} ) ", v, 3)

    return st.one_of(
        st.tuples(st.sampled_from("+-*/%"), children, children).map(binary),
        st.tuples(st.sampled_from(expr.FUNCTIONS), children).map(function),
        children.map(paren),
    )


def _value(node):
    if not isinstance(node, tuple):
        return node
    if node[0] == "bin":
        return _oracle_binary(node[1], _value(node[2]), _value(node[3]))
    return _oracle_function(node[1], _value(node[2]))


@settings(max_examples=400, deadline=None)
@given(st.recursive(_leaves(), _extend, max_leaves=8))
def test_matches_independent_evaluation(tree):
    text, node, _ = tree
    try:
        value = _value(node)
        if isinstance(value, int):
            expected = value
        else:
            if not np.isfinite(value) or not INT32[0] <= int(np.trunc(value)) <= INT32[1]:
                expected = INT_MIN                  # the x86 conversion's "integer indefinite"
            else:
                expected = int(np.trunc(value))
    except _Undefined:
        with pytest.raises(ExprError):
            expr.evaluate(text, PROP_VARS_PLAIN)
        return
    assert expr.evaluate(text, PROP_VARS_PLAIN) == expected, text
    raw = expr.evaluate_value(text, PROP_VARS_PLAIN)
    assert isinstance(raw, int) == isinstance(value, int), text


PROP_VARS_PLAIN = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in PROP_VARS.items()}


def test_numpy_numbers_are_accepted():
    variables = expr.size_variables(np.array([1, 2, 3, 4]), {"stride": np.int64(2), "scale": np.float64(0.5)})
    assert variables["stride"] == 2 and variables["X"] == 4
    assert expr.evaluate("X*stride+F*scale", variables) == 9
