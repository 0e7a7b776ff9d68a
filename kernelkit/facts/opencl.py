"""The OpenCL C scalar types of the SHAVE target (Myriad X, kernels compiled by the MYRIAD clc): size in bytes on
the device, the numpy dtype of the same bits where numpy has one, and where each fact comes from.

Sources:
  spec   OpenCL C 1.2 §6.1.1 fixes these sizes on every device (half: §6.1.1.1; vectors of 3 take the room of 4,
         §6.1.5).
  shave  SHAVE is a 32-bit core: size_t is 32 bits (docs/emulator.md, "work-item functions";
         kernel/builder/shave_work_items.h); bool takes 1 byte in the kernel metadata clc writes
         (myriad/check_elf.py). The OpenCL spec leaves both to the implementation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ScalarType:
    name: str
    size: int                 # bytes on the SHAVE
    numpy: str | None         # numpy dtype name of the same bits (np.dtype(numpy)); None: numpy has none
    source: str               # "spec" | "shave": see the module docstring

    @property
    def fixed(self) -> bool:
        """The OpenCL spec fixes its size: the same on every device (the emulator's PoCL too)."""
        return self.source == "spec"


# In this order, so that tables generated from it keep one order.
SCALAR_TYPES = {t.name: t for t in (
    ScalarType("bool", 1, "bool", "shave"),
    ScalarType("char", 1, "int8", "spec"),
    ScalarType("uchar", 1, "uint8", "spec"),
    ScalarType("short", 2, "int16", "spec"),
    ScalarType("ushort", 2, "uint16", "spec"),
    ScalarType("half", 2, "float16", "spec"),
    ScalarType("int", 4, "int32", "spec"),
    ScalarType("uint", 4, "uint32", "spec"),
    ScalarType("float", 4, "float32", "spec"),
    ScalarType("long", 8, "int64", "spec"),
    ScalarType("ulong", 8, "uint64", "spec"),
    ScalarType("double", 8, "float64", "spec"),
    ScalarType("size_t", 4, "uint32", "shave"),
)}

VECTOR_WIDTHS = (2, 3, 4, 8, 16)
# The scalars that have vector types (charN ... doubleN, halfN); bool and size_t have none.
VECTOR_SCALARS = tuple(name for name, t in SCALAR_TYPES.items() if t.fixed)
VECTOR_TYPE = re.compile(rf"({'|'.join(VECTOR_SCALARS)})({'|'.join(map(str, VECTOR_WIDTHS))})")


def split_vector(type_name: str) -> tuple[str, int]:
    """(scalar, lanes) of a type name: 'half8' -> ('half', 8), 'float' -> ('float', 1)."""
    match = VECTOR_TYPE.fullmatch(type_name)
    return (match.group(1), int(match.group(2))) if match else (type_name, 1)


def type_size(type_name: str) -> int | None:
    """Bytes of a scalar or vector type on the SHAVE ('unsigned int' as 'uint'; a 3-vector takes 4 lanes);
    None for a type that is not an OpenCL C scalar or vector."""
    scalar, lanes = split_vector(type_name.replace("unsigned ", "u"))
    known = SCALAR_TYPES.get(scalar)
    if known is None:
        return None
    return known.size * (4 if lanes == 3 else lanes)
