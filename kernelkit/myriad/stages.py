"""The stages of a MYRIAD blob, and what a Custom stage holds: the plugin's own reading of a binding.

After the header (`blob.py`) comes the stage section: one record per stage, each
    u32 size (bytes, this record), u32 stage type, u32 SHAVE count, u32 parameter bytes (this word
    included), parameters...,
    buffer descriptors..., u32 stage type again, u32 border word.
A buffer descriptor is the data type, the dims order code, the rank, where the dims and strides live, where
the data lives (with the I/O index and byte size for network inputs and outputs) and its offset.

A Custom stage's parameters, as the 2021.4 plugin writes them (read back from blobs it compiled):
    groups[n], local[n], offsets[n]    n = the number of <WorkSizes> global entries
    max-shaves, kernel id, stage inputs, buffers (inputs + kernel binary + outputs), argument count
    one (value, tag) pair per kernel argument, in the kernel's declaration order:
        tag >= 0: buffer number `tag`;  -1: int `value`;  -2: float `value` (bits);  -3: __local bytes.
The kernel binary itself is the Custom stage's last input buffer, stored in the blob's constants.

Facts from OpenVINO's source carry over (field order, enum values); the code is our own.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import blob as blobfmt

STAGE_BORDER = 0x7F83FF19
CUSTOM_STAGE = 115
# The plugin's StageType codes (its enum text is in libmyriadPlugin.so); the ones a blob commonly holds.
STAGE_TYPE_NAMES = {
    0: "Conv", 1: "MaxPool", 2: "AvgPool", 3: "SoftMax", 4: "FC", 5: "None", 6: "Relu", 8: "DepthConv", 9: "Bias",
    10: "PRelu", 12: "Sum", 13: "Prod", 14: "Max", 15: "Scale", 19: "Copy", 20: "Sigmoid", 21: "Tanh",
    22: "Deconvolution", 23: "Elu", 26: "Power", 28: "Tile", 34: "Permute", 38: "MyriadXHwOp", 47: "ScaleShift",
    57: "Clamp", 62: "MVN", 71: "Pad", 75: "Div", 76: "Min", 80: "Greater", 91: "GEMM", 92: "Log", 100: "Gather",
    101: "Exp", 102: "Floor", 104: "TopK", 111: "Convert", 112: "ReduceMax", 113: "ReduceSum", 114: "ReduceMean",
    115: "Custom", 128: "Concat", 129: "Broadcast", 133: "StridedSlice",
}
DATA_TYPES = {0: "FP16", 1: "U8", 2: "S32", 3: "FP32", 4: "I8"}
LOCATIONS = {0: "None", 1: "Input", 2: "Output", 3: "Blob", 4: "BSS", 5: "CMX"}
_DIM_LETTERS = {1: "W", 2: "H", 3: "C", 4: "N", 5: "D"}
ARG_INT, ARG_FLOAT, ARG_LOCAL = -1, -2, -3


def order_name(code: int) -> str:
    """A dims-order code as letters, outermost first: 0x4321 -> 'NCHW', 0x4213 -> 'NHWC', 0x3 -> 'C'."""
    letters = []
    while code:
        letters.append(_DIM_LETTERS.get(code & 0xF, "?"))
        code >>= 4
    return "".join(reversed(letters))


@dataclass(frozen=True)
class Buffer:
    data_type: str
    order: str                      # e.g. "NCHW"
    dims: dict[str, int]            # by dims letter
    strides: dict[str, int]         # bytes, by dims letter
    location: str                   # "Input" | "Output" | "Blob" | "BSS" | "CMX" | ...
    offset: int
    io_index: int | None = None     # network input/output number, for Input/Output buffers

    @property
    def shape(self) -> tuple[int, ...]:
        """The dims outermost first, in the order's letters (NCHW order for 'NCHW', N,H,W,C for 'NHWC')."""
        return tuple(self.dims[letter] for letter in self.order)

    def logical_shape(self) -> tuple[int, ...]:
        """The dims in the IR's logical order (N, C, H, W, whatever the memory order)."""
        return tuple(self.dims[letter] for letter in "NCDHW" if letter in self.dims)


