"""plugin-check of a `kernelkit patch` output folder: compiled as it is, with check ELFs in place of the kernels'
`.bin`, and a verdict on every layer it binds to a kernel."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.doctor.plugin_check.check_model import layer_case, prepare_bindings
from kernelkit.doctor.plugin_check.launch_compare import compare_with_kernelkit
from kernelkit.doctor.plugin_check.run import CHECK_BLOB_SUFFIX, compile_check, keep_check_folder
from kernelkit.doctor.plugin_check.verdict import REJECTED, Verdict, blob_batch, read_layer_stages, read_model_refusal
from kernelkit.facts.device import DEFAULT_SHAVES
from kernelkit.model import patchdir
from kernelkit.myriad import compile as compile_mod
from kernelkit.myriad import graph_dump

@dataclass
class PatchCheck:
    """A patch folder compiled with check ELFs: the plugin's word on the whole model and per bound layer."""

    compiled: bool
    message: str                      # the plugin's error when it refused the model
    verdicts: list[Verdict]
    header: object = None             # blob.BlobHeader of the check blob
    blob_model: object = None         # the check blob read whole, its stages' layers from the dump (the estimate)


def check_patch_dir(outdir: str | Path, *, jobs: int | None = None, keep: str | Path | None = None,
                    label: str | None = None) -> list[Verdict]:
    """The plugin's verdict on every layer a patch output folder binds to a kernel (see check_patch)."""
    return check_patch(outdir, keep=keep, label=label).verdicts


def check_patch(outdir: str | Path, *, keep: str | Path | None = None, label: str | None = None) -> PatchCheck:
    """Compile a patch output folder as it is, with check ELFs in place of the kernels' `.bin`, and judge
    every layer it binds to a kernel."""
    from kernelkit.ir.load import load_model
    from kernelkit.myriad import blob as blobfmt
    from kernelkit.myriad import toolchain

    outdir = Path(outdir)
    source = patchdir.read(outdir)
    if source.custom_layers is None or not source.custom_layers.is_file():
        raise KernelkitError("the patch output binds no custom layer (no custom_layers.xml)", path=outdir,
                             hint="plugin-check judges custom-layer bindings; `kernelkit compile` the folder")
    report = source.report or {}
    bound = [(entry["type"], name) for entry in report.get("custom_layers", []) for name in entry.get("layers", [])]
    model = load_model(source.model)
    order = [layer for layer in model.topological_order() if any(layer.name == n for _, n in bound)]
    cases = [layer_case(model, layer, f"{label + ': ' if label else ''}{layer.name} ({layer.type})")
             for layer in order]
    tc = toolchain.require()
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-") as tmp:
        folder = Path(tmp)
        for item in outdir.iterdir():
            if item.is_file() and item.suffix in (".xml", ".bin", ".cl"):
                shutil.copyfile(item, folder / item.name)
        check_xml = prepare_bindings(folder / source.custom_layers.name, folder)
        config = dict(source.config)
        shaves = int(config.pop(compile_mod.SHAVES_KEY, DEFAULT_SHAVES))
        cmx = config.pop(compile_mod.CMX_KEY, None)
        blob = folder / ("model" + CHECK_BLOB_SUFFIX)
        # the plugin's stage -> layer map too: the estimate puts each Custom stage on its layer (doctor.estimate_use)
        config.setdefault(compile_mod.DUMP_KEY, str(graph_dump.dump_path(blob)))
        full = compile_mod.make_config(shaves=shaves, cmx_slices=int(cmx) if cmx else None, custom_layers=check_xml,
                                       extra=config)
        compiled = compile_check(folder / source.model.name, blob, full, tc)
        verdicts = [Verdict(case, REJECTED) for case in cases]
        batch = blob_batch(blob) if compiled.compiled else 1
        if compiled.compiled:
            read_layer_stages(verdicts, order, blob, batch)
        else:
            read_model_refusal(verdicts, order, compiled, blob)
        for verdict in verdicts:
            compare_with_kernelkit(verdict, source.custom_layers, batch)
            if keep is not None and blob.is_file():
                verdict.blob = Path(keep) / blob.name
        header = blobfmt.read_header(blob.read_bytes()) if compiled.compiled else None
        blob_model = _read_check_blob(blob) if compiled.compiled else None
        if keep is not None:
            keep_check_folder(folder, Path(keep), [])
    return PatchCheck(compiled.compiled, compiled.message, verdicts, header, blob_model)


def _read_check_blob(blob: Path):
    """The check blob with its stages' layers: its Custom stages are the plugin's own (work sizes, buffers,
    SHAVEs) though their ELFs cannot run, so the estimate of a kernel's cost reads them. None if unreadable."""
    try:
        return graph_dump.read_blob_with_layers(blob)
    except KernelkitError:
        return None
