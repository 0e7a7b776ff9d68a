// Does not compile: undeclared identifier on line 6.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
__kernel void broken(__global const half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    dst[i] = src[i] * missing_scale;
}
