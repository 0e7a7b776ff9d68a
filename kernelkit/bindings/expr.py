"""The MYRIAD plugin's size-expression language (WorkSizes global/local, buffer and local_data sizes).

Semantics, as the 2021/2022 plugin evaluates them (reference: myriad-custom-layers.md §1.7):
* binary `+ - * /  %` (`* / %` bind tighter than `+ -`, all left-associative), parentheses, and the
  one-argument functions floor, ceil, round, abs, sqrt; there is no unary minus;
* identifiers `[A-Za-z][A-Za-z0-9_]*` must be known variables (variables are looked up before functions);
* numbers are decimal literals: `12` is an int, `0.5` / `1e3` are floats;
* each value is a 32-bit int or a 32-bit float: int op int stays int (division truncates toward zero,
  `%` takes the sign of the dividend, as in C++), any float operand makes the result float, `%` with a float
  operand is an error; functions compute in float;
* the final value is truncated toward zero to an int.
kernelkit is stricter than the plugin about malformed text (dangling operators, two values in a row): the
plugin's behaviour there is undefined, so we reject it with the position.
"""

from __future__ import annotations

import math
import numbers
import re
import struct
from dataclasses import dataclass
from typing import Mapping, Union

from ..errors import KernelkitError

Number = Union[int, float]
INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1

FUNCTIONS = ("floor", "ceil", "round", "abs", "sqrt")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class ExprError(KernelkitError):
    """A size expression that does not parse or cannot be evaluated."""

    def __init__(self, message: str, *, expression: str | None = None, position: int | None = None, **kwargs):
        self.expression = expression
        self.position = position
        if expression is not None:
            at = f" at column {position + 1}" if position is not None else ""
            message = f"size expression {expression!r}{at}: {message}"
        super().__init__(message, **kwargs)


