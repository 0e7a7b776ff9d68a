"""The runner protocol (Polygraphy's idea): every way kernelkit executes a model or a kernel is a runner with one
call, `run(inputs) -> RunResult`. Comparison is not a runner's job: kernelkit.runners.compare takes the
outputs of two runs.

A runner that cannot run here at all (not configured, an op its backend does not know) raises RunnerSkipped;
the reason is never counted as a pass. Failures it observes while running (an emulated layer that failed) are
in the result, beside whatever outputs were produced.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np


class RunnerSkipped(Exception):
    """The runner cannot run for this input; str(exc) is the reason."""


@dataclass
class RunResult:
    runner: str                                        # the runner's name
    outputs: dict[str, np.ndarray] = field(default_factory=dict)   # in the model's output order
    notes: list[str] = field(default_factory=list)     # what the run did, for reports
    failures: list[str] = field(default_factory=list)  # what went wrong while running
    detail: object = None                              # the runner's own record (a verdict, emulated layers)

    @property
    def arrays(self) -> list[np.ndarray]:
        return list(self.outputs.values())

    @property
    def names(self) -> list[str]:
        return list(self.outputs)


def named_outputs(arrays, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Outputs keyed by `names`, else out0, out1, ... (in order)."""
    arrays = [np.asarray(a) for a in arrays]
    names = list(names or [])[:len(arrays)]
    names += [f"out{i}" for i in range(len(names), len(arrays))]
    return dict(zip(names, arrays))


class Runner(ABC):
    name: str = "runner"

    @abstractmethod
    def run(self, inputs: list[np.ndarray]) -> RunResult:
        """Execute once on `inputs` (in the model's input order)."""