@dataclass(frozen=True)
class StageArg:
    kind: str                       # "buffer" | "int" | "float" | "local"
    value: int | float              # buffer number, the scalar, or __local bytes
    name: str | None = None         # from the kernel binary's metadata, when it can be read


@dataclass
class Stage:
    index: int
    type_code: int
    shaves: int
    params: tuple[int, ...]
    data: bytes                     # the descriptors after the parameters (without the trailer)

    @property
    def type_name(self) -> str:
        return STAGE_TYPE_NAMES.get(self.type_code, f"type {self.type_code}")


@dataclass
class CustomStage:
    """What the plugin computed for one kernel of a custom layer."""

    stage: Stage
    groups: tuple[int, ...]
    local: tuple[int, ...]
    offsets: tuple[int, ...]
    max_shaves: int
    kernel_id: int
    inputs: list[Buffer]            # the stage's data inputs (the kernel binary excluded)
    outputs: list[Buffer]
    binary: bytes                   # the kernel .bin as embedded in the blob
    args: list[StageArg]
    entry: str | None = None        # kernel name, from the binary's metadata
    buffers: list[Buffer] = field(default_factory=list)   # in the plugin's numbering (inputs, binary, outputs)

    @property
    def global_size(self) -> tuple[int, ...]:
        return tuple(g * l for g, l in zip(self.groups, self.local))

    def arg(self, name: str) -> StageArg | None:
        return next((a for a in self.args if a.name == name), None)

    def scalars(self) -> dict[str, int | float]:
        return {a.name or f"#{i}": a.value for i, a in enumerate(self.args) if a.kind in ("int", "float")}


def _bad(message: str) -> KernelkitError:
    return KernelkitError(f"unreadable MYRIAD blob stage section: {message}",
                          hint="compile the model again with kernelkit compile")


def read_stages(data: bytes) -> list[Stage]:
    """Every stage record of a blob, in execution order."""
    header = blobfmt.read_header(data)
    offset, stages = header.stages_offset, []
    for index in range(header.stages):
        if offset + 16 > len(data):
            raise _bad(f"stage {index} starts at byte {offset}, past the end")
        size, type_code, shaves, params_size = struct.unpack_from("<4I", data, offset)
        end = offset + size
        if size < 24 or end > len(data) or params_size % 4 or not 4 <= params_size <= size - 20:
            raise _bad(f"stage {index} at byte {offset} declares {size} bytes with {params_size} of parameters")
        trailer_type, border = struct.unpack_from("<2I", data, end - 8)
        if (trailer_type, border) != (type_code, STAGE_BORDER):
            raise _bad(f"stage {index} at byte {offset} does not end with its type and the border word")
        params = struct.unpack_from(f"<{params_size // 4 - 1}i", data, offset + 16)
        stages.append(Stage(index, type_code, shaves, params, data[offset + 12 + params_size:end - 8]))
        offset = end
    return stages


def _read_buffer(words: list[int], pos: int, data: bytes, constants: int) -> tuple[Buffer, int]:
    data_type, order_code, rank, dims_loc, dims_off, strides_loc, strides_off, location = words[pos:pos + 8]
    pos += 8
    io_index = None
    if location in (1, 2):                 # network input/output: index and byte size
        io_index = words[pos]
        pos += 2
    pos += 2 * (dims_loc == 2) + 2 * (strides_loc == 2)    # shapes that live in an output (dynamic)
    offset = words[pos]
    pos += 1
    order = order_name(order_code)
    if len(order) != rank:
        raise _bad(f"dims order 0x{order_code:x} does not have {rank} dimensions")

    def vector(location_code: int, at: int) -> dict[str, int]:
        if location_code != 3:             # only dims kept in the blob can be read back
            return {}
        values = struct.unpack_from(f"<{rank}I", data, constants + at)
        return dict(zip(reversed(order), values))     # stored innermost first

    buffer = Buffer(DATA_TYPES.get(data_type, f"type {data_type}"), order, vector(dims_loc, dims_off),
                    vector(strides_loc, strides_off), LOCATIONS.get(location, f"location {location}"), offset,
                    io_index)
    return buffer, pos


