"""Layer 4, the device: the real MYRIAD compiler (the legacy 2021.4 toolchain and its compile), blobs and their
stages, and the metadata-only kernel ELFs that let the plugin judge bindings without clc."""
