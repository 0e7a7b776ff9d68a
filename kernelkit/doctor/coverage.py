"""Which ops a MYRIAD model can use, per target toolkit: natively, after a rewrite into supported ops (an exact
composition or a native formulation), through a library kernel (kernels/*/kernel.toml), or not at all; and
whether it is deployable without clc (no custom layer, so no SHAVE binary to build). Drawn from the knowledge
base (kernelkit.facts.knowledge), the rewrite patcher's table (kernelkit.model.formulations.registry), the
formulations' fp16 measurements (kernelkit/facts/data/native-fp16.json) and the kernels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.core.paths import KERNELS_DIR, REPO_ROOT
from kernelkit.facts.target import Target, compiler_target
from kernelkit.library.catalog import LibraryKernel, library_kernels

DOCS_DIR = REPO_ROOT / "docs"

NATIVE, REWRITE, KERNEL, NONE = "native", "rewrite", "kernel", "not covered"
COMMAND = "kernelkit coverage --markdown"
# IR type names of formulated ops that neither the knowledge base nor a kernel names.
IR_NAMES = {"bitwiseand": "BitwiseAnd", "bitwisenot": "BitwiseNot", "bitwiseor": "BitwiseOr",
            "bitwisexor": "BitwiseXor", "col2im": "Col2Im", "gridsample": "GridSample",
            "groupnormalization": "GroupNormalization", "identity": "Identity", "irdft": "IRDFT", "isinf": "IsInf",
            "isnan": "IsNaN", "rdft": "RDFT", "reverse": "Reverse",
            "scaleddotproductattention": "ScaledDotProductAttention"}
# The real compiler kernelkit runs: only this target's "compiled" comes from the plugin itself.
COMPILED_TARGET = compiler_target()


@dataclass
class CoverageRow:
    op: str
    status: dict[str, str]                       # target -> the first way that works (native, rewrite, kernel)
    means: dict[str, list[str]]                  # target -> every way that works
    kernels: list[LibraryKernel] = field(default_factory=list)
    rewrite: str | None = None                   # what the rewrite produces
    measurement: dict | None = None              # the formulation's record in native-fp16.json
    deployable: dict[str, str] = field(default_factory=dict)   # target -> yes / yes (...) / no (why)


def _where_text(kernel: LibraryKernel) -> str:
    """The layers a kernel takes, when its bindings all require some attribute value (e.g. mode=cubic)."""
    if not kernel.where or any(not w for w in kernel.where):
        return ""
    common = set(kernel.where[0])
    for w in kernel.where[1:]:
        common &= set(w)
    return ", ".join(f"{k}={v}" for k, v in sorted(common))


def _deployable(means: list[str], record: dict | None, target: Target) -> str:
    """Whether the op runs without a custom layer: natively, or through a formulation the real plugin
    compiled in every measured case (for another target, built from ops its knowledge base supports)."""
    if NATIVE in means:
        return "yes"
    if REWRITE not in means:
        return "no (kernel needs clc)" if KERNEL in means else "no"
    if record is None or record.get("compiled") is None:
        return "yes (formulation not measured)"
    if not record.get("compiled"):
        return "no (plugin refused the formulation)"
    return "yes" if target.compiler else f"yes (compiled by {COMPILED_TARGET})"


def coverage(targets: list[str] | None = None, kernels_dir: Path = KERNELS_DIR) -> tuple[list[str], list[CoverageRow]]:
    from kernelkit.facts.knowledge import load_knowledge
    from kernelkit.facts.target import target_names
    from kernelkit.model.passes.native import measurement
    from kernelkit.model.formulations.registry import formulations

    targets = list(targets or target_names())
    kbs = {t: load_knowledge(t) for t in targets}
    first = kbs[targets[0]]
    by_op: dict[str, list[LibraryKernel]] = {}
    for kernel in library_kernels(kernels_dir):
        by_op.setdefault(first.canonical(kernel.op), []).append(kernel)
    ops = set(by_op)
    for kb in kbs.values():
        ops |= set(kb.ops)
    # A rewrite is listed under the op's name as the knowledge base or a kernel spells it, else under the IR
    # type name (the table's keys are lower case).
    known = {op.lower(): op for op in ops}
    rewrites = {known.get(key, IR_NAMES.get(key, key)).lower(): entry.text for key, entry in formulations().items()}
    ops |= {known.get(key, IR_NAMES.get(key, key)) for key in formulations()}
    rows = []
    for op in sorted(ops, key=str.lower):
        kernels = by_op.get(op, [])
        rewrite = rewrites.get(op.lower())
        row = CoverageRow(op, {}, {}, kernels, rewrite, measurement(op) if rewrite else None)
        for target, kb in kbs.items():
            rule = kb.op_rule(op)
            means = []
            if rule is not None and rule.supported:
                means.append(NATIVE)
            if rewrite:
                means.append(REWRITE)
            if kernels:
                means.append(KERNEL)
            row.means[target] = means
            row.status[target] = means[0] if means else NONE
            row.deployable[target] = _deployable(means, row.measurement, kb.target)
        rows.append(row)
    return targets, rows


def _cell(row: CoverageRow, target: str) -> str:
    means = row.means[target]
    if not means:
        return NONE
    text = " + ".join(means)
    partial = [w for w in (_where_text(k) for k in row.kernels) if w]
    if KERNEL in means and partial:
        text = text.replace(KERNEL, f"kernel ({'; '.join(partial)})")
    return text


def _error_cell(row: CoverageRow) -> str:
    """The formulation's measured fp16 error: max abs, ulps, tolerance ratio (and the worst variant)."""
    record = row.measurement
    if not row.rewrite:
        return ""
    if not record or not record.get("fp16"):
        return "not measured"
    fp16 = record["fp16"]
    text = f"{fp16['max_abs']:.3g} abs, {fp16['max_ulp']} ulp, {fp16['ratio']:.2f}x tol"
    if fp16.get("domain"):
        text += f" ({fp16['domain']})"
    variants = record.get("variants") or {}
    outside = sorted(name for name, v in variants.items() if not v.get("within_tolerance"))
    if outside:
        text += f"; outside tolerance: {', '.join(outside)}"
    elif not record.get("within_tolerance"):
        text += "; outside tolerance"
    return text


