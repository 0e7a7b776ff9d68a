"""Patch a model for MYRIAD: the passes in their one order, run in memory (`patch_ir`: an IRModel and a
target in, the patched model and its report out) or folder to folder (`patch_model`: loads the model, patches
it in memory and writes the patch folder all-or-nothing through kernelkit.model.patchdir).

The order: freeze and preprocess (what the user asked for), constant folding, version downgrades, then per
blocked layer a native formulation or a library kernel (the other as the fallback), fc_as_conv, precision
fixes, the network's edges, and the IR version the target reads. The result is checked with
`kernelkit.model.blockers.find_blockers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.device import DEFAULT_SHAVES, MAX_SHAVES
from kernelkit.facts.target import Target, get_target
from kernelkit.model import patchdir
from kernelkit.model.blockers import find_blockers
from kernelkit.model.formulations.registry import formulations
from kernelkit.model.passes import (boundary, custom_layer, fc_as_conv, fold, freeze, native, precision, preprocess,
                                    rewrite, version)
from kernelkit.model.passes.base import Change, Pass, PatchContext, Refusal, version_number


@dataclass
class PatchResult:
    outdir: Path | None                # None: patched in memory only
    report: dict
    changes: list[Change] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    remaining: list = field(default_factory=list)       # kernelkit.model.blockers.Blocker left in the patched model
    choices: list = field(default_factory=list)         # kernelkit.model.passes.native.Choice per blocked layer
    model: object = None                                # the patched kernelkit.ir.model.IRModel
    bindings: dict = field(default_factory=dict)        # layer type -> custom_layer.Binding (kernel files built)
    _binder: object = field(default=None, repr=False, compare=False)   # owns the bindings' build folder

    @property
    def exit_code(self) -> int:
        """1 blockers remain or the real plugin refused the folder, 4 it compiles once clc builds the kernels,
        else 0 (report["plugin"], written by kernelkit.doctor.confirm, holds the plugin's verdict)."""
        if self.remaining:
            return 1
        return {"refused": 1, "needs-clc": 4}.get((self.report.get("plugin") or {}).get("status"), 0)

    def close(self) -> None:
        """Remove the temporary folder the bindings' kernels were built in (patch_ir without build_dir)."""
        if self._binder is not None:
            self._binder.close()


@dataclass
class PatchRun(PatchContext):
    """One patch run: the context every pass edits, and what the passes hand each other."""

    preprocessing: preprocess.Preprocessing = field(default_factory=preprocess.Preprocessing)
    prefer: str = "native"
    binder: custom_layer.Binder | None = None
    frozen: list = field(default_factory=list)         # inputs frozen to constants (report "frozen")
    inputs: list = field(default_factory=list)         # preprocess.InputLayout per input (report "inputs")
    blocked: set[str] = field(default_factory=set)     # layers to replace: a formulation's or a kernel's job
    choices: dict = field(default_factory=dict)        # layer name -> native.Choice
    # What the real plugin taught about this model (kernelkit.doctor.confirm retries with these):
    leave_alone: frozenset = frozenset()               # layers no rewrite, kernel or fc_as_conv may touch
    replace: frozenset = frozenset()                   # layers to replace although the tables accept them
    prefer_layers: dict = field(default_factory=dict)  # layer name -> native | kernel, beats `prefer`
    minimal: bool = False                              # replace only the layers in `replace`


def _record_freeze(run: PatchRun) -> None:
    run.frozen = freeze.apply(run, run.model.freeze_log)


def _preprocess(run: PatchRun) -> None:
    run.inputs = preprocess.apply(run, run.preprocessing)


def _plan(run: PatchRun) -> None:
    """The layers to replace, and per layer the native formulation or the library kernel first
    (kernelkit.model.passes.native decides from the measured fp16 errors and --prefer)."""
    found = find_blockers(run.model, run.target)
    run.blocked = {b.layer_name for b in found if b.kind in ("unsupported", "limit")}
    # An op too new for the target's reader that no downgrade took may still have a native formulation.
    run.blocked |= {b.layer_name for b in found if b.kind == "opset" and b.type.lower() in formulations()}
    # Forms the knowledge base calls supported but the real plugin refuses: known where kernelkit compiles.
    run.blocked |= rewrite.needed_layers(run.model) if run.target.compiler else set()
    if run.minimal:
        run.blocked = set()
    run.blocked = (run.blocked | set(run.replace)) - set(run.leave_alone)
    run.choices = native.plan(run, run.blocked, run.prefer, set(run.binder.index))
    for name, prefer in run.prefer_layers.items():
        choice = run.choices.get(name)
        if choice is not None and choice.has_native and choice.has_kernel:
            run.choices[name] = native.choose(run.model.find(name), prefer, True, True)


def _native_first(run: PatchRun) -> set[str]:
    return {name for name, choice in run.choices.items() if choice.first == "native"}


def _changed(run: PatchRun) -> set[str]:
    """Layers a rewrite or a kernel already took care of (a downgrade does not settle an unsupported op)."""
    return {c.layer for c in run.changes if c.patcher in ("rewrite", "custom_layer")}


def _rewrite_native_first(run: PatchRun) -> None:
    rewrite.apply(run, _native_first(run))


def _bind_kernels(run: PatchRun) -> None:
    custom_layer.apply(run, run.binder, run.blocked - _changed(run))


def _rewrite_the_rest(run: PatchRun) -> None:
    rewrite.apply(run, run.blocked - _native_first(run) - _changed(run))
    native.settle(run.choices, run.changes)


def _fc_as_conv(run: PatchRun) -> None:
    fc_as_conv.apply(run, skip=run.leave_alone)


def _compiled_here(run: PatchRun) -> bool:
    """Fixes found by compiling with the real plugin: they hold where kernelkit runs that plugin."""
    return run.target.compiler


def _reader_refuses_ir_version(run: PatchRun) -> bool:
    return run.model.version not in run.target.ir_versions


# The passes in the order patch runs them.
PASSES = (
    Pass("freeze", _record_freeze),
    Pass("preprocess", _preprocess, user_options=True),
    Pass("fold", fold.apply),
    # Downgrades first: a kernel binds the op's old form (Interpolate-4 with its 4 inputs, not -11).
    Pass("version", version.apply),
    Pass("plan", _plan),
    Pass("native", _rewrite_native_first),
    Pass("custom_layer", _bind_kernels),
    Pass("rewrite", _rewrite_the_rest),
    Pass("fc_as_conv", _fc_as_conv, applies=_compiled_here),
    Pass("precision", precision.apply),
    Pass("boundary", boundary.apply, applies=_compiled_here),
    Pass("ir", version.to_ir_v10, applies=_reader_refuses_ir_version),
)


def patch_ir(model, target: Target | str, *, preprocessing: preprocess.Preprocessing | None = None,
             kernels_dir=None, prefer: str = "native", build_dir=None, source: dict | None = None,
             leave_alone=(), replace=(), prefer_layers: dict | None = None, minimal: bool = False) -> PatchResult:
    """Patch `model` (a kernelkit.ir.model.IRModel, edited in place) for MYRIAD `target`, in memory. The bound
    kernels are built in `build_dir` (default: a temporary folder, removed by `result.close()`). `source`:
    the report's record of where the model came from (default: its path). leave_alone / replace /
    prefer_layers: layer names the real plugin's refusals say to keep as they are, to replace although the
    knowledge base accepts them, or to give the other fix first (kernelkit.doctor.confirm)."""
    target = get_target(target)
    prefer = native.normalise_prefer(prefer)
    _refuse_unknown_opsets(model)
    before = find_blockers(model, target)
    run = PatchRun(model, target, preprocessing=preprocessing or preprocess.Preprocessing(), prefer=prefer,
                   leave_alone=frozenset(leave_alone), replace=frozenset(replace),
                   prefer_layers={k: native.normalise_prefer(v) for k, v in (prefer_layers or {}).items()},
                   minimal=minimal)
    run.binder = custom_layer.Binder(run, kernels_dir, build_dir)
    try:
        for step in PASSES:
            try:
                step.apply(run)
            except KernelkitError as exc:
                if exc.path is None and not step.user_options and model.path is not None:
                    exc.path = str(model.path)        # a pass's error is about this model: name it
                    if exc.hint is None and any(d < 0 for p in model.parameters() for port in p.outputs
                                                for d in port.dims):
                        exc.hint = "the model has dynamic dimensions: fix them with --input-shape NAME=D0,D1,..."
                raise
        remaining = find_blockers(model, target, custom_types=[b.layer_type for b in run.binder.bindings.values()])
        _say_why_the_version_stays(remaining, run.refusals)
    except BaseException:
        run.binder.close()
        raise
    report = _report(run, source or _source(model), before, remaining)
    return PatchResult(None, report, run.changes, run.refusals, remaining, list(run.choices.values()), model,
                       run.binder.bindings, run.binder)


def patch_model(model_path, outdir, target: Target | str, *, input_shapes: dict | None = None,
                force: bool = False, preprocessing=None, kernels_dir=None, prefer: str = "native",
                shaves: int = DEFAULT_SHAVES, input_values: dict | None = None,
                outputs: list[str] | None = None, leave_alone=(), replace=(),
                prefer_layers: dict | None = None, minimal: bool = False, head: str | None = None) -> PatchResult:
    """Patch `model_path` (.xml or .onnx) for MYRIAD `target` into the patch folder `outdir`. Never touches the
    input. minimal: no rewrite or kernel for any layer but those in `replace` (kernelkit.doctor.confirm asks the
    plugin whether the model compiles with only what its reader needs). input_values (`--input-value`): inputs frozen to constants before If/Loop/Shape folding (`freeze`).
    outputs (`--output`): the tensors the patched model ends at (`kernelkit.ir.cut`). head (`--head yolo`): an
    Ultralytics YOLO head rewritten to DepthAI's per-stride layout (`kernelkit.ir.yolo_head`), in the report's
    "head" for `kernelkit archive`."""
    from kernelkit.ir.load import load_model

    target = get_target(target)                       # bad options fail before the model loads
    native.normalise_prefer(prefer)
    if not 1 <= shaves <= MAX_SHAVES:
        raise KernelkitError(f"{shaves} SHAVEs: the Myriad X has {MAX_SHAVES}", where="--shaves",
                             hint=f"use 1 to {MAX_SHAVES}")
    model_path = Path(model_path)
    outdir = Path(outdir)
    _refuse_output_over_input(model_path, outdir)
    model = load_model(model_path, input_shapes, input_values, fold=True, outputs=outputs, head=head)
    from kernelkit.ir.yolo_head import has_head

    unrewritten_head = head is None and has_head(model)
    source = {"model": str(model_path.resolve()),
              "input_shapes": {k: list(v) for k, v in (input_shapes or {}).items()},
              "input_values": {k: list(v) for k, v in (input_values or {}).items()},
              "outputs": list(outputs or [])} | ({"head": head} if head else {})
    result = patch_ir(model, target, preprocessing=preprocessing, kernels_dir=kernels_dir, prefer=prefer,
                      source=source, leave_alone=leave_alone, replace=replace, prefer_layers=prefer_layers,
                      minimal=minimal)
    try:
        patchdir.write(outdir, model, result.report, target=target, shaves=shaves, bindings=result.bindings,
                       force=force)
    finally:
        result.close()
    result.outdir = outdir
    result.ultralytics_head = unrewritten_head      # `kernelkit patch` suggests --head yolo
    return result


def _source(model) -> dict:
    return {"model": str(Path(model.path).resolve()) if model.path else None, "input_shapes": {},
            "input_values": {}, "outputs": []}


def _say_why_the_version_stays(remaining: list, refusals: list) -> None:
    """The IR-version blocker of a model the v10 writer refused names that refusal's layer and reason: the
    version is the consequence, the layer the cause the user can act on."""
    cause = next((r for r in refusals if r.patcher == "ir"), None)
    for blocker in remaining:
        if cause is not None and blocker.kind == "ir-version" and not blocker.layer_id:
            blocker.reason += f"; it stays v11 because of {cause.layer} ({cause.type}): {cause.reason}"


def _report(run: PatchRun, source: dict, before: list, remaining: list) -> dict:
    return {
        "schema": patchdir.REPORT_SCHEMA,
        "source": source,
        "target": run.target.name,
        "ir_version": run.model.version,
        "preprocessing": run.preprocessing.to_dict(),
        "inputs": [layout.to_dict() for layout in run.inputs],
        "blockers_before": [b.to_dict() for b in before],
        "changes": [c.to_dict() for c in run.changes],
        "refusals": [r.to_dict() for r in run.refusals],
        "custom_layers": [{"type": b.layer_type, "kernel": b.spec.name, "layers": b.bound_layers,
                           "alternatives": len(b.layers)} for b in run.binder.bindings.values()],
        "remaining_blockers": [b.to_dict() for b in remaining],
        "ok": not remaining,
        "prefer": run.prefer,
        "choices": [choice.to_dict() for choice in run.choices.values()],
        "frozen": run.frozen,
    } | ({"minimal_change": True} if run.minimal else {}) | (
        {"compile_options": dict(run.compile_options)} if run.compile_options else {}) | _taught(run) | (
        {"head": run.model.head} if getattr(run.model, "head", None) else {})


def _taught(run: PatchRun) -> dict:
    """What the real plugin's refusals made this patch do differently (only when they did)."""
    taught = {"leave_alone": sorted(run.leave_alone), "replace": sorted(run.replace),
              "prefer_layers": dict(sorted(run.prefer_layers.items()))}
    return {"plugin_taught": taught} if any(taught.values()) else {}


def _newest_opset() -> int:
    import importlib.util

    return max(n for n in range(1, 64) if importlib.util.find_spec(f"openvino.opset{n}"))


def _refuse_unknown_opsets(model) -> None:
    """An op version no OpenVINO release defines is a broken model, not a blocker to patch around."""
    newest = None
    for layer in model.layers:
        number = version.opset_number(layer)
        if number is None:
            continue
        newest = newest or _newest_opset()
        if number > newest:
            raise KernelkitError(f"op version {layer.version} does not exist (OpenVINO knows opset1..opset{newest})",
                                 path=model.path, where=layer.describe(), line=layer.element.sourceline,
                                 hint="fix the layer's version attribute")


def _refuse_output_over_input(model_path: Path, outdir: Path) -> None:
    try:
        inside = model_path.resolve().is_relative_to(outdir.resolve())
    except (OSError, RuntimeError):          # a symlink loop: load_model says what is wrong with the path
        inside = False
    if inside:
        raise KernelkitError("the output folder contains the input model; patch never modifies its input",
                             path=outdir, where="-o", hint="choose another output folder")


def format_patch_result(result: PatchResult) -> str:
    """The human report `kernelkit patch` prints."""
    report = result.report
    lines = [f"patched for MYRIAD {report['target']} (IR v{report['ir_version']}) -> {result.outdir}"]
    head = report.get("head")
    if head:
        extra = {"pose": f", {head.get('n_keypoints')} keypoints",
                 "segment": f", {head.get('n_prototypes')} mask prototypes"}.get(head.get("task"), "")
        names = list(head["yolo_outputs"]) + list(head.get("keypoints_outputs") or []) + \
            list(head.get("mask_outputs") or []) + ([head["protos_outputs"]] if head.get("protos_outputs") else [])
        lines.append(f"  {'head':<12} Ultralytics YOLO ({head['n_classes']} classes{extra}, strides "
                     f"{','.join(map(str, head['strides']))}) -> {', '.join(names)} for DepthAI "
                     f"(subtype {head['subtype']}; kernelkit archive declares it)")
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
        lines.extend(_plugin_lines(report))
    return "\n".join(lines)


def _plugin_lines(report: dict) -> list[str]:
    """The verdict's lines: the real plugin's (report["plugin"], kernelkit.doctor.confirm), else the tables'."""
    plugin = report.get("plugin") or {}
    status, target = plugin.get("status"), report["target"]
    if status == "compiled":
        lines = []
        minimal = report.get("plugin_on_minimal") or {}
        if minimal.get("blob_departs"):
            lines.append(f"  plugin       {minimal['reason']}")
        if plugin.get("fix") or plugin.get("reason"):
            lines.append(f"  plugin       {plugin['reason']}")
        dump = f" and {plugin['graph_dump']}" if plugin.get("graph_dump") else ""
        lines.append(f"compiled by the real MYRIAD {target} plugin: {plugin['blob']}{dump} in the output folder")
        return lines
    if status == "needs-clc":
        return [f"compiles for MYRIAD once clc's binaries replace the check ELFs: {plugin['reason']}"]
    if status == "refused":
        where = plugin.get("layer") or "a layer it does not name"
        if plugin.get("layer_type"):
            where += f" ({plugin['layer_type']})"
        lines = [f"the real MYRIAD {target} plugin refuses the patched model at {where}:"]
        lines += [f"  {line}" for line in plugin.get("message", "").splitlines()]
        if plugin.get("compiled_layer") and plugin["compiled_layer"] != plugin.get("layer"):
            lines.append(f"  (the patched model's layer {plugin['compiled_layer']}, which the patch made from "
                         f"{plugin.get('layer')} by {plugin.get('patcher')})")
        if plugin.get("plugin_name") and plugin["plugin_name"] != plugin.get("compiled_layer"):
            lines.append(f"  (the plugin's own node {plugin['plugin_name']}; layer found by "
                         f"{plugin.get('located_by')})")
        elif plugin.get("located_by") and plugin["located_by"] != "named":
            lines.append(f"  (layer found by {plugin['located_by']})")
        for tried in plugin.get("tried", []):
            lines.append(f"  tried: {tried['fix']}: {tried['status']}"
                         + (f" ({tried['message'].splitlines()[0]})" if tried.get("message") else ""))
        lines.append(f"what to try: {plugin.get('reason')}")
        return lines
    lines = ["no blocker left for this target (the knowledge base's verdict)" if status else
             "no blocker left for this target"]
    if status == "not-run":
        lines.append(f"not compiled: {plugin['reason']}")
    return lines