def _f32(value: float) -> float:
    """Round to the nearest float32, as the plugin's `float` holds it."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


@dataclass(frozen=True)
class _Token:
    kind: str          # "num", "var", "func", "op", "(", ")"
    text: str
    pos: int
    value: Number | None = None


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t":
            i += 1
            continue
        if ch.isdigit():
            m = _NUMBER.match(text, i)
            literal = m.group(0)
            is_float = m.group(1) is not None or m.group(2) is not None
            value: Number = _f32(float(literal)) if is_float else int(literal)
            if not is_float and value > INT_MAX:
                raise ExprError(f"integer literal {literal} does not fit a 32-bit int", expression=text, position=i)
            tokens.append(_Token("num", literal, i, value))
            i = m.end()
            continue
        if ch.isascii() and ch.isalpha():
            m = _IDENT.match(text, i)
            tokens.append(_Token("name", m.group(0), i))
            i = m.end()
            continue
        if ch in _PRECEDENCE:
            tokens.append(_Token("op", ch, i))
        elif ch in "()":
            tokens.append(_Token(ch, ch, i))
        elif ch == ",":
            raise ExprError("a ',' cannot appear inside one expression (functions take one argument; "
                            "',' separates the dimensions of global/local)", expression=text, position=i)
        else:
            raise ExprError(f"unexpected character {ch!r}", expression=text, position=i)
        i += 1
    return tokens


@dataclass(frozen=True)
class Expression:
    """A parsed expression in postfix order; evaluate it with different variables."""

    text: str
    postfix: tuple[_Token, ...]

    @property
    def identifiers(self) -> set[str]:
        return {t.text for t in self.postfix if t.kind == "var"}

    def value(self, variables: Mapping[str, Number]) -> Number:
        """The value before the final truncation: an int or a float32."""
        stack: list[Number] = []
        for tok in self.postfix:
            if tok.kind == "num":
                stack.append(tok.value)
            elif tok.kind == "var":
                if tok.text not in variables:
                    raise ExprError(f"unknown identifier {tok.text!r} (known: "
                                    f"{', '.join(sorted(variables)) or 'none'})", expression=self.text,
                                    position=tok.pos, hint="use B, F, Y, X or a numeric attribute of the layer")
                stack.append(_coerce(variables[tok.text], tok.text, self.text, tok.pos))
            elif tok.kind == "func":
                stack.append(_apply_function(tok, stack.pop(), self.text))
            else:
                right = stack.pop()
                left = stack.pop()
                stack.append(_apply_operator(tok, left, right, self.text))
        return stack[0]

    def evaluate(self, variables: Mapping[str, Number]) -> int:
        return truncate(self.value(variables), self.text)


def _coerce(value, name: str, text: str, pos: int) -> Number:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExprError(f"variable {name!r} is {value!r}, not a number", expression=text, position=pos)
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not INT_MIN <= value <= INT_MAX:
            raise ExprError(f"variable {name!r} = {value} does not fit a 32-bit int", expression=text, position=pos)
        return value
    return _f32(float(value))


def _check_int(result: int, tok: _Token, text: str) -> int:
    if not INT_MIN <= result <= INT_MAX:
        raise ExprError(f"'{tok.text}' overflows a 32-bit int ({result})", expression=text, position=tok.pos)
    return result


def _apply_operator(tok: _Token, a: Number, b: Number, text: str) -> Number:
    op = tok.text
    if isinstance(a, int) and isinstance(b, int):
        if op in "/%" and b == 0:
            raise ExprError(f"integer {'division' if op == '/' else 'remainder'} by zero", expression=text,
                            position=tok.pos)
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)   # C++: truncate toward zero
        else:
            r = abs(a) % abs(b) * (1 if a >= 0 else -1)                   # C++: sign of the dividend
        return _check_int(r, tok, text)
    if op == "%":
        raise ExprError("'%' needs two integers, and an operand is a float", expression=text, position=tok.pos,
                        hint="floor()/round() return floats too; rewrite the expression without '%'")
    fa, fb = _f32(float(a)), _f32(float(b))      # an int operand is converted to float first
    if op == "+":
        return _f32(fa + fb)
    if op == "-":
        return _f32(fa - fb)
    if op == "*":
        return _f32(fa * fb)
    if fb == 0.0:
        raise ExprError("division by zero", expression=text, position=tok.pos)
    return _f32(fa / fb)


def _apply_function(tok: _Token, x: Number, text: str) -> float:
    fx = _f32(float(x))
    name = tok.text
    if name == "floor":
        return _f32(math.floor(fx)) if math.isfinite(fx) else fx
    if name == "ceil":
        return _f32(math.ceil(fx)) if math.isfinite(fx) else fx
    if name == "round":   # C's round: halves away from zero
        return _f32(math.copysign(math.floor(abs(fx) + 0.5), fx)) if math.isfinite(fx) else fx
    if name == "abs":
        return _f32(abs(fx))
    if fx < 0:
        raise ExprError(f"sqrt of a negative number ({x})", expression=text, position=tok.pos)
    return _f32(math.sqrt(fx))


def truncate(value: Number, text: str | None = None) -> int:
    """The plugin's final step: a float becomes an int by truncation toward zero."""
    if isinstance(value, int):
        return value
    if not math.isfinite(value) or not INT_MIN <= math.trunc(value) <= INT_MAX:
        raise ExprError(f"value {value} does not convert to a 32-bit int", expression=text)
    return math.trunc(value)


