"""What the interpreter executes: a blob's I/O, memory sizes and stages, with buffers and HW ops decoded.

TEMPORARY ADAPTER: built on kernelkit.myriad.stages until the full blob reader lands; it is replaced by an
adapter over the reader's API (one reader in the kit).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import blob as blobfmt
from kernelkit.myriad import stages as stagefmt
from kernelkit.runners.blob import hw

HW_STAGE = 38


@dataclass
class IOInfo:
    name: str
    buffer: object              # a descriptor (data_type, order, dims, strides, location, offset, io_index)
    size: int                   # bytes of its I/O buffer


@dataclass
class StageRec:
    index: int
    type_code: int
    type_name: str
    params: tuple
    buffers: list
    hw_ops: list = field(default_factory=list)
    injected: "StageRec | None" = None
    layer: str | None = None

    def label(self) -> str:
        text = f"stage {self.index} ({self.type_name})"
        return text + (f" of layer {self.layer!r}" if self.layer else "")


@dataclass
class Program:
    header: object
    constants: bytes
    inputs: list[IOInfo]
    outputs: list[IOInfo]
    stages: list[StageRec]


def _io_section(data: bytes, offset: int, count: int, constants: int, location: str) -> list[IOInfo]:
    infos = []
    pos = offset
    for _ in range(count):
        io_index, io_offset, name_size = struct.unpack_from("<3I", data, pos)
        name = data[pos + 12:pos + 12 + name_size].split(b"\0", 1)[0].decode("utf-8", "replace")
        pos += 12 + name_size
        words = struct.unpack_from("<7I", data, pos)
        pos += 28
        data_type, order_code, rank, dims_loc, dims_off, strides_loc, strides_off = words
        order = stagefmt.order_name(order_code)
        dims = dict(zip(reversed(order), struct.unpack_from(f"<{rank}I", data, constants + dims_off)))
        strides = dict(zip(reversed(order), struct.unpack_from(f"<{rank}I", data, constants + strides_off)))
        buffer = stagefmt.Buffer(stagefmt.DATA_TYPES.get(data_type, str(data_type)), order, dims, strides,
                                 location, 0, io_index)
        size = strides[order[0]] * dims[order[0]]
        infos.append(IOInfo(name, buffer, size))
    return infos


def _buffers(words: list[int], pos: int, data: bytes, constants: int, count: int | None = None):
    out = []
    while pos < len(words) and (count is None or len(out) < count):
        buffer, pos = stagefmt._read_buffer(words, pos, data, constants)
        out.append(buffer)
    return out, pos


def _injected(stage, words, data: bytes, constants: int) -> StageRec:
    """The complete stage record nested in a HW stage's parameters (a software stage run alongside)."""
    raw = struct.pack(f"<{len(words)}i", *words)
    size, type_code, shaves, params_size = struct.unpack_from("<4I", raw, 0)
    params = struct.unpack_from(f"<{params_size // 4 - 1}i", raw, 16)
    body = list(struct.unpack_from(f"<{(size - 12 - params_size - 8) // 4}I", raw, 12 + params_size))
    buffers, _ = _buffers(body, 0, data, constants)
    return StageRec(stage.index, type_code, stagefmt.STAGE_TYPE_NAMES.get(type_code, f"type {type_code}"),
                    params, buffers)


def load(data: bytes) -> Program:
    header = blobfmt.read_header(data)
    constants = header.constants_offset
    inputs = _io_section(data, header.input_info_offset, header.inputs, constants, "Input")
    outputs = _io_section(data, header.output_info_offset, header.outputs, constants, "Output")
    stages = []
    for stage in stagefmt.read_stages(data):
        words = list(struct.unpack(f"<{len(stage.data) // 4}I", stage.data))
        rec = StageRec(stage.index, stage.type_code, stage.type_name, stage.params, [])
        if stage.type_code == HW_STAGE:
            rec.hw_ops, pos = hw.decode_ops(stage.params)
            if stage.params[pos]:
                rec.injected = _injected(stage, stage.params[pos + 1:], data, constants)
            rec.buffers, _ = _buffers(words, 1, data, constants, words[0])
        else:
            rec.buffers, _ = _buffers(words, 0, data, constants)
        stages.append(rec)
    return Program(header, data[constants:], inputs, outputs, stages)
