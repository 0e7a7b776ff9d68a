"""kernelkit.ir: lossless read/write, graph API, .bin constants, bad-input errors, ONNX import, input shapes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.ir.load import load_model
from kernelkit.ir.reshape import parse_input_shape, parse_input_shapes

CONSTS = {
    "c_f16": (np.array([[0.5, -2.0, 65504.0]], dtype=np.float16), ov.Type.f16),
    "c_f32": (np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), ov.Type.f32),
    "c_i64": (np.array([-(2 ** 40), 7, 2 ** 62], dtype=np.int64), ov.Type.i64),
    "c_u8": (np.array([0, 200, 255], dtype=np.uint8), ov.Type.u8),
    "c_bool": (np.array([True, False, True, True]), ov.Type.boolean),
    "c_u1": (np.array([1, 0, 1, 1, 0, 0, 0, 1, 1, 1], dtype=np.uint8), ov.Type.u1),
    "c_i4": (np.array([1, -8, 7, -1, 5], dtype=np.int8), ov.Type.i4),
    "c_scalar": (np.array(3, dtype=np.int32), ov.Type.i32),
}


def _save(model, folder: Path, name: str = "m", **kwargs) -> Path:
    path = folder / f"{name}.xml"
    ov.save_model(model, str(path), compress_to_fp16=False, **kwargs)
    return path


@pytest.fixture(scope="module")
def consts_ir(tmp_path_factory) -> Path:
    """A v11 IR written by OpenVINO holding one Const of each element type, plus a small computation."""
    folder = tmp_path_factory.mktemp("consts")
    x = ops.parameter([1, 3], np.float32, name="x")
    relu = ops.relu(x)
    relu.set_friendly_name("relu0")
    add = ops.add(relu, ops.constant(np.array([[1.0, 2.0, 3.0]], dtype=np.float32)))
    add.set_friendly_name("add0")
    results = [ops.result(add)]
    for name, (value, etype) in CONSTS.items():
        const = ops.constant(value, dtype=etype)
        const.set_friendly_name(name)
        results.append(ops.result(const))
    return _save(ov.Model(results, [x], "consts"), folder)


@pytest.fixture(scope="module")
def compute_ir(tmp_path_factory) -> Path:
    """x -> Relu -> Add(bias) -> Result, small enough for the CPU plugin to run after edits."""
    folder = tmp_path_factory.mktemp("compute")
    x = ops.parameter([1, 3], np.float32, name="x")
    relu = ops.relu(x)
    relu.set_friendly_name("relu0")
    add = ops.add(relu, ops.constant(np.array([[1.0, 2.0, 3.0]], dtype=np.float32)))
    add.set_friendly_name("add0")
    return _save(ov.Model([ops.result(add)], [x], "compute"), folder)


def _run(xml: Path, *inputs):
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [np.asarray(v) for v in compiled(list(inputs)).values()]


# ---- faithful round trip ----------------------------------------------------------------------------

def test_load_save_without_edits_is_byte_identical(consts_ir, tmp_path):
    model = load_model(consts_ir)
    out, out_bin = model.save(tmp_path / "copy.xml")
    assert out.read_bytes() == consts_ir.read_bytes()
    assert out_bin.read_bytes() == consts_ir.with_suffix(".bin").read_bytes()


V10_HANDWRITTEN = b"""<?xml version="1.0" ?>
<!-- written by hand in the 2021.4 Model Optimizer style -->
<net name="tiny_v10" version="10">
  <layers>
    <layer id="0" name="data" type="Parameter" version="opset1">
      <data shape="1,2" element_type="f16"/>
      <output>
        <port id="0" precision="FP16" names="data"><dim>1</dim><dim>2</dim></port>
      </output>
    </layer>
    <layer id="1" name="w" type="Const" version="opset1">
      <data element_type="f16" shape="1, 2" offset="0" size="4"/>
      <output><port id="1" precision="FP16"><dim>1</dim><dim>2</dim></port></output>
    </layer>
    <layer id="2" name="mul" type="Multiply" version="opset1">
      <data auto_broadcast="numpy"/>
      <input><port id="0"><dim>1</dim><dim>2</dim></port><port id="1"><dim>1</dim><dim>2</dim></port></input>
      <output><port id="2" precision="FP16" names="mul"><dim>1</dim><dim>2</dim></port></output>
      <rt_info><attribute name="fused_names" version="0" value="mul"/></rt_info>
    </layer>
    <layer id="3" name="mul/sink_port_0" type="Result" version="opset1">
      <input><port id="0"><dim>1</dim><dim>2</dim></port></input>
    </layer>
  </layers>
  <edges>
    <edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>
    <edge from-layer="1" from-port="1" to-layer="2" to-port="1"/>
    <edge from-layer="2" from-port="2" to-layer="3" to-port="0"/>
  </edges>
  <meta_data>
    <MO_version value="2021.4.2-3976-0943ed67223-refs/pull/539/head"/>
    <cli_parameters><data_type value="FP16"/></cli_parameters>
  </meta_data>
