"""The blob reader (kernelkit.myriad.blob_reader) and `kernelkit blob info`, on blobs the real 2021.4 plugin
compiled from small OpenVINO-built models, custom-layer check blobs and ONNX node cases.

Every stage of every blob must parse with no word left over (the reader refuses a leftover or a shortfall), so a
layout mistake fails here. Expected values come from the models (their shapes, attributes and names), not
from the reader.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from kernelkit.core.errors import KernelkitError
from myriad_models import reader_models, require_toolchain

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """name -> (IR .xml, blob) of every reader model, compiled once per session (about a second each)."""
    require_toolchain()
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("reader-blobs")
    out = {}
    for name, build in reader_models().items():
        xml = build(folder)
        out[name] = xml, compile_model(xml, folder / f"{name}.blob").blob_path
    return out


@pytest.fixture(scope="session")
def compiled(built) -> dict[str, Path]:
    return {name: blob for name, (_, blob) in built.items()}


SOFTWARE_ONLY = ("conv_relu", "conv_1x1_bias", "depthwise_conv", "maxpool", "fc", "deconv")


@pytest.fixture(scope="session")
def software(built, tmp_path_factory):
    """name -> BlobModel of some models compiled with the neural compute engine off: the SHAVE forms of conv,
    pooling, FC and deconvolution (GT/src/middleend/passes/sw_*_adaptation.cpp)."""
    from kernelkit.myriad.blob_reader import read_blob
    from kernelkit.myriad.compile import compile_model

    folder = tmp_path_factory.mktemp("software-blobs")
    return {name: read_blob(compile_model(built[name][0], folder / f"{name}.blob",
                                          config={"MYRIAD_ENABLE_HW_ACCELERATION": "NO"}).blob_path)
            for name in SOFTWARE_ONLY}


@pytest.fixture(scope="session")
def models(compiled):
    from kernelkit.myriad.blob_reader import read_blob

    return {name: read_blob(path) for name, path in compiled.items()}


def _ir_shapes(xml: Path):
    """({input name: shape}, {output name: shape}) of an IR, outputs named as the 2021.4 plugin names them: the
    producing layer, with ".port" when it has several outputs."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    ins = {p.get_any_name(): tuple(p.get_shape()) for p in model.inputs}
    outs = {}
    for result in model.outputs:
        source = result.get_node().input_value(0)
        producer = source.get_node()
        name = producer.get_friendly_name()
        if producer.get_output_size() > 1:
            name += f".{source.get_index()}"
        outs[name] = tuple(result.get_shape())
    return ins, outs


def _stages(model, name):
    return [s for s in model.all_stages() if s.type_name == name]


# ------------------------------------------------------------------------------------------------ the table

def test_the_stage_table_has_the_whole_2021_4_enum():
    from kernelkit.facts.myriad_stages import stage_types

    table = stage_types()
    assert len(table) == 112 and len({t.name for t in table.values()}) == 112
    assert (table[0].name, max(table), table[max(table)].name) == ("Conv", 141, "CTCGreedyDecoderSeqLen")
    # Codes the older partial table read from libmyriadPlugin.so's enum text: the full table agrees with all.
    older = {0: "Conv", 1: "MaxPool", 2: "AvgPool", 3: "SoftMax", 4: "FC", 5: "None", 6: "Relu", 8: "DepthConv",
             9: "Bias", 10: "PRelu", 12: "Sum", 13: "Prod", 14: "Max", 15: "Scale", 19: "Copy", 20: "Sigmoid",
             21: "Tanh", 22: "Deconvolution", 23: "Elu", 26: "Power", 28: "Tile", 34: "Permute", 38: "MyriadXHwOp",
             47: "ScaleShift", 57: "Clamp", 62: "MVN", 71: "Pad", 75: "Div", 76: "Min", 80: "Greater", 91: "GEMM",
             92: "Log", 100: "Gather", 101: "Exp", 102: "Floor", 104: "TopK", 111: "Convert", 112: "ReduceMax",
             113: "ReduceSum", 114: "ReduceMean", 115: "Custom", 128: "Concat", 129: "Broadcast",
             133: "StridedSlice"}
    assert {code: table[code].name for code in older} == older
    # every row has a layout: fields and roles, or a decoder in code; categories as StageNode::category()
    assert all(t.decoder or (t.params is not None and t.data is not None) for t in table.values())
    assert {t.name for t in table.values() if t.category != "SHAVE"} == {"MyriadXHwOp", "Copy", "LoopStart",
                                                                          "LoopEnd"}


