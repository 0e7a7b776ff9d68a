"""TFLite, TensorFlow (frozen .pb, SavedModel folder) and PaddlePaddle input: OpenVINO's own frontends, which
read these files without TensorFlow or Paddle installed, convert them in a private temp folder into IR bytes.

PaddlePaddle 3 saves PIR programs (`.json` beside the `.pdiparams`), which OpenVINO 2026.4's Paddle frontend does
not read (it reads `.pdmodel` programs only: checked, its `supported()` answers no). Such a model goes through
paddle2onnx (Paddle's own converter, which needs paddlepaddle) from PATH into ONNX, then OpenVINO's ONNX reader.

The source's tensor names become the IR's layer names: OpenVINO's TFLite frontend keeps them as tensor names
but names the layers by tensor index (`163` for `regressors`), and a 2021.4 blob (IR v10) names its inputs
and outputs after layers. A TFLite custom op no frontend converts is named, with the tensor it writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import read_input, regular_file
from kernelkit.ir.onnx_import import ConversionFailed, openvino_error_text

# suffix (or folder) -> (OpenVINO frontend, what the user calls it)
FORMATS = {".tflite": ("tflite", "TFLite"), ".pb": ("tf", "TensorFlow frozen graph"),
           "savedmodel": ("tf", "TensorFlow SavedModel"), ".pdmodel": ("paddle", "PaddlePaddle"),
           ".json": ("paddle", "PaddlePaddle 3 (PIR .json)")}
# A PIR program's JSON opens with its magic ({"base_code":{"magic":"pir",...}); any other .json is no model.
_PIR_MAGIC = re.compile(rb'"magic"\s*:\s*"pir"')
# paddle2onnx imports paddle and converts small models in seconds; a hung one must not hang patch.
PADDLE2ONNX_SECONDS = 900

_NO_TRANSLATOR = re.compile(r"No translator found for (\S+) node")


def source_format(path: Path) -> str | None:
    """"tflite", "tf" or "paddle" for a file or SavedModel folder these frontends read, else None."""
    if path.is_dir():
        return "tf" if (path / "saved_model.pb").is_file() else None
    if path.suffix.lower() == ".json":
        return "paddle" if is_pir_program(path) else None
    entry = FORMATS.get(path.suffix.lower())
    return entry[0] if entry else None


def is_pir_program(path: Path) -> bool:
    """Whether a .json file is a PaddlePaddle PIR program: its magic in the first 4 KiB."""
    try:
        with open(path, "rb") as handle:
            return bool(_PIR_MAGIC.search(handle.read(4096)))
    except OSError:
        return False


def _what(path: Path) -> str:
    return FORMATS["savedmodel" if path.is_dir() else path.suffix.lower()][1]


def convert_framework(path: Path) -> tuple[bytes, bytes, str]:
    """(IR xml, IR weights, source format) of a TFLite / TensorFlow / Paddle model."""
    import openvino as ov

    path = Path(path)
    fmt = source_format(path)
    graph = None
    if fmt == "tflite":
        from kernelkit.ir.tflite_file import read_graph

        data = read_input(path, limits.WEIGHTS_BYTES.value(), what="TFLite model", limit=limits.WEIGHTS_BYTES)
        graph = read_graph(data, path)     # refuses a file that is not a TFLite flatbuffer before OpenVINO sees it
    elif path.is_dir():                                # a SavedModel: its graph and variables count
        files = [path / "saved_model.pb"] + sorted(p for p in (path / "variables").glob("*") if not p.is_dir())
        size = sum(regular_file(p, what="SavedModel file").st_size for p in files)
        limits.WEIGHTS_BYTES.check(size, "the SavedModel's graph and variables", path=path)
    else:
        size = regular_file(path, what=f"{_what(path)} model").st_size
        weights = path.with_suffix(".pdiparams")      # Paddle's weights, which OpenVINO reads from beside it
        if fmt == "paddle" and weights.exists():
            size += regular_file(weights, what="PaddlePaddle weights (.pdiparams)").st_size
        limits.WEIGHTS_BYTES.check(size, f"the {_what(path)} model", path=path)
    errors: list[KernelkitError] = []
    kwargs = {}
    if graph is not None:
        from kernelkit.ir.tflite_custom_ops import extensions

        kwargs["extension"] = extensions(graph, path, errors) or None
    with tempfile.TemporaryDirectory(prefix="kernelkit-import-") as tmp:
        readable = paddle_to_onnx(path, Path(tmp)) if path.suffix.lower() == ".json" else path
        try:
            converted = ov.convert_model(str(readable), **{k: v for k, v in kwargs.items() if v})
        except Exception as exc:  # OpenVINO raises several unrelated types for a bad model
            if errors:
                raise errors[0] from None
            raise _conversion_error(path, fmt, openvino_error_text(exc), graph) from None
        try:
            _name_layers_after_tensors(converted, graph, fmt)
        except UnicodeDecodeError:
            raise KernelkitError(f"an input or output name of this {_what(path)} model is not UTF-8 text",
                                 path=path, hint="the file is damaged: re-export the model") from None
        xml_path = Path(tmp) / "kernelkit-model.xml"
        ov.save_model(converted, str(xml_path), compress_to_fp16=False)
        return xml_path.read_bytes(), xml_path.with_suffix(".bin").read_bytes(), fmt


def paddle_to_onnx(path: Path, out_dir: Path) -> Path:
    """A PaddlePaddle 3 PIR program (`path`, its `.pdiparams` beside it) converted by paddle2onnx into
    `out_dir`/model.onnx, with no ONNX optimiser run (kernelkit folds constants itself; paddle2onnx's optimisers
    would install onnxruntime on the fly). ConversionFailed, with paddle2onnx's last words, when it cannot."""
    tool = shutil.which("paddle2onnx")
    if tool is None:
        raise ConversionFailed(
            "a PaddlePaddle 3 (PIR) .json model: OpenVINO's Paddle frontend reads only .pdmodel programs, and "
            "kernelkit converts .json ones with paddle2onnx, which is not on PATH", path=path,
            hint="pip install paddlepaddle paddle2onnx packaging (a separate venv is fine: put its bin/ on PATH); "
                 f"or convert it yourself: paddle2onnx --model_dir {path.parent} --model_filename {path.name} "
                 f"--params_filename {path.with_suffix('.pdiparams').name} --save_file {path.stem}.onnx, and pass "
                 "the .onnx")
    out = out_dir / "model.onnx"
    cmd = [tool, "--model_dir", str(path.resolve().parent), "--model_filename", path.name, "--save_file", str(out),
           "--optimize_tool", "None"]
    if path.with_suffix(".pdiparams").is_file():
        cmd += ["--params_filename", path.with_suffix(".pdiparams").name]
    env = {**os.environ, "POLYGRAPHY_AUTOINSTALL_DEPS": "0"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PADDLE2ONNX_SECONDS, env=env,
                              cwd=out_dir)
    except subprocess.TimeoutExpired:
        raise ConversionFailed(f"paddle2onnx did not finish within {PADDLE2ONNX_SECONDS} s", path=path,
                               hint="convert the model to ONNX yourself and pass the .onnx") from None
    if done.returncode != 0 or not out.is_file():
        said = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()][-6:]
        raise ConversionFailed(f"paddle2onnx could not convert this PaddlePaddle 3 model (exit {done.returncode}): "
                               + " | ".join(line.strip() for line in said), path=path,
                               hint="check that the .json and its .pdiparams are complete and from paddle>=3; "
                                    "paddle2onnx names the op it has no conversion for")
    return out


