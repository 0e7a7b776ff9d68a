"""NN Archive (Luxonis): a .tar.xz holding a compiled superblob (or blob) and a config.json that describes it.

Inputs and outputs (names, shapes, data types) are read back from the compiled model itself with DepthAI's blob
reader, so the config describes the executable exactly. Which axis of a rank-4 input holds the channels is not in
the blob: kernelkit compiles every rank-4 input in the plugin's default order (NCHW), which only says the data lie
in the model's own dims order. The model's layout comes from the patch report's `inputs` (given or inferred by
`kernelkit patch`), so a TFLite input [1,128,128,3] is declared NHWC, interleaved frames; a blob with no report
gets the same inference from its shape. The patch report's preprocessing is NOT
repeated: `kernelkit patch` builds it into the model, and an archive describes the executable it holds, so a
patched model takes raw frames (mean 0, scale 1, no channel swap). Only the caller's explicit options set
preprocessing (for a model that still expects it to be applied). Each image input's `dai_type` names the frame
DepthAI must feed: its colour order, U8 or FP16 as the blob takes it, planar or interleaved as its layout says.
Heads (`--head`) follow luxonis-ml's config v1.0 and are what DepthAI's DetectionParser reads.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core import limits
from kernelkit.core.errors import KernelkitError, ToolchainUnavailable
from kernelkit.core.fsutil import atomic_write, is_leftover, read_input
from kernelkit.delivery.heads import HeadOptions, make_head
from kernelkit.model import patchdir
from kernelkit.myriad import blob as blobfmt
from kernelkit.myriad import superblob as superblobfmt

CONFIG_VERSION = "1.0"   # the NN Archive config scheme DepthAI's reader takes (NNArchiveConfigVersion.V1)
# DepthAI blob tensor types -> NN Archive dtype names
_DTYPES = {"FP16": "float16", "FP32": "float32", "U8F": "uint8", "I8": "int8", "INT": "int32", "FP64": "float64"}
_ITEM_BYTES = {"float16": 2, "float32": 4, "uint8": 1, "int8": 1, "int32": 4, "float64": 8}
# A Myriad X has 512 MiB of DDR: a blob whose inputs and outputs declare more was not compiled for it.
DEVICE_MEMORY_BYTES = 512 << 20
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class ArchiveResult:
    path: Path
    config: dict
    blob_name: str                   # the executable's name inside the archive (.superblob or .blob)
    kind: str = "superblob"          # "superblob" or "blob"
    compiled: bool = False           # the superblob was compiled from the folder's model for this archive
    warnings: list[str] = field(default_factory=list)


@dataclass
class Preprocessing:
    mean: list[float] | None = None
    scale: list[float] | None = None
    reverse_channels: bool | None = None


def find_blob(source: str | Path) -> Path:
    """The blob to pack: `source` itself, or the one blob in a folder."""
    source = Path(source)
    if not source.exists():
        raise KernelkitError("no such file or folder", path=source,
                             hint="pass a .blob or a `kernelkit patch` folder with a compiled blob in it")
    if not source.is_dir():
        blobfmt.read_header(source)
        return source
    blobs = _compiled_in(source, ".blob")
    if not blobs:
        raise KernelkitError("folder holds no .blob", path=source,
                             hint=f"compile it first: kernelkit compile {source} -o {source / patchdir.BLOB_FILE}")
    if len(blobs) > 1:
        raise KernelkitError(f"folder holds {len(blobs)} blobs ({', '.join(b.name for b in blobs)})", path=source,
                             hint="pass the .blob to pack directly")
    blobfmt.read_header(blobs[0])
    return blobs[0]


def _compiled_in(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.glob("*" + suffix) if not is_leftover(p.name))


def find_executable(source: str | Path, superblob: bool | None, workdir: Path, *, jobs: int | None = None,
                    fp16_output: bool = False) -> tuple[Path, str, bool]:
    """(file, "superblob"|"blob", compiled here) to pack from `source`: a .superblob or .blob file as it is; a
    folder's one .superblob (else a superblob compiled from its model.xml into `workdir`, with FP16 float
    outputs when `fp16_output`), or with `superblob=False` its one .blob. `superblob=None` takes what a file is
    and a superblob from a folder."""
    source = Path(source)
    if not source.exists():
        raise KernelkitError("no such file or folder", path=source,
                             hint="pass a .superblob, a .blob or a `kernelkit patch` folder")
    if not source.is_dir():
        if source.name.lower().endswith(".superblob"):
            if superblob is False:
                raise KernelkitError("--blob asks for a plain blob, and this is a superblob", path=source,
                                     where="--blob", hint="pass the .blob, or drop --blob")
            superblobfmt.read(source)
            return source, "superblob", False
        if superblob:
            raise KernelkitError("a .blob holds one SHAVE count; a superblob archive needs a superblob",
                                 path=source, where="--superblob",
                                 hint=f"compile one (kernelkit compile MODEL -o NAME.superblob) or archive the "
                                      f"`kernelkit patch` folder; or pack this blob with --blob")
        return find_blob(source), "blob", False
    if superblob is False:
        return find_blob(source), "blob", False
    found = _compiled_in(source, ".superblob")
    if len(found) > 1:
        raise KernelkitError(f"folder holds {len(found)} superblobs ({', '.join(b.name for b in found)})",
                             path=source, hint="pass the .superblob to pack directly")
    if found:
        superblobfmt.read(found[0])
        return found[0], "superblob", False
    if not (source / patchdir.MODEL_FILE).is_file():
        raise KernelkitError(f"folder holds no .superblob and no {patchdir.MODEL_FILE} to compile one from",
                             path=source, hint="pass a `kernelkit patch` folder, a .superblob, or --blob to pack "
                                               "the folder's .blob")
    from kernelkit.doctor.workflow import compile_folder

    out = workdir / "model.superblob"
    compile_folder(source, out, superblob=True, jobs=jobs, fp16_output=fp16_output)
    return out, "superblob", True


def blob_tensors(blob_path: Path, blob_bytes: bytes | None = None) -> tuple[list[dict], list[dict]]:
    """(inputs, outputs) of a blob (the file, or `blob_bytes` read from it) as {name, dtype, shape, layout},
    from DepthAI's own reader."""
    # Without this DepthAI warns on import that it has no USB access, which is irrelevant to reading a file.
    os.environ.setdefault("DEPTHAI_LEVEL", "error")
    try:
        import depthai as dai
    except ImportError:
        raise ToolchainUnavailable("depthai is needed to read a blob's inputs and outputs",
                                   hint="pip install 'depthai>=3' (kernelkit's [depthai] extra)") from None
    try:
        blob = dai.OpenVINO.Blob(str(blob_path) if blob_bytes is None else list(blob_bytes))
    except Exception as exc:  # noqa: BLE001 - its C++ reader throws several types (std::out_of_range: IndexError)
        raise KernelkitError(f"DepthAI cannot read this blob: {exc}", path=blob_path,
                             hint="compile the model again with kernelkit compile") from None

    def describe(name, info):
        kind = str(info.dataType).rsplit(".", 1)[-1]
        shape = [int(d) for d in reversed(info.dims)]  # DepthAI lists dims innermost first
        layout = str(info.order).rsplit(".", 1)[-1]
        if len(layout) != len(shape):
            layout = "NCHW"[4 - len(shape):] if len(shape) <= 4 else "".join("ABCDEFGH"[:len(shape)])
        return {"name": name, "dtype": _DTYPES.get(kind, kind.lower()), "shape": shape, "layout": layout}

    try:
        inputs = [describe(n, i) for n, i in blob.networkInputs.items()]
        outputs = [describe(n, i) for n, i in blob.networkOutputs.items()]
    except UnicodeDecodeError:
        raise KernelkitError("a tensor name in this blob is not UTF-8 text: the blob is damaged", path=blob_path,
                             hint="compile the model again with kernelkit compile") from None
    _check_declared_sizes(blob_path, inputs + outputs)
    return inputs, outputs


