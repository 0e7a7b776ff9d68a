"""Native formulations of the element-wise math ops the MYRIAD 2021.4 plugin has no stage for: Sin, Cos,
Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, written with Exp, Log, Sqrt, Round, FloorMod,
Select and arithmetic.

Every intermediate is an fp16 tensor on the VPU, so each formula is shaped for fp16, not for exact
arithmetic: no squares of values above 2**8, no 1 + small where small is lost, range reductions whose
products are exact in fp16, and polynomials only on short intervals (their coefficients are rounded to
fp16 too). The errors measured this way (kernelkit.runners.fp16_layers) are in
kernelkit/facts/data/native-fp16.json; tools/measure_native.py writes them.
"""

from __future__ import annotations

import math

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import FLOAT_PRECISIONS, Out, input_of

# pi/2 as a sum of signed powers of two: k * 2**e is exact in fp16 for |k| <= 2048 (subnormal products
# included), so each x - k*part is exact and only the last part rounds. That part is taken as
# (k * (tail * 2**14)) * 2**-14 so that its constant is a normal fp16 number. |k| <= 2048 bounds the
# accurate domain.
HALF_PI_PARTS = (1.0, 0.5, 2.0 ** -4, 2.0 ** -7, 2.0 ** -11, -2.0 ** -18, -2.0 ** -21, -2.0 ** -23)
HALF_PI_TAIL = math.pi / 2 - sum(HALF_PI_PARTS)
TAIL_SCALE = 2.0 ** 14
TRIG_DOMAIN = 3200.0         # |k| <= 2037: every part product exact (measured clean to 3300)
TAN_PI_8 = math.tan(math.pi / 8)


def _float_x(model, layer) -> Out:
    x = input_of(model, layer, 0)
    if x.precision not in FLOAT_PRECISIONS:
        raise Refuse(f"input is {x.precision}; the formulation is for floating point")
    return x


def _taylor(kind: str, terms: int) -> list[float]:
    """Coefficients in z = r*r, lowest first, of sin(r)/r ("sin") or cos(r) ("cos")."""
    if kind == "sin":
        return [(-1) ** n / math.factorial(2 * n + 1) for n in range(terms)]
    return [(-1) ** n / math.factorial(2 * n) for n in range(terms)]


def _quadrant(c: Composer, x: Out) -> tuple[Out, Out]:
    """x = k*pi/2 + r with |r| <= pi/4 (a little more where k rounds off by one): (k, r)."""
    k = c.round(c.mul(x, 2 / math.pi))
    r = c.sub(x, k)
    for part in HALF_PI_PARTS[1:]:
        r = c.sub(r, c.mul(k, part))
    return k, c.sub(r, c.mul(c.mul(k, HALF_PI_TAIL * TAIL_SCALE), 1 / TAIL_SCALE))


def _sin_cos_core(c: Composer, r: Out) -> tuple[Out, Out]:
    """sin(r), cos(r) for |r| <~ 1.2 (Taylor to r**9 and r**8: below fp16 resolution there)."""
    z = c.mul(r, r)
    s = c.add(r, c.mul(r, c.mul(z, c.horner(z, _taylor("sin", 5)[1:]))))
    return s, c.horner(z, _taylor("cos", 5))


def _odd(c: Composer, k: Out, shift: int = 0) -> tuple[Out, Out]:
    """(k + shift) odd, and (k + shift) mod 4 in {2, 3}: which core function, and its sign."""
    shifted = c.add(k, shift) if shift else k
    odd = c.equal(c.floor_mod(shifted, 2), 1)
    negative = c.greater(c.floor_mod(shifted, 4), 1.5)
    return odd, negative


