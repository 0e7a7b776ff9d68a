/* kernelkit SHAVE prelude: lets kernels written for the Myriad X SHAVE compiler (clc) build and run on PoCL.
 *
 * PoCL has no cl_khr_fp16, so the emulator compiles with -Dhalf=float -Dhalf2=kk_half2 ... : every `half`
 * value and every half buffer element is a 32-bit float. This header supplies what that mapping leaves
 * missing or wrong:
 *   - fp16 rounding (kk_round_half) for explicit conversions to half: convert_half*() and vstore_half*();
 *   - vload_half* / vstore_half* on the float-backed half buffers;
 *   - the Movidius copy extensions: async_work_group_copy_2D2D / _3D3D (element counts, gap strides),
 *     WorkGroupDmaCreateStrideTransaction / WorkGroupDmaCreate3DTransaction (bytes, row pitch),
 *     WorkItemDmaCreate*Transaction + WaitWorkItemDmaEvents.
 * All copies finish before they return; the events they give back are real (empty) OpenCL events, so
 * wait_group_events() works on them. Work-group copies are shared out over the work items and end with a
 * barrier, so every work item of the group must reach them (as the OpenCL rules for async copies demand).
 * Byte sizes work because kernels write them as n*sizeof(half): sizeof(half) is 4 here and so is each element.
 * halfN are element-aligned float vectors; as_ushortN/as_shortN/as_halfN of half data use the fp16 encoding
 * (source.fp16_bits_overloads() adds the overloads); work-item functions return uint as on the 32-bit SHAVE.
 * Compiled with -DKK_ROUND_HALF=0 (precision "fp32"), kk_round_half does nothing.
 */
#ifndef KK_SHAVE_PRELUDE_H
#define KK_SHAVE_PRELUDE_H

#ifdef KK_REAL_HALF
/* arithmetic="fp16": clang compiles with cl_khr_fp16 and `half` is 16-bit storage and arithmetic, as on SHAVE;
   fp16_builtins.py supplies the half built-ins PoCL's library lacks. Only the SHAVE extensions follow. */
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
/* The user's halfN become these (source.real_half_source): SHAVE loads and stores halfN at any element boundary. */
typedef half kk_half2 __attribute__((ext_vector_type(2), aligned(2)));
typedef half kk_half3 __attribute__((ext_vector_type(3), aligned(2)));
typedef half kk_half4 __attribute__((ext_vector_type(4), aligned(2)));
typedef half kk_half8 __attribute__((ext_vector_type(8), aligned(2)));
typedef half kk_half16 __attribute__((ext_vector_type(16), aligned(2)));
#else
/* halfN (-Dhalf8=kk_half8 ...): float vectors aligned like one element. SHAVE loads and stores halfN at any
   element boundary (shipped kernels cast `src + x` to half8*); a plain float8 needs 32-byte alignment and
   would fault on the CPU. */
typedef float kk_half2 __attribute__((ext_vector_type(2), aligned(4)));
typedef float kk_half3 __attribute__((ext_vector_type(3), aligned(4)));
typedef float kk_half4 __attribute__((ext_vector_type(4), aligned(4)));
typedef float kk_half8 __attribute__((ext_vector_type(8), aligned(4)));
typedef float kk_half16 __attribute__((ext_vector_type(16), aligned(4)));
#endif

/* 32-bit work-item functions: kernel/builder/shave_work_items.h, put in front of this file by source.prelude(). */

/* clc's SAU.SUMX intrinsic: the sum of the eight lanes of a half8 (pairwise; in float unless arithmetic="fp16"). */
#ifdef KK_REAL_HALF
static inline half __builtin_shave_sau_sumx_f16_r(half8 v)
#else
static inline float __builtin_shave_sau_sumx_f16_r(kk_half8 v)
#endif
{
    return ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7));
}