def decode_custom(stage: Stage, data: bytes) -> CustomStage:
    """The Custom stage's work sizes, arguments and buffers; `data` is the whole blob."""
    from kernelkit.myriad import check_elf

    p = list(stage.params)
    # The plugin writes one group count per global entry and one local size and offset per local entry, any
    # number of each: the layout fits one pair of counts (equal counts tried first).
    counts = [(n, n) for n in range(8, 0, -1)] + [(g, l) for g in range(1, 9) for l in range(1, 9) if g != l]
    for ng, nl in counts:
        head = ng + 2 * nl
        if len(p) >= head + 5 and head + 5 + 2 * p[head + 4] == len(p) and not any(p[ng + nl:head]):
            break
    else:
        raise _bad(f"stage {stage.index} parameters do not have the Custom stage layout")
    groups, local, offsets = tuple(p[:ng]), tuple(p[ng:ng + nl]), tuple(p[ng + nl:head])
    max_shaves, kernel_id, num_inputs, num_buffers, num_args = p[head:head + 5]
    pairs = [(p[head + 5 + 2 * i], p[head + 6 + 2 * i]) for i in range(num_args)]

    header = blobfmt.read_header(data)
    words = list(struct.unpack(f"<{len(stage.data) // 4}I", stage.data))
    buffers, pos = [], 0
    if not 0 <= num_inputs < num_buffers:
        raise _bad(f"stage {stage.index} declares {num_buffers} buffers, {num_inputs} of them inputs")
    try:
        for _ in range(num_buffers):
            buffer, pos = _read_buffer(words, pos, data, header.constants_offset)
            buffers.append(buffer)
    except (IndexError, ValueError, struct.error):      # descriptors cut short, or pointing past the end
        raise _bad(f"stage {stage.index} buffer {len(buffers)} descriptor is cut short or points past the "
                   "end of the blob") from None
    binary_buffer = buffers[num_inputs]
    size = binary_buffer.dims.get("C") or next(iter(binary_buffer.dims.values()), 0)
    start = header.constants_offset + binary_buffer.offset
    binary = data[start:start + size] if binary_buffer.location == "Blob" else b""

    entry, names = None, []
    try:
        kernels = check_elf.read_metadata(binary)
    except KernelkitError:
        kernels = []
    if 0 <= kernel_id < len(kernels):
        entry = kernels[kernel_id].entry
        names = [a.name for a in kernels[kernel_id].args if not a.hoisted]
    args = []
    for i, (value, tag) in enumerate(pairs):
        name = names[i] if i < len(names) else None
        if tag >= 0:
            args.append(StageArg("buffer", tag, name))
        elif tag == ARG_INT:
            args.append(StageArg("int", value, name))
        elif tag == ARG_FLOAT:
            args.append(StageArg("float", struct.unpack("<f", struct.pack("<i", value))[0], name))
        elif tag == ARG_LOCAL:
            args.append(StageArg("local", value, name))
        else:
            raise _bad(f"stage {stage.index} argument {i} has the unknown tag {tag}")
    return CustomStage(stage, groups, local, offsets, max_shaves, kernel_id, buffers[:num_inputs],
                       buffers[num_inputs + 1:], binary, args, entry, buffers)


def custom_stages(data: bytes) -> list[CustomStage]:
    """Every Custom stage of a blob, decoded, in execution order."""
    return [decode_custom(stage, data) for stage in read_stages(data) if stage.type_code == CUSTOM_STAGE]
