"""A patched model on OpenVINO CPU (f32) with its custom-bound layers executed by the SHAVE emulator.

The MYRIAD custom layers keep their op type in the IR (a binding overrides by type), so OpenVINO CPU would
run its own implementation of them. To run the kernel instead, an in-memory copy of the XML retypes each
bound layer to an extension type, and a Python `openvino.Op` of that type calls `emulate()` in `evaluate`
(reference notes §4: identity comes from an overridden `get_type_info`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import Runner, RunResult
from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

EXTENSION_VERSION = "kernelkit"
EXTENSION_PREFIX = "KernelkitEmulated_"


@dataclass
class EmulatedLayer:
    name: str
    type: str                      # the IR type the binding overrides
    ext_type: str                  # the extension type of the in-memory copy
    attrs: dict
    outputs: list                  # [(element type, dims)]
    calls: int = 0
    absorbed: dict = field(default_factory=dict)   # parameters the plugin makes of constant inputs


def element_dtype(element_type: str) -> np.dtype:
    """The numpy dtype of an IR element type (f32 for one numpy cannot hold)."""
    from kernelkit.ir import elements

    found = elements.lookup(element_type)
    return np.dtype(found.numpy) if found and found.numpy else np.dtype(np.float32)


def _make_op_class(layer: EmulatedLayer, bindings, failures: list):
    """A Python openvino.Op whose evaluate() runs the layer's MYRIAD binding on the SHAVE emulator."""
    import openvino as ov
    from openvino import DiscreteTypeInfo, Op

    from kernelkit.kernel.emulator.run import emulate

    class EmulatedOp(Op):
        def __init__(self, inputs=None, attrs=None):
            super().__init__(self)
            # String defaults make OpenVINO hand every <data> value over as text, as the plugin reads it.
            self._attrs = {k: "" for k in layer.attrs} if attrs is None else dict(attrs)
            if inputs is not None:
                self.set_arguments(inputs)
                self.constructor_validate_and_infer_types()

        @staticmethod
        def get_type_info():
            return DiscreteTypeInfo(layer.ext_type, EXTENSION_VERSION)

        def validate_and_infer_types(self):
            for index, (etype, dims) in enumerate(layer.outputs):
                self.set_output_type(index, ov.Type(element_dtype(etype)), ov.PartialShape(dims))

        def clone_with_new_inputs(self, new_inputs):
            return EmulatedOp(new_inputs, self._attrs)

        def visit_attributes(self, visitor):
            visitor.on_attributes(self._attrs)
            return True

        def has_evaluate(self):
            return True

        def evaluate(self, outputs, inputs):
            arrays = [np.array(t.data) for t in inputs]
            try:
                result = emulate(bindings, layer.type, arrays, {**self._attrs, **layer.absorbed},
                                 output_shapes=[tuple(d) for _, d in layer.outputs])
            except Exception as exc:       # reported after inference: OpenVINO would hide it
                failures.append((layer, exc))
                return False
            layer.calls += 1
            for index, array in enumerate(result.outputs):
                outputs[index].shape = list(array.shape)
                outputs[index].data[...] = np.asarray(array).astype(outputs[index].data.dtype)
            return True

    EmulatedOp.__name__ = layer.ext_type
    return EmulatedOp


def emulated_copy(model, bindings_path: Path):
    """An in-memory copy of `model` whose custom-bound layers are extension ops, and those layers."""
    from kernelkit.kernel.bindings import myriad_read, myriad_select
    from kernelkit.facts.knowledge import legacy_params

    bindings = myriad_read.load(bindings_path)
    copy = model.copy()
    emulated = []
    for layer in copy.layers:
        attrs = dict(layer.attrs.items())
        consts = {}
        for index, port in enumerate(layer.inputs):
            producer = copy.producer(layer, port.id)
            if producer is not None and producer[0].type.lower() == "const":
                consts[index] = copy.const_value(producer[0])
        params = legacy_params(layer.type, attrs, consts)
        if layer.type in ("Parameter", "Result", "Const") or myriad_select.select(bindings, layer.type, params) is None:
            continue
        ext_type = f"{EXTENSION_PREFIX}{len(emulated)}"
        emulated.append(EmulatedLayer(layer.name, layer.type, ext_type, attrs,
                                      [(p.element_type or "f32", p.dims) for p in layer.outputs],
                                      absorbed={k: v for k, v in params.items() if k not in attrs}))
        layer.type = ext_type
        layer.version = EXTENSION_VERSION
    return copy, emulated


class EmulatedModelRunner(Runner):
    """The IR at `model_xml` with the layers its MYRIAD binding file `bindings` (None: no custom layers) binds
    run on the SHAVE emulator. The result's `detail` lists the EmulatedLayer records (with their call counts);
    an emulated layer that failed is in `failures`, and then the outputs may be missing."""

    name = "emulated-model"

    def __init__(self, model_xml, bindings=None):
        self.model_xml = Path(model_xml)
        self.bindings = Path(bindings) if bindings is not None else None

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        from kernelkit.ir.load import load_model

        model = load_model(self.model_xml)
        extensions, emulated, failures = [], [], []
        run_model = model
        if self.bindings is not None and self.bindings.is_file():
            run_model, emulated = emulated_copy(model, self.bindings)
            extensions = [_make_op_class(layer, self.bindings, failures) for layer in emulated]
        try:
            outputs = OpenVINOCPURunner.of_model(run_model, extensions=extensions, path=self.model_xml).run(inputs)
        except KernelkitError:
            if failures:
                outputs = RunResult(self.name)
            else:
                raise
        problems = [f"emulated layer {layer.name!r} ({layer.type}) failed: {exc}" for layer, exc in failures]
        return RunResult(self.name, outputs.outputs, failures=problems, detail=emulated)