def _check_declared_sizes(blob_path: Path, tensors: list[dict]) -> None:
    """Refuse shapes no Myriad X can hold before any config is sized by them."""
    total = 0
    for entry in tensors:
        if not entry["shape"] or min(entry["shape"]) < 1:
            raise KernelkitError(f"tensor \"{entry['name']}\" has shape {entry['shape']} in this blob: the blob is "
                                 "damaged", path=blob_path, hint="compile the model again with kernelkit compile")
        total += limits.tensor_bytes(entry["shape"], _ITEM_BYTES.get(entry["dtype"], 8))
        if total > DEVICE_MEMORY_BYTES:
            raise KernelkitError(f"the blob's inputs and outputs (up to \"{entry['name']}\", shape {entry['shape']}) "
                                 f"declare {total:,} bytes, more than a Myriad X's {DEVICE_MEMORY_BYTES:,} bytes of "
                                 "memory: the blob is damaged", path=blob_path,
                                 hint="compile the model again with kernelkit compile")


def model_layouts(inputs: list[dict], report: dict | None, blob_path: Path, *, strict: bool) -> list[str]:
    """Set each rank-4 input's "layout" to the model's (NCHW|NHWC) where the blob's own word is the compiler's
    default order; the warnings. `report`: the patch report (its "inputs"), None when there is none; `strict`: the
    report is the folder's own, so a blob that disagrees with it was not compiled from that folder's model."""
    from kernelkit.model.passes.preprocess import resolve_layout

    stated = {e.get("name"): e for e in (report or {}).get("inputs") or [] if isinstance(e, dict)}
    warnings = []
    for entry in inputs:
        # Another order (a blob compiled elsewhere with compile_tool -il) is the blob's own statement: kept.
        if len(entry["shape"]) != 4 or entry["layout"] != "NCHW":
            continue
        mine = stated.get(entry["name"])
        if mine is None:
            if strict and report and report.get("inputs") is not None:
                raise KernelkitError(f"the blob's input \"{entry['name']}\" is not among the patch report's inputs "
                                     f"({', '.join(map(str, stated)) or 'none'}): the blob was not compiled from this "
                                     "folder's model", path=blob_path,
                                     hint="compile the folder again (kernelkit compile FOLDER -o FOLDER/model.blob)")
            # No report (or one from before layouts): the inference `kernelkit patch` makes, stated.
            guess = resolve_layout(entry["name"], entry["shape"], None, None)
            if guess.layout and guess.layout != "NCHW":
                entry["layout"] = guess.layout
                warnings.append(f"input \"{entry['name']}\" {entry['shape']}: declared {guess.layout} ({guess.why}); "
                                "archive the `kernelkit patch` folder to use the layout the patch stated")
            continue
        layout, shape = mine.get("layout"), [int(d) for d in mine.get("shape") or []]
        if layout not in ("NCHW", "NHWC"):
            continue                     # not an image input, or ambiguous: the report refused to guess
        if shape == entry["shape"]:
            entry["layout"] = layout     # no transpose between model and blob: the model's own axes
        elif layout == "NHWC" and [shape[0], shape[3], shape[1], shape[2]] == entry["shape"]:
            entry["layout"] = "NCHW"     # the channels were moved to axis 1 on the way: planar
        elif strict:
            raise KernelkitError(f"the blob's input \"{entry['name']}\" has shape {entry['shape']}, the patch report "
                                 f"says {shape} ({layout}): the blob was not compiled from this folder's model",
                                 path=blob_path,
                                 hint="compile the folder again (kernelkit compile FOLDER -o FOLDER/model.blob)")
    return warnings


