"""The emulator against numpy on hand-written SHAVE-style kernels (tests/data/shave/), one construct each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernelkit.kernel.bindings import myriad_read
from kernelkit.kernel.emulator import cache, host_fp16
from kernelkit.kernel.emulator.run import emulate
from kernelkit.kernel.emulator.source import rewrite_half_literals
from shave_bindings import one_in_one_out

DATA = Path(__file__).parent / "data" / "shave"
KERNELS = DATA / "kernels.xml"
FORMATS = DATA / "formats.xml"


def f16(a) -> np.ndarray:
    """What the VPU stores: the value rounded to fp16, as float64 for reference math."""
    return np.asarray(a).astype(np.float16).astype(np.float64)


def assert_fp16_close(actual, expected, ulps=1):
    """Within `ulps` fp16 steps of the fp16-rounded reference."""
    expected16 = np.asarray(expected).astype(np.float16)
    step = np.spacing(np.abs(expected16)).astype(np.float64)
    diff = np.abs(np.asarray(actual, np.float64) - expected16.astype(np.float64))
    assert np.all(diff <= ulps * step), f"max diff {diff.max()} at {np.unravel_index(diff.argmax(), diff.shape)}"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["host", "device"])
def input_conversion(request, monkeypatch):
    """Both ways float inputs reach fp16: in the host's copy (host_fp16) and in the worker's device pass."""
    if request.param == "host" and not host_fp16.available():
        pytest.skip("no hardware fp16 conversion or no clang-15 here: the device pass is the only one")
    monkeypatch.setenv("KERNELKIT_HOST_FP16", "1" if request.param == "host" else "0")
    host_fp16.reset()
    cache.PLANS.clear()            # a cached plan holds the choice
    yield request.param
    host_fp16.reset()
    cache.PLANS.clear()


# --- selection, half arithmetic, literals, conversions -----------------------------------------------------

def test_where_selects_the_first_alternative_and_its_half8_kernel(rng):
    x = rng.uniform(-3, 3, (2, 3, 5, 13)).astype(np.float32)      # width 13: half8 body plus a scalar tail
    result = emulate(DATA / "scale_bias.xml", "ScaleBias", [x], {"mode": 0, "alpha": 0.5})
    assert result.layer.kernels[0].entry == "scale_bias"
    assert result.outputs[0].dtype == np.float16 and result.outputs[0].shape == x.shape
    assert_fp16_close(result.outputs[0], f16(x) * 0.5 + 0.25)
    assert result.findings == []


def test_where_selects_the_second_alternative_with_vload_vstore_half(rng):
    x = rng.uniform(-3, 3, (1, 2, 4, 8)).astype(np.float32)
    result = emulate(DATA / "scale_bias.xml", "scalebias", [x], {"mode": "1", "alpha": "2"})  # type: any case
    assert result.layer.kernels[0].entry == "scale_bias_neg"
    assert_fp16_close(result.outputs[0], -(f16(x) * 2 + 0.25))


def test_preloaded_bindings_are_accepted(rng):
    layers = myriad_read.load(DATA / "scale_bias.xml")
    x = rng.uniform(-1, 1, (1, 1, 2, 8)).astype(np.float32)
    result = emulate(layers, "ScaleBias", [x], {"mode": 0, "alpha": 1.5})
    assert_fp16_close(result.outputs[0], f16(x) * 1.5 + 0.25)


def test_half_literal_rewrite_keeps_identifiers_comments_and_lines():
    text = "x = 1.0h + .5h * 2h + 3e-2H; y1h = a1h; // 2.0h stays\n/* 4h */ z = 0x1h;"
    out = rewrite_half_literals(text)
    assert out == "x = 1.0f + .5f * 2.0f + 3e-2f; y1h = a1h; // 2.0h stays\n/* 4h */ z = 0x1h;"


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_convert_half_rounds_inside_the_kernel(rng):
    # 1 + 2^-10 makes x*s land between fp16 values; edges cover overflow (65520 -> inf) and subnormals.
    edges = np.array([0.0, -0.0, 65504.0, -65504.0, 6e-8, -6e-8, 3e-5, 1.0, -1.0, 21000.0, 30000.0], np.float32)
    x = np.concatenate([rng.uniform(-100, 100, 53).astype(np.float32), edges]).reshape(1, 1, 1, -1)
    s = np.float32(1.0009765625)
    result = emulate(DATA / "round_probe.xml", "RoundProbe", [x], {"scale": "1.0009765625"})
    t = (x.astype(np.float16).astype(np.float32) * s).astype(np.float16)           # convert_half
    expected = (t.astype(np.float32) * np.float32(3)).astype(np.float16)           # h * 3.0h, stored
    np.testing.assert_array_equal(result.outputs[0], expected)


def float_bits_under_test() -> np.ndarray:
    """Random float32 bit patterns plus every pattern around the fp16 subnormal and overflow boundaries."""
    rng = np.random.default_rng(99)
    return np.concatenate([
        rng.integers(0, 2 ** 32, 1 << 20, dtype=np.uint64).astype(np.uint32),
        np.arange(0x33000000, 0x33000000 + (1 << 16), dtype=np.uint32),       # below the smallest subnormal
        np.arange(0x387f0000, 0x38810000, dtype=np.uint32),                    # subnormal/normal boundary
        np.arange(0x477f0000, 0x47800010, dtype=np.uint32),                    # 65504 .. overflow to inf
        np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x3F800000], np.uint32),
    ]).view(np.int32).reshape(1, 1, 1, -1)


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_in_kernel_fp16_rounding_is_bit_exact():
    bits = float_bits_under_test()
    result = emulate(DATA / "round_probe.xml", "ConvertBits", [bits])
    with np.errstate(all="ignore"):
        expected = bits.view(np.float32).astype(np.float16).astype(np.float32)
    got = result.outputs[0].view(np.float32)
    same = (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} mismatches, first input bits {bits[~same][:4]}"


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_fp16_output_conversion_is_bit_exact():
    bits = float_bits_under_test()
    result = emulate(DATA / "round_probe.xml", "StoreBits", [bits])
    with np.errstate(all="ignore"):
        expected = bits.view(np.float32).astype(np.float16)
    got = result.outputs[0]
    same = (got.view(np.uint16) == expected.view(np.uint16)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} mismatches, first input bits {bits[~same][:4]}"


BITS_OF_INPUT = one_in_one_out("BitsOfInput", "bits_of_input", "bits.bin")


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_input_boundary_rounding_is_bit_exact(tmp_path, input_conversion):
    # An emulator-only probe: on PoCL a half is a float, so as_int shows the bits the kernel received
    # (I32 outputs pass unchanged). Rows of 61: the count is not a multiple of the worker's 64-element chunks.
    (tmp_path / "bits.cl").write_text("__kernel void bits_of_input(__global const half* src, __global int* dst)\n"
                                      "{ const int i = get_global_id(0); dst[i] = as_int(src[i]); }\n")
    (tmp_path / "bits.xml").write_text(BITS_OF_INPUT)
    bits = float_bits_under_test().reshape(-1)
    x = np.resize(bits, (1, 1, -(-bits.size // 61), 61)).view(np.float32)
    got = emulate(tmp_path / "bits.xml", "BitsOfInput", [x], output_shapes=[x.shape]).outputs[0].view(np.float32)
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16).astype(np.float32)
    same = (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} mismatches, first input bits {x.view(np.uint32)[~same][:4]}"


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_float16_inputs_reach_the_kernel_unchanged(tmp_path, precision, input_conversion):
    # A float16 array goes in as its bits and the worker widens it: every one of the 65536 patterns must arrive
    # as the float32 of the same value (NaNs as NaNs), in both precisions. 1075 rows of 61 = 65575 elements:
    # all patterns, and a partial last chunk of the worker's 64.
    (tmp_path / "bits.cl").write_text("__kernel void bits_of_input(__global const half* src, __global int* dst)\n"
                                      "{ const int i = get_global_id(0); dst[i] = as_int(src[i]); }\n")
    (tmp_path / "bits.xml").write_text(BITS_OF_INPUT)
    patterns = np.resize(np.arange(1 << 16).astype(np.uint16), 1075 * 61)
    x = patterns.view(np.float16).reshape(1, 1, 1075, 61)
    got = emulate(tmp_path / "bits.xml", "BitsOfInput", [x], output_shapes=[x.shape],
                  precision=precision).outputs[0].view(np.float32)
    expected = x.astype(np.float32)
    same = (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} mismatches, first fp16 bits {patterns[~same.reshape(-1)][:4]}"


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value")
def test_host_fp16_conversion_matches_numpy_bit_for_bit():
    if not host_fp16.available():
        pytest.skip("no hardware fp16 conversion or no clang-15 here")
    x = float_bits_under_test().reshape(-1).view(np.float32)
    out = np.empty(x.size, np.float32)
    host_fp16.convert_into(out, x)
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16).astype(np.float32)
    same = (out.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(out) & np.isnan(expected))
    assert same.all(), f"{(~same).sum()} mismatches, first input bits {x.view(np.uint32)[~same][:4]}"
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)[::-1]   # a strided view
    wide = np.empty(halves.size, np.float32)
    host_fp16.convert_into(wide, halves)
    expected = halves.astype(np.float32)
    same = (wide.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(wide) & np.isnan(expected))
    assert same.all()
    with pytest.raises(ValueError, match="float32 or float16"):
        host_fp16.convert_into(out, x.astype(np.float64))
    with pytest.raises(ValueError, match="dense float32 destination"):
        host_fp16.convert_into(out[:10], x)


def test_host_fp16_says_why_it_is_not_used(monkeypatch):
    monkeypatch.setenv("KERNELKIT_HOST_FP16", "0")
    host_fp16.reset()
    assert host_fp16.status() == (False, "turned off (KERNELKIT_HOST_FP16=0)")
    monkeypatch.delenv("KERNELKIT_HOST_FP16")
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", "/dev/null/not-a-folder")       # nowhere to put the library
    host_fp16.reset()
    used, why = host_fp16.status()
    assert not used and ("cannot write the kernelkit cache folder" in why or "fp16 conversion" in why)
    monkeypatch.undo()
    host_fp16.reset()


def test_float16_and_float32_inputs_of_one_shape_give_the_same_result(rng):
    # two dtypes of one shape are two plans (fp16 bits widened / float32 rounded on the device)
    x32 = rng.uniform(-3, 3, (1, 2, 5, 67)).astype(np.float32)
    x16 = x32.astype(np.float16)
    for x in (x16, x32, x16):
        result = emulate(DATA / "scale_bias.xml", "ScaleBias", [x], {"mode": 1, "alpha": 0.5})
        assert_fp16_close(result.outputs[0], -(f16(x32) * 0.5 + 0.25))


def test_fp32_precision_rounds_nowhere(rng):
    x = rng.uniform(-100, 100, (1, 1, 1, 64)).astype(np.float32)
    result = emulate(DATA / "round_probe.xml", "RoundProbe", [x], {"scale": "1.0009765625"}, precision="fp32")
    assert result.outputs[0].dtype == np.float32
    expected = x * np.float32(1.0009765625) * np.float32(3)
    np.testing.assert_allclose(result.outputs[0], expected, rtol=1e-6)


def test_inputs_are_rounded_to_fp16_at_the_boundary():
    x = np.array([1.0 + 2 ** -12, 70000.0, 1e-8], np.float32).reshape(1, 1, 1, 3)
    result = emulate(DATA / "scale_bias.xml", "ScaleBias", [x], {"mode": 1, "alpha": 1})
    # -(fp16(x) + 0.25): 1+2^-12 rounds to 1; 70000 is inf in fp16; 1e-8 flushes to 0
    np.testing.assert_array_equal(result.outputs[0].reshape(-1), np.array([-1.25, -np.inf, -0.25], np.float16))


# --- copies and local memory -----------------------------------------------------------------------------

def grn(x, bias):
    xs = f16(x)
    return xs / np.sqrt(bias + (xs ** 2).sum(axis=1, keepdims=True))


def test_async_3d3d_with_local_arrays(rng):
    x = rng.uniform(-1, 1, (1, 7, 5, 24)).astype(np.float32)
    result = emulate(KERNELS, "GrnAsync", [x], {"bias": 0.5})
    assert_fp16_close(result.outputs[0], grn(x, 0.5))


def test_async_2d2d_tiles(rng):
    x = rng.uniform(-1, 1, (1, 3, 6, 16)).astype(np.float32)
    result = emulate(KERNELS, "Tile2D2D", [x], {"tw": 8, "th": 3})
    assert_fp16_close(result.outputs[0], f16(x) * 2 + 1)


def test_manual_dma_triplet_with_3d_transactions_and_local_data(rng):
    x = rng.uniform(-1, 1, (1, 6, 4, 16)).astype(np.float32)
    result = emulate(KERNELS, "GrnDma", [x], {"bias": 1.0})
    assert_fp16_close(result.outputs[0], grn(x, 1.0))


def test_manual_dma_preload_with_stride_transaction(rng):
    x = rng.uniform(-1, 1, (1, 3, 8, 16)).astype(np.float32)
    result = emulate(KERNELS, "EvenRows", [x], output_shapes=[(1, 3, 4, 16)])
    assert_fp16_close(result.outputs[0], f16(x)[:, :, ::2, :] - 1)


def test_work_item_dma_and_reqd_work_group_size(rng):
    x = rng.uniform(0, 1, (1, 2, 3, 40)).astype(np.float32)
    result = emulate(KERNELS, "RowPrefix", [x])
    # the running sum is kept in half on the device; here in float: allow 2 fp16 steps
    assert_fp16_close(result.outputs[0], np.cumsum(f16(x), axis=3), ulps=2)


# --- what clc accepts that a plain OpenCL CPU build would not ---------------------------------------------------

SHAVE_HABITS_CL = """
__kernel void shifted_rows(__global const half* src, __global half* dst)
{
    const uint g = get_global_id(0);                   /* one item per 8 outputs */
    const half8 v = *(__global const half8*)(src + 8 * g + 1);      /* one element past a vector boundary */
    *(__global half8*)(dst + 8 * g) = v * 2.0h;
}
__kernel void clamped_index(__global const half* src, __global half* dst)
{
    /* min(size_t, uint): one overload on SHAVE, where size_t is 32 bits */
    dst[get_global_id(0)] = src[min(get_global_id(0) + 2, (uint)(get_global_size(0) - 1))];
}
__kernel void lane_sums(__global const half* src, __global half* dst)
{
    const uint g = get_global_id(0);
    dst[g] = __builtin_shave_sau_sumx_f16_r(vload8(g, src));
}
__kernel void negate_by_bits(__global const half* src, __global half* dst)
{
    const uint g = get_global_id(0);
    const ushort8 bits = as_ushort8(vload8(g, src)) ^ (ushort8)0x8000;      /* each fp16's sign bit */
    vstore8(as_half8(bits), g, dst);
}
__kernel void fp16_bits(__global const half* src, __global int* dst)
{
    dst[get_global_id(0)] = as_ushort(src[get_global_id(0)]);
}
__kernel void from_fp16_bits(__global const int* src, __global half* dst)
{
    dst[get_global_id(0)] = as_half((ushort)src[get_global_id(0)]);
}
"""


@pytest.fixture
def shave_habits(tmp_path):
    (tmp_path / "habits.cl").write_text(SHAVE_HABITS_CL)
    xml = tmp_path / "habits.xml"
    xml.write_text(one_in_one_out("ShiftedRows", "shifted_rows", "habits.bin", global_="(X-1)/8", local="1")
                   + one_in_one_out("ClampedIndex", "clamped_index", "habits.bin")
                   + one_in_one_out("LaneSums", "lane_sums", "habits.bin", global_="X/8", local="1")
                   + one_in_one_out("NegateByBits", "negate_by_bits", "habits.bin", global_="B*F*Y*X/8", local="8")
                   + one_in_one_out("Fp16Bits", "fp16_bits", "habits.bin")
                   + one_in_one_out("FromFp16Bits", "from_fp16_bits", "habits.bin"))
    return xml


def test_half8_at_any_element_offset(shave_habits, rng):
    x = rng.uniform(-2, 2, (1, 1, 1, 8 * 7 + 1)).astype(np.float32)
    out = emulate(shave_habits, "ShiftedRows", [x], output_shapes=[(1, 1, 1, 56)]).outputs[0]
    np.testing.assert_array_equal(out, (f16(x)[..., 1:] * 2).astype(np.float16))


def test_work_item_functions_are_32_bit_as_on_shave(shave_habits):
    x = np.arange(20, dtype=np.float32).reshape(1, 1, 1, 20)
    out = emulate(shave_habits, "ClampedIndex", [x]).outputs[0].reshape(-1)
    np.testing.assert_array_equal(out, np.minimum(np.arange(20) + 2, 19))


def test_sau_sumx_intrinsic_sums_eight_lanes(shave_habits, rng):
    x = rng.uniform(-1, 1, (1, 1, 1, 64)).astype(np.float32)
    out = emulate(shave_habits, "LaneSums", [x], output_shapes=[(1, 1, 1, 8)]).outputs[0].reshape(-1)
    assert_fp16_close(out, f16(x).reshape(8, 8).sum(axis=1), ulps=2)


def all_fp16_patterns(shape=(1, 1, 1024, 64)) -> np.ndarray:
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(shape)


def same_or_both_nan(got, expected) -> np.ndarray:
    got, expected = np.asarray(got, np.float32), np.asarray(expected, np.float32)
    return (got.view(np.uint32) == expected.view(np.uint32)) | (np.isnan(got) & np.isnan(expected))


def test_reinterpreting_halves_as_16_bit_integers_gives_the_fp16_bits(shave_habits):
    # half is a float on the emulator; as_ushortN / as_halfN go through the fp16 encoding, as on the device
    x = all_fp16_patterns()
    negated = emulate(shave_habits, "NegateByBits", [x]).outputs[0]
    assert same_or_both_nan(negated, -x.astype(np.float32)).all()
    bits = emulate(shave_habits, "Fp16Bits", [x], output_shapes=[x.shape]).outputs[0].astype(np.uint16)
    expected = x.view(np.uint16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(bits[~nan], expected[~nan])
    assert ((bits[nan] & 0x7C00) == 0x7C00).all() and (bits[nan] & 0x3FF).all()     # still NaNs
    decoded = emulate(shave_habits, "FromFp16Bits", [expected.astype(np.int32)], output_shapes=[x.shape])
    assert same_or_both_nan(decoded.outputs[0], x).all()


def test_two_stages_linked_by_a_scratch_buffer(rng):
    x = rng.uniform(-1, 3, (1, 4, 3, 10)).astype(np.float32)
    result = emulate(KERNELS, "MeanSubtract", [x])
    xs = f16(x)
    expected = xs - f16(xs.mean(axis=(2, 3), keepdims=True))
    assert_fp16_close(result.outputs[0], expected, ulps=2)


# --- tensor formats -------------------------------------------------------------------------------------

def test_byxf_input_and_bfyx_output(rng):
    x = rng.uniform(-1, 1, (1, 3, 4, 5)).astype(np.float32)
    result = emulate(FORMATS, "NhwcToNchw", [x])
    assert_fp16_close(result.outputs[0], f16(x) + np.arange(3).reshape(1, 3, 1, 1))


def test_byxf_input_given_as_float16(rng):
    x = rng.uniform(-1, 1, (1, 3, 4, 5)).astype(np.float16)
    result = emulate(FORMATS, "NhwcToNchw", [x])
    assert_fp16_close(result.outputs[0], x.astype(np.float64) + np.arange(3).reshape(1, 3, 1, 1))


def test_fyx_input_and_yxf_output_on_rank3(rng):
    x = rng.uniform(-1, 1, (3, 4, 5)).astype(np.float32)
    result = emulate(FORMATS, "ChwToHwc", [x])
    assert result.outputs[0].shape == (3, 4, 5)          # back in logical CHW
    assert_fp16_close(result.outputs[0], f16(x) * 2)


def test_bf_rank2_and_shape_lookups_from_the_end(rng):
    x = rng.uniform(-1, 1, (1, 7)).astype(np.float32)
    assert_fp16_close(emulate(FORMATS, "RowsBF", [x]).outputs[0], f16(x) * 1 + np.arange(7))   # N = I.Y = 1
    # Three rows are a batch the plugin splits per sample (each copy overruns its slice on the device);
    # with checks off the emulator runs the layer once over the whole tensor.
    x = rng.uniform(-1, 1, (3, 7)).astype(np.float32)
    result = emulate(FORMATS, "RowsBF", [x], checks=False)
    assert [f.message for f in result.findings if f.severity == "error" and "splits this layer into 3" in f.message]
    assert_fp16_close(result.outputs[0], f16(x) * 3 + np.arange(7))


# --- scalars -------------------------------------------------------------------------------------------

def test_every_scalar_source_kind(rng):
    x = rng.uniform(-1, 1, (1, 3, 2, 5)).astype(np.float32)
    attrs = {"count": "7.9", "alpha": 0.5, "kernel": [3, 5], "total": x.size}
    result = emulate(FORMATS, "ScalarProbe", [x], attrs, output_shapes=[(1, 2, 1, 16)])
    probe = result.outputs[0].reshape(-1)
    # whole attr (stoi "7.9" = 7), float attr, comma list element 1, I.X, O.F, i.X (reads the OUTPUT: 16),
    # int literal, float literal written without a dot, I.B
    np.testing.assert_array_equal(probe[:9], np.array([7, 0.5, 5, 5, 2, 16, 42, 0.125, 1], np.float16))
    np.testing.assert_array_equal(probe[9:], x.reshape(-1).astype(np.float16)[np.arange(9, 32) % x.size])


def test_int32_tensors_pass_unchanged():
    x = (np.arange(-6, 6, dtype=np.int32) * 1_000_003).reshape(1, 3, 2, 2)
    result = emulate(FORMATS, "IntOffset", [x], {"offset": "-7"})
    assert result.outputs[0].dtype == np.int32
    np.testing.assert_array_equal(result.outputs[0], x - 7)


def test_repeated_calls_reuse_the_warm_worker(rng):
    from kernelkit.kernel.emulator import worker

    x = rng.uniform(-1, 1, (1, 1, 2, 8)).astype(np.float32)
    emulate(DATA / "scale_bias.xml", "ScaleBias", [x], {"mode": 0, "alpha": 1})
    pid = worker.client().pid
    emulate(DATA / "scale_bias.xml", "ScaleBias", [x], {"mode": 0, "alpha": 1})
    assert pid is not None and worker.client().pid == pid


def test_layout_decides_between_alternatives_without_where(rng):
    x = rng.uniform(-1, 1, (1, 2, 3, 4)).astype(np.float32)
    result = emulate(FORMATS, "LayoutPick", [x])
    assert result.layer.kernels[0].entry == "rows_bf"          # the BFYX alternative fits the NCHW input
    assert_fp16_close(result.outputs[0], f16(x) * 1 + np.arange(4))


def test_layer_blob_bound_as_data(rng):
    x = rng.uniform(-1, 1, (1, 3, 2, 4)).astype(np.float32)
    weights = np.array([10.0, -20.0, 0.5], np.float32)
    result = emulate(FORMATS, "AddWeights", [x], {"hw": 8}, blobs={"weights": weights})
    assert_fp16_close(result.outputs[0], f16(x) + weights.reshape(1, 3, 1, 1))


def test_cached_plan_takes_new_values_and_notices_an_edited_source(tmp_path, rng):
    (tmp_path / "k.cl").write_text("__kernel void k(__global const half* s, __global half* d)\n"
                                   "{ d[get_global_id(0)] = s[get_global_id(0)] + 1.0h; }\n")
    (tmp_path / "k.xml").write_text(one_in_one_out("K", "k", "k.bin", src="s", dst="d", global_="X"))
    a, b = (rng.uniform(-1, 1, (1, 1, 1, 8)).astype(np.float32) for _ in range(2))
    assert_fp16_close(emulate(tmp_path / "k.xml", "K", [a]).outputs[0], f16(a) + 1)
    assert_fp16_close(emulate(tmp_path / "k.xml", "K", [b]).outputs[0], f16(b) + 1)     # same plan, new data
    (tmp_path / "k.cl").write_text("__kernel void k(__global const half* s, __global half* d)\n"
                                   "{ d[get_global_id(0)] = s[get_global_id(0)] * 3.0h - 2.0h; }\n")
    assert_fp16_close(emulate(tmp_path / "k.xml", "K", [b]).outputs[0], f16(b) * 3 - 2)
