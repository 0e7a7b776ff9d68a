"""kernelkit's own reading of a binding (parser, validator, cross-check, the emulator's launch plan) beside the
plugin's: where the plan differs from the Custom stages in the blob (the alternative, work-group counts and
sizes, every scalar value, every buffer's place, order and dims).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.doctor.plugin_check.check_model import ELEMENT_TYPES, CheckCase, per_sample
from kernelkit.doctor.plugin_check.verdict import ACCEPTED, Verdict, reachable
from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION
from kernelkit.facts.tensor_formats import TENSOR_FORMATS

# The order the plugin gives a tensor for a binding format; ANY keeps the default order for the rank.
DEFAULT_ORDERS = {1: "C", 2: "NC", 3: "CHW", 4: "NCHW", 5: "NCDHW"}


def kernelkit_reading(bindings: Path, case: CheckCase, verdict: Verdict, batch: int = 1):
    """kernelkit's parser, validator, cross-check and emulator plan for the case; the plan, or None where
    they refuse. `verdict.kernelkit` says what kernelkit expects the plugin to do: "accepts", "skips: why"
    (it uses no binding) or "refuses: why" (its compile fails); errors of the emulator's device checks (the
    kernel would misbehave) do not make the plugin refuse. With a network batch above 1 the plugin compiles
    the network for one sample: so is the plan."""
    from kernelkit.kernel.bindings import crosscheck, myriad_check, myriad_read, myriad_select
    from kernelkit.kernel.bindings.model import source_file
    from kernelkit.kernel.emulator.plan import NoBindingApplies, plan_launch
    from kernelkit.facts.knowledge import custom_layer_facts, legacy_params

    try:
        layers = myriad_read.load(bindings)
    except KernelkitError as exc:
        verdict.kernelkit = f"refuses: {exc.message}"
        return None
    facts = custom_layer_facts()
    consts = {i: t.value for i, t in enumerate(case.inputs) if t.value is not None}
    extension_layer = case.version == EXTENSION_LAYER_VERSION
    if extension_layer and facts.extension_layer_refusal(case.layer_type):
        verdict.kernelkit = f"refuses: {facts.extension_layer_refusal(case.layer_type)}"
        return None
    attrs = legacy_params(case.layer_type, facts.extension_layer_attrs(case.layer_type, case.attrs)
                          if extension_layer else case.attrs, consts)
    blobs = {name: consts[port] for port, name in facts.blobs(case.layer_type).items() if port in consts}
    plugin_type = myriad_select.plugin_layer_type(case.layer_type)
    same_type = [layer for layer in layers if layer.name.lower() == plugin_type.lower()]
    for finding in myriad_check.validate(same_type, attrs):
        verdict.findings.append(f"{finding.severity}: {finding.message}")
    lacks = facts.reader_lacks(case.layer_type)
    if lacks and not extension_layer:
        verdict.kernelkit = (f"skips: {lacks}, so no {case.layer_type} layer of {case.version} reaches a binding "
                             f"(an extension layer does)")
        return None
    decomposed = facts.decomposed_by_plugin(case.layer_type)
    if decomposed and not extension_layer:
        verdict.kernelkit = f"skips: the plugin never uses a binding for {case.layer_type} ({decomposed})"
        return None
    arrays = [np.zeros(per_sample(t.shape, batch), ELEMENT_TYPES[t.element_type][1]) if t.value is None
              else np.asarray(t.value, ELEMENT_TYPES[t.element_type][1]).reshape(t.shape) for t in case.inputs]
    outputs = [per_sample(s, batch) for s in case.output_shapes]
    try:
        plan = plan_launch(layers, case.layer_type, arrays, attrs, outputs, blobs=blobs)
    except NoBindingApplies as exc:
        verdict.kernelkit = f"skips: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return None
    except KernelkitError as exc:
        verdict.kernelkit = f"refuses: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        return None
    chosen = [layer for layer in same_type][plan.alternative]
    claims = [f for f in plan.findings if f.plugin == "rejects"]
    claims += [f for f in myriad_check.validate([chosen], attrs) if f.plugin == "rejects"]
    for kernel in chosen.kernels:
        cl = next(filter(None, (source_file(chosen, n, line=kernel.line, suffix=".cl", missing_ok=True)
                                for n in kernel.sources)), None)
        if cl is not None:
            found = crosscheck.check(chosen, {kernel.entry: cl.read_text()}, source_paths={kernel.entry: cl})
            claims += [f for f in found if f.plugin == "rejects"]
    verdict.kernelkit = f"refuses: {claims[0].message}" if claims else "accepts"
    in_file = _alternative_index_in_file(plan)      # numbered as the plugin's alternative: in the whole file
    verdict.kernelkit_alternative = in_file if in_file is not None else plan.alternative
    return plan


def _expected_buffers(kernel) -> dict[str, int]:
    """arg name -> the buffer number the plugin gives it: inputs and input buffers in binding order, then
    data blobs, then the kernel binary, then outputs and output buffers."""
    from kernelkit.kernel.bindings.model import DataParam, TensorParam

    inputs = [p.arg_name for p in kernel.params if isinstance(p, TensorParam) and p.type in ("input", "input_buffer")]
    inputs += [p.arg_name for p in kernel.params if isinstance(p, DataParam) and p.type == "data"]
    outputs = [p.arg_name for p in kernel.params if isinstance(p, TensorParam)
               and p.type in ("output", "output_buffer")]
    numbering = {name: i for i, name in enumerate(inputs)}
    numbering.update({name: len(inputs) + 1 + i for i, name in enumerate(outputs)})
    return numbering


def _pad(values, width: int = 3) -> tuple[int, ...]:
    return tuple(values) + (1,) * (width - len(values))


def compare_launch(plan, custom: list, case: CheckCase, batch: int = 1) -> list[str]:
    """Where the emulator's launch differs from the Custom stages the plugin wrote (empty: identical)."""
    diffs = []
    if len(custom) != len(plan.stages):
        split = len(custom) % max(len(plan.stages), 1) == 0 and custom and custom[0].inputs and \
            custom[0].inputs[0].dims.get("N") == 1
        return [f"the plugin wrote {len(custom)} Custom stage(s), the emulator plans {len(plan.stages)}"
                + (": it split the layer into one stage per sample, each with the whole tensor's work sizes "
                   "(on the device each would overrun its slice)" if split else "")]
    from kernelkit.kernel.emulator.plan import per_sample_stages

    samples = per_sample_stages(plan.layer, [per_sample(t.shape, batch) if t.value is None else t.shape
                                             for t in case.inputs],
                                [per_sample(s, batch) for s in case.output_shapes])
    for planned, stage, kernel in zip(plan.stages, custom, plan.layer.kernels):
        at = f"stage {planned.stage} '{planned.entry}'"
        if stage.entry != planned.entry:
            diffs.append(f"{at}: the plugin runs kernel '{stage.entry}'")
        # the blob holds one entry per dimension the binding gives; missing ones are 1
        width = max(len(stage.groups), len(stage.local), len(planned.groups))
        if _pad(stage.groups, width) != _pad(planned.groups, width):
            diffs.append(f"{at}: work groups {tuple(stage.groups)} in the blob, {planned.groups} in the emulator")
        if _pad(stage.local, width) != _pad(planned.local_size, width):
            diffs.append(f"{at}: local size {tuple(stage.local)} in the blob, {planned.local_size} in the emulator")
        if stage.max_shaves != kernel.max_shaves:
            diffs.append(f"{at}: max-shaves {stage.max_shaves} in the blob, {kernel.max_shaves} in the binding")
        names = [a.name for a in stage.args]
        if names != [a.name for a in planned.args]:
            diffs.append(f"{at}: arguments {names} in the blob, {[a.name for a in planned.args]} in the emulator")
            continue
        numbering = _expected_buffers(kernel)
        for mine, theirs in zip(planned.args, stage.args):
            where = f"{at}, argument '{mine.name}'"
            kind = mine.kind if mine.kind != "buffer" else "buffer"
            if theirs.kind != kind:
                diffs.append(f"{where}: {theirs.kind} in the blob, {kind} in the emulator")
                continue
            if kind in ("int", "float", "local"):
                same = (np.float32(theirs.value) == np.float32(mine.value) or
                        (np.isnan(np.float32(theirs.value)) and np.isnan(np.float32(mine.value))))
                if kind != "float":
                    same = int(theirs.value) == int(mine.value)
                if not same:
                    diffs.append(f"{where}: {kind} {theirs.value!r} in the blob, {mine.value!r} in the emulator")
                continue
            expected = numbering.get(mine.name)
            if expected is not None and theirs.value != expected:
                diffs.append(f"{where}: buffer #{theirs.value} in the blob, #{expected} by the binding's order")
            if not 0 <= theirs.value < len(stage.buffers):
                continue
            buffer = stage.buffers[theirs.value]
            if mine.buffer == "scratch" and mine.size is not None and buffer.dims:
                elements = int(np.prod(list(buffer.dims.values())))
                if elements != mine.size:
                    diffs.append(f"{where}: scratch buffer of {elements} elements in the blob, {mine.size} in the "
                                 "emulator")
            if mine.buffer in ("input", "output"):
                shapes = ([t.shape if t.value is not None else per_sample(t.shape, batch) for t in case.inputs]
                          if mine.buffer == "input" else [per_sample(s, batch) for s in case.output_shapes])
                shape = tuple(shapes[mine.port]) if mine.port < len(shapes) else None
                if samples > 1 and shape is not None and len(shape) == 2 and shape[0] == samples:
                    shape = (1, shape[1])          # each copy of a split stage holds one sample's slice
                if shape is not None and buffer.dims and buffer.logical_shape() != tuple(shape):
                    diffs.append(f"{where}: dims {buffer.logical_shape()} in the blob, {tuple(shape)} "
                                 f"for {mine.buffer} {mine.port}")
                declared = TENSOR_FORMATS.get(mine.format or "ANY")
                order = (declared.layout if declared and declared.rank else None) or DEFAULT_ORDERS.get(len(shape or ()))
                if shape is not None and order and len(order) == len(shape) and buffer.order != order:
                    diffs.append(f"{where}: order {buffer.order} in the blob, {order} for format {mine.format}")
    return diffs


