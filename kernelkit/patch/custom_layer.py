"""Custom-layer patcher: bind a library kernel (kernels/<name>/) to a layer MYRIAD cannot compile.

A MYRIAD binding overrides a layer by its type (matched case-insensitively), restricted by `<Where>`
rules on the layer's attributes. So the layer keeps its IR type and version whenever the target's IR
reader knows it, and the kernel's `<CustomLayer name>` is set to that type in the merged
custom_layers.xml. A kernel matches a layer when its spec's `op`, or its `[reference] openvino.op`, is
the layer's type, it takes as many inputs as the layer has, and the plugin's selection (`<Where>`)
accepts the layer's attributes.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .base import PatchContext, describe
from .version import too_new

NAME = "custom_layer"


@dataclass
class Binding:
    """One kernel bound to one IR layer type, with its built files and its <CustomLayer> alternatives."""

    layer_type: str
    spec: object                     # kernelkit.spec.KernelSpec
    build: object                    # kernelkit.build.BuildResult
    layers: list = field(default_factory=list)       # CustomLayer, renamed to layer_type
    bound_layers: list[str] = field(default_factory=list)


def kernel_index(kernels_dir: Path) -> dict[str, list]:
    """Specs by the layer type (lower case) they can bind: their `op`, and their OpenVINO reference op."""
    from ..errors import KernelkitError
    from ..spec import load_spec

    index: dict[str, list] = {}
    if not kernels_dir.is_dir():
        return index
    for folder in sorted(kernels_dir.iterdir()):
        if not (folder / "kernel.toml").is_file():
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
        from ..paths import KERNELS_DIR

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
        from ..build import build_kernel

        if spec.name not in self._built:
            self._built[spec.name] = build_kernel(spec.dir, self.build_dir / spec.name)
        return self._built[spec.name]

    def _binding_for(self, spec, layer_type: str) -> Binding:
        from ..bindings import myriad

        result = self._build(spec)
        layers = [dataclasses.replace(l, name=layer_type) for l in myriad.load(result.xml_path)]
        return Binding(layer_type, spec, result, layers)

    def bind(self, layer) -> str | None:
        """Bind `layer`; returns None on success, else why no kernel fits."""
        from ..bindings import myriad
        from ..errors import KernelkitError

        attrs = dict(layer.attrs.items())
        existing = self.bindings.get(layer.type.lower())
        if existing is not None:
            chosen, reasons = myriad.select_with_reasons(existing.layers, layer.type, attrs)
            if chosen is None:
                return f"kernel {existing.spec.name} is already bound to {layer.type} and does not fit: {reasons[0]}"
            existing.bound_layers.append(layer.name)
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
            chosen, why = myriad.select_with_reasons(binding.layers, layer.type, attrs)
            if chosen is None:
                reasons.append(f"kernel {spec.name}: {why[0]}")
                continue
            binding.bound_layers.append(layer.name)
            self.bindings[layer.type.lower()] = binding
            return None
        return "; ".join(reasons) or f"no kernel in the library binds {layer.type}"

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _misfit(spec, model, layer) -> str | None:
    """Why the kernel cannot take this layer as it is (input count, element kinds, tested ranks), or None."""
    if len(spec.inputs) != len(layer.inputs):
        return f"takes {len(spec.inputs)} inputs, the layer has {len(layer.inputs)}"
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


def describe_fix(binder_index: dict, layer) -> str | None:
    specs = binder_index.get(layer.type.lower())
    return f"bind kernel {specs[0].name} (kernels/{specs[0].dir.name})" if specs else None


def apply(ctx: PatchContext, binder: Binder, blocked: set[str] | None = None) -> None:
    """Bind a kernel to each blocked layer for which the library has one."""
    for layer in list(ctx.model.topological_order()):
        if blocked is not None and layer.name not in blocked:
            continue
        if not binder.candidates(layer):
            continue
        if too_new(layer, ctx.target):
            ctx.refuse(NAME, layer, f"the {ctx.target} IR reader does not know {describe(layer)}, so the layer "
                                    "cannot keep its type for a binding")
            continue
        why = binder.bind(layer)
        if why:
            ctx.refuse(NAME, layer, why)
            continue
        binding = binder.bindings[layer.type.lower()]
        ctx.record(NAME, layer.name, describe(layer),
                   f"custom kernel {binding.spec.name} (<CustomLayer name=\"{layer.type}\">)")
    ctx.bound = binder.bindings


def write_bindings(bindings: dict[str, Binding], folder: Path, file_name: str = "custom_layers.xml") -> Path | None:
    """Merge every binding into one custom_layers.xml in `folder`, with each kernel's .cl (and .bin)."""
    import shutil

    from ..bindings import myriad

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
    return myriad.save(layers, folder / file_name)
