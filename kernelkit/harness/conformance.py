"""The conformance runner: for each kernel and case, build once, emulate in fp16, compare with every reference.

Statuses, per reference and per case:
  PASS  every output within tolerance      FAIL  an output out of tolerance (or wrong shape/dtype)
  SKIP  the reference cannot run here       ERROR the emulator crashed, a device check failed, a build or
                                                  a configured reference broke
A case is ERROR if anything errored, else FAIL if any reference failed, else PASS if at least one
reference passed, else SKIP: a case no reference could check never passes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners import references as refs
from kernelkit.runners.compare import DEFAULT_ATOL, DEFAULT_RTOL, OutputComparison, compare
from kernelkit.harness.inputs import generate_inputs

PASS, FAIL, SKIP, ERROR = "PASS", "FAIL", "SKIP", "ERROR"
STATUSES = (PASS, FAIL, SKIP, ERROR)

# Reference names, in report order.
NUMPY, EMULATOR_FP32, OPENVINO, ONNX = "numpy", "emulator-fp32", "openvino", "onnx"


@dataclass
class ReferenceResult:
    name: str
    status: str
    reason: str = ""
    outputs: list[OutputComparison] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "outputs": [o.to_dict() for o in self.outputs]}


@dataclass
class CaseResult:
    kernel: str
    case: str
    source: str                      # "spec" or "onnx"
    status: str
    message: str = ""
    references: list[ReferenceResult] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    spec_path: str = ""
    data_file: str | None = None     # npz with inputs, outputs and reference outputs
    duration: float = 0.0            # seconds; kept out of the JSON report so runs diff cleanly
    reproduce: str = ""

    @property
    def id(self) -> str:
        return f"{self.kernel}::{self.case}"

    def to_dict(self) -> dict:
        return {"id": self.id, "kernel": self.kernel, "case": self.case, "source": self.source,
                "status": self.status, "message": self.message, "findings": list(self.findings),
                "spec": self.spec_path, "data_file": self.data_file, "reproduce": self.reproduce,
                "references": [r.to_dict() for r in self.references]}


@dataclass
class RunResult:
    cases: list[CaseResult]
    environment: dict
    duration: float = 0.0

    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for c in self.cases:
            counts[c.status] += 1
        return counts

    @property
    def ok(self) -> bool:
        return not any(c.status in (FAIL, ERROR) for c in self.cases)

    def to_dict(self) -> dict:
        return {"format": "kernelkit-conformance/1", "environment": self.environment,
                "summary": {"total": len(self.cases), **{s.lower(): n for s, n in self.counts().items()}},
                "cases": [c.to_dict() for c in self.cases]}


# ------------------------------------------------------------------------------------ planning

@dataclass
class PlannedCase:
    """A case ready to run: from the spec's [[cases]] or from ONNX node test data."""

    spec: object
    name: str
    source: str
    case: object | None = None
    onnx: refs.OnnxCase | None = None
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.spec.name}::{self.name}"

    @property
    def attrs(self) -> dict:
        if self.onnx is not None:
            return dict(self.onnx.attrs)
        return dict(self.case.attrs) if self.case is not None else {}

    def inputs(self) -> list[np.ndarray]:
        if self.onnx is not None:
            return [x.copy() for x in self.onnx.inputs]
        return generate_inputs(self.case, path=self.spec.path)

    def output_shapes(self, inputs: list[np.ndarray]) -> list[tuple]:
        if self.onnx is not None:
            return [tuple(y.shape) for y in self.onnx.expected]
        if self.case.output_shape is not None:
            return [tuple(self.case.output_shape)]
        return [tuple(inputs[0].shape)] if inputs else []

    def tolerance(self) -> tuple[float, float]:
        if self.onnx is not None:
            conf = self.spec.reference.get("onnx", {})
            return float(conf.get("atol", DEFAULT_ATOL)), float(conf.get("rtol", DEFAULT_RTOL))
        atol = self.case.atol if self.case.atol is not None else DEFAULT_ATOL
        rtol = self.case.rtol if self.case.rtol is not None else DEFAULT_RTOL
        return float(atol), float(rtol)


