"""kernelkit: custom OpenCL kernels for the Myriad X SHAVE cores.

Two data flows, one package:
  kernel: spec -> render -> bindings -> build/check -> emulate -> compare -> report
  model:  IR/ONNX -> inspect -> patch -> verify -> compile to a blob -> archive

The user's verbs are here: `kernelkit.inspect`, `patch`, `verify`, `compile`, `archive`, `device_check`,
`device_compare`, `emulate`, `build`, `plugin_check`, `blob_info`, `blob_run`, `estimate` (kernelkit.api; docs/api.md). They are
loaded on first use, so importing any part of the package stays light; heavy dependencies (pyopencl, openvino,
onnx) load inside the functions that need them.
"""

__version__ = "0.1.0"
__all__ = ["inspect", "patch", "verify", "compile", "archive", "device_check", "device_compare", "emulate", "build",
           "plugin_check", "blob_info", "blob_run", "estimate"]


def __getattr__(name: str):
    if name in __all__:
        from kernelkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'kernelkit' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *__all__])
