"""The model doctor's patchers and their driver: make an IR/ONNX model compile for MYRIAD.

`patch_model` loads the model, applies the patchers in a fixed order (preprocess, constant folding,
version downgrades, rewrite or custom layer for unsupported ops, precision fixes, IR v10 for 2021.4), checks the result with
`kernelkit.model.blockers.find_blockers`, and writes OUTDIR all-or-nothing:
  model.xml/.bin, custom_layers.xml (+ kernel sources), compile.conf, patch-report.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.facts.device import DEFAULT_SHAVES, MAX_SHAVES
from kernelkit.model import patchdir
from kernelkit.model.passes.base import Change, PatchContext, Refusal, version_number

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


def patch_model(model_path, outdir, target: str, *, input_shapes: dict | None = None, force: bool = False,
                preprocessing=None, kernels_dir=None, prefer: str = "native",
                shaves: int = DEFAULT_SHAVES, input_values: dict | None = None,
                outputs: list[str] | None = None) -> PatchResult:
    """Patch `model_path` (.xml or .onnx) for MYRIAD `target` into `outdir`. Never touches the input.
    input_values (`--input-value`): inputs frozen to constants before If/Loop/Shape folding (`freeze`).
    outputs (`--output`): the tensors the patched model ends at (`kernelkit.ir.cut`)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.ir.load import load_model
    from kernelkit.model.blockers import find_blockers
    from kernelkit.model.formulations.registry import formulations
    from kernelkit.facts.knowledge import load_knowledge
    from kernelkit.model.passes import (boundary, custom_layer, fc_as_conv, fold, freeze, native, precision,
                                        preprocess, rewrite, version)

    kb = load_knowledge(target)                       # refuses an unknown target
    prefer = native.normalise_prefer(prefer)
    if not 1 <= shaves <= MAX_SHAVES:
        raise KernelkitError(f"{shaves} SHAVEs: the Myriad X has {MAX_SHAVES}", where="--shaves",
                             hint=f"use 1 to {MAX_SHAVES}")
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
    blocked |= {b.layer_name for b in found if b.kind == "opset" and b.type.lower() in formulations()}
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
        patchdir.write(outdir, model, report, target=target, shaves=shaves, bindings=binder.bindings, force=force)
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
        "schema": patchdir.REPORT_SCHEMA,
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
