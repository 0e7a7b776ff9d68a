"""docs/kernels/<name>.md for the library kernels: spec facts, the reference's semantics, limits and the
accuracy measured by a conformance run.

    kernelkit test kernels/... --report R && python -m kernelkit.library.pages R/conformance.json docs/kernels
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from kernelkit.core.fsutil import atomic_write, named_file
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.kernel.spec import KernelSpec, load_spec

_ALL_RANK4 = "Rank-4 NCHW data (lower ranks: add leading 1s; ONNX node tests of lower rank are restated so)."
# What the kernel does not do, beyond what the bindings show. One entry per library kernel.
LIMITS = {
    "trilu_h": _ALL_RANK4 + " Needs int attributes `upper` and `k` on the layer (no k input).",
    "hardmax_h": _ALL_RANK4 + " One work item per lane; NaN never wins.",
    "depth_to_space_h": "NCHW only (the plugin reorders other layouts). `block_size` up to any size that fits.",
    "space_to_depth_h": "NCHW only; H and W must be multiples of `block_size`.",
    "layer_norm_h": _ALL_RANK4 + " Returns Y only (MYRIAD custom layers have one output): no Mean/InvStdDev. "
                    "One work item walks a whole lane three times: slow for very long lanes.",
    "group_norm_h": "NCHW; C must be a multiple of num_groups. One work item per (batch, group).",
    "scatter_nd_update_h": _ALL_RANK4 + " Indices must be 2-D (U, K); out-of-range index tuples are skipped "
                           "(the reference raises). Parallel over the last data axis only.",
    "grid_sample_h": "2-D only (4-D data and grid); no volumetric (5-D) GridSample. bicubic+border follows "
                     "ONNX (coordinate clamped before the taps); OpenVINO CPU and PyTorch clamp each tap and "
                     "differ for grid points outside [-1, 1].",
    "affine_grid_h": "2-D only (theta N x 2 x 3); `size` is a layer attribute (ONNX's constant input).",
    "col2im_h": "2-D spatial only; output_size and kernel_size are layer attributes (the constant inputs "
                "folded), every list attribute needs both entries.",
    "det_h": "M <= 16 (larger matrices give NaN). LU with partial pivoting in float: ill-conditioned "
             "matrices lose accuracy, and determinants beyond 65504 become inf in fp16.",
    "interpolate_cubic_h": "Resizes H and W of NCHW data only. Scale = output/input size: exact for "
                           "shape_calculation_mode=sizes and for scales whose product is integral. No antialias, "
                           "no pads, no exclude_outside (taps clamp to the edge, as OpenVINO does).",
    "einsum_h": "Only the equations listed in the bindings, written without spaces (the plugin compares "
                "strings). Operands rank <= 3.",
    "einsum_unary_h": "Only the equations listed in the bindings, written without spaces; no full reduction "
                      "('ij->').",
}
_ELEMENTWISE_LIMIT = ("Input ranks {ranks} with one binding (the kernel needs only the element count); rank 5 is "
                      "refused: reshape around the layer. Computed in float with the OpenCL built-in, stored as "
                      "half: near poles and domain edges the fp16 rounding of the input dominates the error.")
_LONG_EXPRESSION = 60   # work-size expressions longer than this are named, not printed


def _work_size(parts: list[str], spec: KernelSpec) -> str:
    text = ", ".join(parts)
    if len(text) <= _LONG_EXPRESSION:
        return f"`{text}`"
    return f"(the `{spec.family}` family's expression, {len(text)} characters: see templates/{spec.family}/family.toml)"


def _reference_doc(spec: KernelSpec) -> str:
    path = named_file(spec.dir, spec.reference.get("module", "reference.py"), source=spec.path,
                      where="reference.module", what="reference module")
    module_spec = importlib.util.spec_from_file_location(f"kernelkit_page_{spec.name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return (module.__doc__ or "").strip()


def _accuracy(cases: list[dict]) -> tuple[list[str], list[str]]:
    """Rows per case (numpy reference and ONNX data) and a one-line summary."""
    rows, ulps, rels, abss = [], [], [], []
    for case in cases:
        for ref in case.get("references", []):
            if ref["name"] not in ("numpy", "onnx") or not ref.get("outputs"):
                continue
            out = ref["outputs"][0]
            abs_max = out["abs_error"]["max"]
            rel_max = out["rel_error"]["max"]
            rows.append(f"| {case['case']} | {ref['name']} | {ref['status']} | {out['max_ulp']} | "
                        f"{abs_max:.3g} | {rel_max:.3g} | {out['rel_error']['p99']:.3g} |")
            if ref["name"] == "numpy":
                ulps.append(out["max_ulp"])
                rels.append(out["rel_error"]["p99"])
                abss.append(abs_max)
    status = {c["status"] for c in cases}
    summary = [f"- cases run: {len(cases)} ({', '.join(sorted(status))})"]
    for other in ("emulator-fp32", "openvino"):
        results = [r for c in cases for r in c.get("references", []) if r["name"] == other]
        if results:
            counts = {s: sum(1 for r in results if r["status"] == s) for s in sorted({r["status"] for r in results})}
            reasons = sorted({r.get("reason", "") for r in results if r["status"] == "SKIP" and r.get("reason")})
            summary.append(f"- {other} reference: " + ", ".join(f"{n} {s}" for s, n in counts.items()) +
                           (f" (skipped: {reasons[0]})" if reasons else ""))
    if ulps:
        summary.append(f"- against the float64 numpy reference (fp16-rounded inputs): max {max(ulps)} fp16 ULP, "
                       f"max abs error {max(abss):.3g}, worst per-case p99 relative error {max(rels):.3g}")
    return rows, summary


def kernel_page(spec: KernelSpec, cases: list[dict], report_name: str) -> str:
    lines = [f"# {spec.name}: {spec.op}", "",
             f"Generated by `python -m kernelkit.library.pages` from `kernels/{spec.name}/` and a conformance "
             f"run (`{report_name}`); edit the spec, the reference or `kernelkit/library/pages.py`, not this page.",
             "", spec.description, "", "## Semantics", "", _reference_doc(spec), "",
             "## Binding", "",
             f"- IR op type: `{spec.op}`; family `{spec.family}`; entry `{spec.entry}`",
             f"- inputs: " + ", ".join(f"`{t.name}` (port {t.port}, {t.dtype}, {t.format})" for t in spec.inputs),
             f"- work sizes (over `{spec.work.dim}`): global {_work_size(spec.work.global_, spec)}, "
             f"local {_work_size(spec.work.local, spec)}"]
    attrs = [s for s in spec.scalars if s.kind == "attribute"]
    if attrs:
        lines.append("- attributes read as scalars: " + ", ".join(
            f"`{s.source}`" + (f"[{s.port}]" if s.port is not None else "") for s in attrs))
    if spec.alternatives:
        lines += ["", "MYRIAD bindings, first match wins (the plugin's <Where> rules):", "",
                  "| where | scalars | work sizes |", "|---|---|---|"]
        for alt in spec.alternatives:
            where = ", ".join(f"{k}={v}" for k, v in alt.where.items()) or "(any layer)"
            scalars = ", ".join(f"{k}={v}" for k, v in alt.scalars.items())
            work = f"global {', '.join(alt.global_)}" if alt.global_ else ""
            lines.append(f"| {where} | {scalars} | {work} |")
    chosen = sorted({k for alt in spec.alternatives for k in alt.scalars})
    if chosen:
        fixed = ", ".join(f"{s.name}={s.source}" for s in spec.scalars if s.name in chosen)
        lines += ["", f"The Intel GPU (SimpleGPU) binding has no <Where>: it always runs with {fixed}."]
    if any(alt.global_ for alt in spec.alternatives):
        lines += ["", "GPU work sizes cannot read layer attributes: the SimpleGPU binding launches the main "
                  f"work sizes above (global {_work_size(spec.work.global_, spec)}), and surplus work items repeat "
                  "the last one's work."]
    lines += ["", "## Limits", "", LIMITS.get(spec.name, _ELEMENTWISE_LIMIT.format(ranks=", ".join(map(str, spec.ranks)))
                                        if spec.family == "elementwise" else "—")]
    rows, summary = _accuracy(cases)
    openvino = spec.reference.get("openvino")
    if openvino:
        what = (f"ONNX `{openvino['op']}-{openvino.get('onnx_opset')}` as OpenVINO's ONNX frontend converts it"
                if openvino.get("frontend") == "onnx" else f"`{openvino.get('opset', 'opset1')}.{openvino['op']}`")
        summary.append(f"- OpenVINO CPU running {what} is the `openvino` reference of every spec case "
                       "(kernelkit.runners.openvino_op.OpenVINOOpRunner, f32)")
    lines += ["", "## Measured accuracy", ""] + (summary or ["- no conformance results for this kernel"])
    if rows:
        lines += ["", "| case | reference | status | max ULP | max abs | max rel | p99 rel |",
                  "|---|---|---|---|---|---|---|"] + rows
    lines += ["", "ULP: distance in fp16 steps between the output and the reference rounded to fp16 (0: correctly "
              "rounded). Relative errors are large where the reference is near 0; the harness judges with "
              "atol + rtol (Polygraphy semantics)."]
    return "\n".join(lines) + "\n"


def write_pages(report: Path, out_dir: Path, kernels: list[str] | None = None) -> list[Path]:
    data = json.loads(Path(report).read_text())
    by_kernel: dict[str, list[dict]] = {}
    for case in data["cases"]:
        by_kernel.setdefault(case["kernel"], []).append(case)
    written = []
    for name in kernels or sorted(by_kernel):
        spec = load_spec(KERNELS_DIR / name)
        path = Path(out_dir) / f"{name}.md"
        atomic_write(path, kernel_page(spec, by_kernel.get(name, []), Path(report).name))
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m kernelkit.library.pages CONFORMANCE.json OUT_DIR")
    for page in write_pages(Path(sys.argv[1]), Path(sys.argv[2])):
        print(page)
