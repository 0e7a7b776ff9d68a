// fp16 rounding inside a kernel: convert_half rounds t = x * s to fp16, then h * 3 is stored.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void round_probe(__global const half* restrict src, __global half* restrict dst, float s)
{
    const int i = get_global_id(0);
    const float t = vload_half(i, src) * s;
    const half h = convert_half(t);
    dst[i] = h * 3.0h;
}
