"""Custom-layer patcher: library kernels bound by type, keeping the IR op, restricted by <Where>."""

from __future__ import annotations

import shutil

import numpy as np
import openvino as ov
import openvino.opset9 as ops9
import openvino.opset13 as ops

from kernelkit.kernel.bindings import myriad_read
from kernelkit.ir.load import load_model
from kernelkit.model.passes import custom_layer
from kernelkit.model.patcher import patch_model
from kernelkit.model.passes.base import PatchContext
from kernelkit.facts.target import get_target
from kernelkit.core.paths import KERNELS_DIR
from kernelkit.doctor.verify import verify


def _save(tmp_path, outputs, params, name="m"):
    path = tmp_path / f"{name}.xml"
    ov.save_model(ov.Model(outputs, params, name), str(path), compress_to_fp16=False)
    return path


def test_sin_binds_keeps_its_type_and_verifies_against_numpy(tmp_path):
    x = ops.parameter([1, 2, 3, 8], np.float32, name="x")
    sin = ops.sin(x)
    sin.set_friendly_name("wave")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [sin], [x]), out, "2021.4", prefer="kernel")
    assert result.exit_code == 0
    layer = load_model(out / "model.xml").find("wave")
    assert (layer.type, layer.version) == ("Sin", "opset1")
    bindings = myriad_read.load(out / "custom_layers.xml")
    assert {b.name for b in bindings} == {"Sin"}
    source = bindings[0].kernels[0].sources[0]
    assert (out / source).with_suffix(".cl").is_file()
    data = np.linspace(-3, 3, 48, dtype=np.float32).reshape(1, 2, 3, 8)
    np.savez(tmp_path / "in.npz", in0=data)
    np.savez(tmp_path / "exp.npz", out0=np.sin(data.astype(np.float64)).astype(np.float32))
    checked = verify(out, inputs=tmp_path / "in.npz", expected=tmp_path / "exp.npz")
    assert checked.passed and checked.emulated[0].calls == 1


def _forward_only_cumsum_library(tmp_path):
    """A copy of the library's cumsum kernel that keeps only its exclusive=false, reverse=false alternative."""
    library = tmp_path / "kernels"
    shutil.copytree(KERNELS_DIR / "cumsum", library / "cumsum")
    spec = library / "cumsum" / "kernel.toml"
    head, *alternatives = spec.read_text().split("[[kernel.alternatives]]")
    last, tail = alternatives[-1].split("[reference]", 1)
    alternatives[-1] = last
    spec.write_text(head + "[[kernel.alternatives]]" + alternatives[0] + "[reference]" + tail)
    return library


def test_where_rules_decide_and_rewrite_takes_over(tmp_path):
    x = ops.parameter([1, 2, 3, 5], np.float32, name="x")
    forward = ops.cumsum(x, np.int64(3))
    forward.set_friendly_name("forward")
    backward = ops.cumsum(x, np.int64(3), exclusive=False, reverse=True)
    backward.set_friendly_name("backward")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [forward, backward], [x]), out, "2021.4", prefer="kernel",
                         kernels_dir=_forward_only_cumsum_library(tmp_path))
    assert result.exit_code == 0
    by_layer = {}
    for change in result.changes:
        by_layer.setdefault(change.layer, []).append(change.patcher)
    # (the backward one's formulation, a MatMul, then becomes a 1x1 Convolution: fc_as_conv)
    assert "custom_layer" in by_layer["forward"] and "rewrite" in by_layer["backward"], result.refusals
    assert "custom_layer" not in by_layer["backward"]
    refusal = next(r for r in result.refusals if r.layer == "backward")
    assert "reverse" in refusal.reason
    assert verify(out).passed


