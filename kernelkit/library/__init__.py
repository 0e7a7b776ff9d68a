"""The kernel library: shared helpers for the numpy references in `kernels/*/reference.py`, and the coverage table."""
