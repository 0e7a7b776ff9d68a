"""A MYRIAD target release as one object, read from data/targets.toml: pass it along, never re-derive it from a
name. Every question kernelkit asks of a target ("can we compile for it here?", "which IR version does its reader
take?") is an attribute here, with the source of its fact in the data file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from kernelkit.core.errors import KernelkitError

DATA_FILE = Path(__file__).parent / "data" / "targets.toml"


@dataclass(frozen=True)
class Target:
    name: str                          # the OpenVINO release, as data/targets.toml names it
    opset_ceiling: int                 # newest opset its IR reader knows
    ir_versions: tuple[int, ...]       # IR versions its reader takes
    custom_layers_key: str             # the config key that names a custom-layer XML
    unique_layer_names: bool           # its reader refuses two layers of one name
    static_dims: bool                  # its reader refuses dynamic dimensions in the IR
    compiler: bool                     # kernelkit runs this release's real MYRIAD plugin
    extension_layers: bool             # version="extension" layers compile (kernelkit's shim only)
    blob_version: tuple[int, int] | None
    sources: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def ir_version(self) -> int:
        """The IR version patch writes for it: the oldest its reader takes (v10 reads everywhere)."""
        return min(self.ir_versions)

    def __str__(self) -> str:
        return self.name


@lru_cache(maxsize=1)
def _table() -> dict:
    with open(DATA_FILE, "rb") as handle:
        return tomllib.load(handle)


def target_names() -> tuple[str, ...]:
    return tuple(_table()["targets"])


def default_target_name() -> str:
    return _table()["default"]


def dynamic_shapes() -> dict:
    """Whether any target compiles dynamic input shapes ({"supported", "reason", "source"})."""
    return _table()["dynamic_shapes"]


@lru_cache(maxsize=None)
def _build(name: str) -> Target:
    row = _table()["targets"][name]
    return Target(name=name, opset_ceiling=row["opset_ceiling"], ir_versions=tuple(row["ir_versions"]),
                  custom_layers_key=row["custom_layers_key"], unique_layer_names=row["unique_layer_names"],
                  static_dims=row["static_dims"], compiler=row["compiler"], extension_layers=row["extension_layers"],
                  blob_version=tuple(row["blob_version"]) if "blob_version" in row else None,
                  sources={k: v for k, v in row.items() if k.endswith("source")})


def get_target(target: str | Target | None = None) -> Target:
    """The Target for a name (or the default for None); a Target is returned as it is."""
    if isinstance(target, Target):
        return target
    name = default_target_name() if target is None else str(target)
    if name not in _table()["targets"]:
        raise KernelkitError(f"unknown target {name!r}", where="--target",
                             hint=f"use one of: {', '.join(target_names())}")
    return _build(name)


def compiler_target() -> Target:
    """The release whose real plugin kernelkit runs (the only one blobs are compiled for)."""
    return next(t for t in map(_build, target_names()) if t.compiler)