def test_op_too_new_for_the_reader_becomes_an_extension_layer_and_verifies(tmp_path):
    # GridSample-9: no opset of the 2021.4 reader has it, so the bound layer is written with version
    # "extension", which the toolchain's plugin creates as it stands and binds by type (test_plugin_check)
    data = ops.parameter([1, 2, 5, 6], np.float32, name="data")
    grid = ops.parameter([1, 3, 4, 2], np.float32, name="grid")
    node = ops9.grid_sample(data, grid, {"mode": "bilinear", "padding_mode": "zeros", "align_corners": False})
    node.set_friendly_name("warp")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [node], [data, grid]), out, "2021.4", prefer="kernel")
    assert result.exit_code == 0, [r.reason for r in result.refusals]
    layer = load_model(out / "model.xml").find("warp")
    assert (layer.type, layer.version) == ("GridSample", "extension")
    assert {b.name for b in myriad_read.load(out / "custom_layers.xml")} == {"GridSample"}
    assert any("as an extension layer" in c.after for c in result.changes if c.patcher == "custom_layer")
    # image values in [0, 1] and sample points inside it, as a warp has them
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "in.npz", in0=rng.uniform(0, 1, (1, 2, 5, 6)).astype(np.float32),
             in1=rng.uniform(-0.9, 0.9, (1, 3, 4, 2)).astype(np.float32))
    report = verify(out, inputs=tmp_path / "in.npz")
    assert report.passed and report.emulated[0].calls == 1


def test_a_type_the_plugin_decomposes_is_bound_as_an_extension_layer(tmp_path):
    # DepthToSpace-1 is in the reader's opsets, but the plugin turns it into Reshape + Permute before it
    # looks for a binding: bound, it must be an extension layer to keep the kernel
    x = ops.parameter([1, 12, 3, 5], np.float32, name="x")
    node = ops.depth_to_space(x, "blocks_first", 2)
    model = load_model(_save(tmp_path, [node], [x]))
    ctx = PatchContext(model, get_target("2021.4"))
    binder = custom_layer.Binder(ctx)
    try:
        layer = next(l for l in model.layers if l.type == "DepthToSpace")
        assert binder.bind(layer) is None
    finally:
        binder.close()
    assert layer.version == "extension"


def test_supported_layers_are_not_bound(tmp_path):
    # Mish has a library kernel but MYRIAD runs it natively: patch leaves it alone.
    x = ops.parameter([1, 4], np.float32, name="x")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [ops.mish(x)], [x]), out, "2021.4")
    assert result.exit_code == 0 and not (out / "custom_layers.xml").exists()
    assert not [c for c in result.changes if c.patcher == "custom_layer"]


def test_untested_rank_is_not_bound_and_rewrite_takes_over(tmp_path):
    # kernels/cumsum is proven on 4-D cases only; a 1-D CumSum goes to the MatMul rewrite instead.
    x = ops.parameter([7], np.float32, name="x")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [ops.cumsum(x, np.int64(0))], [x]), out, "2021.4", prefer="kernel")
    assert result.exit_code == 0
    assert [c.patcher for c in result.changes if c.patcher in ("custom_layer", "rewrite")] == ["rewrite"]
    assert "rank" in next(r.reason for r in result.refusals if r.patcher == "custom_layer")
    assert verify(out).passed


def test_elementwise_kernels_bind_at_any_rank(tmp_path):
    x = ops.parameter([5], np.float32, name="x")
    out = tmp_path / "out"
    result = patch_model(_save(tmp_path, [ops.sin(x)], [x]), out, "2021.4", prefer="kernel")
    assert [c.patcher for c in result.changes][0] == "custom_layer"
    assert verify(out).passed


def test_rank_the_family_cannot_compute_is_refused(tmp_path):
    # The element-wise family computes ranks 0-4 only (the plugin's B/F/Y/X view drops the fifth dimension):
    # the kernel is refused, and Sin's native formulation takes the layer instead.
    x = ops.parameter([1, 2, 3, 4, 5], np.float32, name="x")
    result = patch_model(_save(tmp_path, [ops.sin(x)], [x]), tmp_path / "out", "2021.4", prefer="kernel")
    assert result.exit_code == 0
    assert not [c for c in result.changes if c.patcher == "custom_layer"]
    reason = next(r.reason for r in result.refusals if r.patcher == "custom_layer")
    assert "computes rank 0/1/2/3/4 inputs only" in reason and "rank 5" in reason