#ifdef KK_REAL_HALF
/* clc's CMU.ALIGNVEC intrinsic: the 16 bytes that start k bytes into the 32-byte pair a:b (a first). Only with
   real halves: kernels feed it the bits of half8 values. */
static inline short8 __builtin_shave_cmu_alignvec_rri_short8(short8 a, short8 b, int k)
{
    short pair[16];
    vstore8(a, 0, pair);
    vstore8(b, 1, pair);
    return vload8(0, (const short*)((const uchar*)pair + k));
}
#endif

#ifndef KK_REAL_HALF          /* up to "shared helpers": what mapping half to float needs */

#ifndef KK_ROUND_HALF
#define KK_ROUND_HALF 1
#endif

#ifndef HALF_MAX
#define HALF_MAX 65504.0f
#define HALF_MIN 6.103515625e-05f
#define HALF_EPSILON 9.765625e-04f
#define HALF_DIG 3
#define HALF_MANT_DIG 11
#endif

/* ---- fp16 rounding: round-to-nearest-even to the nearest fp16 value, kept in a float ---------------- */
/* Branch-free so PoCL vectorizes it. Normal range: drop 13 mantissa bits with RNE. Below 2^-14 (fp16
   subnormals): adding 0.5 puts |x| in a binade whose float32 step is 2^-24, the fp16 subnormal step, so the
   add rounds it (RNE) and subtracting 0.5 is exact. 65520 and above: infinity. NaN keeps its bits.
   Checked bit for bit against numpy's float32 -> float16 -> float32 on 5M values (tests/test_emulator.py). */
#define KK_DEFINE_ROUND_HALF(F, U, I, AS_F, AS_U)                                                          \
    static inline __attribute__((overloadable)) F kk_fp16_nearest(F x)                                     \
    {                                                                                                      \
        const U u = AS_U(x);                                                                               \
        const U a = u & (U)0x7fffffffu;                                                                    \
        const U normal = (a + (U)0xfffu + ((a >> 13) & (U)1u)) & (U)0xffffe000u;                           \
        const U subnormal = AS_U((AS_F(a) + 0.5f) - 0.5f);                                                 \
        U r = a < (U)0x38800000u ? subnormal : normal;                                                     \
        r = a >= (U)0x477ff000u ? (U)0x7f800000u : r;                                                      \
        r = a > (U)0x7f800000u ? a : r;                                                                    \
        return AS_F((u ^ a) | r);                                                                          \
    }                                                                                                      \
    static inline __attribute__((overloadable)) F kk_round_half(F x)                                       \
    {                                                                                                      \
        return KK_ROUND_HALF ? kk_fp16_nearest(x) : x;                                                     \
    }
KK_DEFINE_ROUND_HALF(float, uint, int, as_float, as_uint)
KK_DEFINE_ROUND_HALF(float2, uint2, int2, as_float2, as_uint2)
KK_DEFINE_ROUND_HALF(float3, uint3, int3, as_float3, as_uint3)
KK_DEFINE_ROUND_HALF(float4, uint4, int4, as_float4, as_uint4)
KK_DEFINE_ROUND_HALF(float8, uint8, int8, as_float8, as_uint8)
KK_DEFINE_ROUND_HALF(float16, uint16, int16, as_float16, as_uint16)