def discover_kernels(paths=None) -> list[Path]:
    """Kernel folders: the given ones (a folder with kernel.toml, a kernel.toml, or a folder of kernel
    folders), else every folder of kernels/."""
    from kernelkit.core.fsutil import is_leftover
    from kernelkit.core.paths import KERNELS_DIR
    from kernelkit.kernel.spec import SPEC_FILE

    if not paths:
        if not KERNELS_DIR.is_dir():
            raise KernelkitError("no kernels folder", path=KERNELS_DIR, hint="pass kernel folders explicitly")
        return sorted(p.parent for p in KERNELS_DIR.glob(f"*/{SPEC_FILE}") if not is_leftover(p.parent.name))
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == SPEC_FILE:
            found.append(path.parent)
        elif (path / SPEC_FILE).is_file():
            found.append(path)
        elif path.is_dir() and list(path.glob(f"*/{SPEC_FILE}")):
            found.extend(sorted(p.parent for p in path.glob(f"*/{SPEC_FILE}") if not is_leftover(p.parent.name)))
        elif not path.exists():
            raise KernelkitError("not found", path=path, hint="pass a kernel folder (one with a kernel.toml)")
        else:
            raise KernelkitError(f"no {SPEC_FILE} here or in its subfolders", path=path,
                                 hint="pass a kernel folder (one with a kernel.toml)")
    unique = []
    for p in found:
        if p.resolve() not in [u.resolve() for u in unique]:
            unique.append(p)
    return unique


def matches(case_id: str, pattern: str | None) -> bool:
    """-k: a glob when it has *, ? or [, else a substring of "kernel::case" (plan() prefers an exact id)."""
    if not pattern:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(case_id, pattern)
    return pattern in case_id


def plan_kernel(spec, *, with_onnx: bool = True) -> list[PlannedCase]:
    planned = [PlannedCase(spec, c.name, "spec", case=c) for c in spec.cases]
    if with_onnx and spec.reference.get("onnx"):
        cases, skipped = refs.onnx_cases(spec)
        taken = {p.name for p in planned}
        for oc in cases:
            if oc.name not in taken:
                planned.append(PlannedCase(spec, oc.name, "onnx", onnx=oc))
        for name, reason in skipped:
            if name not in taken:
                planned.append(PlannedCase(spec, name, "onnx", skip_reason=f"ONNX node test skipped: {reason}"))
    return planned


def plan(kernel_dirs=None, *, pattern: str | None = None) -> list[PlannedCase]:
    from kernelkit.kernel.spec import load_spec

    specs = [load_spec(d) for d in discover_kernels(kernel_dirs)]
    names: dict[str, Path] = {}
    for spec in specs:
        if spec.name in names and names[spec.name] != spec.dir:
            raise KernelkitError(f"kernel name {spec.name!r} is also used by {names[spec.name]}", path=spec.path,
                                 where="kernel.name", hint="kernel names must be unique within one run")
        names[spec.name] = spec.dir
    selected = [p for spec in specs for p in plan_kernel(spec) if matches(p.id, pattern)]
    # A full case id selects that case alone, although it is also a substring of longer ids.
    return [p for p in selected if p.id == pattern] or selected


# ------------------------------------------------------------------------------------ building

class Builds:
    """Builds each kernel once per process into a cache folder; a file lock keeps xdist workers apart."""

    def __init__(self):
        self._done: dict[Path, object] = {}

    def get(self, spec):
        key = Path(spec.dir).resolve()
        if key not in self._done:
            try:
                self._done[key] = self._build(spec)
            except KernelkitError as exc:
                self._done[key] = exc
        result = self._done[key]
        if isinstance(result, KernelkitError):
            raise result
        return result

    @staticmethod
    def _build(spec):
        from kernelkit.kernel.builder.build import build_kernel
        from kernelkit.core.paths import cache_dir
        from kernelkit.core.locking import file_lock

        digest = hashlib.sha256(str(Path(spec.dir).resolve()).encode()).hexdigest()[:12]
        root = cache_dir("conformance", "builds")
        out_dir = root / f"{spec.name}-{digest}"
        with file_lock(root / f"{spec.name}-{digest}.lock"):
            return build_kernel(spec.dir, out_dir, force=True)


# ------------------------------------------------------------------------------------ running

DEFAULT_TIMEOUT = 60.0   # seconds per emulation; a kernel that never finishes is an ERROR, not a hang


