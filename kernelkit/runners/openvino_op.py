"""OpenVINO CPU's own implementation of a kernel's op (f32), as `[reference].openvino` of its kernel.toml
describes the op: a one-op model built from the case, behind the runner protocol."""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import Runner, RunnerSkipped, RunResult, named_outputs
from kernelkit.runners.kernel_case import coerce_attr, input_names


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
    values instead of Parameters (as a model holds CumSum's axis). Raises RunnerSkipped / KernelkitError.

    `feed` picks the kernel inputs that become Parameters (default: all, in port order); `const_inputs`
    appends Constants after them, in order, from case attributes (removed from the op's attributes) or
    literal values; every other case attribute is given to the op at construction (`attrs` renames).
    With `frontend = "onnx"` the op is an ONNX node read by OpenVINO's ONNX frontend, for ops OpenVINO
    has no opset op for but converts (Trilu, Hardmax, LayerNormalization, AffineGrid)."""
    conf = _openvino_conf(spec)
    if not conf:
        raise RunnerSkipped("the spec has no [reference].openvino op")
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


class OpenVINOOpRunner(Runner):
    """OpenVINO CPU's own implementation of the kernel's op (f32): a one-op model of `[reference].openvino`
    (openvino_model) at one case's attributes. RunnerSkipped when this OpenVINO cannot build or compile the op,
    KernelkitError when the spec's `openvino` table is wrong."""

    name = "openvino"

    def __init__(self, spec, attrs: dict, *, threads: int | None = None):
        self.spec = spec
        self.attrs = attrs
        self.threads = threads

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        return RunResult(self.name, named_outputs(self.compiled(inputs)()))

    def compiled(self, inputs: list[np.ndarray]) -> Callable[[], list[np.ndarray]]:
        """Build and compile the model once for these inputs; the callable runs one inference on them (what a
        benchmark times)."""
        model, label, fed = openvino_model(self.spec, inputs, self.attrs)
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        try:
            compiled = _core().compile_model(model, "CPU", config)
        except Exception as exc:
            raise RunnerSkipped(f"OpenVINO CPU cannot run {label}: {_last_line(exc)}") from None
        request = compiled.create_infer_request()
        feed = [x.astype(np.float32) if x.dtype.kind == "f" else x.astype(np.int32) for x in fed]

        def infer() -> list[np.ndarray]:
            result = request.infer(feed)
            return [np.array(result[out]) for out in compiled.outputs]

        return infer


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
        raise RunnerSkipped(f"OpenVINO {ov.__version__} has no opset {opset!r}") from None
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
            raise RunnerSkipped(f"OpenVINO {opset} cannot create {op}: {_last_line(exc)}") from None
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
        raise RunnerSkipped(f"cannot convert {label}: {_last_line(exc)}") from None
    return model, label


def openvino_version() -> str | None:
    try:
        import openvino as ov

        return ov.__version__
    except Exception:  # pragma: no cover - openvino is a dependency
        return None