/* ---- convert_half*: convert to float, then round to fp16 (every rounding mode rounds to nearest even) -- */
#undef convert_half
#define convert_half(x)        kk_round_half(convert_float(x))
#undef convert_half_rte
#define convert_half_rte(x)    kk_round_half(convert_float(x))
#undef convert_half_rtz
#define convert_half_rtz(x)    kk_round_half(convert_float(x))
#undef convert_half_rtp
#define convert_half_rtp(x)    kk_round_half(convert_float(x))
#undef convert_half_rtn
#define convert_half_rtn(x)    kk_round_half(convert_float(x))
#undef convert_half_sat
#define convert_half_sat(x)    kk_round_half(convert_float(x))
#undef convert_half_sat_rte
#define convert_half_sat_rte(x) kk_round_half(convert_float(x))
#undef convert_half2
#define convert_half2(x)       kk_round_half(convert_float2(x))
#undef convert_half2_rte
#define convert_half2_rte(x)   kk_round_half(convert_float2(x))
#undef convert_half2_rtz
#define convert_half2_rtz(x)   kk_round_half(convert_float2(x))
#undef convert_half2_sat
#define convert_half2_sat(x)   kk_round_half(convert_float2(x))
#undef convert_half3
#define convert_half3(x)       kk_round_half(convert_float3(x))
#undef convert_half3_rte
#define convert_half3_rte(x)   kk_round_half(convert_float3(x))
#undef convert_half4
#define convert_half4(x)       kk_round_half(convert_float4(x))
#undef convert_half4_rte
#define convert_half4_rte(x)   kk_round_half(convert_float4(x))
#undef convert_half4_rtz
#define convert_half4_rtz(x)   kk_round_half(convert_float4(x))
#undef convert_half4_sat
#define convert_half4_sat(x)   kk_round_half(convert_float4(x))
#undef convert_half8
#define convert_half8(x)       kk_round_half(convert_float8(x))
#undef convert_half8_rte
#define convert_half8_rte(x)   kk_round_half(convert_float8(x))
#undef convert_half8_rtz
#define convert_half8_rtz(x)   kk_round_half(convert_float8(x))
#undef convert_half8_sat
#define convert_half8_sat(x)   kk_round_half(convert_float8(x))
#undef convert_half16
#define convert_half16(x)      kk_round_half(convert_float16(x))
#undef convert_half16_rte
#define convert_half16_rte(x)  kk_round_half(convert_float16(x))
#undef convert_half16_rtz
#define convert_half16_rtz(x)  kk_round_half(convert_float16(x))
#undef convert_half16_sat
#define convert_half16_sat(x)  kk_round_half(convert_float16(x))

/* ---- vload_half* / vstore_half* on float-backed half buffers ---------------------------------------- */
#undef vload_half
#define vload_half(i, p)     ((float)((p)[(i)]))
#undef vload_half2
#define vload_half2(i, p)    vload2((i), (p))
#undef vload_half3
#define vload_half3(i, p)    vload3((i), (p))
#undef vload_half4
#define vload_half4(i, p)    vload4((i), (p))
#undef vload_half8
#define vload_half8(i, p)    vload8((i), (p))
#undef vload_half16
#define vload_half16(i, p)   vload16((i), (p))
#undef vloada_half
#define vloada_half(i, p)    vload_half((i), (p))
#undef vloada_half2
#define vloada_half2(i, p)   vload2((i), (p))
#undef vloada_half4
#define vloada_half4(i, p)   vload4((i), (p))
#undef vloada_half8
#define vloada_half8(i, p)   vload8((i), (p))
#undef vloada_half16
#define vloada_half16(i, p)  vload16((i), (p))

