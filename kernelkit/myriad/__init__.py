"""The Myriad X (MYRIAD plugin) side of kernelkit: the legacy 2021.4 toolchain, blob compile and header,
the plugin oracle, NN Archive packing, and the support knowledge base."""
