"""A kernel's numpy reference (float64): `[reference].numpy` (an expression) or `[reference].module` (a file
with reference(inputs, attrs)) of its kernel.toml, behind the runner protocol."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import named_file
from kernelkit.runners.base import Runner, RunnerSkipped, RunResult, named_outputs
from kernelkit.runners.kernel_case import coerce_attr, input_names


class NumpyRunner(Runner):
    """The spec's numpy reference at one case's attributes. A configured reference that crashes is a spec bug:
    KernelkitError; a spec without one: RunnerSkipped."""

    name = "numpy"

    def __init__(self, spec, attrs: dict):
        self.spec = spec
        self.attrs = attrs

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        return RunResult(self.name, named_outputs(numpy_reference(self.spec, inputs, self.attrs)))


def _as_outputs(value, where: str) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        return [np.asarray(v) for v in value]
    if value is None:
        raise ValueError(f"{where} returned None")
    return [np.asarray(value)]


def _load_reference_module(path: Path):
    name = f"kernelkit_reference_{abs(hash(str(path.resolve())))}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return module


def numpy_reference(spec, inputs: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """float64 numpy: `reference.numpy` (an expression) or `reference.module` (a file with reference())."""
    ref = spec.reference or {}
    wide = [x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64) for x in inputs]
    values = {k: coerce_attr(v) for k, v in (attrs or {}).items()}
    if "numpy" in ref:
        names = input_names(spec) or (["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))])
        scope = {"np": np, **values, **dict(zip(names, wide))}
        try:
            with np.errstate(all="ignore"):
                result = eval(compile(ref["numpy"], f"{spec.path}:[reference].numpy", "eval"),
                              {"__builtins__": {}}, scope)
        except Exception as exc:
            raise KernelkitError(f"the numpy reference failed: {type(exc).__name__}: {exc}", path=spec.path,
                                 where="[reference].numpy",
                                 hint=f"the expression sees np, the inputs {names} and the case attributes "
                                      f"{sorted(values)}") from None
        return [np.broadcast_to(o, inputs[0].shape) if o.ndim == 0 and inputs else o
                for o in _as_outputs(result, "the numpy expression")]
    if "module" in ref:
        path = named_file(spec.dir, ref["module"], source=spec.path, where="[reference].module",
                          what="reference module")
        try:
            module = _load_reference_module(path)
            with np.errstate(all="ignore"):
                result = module.reference(wide, values)
            return _as_outputs(result, "reference()")
        except Exception as exc:
            raise KernelkitError(f"reference() failed: {type(exc).__name__}: {exc}", path=path,
                                 where="reference(inputs, attrs)") from None
    raise RunnerSkipped("the spec has no [reference] numpy expression or module")
