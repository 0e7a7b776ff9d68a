// Kernels that a device would punish; each one is caught by a device check of the emulator.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void write_past_end(__global const half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    dst[i + 3] = src[i];                 // the last 3 work items write past the output
}

__kernel void skip_odd(__global const half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    if (i % 2 == 0)
        dst[i] = src[i];                 // odd elements are never written
}

__kernel void never_ends(__global const half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    volatile int keep_going = 1;
    while (keep_going) {
        dst[i] = src[i];
    }
}

__kernel void cmx_hog(__global const half* restrict src, __global half* restrict dst)
{
    __local half big[56 * 1024];         // 112 KiB of CMX: over the budget
    const int i = get_global_id(0);
    big[get_local_id(0)] = src[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    dst[i] = big[get_local_id(0)];
}

__kernel void plain_copy(__global const half* restrict src, __global half* restrict dst,
                         __local half* restrict scratch)
{
    const int i = get_global_id(0);
    scratch[get_local_id(0)] = src[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    dst[i] = scratch[get_local_id(0)];
}

__kernel __attribute__((reqd_work_group_size(4, 1, 1)))
void fixed_group(__global const half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    dst[i] = src[i];
}

__kernel void scribble(__global half* restrict src, __global half* restrict dst)
{
    const int i = get_global_id(0);
    dst[i] = src[i];
    src[i] = 0.0h;                       // writes into its input tensor
}

__kernel void wild_write(__global const half* restrict src, __global half* restrict dst)
{
    const size_t i = get_global_id(0);
    dst[i + ((size_t)1 << 40)] = src[i];  // a terabyte away: the worker process dies
}
