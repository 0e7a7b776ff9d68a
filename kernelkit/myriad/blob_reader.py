"""A whole MYRIAD blob (2021.4 plugin, blob version 6.0) read into one structured model, every word accounted for.

    model = read_blob(path_or_bytes)          # KernelkitError naming the file on anything damaged or hostile

`BlobModel`
    header          blob.BlobHeader (counts, sizes, section offsets)
    inputs/outputs  [Buffer] network I/O in io-index order: `.name`, `.io_index`, `.offset` (the I/O buffer
                    offset), `.data_type`, `.order`, dims and strides (below)
    stages          [Stage] in blob (= execution) order
    data            the whole blob (bytes); `constants` the const section (`data[header.constants_offset:]`),
                    which Blob-location buffer offsets index
    memory()        {"bss_bytes", "cmx_slices", "cmx_bytes", "const_bytes", "inputs_bytes", "outputs_bytes",
                     "extent": {location: one past the highest byte any stage's descriptor reaches}}, with
                    Input/Output keyed per network tensor ("Input[1]")
    counts()        {"stages", "HW", "SHAVE", "DMA", "injected", "hw_ops", "by_type": {name: n}}
    cost()          latency features: HW descriptors, lane-cycles, tiler score, DMA bytes, SHAVE stages
                    (hw_op_cost(stage, op) per HW op)
    to_dict()       everything above as JSON-ready data (`kernelkit blob info --json`)

    A header.batch_size above 1 means the plugin compiled one sample (the I/O and every buffer have N=1) and
    the device runs the stages once per sample; a batched network tensor's whole batch sits at its I/O
    entry's offset (64-byte aligned) in the inputs / outputs area, which inputs_size / outputs_size cover (a
    tensor the batch does not split, e.g. a Gather's output along another axis, is there once, whole).

`Stage`
    index, offset (byte offset of the record), size, type_code, type_name, category ("HW" | "SHAVE" | "DMA"),
    shaves, params (dict of named fields, per data/myriad-stages.toml and the decoders below), param_words (the
    raw u32 words), buffers ([Buffer] in blob order, each with a `.role`), inputs / outputs / temps (the
    buffers split by role), hw_ops ([HwOp], MyriadXHwOp only), injected (the nested Stage a MyriadXHwOp runs
    alongside, or None).

`Buffer` (one buffer descriptor)
    role ("input", "output", "weights", "temp", "in0"... see the data file), data_type ("FP16", "U8", "S32",
    "FP32", "I8") and itemsize, order (letters outermost first: "NCHW"; nibbles 6+ of rank-6 orders print as
    digits: 0x654321 -> "6DNCHW"), order_code, rank, location ("None", "Input", "Output", "Blob", "BSS",
    "CMX"), offset (bytes into that location's memory; Blob: into `constants`; Input/Output: into network
    tensor `io_index`, which sits at its I/O entry's `.offset` in the inputs/outputs area), io_size (for
    Input/Output: that tensor's byte size), dims_innermost / strides_innermost (tuples, innermost
    first, strides in bytes; None when the shape is dynamic, i.e. lives in an Output: dims_dynamic),
    numpy_dtype, view(memory) (a strided numpy view over the bytes of its location), dims /
    strides (the same by letter), shape (outermost first), logical_shape() (the IR's order: N, C, D, H, W;
    rank 6+: highest dimension first), span_bytes (offset to one past the last element reached), nbytes (the
    elements alone), direction ("input" | "output" | "temp", from the role).
    Roles in blob order: most stages "input", "output"; eltwise "input0", "output", "input1", "input2" (a
    fake buffer, location None, when the op has two inputs); post-op stages (Relu, Bias, Power, ...) "input",
    "output", then "extra" inputs (bias, slopes); Custom: inputs, "binary" (the kernel .bin, in Blob),
    outputs, one "temp"; MyriadXHwOp: "input", "weights", "biases", "scales", "output" as its ops name them.

`HwOp` (one operation of a MyriadXHwOp): op_type ("CONV", "CONV_POOL", "FC", "POOL"), pool_type, op_mode,
    with_pad / pad_mode, the buffer indices (into the stage's `buffers`; None if absent), out_chan_offset /
    out_num_chans or the fc_* fields, kernel_width / kernel_height / kernel_stride, pool_kernel_width /
    pool_kernel_height, with_relu with t0 / a0 / a1, with_clamp with clamp_max, reuse_data, reuse_coeff.

Layouts come from OpenVINO's source (GT/src/stages/*.cpp serializeParamsImpl / serializeDataImpl; the file
is named per type in kernelkit/facts/data/myriad-stages.toml); the code is ours. A parameter or descriptor
left over or missing is an error: a layout mistake shows as a refusal, never as a silently wrong value.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.myriad_stages import HW_MODE_COST, PARAM_KINDS, StageType, stage_types
from kernelkit.myriad import blob as blobfmt

STAGE_BORDER = 0x7F83FF19
DATA_TYPES = {0: "FP16", 1: "U8", 2: "S32", 3: "FP32", 4: "I8"}
ITEMSIZE = {"FP16": 2, "U8": 1, "S32": 4, "FP32": 4, "I8": 1}
LOCATIONS = {0: "None", 1: "Input", 2: "Output", 3: "Blob", 4: "BSS", 5: "CMX"}
LOC_INPUT, LOC_OUTPUT, LOC_BLOB, LOC_BSS = 1, 2, 3, 4
NUMPY_DTYPES = {"FP16": "<f2", "U8": "u1", "S32": "<i4", "FP32": "<f4", "I8": "i1"}
DIM_LETTERS = {1: "W", 2: "H", 3: "C", 4: "N", 5: "D"}
MAX_RANK = 8                    # MAX_DIMS_32: a 32-bit order code holds 8 nibbles
CMX_SLICE_BYTES = 128 * 1024
HW_OP_TYPES = {0: "CONV", 1: "CONV_POOL", 2: "FC", 4: "POOL"}
HW_POOL_TYPES = {0: "MAX", 1: "AVG"}
HW_MODES = 5                    # 0..4: 1x256, 2x128, 4x64, 8x32, 16x16
MAX_NESTING = 2                 # a MyriadXHwOp holds one injected stage, which holds none
_STAGE_MIN = 24                 # size, type, shaves, params bytes, trailer type, border


def order_letter(nibble: int) -> str:
    return DIM_LETTERS.get(nibble) or format(nibble, "X")


def order_name(code: int) -> str:
    """A dims-order code as letters, outermost first: 0x4321 -> 'NCHW', 0x4213 -> 'NHWC', 0x654321 -> '6DNCHW'."""
    letters = []
    while code:
        letters.append(order_letter(code & 0xF))
        code >>= 4
    return "".join(reversed(letters))


@dataclass(frozen=True)
class Buffer:
    data_type: str
    order: str                                  # e.g. "NCHW", outermost first
    dims: dict[str, int]                        # by dims letter ({} when dynamic)
    strides: dict[str, int]                     # bytes, by dims letter ({} when dynamic)
    location: str                               # "None" | "Input" | "Output" | "Blob" | "BSS" | "CMX"
    offset: int
    io_index: int | None = None                 # network input/output number, for Input/Output buffers
    role: str = ""
    type_code: int = 0
    order_code: int = 0
    rank: int = 0
    dims_innermost: tuple[int, ...] | None = None
    strides_innermost: tuple[int, ...] | None = None
    io_size: int | None = None                  # byte size of the network tensor, for Input/Output buffers
    dims_location: str = "Blob"
    dims_offset: int = 0
    strides_location: str = "Blob"
    strides_offset: int = 0
    name: str | None = None                     # network inputs/outputs only

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.data_type]

    @property
    def dims_dynamic(self) -> bool:
        return self.dims_innermost is None or self.strides_innermost is None

    @property
    def shape(self) -> tuple[int, ...]:
        """The dims outermost first, in the order's letters (NCHW order for 'NCHW', N,H,W,C for 'NHWC')."""
        return tuple(self.dims[letter] for letter in self.order) if self.dims else ()

    def logical_shape(self) -> tuple[int, ...]:
        """The dims in the IR's logical order, whatever the memory order: N, C, (D,) H, W up to rank 5; from
        rank 6 on, the highest dimension first (the IR's 1x2x3x4x5x6 is dims 6, D, N, C, H, W)."""
        if not self.dims:
            return ()
        if self.rank <= 5:
            return tuple(self.dims[letter] for letter in "NCDHW" if letter in self.dims)
        nibbles = sorted(((self.order_code >> (4 * i)) & 0xF for i in range(self.rank)), reverse=True)
        return tuple(self.dims[order_letter(n)] for n in nibbles)

    @property
    def span_bytes(self) -> int:
        """Bytes from `offset` to one past the last element this view reaches (0 for an empty or dynamic one)."""
        if self.dims_dynamic or 0 in self.dims_innermost:
            return 0
        return sum((d - 1) * s for d, s in zip(self.dims_innermost, self.strides_innermost)) + self.itemsize

    @property
    def nbytes(self) -> int:
        """Bytes of the elements themselves (a strided view's span_bytes also counts what it skips)."""
        if self.dims_dynamic:
            return 0
        count = 1
        for d in self.dims_innermost:
            count *= d
        return count * self.itemsize

    @property
    def direction(self) -> str:
        return "output" if self.role.startswith("output") else "temp" if self.role.startswith("temp") else "input"

    @property
    def numpy_dtype(self) -> str:
        return NUMPY_DTYPES[self.data_type]

    def view(self, memory):
        """This buffer as a numpy array over `memory` (the bytes of its location: `BlobModel.constants` for
        Blob, an arena for BSS / CMX, the network tensor for Input / Output), outermost dimension first and
        strided as the descriptor says; writable when `memory` is."""
        import numpy as np

        if self.dims_dynamic:
            raise KernelkitError(f"a {self.location} buffer with a dynamic shape has no static view")
        raw = np.frombuffer(memory, np.uint8) if not isinstance(memory, np.ndarray) else memory.view(np.uint8)
        if self.offset + self.span_bytes > raw.size:
            raise KernelkitError(f"a {self.location} buffer reaches byte {self.offset + self.span_bytes} of "
                                 f"{raw.size}")
        elements = np.ndarray((raw.size - self.offset) // self.itemsize, self.numpy_dtype, raw.data, self.offset)
        return np.lib.stride_tricks.as_strided(elements, tuple(reversed(self.dims_innermost)),
                                               tuple(reversed(self.strides_innermost)), writeable=raw.flags.writeable)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if v is not None and k not in ("dims", "strides")}
        out["dims_innermost"] = list(self.dims_innermost) if self.dims_innermost is not None else None
        out["strides_innermost"] = list(self.strides_innermost) if self.strides_innermost is not None else None
        out["dims"], out["strides"] = dict(self.dims), dict(self.strides)
        out["span_bytes"], out["nbytes"] = self.span_bytes, self.nbytes
        return out


