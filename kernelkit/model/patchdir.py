"""The patch folder: what `kernelkit patch` writes and every later step (verify, compile, plugin-check,
archive) reads. This module alone names its files, writes it (all or nothing) and reads it back.

  model.xml/.bin       the patched IR
  custom_layers.xml    the bindings, with each kernel's .cl (and .bin) beside it, when a layer is bound
  compile.conf         compile_tool's `-c` file: SHAVEs, CMX slices, the custom-layer key of the target, keys the
                       patch needs (the report's "compile_options")
  patch-report.json    what was changed and why (schema kernelkit.patch/1); `plugin`: the real plugin's verdict
  model.blob           the blob, when the real plugin compiled the folder (patch does by default where it can)
  model.graph.dot      the plugin's internal-graph dump of that compile (kernelkit.myriad.graph_dump)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import named_file
from kernelkit.facts.device import DEFAULT_SHAVES
from kernelkit.facts.target import Target, get_target

MODEL_FILE = "model.xml"              # its weights are model.bin beside it
CUSTOM_LAYERS_FILE = "custom_layers.xml"
COMPILE_CONF = "compile.conf"
REPORT_FILE = "patch-report.json"
REPORT_SCHEMA = "kernelkit.patch/1"
BLOB_FILE = "model.blob"              # `patch` (where the plugin runs) and the demo compile the folder to this
GRAPH_DUMP_FILE = "model.graph.dot"   # beside it: the plugin's stage -> layer map (myriad.graph_dump.dump_path)
# Patch steps whose output is a new form of a layer (a refusal of it may be the patch's own doing).
REWRITING = ("rewrite", "custom_layer", "fc_as_conv", "native")


@dataclass
class PatchFolder:
    """A patch folder read back: its files, compile.conf's settings and the report."""

    folder: Path
    model: Path
    custom_layers: Path | None = None        # compile.conf's custom-layer file, else custom_layers.xml if present
    config: dict[str, str] = field(default_factory=dict)    # compile.conf without the custom-layer key
    report: dict = field(default_factory=dict)              # {} when the folder has no report

    @property
    def shaves(self) -> int:
        from kernelkit.myriad.compile import SHAVES_KEY

        value = self.config.get(SHAVES_KEY, DEFAULT_SHAVES)
        try:
            return int(value)
        except ValueError:
            raise KernelkitError(f"{SHAVES_KEY} must be a whole number, got {value!r}",
                                 path=self.folder / COMPILE_CONF) from None

    @property
    def target(self) -> str | None:
        """The target name the folder was patched for (None: no report)."""
        return self.report.get("target")


def compile_conf(target: Target | str, custom_layers: bool, shaves: int, options: dict | None = None) -> str:
    """options: keys the patch needs beyond these (the report's "compile_options", e.g. keeping the batch)."""
    target = get_target(target)
    lines = [f"# compile_tool -m {MODEL_FILE} -d MYRIAD -c {COMPILE_CONF}   (OpenVINO {target.name} MYRIAD plugin)",
             "# Run it from this folder: the custom-layer path below is relative to the working directory.",
             f"MYRIAD_NUMBER_OF_SHAVES {shaves}",
             f"MYRIAD_NUMBER_OF_CMX_SLICES {shaves}",
             "MYRIAD_THROUGHPUT_STREAMS 1"]
    lines += [f"{key} {value}" for key, value in (options or {}).items()]
    if custom_layers:
        lines.append(f"{target.custom_layers_key} {CUSTOM_LAYERS_FILE}")
    return "\n".join(lines) + "\n"


def write(outdir, model, report: dict, *, target: Target | str, shaves: int = DEFAULT_SHAVES, bindings=None,
          force: bool = False) -> Path:
    """Write the folder in one rename (nothing is left half written): the IR, the bindings
    (kernelkit.model.passes.custom_layer.Binding by layer type) with their kernel files, compile.conf and the
    report."""
    from kernelkit.core.fsutil import staged_directory
    from kernelkit.model.passes.custom_layer import write_bindings

    outdir = Path(outdir)
    with staged_directory(outdir, force=force) as stage:
        model.save(stage / MODEL_FILE)
        wrote_bindings = write_bindings(bindings or {}, stage, CUSTOM_LAYERS_FILE) is not None
        (stage / COMPILE_CONF).write_text(compile_conf(target, wrote_bindings, shaves, report.get("compile_options")))
        (stage / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return outdir


def update_report(folder, report: dict) -> Path:
    """Rewrite the folder's patch report (atomically): `patch` adds the real plugin's verdict after compiling."""
    from kernelkit.core.fsutil import atomic_write

    return atomic_write(Path(folder) / REPORT_FILE, json.dumps(report, indent=2) + "\n")


def read_report(folder) -> dict:
    """The folder's patch report; {} when it has none."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise KernelkitError(f"unreadable patch report: {exc}", path=path) from None


def read(folder) -> PatchFolder:
    """A patch folder (or any folder with a model.xml, a compile.conf and custom layers being optional)."""
    from kernelkit.myriad.compile import CUSTOM_LAYER_KEYS, read_compile_conf

    folder = Path(folder)
    model = folder / MODEL_FILE
    if not model.is_file():
        raise KernelkitError(f"folder has no {MODEL_FILE}", path=folder,
                             hint="pass the output folder of `kernelkit patch`, or the model file itself")
    found = PatchFolder(folder, model, report=read_report(folder))
    conf = folder / COMPILE_CONF
    if conf.is_file():
        found.config = read_compile_conf(conf)
        for key in CUSTOM_LAYER_KEYS:
            if key in found.config:
                found.custom_layers = named_file(folder, found.config.pop(key), source=conf, where=key,
                                                 what="custom layers XML", inside=False)
    if found.custom_layers is None and (folder / CUSTOM_LAYERS_FILE).is_file():
        found.custom_layers = folder / CUSTOM_LAYERS_FILE
    return found


def source_layer(changes, name: str) -> tuple[str, str | None, str | None, str | None]:
    """(user's layer, its type, the patch step that made `name`, the layer that step changed) behind the
    patched model's layer `name`: a change's layer when `name` is it or one of the layers it became
    (`LAYER/...`), followed back through earlier changes (CumSum -> MatMul -> Convolution); else `name`."""
    records = [c if isinstance(c, dict) else c.to_dict() for c in changes]

    def made(layer_name, skip):
        found = [r for r in records if r is not skip and r.get("patcher") in REWRITING + ("precision", "boundary")
                 and (layer_name == r["layer"] or layer_name.startswith(r["layer"] + "/"))]
        return max(found, key=lambda r: len(r["layer"]), default=None)

    nearest = made(name, None)
    if nearest is None:
        return name, None, None, None
    root, seen = nearest, {id(nearest)}
    while True:
        earlier = made(root["layer"], root)
        if earlier is None or id(earlier) in seen:
            break
        seen.add(id(earlier))
        root = earlier
    before = root.get("before", "")
    layer_type = before.split(" ")[0].rsplit("-", 1)[0] if before else None
    return root["layer"], layer_type or None, nearest.get("patcher"), nearest["layer"]
