"""The ONNX node cases whose shape-setting input, frozen with the value inspect suggests, still leaves a shape
the 2021.4 reader cannot take (tools/shape_input_cases.py's exit-1 classes): patch exits 1 and says which
layer and what to do, not only that the IR stays v11."""

from __future__ import annotations

import pytest

from kernelkit.harness.onnx_cases import node_cases, write_raw
from kernelkit.model.patcher import patch_model


def _patch(tmp_path, name, values):
    case = next(case for _, case in node_cases() if case.name == name)
    return patch_model(write_raw(case, tmp_path), tmp_path / "out", "2021.4", input_values=values)


def _version_blocker(result):
    (blocker,) = [b for b in result.remaining if b.kind == "ir-version"]
    return blocker.reason


def test_an_empty_network_input_asks_for_a_shape_with_elements(tmp_path):
    result = _patch(tmp_path, "test_reduce_sum_empty_set", {"axes": [1]})
    assert result.exit_code == 1
    reason = _version_blocker(result)
    assert "layer 'data' (Parameter) keeps it at v11" in reason
    assert "input 'data' has shape [2, 0, 4], which holds no element" in reason and "--input-shape data=" in reason


def test_an_empty_tensor_the_frozen_values_make_says_so(tmp_path):
    result = _patch(tmp_path, "test_split_zero_size_splits_opset18", {"split": [0, 0, 0]})
    assert result.exit_code == 1
    reason = _version_blocker(result)
    assert "shape [0] holds no element" in reason and "other values may not" in reason
    assert "dynamic" not in reason


def test_onehot_with_a_run_time_depth_names_the_input_to_freeze(tmp_path):
    result = _patch(tmp_path, "test_onehot_without_axis", {"values": [2, 5]})
    assert result.exit_code == 1
    assert any(r.layer == "y" and "freeze it with --input-value depth=N" in r.reason for r in result.refusals)
    (blocker,) = [b for b in result.remaining if b.kind == "dynamic-shape"]
    assert "computed at run time from 'depth'" in blocker.reason and "--input-value" in blocker.reason
