"""plugin-check of a library kernel folder: each spec case as the one-op model `kernelkit patch` binds the kernel
to, checked as a patch folder."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from kernelkit.doctor.plugin_check.check_model import CheckCase, TensorSpec, extension_layer_model, kernel_types
from kernelkit.doctor.plugin_check.patch_folder import check_patch_dir
from kernelkit.doctor.plugin_check.verdict import SKIPPED, UNBINDABLE, Verdict
from kernelkit.facts.target import compiler_target
from kernelkit.model import patchdir


def _bind_anyway(patched: Path, out: Path, spec, library: Path) -> tuple[Path, str]:
    """A copy of a patch folder whose layers of the kernel's types are bound to it although the plugin
    compiles them itself (a binding overrides the plugin's own stage): (folder, "") or (folder, why not)."""
    from kernelkit.ir.load import load_model
    from kernelkit.model.passes.base import PatchContext
    from kernelkit.model.passes.custom_layer import Binder

    model = load_model(patched / patchdir.MODEL_FILE)
    types = {t.lower() for t in kernel_types(spec)}
    layers = [layer for layer in model.topological_order() if layer.type.lower() in types]
    if not layers:
        return patched, "OpenVINO has no layer of this type in the op's model (it decomposes the op)"
    ctx = PatchContext(model, compiler_target())
    binder = Binder(ctx, library)
    try:
        reasons = [why for layer in layers if (why := binder.bind(layer))]
        if not binder.bindings:
            return patched, "; ".join(reasons)
        report = {"custom_layers": [{"type": b.layer_type, "kernel": b.spec.name, "layers": b.bound_layers}
                                    for b in binder.bindings.values()]}
        patchdir.write(out, model, report, target=compiler_target(), bindings=binder.bindings)
    finally:
        binder.close()
    return out, ""


def check_kernel_dir(kernel_dir: str | Path, *, jobs: int | None = None, keep: str | Path | None = None
                     ) -> list[Verdict]:
    """The plugin's verdict on a library kernel at every spec case: the case's one-op OpenVINO reference model
    (constant inputs where the case fixes them), patched for the compiler target with this kernel only, then checked as a
    patch folder. A case patch does not bind is skipped with patch's reason."""
    from kernelkit.harness.inputs import generate_inputs
    from kernelkit.runners.base import RunnerSkipped
    from kernelkit.runners.openvino_op import openvino_model
    from kernelkit.model.patcher import patch_model
    from kernelkit.kernel.spec import load_spec
    from kernelkit.facts.knowledge import custom_layer_facts

    import openvino as ov

    spec = load_spec(kernel_dir)
    target = compiler_target().name
    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-kernel-") as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        (library / spec.dir.name).symlink_to(spec.dir.resolve())
        for case in spec.cases:
            label = f"{spec.name}::{case.name}"
            arrays = generate_inputs(case, path=spec.path)
            placeholder = CheckCase(spec.op, [TensorSpec(tuple(a.shape)) for a in arrays],
                                    [tuple(arrays[0].shape)], name=label)
            case_dir = Path(tmp) / re.sub(r"[^A-Za-z0-9_.-]", "_", case.name)
            case_dir.mkdir()
            try:
                model, _, _ = openvino_model(spec, arrays, dict(case.attrs), embedded=set(case.fixed))
                ov.save_model(model, str(case_dir / "reference.xml"), compress_to_fp16=False)
                why = None
            except RunnerSkipped as exc:
                why = f"no OpenVINO model of the op: {exc}"
            if why is not None and custom_layer_facts().reader_lacks(spec.op):
                extension_layer_model(case_dir / "reference.xml", spec, case, arrays)
                why = None
            if why is not None:
                verdicts.append(Verdict(placeholder, SKIPPED, why))
                continue
            result = patch_model(case_dir / "reference.xml", case_dir / "patched", target, prefer="kernel",
                                 kernels_dir=library)
            folder = case_dir / "patched"
            if not result.report.get("custom_layers"):
                why = "; ".join(r.reason for r in result.refusals)
                if not why:         # the plugin compiles the op itself: bind the kernel anyway, to judge it
                    folder, why = _bind_anyway(folder, case_dir / "bound", spec, library)
                unbindable = f"patch binds no kernel: {why}" if why else None
                if why and custom_layer_facts().reader_lacks(spec.op):
                    # OpenVINO's layer of the op does not take the kernel (none, or another input form):
                    # judge the kernel on one extension layer of its own op type
                    extension_layer_model(case_dir / "own_op.xml", spec, case, arrays)
                    folder = case_dir / "own_op"
                    result = patch_model(case_dir / "own_op.xml", folder, target, prefer="kernel",
                                         kernels_dir=library)
                    reasons = "; ".join(r.reason for r in result.refusals)
                    if result.report.get("custom_layers"):
                        unbindable = None
                    elif reasons:
                        unbindable = (f"patch binds no kernel to OpenVINO's model of the op nor to one {spec.op} "
                                      f"extension layer: {reasons}")
                if unbindable:
                    verdicts.append(Verdict(placeholder, UNBINDABLE, unbindable))
                    continue
            kept = Path(keep) / case_dir.name if keep is not None else None
            verdicts += check_patch_dir(folder, jobs=jobs, keep=kept, label=label)
    return verdicts
