"""float64 reference: Einsum (OpenVINO opset7 / ONNX) for the equation in attribute `equation`."""

import numpy as np

from kernelkit.core.errors import KernelkitError


def reference(inputs: list[np.ndarray], attrs: dict) -> np.ndarray:
    equation = attrs.get("equation")
    if not isinstance(equation, str) or not equation.strip():
        raise KernelkitError("attribute equation is required", where="attrs.equation", hint='e.g. equation = "bij,bjk->bik"')
    equation = equation.replace(" ", "")
    operands = [np.asarray(x, dtype=np.float64) for x in inputs]
    return np.asarray(np.einsum(equation, *operands))