@formulation("sin", text="k = Round(2x/pi), r = x - k*pi/2 (exact parts), +-sin/cos(r) series by quadrant")
def sin(model, layer) -> Out:
    """sin(x) = +-sin(r) or +-cos(r) by the quadrant k of x = k*pi/2 + r."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    k, r = _quadrant(c, x)
    s, co = _sin_cos_core(c, r)
    odd, negative = _odd(c, k)
    value = c.select(odd, co, s)
    return c.select(negative, c.neg(value), value)


@formulation("cos", text="sin(x + pi/2) through the same quadrant reduction")
def cos(model, layer) -> Out:
    """cos(x) = sin(x + pi/2): the quadrant shifted by one."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    k, r = _quadrant(c, x)
    s, co = _sin_cos_core(c, r)
    odd, negative = _odd(c, k, 1)
    value = c.select(odd, co, s)
    return c.select(negative, c.neg(value), value)


@formulation("tan", text="sin(r)/cos(r) or -cos(r)/sin(r) by quadrant")
def tan(model, layer) -> Out:
    """tan(x) = sin(r)/cos(r) in even quadrants, -cos(r)/sin(r) in odd ones (the small divisor is exact)."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    k, r = _quadrant(c, x)
    s, co = _sin_cos_core(c, r)
    odd = c.equal(c.floor_mod(k, 2), 1)
    numerator = c.select(odd, c.neg(co), s)
    return c.div(numerator, c.select(odd, s, co))


def _atan_unit(c: Composer, t: Out) -> Out:
    """atan(t) for 0 <= t <= 1: t above tan(pi/8) goes through atan(t) = pi/4 + atan((t-1)/(t+1)), so the
    series runs on |u| <= 0.414 only, where six terms are below fp16 resolution."""
    high = c.greater(t, TAN_PI_8)
    u = c.select(high, c.div(c.sub(t, 1), c.add(t, 1)), t)
    z = c.mul(u, u)
    series = c.mul(u, c.horner(z, [(-1) ** n / (2 * n + 1) for n in range(6)]))
    return c.select(high, c.add(series, math.pi / 4), series)


def _atan_ratio(c: Composer, num: Out, den: Out) -> Out:
    """atan(num/den) for num, den >= 0 (den may be 0 or inf), without forming a ratio above 1."""
    swap = c.greater(num, den)
    t = c.select(swap, c.div(den, num), c.div(num, den))
    unit = _atan_unit(c, t)
    return c.select(swap, c.sub(math.pi / 2, unit), unit)


def _with_sign_of(c: Composer, x: Out, value: Out) -> Out:
    return c.select(c.less(x, 0), c.neg(value), value)


@formulation("atan", text="sign(x) * atan(min(|x|, 1/|x|)), series on |u| <= tan(pi/8)")
def atan(model, layer) -> Out:
    """atan(x) = sign(x) * atan(|x| / 1), reduced to [0, 1] by atan(a) = pi/2 - atan(1/a)."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    return _with_sign_of(c, x, _atan_ratio(c, c.abs(x), c.value(1.0)))


@formulation("asin", text="atan(|x| / sqrt((1-x)(1+x))) with the sign of x")
def asin(model, layer) -> Out:
    """asin(x) = sign(x) * atan(|x| / sqrt((1-x)(1+x))); the product form keeps 1 - x*x exact near +-1."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    root = c.sqrt(c.mul(c.sub(1, x), c.add(x, 1)))
    return _with_sign_of(c, x, _atan_ratio(c, c.abs(x), root))


@formulation("acos", text="2 * atan(sqrt((1-x)/(1+x)))")
def acos(model, layer) -> Out:
    """acos(x) = 2 * atan(sqrt((1-x)/(1+x))): no pi/2 - asin(x), which cancels near x = 1."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    root = c.sqrt(c.div(c.sub(1, x), c.add(x, 1)))
    return c.mul(_atan_ratio(c, root, c.value(1.0)), 2)


def _exp_halves(c: Composer, a: Out) -> tuple[Out, Out]:
    """(e**a / 2, e**-a / 2) for a >= 0, without e**a itself: e**(a/2) * (e**(a/2) / 2) stays finite up to
    a = 11.78 (where cosh leaves fp16), e**a overflows at 11.09."""
    half = c.exp(c.mul(a, 0.5))
    return c.mul(c.mul(half, 0.5), half), c.mul(c.exp(c.neg(a)), 0.5)


