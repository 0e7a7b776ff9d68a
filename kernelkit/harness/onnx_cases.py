"""ONNX's single-node test cases (`onnx.backend.test.case.node`) as deployable models, the way the ONNX
acceptance run (tools/onnx_acceptance.py) and the native-formulation measurement (tools/measure_native.py)
both take them: small inputs after the node's first (axes, pads, k, scales: at most 8 values, rank <= 1)
become initializers, as they are in deployed models, because MYRIAD needs them constant; the first input is
the data and stays an input.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class PreparedCase:
    name: str
    op_type: str
    model_path: Path                     # the ONNX model with the small inputs folded
    input_names: list[str]
    inputs: list[np.ndarray]
    expected: list[np.ndarray]

    @property
    def shapes(self) -> dict[str, list[int]]:
        return {name: list(np.shape(a)) for name, a in zip(self.input_names, self.inputs)}


def node_cases(only: set[str] | None = None, *, expanded: bool = False):
    """(ONNX op type, case) for every single-node case with data, optionally of some op types only.
    expanded: instead the `*_expanded` cases, the same ops written out as graphs of primitive ops (op type
    "expanded")."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    for case in cases:
        nodes = case.model.graph.node
        if not case.data_sets or (len(nodes) != 1) != expanded:
            continue
        op_type = "expanded" if expanded else nodes[0].op_type
        if only and op_type not in only:
            continue
        yield op_type, case


def prepare(case, folder: Path) -> PreparedCase | str:
    """Write the case's model into `folder`; a string says why the case cannot be taken (sequences, bf16...)."""
    import onnx
    import onnx.numpy_helper

    inputs, expected = case.data_sets[0]
    model_proto = onnx.ModelProto()
    model_proto.CopyFrom(case.model)
    graph = model_proto.graph
    initializers = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    if len(names) != len(inputs) or any(isinstance(a, (list, dict)) or a is None
                                        for a in list(inputs) + list(expected)):
        return "inputs or outputs are not plain tensors (sequences, optionals)"
    inputs = [np.asarray(a) for a in inputs]
    expected = [np.asarray(a) for a in expected]
    if any(a.dtype.kind not in "biuf" for a in inputs + expected):
        return "test data numpy cannot hold natively (bf16, float8, strings)"
    # A graph of several nodes: its first input is the data; the small ones any node reads may be folded.
    node_inputs = (list(graph.node[0].input) if len(graph.node) == 1
                   else [names[0] if names else ""] + [i for n in graph.node for i in n.input])
    fed_names, fed, folded = [], [], set()
    for name, array in zip(names, inputs):
        if array.dtype.kind in "iuf" and array.ndim <= 1 and array.size <= 8 and name in node_inputs[1:] \
                and name != node_inputs[0]:
            graph.initializer.append(onnx.numpy_helper.from_array(array, name))
            folded.add(name)
        else:
            fed_names.append(name)
            fed.append(array)
    kept = [i for i in graph.input if i.name not in folded]
    del graph.input[:]
    graph.input.extend(kept)
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / "model.onnx"
    onnx.save(model_proto, model_path)
    op_type = graph.node[0].op_type if len(graph.node) == 1 else "expanded"
    return PreparedCase(case.name, op_type, model_path, fed_names, fed, expected)


def onnx_reference(case: PreparedCase, inputs: list[np.ndarray]) -> list[np.ndarray] | None:
    """The case's node run by ONNX's reference evaluator on other inputs (e.g. fp16-rounded ones), or None
    when the evaluator cannot run it."""
    from kernelkit.runners.base import RunnerSkipped
    from kernelkit.runners.onnx_reference import OnnxEvaluatorRunner

    try:
        return OnnxEvaluatorRunner(case.model_path, case.input_names).run(inputs).arrays
    except RunnerSkipped:  # the caller falls back on ONNX's data
        return None


def openvino_misses(case: PreparedCase) -> bool:
    """Whether the unpatched model, converted by the host OpenVINO and run on CPU f32, already misses ONNX's
    expected outputs (a frontend or CPU problem no patch can fix)."""
    from kernelkit.ir.load import load_model
    from kernelkit.runners.compare import compare_outputs
    from kernelkit.runners.openvino_cpu import OpenVINOCPURunner

    original = load_model(case.model_path, case.shapes)
    got = OpenVINOCPURunner.of_model(original).run(case.inputs).arrays
    return any(not c.passed for c in compare_outputs(got, case.expected))


def write_raw(case, folder: Path) -> Path | str:
    """Write the case as ONNX lays its test cases out: model.onnx unchanged (every input an input, the integer
    ones too) beside test_data_set_0/input_N.pb and output_N.pb. Returns the model's path, or why the case
    cannot be taken (a string)."""
    import onnx
    from onnx import numpy_helper

    inputs, expected = case.data_sets[0]
    graph = case.model.graph
    initializers = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    if len(names) != len(inputs) or any(isinstance(a, (list, dict)) or a is None
                                        for a in list(inputs) + list(expected)):
        return "inputs or outputs are not plain tensors (sequences, optionals)"
    if any(np.asarray(a).dtype.kind not in "biuf" for a in list(inputs) + list(expected)):
        return "test data numpy cannot hold natively (bf16, float8, strings)"
    data = folder / "test_data_set_0"
    data.mkdir(parents=True, exist_ok=True)
    for i, (name, array) in enumerate(zip(names, inputs)):
        (data / f"input_{i}.pb").write_bytes(numpy_helper.from_array(np.asarray(array), name).SerializeToString())
    for i, (out, array) in enumerate(zip(graph.output, expected)):
        (data / f"output_{i}.pb").write_bytes(
            numpy_helper.from_array(np.asarray(array), out.name).SerializeToString())
    onnx.save(case.model, folder / "model.onnx")
    return folder / "model.onnx"
