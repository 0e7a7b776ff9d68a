"""The MYRIAD 2021.4 plugin's stage types and the layout of each stage record, read from data/myriad-stages.toml.

One row per value of the plugin's StageType enum (all 112 that a blob can hold): its name, its category (HW,
SHAVE, DMA), its parameter fields in blob order and the roles of its buffer descriptors, with the OpenVINO source
file each comes from. kernelkit.myriad.blob_reader applies the table; this module only reads it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "myriad-stages.toml"
# The neural compute engine: mode m splits its 256 MAC lanes into 2**m input x 256/2**m output channels, and the
# plugin's tiler scores a descriptor (extended input channels / 2**m) * kx * ky + HW_MODE_COST[m]
# (CNN_MODES_COST in GT/include/vpu/middleend/hw/tiling.hpp; used in GT/src/middleend/hw/tiling.cpp).
HW_MODE_COST = (0, 5, 11, 19, 31)
PARAM_KINDS = {"u32": 4, "i32": 4, "f32": 4, "num": 4, "f16": 2}


@dataclass(frozen=True)
class ParamField:
    name: str
    kind: str               # a key of PARAM_KINDS
    rest: bool = False      # takes every word left ("name:kind*", the last field only)


@dataclass(frozen=True)
class StageType:
    code: int
    name: str
    category: str                           # "HW" | "SHAVE" | "DMA"
    params: tuple[ParamField, ...] | None   # None: decoded in code (`decoder`)
    data: tuple[str, ...] | None            # buffer roles in blob order; None: decoded in code
    decoder: str | None
    source: str


def _field(text: str) -> ParamField:
    name, _, kind = text.partition(":")
    rest = kind.endswith("*")
    kind = kind.rstrip("*")
    if kind not in PARAM_KINDS:
        raise ValueError(f"{DATA_FILE.name}: unknown parameter kind in {text!r}")
    return ParamField(name, kind, rest)


@lru_cache(maxsize=1)
def stage_types() -> dict[int, StageType]:
    """Stage type code -> StageType, every code of the 2021.4 enum."""
    rows = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))["stage"]
    table = {}
    for row in rows:
        params = row.get("params")
        table[row["code"]] = StageType(
            row["code"], row["name"], row["category"],
            None if params is None else tuple(_field(p) for p in params),
            None if row.get("data") is None else tuple(row["data"]), row.get("decoder"), row["source"])
    return table


def stage_type_name(code: int) -> str:
    """The enum name of a stage type code, or "type N" for a code the 2021.4 plugin does not have."""
    known = stage_types().get(code)
    return known.name if known else f"type {code}"
