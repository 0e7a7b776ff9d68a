"""How close an fp16 result must be to its reference: the tolerance verify, the harness and the native
formulations' measurements all hold outputs to (an element fails only beyond both atol and rtol)."""

# fp16 keeps 11 significant bits: one rounding is at most 2**-11 ~ 4.9e-4 relative. rtol 1e-2 leaves room for
# about ten roundings of in-kernel half math; atol 1e-3 (about one fp16 ulp at 1.0) absorbs results near zero,
# where relative error means nothing. Documented in docs/harness.md.
DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-2
