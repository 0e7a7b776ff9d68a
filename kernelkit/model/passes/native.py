"""Native formulation or library kernel: which one `patch` tries first for an op MYRIAD cannot compile.

A layer bound to a library kernel needs the kernel's SHAVE binary, which only clc builds (it ships in no
pip package), so for most users it cannot be deployed; a native formulation (kernelkit.model.formulations) is
a graph of ops the plugin compiles. `--prefer native` (the default) takes the formulation when its fp16
error, measured by tools/measure_native.py with fp16 rounding between layers and stored in
data/native-fp16.json, is within the op's tolerance, else the kernel; `--prefer kernel` takes the kernel
first. Either way the other one is the fallback when the first refuses the layer. `--prefer fastest` plans as
native does; where the real plugin compiles, `patch` then estimates both forms on an OAK and binds the kernel
instead of a formulation estimated much slower (kernelkit.doctor.estimate_use). Nothing is measured at patch
time.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parents[2] / "facts" / "data" / "native-fp16.json"
DATA_SCHEMA = "kernelkit.native-fp16/1"
PREFER = ("native", "kernel", "fastest")
# Old spellings: auto put exact rewrites first and CumSum's MatMul after kernels, rewrite put every rewrite
# first. Both now mean native: the measured error decides, per op.
PREFER_ALIASES = {"auto": "native", "rewrite": "native"}


def tolerance(op_type: str) -> tuple[float, float]:
    """(atol, rtol) a formulation of `op_type` must meet: the harness's fp16 defaults, which the library
    kernels are held to as well (an element fails only beyond both)."""
    from kernelkit.facts.tolerances import DEFAULT_ATOL, DEFAULT_RTOL

    return DEFAULT_ATOL, DEFAULT_RTOL


def usable(record: dict | None) -> bool:
    """Measured within its tolerance and compiled by the real 2021.4 plugin in every measured case."""
    return bool(record and record.get("within_tolerance") and record.get("compiled"))


def normalise_prefer(prefer: str) -> str:
    from kernelkit.core.errors import KernelkitError

    prefer = PREFER_ALIASES.get(prefer, prefer)
    if prefer not in PREFER:
        raise KernelkitError(f"--prefer {prefer!r}: use native (the default), kernel or fastest", where="--prefer",
                             hint="native: a formulation in native ops when its measured fp16 error is within the "
                                  "op's tolerance, else the library kernel; kernel: the library kernel first; "
                                  "fastest: as native, then the kernel where the formulation is estimated much "
                                  "slower on an OAK")
    return prefer


@functools.lru_cache(maxsize=1)
def measurements() -> dict[str, dict]:
    """op (lower case) -> its measurement record (see tools/measure_native.py); {} without the data file."""
    if not DATA_FILE.is_file():
        return {}
    data = json.loads(DATA_FILE.read_text())
    if data.get("schema") != DATA_SCHEMA:
        return {}
    return {op.lower(): record for op, record in data.get("ops", {}).items()}


def measurement(op_type: str, variant: str | None = None) -> dict | None:
    """The record of an op's formulation; of one of its variants when they were measured apart (a variant
    never measured has no record)."""
    record = measurements().get(op_type.lower())
    if record is None or not record.get("variants"):
        return record
    return record["variants"].get(variant) if variant is not None else record


def layer_measurement(layer) -> dict | None:
    from kernelkit.model.formulations.registry import formulations

    entry = formulations().get(layer.type.lower())
    return measurement(layer.type, entry.variant_of(layer) if entry else None)


def error_text(record: dict | None) -> str:
    """One line: the measured fp16 error against the tolerance, e.g. "fp16 max error 9 ulp, 0.49x tolerance"."""
    if not record:
        return "fp16 error not measured"
    fp16 = record.get("fp16", {})
    domain = fp16.get("domain")
    where = f" for {domain}" if domain else ""
    if record.get("variant"):
        where += f" ({record['variant']})"
    return (f"fp16 max abs error {fp16.get('max_abs', 0):.3g} ({fp16.get('max_ulp', 0)} ulp), "
            f"{fp16.get('ratio', 0):.2f}x the tolerance{where}")


@dataclass
class Choice:
    """What `patch` tries first for one blocked layer, and why (patch-report.json "choices")."""

    layer: str
    type: str
    first: str                 # native | kernel
    reason: str
    has_native: bool
    has_kernel: bool
    measurement: dict | None = None
    chosen: str | None = None  # what was applied: native | kernel | None (neither could take the layer)

    def to_dict(self) -> dict:
        record = self.measurement or {}
        return {"layer": self.layer, "type": self.type, "variant": record.get("variant"), "first": self.first,
                "chosen": self.chosen,
                "reason": self.reason, "native_available": self.has_native, "kernel_available": self.has_kernel,
                "fp16_error": record.get("fp16"), "tolerance": record.get("tolerance"),
                "within_tolerance": record.get("within_tolerance")}


def choose(layer, prefer: str, has_native: bool, has_kernel: bool, record: dict | None = None) -> Choice:
    """The order for one layer. `prefer` is native or kernel (normalise_prefer); `record` defaults to the
    layer type's measurement in the data file."""
    if record is None and has_native:
        record = layer_measurement(layer)
    make = lambda first, reason: Choice(layer.name, layer.type, first, reason, has_native, has_kernel,  # noqa: E731
                                        record)
    if not has_native:
        return make("kernel", "no native formulation")
    if not has_kernel:
        return make("native", f"no library kernel; {error_text(record)}")
    if prefer == "kernel":
        return make("kernel", f"--prefer kernel; native formulation as fallback ({error_text(record)})")
    if record is None:
        return make("kernel", "the native formulation's fp16 error is not measured (tools/measure_native.py)")
    if usable(record):
        return make("native", f"{error_text(record)}: deployable without clc")
    if record.get("within_tolerance") and not record.get("compiled"):
        return make("kernel", "the real 2021.4 plugin refused the native formulation in a measured case")
    return make("kernel", f"native formulation outside the tolerance: {error_text(record)}")


def plan(ctx, blocked: set[str], prefer: str, kernel_types: set[str]) -> dict[str, Choice]:
    """A Choice for every blocked layer that has a native formulation or a library kernel."""
    from kernelkit.model.formulations.registry import formulations

    choices = {}
    for layer in ctx.model.layers:
        if layer.name not in blocked:
            continue
        kind = layer.type.lower()
        has_native, has_kernel = kind in formulations(), kind in kernel_types
        if has_native or has_kernel:
            choices[layer.name] = choose(layer, prefer, has_native, has_kernel)
    return choices


def settle(choices: dict[str, Choice], changes) -> None:
    """Fill in what each layer got, from the patch's change records."""
    applied = {c.layer: c.patcher for c in changes if c.patcher in ("rewrite", "custom_layer")}
    for name, choice in choices.items():
        patcher = applied.get(name)
        choice.chosen = {"rewrite": "native", "custom_layer": "kernel"}.get(patcher)
