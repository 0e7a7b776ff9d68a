"""A whole IR on OpenVINO CPU in f32 (INFERENCE_PRECISION_HINT=f32), behind the runner protocol."""

from __future__ import annotations

import numpy as np

from kernelkit.ir.openvino_run import run_openvino
from kernelkit.runners.base import Runner, RunResult, named_outputs


class OpenVINOCPURunner(Runner):
    """`extensions`: openvino.Op classes for layer types OpenVINO does not know (the emulated custom layers)."""

    name = "openvino-cpu-f32"

    def __init__(self, xml: bytes | str, weights: bytes, *, extensions=(), path=None):
        self.xml = xml
        self.weights = weights
        self.extensions = extensions
        self.path = path

    @classmethod
    def of_model(cls, model, *, extensions=(), path=None) -> OpenVINOCPURunner:
        """For an in-memory kernelkit.ir model."""
        return cls(model.to_xml_bytes(), model.bin_data, extensions=extensions, path=path)

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        outputs = run_openvino(self.xml, self.weights, inputs, extensions=self.extensions, path=self.path)
        return RunResult(self.name, named_outputs(outputs))
