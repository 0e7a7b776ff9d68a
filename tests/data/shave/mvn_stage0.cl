// Stage 0 of a two-stage mean subtraction: one work item per channel writes the channel mean (float) into a
// scratch buffer that stage 1 reads.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void channel_mean(__global const half* restrict src, __global float* restrict mean, int W, int H)
{
    const int c = get_global_id(0);
    float sum = 0.0f;
    for (int i = 0; i < W * H; i++) {
        sum += src[c * W * H + i];
    }
    mean[c] = sum / (W * H);
}
