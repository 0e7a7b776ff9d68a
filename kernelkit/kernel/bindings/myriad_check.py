"""Findings on MYRIAD bindings beyond what myriad_read refuses: what makes the plugin fail later, skip a binding
silently, or do something the author probably did not mean.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from kernelkit.core.errors import KernelkitError
from kernelkit.kernel.bindings import expr
from kernelkit.kernel.bindings.findings import Finding
from kernelkit.kernel.bindings.model import CustomLayer, DataParam, ScalarParam, TensorParam
from kernelkit.kernel.bindings.myriad_select import (float_without_dot, plugin_attrs, read_plugin_number,
                                                      where_rule_holds)

SHAVE_COUNT = 16


def validate(layers: Sequence[CustomLayer], layer_attrs: Mapping[str, object] | None = None, *,
             numeric_attributes: Iterable[str] | None = None) -> list[Finding]:
    """Checks beyond what `loads` refuses: things that make the plugin fail later, skip the binding silently,
    or do something the author probably did not mean.

    `layer_attrs`, when given, are the attributes of the IR layer the bindings are meant for.
    `numeric_attributes` names attributes known to be numeric without giving values (e.g. from a kernel spec).
    With neither, names in size rules that are not B/F/Y/X are warnings; with either, unknown names are errors."""
    findings: list[Finding] = []
    declared = set(numeric_attributes) if numeric_attributes is not None else None
    for layer in layers:
        findings += list(layer.notes)
        findings += _validate_layer(layer, layer_attrs, declared)
    findings += _shadowed(layers)
    return findings


def _validate_layer(layer: CustomLayer, layer_attrs: Mapping[str, object] | None,
                    declared: set[str] | None) -> list[Finding]:
    out: list[Finding] = []
    lname = f"<CustomLayer name=\"{layer.name}\">"

    def add(severity, message, line=None, where=lname, hint=None, plugin=None):
        out.append(Finding(severity, message, path=layer.path, line=line or layer.line, where=where, hint=hint,
                           plugin=plugin))

    if layer.layer_max_shaves is not None:
        add("warning", "max-shaves on <CustomLayer> is ignored by OpenVINO 2021.1-2022.3",
            hint=f"put max-shaves=\"{layer.layer_max_shaves}\" on each <Kernel>")
    params = plugin_attrs(layer.name, layer_attrs or {})
    if layer_attrs is not None:
        for key, rule in layer.where.items():
            if key not in params:
                add("warning", f"<Where {key}=\"{rule}\">: the layer has no attribute '{key}', so the plugin "
                    "never selects this binding for it", plugin="skips")
                continue
            try:
                holds = where_rule_holds(rule, params[key])
            except KernelkitError as exc:
                add("error", exc.message, hint=exc.hint, plugin="rejects")
                continue
            if not holds:
                add("warning", f"<Where {key}=\"{rule}\"> does not hold for {key}=\"{params[key]}\", so this "
                    "alternative is not used for this layer", plugin="skips")
    known = set(expr.size_variables([1, 1, 1, 1], layer_attrs or {})) | (declared or set())
    strict = layer_attrs is not None or declared is not None
    outputs: dict[int, list[TensorParam]] = {}
    writers: dict[int, list[TensorParam]] = {}
    readers: dict[int, list[TensorParam]] = {}
    for kernel in layer.kernels:
        kname = f"<Kernel entry=\"{kernel.entry}\">"
        if kernel.max_shaves > SHAVE_COUNT:
            add("warning", f"max-shaves=\"{kernel.max_shaves}\" is more than the {SHAVE_COUNT} SHAVEs of a Myriad X",
                kernel.line, kname)
        ws = kernel.work_sizes
        values = {}
        for key, items in (("global", ws.global_), ("local", ws.local)):
            for index, text in enumerate(items):
                values[(key, index)] = _check_size_rule(text, f"WorkSizes {key}[{index}]", strict,
                                                        known, ws.line, kname, add, selection=True)
        if len(ws.local) < len(ws.global_):
            add("error", f"global has {len(ws.global_)} dimensions and local {len(ws.local)}: the plugin divides "
                "by the local sizes that are missing and crashes", ws.line, kname,
                hint="give local as many dimensions as global", plugin="rejects")
        elif len(ws.local) > len(ws.global_):
            add("warning", f"local has {len(ws.local)} dimensions and global {len(ws.global_)}: the blob holds no "
                "group count for the extra ones, and what the device launches there is not known", ws.line, kname,
                hint="give global and local the same number of dimensions")
        if len(ws.global_) > 3:
            add("error", f"{len(ws.global_)} work dimensions: the plugin writes them all into the blob, and a "
                "SHAVE kernel launches at most 3", ws.line, kname, hint="fold the extra dimensions into three")
        for index in range(min(len(ws.global_), len(ws.local))):
            g, l_ = values.get(("global", index)), values.get(("local", index))
            if isinstance(l_, int) and l_ == 0:
                add("error", f"local[{index}] is 0: the plugin divides by it and crashes", ws.line, kname,
                    plugin="rejects")
            elif isinstance(l_, int) and l_ < 0:
                add("error", f"local[{index}] is {l_}; a work-group size must be at least 1", ws.line, kname)
            elif isinstance(g, int) and g <= 0:
                add("error", f"global[{index}] is {g}: no work group runs", ws.line, kname)
            elif isinstance(g, int) and isinstance(l_, int) and g % l_ != 0:
                add("error", f"global[{index}] = {g} is not a multiple of local[{index}] = {l_}; the plugin "
                    f"launches {g} / {l_} = {g // l_} groups and drops the rest of the work items", ws.line, kname,
                    hint="make global a multiple of local")
        for param in kernel.params:
            pname = f"{kname} <{type(param).__name__.replace('Param', '')} arg-name=\"{param.arg_name}\">"
            if isinstance(param, TensorParam):
                if param.type == "output":
                    outputs.setdefault(param.port_index, []).append(param)
                if param.size is not None:
                    _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                     selection=False)
                if param.type == "output_buffer":
                    previous = writers.get(param.port_index, [None])[0]
                    if previous and (previous.size, previous.dim) != (param.size, param.dim):
                        add("warning", f"scratch buffer {param.port_index} is declared with dim/size "
                            f"{param.dim}/{param.size} here and {previous.dim}/{previous.size} at line "
                            f"{previous.line}; the plugin sizes it from the first", param.line, pname)
                    writers.setdefault(param.port_index, []).append(param)
                elif param.type == "input_buffer":
                    readers.setdefault(param.port_index, []).append(param)
            elif isinstance(param, DataParam):
                if param.type == "local_data":
                    size = _check_size_rule(param.size, "size", strict, known, param.line, pname, add,
                                            selection=False)
                    if isinstance(size, int) and size <= 0:
                        add("error", f"local_data size is {size} bytes: the kernel gets no __local memory",
                            param.line, pname)
            else:
                _check_scalar(param, layer_attrs, params, param.line, pname, add)
    for port, bound in outputs.items():
        if len(bound) > 1:
            add("error", f"output {port} is bound {len(bound)} times (lines "
                f"{', '.join(str(p.line) for p in bound)}): the plugin gives a tensor one writer and its compile "
                "fails", bound[1].line, hint="write the output in one kernel; pass results through scratch buffers",
                plugin="rejects")
    for port, bound in readers.items():
        if port not in writers:
            add("error", f"input_buffer {port} is read, and no stage writes it as an output_buffer: the plugin's "
                "compile fails", bound[0].line,
                hint="an output_buffer in one stage feeds the input_buffer with the same port-index", plugin="rejects")
    for port, bound in writers.items():
        if port not in readers:
            add("error", f"output_buffer {port} is written, and no stage reads it as an input_buffer: the plugin's "
                "compile fails", bound[0].line, hint="read it in a later stage, or drop it", plugin="rejects")
    if not outputs:
        add("error", "no <Tensor type=\"output\"> in any kernel: the layer's output is never written",
            hint="bind the kernel's result pointer with <Tensor type=\"output\" port-index=\"0\">")
    return out


def _check_size_rule(text, what, strict, known, line, where, add, *, selection: bool):
    """Report problems of one size expression; return its value when it is a constant.

    WorkSizes are parsed when the plugin chooses a binding (a parse failure skips it) and evaluated when it
    compiles (a failure there fails the compile); buffer and local_data sizes only at the compile."""
    try:
        parsed = expr.parse(text, strict=False)
    except expr.ExprError as exc:
        if selection:
            add("error", f"{what}: {exc.message}. The plugin finds this binding unsuitable and skips it silently.",
                line, where, hint=exc.hint, plugin="skips")
        else:
            add("error", f"{what}: {exc.message}; the plugin's compile fails", line, where, hint=exc.hint,
                plugin="rejects")
        return None
    problem = parsed.structure_error()
    if problem is not None:
        add("error", f"{what}: {problem.message}; the plugin's compile fails on it", line, where, hint=problem.hint,
            plugin="rejects")
        return None
    if parsed.oddity:
        add("warning", f"{what} '{text}': {parsed.oddity}", line, where)
    unknown = sorted(parsed.identifiers - known)
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        if not strict:
            add("warning", f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer, or the "
                "plugin silently skips this binding" if selection else
                f"{what} '{text}' uses {names}: each must be a numeric attribute of the layer", line, where)
        else:
            add("error", f"{what} '{text}' uses {names}, which the layer does not have as a numeric attribute"
                + ("; the plugin finds this binding unsuitable and silently skips it" if selection else
                   "; the plugin's compile fails"),
                line, where, hint="use B, F, Y, X or a numeric attribute of the layer",
                plugin="skips" if selection else "rejects")
        return None
    if not parsed.identifiers:
        try:
            return parsed.evaluate({})
        except expr.ExprError as exc:
            add("error", f"{what}: {exc.message}", line, where, plugin="rejects")
    return None


def _check_scalar(param: ScalarParam, layer_attrs, params: Mapping[str, str], line, where, add) -> None:
    """A <Scalar> as the plugin resolves it (probes scalar.*, lookup.*, attr.*): a layer attribute by name,
    else a shape lookup when the source holds a '.', else a number read by stoi/stof."""
    source, kind = param.source, param.type
    indexed = param.port_index is not None and param.port_index >= 0
    if layer_attrs is not None and source in params:
        value = params[source]
        if indexed:
            if "," not in value:
                add("error", f"source=\"{source}\" port-index=\"{param.port_index}\" takes element "
                    f"{param.port_index} of a comma list, but the layer has {source}=\"{value}\": the plugin's "
                    "compile fails", line, where, hint="drop port-index to read the whole attribute",
                    plugin="rejects")
                return
            items = value.split(",")
            if param.port_index >= len(items):
                add("warning", f"source=\"{source}\" port-index=\"{param.port_index}\": {source}=\"{value}\" has "
                    f"{len(items)} elements; the plugin passes the last", line, where)
            value = items[min(param.port_index, len(items) - 1)]
        number = read_plugin_number(value, kind)
        if number.value is None:
            add("error", f"attribute {source}=\"{value}\" does not read as {kind} ({number.error}): the plugin's "
                "compile fails", line, where, plugin="rejects")
        elif number.partial:
            add("warning", f"attribute {source}=\"{value}\" is passed as {kind} {number.value:g}: the plugin reads "
                "only the number it starts with", line, where)
        return
    if "." in source:
        if read_plugin_number(source, "float").value is not None:
            add("error", f"source=\"{source}\" holds a '.', so the plugin reads it as a shape lookup, not as a "
                "number, and crashes", line, where, plugin="rejects",
                hint=f"write the number without a '.': {float_without_dot(source)}")
            return
        prefix, _, letter = source.partition(".")
        if not indexed:
            add("error", f"source=\"{source}\" reads a tensor dimension but has no port-index: the plugin crashes",
                line, where, hint=f"add port-index=\"0\" (the {'input' if prefix == 'I' else 'output'} port to "
                "read)", plugin="rejects")
        if letter not in ("B", "F", "Y", "X", "b", "f", "y", "x"):
            add("error", f"source=\"{source}\": '{letter}' is not one of B, F, Y, X: the plugin cannot deduce "
                "the parameter", line, where, plugin="rejects")
        if prefix not in ("I", "O"):
            meaning = "an OUTPUT" if prefix.upper() == "I" else "the output"
            add("warning", f"source=\"{source}\" reads {meaning} dimension: the plugin treats every prefix other "
                "than an upper-case 'I' as the output", line, where, hint="write I.<d> for inputs, O.<d> for outputs")
        if kind != "int":
            add("warning", f"source=\"{source}\" is a tensor dimension: the plugin passes it as an int whatever "
                f"type=\"{kind}\" says, and a {kind} argument reads the int's bits", line, where,
                hint="write type=\"int\" and convert in the kernel")
        return
    number = read_plugin_number(source, kind)
    if number.value is not None or number.error == "out of range":
        if indexed:
            add("error", f"literal source=\"{source}\" must not have a port-index: the plugin's compile fails",
                line, where, plugin="rejects")
        if number.value is None:
            add("error", f"literal {source} is out of range for a 32-bit {kind}: the plugin's compile fails",
                line, where, plugin="rejects")
        elif number.partial:
            add("warning", f"literal {source!r} is passed as {kind} {number.value:g}: the plugin reads only the "
                "number it starts with", line, where, hint=f"write {number.value:g}")
        return
    if layer_attrs is not None:
        add("error", f"source=\"{source}\" is not an attribute of the layer, a tensor dimension (I.X) or a number; "
            "the plugin fails with 'Unable to deduce parameter'", line, where, plugin="rejects")
    elif not expr.IDENTIFIER.match(source):
        add("warning", f"source=\"{source}\" is neither a number, an I.X/O.X lookup nor a plain attribute name",
            line, where)


def _shadowed(layers: Sequence[CustomLayer]) -> list[Finding]:
    """An alternative that can never be chosen because an earlier one with the same conditions always wins."""
    out = []
    for i, later in enumerate(layers):
        for earlier in layers[:i]:
            if earlier.name.lower() != later.name.lower() or earlier.where != later.where:
                continue
            formats = [sorted((p.port_index, p.format) for k in x.kernels for p in k.params
                              if isinstance(p, TensorParam) and p.type == "input") for x in (earlier, later)]
            sizes = [[(k.work_sizes.global_, k.work_sizes.local) for k in x.kernels] for x in (earlier, later)]
            if formats[0] == formats[1] and sizes[0] == sizes[1]:
                out.append(Finding("warning", f"this alternative is never chosen: the one at line {earlier.line} "
                                   "binds the same type with the same <Where> and input formats and comes first",
                                   path=later.path, line=later.line, where=f"<CustomLayer name=\"{later.name}\">",
                                   hint="add a <Where> condition or remove one of them"))
                break
    return out
