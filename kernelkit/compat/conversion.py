"""blobconverter's requests answered by kernelkit: Model Optimizer-style `optimizer_params` and
compile_tool-style `compile_params` parsed and mapped onto kernelkit patch / compile options, the model patched
(unsupported layers too) and compiled by the 2021.4 MYRIAD plugin, the blob cached by content. Shared by the
drop-in client (kernelkit.compat.blobconverter) and `kernelkit serve` (kernelkit.compat.server)."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kernelkit.core.errors import KernelkitError

# blobconverter 1.4.3's Versions, and what kernelkit does with each: the one compiler it runs is 2021.4's.
# "2021.4" is stamped (2021, 4) as Luxonis' service did; the others keep the plugin's own version 6.0, which
# DepthAI reads as 2022.1 ("compatible with 2020.4 to 2022.1"), the header every 2022.x MYRIAD blob has.
STAMP = {"2021.4": "2021.4", "2022.1": None, "2022.3": None, "2021.3": None, "2021.2": None}
RVC3 = "2022.3_RVC3"
DATA_TYPES = {"FP16": "FP16", "HALF": "FP16", "FP32": "FP32", "FLOAT": "FP32"}
# Flags the client adds itself, pointing at its own download folder: the files come with the request.
_IGNORED_MO = ("input_model", "input_proto")
CACHE_FORMAT = "kernelkit.blobconverter/1"


MAX_NAME = 128
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def plain_name(name: str, what: str, where: str) -> str:
    """A file or model name from a request, refused unless plain: no folders, no leading dot, no `..`, no
    control characters, at most MAX_NAME characters."""
    shown = repr(name) if len(name) <= 60 else f"{name[:40]!r}... ({len(name)} characters)"
    if len(name) > MAX_NAME or not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise KernelkitError(f"{what} {shown} is not a plain file name", where=where,
                             hint=f"use letters, digits, '_', '-', '.' (up to {MAX_NAME} characters)")
    return name


class VersionWarning(UserWarning):
    """The requested OpenVINO version is not the one that compiled the blob."""


@dataclass
class Plan:
    """What one request asks for, in kernelkit's terms (the content key hashes it)."""
    version: str = "2022.1"
    shaves: int = 4
    data_type: str = "FP16"
    mean: dict[str, list[float]] = field(default_factory=dict)      # input name ("" = every image input) -> values
    scale: dict[str, list[float]] = field(default_factory=dict)
    reverse_channels: bool = False
    layouts: dict[str, str] = field(default_factory=dict)            # input name ("" = every input) -> NCHW|NHWC
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # "" = the only input
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    u8_input: bool = False
    fp16_output: bool = False
    notes: list[str] = field(default_factory=list)                  # said to the user, not hashed

    def key_fields(self) -> dict:
        data = asdict(self)
        data.pop("notes")
        return data


# ------------------------------------------------------------------------------------------- parsing

def _numbers(text: str, param: str) -> list[float]:
    try:
        values = [float(v) for v in re.split(r"[,\s]+", text.strip().strip("[]()")) if v]
    except ValueError:
        values = []
    if not values or any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise KernelkitError(f"{param}: {text!r} is not a list of numbers", where="optimizer_params",
                             hint=f"e.g. {param}=[127.5,127.5,127.5]")
    return values


def _per_input_values(text: str, param: str) -> dict[str, list[float]]:
    """MO's `[1,2,3]` (every input) or `name[1,2,3],other[4,5,6]`."""
    text = text.strip()
    if text.startswith(("[", "(")) or re.fullmatch(r"[-+0-9.eE,\s]+", text):
        return {"": _numbers(text, param)}
    one = r"[^\[\],]+\[[^\]]*\]"
    found = re.findall(r"([^\[\],]+)\[([^\]]*)\]", text)
    if not re.fullmatch(rf"{one}(?:\s*,\s*{one})*", text):
        raise KernelkitError(f"{param}: cannot read {text!r}", where="optimizer_params",
                             hint=f"write {param}=[v1,v2,v3] or {param}=input_name[v1,v2,v3]")
    return {name.strip(): _numbers(values, param) for name, values in found}


