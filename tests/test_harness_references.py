"""References: numpy float64 (expression and module), OpenVINO CPU f32, ONNX node test data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.runners.base import RunnerSkipped
from kernelkit.runners.numpy_ref import numpy_reference
from kernelkit.runners.onnx_node import _onnx_input, onnx_cases
from kernelkit.runners.openvino_op import OpenVINOOpRunner
from kernelkit.kernel.spec import load_spec

SPEC_HEAD = """
[kernel]
name = "{name}"
op = "Elu"
family = "elementwise"

[[kernel.inputs]]
name = "x"
{extra_inputs}
[kernel.output]
name = "y"

[[kernel.scalars]]
name = "alpha"
type = "float"
source = "alpha"

[kernel.params]
expr = "x > 0.0f ? x : alpha * (exp(x) - 1.0f)"

"""


def write_spec(tmp_path, reference: str, *, name="ref_elu_h", extra_inputs="", files=None):
    folder = tmp_path / name
    folder.mkdir()
    for file_name, text in (files or {}).items():
        (folder / file_name).write_text(text)
    (folder / "kernel.toml").write_text(SPEC_HEAD.format(name=name, extra_inputs=extra_inputs) + reference)
    return load_spec(folder)


X = np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 3.0]], dtype=np.float16)
# ELU with alpha = 0.5, by hand: 0.5 * (e^x - 1) below zero.
ELU_HALF = [0.5 * (math.exp(-2) - 1), 0.5 * (math.exp(-1) - 1), 0.5 * (math.exp(-0.5) - 1), 0.0, 0.5, 3.0]


def test_numpy_expression_sees_inputs_by_name_and_attributes(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nnumpy = "np.where(x > 0, x, alpha * np.expm1(x))"\n')
    (out,) = numpy_reference(spec, [X], {"alpha": "0.5"})   # IR-style string attribute
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[0], ELU_HALF, rtol=1e-12)


def test_numpy_module_reference(tmp_path):
    module = ("import numpy as np\n"
              "def reference(inputs, attrs):\n"
              "    x = inputs[0]\n"
              "    return np.where(x > 0, x, attrs['alpha'] * (np.exp(x) - 1))\n")
    spec = write_spec(tmp_path, '[reference]\nmodule = "ref.py"\n', files={"ref.py": module})
    (out,) = numpy_reference(spec, [X], {"alpha": 0.5})
    np.testing.assert_allclose(out[0], ELU_HALF, rtol=1e-12)


def test_numpy_expression_error_names_the_key(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nnumpy = "np.where(x > 0, x, beta * x)"\n')
    with pytest.raises(KernelkitError) as err:
        numpy_reference(spec, [X], {"alpha": 0.5})
    text = str(err.value)
    assert "[reference].numpy" in text and "beta" in text and "kernel.toml" in text


def test_module_reference_crash_names_the_module(tmp_path):
    module = "def reference(inputs, attrs):\n    return inputs[0] / attrs['missing']\n"
    spec = write_spec(tmp_path, '[reference]\nmodule = "ref.py"\n', files={"ref.py": module})
    with pytest.raises(KernelkitError) as err:
        numpy_reference(spec, [X], {})
    assert "ref.py" in str(err.value) and "KeyError" in str(err.value)


def test_no_numpy_reference_is_a_skip(tmp_path):
    spec = write_spec(tmp_path, "")
    with pytest.raises(RunnerSkipped, match="no \\[reference\\] numpy"):
        numpy_reference(spec, [X], {})


def test_openvino_runs_the_opset_op_with_case_attributes(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Elu", opset = "opset1" }\n')
    (out,) = OpenVINOOpRunner(spec, {"alpha": "0.5"}).run([X]).arrays
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out[0], ELU_HALF, rtol=1e-6, atol=1e-7)


def test_openvino_const_inputs_come_from_attributes(tmp_path):
    # opset4 Swish takes beta as a second input, not an attribute: y = x * sigmoid(beta * x).
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Swish", opset = "opset4", '
                                'const_inputs = ["beta"] }\n')
    (out,) = OpenVINOOpRunner(spec, {"beta": 2.0}).run([X]).arrays
    x = X.astype(np.float64)
    np.testing.assert_allclose(out, x / (1 + np.exp(-2.0 * x)), rtol=1e-6, atol=1e-7)


def test_openvino_attributes_pass_by_ir_name_even_when_the_op_has_no_defaults(tmp_path):
    # DepthToSpace cannot be created without a block size, so its attributes cannot be learnt from defaults.
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "DepthToSpace", opset = "opset1" }\n')
    x = np.arange(24, dtype=np.float16).reshape(1, 4, 2, 3)
    (out,) = OpenVINOOpRunner(spec, {"block_size": "2", "mode": "blocks_first"}).run([x]).arrays
    # blocks_first by hand: output[0, 0, 2h+i, 2w+j] = x[0, 2i+j, h, w]
    expected = np.zeros((1, 1, 4, 6))
    for i in range(2):
        for j in range(2):
            expected[0, 0, i::2, j::2] = x[0, 2 * i + j]
    np.testing.assert_array_equal(out, expected)


def test_openvino_integer_const_inputs(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Tile", opset = "opset1", '
                                'const_inputs = ["repeats"] }\n')
    x = np.array([[1.0, 2.0]], dtype=np.float16)
    (out,) = OpenVINOOpRunner(spec, {"repeats": "2,3"}).run([x]).arrays
    np.testing.assert_array_equal(out, [[1, 2, 1, 2, 1, 2]] * 2)


@pytest.mark.parametrize("conf,reason", [
    ('{ op = "NoSuchOp", opset = "opset1" }', "cannot create NoSuchOp"),
    ('{ op = "Elu", opset = "opset99" }', "has no opset 'opset99'"),
])
def test_openvino_that_cannot_run_is_a_skip_with_reason(tmp_path, conf, reason):
    spec = write_spec(tmp_path, f"[reference]\nopenvino = {conf}\n")
    with pytest.raises(RunnerSkipped, match=reason):
        OpenVINOOpRunner(spec, {"alpha": 0.5}).run([X]).arrays


def test_onnx_node_tests_become_cases_that_agree_with_numpy(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nnumpy = "np.where(x > 0, x, alpha * np.expm1(x))"\n'
                                'onnx = { op = "Elu", defaults = { alpha = 1.0 } }\n')
    cases, skipped = onnx_cases(spec)
    names = {c.name for c in cases}
    assert {"onnx_elu", "onnx_elu_example", "onnx_elu_default"} <= names and not skipped
    for case in cases:
        assert case.inputs[0].dtype == np.float16
        assert "alpha" in case.attrs
        (mine,) = numpy_reference(spec, case.inputs, case.attrs)
        # ONNX computed from float32 inputs; ours sees them rounded to fp16.
        np.testing.assert_allclose(mine, case.expected[0], rtol=2e-3, atol=1e-3)
    assert next(c for c in cases if c.name == "onnx_elu_default").attrs == {"alpha": 1.0}
    assert next(c for c in cases if c.name == "onnx_elu").attrs == {"alpha": 2.0}


def test_onnx_attribute_mapping_renames_or_skips(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "Elu", attrs = { alpha = "a" } }\n')
    cases, _ = onnx_cases(spec)
    assert next(c for c in cases if c.name == "onnx_elu").attrs == {"a": 2.0}

    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "LeakyRelu", attrs = {} }\n', name="leaky_h")
    cases, skipped = onnx_cases(spec)
    reasons = dict(skipped)
    assert "alpha" in reasons["onnx_leakyrelu"] and "no IR counterpart" in reasons["onnx_leakyrelu"]
    assert "onnx_leakyrelu_default" in {c.name for c in cases}   # no attribute, nothing to map


def test_onnx_attribute_values_are_respelled(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "Elu", defaults = { alpha = 1.0 }, '
                                'values = { alpha = { "2.0" = "two" } } }\n')
    cases, _ = onnx_cases(spec)
    attrs = {c.name: c.attrs for c in cases}
    assert attrs["onnx_elu"] == {"alpha": "two"} and attrs["onnx_elu_default"] == {"alpha": 1.0}


def test_onnx_tests_with_other_input_counts_or_unknown_ops_are_skipped(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "Add" }\n', name="add_h")
    cases, skipped = onnx_cases(spec)
    assert not cases and skipped
    assert all("2 inputs, the kernel takes 1" in reason for _, reason in skipped)

    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "NotAnOnnxOp" }\n', name="none_h")
    cases, skipped = onnx_cases(spec)
    assert cases == [] and "no node tests" in skipped[0][1]


def test_onnx_tests_with_graph_or_tensor_attributes_are_skipped(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "If" }\n', name="if_h")
    cases, skipped = onnx_cases(spec)
    assert not cases
    assert dict(skipped)["onnx_if"] == "not expressible as layer attributes or tensors: else_branch, then_branch"


def test_onnx_bfloat16_data_becomes_fp16_inputs():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    converted, why = _onnx_input(np.array([1.5, -2.0, 3.0e38], dtype=ml_dtypes.bfloat16))
    assert converted is None and "fp16 range" in why           # bfloat16 reaches far beyond fp16
    converted, why = _onnx_input(np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16))
    assert why is None and converted.dtype == np.float16 and converted.tolist() == [1.5, -2.0]


def test_onnx_adapter_must_be_importable(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "Elu", adapter = "no.such.module:fn" }\n')
    with pytest.raises(KernelkitError) as err:
        onnx_cases(spec)
    assert "reference.onnx.adapter" in str(err.value)


def test_onnx_adapter_supplies_layer_form_tests(tmp_path):
    adapter = "kernelkit.library.onnx_tests:layer_tests"
    pytest.importorskip("kernelkit.library.onnx_tests")
    spec = write_spec(tmp_path, f'[reference]\nonnx = {{ op = "Elu", adapter = "{adapter}" }}\n')
    cases, skipped = onnx_cases(spec)
    assert {"onnx_elu", "onnx_elu_default"} <= {c.name for c in cases}
    assert all(c.inputs[0].dtype == np.float16 for c in cases)


# ---------------------------------------------------------------- OpenVINO: feed, const inputs, bad tables

TWO_INPUTS = '\n[[kernel.inputs]]\nname = "z"\n'


@pytest.mark.parametrize("feed", ['[1]', '["z"]'])
def test_openvino_feed_picks_the_kernel_inputs_given_to_the_op(tmp_path, feed):
    spec = write_spec(tmp_path, f'[reference]\nopenvino = {{ op = "Negative", feed = {feed} }}\n',
                      extra_inputs=TWO_INPUTS)
    y = np.array([[1.5, -2.0, 0.0]], dtype=np.float16)
    (out,) = OpenVINOOpRunner(spec, {}).run([np.zeros((2, 2), np.float16), y]).arrays
    np.testing.assert_array_equal(out, [[-1.5, 2.0, 0.0]])


def test_openvino_const_inputs_fold_layer_attributes_back_into_inputs(tmp_path):
    # Col2Im-15 takes output_size and kernel_size as inputs; the layer carries them as attributes.
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Col2Im", opset = "opset15", '
                                'const_inputs = ["output_size", "kernel_size"] }\n')
    cols = np.array([[[1.0, 2.0], [10.0, 20.0]]], dtype=np.float16)   # (N, C*kh*kw, L): a 2x1 kernel, 2 blocks
    attrs = {"output_size": [3, 1], "kernel_size": "2,1", "strides": [1, 1], "dilations": [1, 1],
             "pads_begin": [0, 0], "pads_end": [0, 0]}
    (out,) = OpenVINOOpRunner(spec, attrs).run([cols]).arrays
    # block l covers rows l and l+1: row 0 = 1, row 1 = 10 + 2, row 2 = 20
    np.testing.assert_array_equal(out, np.array([1.0, 12.0, 20.0]).reshape(1, 1, 3, 1))


def test_openvino_const_input_tables_give_literals_defaults_and_dtypes(tmp_path):
    # HardSigmoid's alpha and beta must be f32 like the data: dtype overrides the integer guess.
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "HardSigmoid", const_inputs = ['
                                '{ attr = "alpha", dtype = "f32" }, { attr = "beta", default = 0.5 }] }\n')
    (out,) = OpenVINOOpRunner(spec, {"alpha": 1}).run([X]).arrays
    np.testing.assert_allclose(out, np.clip(X.astype(np.float64) + 0.5, 0, 1), rtol=1e-6)
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Tile", const_inputs = [{ value = [2, 3] }] }\n',
                      name="tile_h")
    (out,) = OpenVINOOpRunner(spec, {}).run([np.array([[1.0, 2.0]], np.float16)]).arrays
    np.testing.assert_array_equal(out, [[1, 2, 1, 2, 1, 2]] * 2)


def test_openvino_runner_compiles_once_and_runs_again(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Elu", opset = "opset1" }\n')
    run = OpenVINOOpRunner(spec, {"alpha": 0.5}, threads=1).compiled([X])
    first, again = run()[0], run()[0]
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first[0], ELU_HALF, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("conf,where", [
    ('{ op = "Negative", feed = ["nope"] }', "reference.openvino.feed"),
    ('{ op = "Negative", feed = [2] }', "reference.openvino.feed"),
    ('{ op = "Negative", feed = "x" }', "reference.openvino.feed"),
    ('{ op = "Tile", const_inputs = "repeats" }', "reference.openvino.const_inputs"),
    ('{ op = "Tile", const_inputs = [{ attr = "repeats", value = 2 }] }', "reference.openvino.const_inputs[0]"),
    ('{ op = "Tile", const_inputs = [{ value = 2, dtype = "f64" }] }', "reference.openvino.const_inputs[0]"),
    ('{ op = "Tile", const_inputs = ["repeats"] }', "reference.openvino.const_inputs[0]"),   # no such attribute
    ('{ op = "Tile", const_inputs = [{ value = "two" }] }', "reference.openvino.const_inputs[0]"),
    ('{ op = "Elu", attrs = { alpha = 1 } }', "reference.openvino.attrs"),
    ('{ op = "Trilu", frontend = "tflite" }', "reference.openvino.frontend"),
    ('{ op = "Trilu", frontend = "onnx" }', "reference.openvino.onnx_opset"),
])
def test_openvino_table_mistakes_name_the_key(tmp_path, conf, where):
    spec = write_spec(tmp_path, f"[reference]\nopenvino = {conf}\n", extra_inputs=TWO_INPUTS)
    with pytest.raises(KernelkitError) as err:
        OpenVINOOpRunner(spec, {"alpha": 0.5}).run([X, X]).arrays
    assert where in str(err.value) and "kernel.toml" in str(err.value)


def test_onnx_node_tests_of_ranks_the_family_does_not_compute_are_skipped(tmp_path):
    # A family built for one rank (axis_scan with rank = 4 takes ranks 3 and 4) declares it in spec.ranks.
    import dataclasses

    spec = write_spec(tmp_path, '[reference]\nonnx = { op = "Elu", defaults = { alpha = 1.0 } }\n')
    spec = dataclasses.replace(spec, ranks=[3, 4])
    cases, skipped = onnx_cases(spec)
    assert {"onnx_elu", "onnx_elu_default"} <= {c.name for c in cases}          # rank 3: kept
    assert all(c.inputs[0].ndim in (3, 4) for c in cases)
    reasons = dict(skipped)
    assert reasons["onnx_elu_example"] == "input 0 has rank 1; this kernel handles rank(s) 3, 4 (spec.ranks)"


def test_adapted_onnx_node_tests_are_rank_checked_too(tmp_path):
    import dataclasses

    adapter = "kernelkit.library.onnx_tests:layer_tests"
    spec = write_spec(tmp_path, f'[reference]\nonnx = {{ op = "Elu", adapter = "{adapter}" }}\n')
    cases, skipped = onnx_cases(dataclasses.replace(spec, ranks=[3]))   # the adapter gives rank 4
    assert not cases and skipped and all("has rank 4" in reason for _, reason in skipped)


def test_openvino_onnx_frontend_runs_ops_openvino_has_no_opset_op_for(tmp_path):
    # OpenVINO has no Trilu op; its ONNX frontend converts ONNX Trilu, with k as a constant input.
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Trilu", frontend = "onnx", onnx_opset = 14, '
                                'const_inputs = ["k"] }\n')
    x = np.arange(1, 13, dtype=np.float16).reshape(1, 1, 3, 4)
    (out,) = OpenVINOOpRunner(spec, {"upper": 0, "k": 1}).run([x]).arrays
    # lower triangle with one extra diagonal, by hand: keep x[i, j] where j <= i + 1
    expected = [[1, 2, 0, 0], [5, 6, 7, 0], [9, 10, 11, 12]]
    np.testing.assert_array_equal(out[0, 0], expected)


def test_openvino_onnx_frontend_that_cannot_convert_is_a_skip(tmp_path):
    spec = write_spec(tmp_path, '[reference]\nopenvino = { op = "Det", frontend = "onnx", onnx_opset = 11 }\n')
    with pytest.raises(RunnerSkipped, match="ONNX Det-11 through OpenVINO's ONNX frontend"):
        OpenVINOOpRunner(spec, {}).run([np.eye(3, dtype=np.float16)[None]]).arrays
