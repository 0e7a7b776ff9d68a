"""Custom-layer patcher: bind a library kernel (kernels/<name>/) to a layer MYRIAD cannot compile.

A MYRIAD binding overrides a layer by its type (matched case-insensitively), restricted by `<Where>`
rules on the layer's attributes. So the layer keeps its IR type, and its version whenever the target's IR
reader knows it; a layer of an op version the reader lacks, or of a type the plugin replaces before it looks
for a binding (DepthToSpace), is written as an extension layer (version="extension"), which the toolchain's
plugin creates as it stands and binds by type. The kernel's `<CustomLayer name>` is set to that type in the
merged custom_layers.xml. A kernel matches a layer when its spec's `op`, or its `[reference] openvino.op`, is
the layer's type, it takes as many inputs as the layer has, and the plugin's selection (`<Where>`)
accepts the layer's attributes.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kernelkit.facts.target import Target, get_target, target_names
from kernelkit.model.passes.base import PatchContext, describe
from kernelkit.ir.graph import Out, add_const, const_value, input_of, move_consumers, op, out, prune_dead
from kernelkit.model.passes.version import too_new

NAME = "custom_layer"


@dataclass
class Binding:
    """One kernel bound to one IR layer type, with its built files and its <CustomLayer> alternatives."""

    layer_type: str
    spec: object                     # kernelkit.kernel.spec.KernelSpec
    build: object                    # kernelkit.kernel.builder.build.BuildResult
    layers: list = field(default_factory=list)       # CustomLayer, renamed to layer_type
    bound_layers: list[str] = field(default_factory=list)


def kernel_index(kernels_dir: Path) -> dict[str, list]:
    """Specs by the layer type (lower case) they can bind: their `op`, and their OpenVINO reference op."""
    from kernelkit.core.errors import KernelkitError
    from kernelkit.core.fsutil import is_leftover
    from kernelkit.kernel.spec import load_spec

    index: dict[str, list] = {}
    if not kernels_dir.is_dir():
        return index
    for folder in sorted(kernels_dir.iterdir()):
        if is_leftover(folder.name) or not (folder / "kernel.toml").is_file():     # a killed `new`'s staging
            continue
        try:
            spec = load_spec(folder)
        except KernelkitError:
            continue            # a broken spec is `kernelkit check`'s business, not the doctor's
        names = [spec.op]
        reference_op = (spec.reference.get("openvino") or {}).get("op") if isinstance(spec.reference, dict) else None
        if reference_op and reference_op.lower() != spec.op.lower():
            names.append(reference_op)
        for name in names:
            index.setdefault(name.lower(), []).append(spec)
    return index


class Binder:
    """Finds, builds (once per kernel) and records the bindings of one patch run."""

    def __init__(self, ctx: PatchContext, kernels_dir: Path | None = None, build_dir: Path | None = None):
        from kernelkit.core.paths import KERNELS_DIR

        self.ctx = ctx
        self.index = kernel_index(Path(kernels_dir) if kernels_dir else KERNELS_DIR)
        self._tmp = None
        if build_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kernelkit-patch-build-")
            build_dir = Path(self._tmp.name)
        self.build_dir = Path(build_dir)
        self.bindings: dict[str, Binding] = {}       # layer type (lower) -> binding
        self._built: dict[str, object] = {}

    def candidates(self, layer) -> list:
        return self.index.get(layer.type.lower(), [])

    def _build(self, spec):
        from kernelkit.kernel.builder.build import build_kernel

        if spec.name not in self._built:
            self._built[spec.name] = build_kernel(spec.dir, self.build_dir / spec.name)
        return self._built[spec.name]

    def _binding_for(self, spec, layer_type: str) -> Binding:
        from kernelkit.kernel.bindings import myriad_read

        result = self._build(spec)
        layers = [dataclasses.replace(l, name=layer_type) for l in myriad_read.load(result.xml_path)]
        return Binding(layer_type, spec, result, layers)

    def bind(self, layer) -> str | None:
        """Bind `layer`; returns None on success, else why no kernel fits."""
        from kernelkit.kernel.bindings import myriad_select
        from kernelkit.core.errors import KernelkitError
        if becomes_extension_layer(layer, self.ctx.target) and not self.ctx.target.extension_layers:
            where = _extension_layer_target().name
            return (f"{describe(layer)} can keep its type for a binding only as an extension layer, which "
                    f"kernelkit compiles for MYRIAD {where} only (--target {where})")

        attrs = dict(layer.attrs.items())
        existing = self.bindings.get(layer.type.lower())
        if existing is not None:
            chosen, reasons = myriad_select.select_with_reasons(existing.layers, layer.type, attrs)
            if chosen is None:
                return f"kernel {existing.spec.name} is already bound to {layer.type} and does not fit: {reasons[0]}"
            why = fit_tensors(self.ctx, layer, existing.spec, chosen)
            if why:
                return f"kernel {existing.spec.name}: {why}"
            existing.bound_layers.append(layer.name)
            self._keep_type_for_binding(layer)
            return None
        reasons = []
        for spec in self.candidates(layer):
            misfit = _misfit(spec, self.ctx.model, layer)
            if misfit:
                reasons.append(f"kernel {spec.name}: {misfit}")
                continue
            try:
                binding = self._binding_for(spec, layer.type)
            except KernelkitError as exc:
                reasons.append(f"kernel {spec.name} does not build: {exc.message}")
                continue
            chosen, why = myriad_select.select_with_reasons(binding.layers, layer.type, attrs)
            if chosen is None:
                reasons.append(f"kernel {spec.name}: {why[0]}")
                continue
            misfit = fit_tensors(self.ctx, layer, spec, chosen)
            if misfit:
                reasons.append(f"kernel {spec.name}: {misfit}")
                continue
            binding.bound_layers.append(layer.name)
            self.bindings[layer.type.lower()] = binding
            self._keep_type_for_binding(layer)
            return None
        return "; ".join(reasons) or f"no kernel in the library binds {layer.type}"

    def _keep_type_for_binding(self, layer) -> None:
        from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION

        if becomes_extension_layer(layer, self.ctx.target):
            layer.version = EXTENSION_LAYER_VERSION

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _extension_layer_target() -> Target:
    """The release whose extension layers kernelkit compiles (through its shim)."""
    return next(t for t in map(get_target, target_names()) if t.extension_layers)


def becomes_extension_layer(layer, target: Target) -> bool:
    """Whether a bound layer is written as an extension layer: no opset of the target's IR reader holds its
    op version, or the plugin replaces the op before it looks for a binding (then kernelkit's 2021.4 shim
    creates an extension layer as it stands and binds it by type; docs/plugin-check.md)."""
    from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION, custom_layer_facts

    return (layer.version == EXTENSION_LAYER_VERSION or too_new(layer, target)
            or custom_layer_facts().decomposed_by_plugin(layer.type) is not None)


def _misfit(spec, model, layer) -> str | None:
    """Why the kernel cannot take this layer as it is (input count, element kinds, tested ranks), or None.
    Inputs the plugin's legacy conversion absorbs into parameters (HardSigmoid's alpha, beta) do not count."""
    from kernelkit.facts.knowledge import custom_layer_facts

    absorbed = custom_layer_facts().absorbed(layer.type)
    count = len([i for i in range(len(layer.inputs)) if i not in absorbed])
    if len(spec.inputs) != count:
        extra = f" (besides {len(absorbed)} the plugin takes as parameters)" if absorbed else ""
        return f"takes {len(spec.inputs)} inputs, the layer has {count}{extra}"
    for index, (tensor, (_, etype)) in enumerate(zip(spec.inputs, model.iter_input_types(layer))):
        is_float = etype in ("f16", "f32", "f64", "bf16")
        if (tensor.dtype == "f16") != is_float:
            return f"input {index} is {tensor.dtype} in the kernel but {etype} in the layer"
    rank = len(layer.inputs[0].dims) if layer.inputs else 0
    # A binding cannot tell ranks apart (the plugin never passes the rank): the family's computed ranks are
    # a hard limit.
    if rank not in spec.ranks:
        return (f"computes rank {'/'.join(map(str, spec.ranks))} inputs only; the layer's input 0 has rank {rank}")
    # The spec's cases are the shapes the kernel is proven on; another rank is not bound on trust, except
    # for the element-wise family (one work item per element, any layout).
    if spec.family == "elementwise":
        return None
    ranks = {len(case.shapes[0]) for case in spec.cases if case.shapes}
    if ranks and rank not in ranks:
        return f"is tested on rank {'/'.join(map(str, sorted(ranks)))} inputs only; the layer's input 0 has rank {rank}"
    return None


# --- tensors the plugin can bind ---------------------------------------------------------------------------

def _plan_shapes(model, layer, spec, extension_layer: bool = False) -> tuple[list, list, str | None]:
    """The input and output shapes the bound layer gets, or why it cannot be bound (the real plugin's
    rules, docs/bindings.md): rank-0/1 tensors become [1, N]; element-wise kernels get no batch dimension
    (the plugin splits a batched rank-2 tensor, or a rank-4 one the network keeps, into one stage per sample
    that keeps the whole tensor's work sizes)."""
    from kernelkit.facts.tensor_formats import RANK_LAYOUTS
    from kernelkit.kernel.bindings.myriad_select import (flattened_batch, network_batch as batch_taken_off,
                                                         per_sample_split, plugin_shape)
    from kernelkit.facts.knowledge import custom_layer_facts

    facts = custom_layer_facts()
    elementwise = spec.family == "elementwise"
    network_batch = batch_taken_off([p.outputs[0].dims for p in model.parameters()])
    absorbed = facts.absorbed(layer.type)
    ins = []
    for port, p in enumerate(layer.inputs):
        dims = list(p.dims)
        if len(dims) < 2 and port not in absorbed:
            # An extension layer's shapes are not checked by the IR reader: any input may become [1, N].
            if not elementwise and not extension_layer and port not in facts.reshapable(layer.type):
                return ins, [], (f"input {port} has rank {len(dims)}, which the MYRIAD plugin cannot bind to a custom "
                                 f"layer, and {layer.type}'s input {port} does not keep its meaning as [1, N]")
            dims = list(plugin_shape(dims))
        ins.append(dims)
    outs = [list(p.dims) for p in layer.outputs]
    for shape in ins + outs:
        if len(shape) not in RANK_LAYOUTS and len(shape) > 1:
            return ins, outs, (f"a tensor of rank {len(shape)}: the MYRIAD plugin binds custom layers to tensors "
                               "of rank 2-4 only")
    if any(len(shape) < 2 for shape in outs):
        if not elementwise:
            return ins, outs, ("the output has rank 0 or 1, which the MYRIAD plugin cannot bind to a custom layer "
                               "(it reports \"Tensor node has an invalid format\")")
        outs = [list(plugin_shape(shape)) for shape in outs]
    if elementwise:
        def unbatched(shape):
            split = per_sample_split([shape], batch_kept_on_4d=network_batch is None) > 1
            return list(flattened_batch(shape)) if split else shape
        ins, outs = [unbatched(s) for s in ins], [unbatched(s) for s in outs]
        return ins, outs, None
    # The plugin splits a stage along the batch of its first input and of its outputs.
    first = [ins[0]] if ins and 0 not in absorbed else []
    for shape in first + outs:
        if per_sample_split([shape], batch_kept_on_4d=network_batch is None) > 1:
            return ins, outs, (f"a tensor of shape {shape}: the MYRIAD plugin runs a custom layer once per sample "
                               "of a batch it cannot take off the network, with the whole tensor's work sizes")
    if network_batch and spec.family == "axis_scan":
        axis = _scan_axis(model, layer, len(layer.inputs[0].dims))
        if axis == 0:
            return ins, outs, (f"the layer works along the batch axis, and the MYRIAD plugin runs this network (batch "
                               f"{network_batch}) one sample at a time")
    return ins, outs, None


def _scan_axis(model, layer, rank: int) -> int | None:
    import numpy as np

    from kernelkit.ir.graph import constant_input

    value = constant_input(model, layer, 1) if len(layer.inputs) > 1 else None
    if value is None:
        value = layer.attrs.get("axis")
    try:
        return int(np.asarray(value, dtype=np.int64).reshape(-1)[0]) % rank if rank else None
    except (TypeError, ValueError, IndexError):
        return None


def _reshaped(model, value: Out, dims: list[int], name: str) -> Out:
    """`value` with shape `dims`: a new Const for a constant, else a Reshape layer."""
    import numpy as np

    constant = const_value(model, value)
    if constant is not None:
        return add_const(model, np.asarray(constant).reshape(dims), f"{name}/as_{'x'.join(map(str, dims))}")
    shape = add_const(model, np.asarray(dims, dtype=np.int64), f"{name}/shape")
    return op(model, "Reshape", f"{name}/reshape", [value, shape], {"special_zero": "false"})


def _restored(model, value: Out, dims: list[int], name: str) -> Out:
    """A bound output back in its own shape: Squeeze for a rank-0/1 one (a Reshape to a scalar would need
    an empty shape constant), else Reshape."""
    import numpy as np

    if len(dims) < 2:
        axes = add_const(model, np.arange(len(value.dims) - len(dims), dtype=np.int64), f"{name}/axes")
        return op(model, "Squeeze", f"{name}/squeeze", [value, axes], outputs=[(value.precision, dims)])
    return _reshaped(model, value, dims, name)


def fit_tensors(ctx: PatchContext, layer, spec, binding) -> str | None:
    """Give the layer's tensors shapes the MYRIAD plugin binds (see _plan_shapes), or say why that cannot be
    done; the layer is left as it was when refused."""
    from kernelkit.kernel.bindings.myriad_select import plugin_layout_refusal
    from kernelkit.facts.knowledge import custom_layer_facts

    model = ctx.model
    ins, outs, why = _plan_shapes(model, layer, spec, becomes_extension_layer(layer, ctx.target))
    if why:
        return why
    absorbed = custom_layer_facts().absorbed(layer.type)
    refusal = plugin_layout_refusal(binding, [s for i, s in enumerate(ins) if i not in absorbed], outs)
    if refusal:
        return f"the MYRIAD plugin refuses this binding: {refusal[0]}"
    changed = []
    for index, (port, dims) in enumerate(zip(layer.inputs, ins)):
        if list(port.dims) == dims:
            continue
        value = input_of(model, layer, index)
        new = _reshaped(model, value, dims, f"{layer.name}/in{index}")
        model.disconnect(model.input_edge(layer, port.id))
        model.connect(new.layer, new.port.id, layer, port.id)
        port.dims = dims
        prune_dead(model, [value.layer])
        changed.append(f"input {index} as {dims}")
    for index, (port, dims) in enumerate(zip(layer.outputs, outs)):
        original = list(port.dims)
        if original == dims:
            continue
        port.dims = dims
        back = _restored(model, out(layer, index), original, f"{layer.name}/out{index}")
        move_consumers(model, out(layer, index), back, skip=[back.layer])
        changed.append(f"output {index} as {dims}")
    if changed:
        ctx.record(NAME, layer.name, describe(layer), "tensors the MYRIAD plugin binds: " + ", ".join(changed))
    return None


def describe_fix(binder_index: dict, layer) -> str | None:
    specs = binder_index.get(layer.type.lower())
    return f"bind kernel {specs[0].name} (kernels/{specs[0].dir.name})" if specs else None


def apply(ctx: PatchContext, binder: Binder, blocked: set[str] | None = None) -> None:
    """Bind a kernel to each blocked layer for which the library has one."""
    from kernelkit.facts.knowledge import EXTENSION_LAYER_VERSION

    for layer in list(ctx.model.topological_order()):
        if blocked is not None and layer.name not in blocked:
            continue
        if not binder.candidates(layer):
            continue
        before = describe(layer)
        why = binder.bind(layer)
        if why:
            ctx.refuse(NAME, layer, why)
            continue
        binding = binder.bindings[layer.type.lower()]
        as_extension = " as an extension layer" if layer.version == EXTENSION_LAYER_VERSION else ""
        ctx.record(NAME, layer.name, before,
                   f"custom kernel {binding.spec.name} (<CustomLayer name=\"{layer.type}\">){as_extension}")


def write_bindings(bindings: dict[str, Binding], folder: Path, file_name: str) -> Path | None:
    """Merge every binding into one binding file `file_name` in `folder`, with each kernel's .cl (and .bin)."""
    import shutil

    from kernelkit.kernel.bindings import myriad_write

    if not bindings:
        return None
    layers = []
    for binding in bindings.values():
        build = binding.build
        sources = {Path(p) for p in getattr(build, "files", ()) if Path(p).suffix in (".cl", ".bin")}
        sources |= {Path(p) for p in (build.cl_path, build.bin_path) if p is not None}
        for path in sorted(sources):
            if path.is_file():
                shutil.copyfile(path, folder / path.name)
        layers.extend(binding.layers)
    return myriad_write.save(layers, folder / file_name)
