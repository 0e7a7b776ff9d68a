// GRN with the manual-DMA triplet (as in the VPU kernel guide): preload fills local_src for the group,
// the kernel works on __local memory only, postwrite copies local_dst out. 3D transactions, sizes in bytes.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void __dma_preload_grn_dma(__global const half* restrict src, __global half* restrict dst,
                                    __local half* restrict local_src, __local half* restrict local_dst,
                                    int C, float bias)
{
    WorkGroupDmaCreate3DTransaction(
        src + get_group_id(0) * get_local_size(0) + get_group_id(1) * get_local_size(1) * get_global_size(0),
        local_src,
        get_local_size(0) * sizeof(half),                          // src width
        get_local_size(0) * sizeof(half),                          // dst width
        get_global_size(0) * sizeof(half),                         // src stride (pitch)
        get_local_size(0) * sizeof(half),                          // dst stride
        C,                                                         // planes
        get_global_size(0) * get_global_size(1) * sizeof(half),    // src plane stride
        get_local_size(0) * get_local_size(1) * sizeof(half),      // dst plane stride
        get_local_size(0) * get_local_size(1) * sizeof(half),      // plane size
        0);
}

__kernel void __dma_postwrite_grn_dma(__global const half* restrict src, __global half* restrict dst,
                                      __local const half* restrict local_src, __local half* restrict local_dst,
                                      int C, float bias)
{
    WorkGroupDmaCreate3DTransaction(
        local_dst,
        dst + get_group_id(0) * get_local_size(0) + get_group_id(1) * get_local_size(1) * get_global_size(0),
        get_local_size(0) * sizeof(half),
        get_local_size(0) * sizeof(half),
        get_local_size(0) * sizeof(half),
        get_global_size(0) * sizeof(half),
        C,
        get_local_size(0) * get_local_size(1) * sizeof(half),
        get_global_size(0) * get_global_size(1) * sizeof(half),
        get_local_size(0) * get_local_size(1) * sizeof(half),
        0);
}

__kernel void grn_dma(__global const half* restrict src_data, __global half* restrict dst_data,
                      __local half* restrict src, __local half* restrict dst, int C, float bias)
{
    const int plane = get_local_size(0) * get_local_size(1);
    const int i = get_local_id(1) * get_local_size(0) + get_local_id(0);
    float sum = bias;
    for (int c = 0; c < C; c++) {
        const float v = src[c * plane + i];
        sum += v * v;
    }
    const half scale = (half)native_rsqrt(sum);
    for (int c = 0; c < C; c++) {
        dst[c * plane + i] = src[c * plane + i] * scale;
    }
}