def _blob_cell(row: CoverageRow) -> str:
    """The same formulation's error when its compiled blobs run on the blob interpreter (what the device runs)."""
    record = row.measurement
    if not row.rewrite:
        return ""
    blob = (record or {}).get("blob")
    if not blob:
        return "not measured"
    if not blob.get("ran"):
        return f"not run ({(blob.get('problems') or ['?'])[0][:80]})"
    ratio = blob["ratio"]
    text = f"{blob['max_abs']:.3g} abs, {blob['max_ulp']} ulp, " + (
        f"{ratio:.2f}x tol" if ratio != float("inf") else "mismatch (integers differ, or inf/NaN)")
    if blob["ran"] < blob["runs"]:
        text += f"; {blob['runs'] - blob['ran']} of {blob['runs']} not run"
    flagged = [p for p in blob.get("problems", []) if "fix:" in p]
    if flagged:
        text += "; range check: " + flagged[0].split(";")[0]
    return text


def coverage_text(targets: list[str] | None = None) -> str:
    targets, rows = coverage(targets)
    width = max(len(r.op) for r in rows)
    headers = [h for t in targets for h in (t, f"{t} without clc")]
    cells = [[c for t in targets for c in (_cell(r, t), r.deployable[t])] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join([f"{'op':<{width}}"] + [f"{h:<{w}}" for h, w in zip(headers, widths)]).rstrip()]
    for row, cell in zip(rows, cells):
        lines.append("  ".join([f"{row.op:<{width}}"] + [f"{c:<{w}}" for c, w in zip(cell, widths)]).rstrip())
    lines.append("")
    lines += _summary(targets, rows)
    return "\n".join(lines) + "\n"


