"""The plugin's verdict is the kit's verdict: `kernelkit patch` compiles its output with the real MYRIAD plugin.

Where the toolchain runs (`kernelkit toolchain setup`, target 2021.4), the patch folder is compiled to
model.blob (+ model.graph.dot). When the plugin refuses, the refusal is put on the user's layer (the patched
model's layer, found by kernelkit.myriad.refusal, then the source layer a patch step made it from), and the
fixes the kit knows for that layer are tried, each a fresh patch compiled again:
  - the layer was rewritten, bound or turned into a convolution by the patch: leave it as it is;
  - it has both a native formulation and a library kernel: the other one first;
  - the patch left it alone although the kit has a formulation or a kernel for its op: replace it.
The first that compiles replaces the folder (its report says what the plugin taught); when none does, the
report and the summary name the layer, the plugin's words and what to try.
Minimal change: when the patch rewrote or bound a layer, the plugin is first asked about the model with only
what its reader needs (IR version, opset downgrades, precision and edge fixes; `patch_model(minimal=True)`).
If it compiles that, and the blob interpreter finds that blob computing what the original does (verify's blob
check), that folder is the patch: no layer the plugin compiles is rewritten. It is not asked when
a blocker the plugin itself taught (or the reader's own) remains: that compile could only be refused. The
report's "why" says, per change, what made it needed (a knowledge rule and its source, or the plugin's words). Exit codes: 0 compiled, 1 refused,
4 compiles once clc builds the kernels' .bin; without the toolchain the verdict is the knowledge base's only.
The estimate used (kernelkit.doctor.estimate_use): a compiled folder's report sets its blob's estimate against the
straight compile's, and each layer with both a formulation and a kernel gets both forms' estimated costs, one
from a patch with the other forms compiled beside it; `--prefer fastest` takes the kernel where it is much faster.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.facts.target import Target, compiler_target, get_target
from kernelkit.model.patchdir import REWRITING, source_layer

COMPILED, REFUSED, NEEDS_CLC, NOT_RUN = "compiled", "refused", "needs-clc", "not-run"


@dataclass
class PluginVerdict:
    """The real plugin's word on a patch folder, as patch-report.json's `plugin` records it."""

    status: str                         # compiled | refused | needs-clc | not-run
    reason: str = ""                    # not-run: why; refused: what to try; compiled after a fix: the fix
    blob: str | None = None             # file names inside the patch folder
    graph_dump: str | None = None
    layer: str | None = None            # refused: the user's layer (the source model's)
    layer_type: str | None = None
    compiled_layer: str | None = None   # the patched model's layer the plugin refused
    plugin_name: str | None = None      # the node the plugin's words name (its own name, possibly)
    located_by: str | None = None       # named | per-pass dump | bisection
    patcher: str | None = None          # the patch step that made the refused layer, if any
    changed_layer: str | None = None    # the layer that step changed (the user's layer, or one a step made)
    message: str = ""                   # the plugin's words
    tried: list[dict] = field(default_factory=list)     # each fix tried: {fix, status, message}
    fix: str | None = None              # the fix that made the plugin compile it
    compiled: object = field(default=None, repr=False, compare=False)   # CompileResult | NeedsClc (not in the report)

    @property
    def exit_code(self) -> int | None:
        """0 compiled, 1 refused, 4 needs clc; None: not run (the knowledge base's verdict stands)."""
        from kernelkit.doctor.workflow import EXIT_NEEDS_CLC

        return {COMPILED: 0, REFUSED: 1, NEEDS_CLC: EXIT_NEEDS_CLC}.get(self.status)

    def to_dict(self) -> dict:
        found = {"status": self.status}
        for key in ("reason", "blob", "graph_dump", "layer", "layer_type", "compiled_layer", "plugin_name",
                    "located_by", "patcher", "changed_layer", "message", "fix"):
            value = getattr(self, key)
            if value:
                found[key] = value
        if self.tried:
            found["tried"] = self.tried
        return found


def not_run_reason(target: Target | str) -> str | None:
    """Why the real plugin cannot judge a patch for `target` here (None: it can)."""
    from kernelkit.myriad import toolchain

    target = get_target(target)
    if not target.compiler:
        return (f"kernelkit runs the MYRIAD compiler of OpenVINO {compiler_target().name}, not {target.name}'s: "
                "the verdict is the knowledge base's only")
    if not toolchain.locate().ready():
        return ("the real MYRIAD compiler is not provisioned here, so the verdict is the knowledge base's only; "
                f"run `kernelkit toolchain setup` once to have every patch confirmed by the {target.name} plugin")
    return None


@dataclass
class _Attempt:
    status: str
    message: str = ""
    failure: object = None              # the CompileFailed
    compiled: object = None             # CompileResult | NeedsClc


def _compile(folder: Path, target) -> _Attempt:
    from kernelkit.doctor.workflow import NeedsClc, compile_patched
    from kernelkit.myriad.compile import CompileFailed

    try:
        compiled = compile_patched(folder, target)
    except CompileFailed as exc:
        return _Attempt(REFUSED, exc.plugin_text or exc.message, exc)
    return _Attempt(NEEDS_CLC if isinstance(compiled, NeedsClc) else COMPILED, compiled=compiled)


def _fixes(verdict: PluginVerdict, report: dict, taught: dict) -> list[tuple[str, dict]]:
    """The fixes the kit knows for a refused layer, in the order tried: (description, patch options)."""
    from kernelkit.model.formulations.registry import formulations

    layer = verdict.layer
    fixes = []
    leave = set(taught.get("leave_alone", ()))
    replace = set(taught.get("replace", ()))
    prefer_layers = dict(taught.get("prefer_layers", {}))
    choice = next((c for c in report.get("choices", []) if c.get("layer") == layer), None)
    changed = verdict.changed_layer or layer
    if verdict.patcher in REWRITING and changed not in leave:
        what = layer if changed == layer else f"{changed} (made from {layer})"
        fixes.append((f"leave {what} as it is instead of the patch's {verdict.patcher}",
                      {"leave_alone": leave | {changed}, "replace": replace - {changed},
                       "prefer_layers": prefer_layers}))
    if choice and choice.get("native_available") and choice.get("kernel_available"):
        other = "kernel" if choice.get("chosen") == "native" else "native"
        if prefer_layers.get(layer) != other:
            fixes.append((f"give {layer} the {'library kernel' if other == 'kernel' else 'native formulation'} "
                          "instead", {"leave_alone": leave - {layer}, "replace": replace,
                                      "prefer_layers": prefer_layers | {layer: other}}))
    if verdict.patcher is None and verdict.layer_type and layer not in replace:
        from kernelkit.core.paths import KERNELS_DIR
        from kernelkit.model.passes.custom_layer import kernel_index

        kind = verdict.layer_type.lower()
        if kind in formulations() or kind in kernel_index(KERNELS_DIR):
            fixes.append((f"replace {layer} ({verdict.layer_type}) by the kit's formulation or kernel of its op",
                          {"leave_alone": leave - {layer}, "replace": replace | {layer},
                           "prefer_layers": prefer_layers}))
    return fixes


def _what_to_try(verdict: PluginVerdict) -> str:
    where = f"{verdict.layer} ({verdict.layer_type})" if verdict.layer_type else str(verdict.layer)
    steps = [f"change {where} in the source model into a form the plugin takes",
             "end the model before it with --output, if what follows can run on the host",
             "bind a kernel of your own to it (`kernelkit new`, then patch with the kernel in kernels/)"]
    return "; or ".join(steps)


def _describe_failure(verdict: PluginVerdict, failure, changes) -> None:
    name = failure.layer_name
    verdict.message = failure.plugin_text or failure.message
    verdict.plugin_name = failure.plugin_name
    verdict.located_by = failure.located_by
    verdict.compiled_layer = name
    if name:
        verdict.layer, source_type, verdict.patcher, verdict.changed_layer = source_layer(changes, name)
        verdict.layer_type = source_type or failure.layer_type
    else:
        verdict.layer = verdict.layer_type = verdict.patcher = verdict.changed_layer = None


def confirm(result, model_path, outdir, target: Target | str, patch_options: dict, *,
            required: bool = False, max_fixes: int = 4):
    """Compile the patch folder `outdir` (what `patch_model(model_path, outdir, target, **patch_options)`
    wrote as `result`) with the real plugin, try the known fixes on a refusal, and record the verdict in the
    folder's report. Returns (verdict, the PatchResult now in `outdir`: `result`, or the fixed patch's).
    required: a missing toolchain is an error (ToolchainUnavailable), not a knowledge-base-only verdict.
    A folder the plugin compiled also gets the estimate's comparisons (estimate_use): the straight compile's
    estimate, and per layer with both forms each form's cost (`--prefer fastest` acts on them)."""
    verdict, result = _confirm(result, model_path, outdir, target, patch_options, required=required,
                               max_fixes=max_fixes)
    if verdict.status in (COMPILED, NEEDS_CLC):
        verdict, result = _use_estimate(verdict, result, model_path, Path(outdir), get_target(target),
                                        patch_options)
    return verdict, result


def _confirm(result, model_path, outdir, target, patch_options: dict, *, required: bool, max_fixes: int):
    from kernelkit.myriad import toolchain

    outdir = Path(outdir)
    target = get_target(target)
    reason = not_run_reason(target)
    if reason is not None:
        if required:
            if target.compiler:
                toolchain.require()
            from kernelkit.core.errors import KernelkitError

            raise KernelkitError(reason, where="--compile",
                                 hint=f"patch with --target {compiler_target().name} to confirm by compiling")
        return _record(result, outdir, PluginVerdict(NOT_RUN, reason=reason)), result
    minimal = _try_minimal(result, model_path, outdir, target, patch_options)
    if isinstance(minimal, tuple):
        return minimal
    if minimal:
        result.report = dict(result.report, plugin_on_minimal=minimal)
    attempt = _compile(outdir, target)
    verdict = _verdict_of(attempt)
    if attempt.status != REFUSED:
        return _record(result, outdir, verdict), result
    _describe_failure(verdict, attempt.failure, result.report.get("changes", []))
    current, current_report = verdict, result.report
    taught: dict = {"leave_alone": set(), "replace": set(), "prefer_layers": {}}
    tried: list[dict] = []
    for _ in range(max_fixes):
        done = {t["fix"] for t in tried}
        fixes = [f for f in _fixes(current, current_report, taught) if f[0] not in done] if current.layer else []
        if not fixes:
            break
        description, options = fixes[0]
        fixed, again, folder = _retry(model_path, outdir, target, patch_options, options)
        entry = {"fix": description, "status": again.status if again else "patch-failed"}
        if again is not None and again.message:
            entry["message"] = again.message
        tried.append(entry)
        if again is not None and again.status in (COMPILED, NEEDS_CLC):
            _replace_folder(folder, outdir)
            fixed.outdir = outdir
            final = _verdict_of(again)
            final.fix = description
            final.reason = (f"the plugin refused {verdict.layer} (\"{verdict.message.splitlines()[0]}\") and "
                            f"compiled the model after this fix: {description}")
            final.tried = tried
            return _record(fixed, outdir, final), fixed
        if folder is not None:
            shutil.rmtree(folder.parent, ignore_errors=True)
        if again is not None and again.failure is not None:
            moved = PluginVerdict(REFUSED)
            _describe_failure(moved, again.failure, fixed.report.get("changes", []))
            if moved.layer and moved.layer != current.layer:
                # The fix took care of this layer and the plugin went on to refuse another: keep the fix.
                taught, current, current_report = options, moved, fixed.report
    verdict.tried = tried
    verdict.reason = _what_to_try(verdict) if verdict.layer else \
        "the plugin's words name no layer and none could be found by compiling parts of the model"
    return _record(result, outdir, verdict), result


# Patch steps that give a layer a new form; what the reader needs (version, precision, edges, ir) is not one.
DISCRETIONARY = ("rewrite", "custom_layer", "native")


def certain_refusal(blocker: dict) -> bool:
    """A blocker the real plugin itself taught (its words or a probe verdict are the rule's source) or one its
    reader refuses outright: asking the plugin again could only cost a refused compile."""
    source = blocker.get("source", "")
    return (blocker.get("kind") in ("ir-version", "opset", "dynamic-shape", "dtype")
            or "real 2021.4 plugin" in source or "plugin verdict" in source)


def _try_minimal(result, model_path, outdir: Path, target, patch_options: dict):
    """Ask the plugin about the model with only what its reader needs. Returns (verdict, result) when it
    compiles that (the folder is replaced), else what the report's "minimal" records (None: not asked)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model.patcher import patch_model

    changed = sorted({c["layer"] for c in result.report.get("changes", []) if c.get("patcher") in DISCRETIONARY})
    if not changed:
        return None
    parent = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.minimal-", dir=outdir.parent))
    folder = parent / "patch"
    try:
        try:
            minimal = patch_model(model_path, folder, target, **patch_options, minimal=True)
        except KernelkitError as exc:
            return {"compiled": False, "asked": False, "reason": f"the minimal patch failed: {exc.message}"}
        remaining = minimal.report.get("remaining_blockers", [])
        certain = [b for b in remaining if certain_refusal(b)]
        if certain:
            first = certain[0]
            return {"compiled": False, "asked": False, "layer": first["layer_name"],
                    "reason": f"{first['layer_name']}: {first['reason']}", "source": first["source"]}
        attempt = _compile(folder, target)
        if attempt.status == REFUSED:
            found = PluginVerdict(REFUSED)
            _describe_failure(found, attempt.failure, minimal.report.get("changes", []))
            return {"compiled": False, "asked": True, "layer": found.layer, "message": found.message}
        departs = _blob_departs(folder)
        if departs is not None:
            return {"compiled": True, "asked": True, "blob_departs": departs,
                    "reason": "the plugin compiles the model as it is, but its blob computes something else "
                              f"({departs['output']}: {departs['share_of_peak']:.2g} of its peak off the original "
                              f"on the blob interpreter): the kit's change of {', '.join(changed)} is kept"}
        report = dict(minimal.report)
        if remaining:       # the plugin's verdict outranks the tables that called these layers blocked
            report["overruled"] = [dict(b, note=f"the real {compiler_target().name} plugin compiled it as it is")
                                   for b in remaining]
            report["remaining_blockers"], report["ok"] = [], True
            minimal.remaining = []
        minimal.report = report
        _replace_folder(folder, outdir)
        minimal.outdir = outdir
        verdict = _verdict_of(attempt)
        verdict.reason = (f"the plugin compiles the model with only what its reader needs: the patch's rewrite of "
                          f"{', '.join(changed)} was not needed and is not applied")
        return _record(minimal, outdir, verdict), minimal
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _blob_departs(folder: Path) -> dict | None:
    """verify's blob check of a compiled folder: None when its blob computes what the original model does (or
    the interpreter cannot run it, which leaves the compile's verdict standing), else the worst output."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor.verify import verify

    try:
        check = verify(folder, locate=False).blob        # the verdict only: where it departs is not needed
    except KernelkitError:
        return None
    if check is None or check.not_run is not None or check.passed:
        return None
    worst = max(check.comparisons, key=lambda c: c.abs_error.max / c.signal if c.signal else 0.0, default=None)
    if worst is None:
        return {"output": "the blob", "share_of_peak": float("nan"), "problems": check.problems}
    share = worst.abs_error.max / worst.signal if worst.signal else float("inf")
    return {"output": worst.name, "share_of_peak": share, "problems": check.problems}


def explain_changes(report: dict) -> list[dict]:
    """Per change of a patch report, why it was needed: the knowledge rule (its reason and source) that
    blocked the layer, or the real plugin's refusal of the layer as it is."""
    blocked: dict[str, list[dict]] = {}
    for blocker in report.get("blockers_before", []):
        blocked.setdefault(blocker.get("layer_name", ""), []).append(blocker)
    # the kind of blocker each step answers (a rewrite a limit before an opset the downgrade could not take)
    kinds = {"version": ("opset",), "ir": ("ir-version",), "precision": ("precision", "dtype")}
    refused = report.get("plugin_on_minimal") or {}
    found = []
    for change in report.get("changes", []):
        layer, patcher = change.get("layer", ""), change.get("patcher", "")
        # the IR version is the model's (a blocker that named the layer keeping it was removed by another change)
        rules = blocked.get(layer, []) if patcher != "ir" else blocked.get("", []) + \
            [b for name, found in blocked.items() if name for b in found if b.get("kind") == "ir-version"]
        wanted = kinds.get(patcher, ("limit", "unsupported"))
        rule = next((r for r in rules if r.get("kind") in wanted), rules[0] if rules else None)
        if refused.get("asked") and refused.get("layer") == layer and refused.get("message"):
            why, source = "the real plugin refused the layer as it is", refused["message"].splitlines()[0]
        elif rule is not None:
            why, source = rule["reason"], rule["source"]
        elif patcher in ("rewrite", "native"):
            why, source = ("a form of the op the real plugin refuses although its tables list the op",
                           f"the formulation's `needed` rule (kernelkit/model/formulations), {layer}")
        elif patcher == "fc_as_conv":
            why, source = ("a MatMul the plugin would run one row at a time, one stage per row",
                           "measured on the real plugin (kernelkit/model/passes/fc_as_conv.py)")
        elif patcher == "boundary":
            why, source = ("what the plugin needs at the network's edges",
                           "the real plugin's refusals (kernelkit/model/passes/boundary.py)")
        elif patcher in ("preprocess", "freeze"):
            why, source = "asked for", "the patch options"
        else:
            why, source = "follows from another change of the patch", ""
        found.append({"patcher": patcher, "layer": layer, "why": why, "source": source})
    return found


def _verdict_of(attempt: _Attempt) -> PluginVerdict:
    from kernelkit.model import patchdir
    from kernelkit.myriad.graph_dump import dump_path

    if attempt.status == COMPILED:
        dump = dump_path(patchdir.BLOB_FILE)
        has_dump = attempt.compiled.graph_dump is not None
        return PluginVerdict(COMPILED, blob=patchdir.BLOB_FILE, graph_dump=str(dump) if has_dump else None,
                             compiled=attempt.compiled)
    if attempt.status == NEEDS_CLC:
        compiled = attempt.compiled
        layers = ", ".join(v.case.label() for v in compiled.verdicts)
        return PluginVerdict(NEEDS_CLC, reason=(
            f"the real MYRIAD {compiler_target().name} plugin compiled the patched model with metadata-only ELFs "
            f"for {', '.join(compiled.missing)} "
            f"and took the binding of every custom layer ({layers}); no blob was written (one made with check "
            "ELFs cannot run). Build the .bin with clc (KERNELKIT_OPENVINO_DIR or KERNELKIT_CLC) and patch again"),
            compiled=compiled)
    return PluginVerdict(REFUSED)


def _retry(model_path, outdir: Path, target, patch_options: dict, fix_options: dict):
    """Patch again with the fix into a private sibling folder and compile it: (result, attempt, folder)."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model.patcher import patch_model

    parent = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.retry-", dir=outdir.parent))
    folder = parent / "patch"
    options = dict(patch_options)
    options.update(fix_options)
    try:
        fixed = patch_model(model_path, folder, target, **options)
    except KernelkitError:
        shutil.rmtree(parent, ignore_errors=True)
        return None, None, None
    if fixed.exit_code != 0:
        return fixed, _Attempt("patch-failed", "blockers remain"), folder
    return fixed, _compile(folder, target), folder


def _replace_folder(folder: Path, outdir: Path) -> None:
    """The fixed patch folder takes the place of `outdir` in one rename."""
    import os

    from kernelkit.core.fsutil import staged_directory

    with staged_directory(outdir, force=True) as stage:
        for item in folder.iterdir():
            os.replace(item, stage / item.name)
    shutil.rmtree(folder.parent, ignore_errors=True)


def record_compiled(outdir, compiled, *, model=None, target=None, patch_options: dict | None = None) -> PluginVerdict:
    """Record what `kernelkit.doctor.workflow.compile_patched` gave (a CompileResult or a NeedsClc) as the
    folder's plugin verdict, as `patch` does (the demo compiles its folders itself). With the `model` the folder
    was patched from, the plugin is also asked about the minimal patch first and the estimate is used (the straight
    compile's, each both-form layer's costs), as `patch` does."""
    from types import SimpleNamespace

    from kernelkit.doctor.workflow import NeedsClc
    from kernelkit.model import patchdir

    outdir = Path(outdir)
    verdict = _verdict_of(_Attempt(NEEDS_CLC if isinstance(compiled, NeedsClc) else COMPILED, compiled=compiled))
    report = patchdir.read_report(outdir)
    if model is not None:
        minimal = _try_minimal(SimpleNamespace(report=report), model, outdir, get_target(target),
                               patch_options or {})
        if isinstance(minimal, tuple):          # the minimal patch compiled and replaced the folder
            return minimal[0]
        if minimal:
            report["plugin_on_minimal"] = minimal
    report["plugin"] = verdict.to_dict()
    report["why"] = explain_changes(report)
    _add_estimate(report, outdir, verdict)
    patchdir.update_report(outdir, report)
    if model is not None and verdict.status in (COMPILED, NEEDS_CLC):      # the estimate used, as patch uses it
        verdict, _ = _use_estimate(verdict, SimpleNamespace(report=report), model, outdir, get_target(target),
                                   patch_options or {})
    return verdict


def record_not_run(result, outdir, reason: str) -> PluginVerdict:
    """Record in the folder's report that the plugin was not asked, and why."""
    return _record(result, Path(outdir), PluginVerdict(NOT_RUN, reason=reason))


def _record(result, outdir: Path, verdict: PluginVerdict) -> PluginVerdict:
    from kernelkit.model import patchdir

    report = dict(result.report)
    report["plugin"] = verdict.to_dict()
    report["why"] = explain_changes(report)
    _add_estimate(report, outdir, verdict)
    result.report = report
    patchdir.update_report(outdir, report)
    return verdict


def _add_estimate(report: dict, outdir: Path, verdict: PluginVerdict) -> None:
    """A compiled folder's report gains `kernelkit estimate`'s summary of its blob (OAK, 2 threads, the blob's
    SHAVEs; docs/estimate.md); a folder without a blob has none."""
    from kernelkit.doctor.estimate_use import summary
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.estimate import estimate_blob

    report.pop("estimate", None)
    blob = outdir / verdict.blob if verdict.status == COMPILED and verdict.blob else None
    if blob is None or not blob.is_file():
        return
    report["estimate"] = summary(estimate_blob(read_blob(blob)))


def _use_estimate(verdict: PluginVerdict, result, model_path, outdir: Path, target, patch_options: dict):
    """The estimate used (docs/estimate.md, "In patch"): each layer with both forms gets both forms' costs
    (under --prefer fastest the kernel replaces a formulation estimated much slower), then the straight
    compile's estimate goes beside the patched blob's. Returns (verdict, result), the folder's final ones."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.doctor import estimate_use
    from kernelkit.model import patchdir

    try:
        verdict, result, costs = _choice_costs(verdict, result, model_path, outdir, target, patch_options)
    except KernelkitError as exc:       # a comparison that cannot be made does not undo the compiled patch
        costs = {c["layer"]: {"native_ms": None, "kernel_ms": None, "note": f"no estimate: {exc.message}"}
                 for c in result.report.get("choices", []) if c.get("native_available") and c.get("kernel_available")}
    report = dict(result.report)
    if costs:
        report["choices"] = [dict(c, cost=costs[c["layer"]]) if c.get("layer") in costs else c
                             for c in report.get("choices", [])]
    estimate = report.get("estimate")
    if estimate:
        from kernelkit.myriad.blob_reader import read_blob
        from kernelkit.myriad.estimate import estimate_blob

        options_given = any(patch_options.get(k) for k in ("input_shapes", "input_values", "outputs"))
        try:
            straight = estimate_use.straight_record(
                model_path, patchdir.read(outdir).config, estimate_blob(read_blob(outdir / patchdir.BLOB_FILE)),
                changed=bool(report.get("changes")), known_refusal=_known_refusal(report, Path(model_path)),
                options_given=options_given)
        except KernelkitError as exc:
            straight = {"compiled": None, "asked": False, "reason": f"no straight estimate: {exc.message}"}
        estimate = dict(estimate, straight=straight)
        vs = estimate_use.versus(estimate, straight)
        if vs:
            estimate["vs_straight"] = vs
        report["estimate"] = estimate
    result.report = report
    patchdir.update_report(outdir, report)
    return verdict, result


def _known_refusal(report: dict, model_path: Path) -> str | None:
    """Why the plugin refuses the model as it is, when the patch already knows (no compile needed to say it):
    it refused the minimal patch, or a rule the plugin (or its IR reader) taught blocks the model's IR."""
    minimal = report.get("plugin_on_minimal") or {}
    if minimal and not minimal.get("compiled") and minimal.get("layer"):
        if minimal.get("asked"):
            words = (minimal.get("message") or "").strip().splitlines()
            return f"the plugin refused {minimal['layer']} in the minimal patch" + (f": {words[0]}" if words else "")
        return minimal.get("reason")
    if model_path.suffix.lower() == ".xml":        # an ONNX file is read by the plugin's own ONNX reader
        certain = [b for b in report.get("blockers_before", []) if certain_refusal(b)]
        if certain:
            return f"{certain[0].get('layer_name') or 'the model'}: {certain[0]['reason']}"
    return None


def _blob_estimate(folder: Path, verdict: PluginVerdict):
    """The estimate of a compiled folder's blob with its stages' layers: model.blob, or for a folder that
    needs clc the check blob the plugin made (its Custom stages are real). None without one."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.model import patchdir
    from kernelkit.myriad.estimate import estimate_blob
    from kernelkit.myriad.graph_dump import read_blob_with_layers

    if verdict.status == NEEDS_CLC:
        model = getattr(verdict.compiled, "check_blob", None)
    elif verdict.status == COMPILED:
        try:
            model = read_blob_with_layers(folder / patchdir.BLOB_FILE)
        except KernelkitError:
            model = None
    else:
        model = None
    return estimate_blob(model) if model is not None and model.stage_layers is not None else None


def _choice_costs(verdict: PluginVerdict, result, model_path, outdir: Path, target, patch_options: dict):
    """Per layer with both a native formulation and a library kernel: each form's estimated time, one from this
    folder's blob, the other from a patch with the other forms compiled beside it (one more compile).
    --prefer fastest: a formulation estimated more than estimate_use.SLOWER times the kernel's time gives way
    to the kernel (the folder is replaced). Returns (verdict, result, {layer: cost record})."""
    from kernelkit.doctor import estimate_use

    report = result.report
    both = [c for c in report.get("choices", []) if c.get("native_available") and c.get("kernel_available")
            and c.get("chosen") in ("native", "kernel")]
    if not both:
        return verdict, result, {}
    names = {c["layer"] for c in both}
    taught = report.get("plugin_taught") or {}
    flip = {c["layer"]: "kernel" if c["chosen"] == "native" else "native" for c in both}
    options = {"leave_alone": set(taught.get("leave_alone", ())), "replace": set(taught.get("replace", ())),
               "prefer_layers": dict(taught.get("prefer_layers", {})) | flip}
    other, attempt, folder = _retry(model_path, outdir, target, patch_options, options)
    try:
        here_est = _blob_estimate(outdir, verdict)
        here = estimate_use.layer_costs(here_est, report.get("changes", []), names) if here_est else {}
        other_verdict = _verdict_of(attempt) if attempt is not None and attempt.status in (COMPILED, NEEDS_CLC) \
            else None
        other_est = _blob_estimate(folder, other_verdict) if other_verdict is not None else None
        there = estimate_use.layer_costs(other_est, other.report.get("changes", []), names) if other_est else {}
        note = "" if other_est else (f"the patch with the other form: {attempt.status}" if attempt is not None
                                     else "the patch with the other form failed")
        if attempt is not None and attempt.status == REFUSED and attempt.message:
            note += f" ({attempt.message.strip().splitlines()[0]})"
        costs = {c["layer"]: estimate_use.choice_cost(c, here.get(c["layer"]), there.get(c["layer"]), note)
                 for c in both}
        if report.get("prefer") != "fastest":
            return verdict, result, costs
        slow = sorted(c["layer"] for c in both if c["chosen"] == "native"
                      and (costs[c["layer"]].get("native_over_kernel") or 0) > estimate_use.SLOWER)
        if not slow:
            return verdict, result, costs
        if set(slow) == set(flip) and all(c["chosen"] == "native" for c in both) and other_verdict is not None:
            fixed, again, chosen_folder = other, attempt, folder
            folder = None
        else:
            fixed, again, chosen_folder = _retry(model_path, outdir, target, patch_options, dict(
                options, prefer_layers=dict(taught.get("prefer_layers", {})) | {name: "kernel" for name in slow}))
            if again is None or again.status not in (COMPILED, NEEDS_CLC):
                if chosen_folder is not None:
                    shutil.rmtree(chosen_folder.parent, ignore_errors=True)
                for name in slow:
                    costs[name]["decision"] = "kept the native formulation: the patch with the kernel " + (
                        again.status if again is not None else "failed")
                return verdict, result, costs
        _replace_folder(chosen_folder, outdir)
        fixed.outdir = outdir
        _fastest_reasons(fixed, slow, costs)
        final = _record(fixed, outdir, _verdict_of(again))
        return final, fixed, costs
    finally:
        if folder is not None:
            shutil.rmtree(folder.parent, ignore_errors=True)


def _fastest_reasons(result, slow: list[str], costs: dict) -> None:
    """The layers --prefer fastest gave the kernel: their choice says so, and the plugin did not teach it."""
    for name in slow:
        cost = costs[name]
        reason = (f"--prefer fastest: the native formulation is estimated {cost['native_over_kernel']:.1f}x the "
                  f"kernel's time on an OAK; native formulation as fallback")
        cost["decision"] = "kernel (--prefer fastest)"
        for choice in result.choices:
            if choice.layer == name:
                choice.reason = reason
        result.report["choices"] = [dict(c, reason=reason) if c.get("layer") == name else c
                                    for c in result.report.get("choices", [])]
    taught = result.report.get("plugin_taught")
    if taught:
        taught = dict(taught, prefer_layers={k: v for k, v in taught.get("prefer_layers", {}).items()
                                             if k not in slow})
        if any(taught.values()):
            result.report["plugin_taught"] = taught
        else:
            result.report.pop("plugin_taught")