#undef vstore_half
#define vstore_half(v, i, p)     ((p)[(i)] = kk_round_half((float)(v)))
#undef vstore_half2
#define vstore_half2(v, i, p)    vstore2(kk_round_half(v), (i), (p))
#undef vstore_half3
#define vstore_half3(v, i, p)    vstore3(kk_round_half(v), (i), (p))
#undef vstore_half4
#define vstore_half4(v, i, p)    vstore4(kk_round_half(v), (i), (p))
#undef vstore_half8
#define vstore_half8(v, i, p)    vstore8(kk_round_half(v), (i), (p))
#undef vstore_half16
#define vstore_half16(v, i, p)   vstore16(kk_round_half(v), (i), (p))
#undef vstore_half_rte
#define vstore_half_rte(v, i, p)   vstore_half((v), (i), (p))
#undef vstore_half_rtz
#define vstore_half_rtz(v, i, p)   vstore_half((v), (i), (p))
#undef vstore_half2_rte
#define vstore_half2_rte(v, i, p)  vstore_half2((v), (i), (p))
#undef vstore_half4_rte
#define vstore_half4_rte(v, i, p)  vstore_half4((v), (i), (p))
#undef vstore_half8_rte
#define vstore_half8_rte(v, i, p)  vstore_half8((v), (i), (p))
#undef vstore_half16_rte
#define vstore_half16_rte(v, i, p) vstore_half16((v), (i), (p))
#undef vstorea_half
#define vstorea_half(v, i, p)    vstore_half((v), (i), (p))
#undef vstorea_half2
#define vstorea_half2(v, i, p)   vstore_half2((v), (i), (p))
#undef vstorea_half4
#define vstorea_half4(v, i, p)   vstore_half4((v), (i), (p))
#undef vstorea_half8
#define vstorea_half8(v, i, p)   vstore_half8((v), (i), (p))
#undef vstorea_half16
#define vstorea_half16(v, i, p)  vstore_half16((v), (i), (p))

/* ---- fp16 bit patterns ----------------------------------------------------------------------------- */
/* A half is a float here, so as_ushortN/as_shortN of halves and as_halfN of 16-bit data go through the fp16
   encoding: the bits are the device's (rounded to nearest even, in either precision). The overloads for every
   other type keep the plain reinterpretation; source.fp16_bits_overloads() generates them after this file. */
static inline ushort kk_fp16_bits(float x)
{
    const uint u = as_uint(kk_fp16_nearest(x));
    const uint a = u & 0x7fffffffu;
    uint h;
    if (a > 0x7f800000u)
        h = 0x7e00u | ((a >> 13) & 0x3ffu);               /* NaN: quiet, with the top payload bits */
    else if (a == 0x7f800000u)
        h = 0x7c00u;                                        /* infinity (and all that rounded to it) */
    else if (a >= 0x38800000u)
        h = (a >> 13) - (112u << 10);                       /* normal: rebias the exponent 127 -> 15 */
    else
        h = (uint)(as_float(a) * 16777216.0f);              /* subnormal or zero: a multiple of 2^-24 */
    return (ushort)(((u >> 16) & 0x8000u) | h);
}

static inline float kk_fp16_value(ushort h)
{
    const uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu, sign = (uint)(h & 0x8000u) << 16;
    if (e == 0)
        return as_float(sign | as_uint((float)m * 5.9604644775390625e-08f));   /* m * 2^-24 */
    if (e == 31)
        return as_float(sign | 0x7f800000u | (m << 13));
    return as_float(sign | ((e + 112u) << 23) | (m << 13));
}

#endif /* !KK_REAL_HALF */

/* ---- shared helpers ------------------------------------------------------------------------------- */
static inline size_t kk_local_linear_id(void)
{
    return get_local_id(0) + get_local_size(0) * (get_local_id(1) + get_local_size(1) * get_local_id(2));
}

static inline size_t kk_local_count(void)
{
    return get_local_size(0) * get_local_size(1) * get_local_size(2);
}

#define KK_GROUP_COPY_DONE() barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)

