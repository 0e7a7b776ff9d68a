/* The emulator's own kernels: fp16 rounding where tensors cross the layer boundary, and the device checks
 * around a run (poison in the outputs before; poison left and guard zones damaged after, all in one launch:
 * kk_epilogue). They run in the same queue as the user's kernels, so a call waits on the device once.
 *
 * Built without the SHAVE prelude and without -Dhalf=float, so `half*` is real 16-bit storage here and
 * vstore_halfN_rte / vload_halfN are OpenCL's own conversions (round to nearest even, overflow to inf,
 * subnormals kept; bit-exact against numpy, see tests/test_emulator.py). PoCL turns the 8-wide forms into the
 * CPU's F16C instructions; its scalar forms are several times slower, so they only finish the last elements.
 *
 * Each work item takes CHUNK consecutive elements, 8 at a time, and raises a flag at most once: one branch
 * per item instead of one per vector runs about 1.6x faster on PoCL. The host rounds the grid up to whole
 * groups; work items past the end do nothing.
 */

#define CHUNK 64                /* worker.SUPPORT_CHUNK */

/* Round `count` floats to the nearest fp16 value, in place (the input as the VPU would store it). */
__kernel void kk_round_inplace(__global float* data, uint count)
{
    const size_t first = get_global_id(0) * CHUNK;
    if (first + CHUNK <= count) {
        for (size_t i = first; i < first + CHUNK; i += 8) {
            ushort8 bits;
            vstore_half8_rte(vload8(0, data + i), 0, (__private half*)&bits);
            vstore8(vload_half8(0, (__private const half*)&bits), 0, data + i);
        }
        return;
    }
    for (size_t i = first; i < count; ++i) {
        ushort bits;
        vstore_half_rte(data[i], 0, (__private half*)&bits);
        data[i] = vload_half(0, (__private const half*)&bits);
    }
}

/* Widen fp16 inputs to the float32 buffer the kernels read: the caller's float16 array arrives as its bits
   (half the bytes of float32, and no conversion in numpy, which has no vector path for it). Exact. */
__kernel void kk_widen_half(__global const half* src, __global float* dst, uint count)
{
    const size_t first = get_global_id(0) * CHUNK;
    if (first + CHUNK <= count) {
        for (size_t i = first; i < first + CHUNK; i += 8)
            vstore8(vload_half8(0, src + i), 0, dst + i);
        return;
    }
    for (size_t i = first; i < count; ++i)
        dst[i] = vload_half(i, src);
}

/* Count the poison left in data[first, end) into stats: [0] += how many, [1] = min(first index). Only runs
   for work items that saw poison (a kernel that leaves output elements unwritten), so atomics are rare. */
static void kk_count_poison(__global const uint* data, size_t first, size_t end, uint poison,
                            __global uint* stats)
{
    uint count = 0, at = UINT_MAX;
    for (size_t i = first; i < end; ++i) {
        if (data[i] == poison) {
            at = min(at, (uint)i);
            ++count;
        }
    }
    atomic_add(stats, count);
    atomic_min(stats + 1, at);
}

/* Before the run: every word of an output holds the poison, as the plugin does not clear outputs. */
__kernel void kk_poison(__global uint* data, uint count, uint poison)
{
    const size_t first = get_global_id(0) * CHUNK;
    if (first + CHUNK <= count) {
        for (size_t i = first; i < first + CHUNK; i += 8)
            vstore8((uint8)poison, 0, data + i);
        return;
    }
    for (size_t i = first; i < count; ++i)
        data[i] = poison;
}

/* After the run, everything in one launch (worker.Epilogue builds the table). Row r of `tasks` is
   tasks[8r .. 8r+7] = (kind, first work item, end work item, a, b, c, d, unused), rows in work-item order;
   offsets are bytes into the arena; fp16 outputs go to the result pool, where the parent says for each call. */
