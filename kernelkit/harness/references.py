"""Reference implementations a kernel's emulated output is compared with.

Each reference takes the case's inputs (already fp16-rounded where float) and returns a list of outputs, or
raises ReferenceSkipped when it cannot run here (not configured, op unknown to the backend): a skip carries
its reason and is never counted as a pass. A reference that is configured but crashes is a spec bug and is
reported as an error by the runner.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import KernelkitError


class ReferenceSkipped(Exception):
    """The reference cannot run for this case; str(exc) is the reason."""


def input_names(spec) -> list[str]:
    """Names of the kernel's inputs as the numpy expression sees them."""
    names = []
    for index, item in enumerate(getattr(spec, "inputs", None) or []):
        name = getattr(item, "name", None) or (item.get("name") if isinstance(item, dict) else None)
        names.append(name or f"x{index}")
    return names


def coerce_attr(value):
    """IR attributes may arrive as strings ("0.5", "1,2"): give numpy and OpenVINO numbers."""
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            parts = [coerce_attr(p) for p in text.split(",")]
            return parts if all(isinstance(p, (int, float)) for p in parts) else value
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    return value


def _as_outputs(value, where: str) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        return [np.asarray(v) for v in value]
    if value is None:
        raise ValueError(f"{where} returned None")
    return [np.asarray(value)]


# ---------------------------------------------------------------- numpy (float64)

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
        path = Path(spec.dir) / ref["module"]
        if not path.is_file():
            raise KernelkitError("reference module not found", path=path, where="[reference].module",
                                 hint="module is a path relative to the kernel folder")
        try:
            module = _load_reference_module(path)
            with np.errstate(all="ignore"):
                result = module.reference(wide, values)
            return _as_outputs(result, "reference()")
        except Exception as exc:
            raise KernelkitError(f"reference() failed: {type(exc).__name__}: {exc}", path=path,
                                 where="reference(inputs, attrs)") from None
    raise ReferenceSkipped("the spec has no [reference] numpy expression or module")


# ---------------------------------------------------------------- OpenVINO CPU (f32)

@functools.lru_cache(maxsize=1)
def _core():
    import openvino as ov

    return ov.Core()


def _coerce_like(value, default):
    value = coerce_attr(value)
    if isinstance(default, bool):
        return value if isinstance(value, bool) else bool(value)
    if isinstance(default, int) and isinstance(value, (int, float)):
        return int(value)
    if isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    if isinstance(default, list):
        items = value if isinstance(value, list) else [value]
        if default and isinstance(default[0], float):
            return [float(v) for v in items]
        return [int(v) if isinstance(v, (int, float)) else v for v in items]
    if isinstance(default, str):
        return str(value)
    return value


def openvino_reference(spec, inputs: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """One-op ov.Model of `reference.openvino.op` from `opset`, compiled for CPU in f32."""
    conf = (spec.reference or {}).get("openvino")
    if not conf:
        raise ReferenceSkipped("the spec has no [reference].openvino op")
    import openvino as ov
    from openvino.utils.node_factory import NodeFactory

    op = conf["op"]
    opset = conf.get("opset", "opset1")
    try:
        factory = NodeFactory(opset)
    except Exception:
        raise ReferenceSkipped(f"OpenVINO {ov.__version__} has no opset {opset!r}") from None
    import openvino.opset1 as ops1

    params = [ops1.parameter(list(x.shape), np.float32 if x.dtype.kind == "f" else np.int32, name=f"in{i}")
              for i, x in enumerate(inputs)]
    args = [p.output(0) for p in params]
    # Attributes that OpenVINO takes as constant inputs (e.g. Swish beta): `const_inputs = ["beta"]`.
    values = dict(attrs or {})
    for name in conf.get("const_inputs", []):
        if name not in values:
            raise ReferenceSkipped(f"const input {name!r} has no value in this case's attrs")
        value = np.asarray(coerce_attr(values.pop(name)))
        value = value.astype(np.int64 if value.dtype.kind in "iub" else np.float32)
        args.append(ops1.constant(value).output(0))
    renames = conf.get("attrs", {})
    wanted = {renames.get(key, key): coerce_attr(value) for key, value in values.items()}
    try:
        node = factory.create(op, args, wanted)     # attributes the op does not have are ignored
    except Exception as exc:
        # Python values that do not convert (an int for a float list...): type them like the op's own.
        try:
            defaults = factory.create(op, args, {}).get_attributes()
            node = factory.create(op, args, {k: _coerce_like(v, defaults[k]) for k, v in wanted.items()
                                             if k in defaults})
        except Exception:
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise ReferenceSkipped(f"OpenVINO {opset} cannot create {op}: {lines[-1] if lines else exc}") from None
    try:
        model = ov.Model([ops1.result(node.output(i)) for i in range(node.get_output_size())], params,
                         f"reference_{op}")
        compiled = _core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise ReferenceSkipped(f"OpenVINO CPU cannot run {opset}.{op}: {lines[-1] if lines else exc}") from None
    feed = [x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32) for x in inputs]
    result = compiled(feed)
    return [np.array(result[out]) for out in compiled.outputs]


def openvino_version() -> str | None:
    try:
        import openvino as ov

        return ov.__version__
    except Exception:  # pragma: no cover - openvino is a dependency
        return None


# ---------------------------------------------------------------- ONNX node test data

@dataclass
class OnnxCase:
    """One ONNX node test that maps onto the kernel: inputs, expected outputs and layer attributes."""

    name: str
    inputs: list[np.ndarray]
    expected: list[np.ndarray]
    attrs: dict = field(default_factory=dict)


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

    from ..paths import cache_dir
    from .locking import file_lock

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

    from ..fsutil import atomic_write

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

    from ..paths import cache_dir
    from .locking import file_lock

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
