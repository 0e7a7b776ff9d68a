"""Execute an IR once on OpenVINO CPU in f32: the bare run the model flow folds constants with and the runners
wrap. It executes, nothing more (no comparison, no custom layers of its own: `extensions` are handed in)."""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError


def run_openvino(xml: bytes | str, weights: bytes, inputs: list[np.ndarray], *, extensions=(),
                 path=None) -> list[np.ndarray]:
    """Infer once on CPU with INFERENCE_PRECISION_HINT=f32; outputs in the model's Result order."""
    import openvino as ov

    core = ov.Core()
    for extension in extensions:
        core.add_extension(ov.OpExtension(extension))
    text = xml.decode("utf-8") if isinstance(xml, bytes) else xml
    try:
        model = core.read_model(model=text, weights=ov.Tensor(np.frombuffer(weights or b"\0", np.uint8).copy()))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO CPU cannot load the model: {first_line(exc)}", path=path) from None
    if len(inputs) != len(compiled.inputs):
        raise KernelkitError(f"the model has {len(compiled.inputs)} inputs but {len(inputs)} arrays were given",
                             path=path, hint="IN.npz must hold in0, in1, ... one per model input, in order")
    feed = {}
    for index, (port, array) in enumerate(zip(compiled.inputs, inputs)):
        expected = tuple(port.get_partial_shape().to_shape()) if port.get_partial_shape().is_static else None
        if expected is not None and tuple(np.shape(array)) != expected:
            raise KernelkitError(f"input in{index} has shape {list(np.shape(array))}, the model wants "
                                 f"{list(expected)}", path=path, where=f"in{index}")
        # np.array, not ascontiguousarray: that one turns a 0-d input into shape (1,).
        feed[index] = np.array(array, dtype=port.get_element_type().to_dtype(), order="C")
    try:
        result = compiled(feed)
    except RuntimeError as exc:
        raise KernelkitError(f"OpenVINO CPU inference failed: {first_line(exc)}", path=path) from None
    return [np.array(result[port]) for port in compiled.outputs]


def first_line(exc) -> str:
    """The informative line of an OpenVINO exception (the first one only names the C++ file)."""
    lines = [l.strip() for l in str(exc).strip().splitlines() if l.strip()]
    useful = [l for l in lines if not l.startswith("Exception from") and not l.startswith("Check '")]
    return (useful or lines or [type(exc).__name__])[0][:300]
