// Float bit patterns in int tensors: exercise the emulator's fp16 rounding on every kind of float.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

// convert_half inside a kernel; the int output carries the rounded float's bits back unchanged
__kernel void convert_bits(__global const int* restrict src, __global int* restrict dst)
{
    const int i = get_global_id(0);
    dst[i] = as_int(convert_half(as_float(src[i])));
}

// an arbitrary float stored into a half output: the emulator rounds it as the VPU stores it
__kernel void store_bits(__global const int* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    dst[i] = as_float(src[i]);
}
