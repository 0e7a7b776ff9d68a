"""The real MYRIAD plugin (the compiler target's, kernelkit.facts.target) as the oracle of what compiles: a
runner whose result is the compile verdict.

Two questions, cheap first: `query_network` (Python 3.9 venv, ~10 ms a model, no device) says which layers
the plugin's parsers take; a real compile (well under a second with the shim's shortened device search) is the final word, because
the stage type checks (e.g. Greater on S32 inputs) only run there.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.myriad import compile as compile_mod
from kernelkit.myriad import toolchain as toolchain_mod
from kernelkit.runners.base import Runner, RunResult

QUERY_SCRIPT = toolchain_mod.LEGACY_DIR / "query_network.py"
# Layers query_network leaves out of its answer when nothing around them compiles; not verdicts.
_PLUMBING = {"Parameter", "Result", "Constant"}


@dataclass
class Verdict:
    compiled: bool
    unsupported: list[tuple[str, str, str]]   # (layer name, layer type, message)
    message: str                              # the plugin's text ("" when compiled)
    query: dict = field(default_factory=dict)  # {"ok", "error", "layers", "supported", "unsupported", "seconds"}
    blob_size: int | None = None
    compile_seconds: float | None = None

    @property
    def query_says_supported(self) -> bool | None:
        return (not self.query.get("unsupported")) if self.query.get("ok") else None


def query_networks(models: list[Path], config: dict[str, str] | None = None, *,
                   toolchain: toolchain_mod.Toolchain | None = None, timeout: float = 600) -> list[dict]:
    """query_network for each model in one Python 3.9 process; each answer also lists `unsupported`
    [[name, type], ...]: the model's layers (not Parameter/Result/Constant) missing from the answer."""
    tc = toolchain or toolchain_mod.require()
    request = {"config": {**compile_mod.PLATFORM_CONFIG, **(config or {})}, "models": [str(m) for m in models]}
    with tempfile.TemporaryDirectory(prefix="kernelkit-query-") as tmp:
        result_path = Path(tmp) / "result.json"
        try:
            proc = subprocess.run([str(tc.python), str(QUERY_SCRIPT), str(result_path)], input=json.dumps(request),
                                  env=tc.env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise KernelkitError(f"query_network did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0 or not result_path.exists():
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise KernelkitError(f"query_network failed in the legacy toolchain:\n{tail}",
                                 hint="run `kernelkit toolchain setup` again")
        answers = json.loads(result_path.read_text())
    for answer in answers:
        answer["unsupported"] = [[name, kind] for name, kind in answer["layers"]
                                 if kind not in _PLUMBING and name not in answer["supported"]]
    return answers


def _verdict(query: dict, run: compile_mod.ShimRun, blob_size: int | None) -> Verdict:
    if run.ok:
        return Verdict(True, [], "", query, blob_size, run.seconds)
    name, kind = compile_mod.parse_compile_error(run.message)
    if name and not kind:
        kind = dict(map(tuple, query.get("layers", []))).get(name)
    if name:
        unsupported = [(name, kind or "", run.message)]
    else:  # the compile text names no layer: fall back on what query_network missed
        unsupported = [(n, k, "not supported per query_network") for n, k in query.get("unsupported", [])]
    return Verdict(False, unsupported, run.message, query, None, run.seconds)


class PluginRunner(Runner):
    """One real compile of the IR at `model` with the full plugin `config` (compile.make_config); the
    result has no outputs: `detail` is the Verdict, `failures` the plugin's message when it refused. `blob`:
    where the blob is written (kept), else a temporary file. `query`: a query_networks answer for the model, to
    name the layers when the compile message names none."""

    name = "myriad-plugin"

    def __init__(self, model: str | Path, config: dict[str, str], *, blob: Path | None = None,
                 query: dict | None = None, timeout: float = compile_mod.DEFAULT_TIMEOUT,
                 toolchain: toolchain_mod.Toolchain | None = None):
        self.model = Path(model)
        self.config = config
        self.blob = blob
        self.query = query or {}
        self.timeout = timeout
        self.toolchain = toolchain

    def run(self, inputs=()) -> RunResult:
        """`inputs` are not used: compiling judges the model, not values."""
        tc = self.toolchain or toolchain_mod.require()
        with tempfile.TemporaryDirectory(prefix="kernelkit-oracle-") as tmp:
            out = self.blob or Path(tmp) / "model.blob"
            run = compile_mod.run_shim(self.model, out, self.config, timeout=self.timeout, toolchain=tc)
            verdict = _verdict(self.query, run, out.stat().st_size if run.ok else None)
        return RunResult(self.name, failures=[] if verdict.compiled else [verdict.message], detail=verdict)


def plugin_verdicts(models: list[str | Path], config: dict[str, str] | None = None, *, jobs: int = 4,
                    timeout: float = compile_mod.DEFAULT_TIMEOUT) -> list[Verdict]:
    """Verdicts for many models: one batched query_network, then real compiles in `jobs` parallel processes
    (a compile is CPU-bound once the shim cuts its device search short: about as many jobs as cores).
    `config` is passed through (MYRIAD_IGNORE_UNKNOWN_LAYERS is refused). ToolchainUnavailable if not provisioned."""
    tc = toolchain_mod.require()
    paths = [Path(m) for m in models]
    for path in paths:
        compile_mod.check_model(path)
    full_config = compile_mod.make_config(extra=config)
    queries = query_networks(paths, full_config, toolchain=tc)

    def one(index_path):
        index, path = index_path
        return PluginRunner(path, full_config, query=queries[index], timeout=timeout, toolchain=tc).run().detail

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, enumerate(paths)))


def plugin_verdict(model_path: str | Path, config: dict[str, str] | None = None, *,
                   timeout: float = compile_mod.DEFAULT_TIMEOUT) -> Verdict:
    """The real plugin's verdict on one model: query_network, then a real compile (the final word).
    Raises ToolchainUnavailable when the toolchain is not provisioned, KernelkitError for a model the
    target's reader cannot take at all (IR v11, opset > 7: patch it first)."""
    return plugin_verdicts([model_path], config, jobs=1, timeout=timeout)[0]
