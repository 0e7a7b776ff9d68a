// One work item per row (reqd_work_group_size(1,1,1)): WorkItemDma copies the row into private memory,
// a running sum is computed there and copied back with a strided work-item transaction.
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

#define MAX_W 256

__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void row_prefix(__global const half* restrict src, __global half* restrict dst, int W)
{
    __private half line[MAX_W];
    const int row = get_global_id(0) + get_global_size(0) * get_global_id(1);

    item_dma_event_t in = WorkItemDmaCreateTransaction(src + row * W, line, W * sizeof(half), 0);
    WaitWorkItemDmaEvents(1, &in);

    half acc = 0.0h;
    for (int x = 0; x < W; x++) {
        acc += line[x];
        line[x] = acc;
    }

    item_dma_event_t out = WorkItemDmaCreateStrideTransaction(line, dst + row * W, W * sizeof(half),
                                                              W * sizeof(half), W * sizeof(half),
                                                              W * sizeof(half), W * sizeof(half), 0);
    WaitWorkItemDmaEvents(1, &out);
}
