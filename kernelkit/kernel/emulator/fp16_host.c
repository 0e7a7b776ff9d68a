/* fp16 rounding of input tensors on the host, while they are copied into the emulator's arena.
 *
 * Built by kernelkit/kernel/emulator/host_fp16.py with the kit's clang on first use. The conversions compile to the
 * CPU's own fp16 instructions (F16C on x86-64, FCVT on aarch64): round to nearest even, overflow to inf,
 * subnormals kept, the same bits as the device-side pass in support.cl and as numpy's float16.
 */
#include <stddef.h>

/* dst[i] = src[i] as the VPU would store it (fp16), widened back to float for the kernels. */
void kk_round_to_fp16(const float* restrict src, float* restrict dst, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = (float)(_Float16)src[i];
}

/* dst[i] = src[i], an fp16 tensor widened to float for the kernels (exact). */
void kk_widen_fp16(const _Float16* restrict src, float* restrict dst, size_t count)
{
    for (size_t i = 0; i < count; ++i)
        dst[i] = (float)src[i];
}
