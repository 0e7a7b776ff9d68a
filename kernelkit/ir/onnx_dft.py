"""ONNX DFT converted exactly: each DFT node is made again from its ONNX meaning after OpenVINO's conversion.

OpenVINO's ONNX frontend (2026.4, one translator for every opset) gets three forms wrong, each a wrong result
with no error: it reads opset 20's `axis` input never (the opset 17 attribute's default, 1, instead), it feeds
a real signal's [..., 1] to RDFT as a data axis (a one-sided output [..., K, ..., 1, 2]), and an inverse
one-sided transform of a complex spectrum loses ONNX's trailing 1 (a real signal is [..., N, 1] in ONNX). A
negative axis is also passed on as it is, where OpenVINO counts from the last signal axis, ONNX from the pair.

ONNX's meaning (onnx.reference's DFT_17/DFT_20): input [..., 1] real or [..., 2] complex; `axis` counts the
dims of that tensor; forward two-sided -> complex; forward one-sided -> bins 0..L/2 of the complex transform;
inverse two-sided -> complex / L; inverse one-sided -> the real signal [..., L, 1] of a one-sided spectrum.
"""

from __future__ import annotations

import numpy as np

from kernelkit.core.errors import KernelkitError

ONNX_DOMAINS = ("", "ai.onnx")


def _refuse(node, why: str, hint: str) -> KernelkitError:
    return KernelkitError(f"DFT node {node.name or node.output[0]!r}: {why}", where=f"node {node.output[0]!r}",
                            hint=hint)


