// Manual DMA with only a preload: WorkGroupDmaCreateStrideTransaction gathers every second row of a channel
// (src pitch 2*W) into local memory; the kernel writes the global output itself. out[c, r, x] = in[c, 2r, x] - 1
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void __dma_preload_even_rows(__global const half* restrict src, __global half* restrict dst,
                                      __local half* restrict rows, int W, int H)
{
    const int c = get_group_id(1);
    WorkGroupDmaCreateStrideTransaction(src + c * W * H, rows,
                                        W * sizeof(half), W * sizeof(half),
                                        2 * W * sizeof(half), W * sizeof(half),
                                        (H / 2) * W * sizeof(half), 0);
}

__kernel void even_rows(__global const half* restrict src, __global half* restrict dst,
                        __local half* restrict rows, int W, int H)
{
    const int c = get_group_id(1);
    const int x = get_local_id(0);
    for (int r = 0; r < H / 2; r++) {
        dst[c * W * (H / 2) + r * W + x] = rows[r * W + x] - 1.0h;
    }
}
