// Kernels that index their tensors in the declared formats.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

// in: BYXF (NHWC), out: BFYX (NCHW). out[c, y, x] = in[y, x, c] + c
__kernel void nhwc_to_nchw(__global const half* restrict src, __global half* restrict dst, int C, int H, int W)
{
    const int x = get_global_id(0), y = get_global_id(1), c = get_global_id(2);
    dst[(c * H + y) * W + x] = src[(y * W + x) * C + c] + (half)c;
}

// in: FYX (CHW, rank 3), out: YXF (HWC). out[y, x, c] = 2 * in[c, y, x]
__kernel void chw_to_hwc(__global const half* restrict src, __global half* restrict dst, int C, int H, int W)
{
    const int x = get_global_id(0), y = get_global_id(1), c = get_global_id(2);
    dst[(y * W + x) * C + c] = src[(c * H + y) * W + x] * 2.0h;
}

// BF (rank 2, N x C): out[n, c] = in[n, c] * N + c   (N from I.Y, C from I.X: counted from the end)
__kernel void rows_bf(__global const half* restrict src, __global half* restrict dst, int N, int C)
{
    const int n = get_global_id(1), c = get_global_id(0);
    dst[n * C + c] = src[n * C + c] * (half)N + (half)c;
}

// A layer blob bound with <Data type="data">: out = in + weights[channel]
__kernel void add_weights(__global const half* restrict src, __global const half* restrict weights,
                          __global half* restrict dst, int C, int HW)
{
    const int i = get_global_id(0);
    dst[i] = src[i] + weights[(i / HW) % C];
}
