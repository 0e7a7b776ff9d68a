"""ONNX's node test data (`onnx.backend.test.case.node`) restated as a kernel's cases: inputs, the expected
outputs ONNX recorded, the layer attributes; cached on disk per onnx version."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import Runner, RunResult, named_outputs
from kernelkit.runners.kernel_case import input_names


@dataclass
class OnnxCase:
    """One ONNX node test that maps onto the kernel: inputs, expected outputs and layer attributes."""

    name: str
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    attrs: dict = field(default_factory=dict)


class OnnxDataRunner(Runner):
    """The outputs ONNX's node test recorded for its own inputs: the reference of an ONNX case."""

    name = "onnx"

    def __init__(self, case: OnnxCase):
        self.case = case

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        return RunResult(self.name, named_outputs(self.case.expected))


@functools.lru_cache(maxsize=1)
def _all_node_cases():
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return collect_testcases(None)


def _node_tests_raw(op_type: str) -> list[dict]:
    """ONNX's node tests of one op type, cached on disk per onnx version (collecting them all takes seconds)."""
    import onnx
    from onnx import helper

    from kernelkit.core.paths import cache_dir
    from kernelkit.core.locking import file_lock

    folder = cache_dir("onnx-node-tests", onnx.__version__)
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", op_type)
    path = folder / f"{stem}.v2.npz"
    with file_lock(folder / f"{stem}.lock"):
        if path.is_file():
            return _load_tests(path)
        meta = []
        for case in _all_node_cases():
            nodes = list(case.model.graph.node)
            if case.kind != "node" or len(nodes) != 1 or nodes[0].op_type != op_type:
                continue
            node = nodes[0]
            attrs, unsupported = {}, []
            for attribute in node.attribute:
                value = helper.get_attribute_value(attribute)
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                elif isinstance(value, (list, tuple)):
                    value = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
                if isinstance(value, (int, float, str)) or (
                        isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value)):
                    attrs[attribute.name] = value
                else:
                    unsupported.append(attribute.name)
            for index, (ins, outs) in enumerate(case.data_sets):
                name = case.name if len(case.data_sets) == 1 else f"{case.name}_{index}"
                ins = [np.asarray(x) for x in ins]
                outs = [np.asarray(y) for y in outs]
                problems = list(unsupported)
                if any(x.dtype == object for x in ins + outs):
                    problems.append("(sequence or optional tensors)")
                    ins, outs = [], []
                meta.append({"name": name, "attrs": attrs, "unsupported_attrs": problems,
                             "inputs": [_plain(x) for x in ins], "outputs": [_plain(y) for y in outs],
                             "n_inputs": len(ins), "n_outputs": len(outs)})
        _save_tests(path, meta)
        return meta


def _save_tests(path: Path, tests: list[dict]) -> None:
    """Test entries (JSON-able fields plus `inputs`/`outputs` array lists) as one npz; best effort."""
    import io

    from kernelkit.core.fsutil import atomic_write

    meta, arrays = [], {}
    for index, entry in enumerate(tests):
        fields = {k: v for k, v in entry.items() if k not in ("inputs", "outputs")}
        fields.update(n_inputs=len(entry["inputs"]), n_outputs=len(entry["outputs"]))
        meta.append(fields)
        for i, x in enumerate(entry["inputs"]):
            arrays[f"{index}/in{i}"] = x
        for i, y in enumerate(entry["outputs"]):
            arrays[f"{index}/out{i}"] = y
    try:
        text = json.dumps(meta, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.array(text), **arrays)
        atomic_write(path, buffer.getvalue())
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written only costs time


def _load_tests(path: Path) -> list[dict]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__meta__"]))
        for index, entry in enumerate(meta):
            entry["inputs"] = [data[f"{index}/in{i}"] for i in range(entry["n_inputs"])]
            entry["outputs"] = [data[f"{index}/out{i}"] for i in range(entry["n_outputs"])]
    return meta


def _plain(array) -> np.ndarray:
    """ONNX's bfloat16/float8 tests (ml_dtypes) as float32: every such value is a float32 value."""
    array = np.asarray(array)
    if array.dtype.kind == "V" and array.dtype.name.startswith(("bfloat16", "float8")):
        return array.astype(np.float32)
    return array


