__kernel void scale_shift2_gpu(const __global INPUT0_TYPE* input, __global OUTPUT0_TYPE* output)
{
    const uint x = get_global_id(0), y = get_global_id(1), bf = get_global_id(2);
    const uint f = bf % OUTPUT0_DIMS[1], b = bf / OUTPUT0_DIMS[1];
    const uint in_id = INPUT0_OFFSET + b * INPUT0_PITCHES[0] + f * INPUT0_PITCHES[1] + y * INPUT0_PITCHES[2] + x * INPUT0_PITCHES[3];
    const uint out_id = OUTPUT0_OFFSET + b * OUTPUT0_PITCHES[0] + f * OUTPUT0_PITCHES[1] + y * OUTPUT0_PITCHES[2] + x * OUTPUT0_PITCHES[3];
    output[out_id] = input[in_id] * ALPHA + BETA;
}
