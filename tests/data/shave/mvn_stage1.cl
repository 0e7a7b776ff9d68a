// Stage 1: subtract the channel mean from each row; one row per group of one work item.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void subtract_mean(__global const half* restrict src, __global const float* restrict mean,
                   __global half* restrict dst, int W)
{
    const int y = get_global_id(0), c = get_global_id(1), H = get_global_size(0);
    const half m = convert_half(mean[c]);
    for (int x = 0; x < W; x++) {
        dst[(c * H + y) * W + x] = src[(c * H + y) * W + x] - m;
    }
}
