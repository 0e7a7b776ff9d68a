#pragma OPENCL EXTENSION cl_khr_fp16 : enable
// Sum and sum of squares of one row, in float.
__kernel void mvn2_reduce(__global const half *restrict src,
                          __global float *restrict mean,
                          __global float *restrict variance,
                          __local half *restrict row,
                          int width)
{
    const int y = get_global_id(1), c = get_global_id(2), H = get_global_size(1);
    event_t e = async_work_group_copy(row, src + (c * H + y) * width, width, 0);
    wait_group_events(1, &e);
    float s = 0.f, s2 = 0.f;
    for (int x = 0; x < width; x++) { float v = row[x]; s += v; s2 += v * v; }
    mean[c * H + y] = s;
    variance[c * H + y] = s2;
}