def preprocess_layouts() -> tuple[str, ...]:
    from kernelkit.model.passes.preprocess import LAYOUTS

    return LAYOUTS


def _layouts(text: str) -> dict[str, str]:
    """MO's `--layout=nchw`, `--layout=name(nhwc)` or `name(nhwc),other(nchw)`; `src->dst` is refused."""
    text = text.strip()
    pairs = re.findall(r"([^(),\s]*)\(([^()]*)\)", text) if "(" in text else [("", text)]
    layouts = {}
    for name, layout in pairs:
        layout = layout.strip().upper()
        if layout not in preprocess_layouts():
            raise KernelkitError(f"--layout: {layout or text!r} is not a layout kernelkit reads",
                                 where="optimizer_params",
                                 hint="use nchw or nhwc, for every input (--layout=nhwc) or one (--layout=name(nhwc))")
        layouts[name.strip()] = layout
    return layouts


def _shape(text: str) -> list[int]:
    try:
        dims = [int(v) for v in re.split(r"[,\s]+", text.strip().strip("[]()")) if v]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise KernelkitError(f"--input_shape: {text!r} is not a static shape", where="optimizer_params",
                             hint="the MYRIAD compiles static shapes only: e.g. --input_shape=[1,3,224,224]")
    return dims


def _split_mo(params) -> list[tuple[str, str | None, str]]:
    """(name, value, as given) for each `--name=value`, `--name value` or `--flag` (one or more an item)."""
    out = []
    for item in params or ():
        if not isinstance(item, str):
            raise KernelkitError(f"optimizer_params holds {item!r}, not a string", where="optimizer_params",
                                 hint='pass a list of strings, e.g. ["--reverse_input_channels"]')
        for token in re.split(r"\s+(?=--)", item.strip()):
            if not token:
                continue
            if not token.startswith("--"):
                raise KernelkitError(f"optimizer param {token!r} is not a --flag", where="optimizer_params",
                                     hint="write Model Optimizer flags, e.g. --mean_values=[127.5,127.5,127.5]")
            name, eq, value = token[2:].partition("=")
            if not eq and re.search(r"\s", name):
                name, value = re.split(r"\s+", name, maxsplit=1)
                eq = "="
            out.append((name.strip(), value if eq else None, token))
    return out


def parse_optimizer_params(params, plan: Plan) -> Plan:
    """Model Optimizer flags onto the plan; an unknown flag is a KernelkitError naming it."""
    for name, value, given in _split_mo(params):
        def need():
            if value is None or not value.strip():
                raise KernelkitError(f"--{name} needs a value", where="optimizer_params", hint=f"--{name}=VALUE")
            return value
        if name in _IGNORED_MO:
            continue
        if name == "mean_values":
            plan.mean.update(_per_input_values(need(), "--mean_values"))
        elif name == "scale_values":
            plan.scale.update(_per_input_values(need(), "--scale_values"))
        elif name == "scale":
            plan.scale[""] = _numbers(need(), "--scale")
        elif name == "reverse_input_channels":
            if value is not None and value.lower() not in ("true", "1", ""):
                raise KernelkitError(f"--reverse_input_channels takes no value, got {value!r}",
                                     where="optimizer_params")
            plan.reverse_channels = True
        elif name == "layout":
            plan.layouts.update(_layouts(need()))
        elif name == "input_shape":
            text = need().strip()
            shapes = re.findall(r"[\[(][^\])]*[\])]", text) or [text]
            plan.input_shapes.update({f"#{i}": _shape(s) for i, s in enumerate(shapes)})
        elif name == "input":
            plan.inputs = [n.strip() for n in need().split(",") if n.strip()]
            if any(c in n for n in plan.inputs for c in "[]{}:"):
                raise KernelkitError(f"--input={value!r}: only input names are read (no shapes or values)",
                                     where="optimizer_params", hint="give shapes with --input_shape")
        elif name == "output":
            plan.outputs = [n.strip() for n in need().split(",") if n.strip()]
        elif name == "data_type":
            dtype = DATA_TYPES.get(need().strip().upper())
            if dtype is None:
                raise KernelkitError(f"--data_type={value!r} is not one the MYRIAD runs", where="optimizer_params",
                                     hint="use FP16 (the MYRIAD computes in FP16; FP32 IRs are converted)")
            plan.data_type = dtype
        else:
            raise KernelkitError(f"optimizer param {given!r} is not one kernelkit maps", where="optimizer_params",
                                 hint="kernelkit reads --mean_values, --scale_values, --scale, "
                                      "--reverse_input_channels, --layout, --input_shape, --input, --output, "
                                      "--data_type; remove the others or use `kernelkit patch` directly")
    return plan


