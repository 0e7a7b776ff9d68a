"""The stages of a MYRIAD blob, and what a Custom stage holds: the plugin's own reading of a binding.

The blob itself is read by kernelkit.myriad.blob_reader (every stage's params and buffers, no word left over);
this module keeps the flat view older callers use (`read_stages`: type, SHAVEs, raw params, raw descriptors)
and reads Custom stages the way plugin-check compares them with the emulator's plan.

A Custom stage's parameters, as the 2021.4 plugin writes them (GT/src/stages/custom.cpp):
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
from kernelkit.facts.myriad_stages import stage_type_name, stage_types
from kernelkit.myriad import blob_reader
from kernelkit.myriad.blob_reader import DATA_TYPES, LOCATIONS, Buffer, order_name  # noqa: F401 (public API)

STAGE_BORDER = blob_reader.STAGE_BORDER
CUSTOM_STAGE = 115
# The plugin's StageType codes -> names, all 112 of the 2021.4 enum (kernelkit/facts/data/myriad-stages.toml).
STAGE_TYPE_NAMES = {code: row.name for code, row in stage_types().items()}
ARG_INT, ARG_FLOAT, ARG_LOCAL = -1, -2, -3


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
        return stage_type_name(self.type_code)


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


def read_stages(data: bytes) -> list[Stage]:
    """Every stage record of a blob, in execution order (each one read in full by blob_reader first)."""
    return [_flat(stage, data) for stage in blob_reader.read_blob(data).stages]


def _flat(stage: blob_reader.Stage, data: bytes) -> Stage:
    words = stage.param_words
    params = struct.unpack(f"<{len(words)}i", struct.pack(f"<{len(words)}I", *words))
    start = stage.offset + 16 + 4 * len(words)
    return Stage(stage.index, stage.type_code, stage.shaves, params, data[start:stage.offset + stage.size - 8])


def _custom(stage: blob_reader.Stage, model: blob_reader.BlobModel) -> CustomStage:
    from kernelkit.myriad import check_elf

    p = stage.params
    buffers = stage.buffers[:-1]                          # the scratch buffer after the outputs is the plugin's
    num_inputs = p["num_inputs"]
    binary_buffer = buffers[num_inputs]
    size = binary_buffer.dims.get("C") or next(iter(binary_buffer.dims.values()), 0)
    binary = bytes(model.constants[binary_buffer.offset:binary_buffer.offset + size]) \
        if binary_buffer.location == "Blob" else b""

    entry, names = None, []
    try:
        kernels = check_elf.read_metadata(binary)
    except KernelkitError:
        kernels = []
    kernel_id = p["kernel_id"]
    if 0 <= kernel_id < len(kernels):
        entry = kernels[kernel_id].entry
        names = [a.name for a in kernels[kernel_id].args if not a.hoisted]
    args = []
    for i, (value, tag) in enumerate(p["args"]):
        name = names[i] if i < len(names) else None
        if tag >= 0:
            args.append(StageArg("buffer", tag, name))
        elif tag == ARG_INT:
            args.append(StageArg("int", value, name))
        elif tag == ARG_FLOAT:
            args.append(StageArg("float", struct.unpack("<f", struct.pack("<i", value))[0], name))
        else:
            args.append(StageArg("local", value, name))
    flat = _flat(stage, model.data)
    return CustomStage(flat, tuple(p["groups"]), tuple(p["local"]), tuple(p["offsets"]), p["max_shaves"], kernel_id,
                       buffers[:num_inputs], buffers[num_inputs + 1:], binary, args, entry, buffers)


def custom_stage(stage: blob_reader.Stage, model: blob_reader.BlobModel) -> CustomStage:
    """A Custom stage of a blob already read (`model`), decoded."""
    if stage.type_code != CUSTOM_STAGE:
        raise KernelkitError(f"stage {stage.index} is not a Custom stage of this blob")
    return _custom(stage, model)


def decode_custom(stage: Stage, data: bytes) -> CustomStage:
    """The Custom stage's work sizes, arguments and buffers; `data` is the whole blob."""
    model = blob_reader.read_blob(data)
    if not 0 <= stage.index < len(model.stages) or model.stages[stage.index].type_code != CUSTOM_STAGE:
        raise KernelkitError(f"stage {stage.index} is not a Custom stage of this blob")
    return _custom(model.stages[stage.index], model)


def custom_stages(data: bytes) -> list[CustomStage]:
    """Every Custom stage of a blob, decoded, in execution order."""
    model = blob_reader.read_blob(data)
    return [_custom(stage, model) for stage in model.stages if stage.type_code == CUSTOM_STAGE]
