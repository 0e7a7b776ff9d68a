// GRN in the 2021 style: __local tiles declared in the kernel, 3D3D async copies in and out.
// One group per image row: local = (X, 1, 1), global = (X, Y, 1). dst = src / sqrt(bias + sum_c src^2).
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#pragma OPENCL EXTENSION cl_khr_extended_async_copies : enable

#define MAX_TILE (8 * 1024)

__kernel void grn_async(__global const half* restrict src_data, __global half* restrict dst_data, int C, float bias)
{
    __local half src[MAX_TILE];
    __local half dst[MAX_TILE];

    const size_t X = get_global_size(0), Y = get_global_size(1), lx = get_local_size(0);
    const size_t index = get_group_id(1) * X;

    event_t e1 = async_work_group_copy_3D3D(src, src_data + index, lx, 1, X - lx, 0, C, X * (Y - 1), 0, 0);
    wait_group_events(1, &e1);

    const int x = get_local_id(0);
    float sum = bias;
    for (int c = 0; c < C; c++) {
        const float v = src[c * lx + x];
        sum += v * v;
    }
    const half scale = (half)native_rsqrt(sum);
    for (int c = 0; c < C; c++) {
        dst[c * lx + x] = src[c * lx + x] * scale;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    event_t e2 = async_work_group_copy_3D3D(dst_data + index, dst, lx, 1, 0, X - lx, C, 0, X * (Y - 1), 0);
    wait_group_events(1, &e2);
}
