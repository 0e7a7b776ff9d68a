"""Device checks and bad input: each finding names the binding, stage and argument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernelkit.kernel.emulator.plan import plan_launch
from kernelkit.kernel.emulator.run import DeviceCheckFailed, emulate
from kernelkit.kernel.emulator import cache, worker
from kernelkit.core.errors import KernelkitError
from shave_bindings import one_in_one_out

DATA = Path(__file__).parent / "data" / "shave"
BAD = DATA / "bad.xml"


def ones(*shape):
    return np.ones(shape, np.float32)


def errors_of(exc_info):
    return [f for f in exc_info.value.findings if f.severity == "error"]


def test_out_of_bounds_write_is_caught_by_the_guard_zone():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "WritePastEnd", [ones(1, 2, 3, 8)])
    messages = [f.message for f in errors_of(info)]
    assert any("out-of-bounds write" in m and "up to element 50" in m for m in messages)
    oob = next(f for f in errors_of(info) if "out-of-bounds" in f.message)
    assert "WritePastEnd binding #0" in oob.where and "stage 0 'write_past_end'" in oob.where
    assert "argument 'dst'" in oob.where and oob.path == str(BAD)


def test_elements_never_written_are_found_by_the_poison():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "SkipOdd", [ones(1, 2, 3, 8)])
    (finding,) = errors_of(info)
    assert "24 of 48 output elements were never written" in finding.message
    assert "(0, 0, 0, 1)" in finding.message and "argument 'dst'" in finding.where


def test_checks_off_returns_the_findings_and_the_poisoned_output():
    result = emulate(BAD, "SkipOdd", [ones(1, 1, 1, 8)], checks=False)
    out = result.outputs[0].reshape(-1)
    assert np.all(out[0::2] == 1) and np.all(np.isnan(out[1::2]))
    assert [f.severity for f in result.findings] == ["error"]


def test_an_endless_kernel_is_stopped_and_the_caller_survives():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "NeverEnds", [ones(1, 1, 1, 4)], timeout=2)
    assert "did not finish within 2 s" in errors_of(info)[0].message
    assert worker.client().pid is None                      # the stuck worker was killed
    x = np.arange(8, dtype=np.int32).reshape(1, 1, 2, 4)
    again = emulate(DATA / "formats.xml", "IntOffset", [x], {"offset": 1})    # a fresh worker takes over
    np.testing.assert_array_equal(again.outputs[0], x + 1)


def test_local_arrays_over_the_cmx_budget():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "CmxHog", [ones(1, 1, 1, 8)])
    (finding,) = errors_of(info)
    assert "114688 bytes of on-chip memory" in finding.message and "__local big[]" in finding.message


def test_local_data_over_the_cmx_budget():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "LocalHog", [ones(1, 1, 1, 8)])
    assert "local_data 'scratch' 122880 B" in errors_of(info)[0].message


def test_global_not_a_multiple_of_local():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "RaggedGrid", [ones(1, 1, 1, 10)])
    (finding,) = errors_of(info)
    assert "global size 10 is not a multiple of local size 4" in finding.message
    # without checks the plugin's grid (2 groups of 4) runs and the last 2 elements stay unwritten
    result = emulate(BAD, "RaggedGrid", [ones(1, 1, 1, 10)], checks=False)
    assert np.isnan(result.outputs[0].reshape(-1)[8:]).all() and (result.outputs[0].reshape(-1)[:8] == 1).all()


def test_work_group_above_the_limit():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "HugeGroup", [ones(1, 2, 32, 32)])
    assert "2048 work items" in errors_of(info)[0].message


def test_local_size_against_reqd_work_group_size():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "WrongGroup", [ones(1, 1, 1, 8)])
    assert "reqd_work_group_size(4, 1, 1)" in errors_of(info)[0].message


def test_writing_into_an_input_is_a_warning():
    result = emulate(BAD, "Scribble", [ones(1, 1, 2, 4)])
    assert np.all(result.outputs[0] == 1)
    assert any(f.severity == "warning" and "wrote into input 0" in f.message for f in result.findings)


# --- bad input: KernelkitError naming file, element and what to do ------------------------------------------

def test_source_that_does_not_build_points_at_the_cl_line():
    with pytest.raises(KernelkitError) as info:
        emulate(BAD, "Broken", [ones(1, 1, 1, 4)])
    assert not isinstance(info.value, DeviceCheckFailed)
    assert info.value.path.endswith("broken.cl") and "broken.cl:6:" in info.value.message


def test_missing_cl_beside_the_bin():
    with pytest.raises(KernelkitError, match="nowhere.cl is not beside it"):
        emulate(BAD, "NoSource", [ones(1, 1, 1, 4)])


def test_unbound_kernel_argument():
    with pytest.raises(KernelkitError, match="no definition for 'scratch' parameter") as info:
        emulate(BAD, "Unbound", [ones(1, 1, 1, 4)])
    assert "argument 'scratch'" in info.value.where


def test_entry_missing_from_the_source():
    with pytest.raises(KernelkitError, match="Failed to find kernel with name 'not_in_file'"):
        emulate(BAD, "NoEntry", [ones(1, 1, 1, 4)])


def test_float_literal_with_a_dot_fails_as_in_the_plugin():
    with pytest.raises(KernelkitError, match="Unable to deduce parameter 'alpha'") as info:
        emulate(BAD, "DotLiteral", [ones(1, 1, 1, 4)])
    assert "5e-1" in info.value.hint


def test_scalar_from_an_attribute_the_layer_lacks():
    with pytest.raises(KernelkitError, match="neither a layer attribute"):
        emulate(BAD, "MissingAttr", [ones(1, 1, 1, 4)])


def test_port_index_on_an_attribute_without_commas():
    x = ones(1, 2, 1, 5)
    attrs = {"count": 1, "alpha": 1, "kernel": "3", "total": x.size}
    with pytest.raises(KernelkitError, match="port-index=\"1\" takes element 1"):
        emulate(DATA / "formats.xml", "ScalarProbe", [x], attrs, [(1, 2, 1, 16)])


def test_no_alternative_applies():
    with pytest.raises(KernelkitError, match="no binding alternative applies") as info:
        emulate(DATA / "scale_bias.xml", "ScaleBias", [ones(1, 1, 1, 8)], {"mode": 2, "alpha": 1})
    assert "mode" in info.value.hint
    with pytest.raises(KernelkitError, match="no binding alternative applies"):
        emulate(DATA / "scale_bias.xml", "NotBound", [ones(1, 1, 1, 8)])


def test_missing_input_port():
    with pytest.raises(KernelkitError, match="input port-index=\"0\" but the layer has 0 input"):
        emulate(DATA / "scale_bias.xml", "ScaleBias", [], {"mode": 1, "alpha": 1}, output_shapes=[(1, 1, 1, 8)])


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp8"}, "precision must be"),
    ({"output_shapes": [(1, 0, 2)]}, "dimension <= 0"),
    ({"output_shapes": [("a",)]}, "not a list of integers"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(KernelkitError, match=message):
        emulate(DATA / "scale_bias.xml", "ScaleBias", [ones(1, 1, 1, 8)], {"mode": 1, "alpha": 1}, **kwargs)


def test_non_numeric_input():
    with pytest.raises(KernelkitError, match="input 0 has dtype"):
        emulate(DATA / "scale_bias.xml", "ScaleBias", [np.array(["a"])], {"mode": 1, "alpha": 1})


def test_missing_layer_blob():
    with pytest.raises(KernelkitError, match="reads the layer blob 'weights'") as info:
        emulate(DATA / "formats.xml", "AddWeights", [ones(1, 3, 2, 4)], {"hw": 8})
    assert "blobs=" in info.value.hint


def test_a_kernel_that_crashes_the_worker_is_reported_and_the_caller_survives():
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(BAD, "WildWrite", [ones(1, 1, 1, 8)])
    assert "worker died" in errors_of(info)[0].message
    x = np.arange(4, dtype=np.int32).reshape(1, 1, 1, 4)
    np.testing.assert_array_equal(emulate(DATA / "formats.xml", "IntOffset", [x], {"offset": 2}).outputs[0], x + 2)


# --- every other bad binding the plan refuses, on small kernels written into a temporary folder --------------

KERNEL = """
__kernel void probe(__global const half* restrict src, __global half* restrict dst, __local half* scratch,
                    int n, long big)
{ dst[get_global_id(0)] = src[get_global_id(0)]; }
"""
TENSORS = ('<Tensor arg-name="src" type="input" port-index="0"/>'
           '<Tensor arg-name="dst" type="output" port-index="0"/>')
SCRATCH = '<Data arg-name="scratch" type="local_data" dim="input,0" size="X*2"/>'
N = '<Scalar arg-name="n" type="int" source="1"/>'
BIG = '<Scalar arg-name="big" type="int" source="1"/>'
SIZES = '<WorkSizes dim="input,0" global="X" local="X"/>'


def _binding(tmp_path, params, sizes=SIZES, *, long_scalar=False):
    (tmp_path / "probe.cl").write_text(KERNEL if long_scalar else KERNEL.replace("long big", "int big"))
    (tmp_path / "probe.xml").write_text(
        f'<CustomLayer name="Probe" type="MVCL" version="1"><Kernel entry="probe">'
        f'<Source filename="probe.bin"/><Parameters>{params}</Parameters>{sizes}</Kernel></CustomLayer>\n')
    return tmp_path / "probe.xml"


@pytest.mark.parametrize("params, sizes, shape, message", [
    (TENSORS + SCRATCH + N + BIG, SIZES, (1, 1, 1, 8), "only 32-bit int or float scalars"),
    (TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="I.X"/>', SIZES, (1, 1, 1, 8),
     "needs port-index"),
    (TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="I.X" port-index="3"/>', SIZES,
     (1, 1, 1, 8), "input 3 does not exist"),
    (TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="I.B" port-index="0"/>', SIZES,
     (1, 8, 8), "rank 3, so B"),
    (TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="7" port-index="0"/>', SIZES,
     (1, 1, 1, 8), "literal source cannot have port-index"),
    (TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="mode"/>', SIZES, (1, 1, 1, 8),
     "does not read as int"),
    (TENSORS + N + BIG + '<Scalar arg-name="scratch" type="int" source="1"/>', SIZES, (1, 1, 1, 8),
     "bound to a pointer"),
    (TENSORS + SCRATCH + BIG + '<Tensor arg-name="n" type="input" port-index="0"/>', SIZES, (1, 1, 1, 8),
     "non-pointer argument"),
    (TENSORS + N + BIG + '<Tensor arg-name="scratch" type="input" port-index="0"/>', SIZES, (1, 1, 1, 8),
     "must be bound as <Data type=\"local_data\">"),
    ('<Data arg-name="src" type="local_data" dim="input,0" size="8"/><Tensor arg-name="dst" type="output" '
     'port-index="0"/>' + SCRATCH + N + BIG, SIZES, (1, 1, 1, 8), "local_data must bind a __local pointer"),
    (TENSORS + SCRATCH + N + BIG, '<WorkSizes dim="input,4" global="X" local="X"/>', (1, 1, 1, 8),
     "names input 4"),
    (TENSORS + SCRATCH + N + BIG, '<WorkSizes dim="input,0" global="X*depth" local="X"/>', (1, 1, 1, 8),
     "no binding alternative applies"),
])
def test_bad_binding(tmp_path, params, sizes, shape, message):
    xml = _binding(tmp_path, params, sizes, long_scalar="only 32-bit" in message)
    with pytest.raises(KernelkitError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        emulate(xml, "Probe", [ones(*shape)], {"pads": "1,2", "mode": "linear"})
    assert not isinstance(info.value, DeviceCheckFailed)
    assert info.value.path is not None and "probe" in info.value.path


# What the real 2021.4 plugin accepts although no device runs it well (probes local.zero,
# worksizes.global-below-local, worksizes.global-zero): the plan holds the plugin's values, the device
# checks refuse to run it.
@pytest.mark.parametrize("params, sizes, message, planned", [
    (TENSORS + '<Data arg-name="scratch" type="local_data" dim="input,0" size="X-X"/>' + N + BIG, SIZES,
     "is 0 bytes", lambda plan: plan.stages[0].args[2].value == 0),
    (TENSORS + SCRATCH + N + BIG, '<WorkSizes dim="input,0" global="X" local="X*2"/>', "so none runs",
     lambda plan: plan.stages[0].groups == (0, 1, 1)),
    (TENSORS + SCRATCH + N + BIG, '<WorkSizes dim="input,0" global="X-X" local="1"/>', "so none runs",
     lambda plan: plan.stages[0].groups == (0, 1, 1)),
])
def test_plugin_accepts_the_device_checks_refuse(tmp_path, params, sizes, message, planned):
    xml = _binding(tmp_path, params, sizes)
    plan = plan_launch(xml, "Probe", [ones(1, 1, 1, 8)])
    assert planned(plan)
    assert not [f for f in plan.findings if f.plugin == "rejects"]
    with pytest.raises(DeviceCheckFailed, match=message):
        emulate(xml, "Probe", [ones(1, 1, 1, 8)])


def test_list_element_past_the_end_is_the_last(tmp_path):
    # probe attr.list-element-2: port-index 2 of "2,3" passes 3
    params = TENSORS + SCRATCH + BIG + '<Scalar arg-name="n" type="int" source="pads" port-index="2"/>'
    plan = plan_launch(_binding(tmp_path, params), "Probe", [ones(1, 1, 1, 8)], {"pads": "1,2"})
    assert plan.stages[0].args[3].value == 2


def test_no_stage_binds_the_output(tmp_path):
    params = '<Tensor arg-name="src" type="input" port-index="0"/><Tensor arg-name="dst" type="input" ' \
             'port-index="0"/>' + SCRATCH + N + '<Scalar arg-name="big" type="int" source="1"/>'
    xml = _binding(tmp_path, params)
    with pytest.raises(KernelkitError, match="no stage binds output 0"):
        emulate(xml, "Probe", [ones(1, 1, 1, 8)])


def test_no_inputs_and_no_output_shape():
    with pytest.raises(KernelkitError, match="no inputs and no output shape"):
        emulate(DATA / "scale_bias.xml", "ScaleBias", [], {"mode": 1, "alpha": 1})


def test_a_forked_child_gets_its_own_worker_and_leaves_the_parents_alone():
    import os

    x = np.arange(4, dtype=np.int32).reshape(1, 1, 1, 4)
    emulate(DATA / "formats.xml", "IntOffset", [x], {"offset": 1})
    parent_worker = worker.client().pid
    child = os.fork()
    if child == 0:                      # the child emulates, then exits without running atexit handlers
        try:
            out = emulate(DATA / "formats.xml", "IntOffset", [x], {"offset": 5}).outputs[0]
            code = 0 if np.array_equal(out, x + 5) and worker.client().pid != parent_worker else 1
            worker.client().close()
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert worker.client().pid == parent_worker
    np.testing.assert_array_equal(emulate(DATA / "formats.xml", "IntOffset", [x], {"offset": 1}).outputs[0], x + 1)


# --- state kept between calls: the checks must hold on every call, not only the first -----------------------

SAME_LAYOUT = "".join(one_in_one_out(layer_type, entry, "probe.bin") for layer_type, entry in (
    ("CopyAll", "write_all"), ("SkipOdd", "write_even"), ("WritePastEnd", "write_past_end"),
    ("WriteBeforeStart", "write_before_start")))
SAME_LAYOUT_CL = """
__kernel void write_all(__global const half* src, __global half* dst)
{ const int i = get_global_id(0); dst[i] = src[i] + 1.0h; }
__kernel void write_even(__global const half* src, __global half* dst)
{ const int i = get_global_id(0); if (i % 2 == 0) dst[i] = src[i]; }
__kernel void write_past_end(__global const half* src, __global half* dst)
{ const int i = get_global_id(0); dst[i + 3] = src[i]; }
__kernel void write_before_start(__global const half* src, __global half* dst)
{ const int i = get_global_id(0); dst[i] = src[i]; if (i < 2) dst[i - 2] = src[i]; }
"""


@pytest.fixture
def same_layout(tmp_path):
    """Layers whose calls share one arena layout (same tensors), so each inherits the last one's state."""
    (tmp_path / "probe.cl").write_text(SAME_LAYOUT_CL)
    xml = tmp_path / "probe.xml"
    xml.write_text(SAME_LAYOUT)
    return xml


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_unwritten_elements_are_found_after_a_call_that_wrote_them_all(same_layout, precision):
    # 201 elements: three whole 64-element chunks of the worker's checks and a partial one
    x = np.arange(201, dtype=np.float32).reshape(1, 1, 3, 67)
    full = emulate(same_layout, "CopyAll", [x], precision=precision)
    np.testing.assert_array_equal(full.outputs[0], x + 1)
    for _ in range(2):        # twice: the poison must also be back after a call that found some
        result = emulate(same_layout, "SkipOdd", [x], precision=precision, checks=False)
        (finding,) = [f for f in result.findings if f.severity == "error"]
        assert "100 of 201 output elements were never written" in finding.message
        assert "first at logical index (0, 0, 0, 1)" in finding.message
        out = result.outputs[0].reshape(-1)
        assert np.isnan(out[1::2]).all(), "an unwritten element shows an earlier call's value"
        np.testing.assert_array_equal(out[0::2], x.reshape(-1)[0::2])
    again = emulate(same_layout, "CopyAll", [x], precision=precision)
    assert not again.findings
    np.testing.assert_array_equal(again.outputs[0], x + 1)


