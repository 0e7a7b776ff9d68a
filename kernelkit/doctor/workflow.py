"""The model doctor's steps run in order on one model: inspect -> patch -> verify (`run_doctor`, what
`kernelkit demo` shows); a model file or patch folder compiled with its own settings (`compile_folder`,
`kernelkit compile`); and the real plugin's word on a patch folder (`compile_patched`, `patch --compile`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kernelkit.facts.target import Target, compiler_target, get_target

EXIT_NEEDS_CLC = 4     # `patch --compile`: the plugin compiles the model, but the kernels' .bin need clc


@dataclass
class NeedsClc:
    """`compile_patched` without clc: the real plugin compiled the model with metadata-only check ELFs in place
    of the kernels' `.bin` (kernelkit plugin-check), so it compiles for MYRIAD once clc's binaries replace
    them. No blob is written: one made with check ELFs cannot run."""

    missing: list[str]                 # the .bin files only clc builds
    verdicts: list                     # kernelkit.doctor.plugin_check.verdict.Verdict, one per bound layer
    check_blob: object = None          # the check compile's blob, read (blob_reader.BlobModel): for the estimate


def compile_folder(source, out, *, shaves: int | None = None, cmx_slices: int | None = None,
                   u8_input: bool | None = None, fp16_output: bool = False, blob_version: str | None = None,
                   custom_layers=None, timeout: float | None = None, superblob: bool = False,
                   jobs: int | None = None):
    """Compile a model file, or a patch folder's model.xml with its compile.conf and custom layers, to the
    blob `out` (kernelkit.myriad.compile.compile_model), or with `superblob` to a superblob of every SHAVE count
    compiled in up to `jobs` processes at once (kernelkit.myriad.superblob). u8_input None takes the patch
    report's `preprocessing.u8_input` (else False); fp16_output: FP16 float outputs (compile_tool's `-op FP16`);
    explicit options beat the folder's compile.conf."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model import patchdir
    from kernelkit.myriad.compile import DEFAULT_TIMEOUT, CompileFailed, compile_model
    from kernelkit.myriad.superblob import compile_superblob

    source = Path(source)
    if not source.exists():
        raise KernelkitError("no such file or folder", path=source,
                             hint="pass an IR .xml, an .onnx file or a `kernelkit patch` output folder")
    options = dict(shaves=shaves, cmx_slices=cmx_slices, blob_version=blob_version, fp16_output=bool(fp16_output),
                   timeout=DEFAULT_TIMEOUT if timeout is None else timeout)
    compile_to = compile_model
    if superblob:
        def compile_to(model, out, **settings):
            return compile_superblob(model, out, jobs=jobs, **settings)
    if not source.is_dir():
        return compile_to(source, out, u8_input=bool(u8_input), custom_layers=custom_layers, **options)
    folder = patchdir.read(source)
    if u8_input is None:
        u8_input = bool((folder.report.get("preprocessing") or {}).get("u8_input", False))
    try:
        return compile_to(folder.model, out, u8_input=u8_input,
                          custom_layers=custom_layers or folder.custom_layers, config=folder.config, **options)
    except CompileFailed as exc:
        _name_the_source_layer(exc, folder.report)
        raise


def _name_the_source_layer(failure, report: dict) -> None:
    """A refusal of a layer the patch made also names the user's layer it was made from (the report's changes)."""
    from kernelkit.model.patchdir import source_layer

    if not failure.layer_name:
        return
    layer, layer_type, patcher, _ = source_layer(report.get("changes", []), failure.layer_name)
    if patcher and failure.where:
        failure.where += f", which patch's {patcher} made from your layer \"{layer}\"" + \
            (f" ({layer_type})" if layer_type else "")


def compile_patched(outdir, target: Target | str):
    """Compile a patch output folder to OUTDIR/model.blob with the real MYRIAD plugin: the final word on
    whether the patched model compiles. When its custom layers have no `.bin` (no clc), the plugin compiles it
    with check ELFs instead and a NeedsClc comes back. Raises CompileFailed (refused), ToolchainUnavailable,
    KernelkitError."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.plugin_check.patch_folder import check_patch
    from kernelkit.doctor.plugin_check.verdict import ACCEPTED
    from kernelkit.kernel.bindings import myriad_read
    from kernelkit.kernel.bindings.model import source_file
    from kernelkit.model import patchdir
    from kernelkit.myriad.compile import CompileFailed, parse_compile_error

    outdir = Path(outdir)
    target = get_target(target)
    if not target.compiler:
        compiler = compiler_target().name
        raise KernelkitError(f"the real MYRIAD compiler kernelkit runs is OpenVINO {compiler}'s, not {target.name}'s",
                             where="--compile", hint=f"patch with --target {compiler} to confirm by compiling")
    bindings = outdir / patchdir.CUSTOM_LAYERS_FILE
    if bindings.is_file():
        missing = sorted({source for layer in myriad_read.load(bindings) for kernel in layer.kernels
                          for source in kernel.sources
                          if source_file(layer, source, line=kernel.line, missing_ok=True) is None})
        if missing:
            checked = check_patch(outdir)
            if not checked.compiled:
                name, layer_type = parse_compile_error(checked.message)
                raise CompileFailed(checked.message, layer_name=name, layer_type=layer_type,
                                    path=outdir / patchdir.MODEL_FILE, plugin_text=checked.message)
            unused = [v for v in checked.verdicts if v.status != ACCEPTED]
            if unused:
                v = unused[0]
                raise CompileFailed(f"the plugin compiled the model without the binding of {v.case.label()}: "
                                    f"{v.message}", path=bindings, plugin_text=v.message)
            return NeedsClc(missing, checked.verdicts, checked.blob_model)
    return compile_folder(outdir, outdir / patchdir.BLOB_FILE)


def run_doctor(model, outdir, target: Target | str, *, force: bool = False, input_shapes: dict | None = None,
               prefer: str = "native") -> int:
    """inspect -> patch -> verify on one model, printing each report (the lead's `kernelkit demo`)."""
    from kernelkit.doctor.verify import format_verify_result, verify
    from kernelkit.ir.load import load_model
    from kernelkit.model.blockers import find_blockers
    from kernelkit.model.fixes import describe_fix
    from kernelkit.model.passes.base import version_number
    from kernelkit.model.patcher import format_patch_result, patch_model

    target = get_target(target)
    loaded = load_model(model, input_shapes)
    blockers = find_blockers(loaded, target)
    print(f"inspect: {len(blockers)} blocker(s) in {model} for MYRIAD {target.name}")
    for b in blockers:
        where = f"{b.layer_name} ({b.type}-{version_number(b.version)})" if b.layer_id else "model"
        fix = describe_fix(b, loaded, target)
        print(f"  {b.kind:<13} {where}: {b.reason}" + (f"\n  {'':<13} fix: {fix}" if fix else ""))
    print()
    result = patch_model(model, outdir, target, input_shapes=input_shapes, force=force, prefer=prefer)
    print(format_patch_result(result))
    print()
    checked = verify(outdir)
    print(format_verify_result(checked))
    return max(result.exit_code, checked.exit_code)