def _emulate(build, spec, inputs, attrs, output_shapes, precision, timeout, arithmetic="fp32"):
    """The kernel as `kernelkit patch` binds it (rank-0/1 tensors as [1, N]; an element-wise kernel's 2-D
    [N, C] tensors as [1, N*C])."""
    from kernelkit.kernel.emulator.run import emulate

    return emulate(build.xml_path, spec.op, inputs, attrs=attrs, output_shapes=output_shapes, precision=precision,
                   arithmetic=arithmetic, timeout=timeout, as_patched=True, fold_batch=spec.family == "elementwise")



def _compare_all(name: str, actual: list[np.ndarray], expected: list[np.ndarray], atol, rtol) -> ReferenceResult:
    if len(expected) != len(actual):
        return ReferenceResult(name, FAIL, f"the reference gives {len(expected)} output(s), the kernel "
                                           f"{len(actual)}")
    outputs = [compare(a, e, atol=atol, rtol=rtol, name=f"out{i}") for i, (a, e) in enumerate(zip(actual, expected))]
    failed = [o for o in outputs if not o.passed]
    if failed:
        return ReferenceResult(name, FAIL, "; ".join(f"{o.name}: {o.reason}" for o in failed), outputs)
    return ReferenceResult(name, PASS, "", outputs)


def _int_output(spec) -> bool:
    output = getattr(spec, "output", None)
    return getattr(output, "dtype", "f16") == "i32"


def _integral(array: np.ndarray) -> np.ndarray:
    """A float reference of an i32 output (numpy expressions compute in float64) compares as integers
    when every value is a whole number; otherwise it stays float and the dtype check reports it."""
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.array_equal(array, np.round(array)):
        return array.astype(np.int64)
    return array


