"""Conformance harness: cases, references, comparison, reports.

  inputs      seeded case inputs (fp16-representable floats, int32, edge values)
  references  numpy float64, OpenVINO CPU f32, ONNX node test data (the fp32 emulator runs in runner)
  compare     fp16-aware elementwise comparison and per-output statistics, independent of the rest
  runner      plan cases, build once, emulate, compare with every reference, statuses
  report      terminal, JSON, JUnit XML, HTML
  pytest_plugin  kernel.toml cases as pytest items (entry point; imports nothing heavy)

Nothing is imported here: the pytest plugin loads this package in every pytest run.
"""
