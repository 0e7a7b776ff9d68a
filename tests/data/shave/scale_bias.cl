// Line-wise y = x * alpha + beta: one work item per row, half8 body and a scalar tail.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void scale_bias(__global const half* restrict src, __global half* restrict dst,
                         int W, float alpha, float beta)
{
    const int row = get_global_id(0) + get_global_size(0) * (get_global_id(1) + get_global_size(1) * get_global_id(2));
    __global const half* in = src + row * W;
    __global half* out = dst + row * W;
    const half8 a = (half8)((half)alpha);
    const half8 b = convert_half8((float8)(beta));
    int x = 0;
    for (; x + 8 <= W; x += 8) {
        half8 v = vload8(0, in + x);
        vstore8(v * a + b * 1.0h, 0, out + x);
    }
    for (; x < W; x++) {
        out[x] = in[x] * (half)alpha + (half)beta + 0.0h;
    }
}