/* ---- Movidius async copies: counts in elements, strides are the GAPS between lines / planes ---------- */
#define KK_DEFINE_ASYNC_2D3D(T, DST_AS, SRC_AS)                                                            \
    static inline __attribute__((overloadable)) event_t kk_async_copy_3d3d(                                \
        DST_AS T *dst, const SRC_AS T *src, size_t per_line, size_t lines,                                 \
        size_t src_line_gap, size_t dst_line_gap, size_t planes,                                           \
        size_t src_plane_gap, size_t dst_plane_gap, event_t event)                                         \
    {                                                                                                      \
        const size_t src_pitch = per_line + src_line_gap, dst_pitch = per_line + dst_line_gap;             \
        const size_t src_plane = lines * src_pitch + src_plane_gap;                                        \
        const size_t dst_plane = lines * dst_pitch + dst_plane_gap;                                        \
        const size_t per_plane = per_line * lines, total = per_plane * planes;                             \
        for (size_t i = kk_local_linear_id(); i < total; i += kk_local_count()) {                          \
            const size_t p = i / per_plane, r = i - p * per_plane, l = r / per_line, c = r - l * per_line; \
            dst[p * dst_plane + l * dst_pitch + c] = src[p * src_plane + l * src_pitch + c];               \
        }                                                                                                  \
        KK_GROUP_COPY_DONE();                                                                              \
        return async_work_group_copy(dst, src, 0, event);                                                  \
    }                                                                                                      \
    static inline __attribute__((overloadable)) event_t kk_async_copy_2d2d(                                \
        DST_AS T *dst, const SRC_AS T *src, size_t per_line, size_t lines,                                 \
        size_t src_line_gap, size_t dst_line_gap, event_t event)                                           \
    {                                                                                                      \
        return kk_async_copy_3d3d(dst, src, per_line, lines, src_line_gap, dst_line_gap, 1, 0, 0, event);  \
    }

/* ---- manual DMA (work-group): sizes, widths and strides in BYTES; strides are row pitches ----------- */
/* Byte k of the transfer (k < size) is read at line k/src_width, column k%src_width of the source and
   written at line k/dst_width, column k%dst_width of the destination; 3D repeats that per plane. */
#define KK_DEFINE_WG_DMA(T, DST_AS, SRC_AS)                                                                \
    static inline __attribute__((overloadable)) event_t WorkGroupDmaCreate3DTransaction(                   \
        const SRC_AS T *src, DST_AS T *dst, size_t src_width, size_t dst_width,                            \
        size_t src_stride, size_t dst_stride, size_t num_planes,                                           \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, event_t event)                      \
    {                                                                                                      \
        const size_t e = sizeof(T);                                                                        \
        const size_t sw = src_width / e, dw = dst_width / e, ss = src_stride / e, ds = dst_stride / e;     \
        const size_t sp = src_plane_stride / e, dp = dst_plane_stride / e, n = size / e;                   \
        const size_t total = n * num_planes;                                                               \
        if (sw != 0 && dw != 0) {                                                                          \
            for (size_t i = kk_local_linear_id(); i < total; i += kk_local_count()) {                      \
                const size_t p = i / n, k = i - p * n;                                                     \
                dst[p * dp + (k / dw) * ds + k % dw] = src[p * sp + (k / sw) * ss + k % sw];               \
            }                                                                                              \
        }                                                                                                  \
        KK_GROUP_COPY_DONE();                                                                              \
        return async_work_group_copy(dst, src, 0, event);                                                  \
    }                                                                                                      \
    static inline __attribute__((overloadable)) event_t WorkGroupDmaCreateStrideTransaction(               \
        const SRC_AS T *src, DST_AS T *dst, size_t src_width, size_t dst_width,                            \
        size_t src_stride, size_t dst_stride, size_t size, event_t event)                                  \
    {                                                                                                      \
        return WorkGroupDmaCreate3DTransaction(src, dst, src_width, dst_width, src_stride, dst_stride,     \
                                               1, 0, 0, size, event);                                      \
    }                                                                                                      \
    static inline __attribute__((overloadable)) event_t WorkGroupDmaCreateTransaction(                     \
        const SRC_AS T *src, DST_AS T *dst, size_t size, event_t event)                                    \
    {                                                                                                      \
        return WorkGroupDmaCreate3DTransaction(src, dst, size, size, size, size, 1, 0, 0, size, event);    \
    }

