"""How close an fp16 result must be to its reference: the tolerance verify, the harness and the native
formulations' measurements all hold outputs to (an element fails only beyond both atol and rtol)."""

# fp16 keeps 11 significant bits: one rounding is at most 2**-11 ~ 4.9e-4 relative. rtol 1e-2 leaves room for
# about ten roundings of in-kernel half math; atol 1e-3 (about one fp16 ulp at 1.0) absorbs results near zero,
# where relative error means nothing. Documented in docs/harness.md.
DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-2

# An output whose reference lies within atol of zero would pass whatever it held, so it is compared relative to
# its signal instead: atol becomes rtol x max |reference|. Below fp16's smallest normal value its spacing stops
# shrinking (2**-24 among the subnormals), so a smaller signal counts as this large: rtol 1e-2 then leaves about
# ten subnormal roundings. Documented in docs/harness.md.
FP16_SMALLEST_NORMAL = 2.0 ** -14

# A whole compiled network in fp16 (the blob interpreter) against the model in f32: every layer rounds, so errors
# are measured against each output's largest magnitude. Measured (docs/blob.md; shared reference on the blob,
# section 6): fp16 noise 4.9e-4 to 2.3e-3 of max |y| on ResNet-18/50, MobileNetV2 and a corpus classifier, while a
# structural mistake (a missing ReLU6 floor) shows as 0.87. 1e-2 of max |y| sits between the two.
BLOB_NOISE_OF_PEAK = 1e-2