def _preprocessed(report: dict | None) -> bool:
    """Whether `kernelkit patch` built preprocessing (mean, scale, channel flip) into the model."""
    stated = (report or {}).get("preprocessing") or {}
    return bool(stated.get("mean") or stated.get("scale") or stated.get("reverse_channels"))


def _report_for(source: Path) -> tuple[dict | None, bool]:
    """The patch report describing `source` (a folder's own, or one beside a .blob/.superblob file) and whether
    it is the folder's own."""
    if source.is_dir():
        return patchdir.read_report(source) or None, True
    report = patchdir.read_report(source.parent)
    return report or None, False


def _channels(entry: dict) -> int | None:
    layout, shape = entry["layout"], entry["shape"]
    return shape[layout.index("C")] if "C" in layout else None


def _per_channel(values, count: int | None, what: str, default: float, input_name: str,
                 is_image: bool = True) -> list[float] | None:
    if values is None:
        return [default] * (count or 1) if is_image else None
    values = [float(v) for v in values]
    if not all(math.isfinite(v) for v in values) or (what == "scale" and 0.0 in values):
        raise KernelkitError(f"{what} values {values} are not all finite" + (" and non-zero" if what == "scale" else ""),
                             where=f"--{what}", hint="DepthAI reads the config as JSON numbers; give plain numbers")
    if len(values) == 1 and count:
        return values * count
    if count is not None and len(values) != count:
        raise KernelkitError(f"{len(values)} {what} values for input \"{input_name}\", which has {count} channels",
                             where=f"--{what}", hint=f"give one {what} value per channel, or one for all")
    return values


