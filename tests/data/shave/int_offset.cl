// int32 tensors pass unchanged: out = in + offset (element-wise).
__kernel void int_offset(__global const int* restrict src, __global int* restrict dst, int offset)
{
    const int i = get_global_id(0);
    dst[i] = src[i] + offset;
}