@formulation("cosh", text="e^|x|/2 + e^-|x|/2, e^|x|/2 as e^(|x|/2) * e^(|x|/2)/2")
def cosh(model, layer) -> Out:
    """cosh(x) = e**|x|/2 + e**-|x|/2."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    grow, decay = _exp_halves(c, c.abs(x))
    return c.add(grow, decay)


@formulation("sinh", text="(e^|x|/2 - e^-|x|/2) with the sign of x; series below 0.5")
def sinh(model, layer) -> Out:
    """sinh(x) = sign(x) (e**|x|/2 - e**-|x|/2); below |x| = 0.5 its series (the difference cancels)."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    a = c.abs(x)
    grow, decay = _exp_halves(c, a)
    z = c.mul(x, x)
    series = c.mul(x, c.horner(z, [1 / math.factorial(2 * n + 1) for n in range(4)]))
    return c.select(c.less(a, 0.5), series, _with_sign_of(c, x, c.sub(grow, decay)))


@formulation("asinh", text="log(|x| + sqrt(x^2 + 1)) with the sign of x; series below 0.5, log(2|x|) above 128")
def asinh(model, layer) -> Out:
    """asinh(x) = sign(x) log(|x| + sqrt(x*x + 1)); its series below 0.5, log(2|x|) above 128 (x*x would
    overflow)."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    a = c.abs(x)
    z = c.mul(x, x)
    # asinh(x) = x - x^3/6 + 3x^5/40 - 15x^7/336 + 105x^9/3456
    series = c.mul(x, c.horner(z, [1.0, -1 / 6, 3 / 40, -15 / 336, 105 / 3456]))
    middle = c.log(c.add(a, c.sqrt(c.add(c.mul(a, a), 1))))
    large = c.add(c.log(a), math.log(2))
    magnitude = c.select(c.greater(a, 128), large, middle)
    return c.select(c.less(a, 0.5), series, _with_sign_of(c, x, magnitude))


@formulation("acosh", text="log(x + sqrt((x-1)(x+1))); series near 1, log(2x) above 128")
def acosh(model, layer) -> Out:
    """acosh(x) = log(x + sqrt((x-1)(x+1))); near 1 the series sqrt(2t)(1 - t/12 + 3t^2/160 - 5t^3/896),
    t = x - 1 (the log form would cancel); log(2x) above 128."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    t = c.sub(x, 1)
    series = c.mul(c.sqrt(c.mul(t, 2)), c.horner(t, [1.0, -1 / 12, 3 / 160, -5 / 896, 35 / 18432]))
    middle = c.log(c.add(x, c.sqrt(c.mul(t, c.add(x, 1)))))
    large = c.add(c.log(x), math.log(2))
    return c.select(c.less(x, 1.5), series, c.select(c.greater(x, 128), large, middle))


@formulation("atanh", text="log((1+x)/(1-x)) / 2; series below 0.5")
def atanh(model, layer) -> Out:
    """atanh(x) = log((1+x)/(1-x)) / 2; its odd series below |x| = 0.5."""
    x = _float_x(model, layer)
    c = Composer(model, layer, x)
    z = c.mul(x, x)
    series = c.mul(x, c.horner(z, [1 / (2 * n + 1) for n in range(6)]))
    logs = c.mul(c.log(c.div(c.add(x, 1), c.sub(1, x))), 0.5)
    return c.select(c.less(c.abs(x), 0.5), series, logs)


# numpy references for the measurement (float64 on the fp16-rounded inputs) and the fp16 domains swept.
REFERENCES = {"sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
              "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh,
              "atanh": np.arctanh}
# Where each formulation is claimed accurate: the whole fp16 line, except the trig range reduction.
DOMAINS = {"sin": (-TRIG_DOMAIN, TRIG_DOMAIN), "cos": (-TRIG_DOMAIN, TRIG_DOMAIN),
           "tan": (-TRIG_DOMAIN, TRIG_DOMAIN)}