# ------------------------------------------------------------------------------------------------ every blob

@pytest.mark.toolchain
def test_every_stage_of_every_blob_parses_with_known_names(models):
    from kernelkit.facts.myriad_stages import stage_types

    names = {t.name for t in stage_types().values()}
    seen = set()
    for name, model in models.items():
        assert len(model.stages) == model.header.stages, name
        for stage in model.all_stages():
            assert stage.type_name in names, (name, stage.index)
            assert stage.buffers, (name, stage.index, stage.type_name)
            known = stage.stage_type
            if known.params is not None:
                assert list(stage.params) == [f.name for f in known.params], (name, stage.type_name)
            seen.add(stage.type_name)
        assert model.counts()["stages"] == model.header.stages
    expected = {"Convert", "Copy", "MyriadXHwOp", "Conv", "AvgPool", "GEMM", "Sum", "Prod", "Max", "Power",
                "Greater", "Select", "SoftMax", "Permute", "Sigmoid", "Tanh", "Exp", "MVN", "Interp", "Resample",
                "Pad", "PRelu", "Swish", "HSwish", "Elu", "Clamp", "Floor", "Gather", "StridedSlice", "TopK",
                "Tile", "LRN", "Normalize", "Gelu", "Round", "ReduceMin", "ReduceAnd", "Min", "Squared_diff",
                "Floor_mod", "GatherND", "GatherElements", "ScatterUpdate", "ScatterElementsUpdate", "Upsampling",
                "OneHot", "RegionYolo", "ReorgYolo", "GRN", "LSTMCell", "CTCDecoder", "CTCGreedyDecoderSeqLen",
                "ROIPooling", "PSROIPooling", "ReverseSequence", "BiasRelu"}
    assert expected <= seen, expected - seen


