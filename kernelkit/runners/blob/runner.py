"""The blob interpreter behind the runner protocol, and the bracketed run `kernelkit blob run` reports.

The engine's accumulator is unknown (firmware), so a run can be bracketed: once with an fp32 accumulator and
once with an fp16 running sum. An output whose verdict (finite and no range finding) differs between the two
depends on firmware arithmetic no public source describes, and is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import Runner, RunResult
from kernelkit.runners.blob import interpreter, program as programs

BOTH = "both"


def load_program(blob):
    """A blob (path or bytes) decoded for the interpreter."""
    return programs.load(blob)


def order_inputs(program, inputs) -> list[np.ndarray]:
    """Inputs (a list in blob order, or a dict keyed by the blob's input names or in0, in1, ...) as a list."""
    names = [info.name for info in program.inputs]
    if not isinstance(inputs, dict):
        arrays = list(inputs)
        if len(arrays) != len(names):
            raise KernelkitError(f"{len(arrays)} inputs given, the blob takes {len(names)} ({', '.join(names)})")
        return arrays
    arrays = []
    for i, name in enumerate(names):
        if name in inputs:
            arrays.append(inputs[name])
        elif f"in{i}" in inputs:
            arrays.append(inputs[f"in{i}"])
        else:
            raise KernelkitError(f"no array for the blob's input {name!r}", where=name,
                                 hint=f"key the inputs by the blob's input names ({', '.join(names)}) or "
                                      f"in0..in{len(names) - 1} in blob order")
    extra = set(inputs) - set(names) - {f"in{i}" for i in range(len(names))}
    if extra:
        raise KernelkitError(f"inputs {', '.join(sorted(extra))} are not inputs of the blob",
                             hint=f"the blob's inputs: {', '.join(names)}")
    return arrays


def random_inputs(program, seed: int = 0) -> list[np.ndarray]:
    """Deterministic standard-normal inputs in each input's logical shape."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(info.buffer.logical_shape()).astype(np.float32) for info in program.inputs]


@dataclass
class BlobReport:
    outputs: dict[str, np.ndarray]                  # the first accumulator's (fp32 for a bracket)
    runs: dict[str, interpreter.BlobRun]
    depends: list[str] = field(default_factory=list)           # outputs whose verdict depends on the accumulator
    spread: dict[str, float] = field(default_factory=dict)     # max |fp32 - fp16| / max |fp32|, per output
    departure: object = None        # against a reference IR (blob run --reference): doctor.departure.DepartureSearch

    @property
    def findings(self) -> list[tuple[str, interpreter.Finding]]:
        return [(acc, f) for acc, run in self.runs.items() for f in run.findings]

    @property
    def exit_code(self) -> int:
        departs = self.departure is not None and self.departure.departure is not None
        return 1 if self.findings or departs else 0

    def lines(self) -> list[str]:
        out = []
        for acc, run in self.runs.items():
            out.append(f"{acc} accumulator: {run.stages} stages run, {len(run.findings)} finding(s)")
            for finding in run.findings:
                out.append(f"  {finding.message()}")
        for name, value in self.spread.items():
            out.append(f"output {name!r}: fp32 vs fp16 accumulator differ by {value:.3g} of max |y|")
        for name in self.depends:
            out.append(f"output {name!r}: its verdict depends on the accumulator (firmware arithmetic)")
        if self.departure is not None:
            found = self.departure.departure
            out.append(f"against the reference: the blob departs at {found}" if found is not None else
                       f"against the reference: {self.departure.note}")
        return out


def _verdict(run: interpreter.BlobRun, name: str) -> bool:
    values = run.outputs[name]
    return not run.findings and (values.dtype.kind != "f" or bool(np.isfinite(values).all()))


def kernel_set(kernels):
    """`kernels` (a patch folder, a folder of binding files, one binding file, or None) as the interpreter's
    KernelSet for Custom stages."""
    from kernelkit.runners.blob.custom import KernelSet

    return kernels if kernels is None or isinstance(kernels, KernelSet) else KernelSet(kernels)


def run_blob(blob, inputs=None, *, accumulator: str = BOTH, poison: int | None = None,
             seed: int = 0, kernels=None) -> BlobReport:
    """Run a blob (path, bytes or a decoded program) on `inputs` (random when None) with one accumulator or
    both ("both": fp32 then fp16). `kernels`: the bindings and .cl files its Custom stages run with (a patch
    folder, a folder of binding files or one binding file)."""
    program = blob if isinstance(blob, programs.Program) else load_program(blob)
    kernels = kernel_set(kernels)
    if accumulator not in (*interpreter.ACCUMULATORS, BOTH):
        raise KernelkitError(f"unknown accumulator {accumulator!r}", where="--accumulator",
                             hint="use fp32, fp16 or both")
    arrays = random_inputs(program, seed) if inputs is None else order_inputs(program, inputs)
    accumulators = interpreter.ACCUMULATORS if accumulator == BOTH else (accumulator,)
    runs = {acc: interpreter.run_program(program, arrays, accumulator=acc, poison=poison, kernels=kernels)
            for acc in accumulators}
    first = runs[accumulators[0]]
    report = BlobReport(first.outputs, runs)
    if len(runs) == 2:
        a, b = runs["fp32"], runs["fp16"]
        for name in a.outputs:
            x, y = a.outputs[name].astype(np.float64), b.outputs[name].astype(np.float64)
            with np.errstate(invalid="ignore", over="ignore"):
                peak = float(np.max(np.abs(x))) if x.size else 0.0
                diff = float(np.max(np.abs(x - y))) if x.size else 0.0
            report.spread[name] = diff / peak if peak > 0 else diff
            if _verdict(a, name) != _verdict(b, name):
                report.depends.append(name)
    return report


class BlobRunner(Runner):
    """A compiled blob on the interpreter: outputs keyed by the blob's output names; range findings are
    failures. `kernels`: the bindings and .cl files its Custom stages run with on the SHAVE emulator (a patch
    folder, a folder of binding files or one binding file)."""

    def __init__(self, blob, *, accumulator: str = "fp32", poison: int | None = None, kernels=None):
        self.program = blob if isinstance(blob, programs.Program) else load_program(blob)
        self.accumulator = accumulator
        self.poison = poison
        self.kernels = kernel_set(kernels)
        self.name = f"blob-interpreter-{accumulator}"

    def run(self, inputs) -> RunResult:
        run = interpreter.run_program(self.program, order_inputs(self.program, inputs),
                                      accumulator=self.accumulator, poison=self.poison, kernels=self.kernels)
        return RunResult(self.name, run.outputs, notes=[f"{run.stages} stages"],
                         failures=[f.message() for f in run.findings], detail=run)


def write_outputs(path, outputs: dict[str, np.ndarray]) -> Path:
    """The outputs as an .npz keyed by output name, written atomically."""
    import io

    from kernelkit.core.fsutil import atomic_write

    buffer = io.BytesIO()
    np.savez(buffer, **outputs)
    return atomic_write(Path(path), buffer.getvalue())
