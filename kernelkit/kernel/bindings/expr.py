"""The MYRIAD plugin's size-expression language (WorkSizes global/local, buffer and local_data sizes).

Semantics, as the real 2021.4 plugin evaluates them (measured: docs/binding-verdicts.md, group "expr"):
* binary `+ - * / %` (`* / %` bind tighter than `+ -`, all left-associative), parentheses, and the
  one-argument functions floor, ceil, round, abs, sqrt; there is no unary minus;
* identifiers `[A-Za-z][A-Za-z0-9_]*` must be known variables (variables are looked up before functions);
* numbers are decimal literals: `12` is an int (above 2^31-1 it saturates), `0.5` / `1e3` are floats;
* each value is a 32-bit int or a 32-bit float: int op int stays int (division truncates toward zero, `%`
  takes the sign of the dividend, overflow wraps), any float operand makes the result float (IEEE: x/0.0 is
  inf, sqrt of a negative is NaN), `%` with a float operand is an error; functions compute in float;
* the final value is truncated toward zero to an int; NaN, inf and floats outside int32 become -2^31.

The plugin reads an expression in two steps, and a failure means different things:
* parsing (when it chooses a binding): an unknown name, an unexpected character or unbalanced parentheses
  make the binding unsuitable, and the plugin silently skips it (`ExprError.kind == "parse"`);
* evaluation (when it compiles the stage): an operator or function short of operands, two values with no
  operator between them, `%` on a float, an integer division by zero make the compile fail (`"evaluate"`).
Its parser checks no structure: `floor X` is floor(X) and `X()` is X. `parse(strict=True)` (the default, for
authoring) refuses what evaluation would refuse and those oddities too; `strict=False` reads as the plugin.
"""

from __future__ import annotations

import math
import numbers
import re
import struct
from dataclasses import dataclass
from typing import Mapping, Union

from kernelkit.core.errors import KernelkitError

Number = Union[int, float]
INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1

FUNCTIONS = ("floor", "ceil", "round", "abs", "sqrt")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}
_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")   # ASCII digits only, as the plugin reads
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NO_UNARY = {"-": " (there is no unary minus)"}


class ExprError(KernelkitError):
    """A size expression that does not parse or cannot be evaluated.

    `kind` is "parse" (the plugin skips the binding) or "evaluate" (the plugin's compile fails)."""

    def __init__(self, message: str, *, expression: str | None = None, position: int | None = None,
                 kind: str = "evaluate", **kwargs):
        self.expression = expression
        self.position = position
        self.kind = kind
        if expression is not None:
            at = f" at column {position + 1}" if position is not None else ""
            message = f"size expression {expression!r}{at}: {message}"
        super().__init__(message, **kwargs)


def _f32(value: float) -> float:
    """Round to the nearest float32, as the plugin's `float` holds it (inf and NaN pass)."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


float32 = _f32


def _wrap(value: int) -> int:
    """Two's-complement int32, as the plugin's int arithmetic overflows."""
    return (value + 2 ** 31) % 2 ** 32 - 2 ** 31


@dataclass(frozen=True)
class _Token:
    kind: str          # "num", "name" -> "var" / "func", "op", "(", ")"
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
        if "0" <= ch <= "9":
            m = _NUMBER.match(text, i)
            literal = m.group(0)
            is_float = m.group(1) is not None or m.group(2) is not None
            # a literal of thousands of digits saturates without int() (which refuses over 4300 digits)
            value: Number = _f32(float(literal)) if is_float else \
                INT_MAX if len(literal.lstrip("0")) > 10 else min(int(literal), INT_MAX)
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
                            "',' separates the dimensions of global/local)", expression=text, position=i, kind="parse")
        else:
            raise ExprError(f"unexpected character {ch!r}", expression=text, position=i, kind="parse")
        i += 1
    return tokens


@dataclass(frozen=True)
class Expression:
    """A parsed expression in postfix order, as the plugin's shunting-yard parser leaves it."""

    text: str
    postfix: tuple[_Token, ...]
    oddity: str | None = None         # structure the plugin accepts but a reader would not expect

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
                                    position=tok.pos, kind="parse",
                                    hint="use B, F, Y, X or a numeric attribute of the layer")
                stack.append(_coerce(variables[tok.text], tok.text, self.text, tok.pos))
            elif tok.kind == "func":
                if not stack:
                    raise ExprError(f"function {tok.text} has no argument", expression=self.text, position=tok.pos,
                                    hint=f"write {tok.text}(x)")
                stack.append(_apply_function(tok, stack.pop()))
            else:
                if len(stack) < 2:
                    raise ExprError(f"operator '{tok.text}' has only {len(stack)} operand(s)"
                                    + _NO_UNARY.get(tok.text, ""), expression=self.text,
                                    position=tok.pos, hint="there is no unary minus: write (0-x) instead of -x"
                                    if tok.text == "-" else None)
                right = stack.pop()
                left = stack.pop()
                stack.append(_apply_operator(tok, left, right, self.text))
        if len(stack) != 1:
            raise ExprError("no value" if not stack else f"{len(stack)} values with no operator between them",
                            expression=self.text)
        return stack[0]

    def evaluate(self, variables: Mapping[str, Number]) -> int:
        return truncate(self.value(variables))

    def structure_error(self) -> ExprError | None:
        """The evaluation error this expression raises whatever its variables are (missing operands, values
        with no operator), or None."""
        depth = 0
        for tok in self.postfix:
            if tok.kind in ("num", "var"):
                depth += 1
            elif tok.kind == "func":
                if depth < 1:
                    return ExprError(f"function {tok.text} has no argument", expression=self.text, position=tok.pos,
                                     hint=f"write {tok.text}(x)")
            else:
                if depth < 2:
                    return ExprError(f"operator '{tok.text}' has only {depth} operand(s)" + _NO_UNARY.get(tok.text, ""),
                                     expression=self.text,
                                     position=tok.pos, hint="there is no unary minus: write (0-x) instead of -x"
                                     if tok.text == "-" else None)
                depth -= 1
        if depth != 1:
            return ExprError("no value" if not depth else f"{depth} values with no operator between them",
                             expression=self.text)
        return None


