/* SHAVE is a 32-bit device: its size_t, and so what the work-item functions return, is 32 bits. On a 64-bit
 * CPU (the emulator) or the spir64 host check, min(get_local_size(0) + x, (uint)n) would be ambiguous where clc
 * takes it. Put in front of the emulator's prelude (kernel/emulator/source.prelude) and -included by the host check
 * (kernel/builder/hostcheck.py). A function-like macro does not expand itself.
 */
#ifndef KK_SHAVE_WORK_ITEMS_H
#define KK_SHAVE_WORK_ITEMS_H
#define get_global_id(d)     ((uint)get_global_id(d))
#define get_local_id(d)      ((uint)get_local_id(d))
#define get_group_id(d)      ((uint)get_group_id(d))
#define get_global_size(d)   ((uint)get_global_size(d))
#define get_local_size(d)    ((uint)get_local_size(d))
#define get_num_groups(d)    ((uint)get_num_groups(d))
#define get_global_offset(d) ((uint)get_global_offset(d))
#endif
