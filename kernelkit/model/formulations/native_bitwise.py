"""Native formulations of BitwiseAnd/Or/Xor/Not-13 (no MYRIAD stage, and no opset the 2021.4 reader
knows), in the S32 arithmetic the plugin has: Add, Subtract, Multiply and Divide.

Not is arithmetic: ~x = -1 - x for signed types, (2^w - 1) - x for unsigned ones. And/Or/Xor take the
operands apart bit by bit without a division (OpenVINO CPU divides integers through float, inexact above
2^24): x * 2^(31-k) moves bit k to the sign, which wrapping S32 multiplication keeps, and a sign test reads
it (in fp16, the only comparison the plugin has: a conversion keeps the sign). The bits combine as a*b,
a+b-a*b and a+b-2ab and are summed back with their weights, the top bit weighing -2^(w-1) for signed types.
MYRIAD holds every integer as S32, so 64-bit operands must fit 32 bits (as everywhere on the VPU).
"""

from __future__ import annotations

import numpy as np

from kernelkit.model.formulations.compose import Composer
from kernelkit.model.formulations.registry import formulation
from kernelkit.model.passes.base import Refuse
from kernelkit.ir.graph import Out, input_of

WIDTH = {"I8": 8, "U8": 8, "I16": 16, "U16": 16, "I32": 32, "U32": 32, "I64": 32, "U64": 32}
SIGNED = {"I8", "I16", "I32", "I64"}


def _int_input(model, layer, index: int) -> Out:
    value = input_of(model, layer, index)
    if value.precision not in WIDTH and value.precision != "BOOL":
        raise Refuse(f"input {index} is {value.precision}; bitwise ops take integers or booleans")
    if any(d <= 0 for d in value.dims):
        raise Refuse("a dynamic or zero dimension")
    return value


def _as_i32(c: Composer, x: Out) -> Out:
    return x if x.precision == "I32" else c.convert(x, "i32")


def _back(c: Composer, x: Out, layer) -> Out:
    element = layer.outputs[0].element_type
    return x if element in ("i32", None) else c.convert(x, element)


def _logical(c: Composer, kind: str, a: Out, b: Out | None) -> Out:
    """Booleans: the bitwise ops are the logical ones (the precision patcher routes them for MYRIAD)."""
    name = {"bitwiseand": "LogicalAnd", "bitwiseor": "LogicalOr", "bitwisexor": "LogicalXor",
            "bitwisenot": "LogicalNot"}[kind]
    return c.op(name, [a] if b is None else [a, b], None if b is None else {"auto_broadcast": "numpy"})


@formulation("bitwisenot", text="-1 - x (signed) or 2^w - 1 - x (unsigned) in S32")
def bitwise_not(model, layer) -> Out:
    x = _int_input(model, layer, 0)
    c = Composer(model, layer, x, dtype=np.int32)
    if x.precision == "BOOL":
        return _logical(c, "bitwisenot", x, None)
    if x.precision in ("U32", "U64"):
        raise Refuse("a 32-bit unsigned complement does not fit MYRIAD's S32")
    top = -1 if x.precision in SIGNED else (1 << WIDTH[x.precision]) - 1
    return _back(c, c.sub(np.int32(top), _as_i32(c, x)), layer)


def _bits(c: Composer, x: Out, count: int) -> list[Out]:
    """Bits 0..count-1 of the S32 value x as 0/1 S32 tensors (two's complement: negative values included)."""
    bits = []
    for k in range(count):
        shifted = x if k == 31 else c.mul(x, np.int32(-(1 << 31)) if k == 0 else np.int32(1 << (31 - k)))
        bits.append(c.convert(c.less(c.convert(shifted, "f16"), 0), "i32"))
    return bits


def _combine(c: Composer, kind: str, a: Out, b: Out) -> Out:
    both = c.mul(a, b)
    if kind == "bitwiseand":
        return both
    total = c.add(a, b)
    return c.sub(total, both) if kind == "bitwiseor" else c.sub(total, c.mul(both, np.int32(2)))


@formulation("bitwiseand", text="bit by bit in S32 (bit k to the sign by a wrapping multiply), a*b, summed back")
@formulation("bitwiseor", text="bit by bit in S32 (bit k to the sign by a wrapping multiply), a+b-ab, summed back")
@formulation("bitwisexor", text="bit by bit in S32 (bit k to the sign by a wrapping multiply), a+b-2ab, summed back")
def bitwise_binary(model, layer) -> Out:
    a, b = _int_input(model, layer, 0), _int_input(model, layer, 1)
    kind = layer.type.lower()
    c = Composer(model, layer, a, dtype=np.int32)
    if a.precision == "BOOL" and b.precision == "BOOL":
        return _logical(c, kind, a, b)
    if a.precision == "BOOL" or b.precision == "BOOL":
        raise Refuse("a boolean and an integer operand")
    width = max(WIDTH[a.precision], WIDTH[b.precision])
    signed = a.precision in SIGNED or b.precision in SIGNED
    if not signed and width == 32:
        width = 31                     # unsigned values must fit S32: bit 31 is 0
    bits_a, bits_b = _bits(c, _as_i32(c, a), width), _bits(c, _as_i32(c, b), width)
    result = None
    for k, (x, y) in enumerate(zip(bits_a, bits_b)):
        bit = _combine(c, kind, x, y)
        weight = -(1 << k) if signed and k == width - 1 else 1 << k
        term = c.mul(bit, np.int32(weight)) if weight != 1 else bit
        result = term if result is None else c.add(result, term)
    return _back(c, result, layer)