@pytest.mark.toolchain
def test_io_names_and_dims_match_the_models(built, models):
    for name, model in models.items():
        ins, outs = _ir_shapes(built[name][0])
        batch = model.header.batch_size       # > 1: the plugin compiled one sample, the device runs it per sample
        if batch > 1:
            ins, outs = ({k: (v[0] // batch,) + v[1:] for k, v in d.items()} for d in (ins, outs))
        assert {b.name: b.logical_shape() for b in model.inputs} == ins, name
        assert {b.name: b.logical_shape() for b in model.outputs} == outs, name
        assert [b.io_index for b in model.inputs] == list(range(len(ins)))
        for b in model.inputs + model.outputs:        # dense tensors: strides from the dims alone
            assert b.data_type in ("FP32", "S32") and b.strides_innermost[0] == 4, name
            dense = 4
            for d, s in zip(b.dims_innermost, b.strides_innermost):
                assert s == dense
                dense *= d
        for entries, total in ((model.inputs, model.header.inputs_size), (model.outputs, model.header.outputs_size)):
            # side by side, each tensor's whole batch at a 64-aligned offset
            placed = sorted((b.offset, b.offset + b.span_bytes * batch) for b in entries)
            assert all(a[1] <= b[0] for a, b in zip(placed, placed[1:])) and all(o % 64 == 0 for o, _ in placed)
            assert placed[-1][1] <= total < placed[-1][1] + 64, name
    assert models["scatter"].header.batch_size == 2          # its input is 2x4x6x6


@pytest.mark.toolchain
def test_buffers_stay_inside_their_memories(models):
    for name, model in models.items():
        memory = model.memory()
        limits = {"BSS": memory["bss_bytes"], "CMX": memory["cmx_bytes"], "Blob": memory["const_bytes"]}
        sizes = {f"Input[{b.io_index}]": b.span_bytes for b in model.inputs}
        sizes |= {f"Output[{b.io_index}]": b.span_bytes for b in model.outputs}
        for where, reached in memory["extent"].items():
            assert reached <= limits.get(where, sizes.get(where, 0)), (name, where, reached)


# ------------------------------------------------------------------------------------------------ HW ops

@pytest.mark.toolchain
def test_hw_convolutions_carry_the_models_kernel_and_channels(models):
    for name, out_channels in (("conv_relu", 8), ("conv64", 64), ("conv_pool", 32)):
        ops = [op for s in _stages(models[name], "MyriadXHwOp") for op in s.hw_ops]
        assert ops, name
        assert {(op.kernel_width, op.kernel_height, op.kernel_stride) for op in ops} == {(3, 3, 1)}, name
        covered = sorted({(op.out_chan_offset, op.out_num_chans) for op in ops})
        assert sum(n for _, n in covered) == out_channels and covered[0][0] == 0, name
        assert all(op.with_relu and (op.a0, op.a1) == (0, 1) and op.with_pad for op in ops), name
    pool_op = _stages(models["conv_pool"], "MyriadXHwOp")[0].hw_ops[0]
    assert (pool_op.op_type, pool_op.pool_kernel_width, pool_op.pool_kernel_height) == ("CONV_POOL", 2, 2)
    maxpool = _stages(models["maxpool"], "MyriadXHwOp")[0].hw_ops[0]
    assert (maxpool.op_type, maxpool.pool_type, maxpool.kernel_width, maxpool.kernel_stride) == ("POOL", "MAX", 2, 2)
    one = _stages(models["conv_1x1_bias"], "MyriadXHwOp")[0]
    assert one.hw_ops[0].kernel_width == 1 and one.hw_ops[0].biases_index is not None
    assert one.buffers[one.hw_ops[0].biases_index].dims_innermost[0] >= 16    # the Add folded in as biases


@pytest.mark.toolchain
def test_hw_buffers_have_their_roles_and_the_weights_layout(models):
    stage = _stages(models["conv64"], "MyriadXHwOp")[0]
    op = stage.hw_ops[0]
    weights = stage.buffers[op.coeffs_index]
    assert (weights.role, weights.location, weights.data_type) == ("weights", "Blob", "FP16")
    # [OC/8][IC][kh*kw][8] fp16: 64 output channels of 32 inputs, 3x3
    assert weights.dims_innermost == (8, 9, 32, 8)
    assert stage.buffers[op.input_index].role == "input" and stage.buffers[op.output_index].role == "output"
    assert stage.buffers[op.input_index].dims["C"] == 32 and stage.buffers[op.output_index].dims["C"] == 64


@pytest.mark.toolchain
def test_a_matmul_with_constant_weights_runs_as_an_8x8_hw_conv(models):
    op = _stages(models["fc"], "MyriadXHwOp")[0].hw_ops[0]
    assert (op.kernel_width, op.kernel_height, op.kernel_stride) == (8, 8, 8)     # replaceFCbyConv: 64 = 8x8
    assert op.out_num_chans == 10


@pytest.mark.toolchain
def test_software_convolutions_pools_and_fc_without_the_engine(software):
    assert not any(s.hw_ops for m in software.values() for s in m.stages)
    conv = _stages(software["conv_relu"], "Conv")[0]
    assert [conv.params[k] for k in ("kernel_x", "kernel_y", "stride_x", "stride_y", "pad_left", "pad_top",
                                     "dilation_x", "dilation_y")] == [3, 3, 1, 1, 1, 1, 1, 1]
    assert [b.role for b in conv.buffers][:3] == ["input", "output", "weights"]
    assert conv.buffers[2].nbytes == 8 * 3 * 3 * 3 * 2                     # 8x3x3x3 fp16 weights
    assert _stages(software["conv_relu"], "Relu")[0].params["has_second_input"] == 0
    bias = _stages(software["conv_1x1_bias"], "Bias")[0]
    assert [b.role for b in bias.buffers] == ["input", "output", "extra"] and bias.buffers[2].dims_innermost == (16,)
    depth = _stages(software["depthwise_conv"], "DepthConv")[0]
    assert (depth.params["kernel_x"], depth.params["pad_left"]) == (3, 1) and depth.outputs[0].dims["C"] == 16
    pool = _stages(software["maxpool"], "MaxPool")[0].params
    assert (pool["kernel_x"], pool["kernel_y"], pool["stride_x"], pool["pad_left"]) == (2, 2, 2, 0)
    fc = _stages(software["fc"], "FC")[0]
    assert [b.role for b in fc.buffers] == ["input", "output", "weights"] and fc.buffers[2].nbytes == 64 * 10 * 2
    deconv = _stages(software["deconv"], "Deconvolution")[0].params
    assert (deconv["kernel_x"], deconv["stride_x"], deconv["pad_left"]) == (2, 2, 0)


@pytest.mark.toolchain
def test_hw_cost_features_follow_the_models_shapes(models):
    from kernelkit.myriad.blob_reader import hw_op_cost

    stage = _stages(models["conv64"], "MyriadXHwOp")[0]
    (op,) = stage.hw_ops
    icb = 2 ** op.op_mode                                      # input channels per lane block in this mode
    # 16x16 output, 32 input channels, 3x3 kernel (the model); tiler costs per mode from tiling.hpp
    assert hw_op_cost(stage, op) == {"lane_cycles": 16 * 16 * -(-32 // icb) * 9,
                                     "tiler_cost": -(-32 // icb) * 9 + (0, 5, 11, 19, 31)[op.op_mode]}
    pool = _stages(models["conv_pool"], "MyriadXHwOp")[0]
    # CONV_POOL: the convolution runs on the 16x16 input resolution, the 2x2 pool halves it afterwards
    assert hw_op_cost(pool, pool.hw_ops[0])["lane_cycles"] == 16 * 16 * -(-16 // 2 ** pool.hw_ops[0].op_mode) * 9
    cost = models["conv64"].cost()
    assert (cost["hw_descriptors"], cost["hw_stages"]) == (1, 1)
    assert cost["dma_bytes"] == 64 * 16 * 16 * 2                # the Copy of the fp16 output out of CMX


@pytest.mark.toolchain
def test_depthwise_conv_injects_a_stage(models):
    hw = _stages(models["depthwise_conv"], "MyriadXHwOp")
    assert sum(op.out_num_chans for s in hw for op in s.hw_ops) == 16
    injected = [s.injected for s in models["depthwise_conv"].stages if s.injected is not None]
    assert injected and injected[0].parent is not None and injected[0].type_name == "Copy"
    assert models["depthwise_conv"].counts()["injected"] == len(injected)


# ------------------------------------------------------------------------------------------------ SHAVE params

@pytest.mark.toolchain
def test_software_stage_params_hold_the_models_attributes(models):
    pad = _stages(models["pad"], "Pad")[0].params
    # pads_begin [0,0,1,2], pads_end [0,0,2,1] (N, C, H, W): innermost first W then H
    assert [pad[k] for k in ("pad_begin0", "pad_end0", "pad_begin1", "pad_end1")] == [2, 1, 1, 2]
    assert pad["pad_value"] == 0.5
    mvn = _stages(models["mvn"], "MVN")[0].params
    assert mvn["normalize"] == 1 and mvn["eps"] == pytest.approx(1e-5)
    power = _stages(models["power_floor"], "Power")[0].params
    assert (power["scale"], power["bias"], power["power"]) == (2.0, 0.5, 1.0)
    acts = models["activations"]
    assert _stages(acts, "Elu")[0].params == {"alpha": 0.5}
    assert _stages(acts, "Clamp")[0].params == {"min_value": -1.0, "max_value": 4.0}
    assert _stages(acts, "Swish")[0].params == {"beta": 1.0}
    prelu = _stages(acts, "PRelu")[0]
    assert [b.role for b in prelu.buffers] == ["input", "output", "extra"] and prelu.buffers[2].location == "Blob"
    # the slopes, read through the descriptor from the const section, are the model's (as fp16)
    slopes = (np.random.default_rng(2).standard_normal((3,)) * 0.1).astype(np.float16)    # myriad_models._const
    assert prelu.buffers[2].view(acts.constants).tolist() == slopes.tolist()
    assert _stages(models["gelu_round"], "Round")[0].params == {"mode": 0}                  # half_to_even
    topk = _stages(models["topk"], "TopK")[0]
    assert (topk.params["values_present"], topk.params["indices_present"]) == (1, 1)
    assert [b.role for b in topk.buffers] == ["input", "k", "output_values", "output_indices"]
    assert topk.buffers[3].data_type == "S32"
    softmax = _stages(models["softmax"], "SoftMax")[0]
    axis = softmax.params["axis"]                   # index innermost first: C of NCHW is 2
    assert softmax.buffers[0].order[::-1][axis] == "C"


@pytest.mark.toolchain
def test_buffer_views_write_where_the_next_stage_reads(models):
    """A stage's output view and the next stage's input view over one arena see the same elements."""
    model = models["power_floor"]
    power, floor = _stages(model, "Power")[0], _stages(model, "Floor")[0]
    arena = bytearray(model.header.bss_size)
    written = power.outputs[0].view(arena)
    written[...] = np.arange(written.size, dtype=np.float16).reshape(written.shape)
    assert floor.inputs[0].view(arena).tolist() == written.tolist()
    assert written.shape == (1, 3, 8, 8) and written.dtype == np.float16


@pytest.mark.toolchain
def test_an_in_place_concat_is_three_views_of_one_buffer(models):
    """concat([sigmoid(a), tanh(b), exp(a)], axis=1): no Concat stage; each producer writes its channel slice of
    the buffer the output Convert reads."""
    model = models["concat"]
    arena = bytearray(model.header.bss_size)
    for value, kind in enumerate(("Sigmoid", "Tanh", "Exp"), 1):
        _stages(model, kind)[0].outputs[0].view(arena)[...] = value
    final = [s for s in model.stages if s.type_name == "Convert" and s.outputs[0].location == "Output"][0]
    joined = final.inputs[0].view(arena)
    assert joined.shape == (1, 9, 8, 8)
    assert [set(joined[0, c].ravel().tolist()) for c in range(9)] == [{1.0}] * 3 + [{2.0}] * 3 + [{3.0}] * 3


@pytest.mark.toolchain
def test_stage_types_with_their_own_layouts(models):
    """Fields and roles of the less common stage types, against the attributes the models were built with."""
    one = lambda name, kind: _stages(models[name], kind)[0]  # noqa: E731
    assert one("one_hot", "OneHot").params | {"axis": None} == {"axis": None, "depth": 5, "on_value": 2.0,
                                                                "off_value": -1.0}
    region = one("region_reorg", "RegionYolo").params
    assert (region["classes"], region["coords"], region["num"], region["do_softmax"]) == (3, 4, 2, 1)
    assert one("region_reorg", "ReorgYolo").params == {"stride": 2}
    assert one("grn", "GRN").params["bias"] == pytest.approx(1e-3)
    lstm = one("lstm_cell", "LSTMCell")
    assert (lstm.params["n_cells"], lstm.params["n_batches"], lstm.params["num_outputs"]) == (1, 2, 2)
    assert [b.role for b in lstm.buffers] == ["input0", "input1", "input2", "input3", "input4", "output0", "output1"]
    assert lstm.buffers[3].dims_innermost == (64 * (10 + 16),)            # W and R packed, 4 gates x 16
    assert one("ctc_seq_len", "CTCGreedyDecoderSeqLen").params == {"merge_repeated": 1, "blank_index": 7}
    assert [b.role for b in one("ctc_decoder", "CTCDecoder").buffers] == ["input0", "input1", "output"]
    roi = one("roi_pooling", "ROIPooling")
    assert roi.params == {"pooled_w": 2, "pooled_h": 2, "spatial_scale": 1.0, "method": 0}      # max
    assert roi.buffers[2].dims_innermost == (5, 2) and roi.outputs[0].logical_shape() == (2, 4, 2, 2)
    ps = one("psroi_pooling", "PSROIPooling").params
    assert (ps["group_size"], ps["output_dim"], ps["spatial_scale"]) == (2, 2, 1.0)
    # batch_axis 0 and seq_axis 1 of a rank-3 CHW tensor, counted innermost first
    assert one("reverse_sequence", "ReverseSequence").params == {"seq_axis": 1, "batch_axis": 2}
    conv = one("dilated_bias_relu", "Conv").params
    assert (conv["dilation_x"], conv["dilation_y"], conv["pad_left"], conv["kernel_x"]) == (2, 2, 2, 3)
    bias_relu = one("dilated_bias_relu", "BiasRelu")
    assert bias_relu.params["has_second_input"] == 1 and bias_relu.buffers[2].dims_innermost == (8,)
    up = one("deconv", "Upsampling").params                                  # stride-2 deconv: zeros between
    assert (up["factor_x"], up["factor_y"]) == (2, 2)
    for kind in ("ScatterUpdate", "ScatterElementsUpdate"):
        assert [b.role for b in one("scatter", kind).buffers] == ["data", "output", "indices", "updates", "axis"]
    assert one("gather_nd_elements", "GatherElements").params["axis"] == 1
    assert one("reduce_ops", "ReduceMin").params == {"keep_dims": 1}
    select = one("reduce_and", "Select")           # an S32 condition: the eltwise coefficients are integers
    assert select.buffers[0].data_type == "S32" and select.params["coeff1"] == 1 and \
        isinstance(select.params["coeff1"], int)
    assert isinstance(one("min_squared_diff", "Min").params["coeff1"], float)


@pytest.mark.toolchain
def test_eltwise_buffers_come_in_the_plugins_order(models):
    for stage in _stages(models["eltwise"], "Sum") + _stages(models["eltwise"], "Prod"):
        assert [b.role for b in stage.buffers] == ["input0", "output", "input1", "input2"]
        assert stage.buffers[3].location == "None"         # the fake third input of a two-input op
        assert [b.role for b in stage.inputs] == ["input0", "input1", "input2"]
        assert stage.params["coeff1"] == 1.0 and stage.params["post_operation"] == -1
    select = _stages(models["compare_select"], "Select")[0]
    assert select.buffers[3].location != "None"         # three real inputs


@pytest.mark.toolchain
def test_rank6_permute_orders(models):
    stage = _stages(models["permute6"], "Permute")[0]
    assert stage.buffers[0].order_code == 0x654321 and stage.buffers[0].order == "6DNCHW"
    perm = [stage.params[f"perm{i}"] for i in range(8)]
    assert perm[6:] == [-1, -1] and sorted(perm[:6]) == list(range(6))
    assert stage.buffers[0].logical_shape() == (1, 2, 3, 4, 5, 6)


# ------------------------------------------------------------------------------------------------ Custom stages

@pytest.fixture(scope="session")
def check_blob(tmp_path_factory) -> Path:
    require_toolchain()
    sys.path.insert(0, str(REPO / "benchmarks"))
    import fuzz_inputs
    from kernelkit.doctor.plugin_check.binding_file import check
    from kernelkit.doctor.plugin_check.check_model import CheckCase, TensorSpec

    folder = tmp_path_factory.mktemp("rows")
    (folder / "scale_rows.cl").write_text(fuzz_inputs.ROWS_CL)
    (folder / "rows.xml").write_text(fuzz_inputs.ROWS_XML)
    case = CheckCase("Elu", [TensorSpec((1, 3, 5, 7))], [(1, 3, 5, 7)], {"alpha": "0.5"}, "opset1")
    check(folder / "rows.xml", [case], jobs=1, keep=folder / "kept")
    return next((folder / "kept").rglob("*.check.blob"))


@pytest.mark.toolchain
def test_a_custom_stage_is_read_whole(check_blob):
    from kernelkit.myriad import stages
    from kernelkit.myriad.blob_reader import read_blob

    model = read_blob(check_blob)
    custom = [s for s in model.stages if s.type_name == "Custom"]
    assert len(custom) == 1
    stage = custom[0]
    assert [b.role for b in stage.buffers] == ["input", "binary", "output", "temp"]
    assert stage.buffers[1].location == "Blob" and stage.buffers[0].logical_shape() == (1, 3, 5, 7)
    # the older flat reader, now on top of this one, sees the same kernel
    (old,) = stages.custom_stages(check_blob.read_bytes())
    assert old.entry == "scale_rows" and old.binary[:4] == b"\x7fELF"
    assert [a.kind for a in old.args] == ["buffer", "buffer", "int", "float"] and old.scalars()["alpha"] == 0.5


# ------------------------------------------------------------------------------------------------ ONNX node cases

ONNX_CASES = ("test_relu", "test_sigmoid", "test_softmax_axis_1", "test_basic_conv_with_padding",
              "test_maxpool_2d_default", "test_transpose_default", "test_concat_2d_axis_1", "test_gather_0",
              "test_add", "test_leakyrelu")


@pytest.fixture(scope="session")
def onnx_blobs(tmp_path_factory) -> dict[str, Path]:
    require_toolchain()
    from kernelkit.doctor.workflow import compile_folder
    from kernelkit.harness.onnx_cases import node_cases, prepare
    from kernelkit.model.patcher import patch_model

    folder = tmp_path_factory.mktemp("onnx-blobs")
    out = {}
    for _, case in node_cases():
        if case.name not in ONNX_CASES:
            continue
        prepared = prepare(case, folder / case.name)
        patch_model(prepared.model_path, folder / case.name / "patched", "2021.4",
                    input_shapes=prepared.shapes)
        out[case.name] = compile_folder(folder / case.name / "patched", folder / f"{case.name}.blob").blob_path
    return out


@pytest.mark.toolchain
@pytest.mark.slow
def test_onnx_node_case_blobs_parse(onnx_blobs):
    from kernelkit.myriad.blob_reader import read_blob

    assert set(onnx_blobs) == set(ONNX_CASES)
    kinds = set()
    for name, path in onnx_blobs.items():
        model = read_blob(path)
        assert all(not s.type_name.startswith("type ") for s in model.all_stages()), name
        kinds |= {s.type_name for s in model.all_stages()}
    assert {"Relu", "Sigmoid", "SoftMax", "Permute", "Gather", "Sum"} <= kinds or {"LeakyRelu"} <= kinds, kinds


# ------------------------------------------------------------------------------------------------ damaged blobs

@pytest.mark.toolchain
@pytest.mark.slow
def test_every_word_of_a_blob_damaged_is_read_or_refused_clearly(compiled):
    from kernelkit.myriad.blob_reader import read_blob

    data = compiled["conv_pool"].read_bytes()
    refused = read = 0
    for at in range(52, len(data) - len(data) % 4, 4):
        for value in (0, 1, 7, 0x100, 0x7FFFFFFF, 0xFFFFFFFF):
            edited = bytearray(data)
            struct.pack_into("<I", edited, at, value)
            try:
                read_blob(bytes(edited))
                read += 1
            except KernelkitError:
                refused += 1
    assert refused and read


@pytest.mark.toolchain
def test_hostile_blobs_are_clear_errors(compiled, tmp_path):
    from kernelkit.myriad.blob_reader import read_blob

    data = compiled["conv_relu"].read_bytes()
    header = struct.unpack_from("<20I", data, 52)
    stages_at = header[18]

    def refused(edit, match):
        edited = bytearray(data)
        edit(edited)
        with pytest.raises(KernelkitError, match=match):
            read_blob(bytes(edited))

    refused(lambda d: struct.pack_into("<I", d, 52, 1234), "magic")
    refused(lambda d: struct.pack_into("<I", d, 52 + 4 * 6, 10 ** 8), "declares 100000000 stages")
    refused(lambda d: struct.pack_into("<I", d, 52 + 4 * 18, len(data) + 64), "stage section")
    refused(lambda d: struct.pack_into("<I", d, stages_at, 0), "does not fit")
    refused(lambda d: struct.pack_into("<I", d, stages_at + 4, 77), "does not end with its type")
    # params one word longer, data one word shorter: the split moves, so a leftover or shortfall is found
    refused(lambda d: struct.pack_into("<I", d, stages_at + 12, struct.unpack_from("<I", d, stages_at + 12)[0] + 4),
            "left over|cut short|descriptor|unknown data type")
    # the Copy into CMX: its input descriptor's offset word (7 desc words + location after the 16-byte head)
    copy = next(s for s in read_blob(data).stages if s.type_name == "Copy")
    assert copy.buffers[0].location == "BSS"
    refused(lambda d: struct.pack_into("<I", d, copy.offset + 16 + 32, 1 << 28), "reaches byte .* of BSS")
    refused(lambda d: struct.pack_into("<I", d, copy.offset + 16 + 28, 9), "unknown memory location 9")
    cut = tmp_path / "cut.blob"
    cut.write_bytes(data[:-16])
    with pytest.raises(KernelkitError, match="truncated") as info:
        read_blob(cut)
    assert str(cut) in str(info.value)


@pytest.mark.toolchain
def test_a_shape_kept_in_an_output_is_read_as_dynamic(compiled):
    """No compiled test model has a dynamic shape, so one is made: the SoftMax output descriptor's dims moved
    to network output 0 (dims location Output + that output's index and size, DataNode::serializeBuffer), the
    stage record, the const section offset and the file size grown by those two words."""
    from kernelkit.myriad.blob_reader import read_blob

    data = compiled["softmax"].read_bytes()
    model = read_blob(data)
    stage = _stages(model, "SoftMax")[0]
    out = stage.buffers[1]
    assert (out.role, out.location) == ("output", "BSS")
    at = stage.offset + 12 + 4 * (len(stage.param_words) + 1) + 36      # the second descriptor
    desc = list(struct.unpack_from("<9I", data, at))
    desc[3], desc[4] = 2, 0                                               # dims location Output, offset 0
    io_size = model.outputs[0].span_bytes
    grown = bytearray(data[:at]) + struct.pack("<8I", *desc[:8]) + struct.pack("<2I", 0, io_size) + \
        struct.pack("<I", desc[8]) + data[at + 36:]
    struct.pack_into("<I", grown, stage.offset, stage.size + 8)
    header = list(struct.unpack_from("<20I", grown, 52))
    header[1], header[19] = header[1] + 8, header[19] + 8                 # file size, const section offset
    struct.pack_into("<20I", grown, 52, *header)
    dynamic = _stages(read_blob(bytes(grown)), "SoftMax")[0].buffers[1]
    assert dynamic.dims_dynamic and dynamic.dims == {} and dynamic.dims_location == "Output"
    assert dynamic.strides_innermost == out.strides_innermost and dynamic.offset == out.offset
    with pytest.raises(KernelkitError, match="dynamic shape"):
        dynamic.view(bytearray(model.header.bss_size))


# ------------------------------------------------------------------------------------------------ the CLI

def _cli(*argv):
    import contextlib
    import io

    from kernelkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.mark.toolchain
def test_blob_info_prints_the_stages_and_hw_ops(compiled):
    code, out, err = _cli("blob", "info", compiled["conv_pool"])
    assert code == 0 and not err
    assert "'x0' FP32 NCHW 1x16x16x16" in out
    assert "MyriadXHwOp" in out and "CONV_POOL" in out and "k3x3 s1" in out and "pool 2x2" in out
    assert "memory: BSS" in out and "stage counts:" in out and "HW 1" in out and "lane-cycles" in out


@pytest.mark.toolchain
def test_blob_info_json_is_the_whole_model(compiled, models):
    code, out, _ = _cli("blob", "info", "--json", compiled["eltwise"])
    assert code == 0
    doc = json.loads(out)
    assert [s["type"] for s in doc["stages"]] == [s.type_name for s in models["eltwise"].stages]
    assert doc["inputs"][1]["name"] == "x1" and doc["inputs"][1]["dims_innermost"] == [8, 8, 4, 1]
    assert doc["counts"]["by_type"]["Sum"] == 2 and doc["memory"]["bss_bytes"] == models["eltwise"].header.bss_size
    assert doc["graph_dump"] is None and doc["cost"]["hw_descriptors"] == 0


@pytest.mark.toolchain
def test_blob_info_notes_a_graph_dump_beside_the_blob(compiled, tmp_path):
    blob = tmp_path / "m.blob"
    blob.write_bytes(compiled["softmax"].read_bytes())
    (tmp_path / "m.graph.dot").write_text("digraph {}\n")
    code, out, _ = _cli("blob", "info", blob)
    assert code == 0 and "internal-graph dump: " in out and "m.graph.dot" in out


@pytest.mark.toolchain
def test_a_damaged_blob_exits_2_naming_the_file(compiled, tmp_path):
    data = bytearray(compiled["softmax"].read_bytes())
    stages_at = struct.unpack_from("<I", data, 52 + 4 * 18)[0]
    struct.pack_into("<I", data, stages_at + 12, 4000)        # the first stage's params run past its record
    bad = tmp_path / "bad.blob"
    bad.write_bytes(bytes(data))
    code, out, err = _cli("blob", "info", bad)
    assert code == 2 and not out and str(bad) in err and "stage 0" in err and "Traceback" not in err
    code, _, err = _cli("blob", "info", tmp_path / "missing.blob")
    assert code == 2 and "missing.blob" in err
    (tmp_path / "text.blob").write_text("hello")
    code, _, err = _cli("blob", "info", tmp_path / "text.blob")
    assert code == 2 and "not a MYRIAD blob" in err and "text.blob" in err