/* ---- manual DMA (work item): between __global and __private; runs at once, so the wait is a no-op --- */
typedef int item_dma_event_t;
#define KK_DEFINE_WI_DMA(T, DST_AS, SRC_AS)                                                                \
    static inline __attribute__((overloadable)) item_dma_event_t WorkItemDmaCreate3DTransaction(           \
        const SRC_AS T *src, DST_AS T *dst, size_t src_width, size_t dst_width,                            \
        size_t src_stride, size_t dst_stride, size_t num_planes,                                           \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, item_dma_event_t event)             \
    {                                                                                                      \
        const size_t e = sizeof(T);                                                                        \
        const size_t sw = src_width / e, dw = dst_width / e, ss = src_stride / e, ds = dst_stride / e;     \
        const size_t sp = src_plane_stride / e, dp = dst_plane_stride / e, n = size / e;                   \
        if (sw == 0 || dw == 0) return event;                                                              \
        for (size_t p = 0; p < num_planes; ++p)                                                            \
            for (size_t k = 0; k < n; ++k)                                                                 \
                dst[p * dp + (k / dw) * ds + k % dw] = src[p * sp + (k / sw) * ss + k % sw];               \
        return event;                                                                                      \
    }                                                                                                      \
    static inline __attribute__((overloadable)) item_dma_event_t WorkItemDmaCreateStrideTransaction(       \
        const SRC_AS T *src, DST_AS T *dst, size_t src_width, size_t dst_width,                            \
        size_t src_stride, size_t dst_stride, size_t size, item_dma_event_t event)                         \
    {                                                                                                      \
        return WorkItemDmaCreate3DTransaction(src, dst, src_width, dst_width, src_stride, dst_stride,      \
                                              1, 0, 0, size, event);                                       \
    }                                                                                                      \
    static inline __attribute__((overloadable)) item_dma_event_t WorkItemDmaCreateTransaction(             \
        const SRC_AS T *src, DST_AS T *dst, size_t size, item_dma_event_t event)                           \
    {                                                                                                      \
        return WorkItemDmaCreate3DTransaction(src, dst, size, size, size, size, 1, 0, 0, size, event);     \
    }

static inline void kk_wait_work_item_dma_events(int count, item_dma_event_t *events) {}
#define WaitWorkItemDmaEvents(n, events) kk_wait_work_item_dma_events((n), (events))

#define KK_DEFINE_COPIES(T)                                                                                \
    KK_DEFINE_ASYNC_2D3D(T, __local, __global)                                                             \
    KK_DEFINE_ASYNC_2D3D(T, __global, __local)                                                             \
    KK_DEFINE_WG_DMA(T, __local, __global)                                                                 \
    KK_DEFINE_WG_DMA(T, __global, __local)                                                                 \
    KK_DEFINE_WI_DMA(T, __private, __global)                                                               \
    KK_DEFINE_WI_DMA(T, __global, __private)

KK_DEFINE_COPIES(uchar)
KK_DEFINE_COPIES(char)
KK_DEFINE_COPIES(short)
KK_DEFINE_COPIES(ushort)
KK_DEFINE_COPIES(int)
KK_DEFINE_COPIES(uint)
KK_DEFINE_COPIES(long)
KK_DEFINE_COPIES(ulong)
KK_DEFINE_COPIES(float)
KK_DEFINE_COPIES(float2)
KK_DEFINE_COPIES(float4)
KK_DEFINE_COPIES(float8)
KK_DEFINE_COPIES(float16)
#ifdef KK_REAL_HALF
KK_DEFINE_COPIES(half)
KK_DEFINE_COPIES(half2)
KK_DEFINE_COPIES(half4)
KK_DEFINE_COPIES(half8)
KK_DEFINE_COPIES(half16)
#endif

/* Our names, so a PoCL that declares the Khronos cl_khr_extended_async_copies signatures cannot clash. */
#define async_work_group_copy_2D2D kk_async_copy_2d2d
#define async_work_group_copy_3D3D kk_async_copy_3d3d

#endif /* KK_SHAVE_PRELUDE_H */
