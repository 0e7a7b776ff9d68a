"""arithmetic="fp16": kernels compiled by clang-15 with real 16-bit half storage and arithmetic, run on PoCL."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kernelkit.cli import main
from kernelkit.kernel.emulator.run import emulate
from kernelkit.core.errors import KernelkitError
from shave_bindings import one_in_one_out

pytestmark = pytest.mark.skipif(shutil.which("clang-15") is None, reason="arithmetic='fp16' compiles with clang-15")

DATA = Path(__file__).parent / "data" / "shave"
KERNELS, FORMATS = DATA / "kernels.xml", DATA / "formats.xml"

PROBES_CL = """
__kernel void accumulate(__global const half* src, __global half* dst)
{
    const uint i = get_global_id(0);
    half s = 0.0h;
    for (int j = 0; j < 100; ++j)
        s += src[i];
    dst[i] = s;
}
__kernel void square_scaled(__global const half* src, __global half* dst)
{
    const uint i = get_global_id(0);
    dst[i] = (src[i] * src[i]) / 1000.0h;          /* x*x overflows fp16 above 255.9 */
}
__kernel void sign_bits(__global const half* src, __global half* dst)
{
    const uint i = get_global_id(0);
    dst[i] = (((__global const ushort*)src)[i] & 0x8000) ? 1.0h : 0.0h;      /* the fp16 sign bit */
}
__kernel void rows_by_literal_bytes(__global const half* src, __global half* dst, __local half* row)
{
    const uint y = get_group_id(0), w = get_local_size(0);
    /* byte counts written as 2 * n, as kernels for the device may: right only when half is 2 bytes */
    event_t e = WorkGroupDmaCreateTransaction(src + y * w, row, 2 * w, 0);
    wait_group_events(1, &e);
    dst[y * w + get_local_id(0)] = row[w - 1 - get_local_id(0)];
}
"""


@pytest.fixture
def probes(tmp_path):
    (tmp_path / "probes.cl").write_text(PROBES_CL)
    local_row = one_in_one_out("RowsByLiteralBytes", "rows_by_literal_bytes", "probes.bin",
                               global_="B*F*Y*X", local="X").replace(
        "</Parameters>", '    <Data arg-name="row" type="local_data" dim="input,0" size="X"/>\n        </Parameters>')
    xml = tmp_path / "probes.xml"
    xml.write_text(one_in_one_out("Accumulate", "accumulate", "probes.bin")
                   + one_in_one_out("SquareScaled", "square_scaled", "probes.bin")
                   + one_in_one_out("SignBits", "sign_bits", "probes.bin") + local_row)
    return xml


def test_each_half_operation_rounds_to_fp16(probes):
    x = np.full((1, 1, 2, 8), 0.1, np.float32)
    expected = np.float16(0)
    for _ in range(100):
        expected = np.float16(expected + np.float16(0.1))            # what 100 fp16 additions give
    fp16 = emulate(probes, "Accumulate", [x], arithmetic="fp16").outputs[0]
    fp32 = emulate(probes, "Accumulate", [x]).outputs[0]
    assert (fp16 == expected).all() and expected != np.float16(10.0)
    assert (fp32 == np.float16(np.float32(np.float16(0.1)) * 100)).all()     # float32 inside: no drift


def test_an_fp16_overflow_inside_the_kernel_shows(probes):
    x = np.array([300, 100, -400, 2], np.float32).reshape(1, 1, 1, 4)
    fp16 = emulate(probes, "SquareScaled", [x], arithmetic="fp16").outputs[0].reshape(-1)
    fp32 = emulate(probes, "SquareScaled", [x]).outputs[0].reshape(-1)
    np.testing.assert_array_equal(fp16, np.array([np.inf, 10, np.inf, 0.004], np.float16))
    np.testing.assert_array_equal(fp32, np.array([90, 10, 160, 0.004], np.float16))


def test_half_data_read_through_a_ushort_pointer_gives_the_fp16_bits(probes):
    x = np.array([-1, 2, -0.0, 0, -3e-6, 65504], np.float32).reshape(1, 1, 1, 6)
    out = emulate(probes, "SignBits", [x], arithmetic="fp16")
    np.testing.assert_array_equal(out.outputs[0].reshape(-1), [1, 0, 1, 0, 1, 0])
    assert not [f for f in out.findings if "casts a pointer" in f.message]      # nothing to warn about here


def test_byte_counts_written_as_literals(probes, ):
    x = np.arange(3 * 16, dtype=np.float32).reshape(1, 1, 3, 16)
    out = emulate(probes, "RowsByLiteralBytes", [x], arithmetic="fp16").outputs[0]
    np.testing.assert_array_equal(out, x[..., ::-1].astype(np.float16))


# The hand-written SHAVE kernels of tests/test_emulator.py: the same results with fp16 arithmetic, within the
# drift of per-operation rounding (counted in fp16 steps at the value, or at 1 for values below 1, where the
# intermediates of these kernels are of order 1); exact where a kernel only moves data.
SAME_KERNELS = [
    (DATA / "scale_bias.xml", "ScaleBias", (1, 2, 5, 67), {"mode": 0, "alpha": 0.5}, None, 0),
    (DATA / "scale_bias.xml", "ScaleBias", (1, 2, 5, 67), {"mode": 1, "alpha": 0.5}, None, 0),
    (DATA / "round_probe.xml", "RoundProbe", (1, 1, 1, 64), {"scale": "1.0009765625"}, None, 2),
    (KERNELS, "GrnAsync", (1, 7, 5, 24), {"bias": 0.5}, None, 4),
    (KERNELS, "Tile2D2D", (1, 3, 6, 16), {"tw": 8, "th": 3}, None, 0),
    (KERNELS, "GrnDma", (1, 6, 4, 16), {"bias": 1.0}, None, 4),
    (KERNELS, "EvenRows", (1, 3, 8, 16), {}, [(1, 3, 4, 16)], 0),
    (KERNELS, "RowPrefix", (1, 2, 3, 40), {}, None, 24),
    (KERNELS, "MeanSubtract", (1, 4, 3, 10), {}, None, 4),
    (FORMATS, "NhwcToNchw", (1, 3, 4, 5), {}, None, 0),
    (FORMATS, "ChwToHwc", (3, 4, 5), {}, None, 0),
    (FORMATS, "RowsBF", (1, 7), {}, None, 1),          # more rows: a batch the plugin splits per sample
]


@pytest.mark.parametrize("xml, layer_type, shape, attrs, out_shapes, ulps", SAME_KERNELS,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(SAME_KERNELS)])
def test_hand_written_kernels_agree_with_float_arithmetic(xml, layer_type, shape, attrs, out_shapes, ulps):
    x = np.random.default_rng(77).uniform(0 if layer_type == "RowPrefix" else -1, 1, shape).astype(np.float32)
    fp32 = emulate(xml, layer_type, [x], attrs, out_shapes).outputs[0].astype(np.float64)
    fp16 = emulate(xml, layer_type, [x], attrs, out_shapes, arithmetic="fp16").outputs[0].astype(np.float64)
    step = np.spacing(np.maximum(np.abs(fp32), 1.0).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(fp16 - fp32) <= ulps * step), f"max {np.max(np.abs(fp16 - fp32) / step):.1f} fp16 steps"


def test_the_cli_takes_the_arithmetic(probes, tmp_path, capsys):
    x = np.full((1, 1, 2, 8), 0.1, np.float32)
    np.savez(tmp_path / "in.npz", in0=x)
    assert main(["emulate", str(probes), "--type", "Accumulate", "--inputs", str(tmp_path / "in.npz"),
                 "--arithmetic", "fp16", "--out", str(tmp_path / "out.npz")]) == 0
    with np.load(tmp_path / "out.npz") as out:
        assert (out["out0"] > 10.05).all()


def test_fp16_arithmetic_needs_fp16_precision_and_reports_source_lines(probes, tmp_path):
    x = np.ones((1, 1, 1, 8), np.float32)
    with pytest.raises(KernelkitError, match="needs precision 'fp16'"):
        emulate(probes, "Accumulate", [x], precision="fp32", arithmetic="fp16")
    with pytest.raises(KernelkitError, match="arithmetic must be 'fp16' or 'fp32'"):
        emulate(probes, "Accumulate", [x], arithmetic="half")
    (tmp_path / "broken.cl").write_text("__kernel void broken(__global const half* src, __global half* dst)\n"
                                        "{\n    dst[0] = src[0] +;\n}\n")
    (tmp_path / "broken.xml").write_text(one_in_one_out("Broken", "broken", "broken.bin"))
    with pytest.raises(KernelkitError, match=r"broken\.cl:3") as info:
        emulate(tmp_path / "broken.xml", "Broken", [x], arithmetic="fp16")
    assert "fp16 arithmetic" in str(info.value)
