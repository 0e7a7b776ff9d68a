"""The plugin's internal-graph dump beside every blob kernelkit compiles (kernelkit.myriad.graph_dump), and
refusals put on the compiled model's layer (kernelkit.myriad.refusal): all on the real 2021.4 plugin."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.facts.plugin_messages import NGRAPH_VALIDATION
from kernelkit.myriad import stages
from kernelkit.myriad.compile import CompileFailed, compile_model, parse_compile_error
from kernelkit.myriad.graph_dump import blob_stage_layers, dump_path, read_dump
from myriad_models import conv_relu, require_toolchain, save_ir


def _small_net(folder):
    """A 224x224 stem conv the plugin tiles (with an injected copy), three residual blocks, pooling, FC, SoftMax."""
    import openvino as ov
    from openvino import opset1

    rng = np.random.default_rng(0)

    def conv(x, cin, cout, k, s, name):
        w = opset1.constant((rng.standard_normal((cout, cin, k, k)) * 0.05).astype(np.float32))
        return opset1.convolution(x, w, [s, s], [k // 2, k // 2], [k // 2, k // 2], [1, 1], name=name)

    x = opset1.parameter([1, 3, 224, 224], np.float32, name="image")
    y = opset1.max_pool(opset1.relu(conv(x, 3, 64, 7, 2, "stem"), name="stem_relu"), [2, 2], [0, 0], [0, 0],
                        [2, 2], name="pool")
    for i in range(3):
        r = conv(opset1.relu(conv(y, 64, 64, 3, 1, f"b{i}_c1"), name=f"b{i}_r1"), 64, 64, 3, 1, f"b{i}_c2")
        y = opset1.relu(opset1.add(y, r, name=f"b{i}_add"), name=f"b{i}_out")
    y = opset1.reduce_mean(opset1.sigmoid(y, name="sig"), opset1.constant(np.array([2, 3], np.int64)), True,
                           name="gap")
    y = opset1.reshape(y, opset1.constant(np.array([1, 64], np.int64)), False, name="flat")
    y = opset1.matmul(y, opset1.constant(rng.standard_normal((64, 10)).astype(np.float32)), False, False, name="fc")
    return save_ir(ov.Model([opset1.softmax(y, 1, name="probs")], [x], "small_net"), folder / "small_net.xml")


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    require_toolchain()
    folder = tmp_path_factory.mktemp("small_net")
    xml = _small_net(folder)
    return xml, compile_model(xml, folder / "net.blob")


def test_the_blob_is_the_same_with_or_without_the_dump(tmp_path):
    require_toolchain()
    xml = conv_relu(tmp_path)
    with_dump = compile_model(xml, tmp_path / "a.blob")
    without = compile_model(xml, tmp_path / "b.blob", graph_dump=False)
    assert (tmp_path / "a.blob").read_bytes() == (tmp_path / "b.blob").read_bytes()
    assert with_dump.graph_dump == tmp_path / "a.graph.dot" == dump_path(tmp_path / "a.blob")
    assert with_dump.graph_dump.read_text().startswith("digraph")
    assert without.graph_dump is None and not (tmp_path / "b.graph.dot").exists()
    again = compile_model(xml, tmp_path / "c.blob")
    assert again.graph_dump.read_bytes() == with_dump.graph_dump.read_bytes(), "the kept dump is reproducible"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_every_blob_stage_names_its_layer_in_blob_order(small_net):
    xml, result = small_net
    blob = result.blob_path.read_bytes()
    in_blob = stages.read_stages(blob)
    dump = read_dump(result.graph_dump)
    ordered = dump.blob_stages()
    # blob order = the dump's exec order without the special stages (not serialized) and injected ones (nested)
    assert len(ordered) == len(in_blob) == result.header.stages
    assert [s.type_name for s in in_blob] == [s.type for s in ordered]
    assert any(s.exec_index < 0 for s in dump.stages), "the plugin's special stages (Expand...) are in the dump"
    injected = [s for s in dump.stages if s.injected]
    assert injected and all(s.host in {h.node for h in ordered} for s in injected)
    layers = blob_stage_layers(result.blob_path)
    assert len(layers) == len(in_blob)
    named = {layer.name for found in layers for layer in found}
    convs = {"stem"} | {f"b{i}_c{j}" for i in range(3) for j in (1, 2)}
    assert convs | {"pool", "sig", "fc", "probs"} <= named
    hw = [found for stage, found in zip(in_blob, layers) if stage.type_name == "MyriadXHwOp"]
    assert hw and all(found and found[0].type in ("Convolution", "Pooling", "FullyConnected") for found in hw)
    # the plugin's own stages (input/output Converts) come from no IR layer
    assert layers[0] == [] and in_blob[0].type_name == "Convert"
    stem = next(s for s in ordered if s.type == "MyriadXHwOp" and s.orig_layer.name == "stem")
    assert stem.tiling["mode"].startswith("MODE_") and int(stem.tiling["numDescr"]) >= 1
    assert stem.inputs and stem.outputs and stem.shaves == 0


def test_plugin_internal_names_map_back_to_layers(small_net):
    _, result = small_net
    dump = read_dump(result.graph_dump)
    internal = [s for s in dump.stages if s.orig_layer and s.name != s.orig_layer.name]
    assert internal, "the plugin names some stages of its own (conv@soh=..., fc@fc-to-conv...)"
    for stage in internal:
        assert dump.layer_of(stage.name) == stage.orig_layer


def test_a_dump_of_another_compile_is_refused(small_net, tmp_path):
    xml, result = small_net
    other = compile_model(conv_relu(tmp_path), tmp_path / "other.blob")
    shutil.copy(result.blob_path, tmp_path / "net.blob")
    shutil.copy(other.graph_dump, tmp_path / "net.graph.dot")
    with pytest.raises(KernelkitError, match="belongs to another compile"):
        blob_stage_layers(tmp_path / "net.blob")
    (tmp_path / "net.graph.dot").unlink()
    assert blob_stage_layers(tmp_path / "net.blob") is None
    (tmp_path / "net.graph.dot").write_text("not a graph")
    with pytest.raises(KernelkitError, match="internal-graph dump"):
        blob_stage_layers(tmp_path / "net.blob")


def _reduce_l1(folder):
    import openvino as ov
    from openvino import opset1, opset4

    x = opset1.parameter([1, 8, 16, 16], np.float32, name="x")
    act = opset1.relu(x, name="act")
    y = opset4.reduce_l1(act, opset1.constant(np.array([2, 3], np.int64)), True, name="energy")
    return save_ir(ov.Model([opset1.sigmoid(y, name="gate")], [x], "l1"), folder / "l1.xml")


def test_a_refusal_naming_a_node_of_the_plugin_names_the_model_layer(tmp_path):
    require_toolchain()
    xml = _reduce_l1(tmp_path)           # the plugin decomposes ReduceL1 and refuses its own Abs_NNN
    with pytest.raises(CompileFailed) as caught:
        compile_model(xml, tmp_path / "l1.blob")
    failure = caught.value
    assert failure.plugin_name.startswith("Abs_") and 'unsupported layer type "Abs"' in failure.plugin_text
    assert (failure.layer_name, failure.layer_type, failure.located_by) == ("energy", "ReduceL1", "bisection")
    assert 'layer "energy" (ReduceL1)' in str(failure)
    assert not (tmp_path / "l1.blob").exists() and not (tmp_path / "l1.graph.dot").exists()


def test_a_refusal_naming_the_layer_is_taken_as_named(tmp_path):
    require_toolchain()
    import openvino as ov
    from openvino import opset1, opset6

    x = opset1.parameter([1, 8, 4, 4], np.float32, name="x")
    y = opset6.mvn(x, opset1.constant(np.array([1], np.int64)), True, 1e-5, "outside_sqrt", name="channel_norm")
    xml = save_ir(ov.Model([y], [x], "mvn"), tmp_path / "mvn.xml")
    with pytest.raises(CompileFailed) as caught:
        compile_model(xml, tmp_path / "mvn.blob")
    assert (caught.value.layer_name, caught.value.layer_type, caught.value.located_by) == \
        ("channel_norm", "MVN", "named")


def test_an_ngraph_validation_error_names_its_node():
    assert parse_compile_error(NGRAPH_VALIDATION.printed) == ("b", "Reshape")


def test_the_per_pass_dumps_of_a_later_refusal_name_the_stage_s_layer(tmp_path):
    """The front end refuses before any dump exists (ReduceL1 above); a refusal in the later passes (a stage's
    type check) leaves one dump per pass up to it, whose stage names its origLayer."""
    from kernelkit.myriad import refusal
    from kernelkit.myriad.compile import make_config, run_shim
    from myriad_models import greater_i32

    tc = require_toolchain()
    xml = greater_i32(tmp_path)

    def attempt(model, extra, seconds):
        run = run_shim(model, tmp_path / "x.blob", make_config(extra=extra), timeout=seconds, toolchain=tc)
        assert "types check error" in run.message
        return None if run.ok else run.message

    found = refusal.layer_from_pass_dumps(xml, "is_bigger", attempt)
    assert (found.name, found.type) == ("is_bigger", "Eltwise")     # origLayer: the plugin's legacy layer type
    assert refusal.layer_from_pass_dumps(_reduce_l1(tmp_path), "Abs_1", lambda m, e, s: run_shim(
        m, tmp_path / "y.blob", make_config(extra=e), toolchain=tc).message) is None


def test_the_dump_places_each_ir_tensor_in_blob_memory_and_none_departs(small_net):
    """Every IR tensor the dump places (origData) is where the blob's own buffer descriptors say, whole after the
    stage the dump says (the tiled stem after its last tile's copy), and matches the IR on OpenVINO CPU within
    verify's blob tolerance: on a network that compiles right, the departure search blames nothing."""
    from kernelkit.doctor.departure import find_departure
    from kernelkit.ir.load import load_model
    from kernelkit.myriad.blob_reader import read_blob

    xml, result = small_net
    model = read_blob(result.blob_path)
    dump = read_dump(result.graph_dump)
    tensors = dump.ir_tensors()
    direct = [t for t in tensors if t.stages == (t.ready_after,)]
    assert direct
    for tensor in direct:
        buffer = tensor.buffer()
        outputs = [b for s in (model.stages[tensor.ready_after], model.stages[tensor.ready_after].injected)
                   if s is not None for b in s.buffers if b.direction == "output"]
        assert any((b.location, b.offset, b.dims_innermost, b.strides_innermost, b.data_type) ==
                   (buffer.location, buffer.offset, buffer.dims_innermost, buffer.strides_innermost,
                    buffer.data_type) for b in outputs), tensor.name
    layers = blob_stage_layers(result.blob_path)
    stem_stages = [i for i, found in enumerate(layers) if [f.name for f in found] == ["stem"]]
    (stem,) = [t for t in tensors if t.ir_name == "stem_relu"]
    assert set(stem.stages) == set(stem_stages) and stem.ready_after == max(stem_stages)
    assert model.stages[stem.computed_at].type_name == "MyriadXHwOp" and [l.name for l in stem.layers] == ["stem"]

    feed = [np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)]
    search = find_departure(result.blob_path, load_model(xml), feed, atol=1e-3, rtol=1e-2)
    assert search.departure is None and "no stage departs" in search.note
    names = {"stem_relu", "pool", "sig", "gap", "fc", "probs"} | {f"b{i}_{t}" for i in range(3)
                                                                   for t in ("r1", "c2", "out")}
    assert set(search.shares) == names and max(search.shares.values()) < 1e-2
