"""Compile a model to a MYRIAD blob with the real 2021.4 plugin (through the provisioned shim).

Input: an IR v10 .xml (+ .bin) or an .onnx file (the 2021.4 reader takes ONNX directly), with explicit
settings; a patch folder's own settings are read by the caller (kernelkit.model.patchdir).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core import xmlsafe
from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import atomic_write
from kernelkit.facts.device import DEFAULT_SHAVES, MAX_SHAVES
from kernelkit.facts.knowledge import Knowledge
from kernelkit.facts.plugin_messages import NAMING_A_LAYER
from kernelkit.facts.target import compiler_target, get_target, target_names
from kernelkit.myriad import blob as blobfmt
from kernelkit.myriad import toolchain as toolchain_mod

# compile_tool 2021.4 always sets this for MYRIAD; it lets the plugin compile with no device attached.
PLATFORM_CONFIG = {"VPU_MYRIAD_PLATFORM": "VPU_MYRIAD_2480"}
# The plugin writes its final internal graph here (kernelkit.myriad.graph_dump); the blob is the same with or without.
DUMP_KEY = "MYRIAD_DUMP_INTERNAL_GRAPH_FILE_NAME"
# The shim's own key (toolchain/myriad_shim): FP16 makes every FP32 network output FP16, as compile_tool's
# `-op FP16`. The plugin reads an output's precision only from the network object, never from the IR.
OUTPUT_PRECISION_KEY = "KERNELKIT_OUTPUT_PRECISION"
# Turns unsupported layers into silent no-op stages in a blob that still parses: never allowed.
FORBIDDEN_KEYS = ("MYRIAD_IGNORE_UNKNOWN_LAYERS", "VPU_IGNORE_UNKNOWN_LAYERS")
# A compile.conf may come from a patch for any target: every target's key names the bindings.
CUSTOM_LAYER_KEYS = tuple(sorted({get_target(name).custom_layers_key for name in target_names()}))
# Like Luxonis' blobconverter: as many CMX slices as SHAVEs (facts.device.DEFAULT_SHAVES), one throughput stream.
SHAVES_KEY, CMX_KEY = "MYRIAD_NUMBER_OF_SHAVES", "MYRIAD_NUMBER_OF_CMX_SLICES"
# The plugin's hardware tiling search takes minutes on some real models (ConvNeXt-tiny: over 13 min of CPU;
# 2.5 min with hardware acceleration off), so the limit is generous and overridable.
def _timeout_from_environment() -> float:
    text = os.environ.get("KERNELKIT_COMPILE_TIMEOUT", "").strip()
    try:
        return float(text) if text else 3600.0
    except ValueError:
        return -1.0          # refused, with the variable named, when a compile starts


DEFAULT_TIMEOUT = _timeout_from_environment()
IR_XML_LIMIT = 256 * xmlsafe.MiB


class CompileFailed(KernelkitError):
    """The MYRIAD plugin refused the model. CLI exit 1. `.layer_name`/`.layer_type`: the compiled model's
    layer the refusal is about, when it could be found; `.plugin_name`: the node the plugin's words name (its
    own, e.g. `FullyConnected_44171`, or the layer's); `.located_by`: how the layer was found."""

    def __init__(self, message: str, *, layer_name: str | None = None, layer_type: str | None = None,
                 path=None, plugin_text: str = "", plugin_name: str | None = None, located_by: str | None = None):
        where = None
        if layer_name:
            where = f'layer "{layer_name}"' + (f" ({layer_type})" if layer_type else "")
        super().__init__(message, path=path, where=where)
        self.layer_name = layer_name
        self.layer_type = layer_type
        self.plugin_text = plugin_text
        self.plugin_name = plugin_name if plugin_name is not None else layer_name
        self.located_by = located_by


@dataclass
class CompileResult:
    blob_path: Path
    size: int
    header: blobfmt.BlobHeader
    config: dict[str, str]
    seconds: float
    warnings: list[str]
    graph_dump: Path | None = None      # the plugin's internal-graph dump beside the blob (graph_dump.dump_path)


@dataclass
class ShimRun:
    ok: bool
    message: str            # the plugin's error text, cleaned (empty when ok)
    warnings: list[str]
    seconds: float