</net>
"""


def _write_v10(folder: Path, xml: bytes = V10_HANDWRITTEN, weights: bytes | None = None) -> Path:
    path = folder / "v10.xml"
    path.write_bytes(xml)
    path.with_suffix(".bin").write_bytes(np.array([2.0, -3.0], np.float16).tobytes() if weights is None else weights)
    return path


def test_handwritten_v10_round_trip_keeps_comments_meta_data_and_style(tmp_path):
    src = _write_v10(tmp_path)
    model = load_model(src)
    assert model.version == 10 and model.name == "tiny_v10"
    out, _ = model.save(tmp_path / "out" / "model.xml")
    assert out.read_bytes() == V10_HANDWRITTEN
    assert _run(out, np.array([[1.0, 2.0]], np.float32))[0].tolist() == [[2.0, -6.0]]


def test_const_values_of_every_element_type(consts_ir):
    model = load_model(consts_ir)
    for name, (expected, _) in CONSTS.items():
        value = model.const_value(model.find(name))
        assert value.shape == expected.shape, name
        np.testing.assert_array_equal(value.astype(np.float64), expected.astype(np.float64), err_msg=name)


def test_ports_precision_dims_and_names(consts_ir):
    model = load_model(consts_ir)
    relu = model.find("relu0")
    assert relu.type == "ReLU" and relu.version == "opset1"
    assert [p.dims for p in relu.inputs] == [[1, 3]]
    assert relu.outputs[0].precision == "FP32" and relu.outputs[0].element_type == "f32"
    assert model.find("c_u1").outputs[0].precision == "BIN"
    assert model.find("c_scalar").outputs[0].dims == []
    assert "x" in model.find("x").outputs[0].names


# ---- graph API ---------------------------------------------------------------------------------------

def test_graph_queries(consts_ir):
    model = load_model(consts_ir)
    relu, add = model.find("relu0"), model.find("add0")
    producer, port = model.producer(relu, relu.inputs[0].id)
    assert producer.name == "x" and port.id == "0"
    assert [layer.name for layer, _ in model.consumers(relu, relu.outputs[0].id)] == ["add0"]
    order = [layer.name for layer in model.topological_order()]
    assert order.index("x") < order.index("relu0") < order.index("add0")
    assert len(order) == len(model.layers)
    assert [p.name for p in model.parameters()] == ["x"]
    assert len(model.results()) == 1 + len(CONSTS)
    assert model.producer(model.find("x"), "0") is None
    assert model.layer(add.id) is add or model.layer(add.id).element is add.element


def test_add_const_appends_and_keeps_offsets(compute_ir, tmp_path):
    model = load_model(compute_ir)
    original_bin = compute_ir.with_suffix(".bin").read_bytes()
    before = {l.name: dict(l.attrs) for l in model.layers if l.type == "Const"}
    add = model.find("add0")
    edge = model.input_edge(add, add.inputs[1].id)
    model.disconnect(edge)
    new = model.add_const(np.array([[10.0, 20.0, 30.0]], np.float32), "bias2")
    model.connect(new, new.outputs[0].id, add, add.inputs[1].id)
    assert int(new.attrs["offset"]) == len(original_bin)
    out, out_bin = model.save(tmp_path / "edited.xml")
    assert out_bin.read_bytes()[:len(original_bin)] == original_bin
    reloaded = load_model(out)
    assert {l.name: dict(l.attrs) for l in reloaded.layers if l.type == "Const" and l.name in before} == before
    np.testing.assert_array_equal(reloaded.const_value(reloaded.find("bias2")), [[10.0, 20.0, 30.0]])
    y = _run(out, np.array([[-1.0, 0.5, 2.0]], np.float32))[0]
    np.testing.assert_allclose(y, [[10.0, 20.5, 32.0]])


def test_insert_layer_between_producer_and_result_runs_in_openvino(compute_ir, tmp_path):
    model = load_model(compute_ir)
    add = model.find("add0")
    edge = model.output_edges(add, add.outputs[0].id)[0]
    result = model.layer(edge.to_layer)
    model.disconnect(edge)
    neg = model.add_layer("Negative", "opset1", "neg0", None, inputs=[("FP32", [1, 3])],
                          outputs=[("f32", [1, 3])], after=add)
    model.connect(add, add.outputs[0].id, neg, neg.inputs[0].id)
    model.connect(neg, neg.outputs[0].id, result, edge.to_port)
    assert [l.name for l in model.layers].index("neg0") == [l.name for l in model.layers].index("add0") + 1
    out, _ = model.save(tmp_path / "neg.xml")
    y = _run(out, np.array([[-1.0, 0.5, 2.0]], np.float32))[0]
    np.testing.assert_allclose(y, [[-1.0, -2.5, -5.0]])
    text = out.read_text()
    assert '\t\t<layer id="' in text and 'name="neg0"' in text     # indented like its siblings


def test_remove_layer_drops_its_edges_and_attrs_write_through(consts_ir, tmp_path):
    model = load_model(consts_ir)
    victim = model.find("c_i4")
    result = model.consumers(victim, victim.outputs[0].id)[0][0]
    model.remove_layer(result)
    model.remove_layer(victim)
    assert model.find("c_i4") is None
    assert all(victim.id not in (e.from_layer, e.to_layer) for e in model.edges)
    model.find("add0").attrs["auto_broadcast"] = "numpy"
    model.find("relu0").attrs["note"] = "kept"          # creates <data> as the first child
    model.find("relu0").attrs["axes"] = np.array([2, 3])
    model.find("relu0").attrs["flag"] = False
    out, _ = model.save(tmp_path / "r.xml")
    reloaded = load_model(out)
    assert dict(reloaded.find("relu0").attrs) == {"note": "kept", "axes": "2,3", "flag": "false"}
    assert reloaded.find("relu0").element[0].tag == "data"
    assert len(reloaded.layers) == len(load_model(consts_ir).layers) - 2


def test_port_dims_and_precision_setters(consts_ir, tmp_path):
    model = load_model(consts_ir)
    port = model.find("x").outputs[0]
    port.dims = [2, 3]
    port.precision = "f16"
    assert port.dims == [2, 3] and port.precision == "FP16"
    port.names = ["a,b", "c"]
    assert port.names == ["a,b", "c"]


def test_connect_refuses_a_second_edge_into_an_input(consts_ir):
    model = load_model(consts_ir)
    add = model.find("add0")
    with pytest.raises(KernelkitError, match="two incoming edges"):
        model.connect(model.find("x"), "0", add, add.inputs[0].id)
    assert len(model.edges) == len(load_model(consts_ir).edges)


# ---- bad input ---------------------------------------------------------------------------------------

def _bad(tmp_path, xml: bytes, weights: bytes | None = None, name="bad.xml"):
    path = tmp_path / name
    path.write_bytes(xml)
    if weights is not None:
        path.with_suffix(".bin").write_bytes(weights)
    with pytest.raises(KernelkitError) as info:
        load_model(path)
    assert str(path) in str(info.value)
    return info.value


def test_malformed_xml(tmp_path):
    err = _bad(tmp_path, V10_HANDWRITTEN.replace(b"</layers>", b"</layer>"), b"\0" * 4)
    assert "malformed XML" in err.message and err.line


def test_billion_laughs_is_refused(tmp_path):
    evil = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
            b'<net name="&lol2;" version="11"><layers/><edges/></net>')
    assert "DTD" in _bad(tmp_path, evil).message


def test_missing_and_short_bin(tmp_path):
    assert "weights file is missing" in _bad(tmp_path, V10_HANDWRITTEN).message
    err = _bad(tmp_path, V10_HANDWRITTEN, b"\0\0", name="short.xml")
    assert "ends at byte 4" in err.message and "'w'" in err.where


def test_const_size_smaller_than_shape(tmp_path):
    xml = V10_HANDWRITTEN.replace(b'offset="0" size="4"', b'offset="0" size="2"')
    assert "needs 4" in _bad(tmp_path, xml, b"\0" * 4).message


@pytest.mark.parametrize("edit, expected", [
    ((b'to-layer="2" to-port="1"', b'to-layer="9" to-port="1"'), "dangling edge: layer 9"),
    ((b'from-port="1" to-layer="2"', b'from-port="5" to-layer="2"'), "output port 5"),
    ((b'<layer id="3" name="mul/sink', b'<layer id="2" name="mul/sink'), "duplicate layer id 2"),
    ((b'<port id="1" precision="FP16"><dim>', b'<port id="0" precision="FP16"><dim>'), None),
    ((b'<port id="1"><dim>1</dim><dim>2</dim></port></input>', b'<port id="0"><dim>1</dim><dim>2</dim></port></input>'),
     "duplicate port id 0"),
    ((b'<data element_type="f16" shape="1, 2"', b'<data element_type="q7" shape="1, 2"'), "unknown element type 'q7'"),
    ((b'precision="FP16" names="mul"', b'precision="FP17" names="mul"'), "unknown element type 'FP17'"),
    ((b'version="10"', b'version="7"'), "IR version '7' is not supported"),
    ((b"<dim>1</dim><dim>2</dim></port></input>\n    </layer>", b"<dim>x</dim><dim>2</dim></port></input>\n    </layer>"),
     "dimension 'x' is not an integer"),
])
def test_structural_errors(tmp_path, edit, expected):
    old, new = edit
    assert old in V10_HANDWRITTEN
    xml = V10_HANDWRITTEN.replace(old, new, 1)
    if expected is None:      # changing the Const's own port id is legal as long as the edge follows
        xml = xml.replace(b'from-layer="1" from-port="1"', b'from-layer="1" from-port="0"')
        assert load_model(_write_v10(tmp_path, xml)).find("w").outputs[0].id == "0"
        return
    assert expected in _bad(tmp_path, xml, np.zeros(2, np.float16).tobytes()).message


def test_cycle_is_refused(tmp_path):
    xml = V10_HANDWRITTEN.replace(b'<edge from-layer="0" from-port="0" to-layer="2" to-port="0"/>',
                                  b'<edge from-layer="2" from-port="2" to-layer="2" to-port="0"/>')
    err = _bad(tmp_path, xml, b"\0" * 4)
    assert "cycle" in err.message and "'mul'" in err.message


def test_two_edges_into_one_port(tmp_path):
    xml = V10_HANDWRITTEN.replace(b'<edge from-layer="1" from-port="1" to-layer="2" to-port="1"/>',
                                  b'<edge from-layer="1" from-port="1" to-layer="2" to-port="1"/>'
                                  b'<edge from-layer="0" from-port="0" to-layer="2" to-port="1"/>')
    assert "two incoming edges" in _bad(tmp_path, xml, b"\0" * 4).message


def test_not_an_ir_and_wrong_suffix(tmp_path):
    assert "not <net>" in _bad(tmp_path, b"<CustomLayer name='x'/>").message
    other = tmp_path / "model.caffemodel"
    other.write_bytes(b"\0")
    with pytest.raises(KernelkitError, match="unknown model format"):
        load_model(other)


def test_cli_inspect_bad_input_exits_2(tmp_path, capsys):
    from kernelkit.cli import main

    path = tmp_path / "broken.xml"
    path.write_bytes(b"<net version='11'><layers>")
    assert main(["inspect", str(path)]) == 2
    assert "broken.xml" in capsys.readouterr().err


# ---- ONNX and input shapes -----------------------------------------------------------------------------

def _dynamic_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2], strides=[2, 2])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 13)])
    path = folder / "dyn.onnx"
    onnx.save(model, str(path))
    return path


def test_onnx_with_input_shapes_is_static_and_leaves_no_files(tmp_path):
    path = _dynamic_onnx(tmp_path)
    model = load_model(path)
    assert model.find("x").outputs[0].dims == [-1, 3, -1, -1]
    fixed = load_model(path, {"x": [1, 3, 8, 6]})
    assert fixed.find("x").outputs[0].dims == [1, 3, 8, 6]
    pool = next(l for l in fixed.layers if l.type == "MaxPool")
    assert pool.outputs[0].dims == [1, 3, 4, 3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dyn.onnx"]
    out, _ = fixed.save(tmp_path / "out" / "model.xml")
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 6)).astype(np.float32)
    expected = np.maximum(x, 0).reshape(1, 3, 4, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_allclose(_run(out, x)[0], expected)


def test_onnx_unknown_input_name_and_garbage(tmp_path):
    path = _dynamic_onnx(tmp_path)
    with pytest.raises(KernelkitError, match="'images'.*not an input"):
        load_model(path, {"images": [1, 3, 8, 8]})
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    with pytest.raises(KernelkitError, match="not a readable ONNX model"):
        load_model(junk)


def test_non_onnx_file_gets_one_clean_error_from_the_cli(tmp_path):
    # OpenVINO would try its other frontends on it and print their parse errors; kernelkit reads it as ONNX first.
    import subprocess
    import sys

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"garbage\n")
    result = subprocess.run([sys.executable, "-m", "kernelkit", "inspect", str(junk)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0] == f"kernelkit: error: {junk}: not a readable ONNX model (protobuf parsing failed)"
    assert "tensorflow" not in result.stderr.lower()


def test_ir_input_shapes_reinfer_downstream_dims(tmp_path):
    x = ops.parameter([-1, 3, -1, -1], np.float32, name="img")
    pool = ops.max_pool(ops.relu(x), strides=[2, 2], dilations=[1, 1], pads_begin=[0, 0], pads_end=[0, 0],
                        kernel_shape=[2, 2])
    pool.set_friendly_name("pool")
    reduce = ops.reduce_mean(pool.output(0), ops.constant(np.array([2, 3], np.int64)), keep_dims=False)
    reduce.set_friendly_name("mean")
    src = _save(ov.Model([ops.result(reduce)], [x], "dyn"), tmp_path)
    model = load_model(src, {"img": [2, 3, 10, 4]})
    assert model.find("img").attrs["shape"] == "2,3,10,4"
    assert model.find("pool").outputs[0].dims == [2, 3, 5, 2]
    assert model.find("mean").outputs[0].dims == [2, 3]
    assert model.find("mean").inputs[0].dims == [2, 3, 5, 2]
    out, _ = model.save(tmp_path / "fixed.xml")
    assert list(ov.Core().read_model(str(out)).outputs[0].get_shape()) == [2, 3]
    with pytest.raises(KernelkitError, match="inputs are: img"):
        load_model(src, {"image": [1, 3, 4, 4]})


def test_parse_input_shape_forms():
    assert parse_input_shape("images=1,3,224,224") == ("images", [1, 3, 224, 224])
    assert parse_input_shape("n:0=scalar") == ("n:0", [])
    assert parse_input_shapes(["a=1", "b=2,2"]) == {"a": [1], "b": [2, 2]}
    for bad in ("images", "=1,2", "x=1,?,3", "x=0,3", "x=-1"):
        with pytest.raises(KernelkitError, match="--input-shape"):
            parse_input_shape(bad)


def test_input_files_are_never_modified(consts_ir, tmp_path):
    copy = tmp_path / "c.xml"
    shutil.copy(consts_ir, copy)
    shutil.copy(consts_ir.with_suffix(".bin"), copy.with_suffix(".bin"))
    before = (copy.read_bytes(), copy.with_suffix(".bin").read_bytes())
    model = load_model(copy)
    model.add_const(np.ones(4, np.float32), "extra")
    model.save(tmp_path / "elsewhere.xml")
    assert (copy.read_bytes(), copy.with_suffix(".bin").read_bytes()) == before


def test_v10_input_shape_and_a_shape_the_model_rejects(tmp_path):
    model = load_model(_write_v10(tmp_path), {"data": [3, 2]})
    mul = model.find("mul")
    assert mul.inputs[0].dims == [3, 2] and mul.outputs[0].dims == [3, 2]
    assert model.find("mul/sink_port_0").inputs[0].dims == [3, 2]
    assert model.version == 10
    with pytest.raises(KernelkitError, match="cannot apply the input shapes"):
        load_model(_write_v10(tmp_path), {"data": [1, 5]})     # [1,5] * [1,2] does not broadcast


def test_round_trip_of_escaped_names_and_rt_info(tmp_path):
    x = ops.parameter([1, 3], np.float32, name="in,put")
    relu = ops.relu(x)
    relu.set_friendly_name("a&b<c>\"d'e é\tx")
    relu.output(0).get_tensor().set_names({"t,1", "t2"})
    model = ov.Model([ops.result(relu)], [x], "weird")
    model.set_rt_info("val<&>", ["custom", "key"])
    src = _save(model, tmp_path)
    loaded = load_model(src)
    layer = loaded.find("a&b<c>\"d'e é\tx")
    assert sorted(layer.outputs[0].names) == ["t,1", "t2"]
    out, _ = loaded.save(tmp_path / "copy.xml")
    assert out.read_bytes() == src.read_bytes()


def test_round_trip_of_a_loop_keeps_its_body(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    vi = helper.make_tensor_value_info
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []), vi("v_in", TensorProto.FLOAT, [2])],
        [vi("c_out", TensorProto.BOOL, []), vi("v_out", TensorProto.FLOAT, [2])],
        [helper.make_tensor("one", TensorProto.FLOAT, [2], [1.0, 2.0])])
    graph = helper.make_graph([helper.make_node("Loop", ["M", "C", "x"], ["y"], body=body)], "g",
                              [vi("x", TensorProto.FLOAT, [2])], [vi("y", TensorProto.FLOAT, [2])],
                              [helper.make_tensor("M", TensorProto.INT64, [], [3]),
                               helper.make_tensor("C", TensorProto.BOOL, [], [True])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "loop.onnx"))
    src = _save(ov.convert_model(str(tmp_path / "loop.onnx")), tmp_path, "loop")
    model = load_model(src)
    assert [l.type for l in model.layers].count("Loop") == 1
    assert len(model.layers) < src.read_text().count("<layer ")        # body layers are not top-level
    out, _ = model.save(tmp_path / "copy.xml")
    assert out.read_bytes() == src.read_bytes()
    np.testing.assert_allclose(_run(out, np.array([0.5, 0.5], np.float32))[0], [3.5, 6.5])


def test_ir_without_edges_and_a_trailing_comment(tmp_path):
    from kernelkit.ir.model import IRModel

    xml = (b'<?xml version="1.0"?>\n<net name="n" version="11">\n\t<layers>\n'
           b'\t\t<layer id="0" name="x" type="Parameter" version="opset1">\n'
           b'\t\t\t<data shape="2" element_type="f32" />\n\t\t\t<output>\n'
           b'\t\t\t\t<port id="0" precision="FP32">\n\t\t\t\t\t<dim>2</dim>\n\t\t\t\t</port>\n'
           b'\t\t\t</output>\n\t\t</layer>\n\t</layers>\n</net>\n<!-- trailing -->\n')
    model = IRModel.from_bytes(xml, None)
    assert model.to_xml_bytes() == xml and model.edges == []
    result = model.add_layer("Result", "opset1", "out", None, inputs=[("FP32", [2])])
    model.connect(model.find("x"), 0, result, 0)
    text = model.to_xml_bytes().decode()
    assert "\t</layers>\n\t<edges>\n\t\t<edge " in text and text.endswith("</net>\n<!-- trailing -->\n")
    out, _ = model.save(tmp_path / "m.xml")
    np.testing.assert_array_equal(_run(out, np.array([1.5, -2.0], np.float32))[0], [1.5, -2.0])


def test_const_value_of_an_undecodable_type_is_a_clear_error(tmp_path):
    xml = V10_HANDWRITTEN.replace(b'<data element_type="f16" shape="1, 2" offset="0" size="4"/>',
                                  b'<data element_type="nf4" shape="1, 2" offset="0" size="4"/>')
    model = load_model(_write_v10(tmp_path, xml))
    with pytest.raises(KernelkitError, match="reading nf4 constants is not supported") as info:
        model.const_value(model.find("w"))
    assert "'w'" in info.value.where


def test_input_shape_by_tensor_name_when_it_differs_from_the_layer_name(tmp_path):
    x = ops.parameter([-1, 4], np.float32, name="p0")
    x.output(0).get_tensor().set_names({"images"})
    relu = ops.relu(x)
    relu.set_friendly_name("r")
    src = _save(ov.Model([ops.result(relu)], [x], "named"), tmp_path)
    model = load_model(src, {"images": [3, 4]})
    assert model.find("p0").outputs[0].dims == [3, 4] and model.find("r").outputs[0].dims == [3, 4]


def test_onnx_op_openvino_cannot_convert_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="example.nowhere")], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("example.nowhere", 1)])
    path = tmp_path / "unknown.onnx"
    onnx.save(model, str(path))
    with pytest.raises(KernelkitError) as info:
        load_model(path)
    assert "NoSuchOp" in info.value.message and "failed at" not in info.value.message


def test_consts_may_share_an_offset(tmp_path):
    twin = (b'    <layer id="4" name="w2" type="Const" version="opset1">\n'
            b'      <data element_type="f16" shape="2" offset="0" size="4"/>\n'
            b'      <output><port id="0" precision="FP16"><dim>2</dim></port></output>\n'
            b'    </layer>\n  </layers>')
    xml = V10_HANDWRITTEN.replace(b"  </layers>", twin)
    model = load_model(_write_v10(tmp_path, xml))
    np.testing.assert_array_equal(model.const_value(model.find("w2")), [2.0, -3.0])
    np.testing.assert_array_equal(model.const_value(model.find("w")), [[2.0, -3.0]])


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                   "uint8", "uint16", "uint32", "uint64", "bool"])
def test_add_const_round_trips_every_numpy_dtype_through_openvino(tmp_path, dtype):
    """Our encoding, read back by OpenVINO itself (an independent reader), gives the same array."""
    rng = np.random.default_rng(len(dtype))
    if dtype == "bool":
        array = rng.integers(0, 2, (2, 3)).astype(bool)
    elif dtype.startswith("float"):
        array = rng.standard_normal((2, 3)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, (2, 3), dtype=dtype, endpoint=True)
    model = load_model(_write_v10(tmp_path))
    const = model.add_const(array, "c")
    result = model.add_layer("Result", "opset1", "c/sink_port_0", None, inputs=[(const.outputs[0].precision, [2, 3])])
    model.connect(const, "0", result, "0")
    model.version = 11                      # v11: OpenVINO keeps the element type of the output
    out, _ = model.save(tmp_path / "m.xml")
    np.testing.assert_array_equal(load_model(out).const_value(load_model(out).find("c")), array)
    ov_model = ov.Core().read_model(str(out))
    const_node = next(op for op in ov_model.get_ordered_ops() if op.get_friendly_name() == "c")
    np.testing.assert_array_equal(const_node.get_data(), array)
