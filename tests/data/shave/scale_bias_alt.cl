// Elementwise y = -(x * alpha + beta) via vload_half / vstore_half: the alternative chosen by <Where mode="1">.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void scale_bias_neg(__global const half* restrict src, __global half* restrict dst,
                             float alpha, float beta)
{
    const int i = get_global_id(0);
    const float v = vload_half(i, src);
    vstore_half(-(v * alpha + beta), i, dst);
}
