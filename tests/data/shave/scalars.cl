// Writes every scalar it receives into the first output elements, then copies the input.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void scalar_probe(__global const half* restrict src, __global half* restrict dst,
                           int whole_int, float whole_float, int list_item, int in_x, int out_f, int quirk_x,
                           int literal_int, float literal_float, int in_b, int total)
{
    const int i = get_global_id(0);
    half v;
    switch (i) {
        case 0: v = (half)whole_int; break;
        case 1: v = (half)whole_float; break;
        case 2: v = (half)list_item; break;
        case 3: v = (half)in_x; break;
        case 4: v = (half)out_f; break;
        case 5: v = (half)quirk_x; break;
        case 6: v = (half)literal_int; break;
        case 7: v = (half)literal_float; break;
        case 8: v = (half)in_b; break;
        default: v = src[i % total]; break;
    }
    dst[i] = v;
}
