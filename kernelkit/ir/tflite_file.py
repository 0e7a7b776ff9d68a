"""Reading a .tflite flatbuffer just far enough to name things: its operators (builtin or custom op name, the
tensors they write) and its subgraph's input and output tensors. Every offset is bounds-checked; a damaged
file is a KernelkitError, never an IndexError.

Field numbers are those of TensorFlow Lite's schema.fbs (Model, OperatorCode, SubGraph, Tensor, Operator)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core.errors import KernelkitError

IDENTIFIER = b"TFL3"
CUSTOM = 32                     # BuiltinOperator.CUSTOM
MAX_ITEMS = 1 << 22             # no real model has more operators or tensors than this


@dataclass
class TfliteTensor:
    name: str
    shape: list[int]
    type: int                   # TensorType: 0 FLOAT32, 1 FLOAT16, ...
    buffer: int                 # index into the model's buffers (0: none)


@dataclass
class TfliteOperator:
    index: int
    op: str                     # the custom op's name, or "builtin <code>"
    custom: bool
    outputs: list[str]          # names of the tensors it writes
    inputs: list[int]           # tensor indices it reads (-1: an optional input left out)
    options: bytes              # custom_options: the custom op's own parameter bytes

    def describe(self) -> str:
        return f"{self.op} (operator {self.index}, writing {', '.join(self.outputs) or 'no tensor'})"


@dataclass
class TfliteGraph:
    inputs: list[str]
    outputs: list[str]
    operators: list[TfliteOperator]
    tensors: list[TfliteTensor]
    buffers: list[bytes]


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path = data, path

    def _bad(self, what: str) -> KernelkitError:
        return KernelkitError(f"damaged TFLite file: {what}", path=self.path,
                              hint="re-export the model, or check that the download is complete")

    def u(self, fmt: str, at: int) -> int:
        size = struct.calcsize(fmt)
        if at < 0 or at + size > len(self.data):
            raise self._bad(f"offset {at} is outside the file ({len(self.data)} bytes)")
        return struct.unpack_from("<" + fmt, self.data, at)[0]

    def field(self, table: int, number: int) -> int | None:
        """Position of field `number` of the table at `table`, None when absent."""
        vtable = table - self.u("i", table)
        vsize = self.u("H", vtable)
        slot = 4 + 2 * number
        if slot + 2 > vsize:
            return None
        offset = self.u("H", vtable + slot)
        return table + offset if offset else None

    def ref(self, table: int, number: int) -> int | None:
        at = self.field(table, number)
        return None if at is None else at + self.u("I", at)

    def scalar(self, table: int, number: int, fmt: str, default: int = 0) -> int:
        at = self.field(table, number)
        return default if at is None else self.u(fmt, at)

    def vector(self, table: int, number: int) -> tuple[int, int]:
        """(position of the first element, length) of a vector field; (0, 0) when absent."""
        at = self.ref(table, number)
        if at is None:
            return 0, 0
        length = self.u("I", at)
        if length > MAX_ITEMS:
            raise self._bad(f"a vector claims {length} entries")
        return at + 4, length

    def tables(self, table: int, number: int) -> list[int]:
        start, length = self.vector(table, number)
        return [start + 4 * i + self.u("I", start + 4 * i) for i in range(length)]

    def ints(self, table: int, number: int) -> list[int]:
        start, length = self.vector(table, number)
        return [self.u("i", start + 4 * i) for i in range(length)]

    def bytes(self, table: int, number: int) -> bytes:
        start, length = self.vector(table, number)
        if start + length > len(self.data):
            raise self._bad("a byte vector runs past the end of the file")
        return self.data[start:start + length]

    def string(self, table: int, number: int) -> str:
        at = self.ref(table, number)
        if at is None:
            return ""
        length = self.u("I", at)
        if at + 4 + length > len(self.data):
            raise self._bad("a string runs past the end of the file")
        try:
            return self.data[at + 4:at + 4 + length].decode("utf-8")
        except UnicodeDecodeError:      # OpenVINO's Python binding fails on such a name later, less clearly
            raise self._bad(f"the name at offset {at} is not UTF-8 text") from None


def is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == IDENTIFIER


def read_graph(data: bytes, path: Path) -> TfliteGraph:
    """The first subgraph (the one a .tflite model runs) of a TFLite flatbuffer."""
    r = _Reader(data, path)
    if not is_tflite(data):
        raise KernelkitError("not a TFLite model (no TFL3 flatbuffer identifier)", path=path,
                             hint="pass a .tflite file written by the TensorFlow Lite converter")
    model = r.u("I", 0)
    codes = []
    for code in r.tables(model, 1):
        builtin = max(r.scalar(code, 0, "b"), r.scalar(code, 3, "i"))
        codes.append((builtin, r.string(code, 1)))
    subgraphs = r.tables(model, 2)
    if not subgraphs:
        raise KernelkitError("the TFLite model has no subgraph", path=path, hint="re-export the model")
    graph = subgraphs[0]
    tensors = [TfliteTensor(r.string(t, 3), r.ints(t, 0), r.scalar(t, 1, "b"), r.scalar(t, 2, "I"))
               for t in r.tables(graph, 0)]
    names = [t.name for t in tensors]

    def name(index: int) -> str:
        return names[index] if 0 <= index < len(names) else f"tensor {index}"

    operators = []
    for index, operator in enumerate(r.tables(graph, 3)):
        opcode = r.scalar(operator, 0, "I")
        if opcode >= len(codes):
            raise r._bad(f"operator {index} uses opcode {opcode}; the model declares {len(codes)}")
        builtin, custom = codes[opcode]
        is_custom = builtin == CUSTOM
        operators.append(TfliteOperator(index, custom if is_custom else f"builtin {builtin}", is_custom,
                                        [name(i) for i in r.ints(operator, 2)], r.ints(operator, 1),
                                        r.bytes(operator, 5) if is_custom else b""))
    buffers = [r.bytes(b, 0) for b in r.tables(model, 4)]
    return TfliteGraph([name(i) for i in r.ints(graph, 1)], [name(i) for i in r.ints(graph, 2)], operators,
                       tensors, buffers)
