"""Conformance harness: cases, runs, reports. The references are runners (kernelkit.runners: numpy_ref,
emulated_kernel, openvino_op, onnx_node), compared by kernelkit.runners.compare.

  inputs       seeded case inputs (fp16-representable floats, int32, edge values)
  conformance  plan cases, build once, emulate, compare with every reference runner, statuses
  report       terminal, JSON, JUnit XML, HTML
  custom_ops   one-layer IRs of the library's own op types, with the kernel's numpy reference
  onnx_cases   ONNX's single-node tests as deployable models (acceptance and measurement tools)
  pytest_plugin  kernel.toml cases as pytest items (entry point; imports nothing heavy)

Nothing is imported here: the pytest plugin loads this package in every pytest run.
"""