@dataclass
class HwOp:
    op_type: str
    op_mode: int
    with_pad: bool
    input_index: int | None
    output_index: int | None
    coeffs_index: int | None
    biases_index: int | None
    scales_index: int | None
    pool_type: str | None = None
    pad_mode: int | None = None
    out_chan_offset: int | None = None
    out_num_chans: int | None = None
    fc_input_offset: int | None = None
    fc_input_num: int | None = None
    fc_output_offset: int | None = None
    fc_output_num: int | None = None
    fc_accum: bool | None = None
    kernel_width: int | None = None
    kernel_height: int | None = None
    kernel_stride: int | None = None
    pool_kernel_width: int | None = None
    pool_kernel_height: int | None = None
    with_relu: bool = False
    t0: int | None = None
    a0: int | None = None
    a1: int | None = None
    with_clamp: bool = False
    clamp_max: float | None = None
    reuse_data: bool = False
    reuse_coeff: bool = False

    @property
    def mode_channels(self) -> tuple[int, int]:
        """(input, output) channels per block of the engine's 256 MAC lanes in this op's mode."""
        return 1 << self.op_mode, 256 >> self.op_mode

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def hw_op_cost(stage: Stage, op: HwOp) -> dict:
    """Cost features of one HW op (one engine descriptor) from the blob alone: lane-cycles
    Ho*Wo*ceil(IC_ext/icb)*kx*ky (icb = 2**mode input channels per lane block; Ho, Wo the convolution's output,
    before a CONV_POOL's pooling; FC: ceil(inputs/icb)) and the plugin tiler's score of the descriptor
    ceil(IC_ext/icb)*kx*ky + HW_MODE_COST[mode]."""
    icb = 1 << op.op_mode
    source = stage.buffers[op.input_index] if op.input_index is not None else None
    if op.op_type == "FC":
        blocks, kx, ky, ho, wo = -(-(op.fc_input_num or 0) // icb), 1, 1, 1, 1
    else:
        channels = source.dims.get("C", 1) if source is not None else 1
        blocks, kx, ky = -(-channels // icb), op.kernel_width, op.kernel_height
        out = stage.buffers[op.output_index] if op.output_index is not None else None
        ho, wo = (out.dims.get("H", 1), out.dims.get("W", 1)) if out is not None else (0, 0)
        if op.op_type == "CONV_POOL":
            ho, wo = ho * (op.pool_kernel_height or 1), wo * (op.pool_kernel_width or 1)
    return {"lane_cycles": ho * wo * blocks * kx * ky, "tiler_cost": blocks * kx * ky + HW_MODE_COST[op.op_mode]}


@dataclass
class Stage:
    index: int
    offset: int
    size: int
    type_code: int
    shaves: int
    params: dict
    param_words: tuple[int, ...]
    buffers: list[Buffer]
    hw_ops: list[HwOp] = field(default_factory=list)
    injected: Stage | None = None
    parent: int | None = None                   # for an injected stage: its MyriadXHwOp's index

    @property
    def stage_type(self) -> StageType | None:
        return stage_types().get(self.type_code)

    @property
    def type_name(self) -> str:
        known = self.stage_type
        return known.name if known else f"type {self.type_code}"

    @property
    def category(self) -> str:
        known = self.stage_type
        return known.category if known else "SHAVE"

    @property
    def inputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.direction == "input"]

    @property
    def outputs(self) -> list[Buffer]:
        return [b for b in self.buffers if b.direction == "output"]

    @property
    def temps(self) -> list[Buffer]:
        return [b for b in self.buffers if b.direction == "temp"]

    def to_dict(self) -> dict:
        out = {"index": self.index, "offset": self.offset, "size": self.size, "type_code": self.type_code,
               "type": self.type_name, "category": self.category, "shaves": self.shaves,
               "params": _jsonable(self.params), "buffers": [b.to_dict() for b in self.buffers]}
        if self.hw_ops:
            out["hw_ops"] = [_jsonable(op.to_dict()) for op in self.hw_ops]
        if self.injected is not None:
            out["injected"] = self.injected.to_dict()
        return out


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return value


@dataclass
class BlobModel:
    header: blobfmt.BlobHeader
    inputs: list[Buffer]
    outputs: list[Buffer]
    stages: list[Stage]
    data: bytes
    path: str | None = None
    graph_dump: str | None = None               # the plugin's internal-graph dump beside the blob (api.blob_info)
    stage_layers: list | None = None            # per stage, the IR layers it came from (myriad.graph_dump.Layer)

    @cached_property
    def constants(self) -> memoryview:
        """The const section, without a copy (Blob-location offsets index it)."""
        return memoryview(self.data)[self.header.constants_offset:]

    def all_stages(self) -> list[Stage]:
        """Every stage record, injected ones right after the MyriadXHwOp holding them."""
        out = []
        for stage in self.stages:
            out.append(stage)
            if stage.injected is not None:
                out.append(stage.injected)
        return out

    def memory(self) -> dict:
        h = self.header
        extent: dict[str, int] = {}
        for stage in self.all_stages():
            for b in stage.buffers:
                if b.location != "None":
                    key = f"{b.location}[{b.io_index}]" if b.io_index is not None else b.location
                    extent[key] = max(extent.get(key, 0), b.offset + b.span_bytes)
        return {"bss_bytes": h.bss_size, "cmx_slices": h.cmx_slices, "cmx_bytes": h.cmx_slices * CMX_SLICE_BYTES,
                "const_bytes": h.file_size - h.constants_offset, "inputs_bytes": h.inputs_size,
                "outputs_bytes": h.outputs_size, "extent": dict(sorted(extent.items()))}

    def counts(self) -> dict:
        by_category = Counter(s.category for s in self.stages)
        injected = [s.injected for s in self.stages if s.injected is not None]
        return {"stages": len(self.stages), "HW": by_category["HW"], "SHAVE": by_category["SHAVE"],
                "DMA": by_category["DMA"], "injected": len(injected),
                "hw_ops": sum(len(s.hw_ops) for s in self.stages),
                "by_type": dict(Counter(s.type_name for s in self.all_stages()).most_common())}

    def cost(self) -> dict:
        """Latency features (the blob format reference, section 7): HW descriptors (= HW ops), engine
        lane-cycles and the tiler's score summed over them, DMA bytes (what Copy stages write), SHAVE stages."""
        ops = [hw_op_cost(s, op) for s in self.stages for op in s.hw_ops]
        stages = self.all_stages()
        return {"hw_stages": sum(1 for s in self.stages if s.hw_ops), "hw_descriptors": len(ops),
                "lane_cycles": sum(o["lane_cycles"] for o in ops), "tiler_cost": sum(o["tiler_cost"] for o in ops),
                "dma_bytes": sum(b.nbytes for s in stages if s.type_name == "Copy" for b in s.outputs),
                "shave_stages": sum(1 for s in stages if s.category == "SHAVE"),
                "shave_stage_shaves": sum(s.shaves for s in stages if s.category == "SHAVE"),
                "stages": len(stages)}

    def to_dict(self) -> dict:
        stages = [s.to_dict() for s in self.stages]
        for stage, record in zip(self.stages, stages):
            for op, row in zip(stage.hw_ops, record.get("hw_ops", [])):
                row["cost"] = hw_op_cost(stage, op)
            if self.stage_layers is not None:
                record["layers"] = [{"name": layer.name, "type": layer.type}
                                    for layer in self.stage_layers[stage.index]]
        return {"path": self.path, "graph_dump": self.graph_dump, "header": asdict(self.header),
                "inputs": [b.to_dict() for b in self.inputs], "outputs": [b.to_dict() for b in self.outputs],
                "stages": stages, "memory": self.memory(), "counts": self.counts(), "cost": self.cost()}


# ------------------------------------------------------------------------------------------------ reading

class _Reader:
    def __init__(self, data: bytes, path: str | None):
        self.data, self.path = data, path
        self.header = blobfmt.read_header(data) if path is None else _header(data, path)
        self.size = len(data)
        self.const = self.header.constants_offset

    def fail(self, message: str, where: str | None = None) -> KernelkitError:
        return KernelkitError(f"unreadable MYRIAD blob: {message}", path=self.path, where=where,
                              hint="compile the model again (kernelkit compile); a blob must not be edited")

    def u32(self, at: int, where: str) -> int:
        if at < 0 or at + 4 > self.size:
            raise self.fail(f"reads past the end of the blob (byte {at} of {self.size})", where)
        return struct.unpack_from("<I", self.data, at)[0]

    def words(self, at: int, count: int, where: str) -> tuple[int, ...]:
        if at < 0 or count < 0 or at + 4 * count > self.size:
            raise self.fail(f"{count} words at byte {at} run past the end of the blob ({self.size} bytes)", where)
        return struct.unpack_from(f"<{count}I", self.data, at)

    # --- sections

    def sections(self) -> None:
        h = self.header
        order = [("input info", h.input_info_offset), ("output info", h.output_info_offset),
                 ("stage", h.stages_offset), ("const data", h.constants_offset)]
        previous = blobfmt.HEADER_END
        for name, at in order:
            if at < previous or at > self.size:
                raise self.fail(f"the {name} section starts at byte {at}, outside {previous}..{self.size}",
                                "header")
            previous = at
        for name, count, room in (("inputs", h.inputs, h.output_info_offset - h.input_info_offset),
                                  ("outputs", h.outputs, h.stages_offset - h.output_info_offset),
                                  ("stages", h.stages, h.constants_offset - h.stages_offset)):
            smallest = _STAGE_MIN if name == "stages" else 56
            if count * smallest > room:
                raise self.fail(f"the header declares {count} {name}, more than the {room} bytes of their "
                                "section can hold", "header")

    def io_entries(self, at: int, count: int, end: int, kind: str) -> list[Buffer]:
        out = []
        for i in range(count):
            where = f"{kind} {i}"
            io_index, io_offset, name_size = self.words(at, 3, where)
            if name_size == 0 or name_size % 16 or at + 12 + name_size > end:
                raise self.fail(f"name of {name_size} bytes does not fit its section", where)
            raw = self.data[at + 12:at + 12 + name_size]
            if b"\0" not in raw:
                raise self.fail("name is not NUL-terminated", where)
            name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            desc = self.words(at + 12 + name_size, 7, where)
            at += 12 + name_size + 28
            if at > end:
                raise self.fail("entry runs past its section", where)
            location = LOC_INPUT if kind == "input" else LOC_OUTPUT
            out.append(self.describe(desc, location, io_offset, io_index, None, f"{where} ({name!r})",
                                     role=kind, name=name))
        return out

    # --- descriptors

    def describe(self, desc, location: int, offset: int, io_index, io_size, where: str, *, role: str = "",
                 name: str | None = None) -> Buffer:
        type_code, order_code, rank, dims_loc, dims_off, strides_loc, strides_off = desc
        if type_code not in DATA_TYPES:
            raise self.fail(f"unknown data type {type_code}", where)
        if not 1 <= rank <= MAX_RANK:
            raise self.fail(f"rank {rank} (1..{MAX_RANK})", where)
        nibbles = [(order_code >> (4 * i)) & 0xF for i in range(rank)]
        if order_code >> (4 * rank) or 0 in nibbles or len(set(nibbles)) != rank:
            raise self.fail(f"dims order 0x{order_code:x} is not an order of {rank} dimensions", where)
        if location not in LOCATIONS:
            raise self.fail(f"unknown memory location {location}", where)
        letters = [order_letter(n) for n in nibbles]          # innermost first
        dims = self.shape_vector(dims_loc, dims_off, rank, where, "dims")
        strides = self.shape_vector(strides_loc, strides_off, rank, where, "strides")
        return Buffer(DATA_TYPES[type_code], "".join(reversed(letters)),
                      dict(zip(letters, dims)) if dims is not None else {},
                      dict(zip(letters, strides)) if strides is not None else {},
                      LOCATIONS[location], offset, io_index, role, type_code, order_code, rank, dims, strides,
                      io_size, LOCATIONS.get(dims_loc, str(dims_loc)), dims_off,
                      LOCATIONS.get(strides_loc, str(strides_loc)), strides_off, name)

    def shape_vector(self, location: int, offset: int, rank: int, where: str, what: str):
        if location in (LOC_OUTPUT, LOC_BSS):   # a dynamic shape (NonZero's), written at run time
            return None
        if location != LOC_BLOB:
            raise self.fail(f"{what} kept in location {LOCATIONS.get(location, location)}", where)
        at = self.const + offset
        if at + 4 * rank > self.size:
            raise self.fail(f"{what} at const offset {offset} lie past the end of the blob", where)
        return struct.unpack_from(f"<{rank}I", self.data, at)

    def buffer(self, at: int, end: int, where: str) -> tuple[Buffer, int]:
        if at + 36 > end:
            raise self.fail(f"a buffer descriptor is cut short ({end - at} bytes left)", where)
        desc = struct.unpack_from("<7I", self.data, at)
        location = struct.unpack_from("<I", self.data, at + 28)[0]
        pos = at + 32
        io_index = io_size = None
        extra = 2 * (location in (LOC_INPUT, LOC_OUTPUT)) + 2 * (desc[3] == LOC_OUTPUT) + 2 * (desc[5] == LOC_OUTPUT)
        if pos + 4 * extra + 4 > end:
            raise self.fail("a buffer descriptor is cut short", where)
        if location in (LOC_INPUT, LOC_OUTPUT):
            io_index, io_size = struct.unpack_from("<2I", self.data, pos)
            count = self.header.inputs if location == LOC_INPUT else self.header.outputs
            if io_index >= count:
                raise self.fail(f"network {LOCATIONS[location].lower()} {io_index} of {count}", where)
        pos += 4 * extra                        # the I/O that holds a dynamic shape: index and byte size
        offset = struct.unpack_from("<I", self.data, pos)[0]
        return self.describe(desc, location, offset, io_index, io_size, where), pos + 4

    def buffers(self, at: int, end: int, where: str) -> list[Buffer]:
        out = []
        while at < end:
            buffer, at = self.buffer(at, end, f"{where}, buffer {len(out)}")
            out.append(buffer)
        return out

    # --- stages

    def stages(self) -> list[Stage]:
        h = self.header
        at, out = h.stages_offset, []
        for index in range(h.stages):
            stage = self.record(at, h.constants_offset, index, 0)
            out.append(stage)
            at += stage.size
        return out

    def record(self, at: int, limit: int, index: int, depth: int, parent: int | None = None) -> Stage:
        where = f"stage {index}" if parent is None else f"stage {parent}, injected stage"
        if at + 16 > limit:
            raise self.fail(f"starts at byte {at}, past the end of its section ({limit})", where)
        size, type_code, shaves, params_size = struct.unpack_from("<4I", self.data, at)
        end = at + size
        if size < _STAGE_MIN or size % 4 or end > limit or params_size % 4 or not 4 <= params_size <= size - 20:
            raise self.fail(f"record of {size} bytes at byte {at} with {params_size} bytes of parameters does "
                            f"not fit (section ends at byte {limit})", where)
        trailer_type, border = struct.unpack_from("<2I", self.data, end - 8)
        if (trailer_type, border) != (type_code, STAGE_BORDER):
            raise self.fail(f"record at byte {at} does not end with its type and the border word", where)
        known = stage_types().get(type_code)
        if known is None:
            raise self.fail(f"stage type {type_code} is not a stage type of the 2021.4 plugin", where)
        where = f"{where} ({known.name})"
        p_start, p_end = at + 16, at + 12 + params_size
        d_start, d_end = p_end, end - 8
        raw = self.words(p_start, (p_end - p_start) // 4, where)
        stage = Stage(index, at, size, type_code, shaves, {}, raw, [], parent=parent)
        decoder = _DECODERS.get(known.decoder) if known.decoder else None
        if decoder is not None:
            decoder(self, stage, known, p_start, p_end, d_start, d_end, where, depth)
        else:
            stage.buffers = self.buffers(d_start, d_end, where)
            stage.params = self.fields(known.params, p_start, p_end, where, stage.buffers)
            stage.buffers = _assign(stage.buffers, _roles(self, known, stage.params, len(stage.buffers), where))
        return stage

    def fields(self, spec, at: int, end: int, where: str, buffers: list[Buffer]) -> dict:
        out = {}
        for f in spec:
            width = PARAM_KINDS[f.kind]
            if f.rest:
                count, left = divmod(end - at, width)
                if left:
                    raise self.fail(f"{end - at} bytes left for the {f.name} list of {width}-byte values", where)
                out[f.name] = [self.value(f.kind, at + width * i, buffers) for i in range(count)]
                at += width * count
                continue
            if at + width > end:
                raise self.fail(f"parameters end before field {f.name!r}", where)
            out[f.name] = self.value(f.kind, at, buffers)
            at += width
        if at != end:
            raise self.fail(f"{end - at} bytes of parameters left over after {len(spec)} fields", where)
        return out

    def value(self, kind: str, at: int, buffers: list[Buffer]):
        if kind == "num":                       # eltwise: f32 coefficients for FP16 data, i32 otherwise
            kind = "f32" if buffers and buffers[0].data_type == "FP16" else "i32"
        fmt = {"u32": "<I", "i32": "<i", "f32": "<f", "f16": "<e"}[kind]
        return struct.unpack_from(fmt, self.data, at)[0]


def _header(data: bytes, path: str) -> blobfmt.BlobHeader:
    try:
        return blobfmt.read_header(data)
    except KernelkitError as exc:
        raise KernelkitError(exc.message, path=path, where=exc.where, hint=exc.hint) from None


def _roles(reader: _Reader, known: StageType, params: dict, n: int, where: str) -> list[str]:
    rule = _ROLE_RULES.get(known.name)
    if rule is not None:
        roles = rule(params, n)
        if roles is None or len(roles) != n:
            raise reader.fail(f"{n} buffer descriptors, which does not fit its parameters {params}", where)
        return roles
    spec = known.data
    fixed = [r for r in spec if not r.endswith(("?", "*"))]
    star = [r for r in spec if r.endswith("*")]
    optional = [r for r in spec if r.endswith("?")]
    extra = n - len(fixed)
    if extra < 0 or (not star and extra > len(optional)):
        expected = f"{len(fixed)}" + (" or more" if star else f" to {len(fixed) + len(optional)}" if optional else "")
        raise reader.fail(f"{n} buffer descriptors, expected {expected} ({', '.join(spec) or 'none'})", where)
    roles = []
    for r in spec:
        if r.endswith("*"):
            roles += [r[:-1]] * extra
        elif r.endswith("?"):
            if not star and extra > 0:
                roles.append(r[:-1])
                extra -= 1
        else:
            roles.append(r)
    return roles


def _assign(buffers: list[Buffer], roles: list[str]) -> list[Buffer]:
    return [replace(b, role=r) for b, r in zip(buffers, roles)]


def _concat_roles(p, n):
    return ["input"] * p["num_inputs"] + ["output"] if p["num_inputs"] + 1 == n else None


def _broadcast_roles(p, n):
    return ["input", "target_shape"] + (["axes_mapping"] if p["mode"] == 1 else []) + ["output"]


def _topk_roles(p, n):
    return ["input", "k"] + (["output_values"] if p["values_present"] else []) + \
        (["output_indices"] if p["indices_present"] else [])


def _gather_elements_roles(p, n):
    return ["input", "output", "indices"] + (["row_indices"] if p["row_indices_mode"] else [])


def _gemm_roles(p, n):
    return ["input0", "input1"] + (["input2"] if p["has_three_inputs"] else []) + ["output"]


def _lstm_roles(p, n):
    if not 1 <= p["num_outputs"] <= 3:
        return None
    return [f"input{i}" for i in range(5)] + [f"output{i}" for i in range(p["num_outputs"])] + \
        (["temp"] if p["n_cells"] > 1 else [])


def _detection_output_roles(p, n):
    arm = ["arm_conf", "arm_loc"] if n == 7 else []
    return ["loc", "conf", "priors"] + arm + ["output", "temp"]


def _nms_roles(p, n):
    return ["boxes", "scores", "max_output_boxes", "iou_threshold", "score_threshold", "output_data",
            "output_dims"] + (["temp"] if p["use_ddr_buffer"] else [])


def _roi_feature_roles(p, n):
    outputs = n - p["levels_num"] - 2           # (a huge levels_num makes this negative: refused below)
    if outputs not in (1, 2):
        return None
    return ["input"] * (p["levels_num"] + 1) + [f"output{i}" for i in range(outputs)] + ["temp"]


_ROLE_RULES = {"Concat": _concat_roles, "Broadcast": _broadcast_roles, "TopK": _topk_roles,
               "GatherElements": _gather_elements_roles, "GEMM": _gemm_roles, "LSTMCell": _lstm_roles,
               "DetectionOutput": _detection_output_roles, "StaticShapeNMS": _nms_roles,
               "ROIFeatureExtractor": _roi_feature_roles}


# --- decoders: layouts whose shape depends on values inside the params

class _Words:
    """A cursor over the u32 words of a parameter block."""

    def __init__(self, reader: _Reader, at: int, end: int, where: str):
        self.reader, self.at, self.end, self.where = reader, at, end, where

    def take(self, what: str, fmt: str = "<I"):
        if self.at + 4 > self.end:
            raise self.reader.fail(f"parameters end before {what}", self.where)
        value = struct.unpack_from(fmt, self.reader.data, self.at)[0]
        self.at += 4
        return value

    def i32(self, what: str) -> int:
        return self.take(what, "<i")

    def f32(self, what: str) -> float:
        return self.take(what, "<f")

    def vector(self, what: str, kind: str = "i32", limit: int = 64) -> list:
        count = self.take(f"the length of {what}")
        if count > limit or self.at + 4 * count > self.end:
            raise self.reader.fail(f"{what} declares {count} values", self.where)
        return [self.f32(what) if kind == "f32" else self.i32(what) for _ in range(count)]

    def done(self) -> None:
        if self.at != self.end:
            raise self.reader.fail(f"{self.end - self.at} bytes of parameters left over", self.where)

    def left(self) -> int:
        return (self.end - self.at) // 4


def _generic_data(reader, stage, known, d_start, d_end, where):
    stage.buffers = reader.buffers(d_start, d_end, where)
    stage.buffers = _assign(stage.buffers, _roles(reader, known, stage.params, len(stage.buffers), where))


def _decode_hw(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    w = _Words(reader, p_start, p_end, where)
    num_ops = w.take("the number of HW ops")
    if not 1 <= num_ops <= (p_end - p_start) // 40:
        raise reader.fail(f"declares {num_ops} HW ops", where)
    ops = []
    for i in range(num_ops):
        at = f"op {i}"
        code = w.take(f"{at} opType")
        if code not in HW_OP_TYPES:
            raise reader.fail(f"{at}: unknown HW op type {code}", where)
        op_type = HW_OP_TYPES[code]
        pool_type = None
        if op_type == "POOL":
            pool_code = w.take(f"{at} poolType")
            if pool_code not in HW_POOL_TYPES:
                raise reader.fail(f"{at}: unknown pool type {pool_code}", where)
            pool_type = HW_POOL_TYPES[pool_code]
        mode = w.take(f"{at} opMode")
        if mode >= HW_MODES:
            raise reader.fail(f"{at}: op mode {mode} (0..{HW_MODES - 1})", where)
        with_pad = bool(w.take(f"{at} withPad"))
        pad_mode = w.take(f"{at} padMode") if with_pad else None
        indices = [w.i32(f"{at} buffer index") for _ in range(5)]
        op = HwOp(op_type, mode, with_pad, *[None if x < 0 else x for x in indices], pool_type=pool_type,
                  pad_mode=pad_mode)
        if op_type != "FC":
            op.out_chan_offset, op.out_num_chans = w.take(f"{at} outChanOffset"), w.take(f"{at} outNumChans")
            op.kernel_width, op.kernel_height = w.take(f"{at} kernelWidth"), w.take(f"{at} kernelHeight")
            op.kernel_stride = w.take(f"{at} kernelStride")
        else:
            op.fc_input_offset, op.fc_input_num = w.take(f"{at} fcInputOffset"), w.take(f"{at} fcInputNum")
            op.fc_output_offset, op.fc_output_num = w.take(f"{at} fcOutputOffset"), w.take(f"{at} fcOutputNum")
            op.fc_accum = bool(w.take(f"{at} fcAccum"))
        if op_type == "CONV_POOL":
            op.pool_kernel_width, op.pool_kernel_height = w.take(f"{at} poolKernelW"), w.take(f"{at} poolKernelH")
        op.with_relu = bool(w.take(f"{at} withReLU"))
        if op.with_relu:
            op.t0, op.a0, op.a1 = w.take(f"{at} t0"), w.take(f"{at} a0"), w.take(f"{at} a1")
        op.with_clamp = bool(w.take(f"{at} withClamp"))
        if op.with_clamp:
            op.clamp_max = w.f32(f"{at} clampMax")
        op.reuse_data, op.reuse_coeff = bool(w.take(f"{at} reuseData")), bool(w.take(f"{at} reuseCoeff"))
        ops.append(op)
    has_injected = w.take("hasInjected")
    if has_injected not in (0, 1):
        raise reader.fail(f"hasInjected is {has_injected}", where)
    if has_injected:
        if depth + 1 >= MAX_NESTING:
            raise reader.fail("an injected stage inside an injected stage", where)
        nested = reader.record(w.at, p_end, stage.index, depth + 1, parent=stage.index)
        if nested.type_code == stage.type_code:
            raise reader.fail("a MyriadXHwOp injected into a MyriadXHwOp", where)
        stage.injected = nested
        w.at += nested.size
    w.done()
    stage.params = {"num_ops": num_ops, "has_injected": has_injected}
    stage.hw_ops = ops
    num_buffers = reader.u32(d_start, where) if d_start + 4 <= d_end else None
    if num_buffers is None:
        raise reader.fail("no buffer count", where)
    buffers = reader.buffers(d_start + 4, d_end, where)
    if len(buffers) != num_buffers:
        raise reader.fail(f"declares {num_buffers} buffers and holds {len(buffers)}", where)
    roles = ["unused"] * len(buffers)
    for i, op in enumerate(ops):
        for name, index in (("input", op.input_index), ("weights", op.coeffs_index), ("biases", op.biases_index),
                            ("scales", op.scales_index), ("output", op.output_index)):
            if index is None:
                continue
            if index >= len(buffers):
                raise reader.fail(f"op {i} names buffer {index} of {len(buffers)}", where)
            if roles[index] not in ("unused", name):
                raise reader.fail(f"op {i}: buffer {index} is both {roles[index]} and {name}", where)
            roles[index] = name
    stage.buffers = _assign(buffers, roles)


def _decode_custom(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    p = list(struct.unpack_from(f"<{(p_end - p_start) // 4}i", reader.data, p_start))
    # The plugin writes one group count per global work size and one local size and one offset per local
    # size; the counts are not written, so the layout is the one pair of counts that fits (equal first).
    counts = [(n, n) for n in range(8, 0, -1)] + [(g, l) for g in range(1, 9) for l in range(1, 9) if g != l]
    for ng, nl in counts:
        head = ng + 2 * nl
        if len(p) >= head + 5 and 0 <= p[head + 4] <= 1024 and head + 5 + 2 * p[head + 4] == len(p) \
                and not any(p[ng + nl:head]):
            break
    else:
        raise reader.fail("parameters do not have the Custom stage layout", where)
    max_shaves, kernel_id, num_inputs, num_buffers, num_args = p[head:head + 5]
    stage.params = {"groups": p[:ng], "local": p[ng:ng + nl], "offsets": p[ng + nl:head], "max_shaves": max_shaves,
                    "kernel_id": kernel_id, "num_inputs": num_inputs, "num_buffers": num_buffers,
                    "args": [[p[head + 5 + 2 * i], p[head + 6 + 2 * i]] for i in range(num_args)]}
    buffers = reader.buffers(d_start, d_end, where)
    if not 0 <= num_inputs < num_buffers or len(buffers) != num_buffers + 1:
        raise reader.fail(f"declares {num_buffers} buffers ({num_inputs} inputs) and holds {len(buffers)} "
                          "descriptors (expected the buffers and one scratch buffer)", where)
    for i, (value, tag) in enumerate(stage.params["args"]):
        if tag >= num_buffers or tag < -3:
            raise reader.fail(f"argument {i} has the tag {tag}", where)
    roles = ["input"] * num_inputs + ["binary"] + ["output"] * (num_buffers - num_inputs - 1) + ["temp"]
    stage.buffers = _assign(buffers, roles)


def _decode_nd(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    w = _Words(reader, p_start, p_end, where)
    if known.name == "ConvND":
        names, tail = ("pads_begin", "pads_end", "strides", "dilations"), ("groups",)
    else:
        names = ("kernel_shape", "pads_begin", "pads_end", "strides")
        tail = ("interleaved", "pooling_method", "rounding_type", "exclude_pad")
    stage.params = {name: w.vector(name, limit=MAX_RANK) for name in names}
    stage.params.update({name: w.i32(name) for name in tail})
    w.done()
    _generic_data(reader, stage, known, d_start, d_end, where)


def _decode_proposal(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    w = _Words(reader, p_start, p_end, where)
    ints = ("feat_stride", "base_size", "min_size", "pre_nms_topn", "post_nms_topn")
    floats = ("nms_thresh", "pre_nms_thresh", "box_size_scale", "box_coordinate_scale", "coordinates_offset")
    flags = ("initial_clip", "clip_before_nms", "clip_after_nms", "normalize", "shift_anchors", "round_ratios",
             "swap_xy")
    params = {n: w.i32(n) for n in ints}
    params.update({n: w.f32(n) for n in floats})
    params.update({n: w.take(n) for n in flags})
    params["scales"] = w.vector("scales", "f32", limit=4096)
    params["ratios"] = w.vector("ratios", "f32", limit=4096)
    w.done()
    stage.params = params
    _generic_data(reader, stage, known, d_start, d_end, where)


def _decode_mtcnn(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    w = _Words(reader, p_start, p_end, where)
    count = w.take("the pyramid size")
    if count > w.left():
        raise reader.fail(f"declares a pyramid of {count} levels", where)
    pyramid = [[w.i32("pyramid"), w.i32("pyramid")] for _ in range(count)]
    stage.params = {"pyramid": pyramid, "debug_pnet_post_nms": w.i32("debug_pnet_post_nms"),
                    "debug_rnet_post_nms": w.i32("debug_rnet_post_nms"), "mode": w.i32("mode"),
                    "stage2_zdir_batch_size": w.i32("stage2_zdir_batch_size")}
    w.done()
    _generic_data(reader, stage, known, d_start, d_end, where)


def _decode_loop(reader: _Reader, stage: Stage, known, p_start, p_end, d_start, d_end, where, depth):
    w = _Words(reader, p_start, p_end, where)
    start = known.name == "LoopStart"
    params = {"iterations_count": w.i32("iterations-count")}
    if start:
        params["stages_count"] = w.take("stages-count")
    count = w.take("the number of iteration components")
    left = w.left()
    if left == 4 * count + 1:                   # a batch dimension index comes first when the loop is over batch
        params["batch_dim_index"] = w.take("batch dim index")
    elif left != 4 * count:
        raise reader.fail(f"{left} words for {count} iteration components", where)
    params["components"] = [{"axis": w.i32("axis"), "start": w.i32("start"), "stride": w.i32("stride"),
                             "end": w.i32("end")} for _ in range(count)]
    w.done()
    stage.params = params
    buffers = reader.buffers(d_start, d_end, where)
    batch = "batch_dim_index" in params
    if len(buffers) != 2 * count + batch:
        raise reader.fail(f"{len(buffers)} buffer descriptors for {count} iteration components", where)
    pair = ["input", "output"] if start else ["output", "input"]
    roles = (["input" if start else "output"] if batch else []) + pair * count
    stage.buffers = _assign(buffers, roles)


_DECODERS = {"hw": _decode_hw, "custom": _decode_custom, "nd_conv": _decode_nd, "nd_pool": _decode_nd,
             "proposal": _decode_proposal, "mtcnn": _decode_mtcnn, "loop_start": _decode_loop,
             "loop_end": _decode_loop}


# ------------------------------------------------------------------------------------------------ entry point

def read_blob(blob: bytes | str | Path) -> BlobModel:
    """The whole blob as a BlobModel. KernelkitError (naming the file when given a path) if anything is off."""
    path = None
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        from kernelkit.core import limits
        from kernelkit.core.fsutil import read_input

        path = Path(blob)
        data = read_input(path, limits.WEIGHTS_BYTES.value(), what="blob", limit=limits.WEIGHTS_BYTES)
    else:
        data = bytes(blob)
    reader = _Reader(data, str(path) if path is not None else None)
    reader.sections()
    h = reader.header
    inputs = reader.io_entries(h.input_info_offset, h.inputs, h.output_info_offset, "input")
    outputs = reader.io_entries(h.output_info_offset, h.outputs, h.stages_offset, "output")
    for kind, entries in (("input", inputs), ("output", outputs)):
        if sorted(b.io_index for b in entries) != list(range(len(entries))):
            raise reader.fail(f"network {kind} indices {[b.io_index for b in entries]} are not 0..{len(entries) - 1}",
                              f"{kind} info")
    stages = reader.stages()
    model = BlobModel(h, inputs, outputs, stages, data, reader.path)
    _check_bounds(reader, model)
    return model


def _check_bounds(reader: _Reader, model: BlobModel) -> None:
    """Every view stays inside its memory, so whatever runs the blob can size its memories from the header."""
    h = model.header
    room = {"BSS": h.bss_size, "CMX": h.cmx_slices * CMX_SLICE_BYTES, "Blob": h.file_size - h.constants_offset}
    for kind, entries, total in (("input", model.inputs, h.inputs_size), ("output", model.outputs, h.outputs_size)):
        for b in entries:
            reach = b.offset + b.span_bytes     # one sample (a tensor without the batch dim is not repeated)
            if reach > total:
                raise reader.fail(f"{b.name!r} reaches byte {reach} of the {total}-byte {kind}s area",
                                  f"{kind} {b.io_index}")
            room[f"{kind.capitalize()}[{b.io_index}]"] = b.span_bytes
    for stage in model.all_stages():
        for i, b in enumerate(stage.buffers):
            if b.location == "None" or b.dims_dynamic:
                continue
            key = f"{b.location}[{b.io_index}]" if b.io_index is not None else b.location
            if b.offset + b.span_bytes > room.get(key, 0):
                where = f"stage {stage.index}" if stage.parent is None else f"stage {stage.parent}, injected stage"
                raise reader.fail(f"buffer {i} ({b.role}) reaches byte {b.offset + b.span_bytes} of {key}, which "
                                  f"has {room.get(key, 0)} bytes", f"{where} ({stage.type_name})")