def _int_attr(node, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _outputs_by_name(model) -> dict:
    """Tensor name -> the ov Output carrying it."""
    found = {}
    for op in model.get_ordered_ops():
        for out in op.outputs():
            for name in out.get_names():
                found.setdefault(name, out)
    return found


def _onnx_constants(graph) -> dict:
    """Tensor name -> value, for the graph's initializers and Constant nodes."""
    from onnx import numpy_helper

    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ONNX_DOMAINS:
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                found[node.output[0]] = numpy_helper.to_array(value)
    return found


def _constant(out):
    node = out.get_node()
    return node.get_data() if node.get_type_name() == "Constant" else None


def fix_dfts(onnx_model, ov_model) -> None:
    """Replace, in `ov_model` (OpenVINO's conversion of `onnx_model`), every DFT node's outputs by the exact
    transform. A DFT the kit cannot make exactly is a KernelkitError naming the node and what to do."""
    import openvino.opset1 as op1
    import openvino.opset3 as op3
    import openvino.opset7 as op7
    import openvino.opset8 as op8
    import openvino.opset9 as op9

    version = next((e.version for e in onnx_model.opset_import if e.domain in ONNX_DOMAINS), None)
    nodes = [n for n in onnx_model.graph.node if n.op_type == "DFT" and n.domain in ONNX_DOMAINS]
    if not nodes or version is None:
        return
    outputs = _outputs_by_name(ov_model)
    constants = _onnx_constants(onnx_model.graph)
    for node in nodes:
        x, y_old = outputs.get(node.input[0]), outputs.get(node.output[0])
        if x is None or y_old is None:
            raise _refuse(node, "OpenVINO's conversion does not keep its input or output tensor by name",
                          "report this model to kernelkit; until then replace the DFT in the source model")
        shape = x.get_partial_shape()
        if shape.rank.is_dynamic or shape[shape.rank.get_length() - 1].is_dynamic:
            raise _refuse(node, "its input has no static rank or last dimension (1 real, 2 complex)",
                          "pass --input-shape for the model's dynamic inputs")
        rank = shape.rank.get_length()
        pair = shape[rank - 1].get_length()
        if pair not in (1, 2):
            raise _refuse(node, f"its input's last dimension is {pair}; ONNX's DFT takes 1 (real) or 2 (complex)",
                          "the model is broken: check it with onnx.checker")
        inverse, onesided = bool(_int_attr(node, "inverse", 0)), bool(_int_attr(node, "onesided", 0))
        real = pair == 1

        # The axis: opset 20 takes it from input 2 (default -2), opset 17 from the attribute (default 1).
        if version >= 20:
            axis = -2
            if len(node.input) > 2 and node.input[2]:
                # OpenVINO never reads this input, so it may be missing from the conversion: ONNX has the value
                value = constants.get(node.input[2])
                if value is None:
                    raise _refuse(node, f"its axis comes from {node.input[2]!r}, which is not a constant",
                                  f"pass --input-value {node.input[2]}=AXIS (the axis your application feeds)")
                axis = int(np.ravel(value)[0])
        else:
            axis = _int_attr(node, "axis", 1)
        if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
            raise _refuse(node, f"axis {axis} is outside [-{rank}, -2] and [0, {rank - 2}] of its rank-{rank} input",
                          "the model is broken: check it with onnx.checker")
        axis %= rank                          # ONNX counts the pair dim; positive, both agree
        axes = op1.constant(np.array([axis], np.int64))

        length = None                         # an ov Output [1], or None (the axis's own size)
        length_value = None                   # its value when constant
        if len(node.input) > 1 and node.input[1]:
            if node.input[1] in constants:    # OpenVINO folds a constant one into the op: ONNX has it
                length_value = int(np.ravel(constants[node.input[1]])[0])
                length = op1.constant(np.array([length_value], np.int64)).output(0)
            else:
                given = outputs.get(node.input[1])
                if given is None:
                    raise _refuse(node, f"its dft_length {node.input[1]!r} is not in OpenVINO's conversion",
                                  "report this model to kernelkit")
                length = op1.reshape(given, op1.constant(np.array([1], np.int64)), False).output(0)

        def signal_args(data):
            return [data, axes] + ([length] if length is not None else [])

        name = y_old.get_node().get_friendly_name()
        transform = None                      # the transform, when an op follows it
        complex_x = x
        if real and not (onesided and not inverse):
            # zeros of x's shape (not x * 0: an inf in x would make a NaN)
            zeros = op3.broadcast(op1.constant(np.zeros((), x.get_element_type().to_dtype())), op3.shape_of(x),
                                  name=f"{name}/imaginary")
            complex_x = op1.concat([x, zeros], rank - 1, name=f"{name}/complex").output(0)
        if not inverse and onesided:
            if real:
                squeezed = op1.squeeze(x, op1.constant(np.array([rank - 1], np.int64)), name=f"{name}/real")
                y = op9.rdft(*signal_args(squeezed.output(0)))
            else:                              # onnx.reference slices the two-sided transform
                if length is not None and length_value is None:
                    raise _refuse(node, "a one-sided transform of a complex input with a dft_length that is not "
                                  "a constant", f"pass --input-value {node.input[1]}=LENGTH")
                size = length_value or (shape[axis].get_length() if shape[axis].is_static else None)
                if size is None:
                    raise _refuse(node, "a one-sided transform of a complex input along a dynamic axis",
                                  "pass --input-shape for the model's dynamic inputs")
                transform = full = op7.dft(*signal_args(complex_x))
                y = op8.slice(full, np.array([0], np.int64), np.array([size // 2 + 1], np.int64),
                              np.array([1], np.int64), np.array([axis], np.int64))
        elif not inverse:
            y = op7.dft(*signal_args(complex_x))
        elif onesided:
            transform = op9.irdft(*signal_args(complex_x))
            y = op1.unsqueeze(transform, op1.constant(np.array([rank - 1], np.int64)))
        else:
            y = op7.idft(*signal_args(complex_x))
        new = y.output(0)
        y_old.get_node().set_friendly_name(f"{name}/as_converted")
        # the transform keeps the user's layer name (what patch reports); what follows it is named after it
        if transform is not None:
            transform.set_friendly_name(name)
            new.get_node().set_friendly_name(f"{name}/shaped")
        else:
            new.get_node().set_friendly_name(name)
        names = set(y_old.get_names())
        for target in list(y_old.get_target_inputs()):
            target.replace_source_output(new)
        y_old.get_tensor().set_names(set())
        new.get_tensor().set_names(names)
    ov_model.validate_nodes_and_infer_types()