def parse(text: str, variables: Mapping[str, Number] | None = None) -> Expression:
    """Parse `text`. With `variables`, every identifier must be one of them or a function (as in the plugin,
    which resolves names while parsing); without, names that are not functions are taken as variables."""
    if not isinstance(text, str):
        raise ExprError(f"a size expression must be text, not {type(text).__name__}")
    tokens = _tokenize(text)
    if not tokens:
        raise ExprError("the expression is empty", expression=text)
    output: list[_Token] = []
    stack: list[_Token] = []
    expect_operand = True       # what may come next: a value/function/'(' or an operator/')'
    for index, tok in enumerate(tokens):
        if tok.kind == "name":
            if variables is not None and tok.text in variables:
                tok = _Token("var", tok.text, tok.pos)
            elif tok.text in FUNCTIONS:
                tok = _Token("func", tok.text, tok.pos)
            elif variables is None:
                tok = _Token("var", tok.text, tok.pos)
            else:
                raise ExprError(f"unknown identifier {tok.text!r} (known: {', '.join(sorted(variables)) or 'none'})",
                                expression=text, position=tok.pos,
                                hint="use B, F, Y, X or a numeric attribute of the layer")
        if tok.kind in ("num", "var"):
            if not expect_operand:
                raise ExprError(f"missing operator before {tok.text!r}", expression=text, position=tok.pos)
            output.append(tok)
            expect_operand = False
        elif tok.kind == "func":
            if not expect_operand:
                raise ExprError(f"missing operator before {tok.text!r}", expression=text, position=tok.pos)
            if index + 1 >= len(tokens) or tokens[index + 1].kind != "(":
                raise ExprError(f"function {tok.text} must be followed by '(' and one argument", expression=text,
                                position=tok.pos)
            stack.append(tok)
        elif tok.kind == "(":
            if not expect_operand:
                raise ExprError("missing operator before '('", expression=text, position=tok.pos)
            stack.append(tok)
        elif tok.kind == ")":
            if expect_operand:
                raise ExprError("missing value before ')'", expression=text, position=tok.pos)
            while stack and stack[-1].kind != "(":
                output.append(stack.pop())
            if not stack:
                raise ExprError("')' has no matching '('", expression=text, position=tok.pos)
            stack.pop()
            if stack and stack[-1].kind == "func":
                output.append(stack.pop())
        else:  # operator
            if expect_operand:
                if tok.text == "-":
                    raise ExprError("there is no unary minus", expression=text, position=tok.pos,
                                    hint="write (0-x) instead of -x")
                raise ExprError(f"operator '{tok.text}' has no left operand", expression=text, position=tok.pos)
            while stack and stack[-1].kind == "op" and _PRECEDENCE[stack[-1].text] >= _PRECEDENCE[tok.text]:
                output.append(stack.pop())
            stack.append(tok)
            expect_operand = True
    if expect_operand:
        last = tokens[-1]
        raise ExprError("the expression ends where a value is expected", expression=text, position=last.pos)
    while stack:
        tok = stack.pop()
        if tok.kind == "(":
            raise ExprError("'(' is never closed", expression=text, position=tok.pos)
        output.append(tok)
    return Expression(text, tuple(output))


def evaluate(text: str, variables: Mapping[str, Number]) -> int:
    """Evaluate a size expression as the plugin does; the result is an int."""
    return parse(text, variables).evaluate(variables)


def evaluate_value(text: str, variables: Mapping[str, Number]) -> Number:
    """Evaluate without the final truncation (int or float32), e.g. for diagnostics."""
    return parse(text, variables).value(variables)


def numeric_attribute(value) -> Number | None:
    """The number a layer attribute contributes to size expressions, or None when it is not numeric.

    The plugin sees legacy params as strings and keeps those that read fully as a number ("0,1,2" and
    "true" are skipped)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value) if INT_MIN <= value <= INT_MAX else None
    if isinstance(value, numbers.Real):
        return _f32(float(value)) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        number = int(text)
        return number if INT_MIN <= number <= INT_MAX else None
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        number = float(text)
        return _f32(number) if math.isfinite(number) else None
    return None


def dims_bfyx(shape) -> dict[str, int]:
    """B, F, Y, X of a tensor as the plugin's DataDesc names N, C, H, W; absent dimensions are 1.

    rank 4 NCHW, rank 3 CHW, rank 2 NC, rank 1 C, rank 5 NCDHW (D is not visible), rank 0 all 1."""
    dims = [int(d) for d in shape]
    rank = len(dims)
    if rank == 0:
        n = c = h = w = 1
    elif rank == 1:
        n, c, h, w = 1, dims[0], 1, 1
    elif rank == 2:
        n, c, h, w = dims[0], dims[1], 1, 1
    elif rank == 3:
        n, c, h, w = 1, dims[0], dims[1], dims[2]
    elif rank == 4:
        n, c, h, w = dims
    elif rank == 5:
        n, c, h, w = dims[0], dims[1], dims[3], dims[4]
    else:
        raise KernelkitError(f"a tensor of rank {rank} has no B/F/Y/X view in the MYRIAD plugin (rank <= 5)",
                             where=f"shape {list(dims)}")
    return {"B": n, "F": c, "Y": h, "X": w}


def size_variables(shape, layer_attrs: Mapping[str, object] | None = None) -> dict[str, Number]:
    """The variables a size expression sees: every numeric layer attribute, then B,F,Y,X (and b,f,y,x) of
    `shape`. An attribute named exactly like one of these wins, as in the plugin (its map keeps the first
    insert)."""
    variables: dict[str, Number] = {}
    for name, value in (layer_attrs or {}).items():
        number = numeric_attribute(value)
        if number is not None:
            variables[str(name)] = number
    for letter, size in dims_bfyx(shape).items():
        variables.setdefault(letter, size)
        variables.setdefault(letter.lower(), size)
    return variables
