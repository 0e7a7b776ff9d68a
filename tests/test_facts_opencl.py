"""The OpenCL C scalar types of the SHAVE target: one table, and its users agree with it."""

from kernelkit.facts.opencl import SCALAR_TYPES, split_vector, type_size
from kernelkit.myriad.check_elf import metadata_from_source


def test_sizes_of_scalars_and_vectors_on_the_shave():
    assert type_size("size_t") == 4                 # SHAVE is a 32-bit core
    assert type_size("unsigned int") == type_size("uint") == 4
    assert type_size("half8") == 16 and type_size("float3") == 16     # a 3-vector takes the room of 4
    assert type_size("event_t") is None and type_size("bool4") is None
    assert split_vector("uchar16") == ("uchar", 16) and split_vector("half") == ("half", 1)
    assert {t.numpy for t in SCALAR_TYPES.values() if t.source == "shave"} == {"bool", "uint32"}


def test_kernel_metadata_and_the_memory_estimate_size_size_t_alike():
    source = """
        __kernel void k(__global const half* restrict src, __global half* restrict dst, int n, size_t stride) {
            __local size_t offsets[8];
            offsets[get_local_id(0) % 8] = stride;
            dst[get_global_id(0)] = src[offsets[0] % n];
        }
    """
    kernel, = metadata_from_source(source)
    sizes = {arg.name: arg.element_size for arg in kernel.args}
    assert sizes == {"src": 2, "dst": 2, "n": 4, "stride": 4, "offsets": 8 * 4}
