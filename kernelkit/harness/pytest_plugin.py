"""pytest plugin (entry point `kernelkit`): kernel conformance cases as pytest tests."""
