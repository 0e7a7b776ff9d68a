"""Build a kernel folder: render, clang-15 host check, SHAVE lint, clc when present."""
