"""`--input-value NAME=V[,V...]`: an input replaced by a constant (Model Optimizer's
`--freeze_placeholder_with_value`).

Here live the parsing, the typed array a value list becomes, and the freeze of an IR Parameter. The ONNX
side (freeze, then fold the control flow that became static) is `kernelkit.ir.onnx_fold`.
"""

from __future__ import annotations

import math

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.ir import elements
from kernelkit.ir.reshape import match_parameters

OPTION = "--input-value"
_HINT = "e.g. --input-value sr=16000 (a scalar) or --input-value bias=0.5,0.25 (a list, flattened in C order)"
_WORDS = {"true": 1, "false": 0}


def parse_input_value(text: str) -> tuple[str, list[float | int]]:
    """`sr=16000` -> ("sr", [16000]); `w=0.5,1e-3` -> ("w", [0.5, 0.001]). Numbers only (true/false too)."""
    name, sep, values_text = text.partition("=")
    name = name.strip()
    if not sep or not name or not values_text.strip():
        raise KernelkitError(f"{text!r} is not NAME=V[,V...]", where=OPTION, hint=_HINT)
    values: list[float | int] = []
    for part in values_text.split(","):
        token = part.strip()
        lowered = token.lower()
        try:
            values.append(_WORDS[lowered] if lowered in _WORDS else int(token))
            continue
        except ValueError:
            pass
        try:
            values.append(float(token))
        except ValueError:
            raise KernelkitError(f"{text!r}: {token!r} is not a number", where=OPTION, hint=_HINT) from None
    return name, values


def parse_input_values(items) -> dict[str, list[float | int]]:
    values: dict[str, list[float | int]] = {}
    for item in items or ():
        name, parsed = parse_input_value(item)
        if name in values:
            raise KernelkitError(f"{name!r} is given twice", where=OPTION, hint="give each input once")
        values[name] = parsed
    return values


def value_shape(name: str, declared: list[int] | None, count: int, override: list[int] | None,
                path=None) -> list[int]:
    """The shape of a frozen input: --input-shape if given, else the declared one. One dynamic dim (-1) is
    taken from the value count; an input of unknown rank takes a scalar or a 1-D list."""
    dims = list(override) if override is not None else (list(declared) if declared is not None else None)
    if dims is None:
        return [] if count == 1 else [count]
    unknown = [i for i, d in enumerate(dims) if d is None or d < 0]
    known = math.prod(d for d in dims if d is not None and d >= 0)
    if len(unknown) == 1 and known and count % known == 0:
        dims[unknown[0]] = count // known
    elif unknown:
        raise KernelkitError(f"the input's shape {_shape_text(dims)} has several dynamic dimensions, so "
                             f"{count} value(s) do not say which shape is meant", path=path,
                             where=f"{OPTION} {name}", hint=f"add --input-shape {name}=D0,D1,... for the frozen value")
    size = math.prod(dims)
    if size != count:
        raise KernelkitError(f"{count} value(s) given, but input {name!r} of shape {_shape_text(dims)} holds "
                             f"{size}", path=path, where=f"{OPTION} {name}",
                             hint=f"give {size} comma-separated value{'s' if size != 1 else ''}, or "
                                  f"--input-shape {name}=... for another shape")
    return dims


def typed_array(name: str, values: list, dtype, dims: list[int], path=None, type_name: str | None = None):
    """The value list as an array of the input's element type, refused when it cannot be represented."""
    dtype = np.dtype(dtype)
    what = type_name or dtype.name
    where = f"{OPTION} {name}"
    if dtype.kind == "b":
        if any(v not in (0, 1) for v in values):
            raise KernelkitError(f"input {name!r} is boolean; {values} holds values other than 0/1", path=path,
                                 where=where, hint="use 0, 1, true or false")
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        for v in values:
            if not float(v).is_integer():
                raise KernelkitError(f"input {name!r} has integer type {what}; {v} is not an integer", path=path,
                                     where=where, hint="give whole numbers for an integer input")
            if not info.min <= int(v) <= info.max:
                raise KernelkitError(f"{v} is outside the range of {what} ({info.min}..{info.max})", path=path,
                                     where=where, hint=f"input {name!r} is {what}")
        values = [int(v) for v in values]
    elif dtype.kind == "f":
        limit = float(np.finfo(dtype).max)
        if any(math.isfinite(float(v)) and abs(float(v)) > limit for v in values):
            raise KernelkitError(f"a value is outside the range of {what} (|v| <= {limit:g})", path=path,
                                 where=where, hint=f"input {name!r} is {what}")
    else:
        raise KernelkitError(f"input {name!r} has element type {what}, which {OPTION} cannot freeze", path=path,
                             where=where, hint="only numeric and boolean inputs can be frozen")
    return np.array(values, dtype=dtype).reshape(dims)


