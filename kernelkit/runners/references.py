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
from typing import Callable

import numpy as np

from kernelkit.core.errors import KernelkitError


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


OPENVINO_CONST_DTYPES = {"i32": "int32", "i64": "int64", "f32": "float32"}


def _openvino_conf(spec) -> dict:
    """`[reference].openvino`, checked: bad keys are spec bugs and name the key."""
    conf = dict((spec.reference or {}).get("openvino") or {})
    if not conf:
        return conf
    where = "reference.openvino"
    names = input_names(spec)
    feed = conf.get("feed")
    if feed is None:
        conf["feed"] = None
    else:
        if not isinstance(feed, list):
            raise KernelkitError("must be an array of input indices or names", path=spec.path, where=f"{where}.feed",
                                 hint='e.g. feed = [0] or feed = ["src"]')
        indices = []
        for item in feed:
            if isinstance(item, str) and item in names:
                indices.append(names.index(item))
            elif isinstance(item, int) and not isinstance(item, bool) and 0 <= item < max(len(names), 1):
                indices.append(item)
            else:
                raise KernelkitError(f"{item!r} is not an input of this kernel", path=spec.path,
                                     where=f"{where}.feed", hint=f"inputs: {', '.join(names)} (or 0..{len(names) - 1})")
        if len(set(indices)) != len(indices):
            raise KernelkitError("names an input twice", path=spec.path, where=f"{where}.feed")
        conf["feed"] = indices
    entries = conf.get("const_inputs", [])
    if not isinstance(entries, list):
        raise KernelkitError("must be an array", path=spec.path, where=f"{where}.const_inputs",
                             hint='e.g. const_inputs = ["alpha", { value = [2, 3], dtype = "i64" }]')
    consts = []
    for index, entry in enumerate(entries):
        key = f"{where}.const_inputs[{index}]"
        if isinstance(entry, str):
            entry = {"attr": entry}
        if not isinstance(entry, dict) or ("attr" in entry) == ("value" in entry) or \
                set(entry) - {"attr", "value", "default", "dtype"}:
            raise KernelkitError("must be an attribute name or a table with either `attr` (and optional "
                                 "`default`) or `value`, and optional `dtype`", path=spec.path, where=key,
                                 hint='e.g. "alpha", { attr = "alpha", default = 0.2, dtype = "f32" } '
                                      'or { value = [2, 3] }')
        if "attr" in entry and not isinstance(entry["attr"], str):
            raise KernelkitError("`attr` must be a string", path=spec.path, where=key)
        if entry.get("dtype", "i64") not in OPENVINO_CONST_DTYPES:
            raise KernelkitError(f"dtype {entry['dtype']!r} is not one of {', '.join(OPENVINO_CONST_DTYPES)}",
                                 path=spec.path, where=key)
        consts.append(entry)
    conf["const_inputs"] = consts
    frontend = conf.get("frontend")
    if frontend not in (None, "onnx"):
        raise KernelkitError(f"frontend {frontend!r} is not known", path=spec.path, where=f"{where}.frontend",
                             hint='leave it out (an OpenVINO opset op) or write frontend = "onnx"')
    if frontend == "onnx":
        version = conf.get("onnx_opset")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise KernelkitError("the ONNX frontend needs the ONNX opset version as an integer",
                                 path=spec.path, where=f"{where}.onnx_opset", hint="e.g. onnx_opset = 17")
    renames = conf.get("attrs", {})
    if not isinstance(renames, dict) or not all(isinstance(v, str) for v in renames.values()):
        raise KernelkitError("must be a table of case attribute name -> OpenVINO attribute name", path=spec.path,
                             where=f"{where}.attrs", hint='e.g. attrs = { cube_coeff = "cube_coeff" }')
    return conf


def _const_value(spec, entry: dict, values: dict, index: int) -> np.ndarray:
    if "value" in entry:
        raw = entry["value"]
    elif entry["attr"] in values:
        raw = values.pop(entry["attr"])
    elif "default" in entry:
        raw = entry["default"]
    else:
        raise KernelkitError(f"const input {entry['attr']!r} has no value: the case has no attribute "
                             f"{entry['attr']!r}", path=spec.path, where=f"reference.openvino.const_inputs[{index}]",
                             hint="add it to the case's attrs, or give the const input a `default`")
    array = np.asarray(coerce_attr(raw))
    if array.dtype.kind not in "iubf":
        raise KernelkitError(f"const input value {raw!r} is not a number or list of numbers", path=spec.path,
                             where=f"reference.openvino.const_inputs[{index}]")
    dtype = entry.get("dtype") or ("i64" if array.dtype.kind in "iub" else "f32")
    return array.astype(OPENVINO_CONST_DTYPES[dtype])


