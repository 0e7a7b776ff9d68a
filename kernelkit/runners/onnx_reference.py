"""ONNX models on onnx's reference evaluator (`onnx.reference`): originals OpenVINO cannot convert, and ONNX's
node test models on inputs of kernelkit's choosing."""

from __future__ import annotations

import warnings

import numpy as np

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import Runner, RunnerSkipped, RunResult, named_outputs


class OnnxReferenceRunner(Runner):
    """The ONNX model at `path` with `values` frozen and `shapes` set, ended at the tensors `cut` names
    (`--output`); inputs in model input order."""

    name = "onnx-reference"

    def __init__(self, path, shapes=None, values=None, cut=None):
        self.path = path
        self.shapes = shapes
        self.values = values
        self.cut = cut

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        from onnx.reference import ReferenceEvaluator

        from kernelkit.ir.cut import cut_onnx
        from kernelkit.ir.onnx_fold import freeze_onnx
        from kernelkit.ir.onnx_graph import explicit_loop_conditions, input_dtype, load_onnx, real_inputs

        path = self.path
        source = load_onnx(path)
        if self.cut:
            source = cut_onnx(source, self.cut, path=path)
        model, _ = freeze_onnx(source, input_shapes=self.shapes, input_values=self.values, fold=False, path=path)
        explicit_loop_conditions(model)
        names = real_inputs(model.graph)
        if len(names) != len(inputs):
            raise KernelkitError(f"the reference has {len(names)} inputs but {len(inputs)} arrays were given",
                                 path=path, hint="IN.npz must hold in0, in1, ... one per model input, in order")
        feeds = {info.name: np.asarray(array).astype(input_dtype(info), copy=False)
                 for info, array in zip(names, inputs)}
        try:
            with np.errstate(all="ignore"):            # its sigmoid overflows exp() on large inputs, harmlessly
                outputs = [np.asarray(r) for r in ReferenceEvaluator(model).run(None, feeds)]
        except Exception as exc:             # the evaluator's own errors are of many types
            raise KernelkitError(f"onnx's reference evaluator cannot run the reference either: {exc}", path=path,
                                 hint="pass --expected EXP.npz with outputs computed elsewhere") from None
        return RunResult(self.name, named_outputs(outputs))


class OnnxEvaluatorRunner(Runner):
    """The ONNX file at `path` as it is, its inputs fed by `input_names`; RunnerSkipped when the evaluator
    cannot run it (it lacks some ops and attributes)."""

    name = "onnx-evaluator"

    def __init__(self, path, input_names: list[str]):
        self.path = path
        self.input_names = input_names

    def run(self, inputs: list[np.ndarray]) -> RunResult:
        import onnx
        from onnx.reference import ReferenceEvaluator

        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                evaluator = ReferenceEvaluator(onnx.load(str(self.path)))
                outputs = [np.asarray(a) for a in evaluator.run(None, dict(zip(self.input_names, inputs)))]
        except Exception as exc:  # the evaluator's own errors are of many types
            raise RunnerSkipped(f"onnx's reference evaluator cannot run {self.path}: {exc}") from None
        return RunResult(self.name, named_outputs(outputs))