def _coerce(value, name: str, text: str, pos: int) -> Number:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExprError(f"variable {name!r} is {value!r}, not a number", expression=text, position=pos)
    if isinstance(value, numbers.Integral):
        value = int(value)
        if not INT_MIN <= value <= INT_MAX:
            raise ExprError(f"variable {name!r} = {value} does not fit a 32-bit int", expression=text, position=pos)
        return value
    return _f32(float(value))


def _apply_operator(tok: _Token, a: Number, b: Number, text: str) -> Number:
    op = tok.text
    if isinstance(a, int) and isinstance(b, int):
        if op in "/%" and b == 0:
            raise ExprError(f"integer {'division' if op == '/' else 'remainder'} by zero (the plugin crashes)",
                            expression=text, position=tok.pos)
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
        return _wrap(r)
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
    if fb == 0.0:                                  # IEEE: x/0 is +-inf, 0/0 is NaN
        return math.nan if fa == 0.0 or math.isnan(fa) else math.copysign(math.inf, fa) * math.copysign(1.0, fb)
    return _f32(fa / fb)


def _apply_function(tok: _Token, x: Number) -> float:
    fx = _f32(float(x))
    name = tok.text
    if name == "abs":
        return abs(fx)
    if name == "sqrt":
        return math.nan if fx < 0 or math.isnan(fx) else _f32(math.sqrt(fx))
    if not math.isfinite(fx):
        return fx
    if name == "floor":
        return _f32(math.floor(fx))
    if name == "ceil":
        return _f32(math.ceil(fx))
    return _f32(math.copysign(math.floor(abs(fx) + 0.5), fx))     # C's round: halves away from zero


def truncate(value: Number, text: str | None = None) -> int:
    """The plugin's final step: a float becomes an int by truncation toward zero; NaN, inf and values
    outside int32 become -2^31 (the x86 conversion's "integer indefinite")."""
    if isinstance(value, int):
        return value
    if not math.isfinite(value) or not INT_MIN <= math.trunc(value) <= INT_MAX:
        return INT_MIN
    return math.trunc(value)


def parse(text: str, variables: Mapping[str, Number] | None = None, *, strict: bool = True) -> Expression:
    """Parse `text` with the plugin's shunting-yard algorithm. With `variables`, every identifier must be one
    of them or a function (the plugin resolves names while parsing); without, names that are not functions
    are taken as variables.

    strict=False raises only what the plugin's parser raises (kind "parse"); strict=True (for authoring)
    also raises the evaluation's structural errors (kind "evaluate") and the oddities the plugin accepts."""
    if not isinstance(text, str):
        raise ExprError(f"a size expression must be text, not {type(text).__name__}", kind="parse")
    tokens = _tokenize(text)
    output: list[_Token] = []
    stack: list[_Token] = []
    oddity = None
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
                                expression=text, position=tok.pos, kind="parse",
                                hint="use B, F, Y, X or a numeric attribute of the layer")
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if tok.kind in ("num", "var"):
            output.append(tok)
        elif tok.kind == "func":
            if (following is None or following.kind != "(") and oddity is None:
                oddity = f"function {tok.text} without parentheses: the plugin applies it to the next value only"
            stack.append(tok)
        elif tok.kind == "(":
            if following is not None and following.kind == ")" and oddity is None:
                oddity = "'()' holds nothing: the plugin ignores it"
            stack.append(tok)
        elif tok.kind == ")":
            while stack and stack[-1].kind != "(":
                output.append(stack.pop())
            if not stack:
                raise ExprError("')' has no matching '('", expression=text, position=tok.pos, kind="parse")
            stack.pop()
            if stack and stack[-1].kind == "func":
                output.append(stack.pop())
        else:  # operator: functions bind tighter than any operator
            while stack and (stack[-1].kind == "func" or
                             (stack[-1].kind == "op" and _PRECEDENCE[stack[-1].text] >= _PRECEDENCE[tok.text])):
                output.append(stack.pop())
            stack.append(tok)
    while stack:
        tok = stack.pop()
        if tok.kind == "(":
            raise ExprError("'(' is never closed", expression=text, position=tok.pos, kind="parse")
        output.append(tok)
    parsed = Expression(text, tuple(output), oddity)
    if strict:
        if not tokens:
            raise ExprError("the expression is empty", expression=text)
        problem = parsed.structure_error()
        if problem is not None:
            raise problem
        if oddity is not None:
            raise ExprError(oddity, expression=text)
    return parsed


def evaluate(text: str, variables: Mapping[str, Number], *, strict: bool = False) -> int:
    """Evaluate a size expression as the plugin does; the result is an int. ExprError.kind says whether the
    plugin would skip the binding ("parse") or fail to compile ("evaluate")."""
    return parse(text, variables, strict=strict).evaluate(variables)


def evaluate_value(text: str, variables: Mapping[str, Number], *, strict: bool = False) -> Number:
    """Evaluate without the final truncation (int or float32), e.g. for diagnostics."""
    return parse(text, variables, strict=strict).value(variables)


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
