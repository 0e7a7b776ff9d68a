"""Resource limits on what kernelkit reads, allocates and runs, each overridable by an environment variable.

A downloaded file can declare a tensor of 10^15 elements, inflate to terabytes or name a million layers; the
kit refuses it with the limit and the variable that raises it instead of exhausting the machine. The defaults
are far above anything a Myriad X runs (it has 512 MB of DDR). docs/reliability.md lists them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from kernelkit.core.errors import KernelkitError

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limit:
    variable: str
    default: int
    unit: str                       # what is counted: "bytes", "layers"

    def value(self) -> int:
        text = os.environ.get(self.variable)
        if text is None or not text.strip():
            return self.default
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            value = -1
        if value <= 0:
            raise KernelkitError(f"{self.variable}={text!r} is not a positive whole number of {self.unit}",
                                 where=self.variable, hint=f"unset it for the default ({self.default:,})")
        return value

    def hint(self) -> str:
        return f"if the file is what you meant, raise the limit: {self.variable}=N (default {self.default:,})"

    def check(self, amount: int, what: str, **where) -> None:
        """KernelkitError when `amount` is above the limit; `what` names what was counted."""
        limit = self.value()
        if amount > limit:
            raise KernelkitError(f"{what}: {amount:,} {self.unit}, above the limit of {limit:,}",
                                 hint=self.hint(), **where)


TENSOR_BYTES = Limit("KERNELKIT_MAX_TENSOR_BYTES", 1 * GiB, "bytes")
WEIGHTS_BYTES = Limit("KERNELKIT_MAX_WEIGHTS_BYTES", 1 * GiB, "bytes")
LAYERS = Limit("KERNELKIT_MAX_LAYERS", 1_000_000, "layers")
WORK_ITEMS = Limit("KERNELKIT_MAX_WORK_ITEMS", 1 << 30, "work items")   # one emulated launch's NDRange


def tensor_bytes(shape, itemsize: int) -> int:
    """Bytes of a tensor of `shape` (exact: Python integers never wrap as numpy's int64 products do)."""
    return math.prod(int(d) for d in shape) * int(itemsize)


def check_tensor(shape, itemsize: int, what: str, **where) -> None:
    """Refuse a declared tensor larger than KERNELKIT_MAX_TENSOR_BYTES before anything is allocated for it."""
    TENSOR_BYTES.check(tensor_bytes(shape, itemsize), f"{what} of shape {list(shape)} needs", **where)

# `kernelkit serve` (kernelkit.compat.server): what one request may send and run, and how many may wait.
UPLOAD_BYTES = Limit("KERNELKIT_MAX_UPLOAD_BYTES", 512 * MiB, "bytes")
SERVE_COMPILE_SECONDS = Limit("KERNELKIT_SERVE_TIMEOUT", 1800, "seconds")
SERVE_QUEUE = Limit("KERNELKIT_SERVE_QUEUE", 4, "requests")     # each may hold an upload in memory
