"""fp16 outputs stay where the worker wrote them (the result pool): what the caller holds must never change."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np

from kernelkit.kernel.emulator.run import emulate
from kernelkit.kernel.emulator import worker
from kernelkit.kernel.emulator.worker import ALIGN, ResultPool

DATA = Path(__file__).parent / "data" / "shave"
SCALE_BIAS = DATA / "scale_bias.xml"


def scale_bias(x, alpha=0.5):
    return emulate(SCALE_BIAS, "ScaleBias", [x], {"mode": 1, "alpha": alpha}).outputs[0]


def expected(x, alpha=0.5):
    xs = x.astype(np.float16).astype(np.float32)
    return (-(xs * np.float32(alpha) + np.float32(0.25))).astype(np.float16)


def test_results_the_caller_holds_survive_later_calls_of_any_layout():
    rng = np.random.default_rng(5)
    small = rng.uniform(-2, 2, (1, 2, 4, 64)).astype(np.float32)
    large = rng.uniform(-2, 2, (1, 8, 32, 256)).astype(np.float32)
    held = [(small, scale_bias(small)), (large, scale_bias(large))]
    for i in range(6):                       # the same layouts, others, and new values: none may touch `held`
        x = rng.uniform(-2, 2, (1, 1 + i, 16, 128)).astype(np.float32)
        np.testing.assert_array_equal(scale_bias(x, alpha=0.25), expected(x, alpha=0.25))
        scale_bias(small * 3)
    for x, out in held:
        np.testing.assert_array_equal(out, expected(x))


def test_a_view_keeps_its_result_and_released_regions_are_reused():
    x = np.linspace(-3, 3, 4 * 256, dtype=np.float32).reshape(1, 1, 4, 256)
    scale_bias(x)
    gc.collect()
    pool = worker.client()._pool
    free_before = pool.free_blocks()
    row = scale_bias(x)[0, 0, 2]             # only a view of the output survives this line
    gc.collect()
    for _ in range(3):
        scale_bias(x * 2)
    np.testing.assert_array_equal(row, expected(x)[0, 0, 2])
    # a loop that drops each result: the pool does not grow, and its free space comes back as it was
    for _ in range(50):
        scale_bias(x)
    assert worker.client()._pool is pool
    del row
    gc.collect()
    assert pool.free_blocks() == free_before


def test_results_outlive_the_worker_and_a_pool_that_was_outgrown():
    rng = np.random.default_rng(6)
    x = rng.uniform(-2, 2, (1, 2, 8, 64)).astype(np.float32)
    first = scale_bias(x)
    old_pool = worker.client()._pool
    rows = old_pool.size // (2 * 512) + 1                                # more fp16 than the whole pool
    big = rng.uniform(-2, 2, (1, 1, rows, 512)).astype(np.float32)
    np.testing.assert_array_equal(scale_bias(big)[0, 0, -3:], expected(big)[0, 0, -3:])
    assert worker.client()._pool is not old_pool
    worker.shutdown()                         # a new worker, a new pool
    second = scale_bias(x * 2)
    np.testing.assert_array_equal(first, expected(x))
    np.testing.assert_array_equal(second, expected(x * 2))
    first[...] = 7                            # the caller's array: writable, and only theirs
    np.testing.assert_array_equal(scale_bias(x), expected(x))


def test_channel_last_outputs_are_copied_and_their_region_given_back(tmp_path):
    from shave_bindings import one_in_one_out

    xml = one_in_one_out("Twice", "twice", "twice.bin").replace('type="output" port-index="0"',
                                                                  'type="output" port-index="0" format="BYXF"')
    (tmp_path / "twice.xml").write_text(xml)
    (tmp_path / "twice.cl").write_text("__kernel void twice(__global const half* src, __global half* dst)\n"
                                       "{ const int i = get_global_id(0); dst[i] = src[i] * 2.0h; }\n")
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    emulate(tmp_path / "twice.xml", "Twice", [x])
    gc.collect()
    pool = worker.client()._pool
    free_before = pool.free_blocks()
    out = emulate(tmp_path / "twice.xml", "Twice", [x]).outputs[0]
    assert out.flags.owndata
    # the kernel wrote element i of the NCHW input at position i of the NHWC output
    np.testing.assert_array_equal(out.transpose(0, 2, 3, 1).reshape(-1), (x * 2).reshape(-1))
    assert pool.free_blocks() == free_before


def test_the_pool_allocator_against_a_model():
    pool = ResultPool(64 * ALIGN)
    try:
        rng = np.random.default_rng(7)
        taken: dict[int, int] = {}
        for _ in range(400):
            if taken and rng.random() < 0.5:
                offset = list(taken)[rng.integers(len(taken))]
                pool.free(offset, taken.pop(offset))
                continue
            nbytes = int(rng.integers(1, 6 * ALIGN))
            offset = pool.alloc(nbytes)
            rounded = -(-nbytes // ALIGN) * ALIGN
            if offset is None:               # refused only when no free block is large enough
                assert all(size < rounded for _, size in pool.free_blocks())
                continue
            assert offset % ALIGN == 0 and offset + rounded <= pool.size
            assert all(offset + rounded <= o or o + taken[o] <= offset for o in taken), "overlapping regions"
            taken[offset] = rounded
        for offset, nbytes in taken.items():
            pool.free(offset, nbytes)
        assert pool.free_blocks() == [(0, pool.size)]
    finally:
        pool.retire()