def _last_line(exc: Exception) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def openvino_model(spec, inputs: list[np.ndarray], attrs: dict, *, embedded=()):
    """The one-op OpenVINO model of `[reference].openvino` for these kernel inputs and case attributes,
    and the inputs it is fed (in order). `embedded`: kernel input indices that become Constants with their
    values instead of Parameters (as a model holds CumSum's axis). Raises ReferenceSkipped / KernelkitError.

    `feed` picks the kernel inputs that become Parameters (default: all, in port order); `const_inputs`
    appends Constants after them, in order, from case attributes (removed from the op's attributes) or
    literal values; every other case attribute is given to the op at construction (`attrs` renames).
    With `frontend = "onnx"` the op is an ONNX node read by OpenVINO's ONNX frontend, for ops OpenVINO
    has no opset op for but converts (Trilu, Hardmax, LayerNormalization, AffineGrid)."""
    conf = _openvino_conf(spec)
    if not conf:
        raise ReferenceSkipped("the spec has no [reference].openvino op")
    order = list(conf["feed"] if conf["feed"] is not None else range(len(inputs)))
    fed = [(inputs[i], i in embedded) for i in order]
    values = dict(attrs or {})
    consts = [_const_value(spec, entry, values, index) for index, entry in enumerate(conf["const_inputs"])]
    renames = conf.get("attrs", {})
    wanted = {renames.get(key, key): coerce_attr(value) for key, value in values.items()}
    if conf.get("frontend") == "onnx":
        model, label = _onnx_frontend_model(conf, fed, consts, wanted)
    else:
        model, label = _opset_model(conf, fed, consts, wanted)
    return model, label, [x for x, constant in fed if not constant]


def openvino_runner(spec, inputs: list[np.ndarray], attrs: dict, *,
                    threads: int | None = None) -> Callable[[], list[np.ndarray]]:
    """Build and compile, once, a one-op model of `[reference].openvino` (openvino_model) for these inputs
    and case attributes on CPU in f32; the returned callable runs one inference. Raises ReferenceSkipped
    when this OpenVINO cannot build or compile the op, KernelkitError when the spec's `openvino` table is
    wrong."""
    model, label, fed = openvino_model(spec, inputs, attrs)
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = _core().compile_model(model, "CPU", config)
    except Exception as exc:
        raise ReferenceSkipped(f"OpenVINO CPU cannot run {label}: {_last_line(exc)}") from None
    request = compiled.create_infer_request()
    feed = [x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32) for x in fed]

    def run() -> list[np.ndarray]:
        result = request.infer(feed)
        return [np.array(result[out]) for out in compiled.outputs]

    return run


def _reference_dtype(x: np.ndarray):
    return np.float32 if x.dtype.kind == "f" else np.int32


def _opset_model(conf: dict, fed: list[tuple[np.ndarray, bool]], consts: list[np.ndarray], wanted: dict):
    import openvino as ov
    import openvino.opset1 as ops1
    from openvino.utils.node_factory import NodeFactory

    op = conf["op"]
    opset = conf.get("opset", "opset1")
    try:
        factory = NodeFactory(opset)
    except Exception:
        raise ReferenceSkipped(f"OpenVINO {ov.__version__} has no opset {opset!r}") from None
    params, args = [], []
    for i, (x, constant) in enumerate(fed):
        if constant:
            args.append(ops1.constant(x.astype(_reference_dtype(x))).output(0))
        else:
            params.append(ops1.parameter(list(x.shape), _reference_dtype(x), name=f"in{i}"))
            args.append(params[-1].output(0))
    args += [ops1.constant(c).output(0) for c in consts]
    try:
        node = factory.create(op, args, wanted)     # attributes the op does not have are ignored
    except Exception as exc:
        # Python values that do not convert (an int for a float list...): type them like the op's own,
        # which needs a node that validates with its default attributes.
        try:
            defaults = factory.create(op, args, {}).get_attributes()
            node = factory.create(op, args, {k: _coerce_like(v, defaults[k]) for k, v in wanted.items()
                                             if k in defaults})
        except Exception:
            raise ReferenceSkipped(f"OpenVINO {opset} cannot create {op}: {_last_line(exc)}") from None
    results = [ops1.result(node.output(i)) for i in range(node.get_output_size())]
    return ov.Model(results, params, f"reference_{op}"), f"{opset}.{op}"


def _onnx_frontend_model(conf: dict, fed: list[tuple[np.ndarray, bool]], consts: list[np.ndarray], wanted: dict):
    """One ONNX node (inputs, then constants as initializers, the first output only) through
    OpenVINO's ONNX frontend: the model OpenVINO itself makes of that op."""
    from onnx import TensorProto, helper, numpy_helper

    op, version = conf["op"], conf["onnx_opset"]
    label = f"ONNX {op}-{version} through OpenVINO's ONNX frontend"
    graph_inputs = [helper.make_tensor_value_info(f"in{i}", TensorProto.FLOAT if x.dtype.kind == "f"
                                                  else TensorProto.INT32, list(x.shape))
                    for i, (x, constant) in enumerate(fed) if not constant]
    embedded = [numpy_helper.from_array(x.astype(_reference_dtype(x)), f"in{i}")
                for i, (x, constant) in enumerate(fed) if constant]
    initializers = embedded + [numpy_helper.from_array(c, f"const{i}") for i, c in enumerate(consts)]
    attributes = {k: v for k, v in wanted.items() if isinstance(v, (int, float, str, list))}
    try:
        node = helper.make_node(op, [f"in{i}" for i in range(len(fed))] + [f"const{i}" for i in range(len(consts))],
                                ["out"], **attributes)
        graph = helper.make_graph([node], f"reference_{op}", graph_inputs,
                                  [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                                  initializer=initializers)
        data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)]).SerializeToString()
        model = _core().read_model(data, b"")
    except Exception as exc:
        raise ReferenceSkipped(f"cannot convert {label}: {_last_line(exc)}") from None
    return model, label


def openvino_reference(spec, inputs: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    """OpenVINO CPU's own implementation of the op (f32), run once: see openvino_runner."""
    return openvino_runner(spec, inputs, attrs)()


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