def _shape_text(dims) -> str:
    return "[" + ", ".join("?" if d is None or d < 0 else str(d) for d in dims) + "]"


def freeze_ir(model, values: dict[str, list], shapes: dict[str, list[int]] | None = None) -> list[dict]:
    """Replace each named Parameter of an IR by a Const (its element type, the given values) feeding the same
    consumers. Returns what was frozen: [{"input", "type", "shape", "value"}]."""
    frozen = []
    for param, raw in match_parameters(model, values, OPTION):
        etype = param.attrs.get("element_type", "f32")
        found = elements.lookup(etype)
        dtype = np.dtype(found.numpy) if found and found.numpy else None
        if dtype is None:
            raise KernelkitError(f"input {param.name!r} has element type {etype}, which {OPTION} cannot freeze",
                                 path=model.path, where=f"{OPTION} {param.name}")
        port = param.outputs[0]
        override = _override(shapes, param)
        dims = value_shape(param.name, port.dims, len(raw), override, model.path)
        array = typed_array(param.name, raw, dtype, dims, model.path, etype)
        const = model.add_const(array, model.unique_name(f"{param.name}/frozen"), after=param)
        const.outputs[0].names = port.names
        for consumer, consumer_port in model.consumers(param, port.id):
            model.disconnect(model.input_edge(consumer, consumer_port.id))
            model.connect(const, const.outputs[0].id, consumer, consumer_port.id)
        name = param.name
        model.remove_layer(param)
        const.name = name                  # the frozen input keeps its name, as in the ONNX path
        frozen.append(frozen_record(name, etype, dims, array))
    return frozen


def _override(shapes, param):
    if not shapes:
        return None
    for key in [param.name, *param.outputs[0].names]:
        if key in shapes:
            return shapes[key]
    return None


def frozen_record(name: str, type_name: str, dims: list[int], array) -> dict:
    return {"input": name, "type": type_name, "shape": list(dims), "value": np.asarray(array).ravel().tolist()}


TEST_DATA_FOLDER = "test_data_set_0"      # ONNX's test-case layout: model.onnx beside test_data_set_0/input_N.pb


def known_input_values(model_path) -> dict[str, np.ndarray]:
    """The values the model's own test data feeds its inputs (ONNX's test-case layout: `test_data_set_0/
    input_N.pb` beside the model, each a TensorProto naming its input); {} when there is none."""
    from pathlib import Path

    if model_path is None:
        return {}
    folder = Path(model_path).parent / TEST_DATA_FOLDER
    if not folder.is_dir():
        return {}
    import onnx
    from onnx import numpy_helper

    found = {}
    for path in sorted(folder.glob("input_*.pb")):
        tensor = onnx.TensorProto()
        try:
            tensor.ParseFromString(path.read_bytes())
            if tensor.name:
                found[tensor.name] = numpy_helper.to_array(tensor)
        except Exception:       # noqa: BLE001 - not a tensor (a sequence, a broken file): no known value
            continue
    return found


def suggest_input_value(name: str, dims, known: np.ndarray | None) -> str:
    """The `--input-value NAME=...` that freezes an input: its known value, else a placeholder of its shape."""
    if known is not None:
        values = ",".join(str(v.item()) for v in np.ravel(known))
        return f"{OPTION} {name}={values}"
    size = math.prod(dims) if dims and all(d >= 0 for d in dims) else None
    count = f"{size} value{'s' if size != 1 else ''}" if size is not None else "its values"
    shape = f" of shape [{', '.join(map(str, dims))}]" if dims else ""
    return f"{OPTION} {name}=V0,V1,... ({count}{shape}: the value your application feeds)"