# ------------------------------------------------------------------------------------------ input side

def read_compile_conf(path: Path) -> dict[str, str]:
    """compile_tool's `-c` format: one `KEY VALUE` a line; `#` starts a comment."""
    config: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise KernelkitError(f"expected `KEY VALUE`, got {line!r}", path=path, line=number,
                                 hint="write one configuration key and its value per line")
        config[parts[0]] = parts[1].strip()
    return config


def check_model(model: Path) -> None:
    """Refuse, with what to do, what the compiler target's reader cannot take (IR v11, newer opsets, missing .bin)."""
    suffix = model.suffix.lower()
    if suffix == ".onnx":
        import onnx

        try:
            onnx.load(str(model), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others
            raise KernelkitError(f"not a readable ONNX model: {exc}", path=model) from None
        return
    if suffix != ".xml":
        raise KernelkitError(f"unsupported model file type {model.suffix!r}", path=model,
                             hint="pass an OpenVINO IR v10 .xml, an .onnx file or a `kernelkit patch` folder "
                                  "(patch reads .tflite, TensorFlow .pb / SavedModel and Paddle .pdmodel / .json "
                                  "models)")
    root = xmlsafe.parse_file(model, max_bytes=IR_XML_LIMIT)
    if root.tag != "net":
        raise KernelkitError(f"not an OpenVINO IR: root element is <{root.tag}>, expected <net>", path=model)
    target = compiler_target()
    version = root.get("version")
    if version == "11":            # what `kernelkit patch` rewrites as the target's IR version
        keeps = _layer_keeping_v11(model)
        raise KernelkitError(
            f"IR v11 cannot be read by the OpenVINO {target} MYRIAD compiler (it reads IR v{target.ir_version} only)"
            + (f"; layer {keeps[0].name!r} ({keeps[0].type}) keeps the model at v11: its {keeps[2]}" if keeps else ""),
            path=model, where="<net version>",
            hint=f"run `kernelkit patch {model} --target {target}` first and compile its output"
                 + (f" (its report says what to do about layer {keeps[0].name!r})" if keeps else ""))
    if version not in {str(v) for v in target.ir_versions}:
        raise KernelkitError(f"IR version {version!r} is not supported; the {target} compiler reads "
                             f"IR v{target.ir_version}",
                             path=model, where="<net version>", hint=f"re-export the model as IR v{target.ir_version}")
    for layer in root.iter("layer"):
        opset = layer.get("version", "")
        number = Knowledge.opset_number(opset)
        if number is not None and number > target.opset_ceiling:
            raise KernelkitError(
                f"{layer.get('type')} from {opset} is newer than the {target} reader knows "
                f"(opset{target.opset_ceiling})",
                path=model, line=layer.sourceline, where=f'layer "{layer.get("name")}"',
                hint=f"run `kernelkit patch {model} --target {target}` to downgrade it")
    has_weights = any(layer.get("type") == "Const" for layer in root.iter("layer"))
    if has_weights and not model.with_suffix(".bin").is_file():
        raise KernelkitError(f"weights file {model.with_suffix('.bin').name} is missing next to the IR",
                             path=model, hint="keep the .bin beside the .xml with the same stem")


def _layer_keeping_v11(model: Path):
    """(layer, port, why) of the first layer an IR v10 file cannot hold (kernelkit.ir.model.v10_obstacle), or
    None (also when the IR does not read: the compile's own checks say why)."""
    from kernelkit.core import limits
    from kernelkit.core.fsutil import read_input
    from kernelkit.ir.model import IRModel, v10_obstacle

    weights = model.with_suffix(".bin")
    try:
        data = read_input(weights, limits.WEIGHTS_BYTES.value(), what="weights file (.bin)",
                          limit=limits.WEIGHTS_BYTES) if weights.is_file() else None
        found = IRModel.from_bytes(read_input(model, IR_XML_LIMIT, what="IR"), data, path=model, bin_path=weights)
        return v10_obstacle(found)
    except KernelkitError:
        return None


def make_config(*, shaves: int = DEFAULT_SHAVES, cmx_slices: int | None = None,
                custom_layers: Path | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The plugin configuration: platform, SHAVEs, CMX slices, one stream, custom layers, then `extra`."""
    for name, value in (("--shaves", shaves), ("--cmx-slices", cmx_slices)):
        if value is not None and not 1 <= value <= MAX_SHAVES:
            raise KernelkitError(f"{value} is out of range", where=name,
                                 hint=f"the Myriad X has {MAX_SHAVES} SHAVEs and CMX slices: use 1 to {MAX_SHAVES}")
    config = dict(PLATFORM_CONFIG)
    config[SHAVES_KEY] = str(shaves)
    config[CMX_KEY] = str(cmx_slices if cmx_slices is not None else shaves)
    config["MYRIAD_THROUGHPUT_STREAMS"] = "1"
    config.update(extra or {})
    if OUTPUT_PRECISION_KEY in config:
        raise KernelkitError(f"{OUTPUT_PRECISION_KEY} is kernelkit's own setting, not the plugin's",
                             where=OUTPUT_PRECISION_KEY, hint="remove it; ask for FP16 outputs with --fp16-output")
    if custom_layers is not None:
        custom_layers = Path(custom_layers)
        if not custom_layers.is_file():
            raise KernelkitError("custom layers XML not found", path=custom_layers, where="--custom-layers",
                                 hint="pass the custom_layers.xml written by `kernelkit patch` or `kernelkit build`")
        for key in CUSTOM_LAYER_KEYS:
            config.pop(key, None)
        config["MYRIAD_CUSTOM_LAYERS"] = str(custom_layers.resolve())
    for key in FORBIDDEN_KEYS:
        if key in config:
            raise KernelkitError(
                f"{key} is refused: it turns unsupported layers into silent no-ops in a blob that still loads",
                where=key, hint="remove it; make the layers compile instead (kernelkit inspect / patch)")
    return config


def u8_input_ir(model: Path, out_dir: Path) -> Path:
    """A copy of an IR v10 whose float Parameters take U8 and convert to their old type, as compile_tool's
    `-ip U8` does; the .bin is linked, not copied. Returns the new .xml."""
    root = xmlsafe.parse_file(model, max_bytes=IR_XML_LIMIT)
    layers = root.find("layers")
    edges = root.find("edges")
    next_id = max(int(layer.get("id")) for layer in layers) + 1
    precision_of = {"f16": "FP16", "f32": "FP32"}
    from lxml import etree

    for param in [layer for layer in layers if layer.get("type") == "Parameter"]:
        data = param.find("data")
        element_type = data.get("element_type") if data is not None else None
        if element_type not in precision_of:
            continue
        out_port = param.find("output/port")
        dims = [d.text for d in out_port.findall("dim")]
        data.set("element_type", "u8")
        out_port.set("precision", "U8")
        convert = etree.SubElement(layers, "layer", id=str(next_id), name=f"{param.get('name')}/u8_to_{element_type}",
                                   type="Convert", version="opset1")
        etree.SubElement(convert, "data", destination_type=element_type)
        in_port = etree.SubElement(etree.SubElement(convert, "input"), "port", id="0", precision="U8")
        new_out = etree.SubElement(etree.SubElement(convert, "output"), "port", id="1",
                                   precision=precision_of[element_type])
        for port in (in_port, new_out):
            for dim in dims:
                etree.SubElement(port, "dim").text = dim
        for edge in edges:
            if edge.get("from-layer") == param.get("id") and edge.get("from-port") == out_port.get("id"):
                edge.set("from-layer", str(next_id))
                edge.set("from-port", "1")
        etree.SubElement(edges, "edge", {"from-layer": param.get("id"), "from-port": out_port.get("id"),
                                         "to-layer": str(next_id), "to-port": "0"})
        next_id += 1
    new_xml = out_dir / model.name
    new_xml.write_bytes(etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8"))
    weights = model.with_suffix(".bin")
    if weights.exists():
        os.symlink(weights.resolve(), new_xml.with_suffix(".bin"))
    return new_xml


# ----------------------------------------------------------------------------------------- plugin side

_NOISE = re.compile(r"\x1b\[[0-9;]*m")
_SOURCE_PREFIX = re.compile(r"(?:^|(?<=\s))/\S+\.(?:cpp|hpp|h):\d+\s+")
_STATUS_TAG = re.compile(r"\[ [A-Z_]+ \]\s*")


def clean_plugin_message(text: str) -> str:
    """The plugin's exception text without status tags and build-machine source paths."""
    lines = []
    for line in _STATUS_TAG.sub("", text).splitlines():
        line = _SOURCE_PREFIX.sub("", line).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


DYNAMIC_SHAPE_WORDS = ("DynamicToStaticShape", "is_static()", "dynamic rank", "dynamic shape")


def dynamic_shape_hint(message: str, model: Path) -> str | None:
    """The fix for the plugin's refusal of a dynamic dimension (its raw DynamicToStaticShape words say none)."""
    if not any(word in message for word in DYNAMIC_SHAPE_WORDS):
        return None
    return (f"the model has dynamic dimensions, which the plugin compiles only static: give them with "
            f"`kernelkit patch {model.name} --input-shape NAME=D0,D1,...` (an integer input that sets a shape: "
            f"--input-value NAME=V,...; `kernelkit inspect {model.name}` names it) and compile the patch folder")


def parse_compile_error(message: str) -> tuple[str | None, str | None]:
    """(layer name, layer type) named by a plugin error, either may be None."""
    for form in NAMING_A_LAYER:
        m = form.search(message)
        if m:
            groups = m.groupdict()
            return groups.get("name"), groups.get("type")
    return None, None


def run_shim(model: Path, out_blob: Path, config: dict[str, str], *, timeout: float = DEFAULT_TIMEOUT,
             toolchain: toolchain_mod.Toolchain | None = None) -> ShimRun:
    """One plugin compile + export. ToolchainUnavailable if not provisioned."""
    tc = toolchain or toolchain_mod.require()
    for key in FORBIDDEN_KEYS:
        if key in config:
            raise KernelkitError(f"{key} is refused", where=key)
    if not timeout > 0:
        raise KernelkitError(f"the compile time limit must be a positive number of seconds, not "
                             f"{os.environ.get('KERNELKIT_COMPILE_TIMEOUT', timeout)!r}",
                             where="KERNELKIT_COMPILE_TIMEOUT", hint="e.g. KERNELKIT_COMPILE_TIMEOUT=3600")
    cmd = [str(tc.shim), str(model), str(out_blob)] + [f"{k}={v}" for k, v in config.items()]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kernelkit-mvnc-") as lock_dir:
        # A private device-search lock, so parallel compiles do not queue (see myriad_shim.cpp).
        env = {**tc.env(), "KERNELKIT_MVNC_MUTEX": str(Path(lock_dir) / "mvnc.mutex")}
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return ShimRun(False, f"the MYRIAD compiler did not finish within {timeout:.0f} s (raise the limit with "
                                  "`kernelkit compile --timeout` or KERNELKIT_COMPILE_TIMEOUT)", [], timeout)
    seconds = time.monotonic() - start
    stderr = _NOISE.sub("", proc.stderr)
    warnings = [line.strip() for line in stderr.splitlines() if "[Warning]" in line
                and "Deprecated option was used : VPU_MYRIAD_PLATFORM" not in line]
    if proc.returncode == 0 and out_blob.is_file():
        return ShimRun(True, "", warnings, seconds)
    _, _, error = stderr.partition("error: ")
    message = clean_plugin_message(error) if error else stderr.strip() or f"shim exited with {proc.returncode}"
    if proc.returncode < 0:
        message = f"the MYRIAD compiler crashed (signal {-proc.returncode})" + (f": {message}" if message else "")
    return ShimRun(False, message, warnings, seconds)


def _int_setting(value, key: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise KernelkitError(f"{key} must be a whole number, got {value!r}", where=key) from None


def compile_model(model: str | Path, out: str | Path, *, shaves: int | None = None, cmx_slices: int | None = None,
                  u8_input: bool = False, fp16_output: bool = False, blob_version: str | None = None,
                  custom_layers: str | Path | None = None, config: dict[str, str] | None = None,
                  timeout: float = DEFAULT_TIMEOUT, graph_dump: bool = True) -> CompileResult:
    """Compile the model file `model` to the blob `out`, written atomically, with the plugin's internal-graph
    dump beside it as `<out stem>.graph.dot` (graph_dump=False: none; kernelkit.myriad.graph_dump reads it).

    config: compile_tool settings (e.g. a patch folder's compile.conf). shaves/cmx_slices beat it; without
    either, 6 SHAVEs and as many slices as SHAVEs. u8_input: float inputs take U8 (compile_tool's `-ip U8`);
    fp16_output: float outputs are FP16, the plugin's last Convert left out (`-op FP16`). Raises CompileFailed
    (plugin refused), KernelkitError (bad input) or ToolchainUnavailable. A refusal's CompileFailed names the model's layer it is about, even
    when the plugin's words name a node of its own (kernelkit.myriad.refusal).
    """
    model = Path(model)
    check_model(model)
    if blob_version is not None and blob_version not in blobfmt.BLOB_VERSIONS:
        raise KernelkitError(f"unknown blob version {blob_version!r}", where="--blob-version",
                             hint=f"use one of: {', '.join(blobfmt.BLOB_VERSIONS)}")
    if u8_input and model.suffix.lower() != ".xml":
        raise KernelkitError("--u8-input needs an IR .xml model", path=model,
                             hint=f"convert the ONNX model to IR v{compiler_target().ir_version} first "
                                  f"(kernelkit patch --target {compiler_target()})")
    merged = dict(config or {})
    # Explicit options beat the given settings, which beat the defaults.
    if shaves is not None:
        merged.pop(SHAVES_KEY, None)
        if cmx_slices is None:
            merged.pop(CMX_KEY, None)
    if cmx_slices is not None:
        merged.pop(CMX_KEY, None)
    if shaves is None:
        shaves = _int_setting(merged.pop(SHAVES_KEY, DEFAULT_SHAVES), SHAVES_KEY)
    if cmx_slices is None and CMX_KEY in merged:
        cmx_slices = _int_setting(merged.pop(CMX_KEY), CMX_KEY)
    full_config = make_config(shaves=shaves, cmx_slices=cmx_slices,
                              custom_layers=Path(custom_layers) if custom_layers else None,
                              extra=merged)
    tc = toolchain_mod.require()
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="kernelkit-compile-") as tmp:
        compiled = u8_input_ir(model, Path(tmp)) if u8_input else model
        tmp_blob = Path(tmp) / "out.blob"
        own = {OUTPUT_PRECISION_KEY: "FP16"} if fp16_output else {}     # the shim's, never the plugin's
        shim_config = {**full_config, **own}
        tmp_dump = None
        if graph_dump and DUMP_KEY not in shim_config:
            tmp_dump = Path(tmp) / "graph.dot"
            shim_config[DUMP_KEY] = str(tmp_dump)
        run = run_shim(compiled, tmp_blob, shim_config, timeout=timeout, toolchain=tc)
        if not run.ok:
            from kernelkit.myriad.refusal import locate

            def attempt(xml: Path, extra: dict, seconds: float) -> str | None:
                limit = min(timeout, seconds)
                with tempfile.TemporaryDirectory(prefix="kernelkit-locate-") as scratch:
                    again = run_shim(xml, Path(scratch) / "out.blob", {**full_config, **extra, **own},
                                     timeout=limit, toolchain=tc)
                if not again.ok and again.seconds >= limit:
                    raise TimeoutError
                return None if again.ok else again.message

            name, layer_type = parse_compile_error(run.message)
            where = locate(compiled, run.message, name, attempt=attempt)
            failed = CompileFailed(run.message, layer_name=where.name if where else name,
                                   layer_type=where.type if where else layer_type, path=model,
                                   plugin_text=run.message, plugin_name=name,
                                   located_by=where.how if where else None)
            failed.hint = dynamic_shape_hint(run.message, model)
            raise failed
        data = tmp_blob.read_bytes()
        dump = tmp_dump.read_bytes() if tmp_dump is not None and tmp_dump.is_file() else None
    if blob_version:
        data = blobfmt.with_version(data, blob_version)
    header = blobfmt.read_header(data)
    atomic_write(out, data)
    kept = None
    if dump is not None:
        from kernelkit.myriad.graph_dump import dump_path, stable_addresses

        kept = atomic_write(dump_path(out), stable_addresses(dump))
    return CompileResult(out, len(data), header, full_config, run.seconds, run.warnings, kept)