def _summary(targets: list[str], rows: list[CoverageRow]) -> list[str]:
    out = []
    for target in targets:
        counts = {s: sum(1 for r in rows if r.status[target] == s) for s in (NATIVE, REWRITE, KERNEL, NONE)}
        free = sum(1 for r in rows if r.deployable[target].startswith("yes"))
        out.append(f"{target}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) +
                   f"; {free} of {len(rows)} deployable without clc")
    return out


def coverage_markdown(targets: list[str] | None = None) -> str:
    targets, rows = coverage(targets)
    lines = ["# Op coverage on MYRIAD, per target toolkit", "",
             f"Generated by `{COMMAND}` (`--target T` for one target); do not edit by hand.", "",
             "Each cell lists every way an op runs, the preferred first: **native** (the MYRIAD plugin compiles "
             "it; `kernelkit.facts.knowledge`), **rewrite** (the model doctor replaces it with supported ops, an "
             "exact composition or a native formulation; `kernelkit.model.passes.rewrite`), **kernel** (a library custom "
             "layer from `kernels/`, bound by op type; a condition such as `mode=cubic` means the kernel takes "
             "only those layers). Ops absent from the knowledge base count as not native.", "",
             "**Without clc** says whether a model using the op can become a blob with no custom layer, so with no "
             "SHAVE binary to build: natively, or through a formulation the real "
             f"{COMPILED_TARGET} MYRIAD plugin compiled in every measured case (for 2022.x its ops are ones that target's knowledge base supports; kernelkit "
             "runs no 2022.x compiler). A library kernel alone needs clc, which no pip package ships.", "",
             "**fp16 error** is the formulation's error measured by `tools/measure_native.py` with every "
             "intermediate tensor rounded to fp16, as the VPU computes (`kernelkit.runners.fp16_layers`), against "
             "the op on the same fp16-rounded inputs: the largest absolute error, the largest distance in fp16 "
             "ulps, and the tolerance ratio (the largest min(abs/atol, rel/rtol) over the elements, atol 1e-3 and "
             "rtol 1e-2: at most 1 is within the tolerance the library kernels are held to). Inputs: every ONNX "
             "node case of the op, every finite fp16 value of an element-wise op's domain, and the synthetic "
             "cases of the script (larger shapes); the data is `kernelkit/facts/data/native-fp16.json`. "
             "`patch --prefer native` (the default) takes a formulation over a kernel only when it is within "
             "the tolerance and compiled.", "",
             "**on the compiled blob** is the same measurement on what the device runs: each compiled case (and "
             "each element-wise sweep, compiled as one model) run as its blob by the blob interpreter "
             "(`kernelkit.runners.blob`, fp32 accumulator; docs/blob.md) on the same inputs against the same "
             "reference, so the plugin's fusions and fp16 stages count; a range-check flag (an intermediate inf, "
             "an overflow before a descale) is named.", "",
             "| op | " + " | ".join(f"{t} | {t} without clc" for t in targets) + " | library kernel | rewrite | "
             "fp16 error | on the compiled blob |",
             "|---|" + "---|---|" * len(targets) + "---|---|---|---|"]
    for row in rows:
        kernels = ", ".join(f"[{k.name}](kernels/{k.name}.md)" if (DOCS_DIR / "kernels" / f"{k.name}.md").is_file()
                            else k.name for k in row.kernels)
        lines.append(f"| {row.op} | " + " | ".join(f"{_cell(row, t)} | {row.deployable[t]}" for t in targets) +
                     f" | {kernels} | {(row.rewrite or '').replace('|', '/')} | {_error_cell(row)} | "
                     f"{_blob_cell(row).replace('|', '/')} |")
    lines += ["", "## Totals", ""] + [f"- {line}" for line in _summary(targets, rows)]
    lines += ["", f"## Still needing a kernel (or not covered) on {COMPILED_TARGET}", ""]
    if COMPILED_TARGET.name in targets:
        for row in rows:
            verdict = row.deployable[COMPILED_TARGET.name]
            if not verdict.startswith("yes"):
                lines.append(f"- {row.op}: {verdict}")
    return "\n".join(lines) + "\n"