def parse_compile_params(params, plan: Plan) -> Plan:
    """compile_tool flags (`-ip U8`, `-op FP16`, `-il NCHW`, `-ol NCHW`); the client joins them with spaces."""
    tokens: list[str] = []
    for item in params or ():
        if not isinstance(item, str):
            raise KernelkitError(f"compile_params holds {item!r}, not a string", where="compile_params",
                                 hint='pass a list of strings, e.g. ["-ip U8"]')
        try:
            tokens.extend(shlex.split(item))
        except ValueError as exc:
            raise KernelkitError(f"compile params {item!r}: {exc}", where="compile_params") from None
    i = 0
    while i < len(tokens):
        flag = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else None
        if flag in ("-ip", "-op", "-il", "-ol") and (value is None or value.startswith("-")):
            raise KernelkitError(f"{flag} needs a value", where="compile_params", hint=f"e.g. {flag} U8")
        upper = (value or "").upper()
        if flag == "-ip":
            if upper not in ("U8", "FP16", "FP32"):
                raise KernelkitError(f"-ip {value}: kernelkit compiles U8, FP16 or FP32 inputs", where="compile_params")
            plan.u8_input = upper == "U8"
        elif flag == "-op":
            # As compile_tool: every float output FP16 (the plugin's last Convert left out); integer outputs stay.
            if upper not in ("FP16", "FP32"):
                raise KernelkitError(f"-op {value}: kernelkit compiles FP16 or FP32 outputs", where="compile_params",
                                     hint="use -op FP16 (half the bytes) or -op FP32, or drop -op")
            plan.fp16_output = upper == "FP16"
        elif flag in ("-il", "-ol"):
            if upper != "NCHW":
                raise KernelkitError(f"{flag} {value}: the MYRIAD blobs kernelkit writes are planar (NCHW)",
                                     where="compile_params",
                                     hint="drop the flag; for interleaved frames set the input's layout in "
                                          "optimizer_params (--layout=nhwc)")
        else:
            raise KernelkitError(f"compile param {flag!r} is not one kernelkit maps", where="compile_params",
                                 hint="kernelkit reads -ip, -op, -il and -ol; SHAVEs come from `shaves`")
        i += 2
    return plan


def make_plan(*, version=None, shaves=None, data_type=None, optimizer_params=(), compile_params=()) -> Plan:
    version = str(version)
    if version == RVC3:
        raise KernelkitError(f"version {RVC3!r} is for RVC3 (Keem Bay), not the Myriad X", where="version",
                             hint="kernelkit compiles for RVC2 (Myriad X): use 2022.1 or 2021.4")
    if version not in STAMP:
        raise KernelkitError(f"unknown OpenVINO version {version!r}", where="version",
                             hint=f"use one of: {', '.join(STAMP)}")
    try:
        shaves = int(shaves)
    except (TypeError, ValueError):
        raise KernelkitError(f"shaves {shaves!r} is not a whole number", where="shaves", hint="1 to 16") from None
    if not 1 <= shaves <= 16:
        raise KernelkitError(f"{shaves} SHAVEs: the Myriad X has 16", where="shaves", hint="use 1 to 16")
    dtype = DATA_TYPES.get(str(data_type).upper())
    if dtype is None:
        raise KernelkitError(f"data type {data_type!r} is not one the MYRIAD runs", where="data_type",
                             hint="use FP16")
    plan = Plan(version=version, shaves=shaves, data_type=dtype)
    parse_optimizer_params(list(optimizer_params or ()), plan)
    parse_compile_params(list(compile_params or ()), plan)
    if version != "2021.4":
        plan.notes.append(f"OpenVINO {version} was asked for; kernelkit compiled with the 2021.4 MYRIAD plugin, "
                          "whose blob header (version 6.0) DepthAI reads as 2022.1")
    return plan