def _conversion_error(path: Path, fmt: str | None, text: str, graph) -> KernelkitError:
    what = _what(path)
    missing = _NO_TRANSLATOR.search(text)
    if missing and graph is not None:
        op = missing.group(1)
        custom = [o for o in graph.operators if o.custom]
        failing = [o for o in custom if o.op == op] or custom
        others = sorted({o.op for o in custom} - {op})
        listed = "; ".join(o.describe() for o in failing[:8]) + (" ..." if len(failing) > 8 else "")
        return ConversionFailed(
            f"OpenVINO's TFLite frontend has no conversion for the custom op {op}: {listed}"
            + (f"; the model also has the custom op(s) {', '.join(others)}" if others else ""),
            path=path, where=f"custom op {op}",
            hint=f"{op} is a custom op of the model's authors (MediaPipe's, for most): re-export the model "
                 "with TensorFlow Lite builtin ops only, or export the part before it (to TFLite or ONNX) "
                 "and do its step on the host")
    if missing:
        return ConversionFailed(f"OpenVINO's {what} frontend has no conversion for the op {missing.group(1)}",
                                path=path, where=f"op {missing.group(1)}",
                                hint="replace the op in the source model, or export it to ONNX")
    if fmt in ("tf", "paddle") and re.search(r"tensorflow|paddle", text, re.I) and "install" in text.lower():
        return ConversionFailed(f"OpenVINO needs {what}'s own package to read this model: {text}", path=path,
                                hint=f"pip install {'tensorflow' if fmt == 'tf' else 'paddlepaddle'}, or export "
                                     "the model to ONNX (tf2onnx, paddle2onnx) and pass the .onnx")
    return ConversionFailed(f"OpenVINO cannot convert this {what} model: {text}", path=path,
                            hint="check that the file is complete; or export the model to ONNX and pass the .onnx")


def _name_layers_after_tensors(model, graph, fmt: str | None) -> None:
    """Each input (Parameter) and each output's producer takes its source tensor name as its layer name (a
    TensorFlow tensor `scores:0` gives the layer `scores`, as Model Optimizer named it); a layer already holding
    that name gives it up."""
    wanted = {}
    sources = ({"inputs": graph.inputs, "outputs": graph.outputs} if graph is not None else {})
    for index, port in enumerate(model.inputs):
        name = _source_name(port, sources.get("inputs"), index, port.get_node().get_friendly_name(), fmt)
        if name:
            wanted[id(port.get_node())] = (port.get_node(), name)
    for index, port in enumerate(model.outputs):
        result = port.get_node()
        producer = result.input_value(0).get_node()
        name = _source_name(port, sources.get("outputs"), index, result.get_friendly_name(), fmt)
        if name and producer.get_type_name() != "Parameter" and id(producer) not in wanted:
            wanted[id(producer)] = (producer, name)
            result.set_friendly_name(f"{name}/sink_port_0")
    taken = {name for _, name in wanted.values()}
    for node in model.get_ops():
        if id(node) not in wanted and node.get_friendly_name() in taken:
            node.set_friendly_name(f"{node.get_friendly_name()}/renamed")
    for node, name in wanted.values():
        node.set_friendly_name(name)


def _source_name(port, source_names, index: int, own: str, fmt: str | None) -> str | None:
    """The source's name of a model input/output: the flatbuffer's when known and among the port's names,
    else the name OpenVINO gave the Parameter / Result when it is one of the port's, else the first."""
    names = port.get_names()
    if source_names and index < len(source_names) and (source_names[index] in names or not names):
        name = source_names[index]
    elif own in names:
        name = own
    else:
        name = sorted(names)[0] if names else None
    return name[:-2] if name and fmt == "tf" and name.endswith(":0") else name