def _crash_text(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _reproduce(planned: PlannedCase) -> str:
    return f"kernelkit test {planned.spec.dir} -k '{planned.id}'"


def run_case(planned: PlannedCase, builds: Builds, *, data_dir: Path | None = None,
             timeout: float = DEFAULT_TIMEOUT, arithmetic: str = "fp32") -> CaseResult:
    """arithmetic: how the kernel under test computes ("fp16": real half arithmetic, see emulate())."""
    spec = planned.spec
    start = time.perf_counter()
    result = CaseResult(spec.name, planned.name, planned.source, SKIP, spec_path=str(spec.path),
                        reproduce=_reproduce(planned))
    try:
        _run_case(planned, builds, result, data_dir, timeout, arithmetic)
    finally:
        result.duration = time.perf_counter() - start
    return result


def _run_case(planned: PlannedCase, builds: Builds, result: CaseResult, data_dir: Path | None,
              timeout: float, arithmetic: str) -> None:
    spec = planned.spec
    if planned.skip_reason:
        result.message = planned.skip_reason
        return
    try:
        inputs = planned.inputs()
    except KernelkitError as exc:
        result.status, result.message = ERROR, f"cannot generate inputs: {exc}"
        return
    try:
        build = builds.get(spec)
    except KernelkitError as exc:
        result.status, result.message = ERROR, f"build failed: {exc}"
        result.findings = [str(f) for f in getattr(exc, "findings", None) or [] if f.is_error]
        return
    attrs = planned.attrs
    output_shapes = planned.output_shapes(inputs)
    atol, rtol = planned.tolerance()
    saved = {f"in{i}": x for i, x in enumerate(inputs)}
    try:
        emulated = _emulate(build, spec, inputs, attrs, output_shapes, "fp16", timeout, arithmetic)
    except KernelkitError as exc:
        findings = getattr(exc, "findings", None) or []
        result.status = ERROR
        if findings:
            first = getattr(findings[0], "message", str(findings[0]))
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            result.message = f"device check failed: {first}{more}"
        else:
            result.message = f"emulation failed: {exc}"
        result.findings = [str(f) for f in findings]
        _save(result, data_dir, saved)
        return
    except Exception as exc:  # the emulator crashed: report it, keep the run going
        result.status, result.message = ERROR, f"emulator crashed: {_crash_text(exc)}"
        _save(result, data_dir, saved)
        return
    actual = [np.asarray(o) for o in emulated.outputs]
    result.findings = [str(f) for f in getattr(emulated, "findings", []) or []]
    saved.update({f"out{i}": y for i, y in enumerate(actual)})

    runners: list[tuple[str, Callable[[], list[np.ndarray]]]]
    if planned.onnx is not None:
        runners = [(ONNX, lambda: list(planned.onnx.expected))]
    else:
        runners = [
            (NUMPY, lambda: refs.numpy_reference(spec, inputs, attrs)),
            (EMULATOR_FP32,
             lambda: list(_emulate(build, spec, inputs, attrs, output_shapes, "fp32", timeout).outputs)),
            (OPENVINO, lambda: refs.openvino_reference(spec, inputs, attrs)),
        ]
    not_compared = getattr(planned.case, "not_compared", None) or {}
    for name, produce in runners:
        if name in not_compared:
            result.references.append(ReferenceResult(name, SKIP, f"not compared: {not_compared[name]}"))
            continue
        try:
            expected = [np.asarray(e) for e in produce()]
        except refs.ReferenceSkipped as exc:
            result.references.append(ReferenceResult(name, SKIP, str(exc)))
            continue
        except KernelkitError as exc:
            result.references.append(ReferenceResult(name, ERROR, str(exc)))
            continue
        except Exception as exc:
            result.references.append(ReferenceResult(name, ERROR, f"crashed: {_crash_text(exc)}"))
            continue
        expected = [_integral(e) if i == 0 and _int_output(spec) else e for i, e in enumerate(expected)]
        saved.update({f"ref_{name}_out{i}": e for i, e in enumerate(expected)})
        result.references.append(_compare_all(name, actual, expected, atol, rtol))

    statuses = [r.status for r in result.references]
    if ERROR in statuses:
        result.status = ERROR
    elif FAIL in statuses:
        result.status = FAIL
    elif PASS in statuses:
        result.status = PASS
    else:
        result.status = SKIP
    bad = [r for r in result.references if r.status in (ERROR, FAIL)]
    if bad:
        result.message = "; ".join(f"{r.name}: {r.reason}" for r in bad)
    elif result.status == SKIP:
        result.message = "no reference could run: " + "; ".join(f"{r.name}: {r.reason}" for r in result.references)
    _save(result, data_dir, saved)


def _save(result: CaseResult, data_dir: Path | None, arrays: dict) -> None:
    """Inputs, outputs and reference outputs of the case, for reproduction outside the harness."""
    if data_dir is None:
        return
    from kernelkit.core.fsutil import atomic_write

    path = Path(data_dir) / result.kernel / f"{result.case}.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(path, buffer.getvalue())
    result.data_file = str(path)


def environment() -> dict:
    """Versions of everything that produced the numbers (no times, no host names: reports diff cleanly)."""
    from kernelkit import __version__

    env = {"kernelkit": __version__, "numpy": np.__version__, "openvino": refs.openvino_version()}
    try:
        import onnx

        env["onnx"] = onnx.__version__
    except Exception:  # pragma: no cover - onnx is a dependency
        env["onnx"] = None
    try:
        import pyopencl as cl

        env["opencl"] = sorted(f"{p.name} {p.version}" for p in cl.get_platforms())
    except Exception as exc:
        env["opencl"] = f"unavailable: {exc}"
    return env


def run(kernel_dirs=None, *, pattern: str | None = None, data_dir: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT, fail_fast: bool = False, arithmetic: str = "fp32",
        on_result: Callable[[int, int, CaseResult], None] | None = None,
        on_start: Callable[[int, int, PlannedCase], None] | None = None) -> RunResult:
    """Run the conformance cases of `kernel_dirs` (default: all of kernels/) matching `pattern`.
    fail_fast: stop after the first case that fails or errors (the result holds the cases run)."""
    start = time.perf_counter()
    planned = plan(kernel_dirs, pattern=pattern)
    if pattern and not planned:
        raise KernelkitError(f"no case matches -k {pattern!r}", hint="case ids look like kernel::case")
    builds = Builds()
    results = []
    for index, item in enumerate(planned):
        if on_start:
            on_start(index, len(planned), item)
        outcome = run_case(item, builds, data_dir=data_dir, timeout=timeout, arithmetic=arithmetic)
        results.append(outcome)
        if on_result:
            on_result(index + 1, len(planned), outcome)
        if fail_fast and outcome.status in (FAIL, ERROR):
            break
    return RunResult(results, {**environment(), "arithmetic": arithmetic}, time.perf_counter() - start)
