/* Declarations of the Movidius SHAVE OpenCL built-ins, for host checks with clang-15 (-include this file).
 *
 * Written by kernelkit from the signatures the public VPU kernel guide describes: counts and strides of the async_work_group_copy_* extension are in ELEMENTS and a
 * stride is the gap between lines or planes; the WorkGroupDma* and WorkItemDma* calls take BYTES.
 * These are declarations only: clc provides the definitions on the device, the emulator its own prelude.
 */
#ifndef KERNELKIT_MOVIDIUS_BUILTINS_H
#define KERNELKIT_MOVIDIUS_BUILTINS_H

#pragma OPENCL EXTENSION cl_khr_fp16 : enable

#define KK_OVL __attribute__((overloadable))

/* 32-bit work-item functions: kernelkit/kernel/emulator/shave_work_items.h, -included before this file. */

/* clc intrinsics used by shipped kernels (parameters unnamed: a kernel's scalars may be macros, as in the GPU
   view). SAU.SUMX: the sum of the eight lanes of a half8. CMU.ALIGNVEC (a, b, k): the 16 bytes that start k bytes
   into the pair a:b. */
half __builtin_shave_sau_sumx_f16_r(half8);
short8 __builtin_shave_cmu_alignvec_rri_short8(short8, short8, int);

/* Work-item DMA events live in private memory; the guide only shows them created, passed and waited on. */
typedef uint item_dma_event_t;

#define KK_DECLARE_MOVIDIUS_COPIES(T)                                                                        \
    /* 2D: lines of num_elements_per_line, line gaps in elements */                                         \
    event_t KK_OVL async_work_group_copy_2D2D(__local T *dst, const __global T *src,                        \
        size_t num_elements_per_line, size_t num_lines, size_t src_line_stride, size_t dst_line_stride,     \
        event_t event);                                                                                     \
    event_t KK_OVL async_work_group_copy_2D2D(__global T *dst, const __local T *src,                        \
        size_t num_elements_per_line, size_t num_lines, size_t src_line_stride, size_t dst_line_stride,     \
        event_t event);                                                                                     \
    /* 3D: planes of 2D tiles, plane gaps in elements */                                                    \
    event_t KK_OVL async_work_group_copy_3D3D(__local T *dst, const __global T *src,                        \
        size_t num_elements_per_line, size_t num_lines, size_t src_line_stride, size_t dst_line_stride,     \
        size_t num_planes, size_t src_plane_stride, size_t dst_plane_stride, event_t event);                \
    event_t KK_OVL async_work_group_copy_3D3D(__global T *dst, const __local T *src,                        \
        size_t num_elements_per_line, size_t num_lines, size_t src_line_stride, size_t dst_line_stride,     \
        size_t num_planes, size_t src_plane_stride, size_t dst_plane_stride, event_t event);                \
    /* Manual-DMA kernel triplet (__dma_preload_K / __dma_postwrite_K), sizes in bytes */                   \
    event_t KK_OVL WorkGroupDmaCreateStrideTransaction(const __global T *src, __local T *dst,               \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t size,              \
        event_t event);                                                                                     \
    event_t KK_OVL WorkGroupDmaCreateStrideTransaction(const __local T *src, __global T *dst,               \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t size,              \
        event_t event);                                                                                     \
    event_t KK_OVL WorkGroupDmaCreate3DTransaction(const __global T *src, __local T *dst,                   \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t num_planes,        \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, event_t event);                      \
    event_t KK_OVL WorkGroupDmaCreate3DTransaction(const __local T *src, __global T *dst,                   \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t num_planes,        \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, event_t event);                      \
    /* Work-item DMA between global and private memory, sizes in bytes */                                   \
    item_dma_event_t KK_OVL WorkItemDmaCreateTransaction(const __global T *src, __private T *dst,          \
        size_t size, item_dma_event_t event);                                                               \
    item_dma_event_t KK_OVL WorkItemDmaCreateTransaction(const __private T *src, __global T *dst,          \
        size_t size, item_dma_event_t event);                                                               \
    item_dma_event_t KK_OVL WorkItemDmaCreateStrideTransaction(const __global T *src, __private T *dst,    \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t size,              \
        item_dma_event_t event);                                                                            \
    item_dma_event_t KK_OVL WorkItemDmaCreateStrideTransaction(const __private T *src, __global T *dst,    \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t size,              \
        item_dma_event_t event);                                                                            \
    item_dma_event_t KK_OVL WorkItemDmaCreate3DTransaction(const __global T *src, __private T *dst,        \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t num_planes,        \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, item_dma_event_t event);             \
    item_dma_event_t KK_OVL WorkItemDmaCreate3DTransaction(const __private T *src, __global T *dst,        \
        size_t src_width, size_t dst_width, size_t src_stride, size_t dst_stride, size_t num_planes,        \
        size_t src_plane_stride, size_t dst_plane_stride, size_t size, item_dma_event_t event);

KK_DECLARE_MOVIDIUS_COPIES(char)
KK_DECLARE_MOVIDIUS_COPIES(uchar)
KK_DECLARE_MOVIDIUS_COPIES(short)
KK_DECLARE_MOVIDIUS_COPIES(ushort)
KK_DECLARE_MOVIDIUS_COPIES(int)
KK_DECLARE_MOVIDIUS_COPIES(uint)
KK_DECLARE_MOVIDIUS_COPIES(half)
KK_DECLARE_MOVIDIUS_COPIES(float)
KK_DECLARE_MOVIDIUS_COPIES(half2)
KK_DECLARE_MOVIDIUS_COPIES(half4)
KK_DECLARE_MOVIDIUS_COPIES(half8)
KK_DECLARE_MOVIDIUS_COPIES(float4)

void WaitWorkItemDmaEvents(int num_events, item_dma_event_t *event_list);

#undef KK_DECLARE_MOVIDIUS_COPIES
#undef KK_OVL

#endif