# ------------------------------------------------------------------------------------------- models

def model_inputs(model: Path) -> list[str]:
    """The input names of an .onnx or IR .xml, in order (no OpenVINO load)."""
    if model.suffix.lower() == ".onnx":
        from kernelkit.ir.onnx_graph import load_onnx, real_inputs

        return [i.name for i in real_inputs(load_onnx(model, external_data=False).graph)]
    if model.suffix.lower() == ".xml":
        from kernelkit.core import xmlsafe

        root = xmlsafe.parse_file(model, max_bytes=256 * xmlsafe.MiB)
        return [layer.get("name") for layer in root.iter("layer") if layer.get("type") == "Parameter"]
    return []


def _resolve_names(plan: Plan, model: Path) -> tuple[dict, list[str]]:
    """input_shapes by name, and the inputs preprocessing is for (empty = every image input)."""
    names = plan.inputs or (model_inputs(model) if plan.input_shapes else [])
    shapes = {}
    for i, (key, dims) in enumerate(plan.input_shapes.items()):
        if i >= len(names):
            raise KernelkitError(f"--input_shape gives {len(plan.input_shapes)} shape(s) for {len(names)} input(s)",
                                 path=model, where="optimizer_params",
                                 hint="name the inputs the shapes are for with --input=a,b")
        shapes[names[i]] = dims
    named = {n for d in (plan.mean, plan.scale, plan.layouts) for n in d if n}
    return shapes, sorted(named)


def _one_value(values: dict[str, list[float]], what: str, model: Path):
    distinct = {tuple(v) for v in values.values()}
    if len(distinct) > 1:
        raise KernelkitError(f"--{what} differs between inputs ({values}); kernelkit applies one set to every "
                             "preprocessed input", path=model, where="optimizer_params",
                             hint="convert the model once per set of values, or patch with kernelkit directly")
    return list(distinct.pop()) if distinct else None


def preprocessing_for(plan: Plan, model: Path):
    """kernelkit.model.passes.preprocess.Preprocessing from the plan."""
    from kernelkit.model.passes import preprocess

    _, named = _resolve_names(plan, model)
    options = dict(mean=_one_value(plan.mean, "mean_values", model),
                   scale=_one_value(plan.scale, "scale_values", model),
                   reverse_channels=plan.reverse_channels, inputs=named)
    return preprocess.Preprocessing(**options, layouts=dict(plan.layouts))


