"""OpenVINO element types: their names in `<data element_type=>`, port `precision=` strings, and `.bin` packing.

Packing facts (checked against OpenVINO 2026 `save_model`): little-endian; `u1` is bit-packed with the
first element in the most significant bit; `u4`/`i4` put the first element in the low nibble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernelkit.core.errors import KernelkitError


@dataclass(frozen=True)
class ElementType:
    name: str           # as in element_type= / destination_type=
    precision: str      # as in a port's precision=
    bits: int
    numpy: str | None   # numpy dtype of a decoded constant; None: kernelkit cannot decode it


ELEMENT_TYPES = {t.name: t for t in (
    ElementType("f16", "FP16", 16, "<f2"),
    ElementType("f32", "FP32", 32, "<f4"),
    ElementType("f64", "FP64", 64, "<f8"),
    ElementType("bf16", "BF16", 16, "<f4"),       # decoded by widening to float32
    ElementType("i4", "I4", 4, "i1"),
    ElementType("i8", "I8", 8, "i1"),
    ElementType("i16", "I16", 16, "<i2"),
    ElementType("i32", "I32", 32, "<i4"),
    ElementType("i64", "I64", 64, "<i8"),
    ElementType("u1", "BIN", 1, "u1"),
    ElementType("u2", "U2", 2, None),
    ElementType("u3", "U3", 3, None),
    ElementType("u4", "U4", 4, "u1"),
    ElementType("u6", "U6", 6, None),
    ElementType("u8", "U8", 8, "u1"),
    ElementType("u16", "U16", 16, "<u2"),
    ElementType("u32", "U32", 32, "<u4"),
    ElementType("u64", "U64", 64, "<u8"),
    ElementType("boolean", "BOOL", 8, "?"),
    ElementType("nf4", "NF4", 4, None),
    ElementType("f8e4m3", "F8E4M3", 8, None),
    ElementType("f8e5m2", "F8E5M2", 8, None),
    ElementType("f8e8m0", "F8E8M0", 8, None),
    ElementType("f4e2m1", "F4E2M1", 4, None),
    ElementType("string", "STRING", 0, None),
    ElementType("dynamic", "UNSPECIFIED", 0, None),
)}

_BY_PRECISION = {t.precision: t for t in ELEMENT_TYPES.values()}
_ALIASES = {"u1": "u1", "U1": "u1", "undefined": "dynamic", "FP16": "f16", "FP32": "f32", "I64": "i64",
            "bool": "boolean", "BOOLEAN": "boolean"}

_FROM_NUMPY = {"float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
               "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
               "uint64": "u64", "bool": "boolean"}


def lookup(text: str | None) -> ElementType | None:
    """The element type named by an element_type= or precision= string (either spelling), or None."""
    if text is None:
        return None
    if text in ELEMENT_TYPES:
        return ELEMENT_TYPES[text]
    if text in _BY_PRECISION:
        return _BY_PRECISION[text]
    alias = _ALIASES.get(text) or _ALIASES.get(text.upper())
    if alias:
        return ELEMENT_TYPES[alias]
    lowered = text.lower()
    return ELEMENT_TYPES.get(lowered) or _BY_PRECISION.get(text.upper())


def require(text: str | None, **where) -> ElementType:
    found = lookup(text)
    if found is None:
        known = ", ".join(sorted(ELEMENT_TYPES))
        raise KernelkitError(f"unknown element type {text!r}", hint=f"use one of: {known}", **where)
    return found


def from_numpy(dtype) -> ElementType:
    name = _FROM_NUMPY.get(np.dtype(dtype).name)
    if name is None:
        raise KernelkitError(f"numpy dtype {np.dtype(dtype).name} has no OpenVINO element type",
                             hint="cast the array to a float, int or bool dtype first")
    return ELEMENT_TYPES[name]


def byte_size(etype: ElementType, count: int) -> int:
    """Bytes `count` packed elements occupy in the .bin (rounded up for sub-byte types)."""
    return (count * etype.bits + 7) // 8


def decode(etype: ElementType, raw: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The array stored in `raw` (exactly or more than the bytes needed) for a Const of this type and shape."""
    count = math.prod(int(d) for d in shape)       # exact: numpy's int64 product wraps for absurd shapes
    if etype.numpy is None:
        raise KernelkitError(f"reading {etype.name} constants is not supported by kernelkit")
    need = byte_size(etype, count)
    if need > len(raw):
        raise KernelkitError(f"{etype.name} constant of shape {list(shape)} needs {need} bytes, the data has "
                             f"{len(raw)}", hint="the .bin is truncated or belongs to another model")
    buf = np.frombuffer(raw, dtype=np.uint8, count=need)
    if etype.name == "u1":
        values = np.unpackbits(buf, bitorder="big")[:count]
    elif etype.name in ("u4", "i4"):
        pairs = np.empty(buf.size * 2, dtype=np.uint8)
        pairs[0::2] = buf & 0x0F
        pairs[1::2] = buf >> 4
        values = pairs[:count]
        if etype.name == "i4":
            values = values.astype(np.int8)
            values[values > 7] -= 16
    elif etype.name == "bf16":
        values = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
    elif etype.name == "boolean":
        values = buf != 0
    else:
        values = buf.view(etype.numpy)
    return values.reshape(shape).copy()


def encode(array: np.ndarray) -> tuple[ElementType, bytes]:
    etype = from_numpy(array.dtype)
    data = np.ascontiguousarray(array)
    if etype.name == "boolean":
        data = data.astype(np.uint8)
    else:
        data = data.astype(np.dtype(etype.numpy), copy=False)
    return etype, data.tobytes()
