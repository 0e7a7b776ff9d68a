"""What `kernelkit patch` would do about each blocker `kernelkit.model.blockers` finds: one line per fix,
read from the passes' own descriptions (inspect prints them; nothing is edited)."""

from __future__ import annotations

from kernelkit.facts.target import Target


def describe_fix(blocker, model, target: Target) -> str | None:
    """What `patch` would do about one `kernelkit.model.blockers.Blocker` (None: nothing it can do)."""
    from kernelkit.model.formulations.registry import formulations
    from kernelkit.model.passes import freeze, precision, version

    kind = blocker.kind
    if kind == "ir-version":
        if blocker.details.get("keeps_version"):
            etype = blocker.details.get("element_type")
            if etype in precision.RETYPE:
                return f"retype {etype} -> {precision.RETYPE[etype]}, then write IR v10"
            return None                  # the reason says what the user does: no patch step removes it
        return "write IR v10" if not blocker.layer_id else "rename the layer to a unique name"
    if not blocker.layer_id:
        return None
    layer = model.layer(blocker.layer_id)
    if layer.type in freeze.CONTROL_FLOW and kind in ("opset", "unsupported"):
        return freeze.describe_fix(layer, model)
    if kind == "opset":
        return version.describe_fix(layer, target)
    if kind in ("unsupported", "limit") or (kind == "opset" and layer.type.lower() in formulations()):
        return _describe_choice(layer)
    if kind == "precision":
        return precision.describe_fix(model, layer, target)
    if kind == "dynamic-shape" and blocker.details.get("from_inputs"):
        from kernelkit.ir.freeze import known_input_values, suggest_input_value

        known = known_input_values(model.path)
        flags = [suggest_input_value(p.name, p.outputs[0].dims if p.outputs else [], known.get(p.name))
                 for p in model.parameters() if p.name in blocker.details["from_inputs"]]
        where = " (the values of the model's test data)" if all(p in known for p in blocker.details["from_inputs"]) \
            else ""
        return f"freeze the shape input: patch with {' '.join(flags)}{where}"
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