def content_key(plan: Plan, files: dict[str, bytes], framework: str) -> str:
    """sha256 of the model bytes and everything that shapes the blob (not the file name)."""
    from kernelkit import __version__

    digest = hashlib.sha256()
    head = {"format": CACHE_FORMAT, "kernelkit": __version__, "framework": framework, "plan": plan.key_fields(),
            "files": sorted((Path(n).suffix.lower(), hashlib.sha256(d).hexdigest()) for n, d in files.items())}
    digest.update(json.dumps(head, sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class Converted:
    blob: bytes
    key: str
    cached: bool
    notes: list[str]
    stderr: str = ""


MODEL_SUFFIXES = {"onnx": (".onnx",), "dldt": (".xml",), "openvino": (".xml",), "tf": (".pb",),
                  "tflite": (".tflite",), "paddle": (".pdmodel",)}


def main_file(files: dict[str, Path], framework: str) -> Path:
    """The model file among the request's files, by the framework's suffix."""
    if framework == "caffe":
        raise KernelkitError("Caffe models cannot be read: OpenVINO dropped its Caffe frontend in 2023",
                             where="framework", hint="export the model to ONNX and use from_onnx")
    suffixes = MODEL_SUFFIXES.get(framework)
    if suffixes is None:
        raise KernelkitError(f"framework {framework!r} is not one kernelkit reads", where="framework",
                             hint=f"use one of: {', '.join(MODEL_SUFFIXES)}")
    found = [p for n, p in files.items() if Path(n).suffix.lower() in suffixes]
    if len(found) != 1:
        raise KernelkitError(f"expected one {'/'.join(suffixes)} model file for framework {framework!r}, got "
                             f"{len(found)} among {sorted(files) or 'no files'}", where="files",
                             hint="send the model file (and the IR's .bin beside its .xml)")
    return found[0]


def convert(files: dict[str, Path], framework: str, plan: Plan, *, cache_dir: Path | None,
            use_cache: bool = True, timeout: float | None = None) -> Converted:
    """Patch and compile the model among `files` (name -> path, the names already checked), through the cache
    in `cache_dir` (content-keyed entries `KEY.blob`, written atomically) unless `use_cache` is False."""
    from kernelkit.core.fsutil import atomic_write, read_input
    from kernelkit.core.limits import WEIGHTS_BYTES

    model = main_file(files, framework)
    data = {n: read_input(p, WEIGHTS_BYTES.value(), what="model file", limit=WEIGHTS_BYTES) for n, p in files.items()}
    key = content_key(plan, data, framework)
    entry = Path(cache_dir) / f"{key}.blob" if cache_dir is not None else None
    if use_cache and entry is not None and entry.is_file():
        from kernelkit.myriad.blob import read_header

        blob = entry.read_bytes()
        try:
            read_header(blob)
            return Converted(blob, key, True, list(plan.notes))
        except KernelkitError:
            pass                                 # damaged entry: compile again and replace it
    blob, stderr = _patch_and_compile(model, plan, timeout)
    if entry is not None:
        atomic_write(entry, blob)
    return Converted(blob, key, False, list(plan.notes), stderr)


def patch_for(model: Path, plan: Plan, folder: Path):
    """`kernelkit patch` of `model` into `folder` with the plan's shapes, outputs and preprocessing (mean,
    scale, reverse channels; `-ip U8` and `-op FP16` are the compile's). CompileFailed when blockers remain."""
    from kernelkit import api
    from kernelkit.myriad.compile import CompileFailed

    shapes, _ = _resolve_names(plan, model)
    result = api.patch(model, folder, input_shapes=shapes or None, outputs=plan.outputs or None,
                       preprocessing=preprocessing_for(plan, model), shaves=plan.shaves)
    if result.remaining:
        lines = "; ".join(f"{b.layer_name} ({b.type}): {b.reason}" for b in result.remaining[:5])
        raise CompileFailed(f"kernelkit patch left {len(result.remaining)} blocker(s): {lines}", path=model,
                            plugin_text=lines)
    return result


def _patch_and_compile(model: Path, plan: Plan, timeout: float | None) -> tuple[bytes, str]:
    from kernelkit import api

    with tempfile.TemporaryDirectory(prefix="kernelkit-blobconverter-") as tmp:
        folder = Path(tmp) / "patched"
        patch_for(model, plan, folder)
        blob = Path(tmp) / "model.blob"
        # -ip U8 as compile_tool does it: every float input takes U8 (before the patched preprocessing).
        compiled = api.compile(folder, blob, shaves=plan.shaves, blob_version=STAMP[plan.version],
                               u8_input=plan.u8_input, fp16_output=plan.fp16_output,
                               **({"timeout": timeout} if timeout else {}))
        return blob.read_bytes(), "\n".join(compiled.warnings)


def warn_notes(notes) -> None:
    for note in notes:
        warnings.warn(note, VersionWarning, stacklevel=3)
