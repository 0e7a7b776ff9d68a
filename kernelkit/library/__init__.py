"""The kernel library's helpers (kernel flow layer): the numpy references' shared pieces in `kernels/*/reference.py`,
the catalog of library kernels, ONNX node tests as their ground truth, and their doc pages."""