def _onnx_input(array: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    array = _plain(array)
    if array.dtype.kind == "f":
        finite = array[np.isfinite(array)]
        if finite.size and np.abs(finite).max() > 65504:
            return None, "an input exceeds the fp16 range (65504)"
        return array.astype(np.float16), None
    if array.dtype.kind in "iu":
        if array.size and (array.min() < np.iinfo(np.int32).min or array.max() > np.iinfo(np.int32).max):
            return None, "an integer input does not fit int32"
        return array.astype(np.int32), None
    return None, f"input dtype {array.dtype} is neither float nor integer"


def _rank_reason(spec, inputs: list[np.ndarray]) -> str | None:
    """A node test whose data rank the kernel's family does not compute is a skip, not a failure."""
    ranks = getattr(spec, "ranks", None)
    if inputs and ranks is not None and inputs[0].ndim not in ranks:
        return (f"input 0 has rank {inputs[0].ndim}; this kernel handles rank(s) "
                f"{', '.join(map(str, ranks))} (spec.ranks)")
    return None


def onnx_cases(spec) -> tuple[list[OnnxCase], list[tuple[str, str]]]:
    """ONNX node tests of `reference.onnx.op` that the kernel can take, and (name, reason) for the rest."""
    conf = (spec.reference or {}).get("onnx")
    if not conf:
        return [], []
    op = conf["op"]
    if conf.get("adapter"):
        return _adapted_onnx_cases(spec, conf["adapter"])
    mapping = conf.get("attrs")
    n_inputs = len(input_names(spec)) or None
    raw = _node_tests_raw(op)
    if not raw:
        return [], [(f"onnx_{op}", f"onnx has no node tests for op type {op!r}")]
    cases, skipped = [], []
    for entry in raw:
        name = "onnx_" + re.sub(r"^test_", "", entry["name"])
        reason = None
        if entry["unsupported_attrs"]:
            reason = f"not expressible as layer attributes or tensors: {', '.join(entry['unsupported_attrs'])}"
        elif entry["n_outputs"] != 1:
            reason = f"the node has {entry['n_outputs']} outputs; only single-output tests are used"
        elif n_inputs is not None and entry["n_inputs"] != n_inputs:
            reason = f"the node test has {entry['n_inputs']} inputs, the kernel takes {n_inputs}"
        # ONNX omits attributes left at their default; `defaults` gives the layer those values.
        attrs = dict(conf.get("defaults", {}))
        if reason is None:
            for key, value in entry["attrs"].items():
                if mapping is None:
                    attrs[key] = value
                elif key in mapping:
                    attrs[mapping[key]] = value
                else:
                    reason = f"ONNX attribute {key!r} has no IR counterpart in [reference].onnx.attrs"
                    break
            # `values = { exclusive = { "0" = "false", "1" = "true" } }`: ONNX spellings -> IR spellings.
            for key, table in conf.get("values", {}).items():
                if key in attrs and str(attrs[key]) in table:
                    attrs[key] = table[str(attrs[key])]
        inputs = []
        if reason is None:
            for array in entry["inputs"]:
                converted, why = _onnx_input(array)
                if why:
                    reason = why
                    break
                inputs.append(converted)
        if reason is None:
            reason = _rank_reason(spec, inputs)
        expected = [_plain(y) for y in entry["outputs"]]
        if reason is None and expected[0].dtype.kind not in "fiub":
            reason = f"output dtype {expected[0].dtype} is not numeric"
        if reason:
            skipped.append((name, reason))
        else:
            cases.append(OnnxCase(name=name, inputs=inputs, expected=expected, attrs=attrs))
    return cases, skipped


def _adapted_onnx_cases(spec, adapter: str) -> tuple[list[OnnxCase], list[tuple[str, str]]]:
    """`reference.onnx.adapter = "package.module:function"`: function(spec.op) restates ONNX's node tests in
    the layer's terms (constant inputs folded into attributes...) and returns objects with name, inputs,
    attrs and expected, e.g. kernelkit.library.onnx_tests:layer_tests."""
    cases, skipped = [], []
    for test in _adapter_tests(spec, adapter):
        name = "onnx_" + re.sub(r"^test_", "", test["name"])
        inputs = []
        reason = None
        for array in test["inputs"]:
            converted, why = _onnx_input(np.asarray(array))
            if why:
                reason = why
                break
            inputs.append(converted)
        if reason is None:
            reason = _rank_reason(spec, inputs)
        expected = _plain(test["outputs"][0])
        if reason is None and expected.dtype.kind not in "fiub":
            reason = f"output dtype {expected.dtype} is not numeric"
        if reason:
            skipped.append((name, reason))
        else:
            cases.append(OnnxCase(name=name, inputs=inputs, expected=[expected], attrs=dict(test["attrs"])))
    if not cases and not skipped:
        skipped.append((f"onnx_{spec.op}", f"the adapter {adapter} found no ONNX node test for {spec.op}"))
    return cases, skipped


def _adapter_tests(spec, adapter: str) -> list[dict]:
    """The adapter's tests for spec.op, cached on disk by onnx version and the adapter module's source
    (collecting ONNX's tests costs seconds in every process, xdist workers included)."""
    import hashlib
    import importlib
    import inspect

    import onnx

    from kernelkit.core.paths import cache_dir
    from kernelkit.core.locking import file_lock

    module_name, _, function_name = adapter.partition(":")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise KernelkitError(f"cannot load the ONNX adapter {adapter!r}: {exc}", path=spec.path,
                             where="reference.onnx.adapter", hint='write it as "package.module:function"') from None
    try:
        source = Path(inspect.getsourcefile(module)).read_bytes()
    except (TypeError, OSError):
        source = b""
    key = hashlib.sha256(b"\0".join([adapter.encode(), spec.op.encode(), source])).hexdigest()[:24]
    folder = cache_dir("onnx-node-tests", onnx.__version__, "adapted")
    path = folder / f"{key}.npz"
    with file_lock(folder / f"{key}.lock"):
        if source and path.is_file():
            return _load_tests(path)
        tests = [{"name": t.name, "attrs": dict(t.attrs), "inputs": [_plain(x) for x in t.inputs],
                  "outputs": [_plain(t.expected)]} for t in function(spec.op)]
        if source:
            _save_tests(path, tests)
        return tests
