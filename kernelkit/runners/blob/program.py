"""What the interpreter executes: the blob reader's model (kernelkit.myriad.blob_reader) in the interpreter's
terms: I/O with the size of their buffers, stages with their raw parameter words, buffers (with roles) and HW
ops in hw.HwOp form. The one reading of a blob is the reader's; this only re-shapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kernelkit.runners.blob import hw

HW_STAGE = 38
_OP_CODES = {"CONV": hw.CONV, "CONV_POOL": hw.CONV_POOL, "FC": hw.FC, "POOL": hw.POOL}
_POOL_CODES = {"MAX": hw.POOL_MAX, "AVG": hw.POOL_AVG}


@dataclass
class IOInfo:
    name: str
    buffer: object              # a blob_reader.Buffer, offset 0 within its own I/O arena
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
    custom: object = None               # myriad.stages.CustomStage of a Custom stage (work sizes, args, binary)

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
    # What the interpreter derives from the read-only const section once and reuses on every run (HW weights
    # unpacked and converted, per-op geometry); filled on first use, never part of the program's meaning.
    prepared: dict = field(default_factory=dict, repr=False, compare=False)

    def const_arena(self):
        """The const section as one read-only byte array, shared by every run (nothing writes it)."""
        import numpy as np

        arena = self.prepared.get("const arena")
        if arena is None:
            arena = np.frombuffer(bytes(self.constants), np.uint8).copy()
            arena.flags.writeable = False
            self.prepared["const arena"] = arena
        return arena


def _idx(value) -> int:
    return -1 if value is None else int(value)


def _hw_op(op) -> hw.HwOp:
    """A blob_reader.HwOp as the interpreter's hw.HwOp."""
    out = hw.HwOp(_OP_CODES.get(op.op_type, -1), _POOL_CODES.get(op.pool_type) if op.pool_type else None,
                  op.op_mode, bool(op.with_pad), op.pad_mode, _idx(op.input_index), _idx(op.output_index),
                  _idx(op.coeffs_index), _idx(op.biases_index), _idx(op.scales_index))
    if op.op_type == "FC":
        out.fc = (op.fc_input_offset, op.fc_input_num, op.fc_output_offset, op.fc_output_num, int(op.fc_accum))
    else:
        out.out_chan_offset, out.out_num_chans = op.out_chan_offset, op.out_num_chans
        out.kernel_w, out.kernel_h, out.stride = op.kernel_width, op.kernel_height, op.kernel_stride
        if op.op_type == "CONV_POOL":
            out.pool_kernel = (op.pool_kernel_width, op.pool_kernel_height)
    if op.with_relu:
        out.relu = (op.t0, op.a0, op.a1)
    if op.with_clamp:
        out.clamp_max = op.clamp_max
    out.reuse_data, out.reuse_coeff = int(op.reuse_data), int(op.reuse_coeff)
    return out


def _stage(stage, names: dict[int, str] | None, model) -> StageRec:
    from kernelkit.myriad import stages as stage_reader

    words = tuple(w - (1 << 32) if w >= 1 << 31 else w for w in stage.param_words)     # as signed words
    rec = StageRec(stage.index, stage.type_code, stage.type_name, words, list(stage.buffers),
                   [_hw_op(op) for op in stage.hw_ops], layer=(names or {}).get(stage.index))
    if stage.type_code == stage_reader.CUSTOM_STAGE:
        rec.custom = stage_reader.custom_stage(stage, model)
    if stage.injected is not None:
        rec.injected = _stage(stage.injected, names, model)
    return rec


def _io(buffers, stages, location: str) -> list[IOInfo]:
    sizes: dict[int, int] = {}
    for stage in stages:
        for s in (stage, stage.injected) if stage.injected is not None else (stage,):
            for b in s.buffers:
                if b.location == location and b.io_index is not None:
                    size = max(b.io_size or 0, b.offset + b.span_bytes)
                    sizes[b.io_index] = max(sizes.get(b.io_index, 0), size)
    out = []
    for b in buffers:
        own = replace(b, offset=0)                      # each I/O buffer is an arena of its own
        out.append(IOInfo(b.name or f"{location.lower()}{b.io_index}", own,
                          max(sizes.get(b.io_index, 0), own.span_bytes)))
    return out


def from_model(model, names: dict[int, str] | None = None) -> Program:
    """A blob_reader.BlobModel as a Program; `names`: stage index -> layer name, when a map is known."""
    return Program(model.header, model.constants, _io(model.inputs, model.stages, "Input"),
                   _io(model.outputs, model.stages, "Output"), [_stage(s, names, model) for s in model.stages])


def stage_names(blob, data: bytes) -> dict[int, str] | None:
    """Stage index -> the IR layer(s) it came from, from the plugin's graph dump beside a blob file (None: no
    dump, or one of another compile: the run goes on without names)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad import graph_dump

    try:
        layers = graph_dump.blob_stage_layers(blob, data)
    except KernelkitError:
        return None
    if layers is None:
        return None
    return {index: ", ".join(layer.name for layer in found) for index, found in enumerate(layers) if found}


def load(blob) -> Program:
    """A blob (bytes or a path) read by the blob reader, as a Program; a path's stages name their IR layers
    when the graph dump is beside it (range findings then say which layer)."""
    from pathlib import Path

    from kernelkit.myriad.blob_reader import read_blob

    model = read_blob(blob)
    names = stage_names(Path(blob), model.data) if isinstance(blob, (str, Path)) else None
    return from_model(model, names)