#define KK_TO_HALF 0        /* a: float32 data, b: word holding the fp16 out's pool offset, c: elements,
                               d: poison stats */
#define KK_FIND_POISON 1    /* a: 32-bit data read in place by the host, c: elements, d: poison stats */
#define KK_CHECK_GUARD 2    /* a: zone start, c: bytes, d: flag word */

/* The output as the VPU stores it (fp16) into `out`, and the poison left in it counted into stats. The worker
   poisons the words again after its reply (worker._Device.after_reply), off the caller's wait. */
static void kk_to_half(__global const uint* data, __global half* out, size_t count, uint poison,
                       __global uint* stats, size_t item)
{
    const size_t first = item * CHUNK;
    const size_t end = min(first + CHUNK, count);
    int8 found = 0;
    if (end == first + CHUNK) {
        for (size_t i = first; i < end; i += 8) {
            const uint8 words = vload8(0, data + i);
            vstore_half8_rte(as_float8(words), 0, out + i);
            found |= words == (uint8)poison;
        }
    } else {
        for (size_t i = first; i < end; ++i) {
            vstore_half_rte(as_float(data[i]), i, out);
            if (data[i] == poison)
                found.s0 = -1;       /* any() reads the sign bit, as vector compares set it */
        }
    }
    if (any(found))
        kk_count_poison(data, first, end, poison, stats);
}

/* For outputs the host reads in place: count the poison. */
static void kk_find_poison(__global const uint* data, size_t count, uint poison, __global uint* stats,
                           size_t item)
{
    const size_t first = item * CHUNK;
    const size_t end = min(first + CHUNK, count);
    int8 found = 0;
    if (end == first + CHUNK) {
        for (size_t i = first; i < end; i += 8)
            found |= vload8(0, data + i) == (uint8)poison;
    } else {
        for (size_t i = first; i < end; ++i)
            if (data[i] == poison)
                found.s0 = -1;
    }
    if (any(found))
        kk_count_poison(data, first, end, poison, stats);
}

/* Raise the flag if any byte of the guard zone lost the pattern. A zone after a buffer starts wherever the
   buffer's data ends, so this reads bytes: CHUNK * 4 per work item. */
static void kk_check_guard(__global const uchar* zone, size_t nbytes, uchar pattern, __global uint* damaged,
                           size_t item)
{
    const size_t first = item * CHUNK * 4;
    char16 wrong = 0;
    if (first + CHUNK * 4 <= nbytes) {
        for (size_t i = first; i < first + CHUNK * 4; i += 16)
            wrong |= vload16(0, zone + i) != (uchar16)pattern;
    } else {
        for (size_t i = first; i < nbytes; ++i)
            if (zone[i] != pattern)
                wrong.s0 = -1;
    }
    if (any(wrong))
        *damaged = 1u;
}

__kernel void kk_epilogue(__global uchar* arena, __global uchar* pool, __global const ulong* tasks, uint ntasks,
                          uint poison, uchar pattern)
{
    const size_t g = get_global_id(0);
    uint r = 0;
    while (r + 1 < ntasks && tasks[8 * (r + 1) + 1] <= g)
        ++r;
    __global const ulong* row = tasks + 8 * r;
    if (g < row[1] || g >= row[2])
        return;                  /* past the last task: the host rounds the grid up to whole groups */
    const size_t item = g - row[1];
    switch (row[0]) {
    case KK_TO_HALF:
        kk_to_half((__global const uint*)(arena + row[3]), (__global half*)(pool + *(__global ulong*)(arena + row[4])),
                   row[5], poison, (__global uint*)(arena + row[6]), item);
        break;
    case KK_FIND_POISON:
        kk_find_poison((__global const uint*)(arena + row[3]), row[5], poison, (__global uint*)(arena + row[6]),
                       item);
        break;
    case KK_CHECK_GUARD:
        kk_check_guard(arena + row[3], row[5], pattern, (__global uint*)(arena + row[6]), item);
        break;
    }
}
