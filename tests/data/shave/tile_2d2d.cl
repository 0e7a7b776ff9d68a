// Tiles of TW x TH through __local memory with the Movidius 2D2D copies (element counts, gap strides).
// local = (TW, TH, 1); each group copies its tile in, computes y = 2x + 1 and copies it back.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

__kernel void tile_2d2d(__global const half* restrict src, __global half* restrict dst, int W, int H)
{
    __local half tile[64 * 64];
    const int tw = get_local_size(0), th = get_local_size(1);
    const int x0 = get_group_id(0) * tw, y0 = get_group_id(1) * th, c = get_group_id(2);
    const int offset = c * W * H + y0 * W + x0;

    event_t in = async_work_group_copy_2D2D(tile, src + offset, tw, th, W - tw, 0, 0);
    wait_group_events(1, &in);

    const int i = get_local_id(1) * tw + get_local_id(0);
    tile[i] = tile[i] * 2.0h + 1.0h;
    barrier(CLK_LOCAL_MEM_FENCE);

    event_t out = async_work_group_copy_2D2D(dst + offset, tile, tw, th, 0, W - tw, 0);
    wait_group_events(1, &out);
}
