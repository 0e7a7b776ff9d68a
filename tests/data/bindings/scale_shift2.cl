#pragma OPENCL EXTENSION cl_khr_fp16 : enable

/* y = x * alpha + beta, one work item per row */
__kernel void scale_shift2(__global const half* restrict src,
                           __global half* restrict dst,
                           int W, float alpha, float beta)
{
    const int y = get_global_id(0), c = get_global_id(1), b = get_global_id(2);
    const int H = get_global_size(0), C = get_global_size(1);
    const int row = ((b * C + c) * H + y) * W;
    for (int x = 0; x < W; x++)
        dst[row + x] = (half)((float)src[row + x] * alpha + beta);
}
