"""The model doctor's patchers and their driver: make an IR/ONNX model compile for MYRIAD.

`patch_model` loads the model, applies the patchers in a fixed order (preprocess, constant folding,
version downgrades, rewrite or custom layer for unsupported ops, precision fixes, IR v10 for 2021.4), checks the result with
`kernelkit.model.blockers.find_blockers`, and writes OUTDIR all-or-nothing:
  model.xml/.bin, custom_layers.xml (+ kernel sources), compile.conf, patch-report.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.model.passes.base import TARGETS, Change, PatchContext, Refusal, version_number

REPORT_FILE = "patch-report.json"
REPORT_SCHEMA = "kernelkit.patch/1"
CUSTOM_LAYERS_FILE = "custom_layers.xml"
COMPILE_CONF = "compile.conf"
DEFAULT_SHAVES = 6        # DepthAI/blobconverter's usual choice; CMX slices follow the SHAVE count


@dataclass
class PatchResult:
    outdir: Path
    report: dict
    changes: list[Change] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    remaining: list = field(default_factory=list)       # kernelkit.model.blockers.Blocker left in the patched model
    choices: list = field(default_factory=list)         # kernelkit.model.passes.native.Choice per blocked layer

    @property
    def exit_code(self) -> int:
        return 0 if not self.remaining else 1


def _compile_conf(target: str, custom_layers: bool, shaves: int) -> str:
    from kernelkit.facts.knowledge import load_knowledge

    lines = [f"# compile_tool -m model.xml -d MYRIAD -c {COMPILE_CONF}   (OpenVINO {target} MYRIAD plugin)",
             "# Run it from this folder: the custom-layer path below is relative to the working directory.",
             f"MYRIAD_NUMBER_OF_SHAVES {shaves}",
             f"MYRIAD_NUMBER_OF_CMX_SLICES {shaves}",
             "MYRIAD_THROUGHPUT_STREAMS 1"]
    if custom_layers:
        lines.append(f"{load_knowledge(target).custom_layers_key} {CUSTOM_LAYERS_FILE}")
    return "\n".join(lines) + "\n"


def patch_model(model_path, outdir, target: str, *, input_shapes: dict | None = None, force: bool = False,
                preprocessing=None, kernels_dir=None, prefer: str = "native",
                shaves: int = DEFAULT_SHAVES, input_values: dict | None = None,
                outputs: list[str] | None = None) -> PatchResult:
    """Patch `model_path` (.xml or .onnx) for MYRIAD `target` into `outdir`. Never touches the input.
    input_values (`--input-value`): inputs frozen to constants before If/Loop/Shape folding (`freeze`).
    outputs (`--output`): the tensors the patched model ends at (`kernelkit.ir.cut`)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.core.fsutil import staged_directory
    from kernelkit.model.blockers import find_blockers
    from kernelkit.ir.load import load_model
    from kernelkit.facts.knowledge import load_knowledge
    from kernelkit.model.passes import (boundary, custom_layer, fc_as_conv, fold, freeze, native, precision,
                                        preprocess, rewrite, version)

    kb = load_knowledge(target)                       # refuses an unknown target
    prefer = native.normalise_prefer(prefer)
    if not 1 <= shaves <= 16:
        raise KernelkitError(f"{shaves} SHAVEs: the Myriad X has 16", where="--shaves", hint="use 1 to 16")
    model_path = Path(model_path)
    outdir = Path(outdir)
    _refuse_output_over_input(model_path, outdir)
    model = load_model(model_path, input_shapes, input_values, fold=True, outputs=outputs)
    _refuse_unknown_opsets(model)
    before = find_blockers(model, target)
    ctx = PatchContext(model, target)
    frozen = freeze.apply(ctx, model.freeze_log)
    options = preprocessing or preprocess.Preprocessing()
    preprocess.apply(ctx, options)
    fold.apply(ctx)
    # Downgrades first: a kernel binds the op's old form (Interpolate-4 with its 4 inputs, not -11).
    version.apply(ctx)

    found = find_blockers(model, target)
    blocked = {b.layer_name for b in found if b.kind in ("unsupported", "limit")}
    # An op too new for the target's reader that no downgrade took may still have a native formulation.
    blocked |= {b.layer_name for b in found if b.kind == "opset" and b.type.lower() in rewrite.REWRITES}
    blocked |= rewrite.needed_layers(model) if target == "2021.4" else set()
    binder = custom_layer.Binder(ctx, kernels_dir)
    try:
        # Per layer, the native formulation or the library kernel first (kernelkit.model.passes.native decides from
        # the measured fp16 errors and --prefer), the other one as the fallback.
        choices = native.plan(ctx, blocked, prefer, set(binder.index))
        native_first = {name for name, choice in choices.items() if choice.first == "native"}
        rewrite.apply(ctx, native_first)
        custom_layer.apply(ctx, binder, blocked - _changed(ctx))
        rewrite.apply(ctx, blocked - native_first - _changed(ctx))
        native.settle(choices, ctx.changes)
        fc_as_conv.apply(ctx)
        precision.apply(ctx)
        boundary.apply(ctx)
        if model.version not in kb.ir_versions:
            version.to_ir_v10(ctx)
        bound_types = [b.layer_type for b in binder.bindings.values()]
        remaining = find_blockers(model, target, custom_types=bound_types)
        report = _report(model_path, target, input_shapes, options, ctx, binder, before, remaining, model)
        report["prefer"] = prefer
        report["choices"] = [choice.to_dict() for choice in choices.values()]
        report["source"]["input_values"] = {k: list(v) for k, v in (input_values or {}).items()}
        report["source"]["outputs"] = list(outputs or [])
        report["frozen"] = frozen
        with staged_directory(outdir, force=force) as stage:
            model.save(stage / "model.xml")
            wrote_bindings = custom_layer.write_bindings(binder.bindings, stage, CUSTOM_LAYERS_FILE) is not None
            (stage / COMPILE_CONF).write_text(_compile_conf(target, wrote_bindings, shaves))
            (stage / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    except KernelkitError as exc:
        if exc.path is None:                  # a patcher's error is about this model: name it
            exc.path = str(model_path)
            if exc.hint is None and any(d < 0 for p in model.parameters() for port in p.outputs for d in port.dims):
                exc.hint = "the model has dynamic dimensions: fix them with --input-shape NAME=D0,D1,..."
        raise
    finally:
        binder.close()
    return PatchResult(outdir, report, ctx.changes, ctx.refusals, remaining, list(choices.values()))


def _changed(ctx) -> set[str]:
    """Layers a rewrite or a kernel already took care of (a downgrade does not settle an unsupported op)."""
    return {c.layer for c in ctx.changes if c.patcher in ("rewrite", "custom_layer")}


def _newest_opset() -> int:
    import importlib.util

    return max(n for n in range(1, 64) if importlib.util.find_spec(f"openvino.opset{n}"))


def _refuse_unknown_opsets(model) -> None:
    """An op version no OpenVINO release defines is a broken model, not a blocker to patch around."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model.passes.version import opset_number

    newest = None
    for layer in model.layers:
        number = opset_number(layer)
        if number is None:
            continue
        newest = newest or _newest_opset()
        if number > newest:
            raise KernelkitError(f"op version {layer.version} does not exist (OpenVINO knows opset1..opset{newest})",
                                 path=model.path, where=layer.describe(), line=layer.element.sourceline,
                                 hint="fix the layer's version attribute")


def _refuse_output_over_input(model_path: Path, outdir: Path) -> None:
    from kernelkit.core.errors import KernelkitError

    try:
        inside = model_path.resolve().is_relative_to(outdir.resolve())
    except (OSError, RuntimeError):          # a symlink loop: load_model says what is wrong with the path
        inside = False
    if inside:
        raise KernelkitError("the output folder contains the input model; patch never modifies its input",
                             path=outdir, where="-o", hint="choose another output folder")


def _report(model_path, target, input_shapes, options, ctx, binder, before, remaining, model) -> dict:
    return {
        "schema": REPORT_SCHEMA,
        "source": {"model": str(Path(model_path).resolve()),
                   "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()}},
        "target": target,
        "ir_version": model.version,
        "preprocessing": options.to_dict(),
        "blockers_before": [b.to_dict() for b in before],
        "changes": [c.to_dict() for c in ctx.changes],
        "refusals": [r.to_dict() for r in ctx.refusals],
        "custom_layers": [{"type": b.layer_type, "kernel": b.spec.name, "layers": b.bound_layers,
                           "alternatives": len(b.layers)} for b in binder.bindings.values()],
        "remaining_blockers": [b.to_dict() for b in remaining],
        "ok": not remaining,
    }


def describe_fix(blocker, model, target: str) -> str | None:
    """What `patch` would do about one `kernelkit.model.blockers.Blocker` (None: nothing it can do)."""
    from kernelkit.model.passes import custom_layer, freeze, precision, rewrite, version

    kind = blocker.kind
    if kind == "ir-version":
        return "write IR v10" if not blocker.layer_id else "rename the layer to a unique name"
    if not blocker.layer_id:
        return None
    layer = model.layer(blocker.layer_id)
    if layer.type in freeze.CONTROL_FLOW and kind in ("opset", "unsupported"):
        return freeze.describe_fix(layer, model)
    if kind == "opset":
        return version.describe_fix(layer, target)
    if kind in ("unsupported", "limit") or (kind == "opset" and layer.type.lower() in rewrite.REWRITES):
        return _describe_choice(layer)
    if kind == "precision":
        return precision.describe_fix(model, layer, target)
    if kind == "dtype":
        found = {p.element_type for p in layer.outputs} | {layer.attrs.get("element_type")}
        pairs = [f"{t} -> {precision.RETYPE[t]}" for t in sorted(t for t in found if t in precision.RETYPE)]
        return f"retype {', '.join(pairs)}" if pairs else None
    return None


def _describe_choice(layer) -> str | None:
    """The fix `patch --prefer native` (the default) tries first for an unsupported layer, and the other."""
    from kernelkit.model.passes import custom_layer, native, rewrite

    index = _kernel_index()
    kernel = custom_layer.describe_fix(index, layer)
    formulation = rewrite.describe_fix(layer)
    if not formulation:
        return kernel
    choice = native.choose(layer, "native", True, layer.type.lower() in index)
    if choice.first == "native" or not kernel:
        return f"{formulation} ({native.error_text(choice.measurement)})"
    return f"{kernel} ({choice.reason}; else {formulation})"


_INDEX: dict | None = None


def _kernel_index() -> dict:
    global _INDEX
    if _INDEX is None:
        from kernelkit.core.paths import KERNELS_DIR
        from kernelkit.model.passes.custom_layer import kernel_index

        _INDEX = kernel_index(KERNELS_DIR)
    return _INDEX


def format_patch_result(result: PatchResult) -> str:
    """The human report `kernelkit patch` prints."""
    report = result.report
    lines = [f"patched for MYRIAD {report['target']} (IR v{report['ir_version']}) -> {result.outdir}"]
    for change in result.changes:
        lines.append(f"  {change.patcher:<12} {change.layer}: {change.before} -> {change.after}")
    for choice in result.choices:
        got = {"native": "native formulation", "kernel": "library kernel"}.get(choice.chosen, "nothing fitted")
        lines.append(f"  {'chose':<12} {choice.layer} ({choice.type}): {got}; {choice.reason}")
    changed = {c.layer for c in result.changes}
    for refusal in result.refusals:
        if refusal.layer in changed:          # another patcher fixed it; the report keeps the refusal
            continue
        lines.append(f"  refused      {refusal.layer} ({refusal.type}, {refusal.patcher}): {refusal.reason}")
    if result.remaining:
        lines.append(f"{len(result.remaining)} blocker(s) remain:")
        for b in result.remaining:
            where = f"{b.layer_name} ({b.type}-{version_number(b.version)})" if b.layer_id else "model"
            lines.append(f"  {b.kind:<13} {where}: {b.reason}")
    else:
        lines.append("no blocker left for this target")
    return "\n".join(lines)


def run_doctor(model, outdir, target: str, *, force: bool = False, input_shapes: dict | None = None,
               prefer: str = "native") -> int:
    """inspect -> patch -> verify on one model, printing each report (the lead's `kernelkit demo`)."""
    from kernelkit.model.blockers import find_blockers
    from kernelkit.ir.load import load_model
    from kernelkit.doctor.verify import format_verify_result, verify

    loaded = load_model(model, input_shapes)
    blockers = find_blockers(loaded, target)
    print(f"inspect: {len(blockers)} blocker(s) in {model} for MYRIAD {target}")
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


__all__ = ["TARGETS", "PatchResult", "patch_model", "describe_fix", "run_doctor", "format_patch_result"]


EXIT_NEEDS_CLC = 4     # `patch --compile`: the plugin compiles the model, but the kernels' .bin need clc


@dataclass
class NeedsClc:
    """`compile_patched` without clc: the real plugin compiled the model with metadata-only check ELFs in place
    of the kernels' `.bin` (kernelkit plugin-check), so it compiles for MYRIAD once clc's binaries replace
    them. No blob is written: one made with check ELFs cannot run."""

    missing: list[str]                 # the .bin files only clc builds
    verdicts: list                     # kernelkit.doctor.plugin_check.Verdict, one per bound layer


def compile_patched(outdir, target: str):
    """Compile a patch output folder to OUTDIR/model.blob with the real MYRIAD plugin: the final word on
    whether the patched model compiles. When its custom layers have no `.bin` (no clc), the plugin compiles it
    with check ELFs instead and a NeedsClc comes back. Raises CompileFailed (refused), ToolchainUnavailable,
    KernelkitError."""
    from kernelkit.kernel.bindings import myriad_read
    from kernelkit.core.errors import KernelkitError
    from kernelkit.myriad.compile import CompileFailed, compile_model, parse_compile_error

    outdir = Path(outdir)
    if target != "2021.4":
        raise KernelkitError(f"the real MYRIAD compiler kernelkit runs is OpenVINO 2021.4's, not {target}'s",
                             where="--compile", hint="patch with --target 2021.4 to confirm by compiling")
    bindings = outdir / CUSTOM_LAYERS_FILE
    if bindings.is_file():
        missing = sorted({source for layer in myriad_read.load(bindings) for kernel in layer.kernels
                          for source in kernel.sources if not (outdir / source).is_file()})
        if missing:
            from kernelkit.doctor.plugin_check import ACCEPTED, check_patch

            checked = check_patch(outdir)
            if not checked.compiled:
                name, layer_type = parse_compile_error(checked.message)
                raise CompileFailed(checked.message, layer_name=name, layer_type=layer_type,
                                    path=outdir / "model.xml", plugin_text=checked.message)
            unused = [v for v in checked.verdicts if v.status != ACCEPTED]
            if unused:
                v = unused[0]
                raise CompileFailed(f"the plugin compiled the model without the binding of {v.case.label()}: "
                                    f"{v.message}", path=bindings, plugin_text=v.message)
            return NeedsClc(missing, checked.verdicts)
    return compile_model(outdir, outdir / "model.blob")