def dai_type(entry: dict, reverse_channels: bool) -> str | None:
    """The DepthAI frame type (ImgFrame.Type) an image input takes, or None when no frame type fits (e.g. FP32)."""
    channels = _channels(entry)
    layout = entry["layout"]
    planar = layout.index("C") < layout.index("H") if "C" in layout and "H" in layout else True
    depth = {"uint8": ("888", "8"), "float16": ("F16F16F16", "F16")}.get(entry["dtype"])
    if depth is None or channels not in (1, 3):
        return None
    if channels == 1:
        return "GRAY" + depth[1]
    return ("RGB" if reverse_channels else "BGR") + depth[0] + ("p" if planar else "i")


def _is_image(entry: dict) -> bool:
    return len(entry["shape"]) == 4 and _channels(entry) in (1, 3)


def make_config(name: str, blob_file: str, inputs: list[dict], outputs: list[dict],
                preprocessing: Preprocessing, head: dict | None = None) -> dict:
    config_inputs = []
    for entry in inputs:
        channels = _channels(entry)
        is_image = _is_image(entry)
        layout = entry["layout"]
        interleaved = is_image and layout.index("C") > layout.index("H")
        config_inputs.append({
            **{k: entry[k] for k in ("name", "dtype")},
            "input_type": "image" if is_image else "raw",
            "shape": entry["shape"],
            "layout": layout,
            # A raw tensor with no values given declares none: its channel count is unbounded.
            "preprocessing": {
                "mean": _per_channel(preprocessing.mean, channels, "mean", 0.0, entry["name"], is_image),
                "scale": _per_channel(preprocessing.scale, channels, "scale", 1.0, entry["name"], is_image),
                "reverse_channels": bool(preprocessing.reverse_channels),
                "interleaved_to_planar": interleaved if is_image else None,
                "dai_type": dai_type(entry, bool(preprocessing.reverse_channels)) if is_image else None,
            },
        })
    return {
        "config_version": CONFIG_VERSION,
        "model": {
            # MYRIAD blobs hold FP16 weights whatever the IR had.
            "metadata": {"name": name, "path": blob_file, "precision": "float16"},
            "inputs": config_inputs,
            "outputs": [{k: o[k] for k in ("name", "dtype", "shape", "layout")} for o in outputs],
            "heads": [head] if head else [],
        },
    }


