"""kernelkit: custom OpenCL kernels for the Myriad X SHAVE cores.

Two data flows, one package:
  kernel: spec -> render -> bindings -> build/check -> emulate -> compare -> report
  model:  IR -> inspect -> patch -> verify (-> compile to a blob where the toolchain exists)
Heavy dependencies (pyopencl, openvino, onnx) are imported lazily inside the functions that need them.
"""

__version__ = "0.1.0"