def test_guard_zones_are_checked_again_after_a_clean_call_and_restored_after_damage(same_layout):
    x = ones(1, 2, 3, 8)
    assert not emulate(same_layout, "CopyAll", [x]).findings
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(same_layout, "WritePastEnd", [x])
    assert any("out-of-bounds write" in f.message and "up to element 50" in f.message for f in errors_of(info))
    # the damaged guard bytes are rewritten before the next run, so a clean kernel passes
    result = emulate(same_layout, "CopyAll", [x])
    assert not result.findings
    np.testing.assert_array_equal(result.outputs[0], x + 1)
    with pytest.raises(DeviceCheckFailed) as info:      # the zone in front is checked as well
        emulate(same_layout, "WriteBeforeStart", [x])
    (finding,) = errors_of(info)
    assert "out-of-bounds write" in finding.message and "2 element(s) before its start" in finding.message


def test_before_writing_for_another_layout_the_parent_waits_for_the_deferred_poison(same_layout):
    # After its reply the worker poisons the converted output again, for the next run of the same layout. A call
    # of another layout may put its input there, so the parent first waits until that poison is done
    # (WorkerClient.prepare): then the output holds the poison in full. The job is run again here without the
    # read emulate() does after it, and with 8M elements, so that the poison is still running at the reply.
    x = np.ones((1, 32, 512, 512), np.float32)
    emulate(same_layout, "CopyAll", [x])
    plan = next(p for p in cache.PLANS.values() if p.job.finish and p.job.finish[0].count == x.size)
    region = plan.job.buffers[plan.job.finish[0].buffer]
    client = worker.client()
    with client.session() as session:
        arena = session.arena(plan.layout.size)
        words = arena.view(np.uint32, region.offset, region.nbytes // 4)
        for _ in range(5):
            session.prepare(plan.job, arena, timeout=60)      # the same layout: no wait
            assert session.run(plan.job, arena, timeout=60)[0] == "ok"
            session.prepare(worker.Job(key="another layout"), arena, timeout=60)
            assert (words == worker.POISON_BITS).all(), "the parent went on before the worker's poison was done"


def test_a_build_error_as_a_new_workers_first_job_leaves_later_calls_working(tmp_path):
    # The arena is shared with the worker by name: it must stay until the worker has opened it, which a build
    # error comes before.
    (tmp_path / "probe.cl").write_text(SAME_LAYOUT_CL)
    (tmp_path / "broken.cl").write_text("__kernel void broken(__global const half* src, __global half* dst)\n"
                                        "{ dst[0] = ; }\n")
    xml = tmp_path / "probe.xml"
    xml.write_text(SAME_LAYOUT + one_in_one_out("Broken", "broken", "broken.bin"))
    worker.shutdown()
    x = ones(1, 1, 4, 8)
    with pytest.raises(KernelkitError, match="does not build"):
        emulate(xml, "Broken", [x], output_shapes=[x.shape])
    np.testing.assert_array_equal(emulate(xml, "CopyAll", [x]).outputs[0], x + 1)


def test_a_cast_of_half_data_to_a_16_bit_integer_pointer_is_flagged(tmp_path):
    # On the emulator a half element is a 32-bit float: a ushort view of it reads the wrong bits. The device
    # check cannot see what the pointer points at, so it warns with the line and says what works instead.
    (tmp_path / "pun.cl").write_text(
        "__kernel void sign_bits(__global const half* src, __global half* dst)\n"
        "{\n"
        "    const uint i = get_global_id(0);\n"
        "    dst[i] = (((__global const ushort*)src)[i] & 0x8000) ? 1.0h : 0.0h;   /* fp16 bits on the device */\n"
        "}\n")
    (tmp_path / "pun.xml").write_text(one_in_one_out("SignBits", "sign_bits", "pun.bin"))
    result = emulate(tmp_path / "pun.xml", "SignBits", [ones(1, 1, 2, 8)])
    (warning,) = [f for f in result.findings if "casts a pointer" in f.message]
    assert warning.severity == "warning" and "pun.cl:4" in warning.message and "'ushort*'" in warning.message
    assert "as_ushortN" in warning.hint and "arithmetic='fp16'" in warning.hint


def test_an_unsupported_reinterpretation_of_halves_names_the_limitation(tmp_path):
    (tmp_path / "pun.cl").write_text("__kernel void pack(__global const half* src, __global int* dst)\n"
                                     "{ dst[get_global_id(0)] = as_int(vload2(get_global_id(0), src)); }\n")
    (tmp_path / "pun.xml").write_text(one_in_one_out("Pack", "pack", "pun.bin", global_="X/2", local="1"))
    with pytest.raises(KernelkitError, match="does not build") as info:
        emulate(tmp_path / "pun.xml", "Pack", [ones(1, 1, 1, 8)], output_shapes=[(1, 1, 1, 4)])
    assert "as_ushortN" in info.value.hint and "docs/emulator.md" in info.value.hint


COPY_KERNEL = """__kernel void copy_rows(__global const half* src, __global half* dst) {
    int i = get_global_id(0);
    dst[i] = src[i];
}
"""


@pytest.mark.parametrize("shape, copies", [((3, 8), 3), ((1, 24), 1), ((2, 3, 4), 1)])
def test_a_2d_batch_is_split_per_sample_as_the_plugin_does(tmp_path, shape, copies):
    """The real 2021.4 plugin writes one Custom stage per sample of a 2-D [N, C] tensor, each with the whole
    tensor's work sizes (probe lookup.rank2-batch3): the plan lists those copies and emulate() refuses, since
    on the device each copy overruns its sample's slice."""
    (tmp_path / "copy_rows.cl").write_text(COPY_KERNEL)
    xml = tmp_path / "copy.xml"
    xml.write_text(one_in_one_out("Copy", "copy_rows", "copy_rows.bin", global_="B*F*Y*X", local="1")
                   .replace('port-index="0"/>', 'port-index="0" format="BF"/>'))
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    plan = plan_launch(xml, "Copy", [x])
    assert len(plan.stages) == copies
    assert {s.global_size[:1] for s in plan.stages} == {(x.size,)}
    if copies == 1:
        np.testing.assert_array_equal(emulate(xml, "Copy", [x]).outputs[0], x)
        return
    with pytest.raises(DeviceCheckFailed) as info:
        emulate(xml, "Copy", [x])
    (finding,) = errors_of(info)
    assert f"splits this layer into {copies} copies" in finding.message and "[1, N*C]" in finding.hint
    np.testing.assert_array_equal(emulate(xml, "Copy", [x], checks=False).outputs[0], x)