def build_archive(source: str | Path, out: str | Path, *, name: str | None = None,
                  mean: list[float] | None = None, scale: list[float] | None = None,
                  reverse_channels: bool | None = None, superblob: bool | None = None,
                  head: HeadOptions | None = None, jobs: int | None = None,
                  fp16_output: bool = False) -> ArchiveResult:
    """Pack `source` and its config.json into `out` (.tar.xz): a .superblob or .blob file as it is, or from a
    patch folder its superblob (compiled from its model when it holds none), or with `superblob=False` its .blob.
    `head` declares the model's head (kernelkit.delivery.heads). `fp16_output`: a superblob compiled here gets
    FP16 float outputs; one already compiled must have them. Output dtypes are always the blob's own."""
    out = Path(out)
    if not out.name.endswith(".tar.xz"):
        raise KernelkitError("an NN Archive is a .tar.xz file", path=out, where="-o", hint="name it NAME.tar.xz")
    name = name or out.name[: -len(".tar.xz")]
    if not _NAME_OK.match(name):
        raise KernelkitError(f"model name {name!r} is not a plain file name", where="--name",
                             hint="use letters, digits, '.', '_' and '-'")
    # Preprocessing in patch-report.json is already inside the compiled model: declaring it again
    # would make DepthAI apply it twice.
    pre = Preprocessing(mean=mean, scale=scale, reverse_channels=reverse_channels)
    with tempfile.TemporaryDirectory(prefix="kernelkit-archive-") as tmp:
        path, kind, compiled = find_executable(source, superblob, Path(tmp), jobs=jobs, fp16_output=fp16_output)
        data = read_input(path, limits.WEIGHTS_BYTES.value(), what=kind, limit=limits.WEIGHTS_BYTES)
    # The superblob's base (8 SHAVEs) has the same inputs and outputs as every count.
    base = superblobfmt.parse(data, path=path).base if kind == "superblob" else None
    inputs, outputs = blob_tensors(path, base)
    wide = [o["name"] for o in outputs if o["dtype"] == "float32"]
    if fp16_output and wide:
        raise KernelkitError(f"--fp16-output: the {kind} is already compiled, and its output(s) "
                             f"{', '.join(map(repr, wide))} are FP32", path=path, where="--fp16-output",
                             hint=f"compile it again with FP16 outputs (kernelkit compile MODEL -o NAME.{kind} "
                                  "--fp16-output), or drop --fp16-output")
    report, own = _report_for(Path(source))
    layout_warnings = model_layouts(inputs, report, path, strict=own)
    executable = f"{name}.{kind}"
    recorded = (report or {}).get("head")
    notes = []
    if isinstance(recorded, dict) and recorded.get("family") == "ultralytics" and mean is None and scale is None \
            and reverse_channels is None and not _preprocessed(report):
        # Ultralytics models take RGB scaled to 0..1; the patch built no preprocessing in, so DepthAI does it
        pre = Preprocessing(mean=[0.0], scale=[255.0], reverse_channels=True)
        notes.append("an Ultralytics model takes RGB in 0..1: declared scale 255 and RGB channel order; "
                     "give --scale/--mean/--no-reverse-channels to declare otherwise")
    config = make_config(name, executable, inputs, outputs, pre,
                         make_head(head or HeadOptions(), inputs, outputs, recorded))
    payload = io.BytesIO()
    mtime = int(time.time())
    with tarfile.open(fileobj=payload, mode="w:xz") as tar:
        for member, content in (("config.json", (json.dumps(config, indent=2) + "\n").encode()),
                                (executable, data)):
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(content), mtime, 0o644
            tar.addfile(info, io.BytesIO(content))
    atomic_write(out, payload.getvalue())
    warnings = layout_warnings + notes + [
        f"input \"{e['name']}\" takes FP32, and DepthAI's frames are U8 or FP16: camera frames need a "
        "model compiled with U8 inputs (kernelkit compile --u8-input, or patch with --u8-input)"
        for e in inputs if _is_image(e) and e["dtype"] == "float32"]
    return ArchiveResult(out, config, executable, kind, compiled, warnings)
