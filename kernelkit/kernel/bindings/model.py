"""In-memory form of custom-layer bindings, for both plugins.

MYRIAD (`type="MVCL"`, 2021.1-2022.3 dialect): see docs/bindings.md and the plugin rules it summarises.
Attribute values are kept as the strings the XML holds (expressions stay unevaluated); `line` is the
1-based line in `path` where the element starts, for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

from kernelkit.core.fsutil import named_file

@dataclass(frozen=True)
class DimRef:
    """`dim="input,0"` / `dim="output,0"`: which tensor supplies B, F, Y, X."""

    kind: Literal["input", "output"]
    index: int

    def __str__(self) -> str:
        return f"{self.kind},{self.index}"


@dataclass
class TensorParam:
    """<Tensor>: an IR port (input/output) or an inter-stage scratch buffer (input_buffer/output_buffer)."""

    arg_name: str
    type: Literal["input", "output", "input_buffer", "output_buffer"]
    port_index: int
    format: str = "BFYX"              # upper-case, one of facts.tensor_formats.TENSOR_FORMATS
    dim: DimRef | None = None         # buffers only
    size: str | None = None           # buffers only: size expression (bytes)
    line: int | None = None


@dataclass
class DataParam:
    """<Data>: a constant blob of the layer (`data`, by `source`) or a __local buffer (`local_data`)."""

    arg_name: str
    type: Literal["data", "local_data"]
    source: str | None = None         # data only
    dim: DimRef | None = None         # local_data only
    size: str | None = None           # local_data only: size expression in bytes
    line: int | None = None


@dataclass
class ScalarParam:
    """<Scalar>: a 32-bit int or float from a layer attribute, a shape lookup (I.X / O.F) or a literal."""

    arg_name: str
    type: Literal["int", "float"]
    source: str
    port_index: int | None = None     # None when the attribute is absent (the plugin's -1)
    line: int | None = None


Param = Union[TensorParam, DataParam, ScalarParam]


@dataclass
class WorkSizes:
    dim: DimRef
    global_: list[str]                # 1..3 expressions, dimension 0 first
    local: list[str]
    line: int | None = None


@dataclass
class Kernel:
    entry: str
    sources: list[str]                # <Source filename> as written (relative to the XML's folder)
    params: list[Param]
    work_sizes: WorkSizes
    stage: int = 0
    max_shaves: int = 0               # 0 = no limit
    line: int | None = None


@dataclass
class CustomLayer:
    """One MYRIAD <CustomLayer> alternative."""

    name: str                         # the IR/legacy layer type it binds (matched case-insensitively)
    kernels: list[Kernel]             # sorted by stage
    where: dict[str, str] = field(default_factory=dict)
    type: str = "MVCL"
    version: int = 1
    path: Path | None = None          # the XML file it came from; Source paths resolve against its folder
    line: int | None = None
    layer_max_shaves: int | None = None   # <CustomLayer max-shaves>: written by the doc, ignored by 2021+ plugins
    notes: list = field(default_factory=list, compare=False)  # parse-time warnings (Finding), reported by validate

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path(".")


# --- Intel GPU (clDNN / intel_gpu) `type="SimpleGPU"` ---------------------------------------------

@dataclass
class GpuDefine:
    name: str
    param: str | None = None
    type: str | None = None
    default: str | None = None


@dataclass
class GpuTensor:
    arg_index: int
    type: Literal["input", "output"]
    port_index: int
    format: str = "BFYX"


@dataclass
class GpuCustomLayer:
    name: str
    entry: str
    sources: list[str]
    defines: list[GpuDefine]
    tensors: list[GpuTensor]
    global_: list[str]
    local: list[str]
    dim: str = "output"               # "output", "input" or "input,N"
    compiler_options: str | None = None
    type: str = "SimpleGPU"
    version: int = 1
    path: Path | None = None
    line: int | None = None
    notes: list = field(default_factory=list, compare=False)  # parse-time warnings (Finding), reported by validate

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path(".")


def source_file(layer: CustomLayer | GpuCustomLayer, name: str, *, line: int | None, suffix: str | None = None,
                missing_ok: bool = False) -> Path | None:
    """A <Source filename> of `layer` (`suffix` in place of its own: x.bin -> x.cl) as a checked path. Both plugins
    read it relative to the binding file's folder and allow names that leave it."""
    return named_file(layer.base_dir, name, source=layer.path, line=line, where="<Source filename>",
                      what="kernel source", inside=False, suffix=suffix, missing_ok=missing_ok)
