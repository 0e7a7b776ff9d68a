"""The table of formulations, op type (lower case) -> Formulation. Each module of this package registers its
own with the @formulation decorator; `formulations()` imports the package's modules by name once, so no
module here imports a member and no member needs a list of the others."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from typing import Callable

_TABLE: dict[str, Formulation] = {}


@dataclass(frozen=True)
class Formulation:
    """A replacement of one op by ops the MYRIAD plugin compiles: exact (kernelkit.model.formulations.exact), or
    a native formulation whose fp16 error is measured (kernelkit.model.passes.native)."""

    build: Callable
    text: str                   # one line for reports and docs/coverage.md
    # layer -> the name of the variant it falls in (e.g. GridSample's mode), when variants differ in
    # accuracy: each variant is measured and chosen on its own.
    variant: Callable | None = None
    # (model, layer) -> True when the layer must be replaced although the knowledge base calls its op
    # supported: a form of it the real plugin refuses (LSTMSequence with computed weights).
    needed: Callable | None = None
    multi_output: bool = False          # build returns one value per output of the layer

    def variant_of(self, layer) -> str | None:
        return self.variant(layer) if self.variant else None


def formulation(*op_types: str, text: str, variant: Callable | None = None, needed: Callable | None = None,
                multi_output: bool = False):
    """Register the decorated `build(model, layer)` as the formulation of `op_types` (lower case)."""
    def register(build: Callable) -> Callable:
        for op_type in op_types:
            if op_type in _TABLE and _TABLE[op_type].build is not build:
                raise ValueError(f"two formulations of {op_type}: {_TABLE[op_type].build.__module__} and "
                                 f"{build.__module__}")
            _TABLE[op_type] = Formulation(build, text, variant, needed, multi_output)
        return build
    return register


@cache
def formulations() -> dict[str, Formulation]:
    """Every registered formulation, after importing each module of this package (in name order)."""
    package = importlib.import_module(__package__)
    for found in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{__package__}.{found.name}")
    return dict(_TABLE)
