"""The patch passes: each one edit of an IR for the MYRIAD plugin (see kernelkit.model.patcher for their order)."""
