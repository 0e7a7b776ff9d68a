"""One library kernel on the SHAVE emulator, bound as `kernelkit patch` binds it, behind the runner protocol."""

from __future__ import annotations

import numpy as np

from kernelkit.runners.base import Runner, RunResult, named_outputs


class EmulatedKernelRunner(Runner):
    """The kernel of `spec` built to the binding file `bindings_xml`, at one case's attributes and output shapes,
    on the emulator: rank-0/1 tensors as [1, N], an element-wise kernel's 2-D [N, C] tensors as [1, N*C].
    `precision`: the tensors' storage ("fp16" as on the device, "fp32" as a reference); `arithmetic`: how the
    kernel computes ("fp16": real half arithmetic, see emulate()). The result's `detail` is the emulator's own
    result (its findings). Device-check failures raise KernelkitError with `findings`."""

    def __init__(self, bindings_xml, spec, attrs: dict, output_shapes: list[tuple], *, precision: str = "fp16",
                 timeout: float = 60.0, arithmetic: str = "fp32"):
        self.bindings_xml = bindings_xml
        self.spec = spec
        self.attrs = attrs
        self.output_shapes = output_shapes
        self.precision = precision
        self.timeout = timeout
        self.arithmetic = arithmetic
        self.name = f"emulator-{precision}"

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        from kernelkit.kernel.emulator.run import emulate

        result = emulate(self.bindings_xml, self.spec.op, inputs, attrs=self.attrs, output_shapes=self.output_shapes,
                         precision=self.precision, arithmetic=self.arithmetic, timeout=self.timeout,
                         as_patched=True, fold_batch=self.spec.family == "elementwise")
        return RunResult(self.name, named_outputs(result.outputs), detail=result)
