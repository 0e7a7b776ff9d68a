"""Layer 6: run a model or a kernel (OpenVINO CPU, fp16 layers, SHAVE emulator, ONNX data, the real plugin), and compare."""