def _alternative_index_in_file(plan) -> int | None:
    """The plan's alternative as its position among all <CustomLayer> elements of the file."""
    from kernelkit.kernel.bindings import myriad_read

    if plan is None or plan.layer.path is None:
        return None
    layers = myriad_read.load(plan.layer.path)
    same_type = [i for i, layer in enumerate(layers) if layer.name.lower() == plan.layer.name.lower()]
    return same_type[plan.alternative] if plan.alternative < len(same_type) else None


def compare_with_kernelkit(verdict: Verdict, bindings: Path, batch: int = 1) -> None:
    plan = kernelkit_reading(bindings, verdict.case, verdict, batch)
    if verdict.status == ACCEPTED and plan is not None:
        verdict.differences = compare_launch(plan, verdict.stages, verdict.case, batch)
        in_file = _alternative_index_in_file(plan)
        if verdict.plugin_alternative is not None and in_file is not None and in_file != verdict.plugin_alternative:
            verdict.differences.insert(0, f"the plugin chose alternative #{verdict.plugin_alternative} of the "
                                       f"file, the emulator #{in_file}")
    elif verdict.status == ACCEPTED:
        verdict.differences.append(f"the plugin accepts the binding; kernelkit {verdict.kernelkit}")
    elif verdict.kernelkit == "accepts" and reachable(verdict):
        verdict.differences.append(f"kernelkit accepts the binding; the plugin {verdict.status} it")
